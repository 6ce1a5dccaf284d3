package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token kinds (accessTokens[].kind) and user kinds.
const (
	tokenKindPat = "Pat"
	tokenKindSA  = "ServiceAccount"
	kindEmployee = "CustomerEmployee"
	maxDaysValid = 730
)

// UserCredentials are what a test or the sandbox binary needs to log in as a user. In JSON
// (the /sandbox/users answer) the private key is a PEM string under "privateKey".
type UserCredentials struct {
	UserID        string
	Username      string
	OrgID         string
	CredID        string
	PrivateKeyPEM []byte // PKCS#8 PEM
}

// userCredentialsJSON is the JSON form of UserCredentials.
type userCredentialsJSON struct {
	UserID     string `json:"userId"`
	Username   string `json:"username"`
	OrgID      string `json:"orgId"`
	CredID     string `json:"credId"`
	PrivateKey string `json:"privateKey,omitempty"`
}

// MarshalJSON encodes the credentials with the private key as a PEM string.
func (u UserCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(userCredentialsJSON{u.UserID, u.Username, u.OrgID, u.CredID, string(u.PrivateKeyPEM)})
}

// UnmarshalJSON decodes what MarshalJSON produces.
func (u *UserCredentials) UnmarshalJSON(b []byte) error {
	var j userCredentialsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*u = UserCredentials{UserID: j.UserID, Username: j.Username, OrgID: j.OrgID, CredID: j.CredID}
	if j.PrivateKey != "" {
		u.PrivateKeyPEM = []byte(j.PrivateKey)
	}
	return nil
}

// CreateUser makes a registered CustomerEmployee user with a fresh ECDSA P-256 Key
// credential; admin=true assigns DfnsFullAdminAccess.
func (s *Server) CreateUser(email string, admin bool) (*UserCredentials, error) {
	pubPEM, privPEM, err := generateCredentialKey()
	if err != nil {
		return nil, err
	}
	creds, err := s.CreateUserWithPublicKey(email, admin, pubPEM)
	if err != nil {
		return nil, err
	}
	creds.PrivateKeyPEM = privPEM
	return creds, nil
}

// generateCredentialKey makes an ECDSA P-256 key pair: SPKI and PKCS#8 PEM.
func generateCredentialKey() ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate credential key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode credential key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode credential public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RegisterUser completes the registration of a user invited with POST /auth/users, as the
// user would by following the invitation: publicKeyPEM becomes its Key credential, or,
// without one, the key given at creation (strict "invitations" mode keeps it inactive until
// now), or else a fresh ECDSA P-256 key whose private key the answer carries. It is
// idempotent: for a registered user it answers its credential when publicKeyPEM is empty or
// already one of its keys, and a 409 *apiError for another key. Unknown users answer 404,
// archived ones 400.
func (s *Server) RegisterUser(userID string, publicKeyPEM []byte) (*UserCredentials, error) {
	var privPEM []byte
	if len(publicKeyPEM) == 0 {
		s.mu.Lock()
		u := s.st.Users[userID]
		needKey := u != nil && !u.IsRegistered && s.userCredential(userID, "") == nil
		s.mu.Unlock()
		if needKey {
			var err error
			if publicKeyPEM, privPEM, err = generateCredentialKey(); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[userID]
	if u == nil || u.IsServiceAccount {
		return nil, errNotFound("user %s not found", userID)
	}
	if u.IsArchived {
		return nil, errArchived("user", u.ID)
	}
	pemStr := ""
	if len(publicKeyPEM) > 0 {
		p, _, err := normalizePublicKeyPEM(string(publicKeyPEM))
		if err != nil {
			return nil, errBadRequest("publicKey is not a supported PEM public key: %v", err)
		}
		pemStr = p
	}
	cred := s.userCredential(u.ID, pemStr)
	switch {
	case u.IsRegistered && (cred == nil || !cred.IsActive):
		return nil, errConflict("user %s is registered already, with another key", u.ID)
	case u.IsRegistered:
	case cred != nil:
		cred.IsActive = true
	default:
		cred = s.newCredential(u.ID, "", "Key credential", pemStr, s.now())
	}
	u.IsRegistered = true
	if err := s.persistLocked(); err != nil {
		return nil, err
	}
	return &UserCredentials{UserID: u.ID, Username: u.Username, OrgID: s.st.OrgID, CredID: cred.CredID, PrivateKeyPEM: privPEM}, nil
}

// userCredential returns the user's own Key credential (not a PAT's) with the given PEM, or
// with pemStr "" its first one; active or not.
func (s *Server) userCredential(userID, pemStr string) *credRec {
	var list []*credRec
	for _, cr := range s.st.Credentials {
		if cr.UserID == userID && cr.TokenID == "" && (pemStr == "" || cr.PublicKeyPEM == pemStr) {
			list = append(list, cr)
		}
	}
	slices.SortFunc(list, func(a, b *credRec) int { return a.DateCreated.Compare(b.DateCreated) })
	if len(list) == 0 {
		return nil
	}
	return list[0]
}

// CreateUserWithPublicKey makes a registered CustomerEmployee user whose Key credential is
// the given PEM public key (Ed25519, ECDSA P-256 or RSA); admin=true assigns
// DfnsFullAdminAccess. The answer carries no private key.
func (s *Server) CreateUserWithPublicKey(email string, admin bool, publicKeyPEM []byte) (*UserCredentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkEmail(email); err != nil {
		return nil, err
	}
	if s.userByUsername(email) != nil {
		return nil, fmt.Errorf("user %s already exists", email)
	}
	pemStr, _, err := normalizePublicKeyPEM(string(publicKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("parse credential public key: %w", err)
	}
	now := s.now()
	u := s.newUser(email, email, false, now)
	u.IsRegistered = true
	cred := s.newCredential(u.ID, "", "Key credential", pemStr, now)
	if admin {
		s.assign(s.permissionByName(fullAdminPermission).ID, u.ID, now)
	}
	if err := s.persistLocked(); err != nil {
		return nil, err
	}
	return &UserCredentials{UserID: u.ID, Username: u.Username, OrgID: s.st.OrgID, CredID: cred.CredID}, nil
}

func checkEmail(email string) error {
	if err := checkLen("email", email, 3, 254); err != nil {
		return err
	}
	at := strings.Index(email, "@")
	if at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n") {
		return errBadRequest("email must be an e-mail address")
	}
	return nil
}

func (s *Server) newUser(username, name string, sa bool, now time.Time) *userRec {
	u := &userRec{
		ID: s.newID("us"), Username: username, Name: name, Kind: kindEmployee,
		IsActive: true, IsServiceAccount: sa, DateCreated: now, Seq: s.nextSeq(),
	}
	s.st.Users[u.ID] = u
	return u
}

func (s *Server) newCredential(userID, tokenID, name, pemStr string, now time.Time) *credRec {
	cr := &credRec{
		UUID: s.newID("cr"), CredID: base64.RawURLEncoding.EncodeToString([]byte(s.newID("ci"))),
		UserID: userID, TokenID: tokenID, Name: name, PublicKeyPEM: pemStr, IsActive: true, DateCreated: now,
	}
	s.addCredential(cr)
	return cr
}

// addCredential stores a new credential, and files it in credIdx when that is built: being
// the newest, it goes last.
func (s *Server) addCredential(cr *credRec) {
	s.st.Credentials[cr.CredID] = cr
	if s.credIdx != nil {
		s.credIdx[cr.UserID] = append(s.credIdx[cr.UserID], cr)
	}
}

// credentialUUID is the credentialUuid shown in userInfo: a user's first own Key credential
// (not one of its PATs'), or a service account's token credential.
func (s *Server) credentialUUID(u *userRec) string {
	for _, cr := range s.credentialsOf(u.ID) {
		if u.IsServiceAccount || cr.TokenID == "" {
			return cr.UUID
		}
	}
	return ""
}

// byOwner files records by owner, each owner's oldest first (by older).
func byOwner[R any](records map[string]*R, owner func(*R) string, older func(a, b *R) int) map[string][]*R {
	idx := map[string][]*R{}
	for _, r := range records {
		idx[owner(r)] = append(idx[owner(r)], r)
	}
	for _, list := range idx {
		slices.SortFunc(list, older)
	}
	return idx
}

// replaceState makes st the sandbox's state, dropping the indexes of the former one.
func (s *Server) replaceState(st *state) {
	s.st, s.credIdx, s.asgIdx, s.tokIdx = st, nil, nil, nil
}

// credentialsOf returns the user's credentials (its own and its tokens'), oldest first. The
// caller holds s.mu.
func (s *Server) credentialsOf(userID string) []*credRec {
	if s.credIdx == nil {
		s.credIdx = byOwner(s.st.Credentials, func(cr *credRec) string { return cr.UserID },
			func(a, b *credRec) int { return a.DateCreated.Compare(b.DateCreated) })
	}
	return s.credIdx[userID]
}

func (s *Server) userInfoJSON(u *userRec) map[string]any {
	m := map[string]any{
		"username": u.Username, "name": u.Name, "userId": u.ID, "kind": u.Kind,
		"credentialUuid": s.credentialUUID(u), "orgId": s.st.OrgID, "isActive": u.IsActive,
		"isServiceAccount": u.IsServiceAccount, "isRegistered": u.IsRegistered,
		"permissionAssignments": s.permissionAssignments(u.ID),
	}
	if !u.IsServiceAccount {
		m["isSSORequired"] = u.IsSSORequired
	}
	return m
}

// tokenJSON renders an access token; accessToken is set only in create answers, where
// strict "empty-cred-id" mode blanks credId as the docs' create examples do.
func (s *Server) tokenJSON(t *tokenRec, accessToken string) map[string]any {
	holder := t.ID
	if t.Kind == tokenKindSA {
		holder = t.UserID
	}
	m := map[string]any{
		"dateCreated": isoTime(t.DateCreated), "credId": t.CredID, "isActive": t.IsActive, "kind": t.Kind,
		"linkedUserId": t.UserID, "linkedAppId": "", "name": t.Name, "orgId": s.st.OrgID,
		"permissionAssignments": s.permissionAssignments(holder), "publicKey": t.PublicKey, "tokenId": t.ID,
	}
	if accessToken != "" {
		m["accessToken"] = accessToken
		if s.Strict().EmptyCredID {
			m["credId"] = ""
		}
	}
	return m
}

func (s *Server) serviceAccountJSON(u *userRec, accessToken string) map[string]any {
	owned := s.tokensOf(u.ID, tokenKindSA)
	tokens := make([]map[string]any, 0, len(owned))
	for _, t := range owned {
		tokens = append(tokens, s.tokenJSON(t, accessToken))
	}
	return map[string]any{"userInfo": s.userInfoJSON(u), "accessTokens": tokens}
}

func (s *Server) tokensOf(userID, kind string) []*tokenRec {
	var out []*tokenRec
	for _, t := range s.tokensByUser(userID) {
		if t.Kind == kind {
			out = append(out, t)
		}
	}
	return out
}

// requireHumanCaller enforces that only a logged-in CustomerEmployee user (not a service
// account, not a PAT) creates service accounts and PATs.
func requireHumanCaller(c *call, what string) error {
	if c.caller.token != nil || c.caller.user.IsServiceAccount || c.caller.user.Kind != kindEmployee {
		return errForbidden("%s cannot create %s: only CustomerEmployee users logged in with a credential can", c.caller.describe(), what)
	}
	return nil
}

// tokenRequest is the common body of service-account and PAT creation.
type tokenRequest struct {
	Name         *string `json:"name"`
	PublicKey    *string `json:"publicKey"`
	PermissionID *string `json:"permissionId"`
	ExternalID   *string `json:"externalId"`
	DaysValid    *int64  `json:"daysValid"`
	SecondsValid *int64  `json:"secondsValid"`
}

// validate checks the body and returns the normalized PEM, fingerprint and lifetime.
func (s *Server) validateTokenRequest(c *call, req *tokenRequest, allowSeconds bool) (string, string, time.Duration, error) {
	if err := checkName(req.Name); err != nil {
		return "", "", 0, err
	}
	if req.PublicKey == nil {
		return "", "", 0, errBadRequest("publicKey is required")
	}
	pemStr, fp, err := normalizePublicKeyPEM(*req.PublicKey)
	if err != nil {
		return "", "", 0, errBadRequest("publicKey is not a supported PEM public key: %v", err)
	}
	if req.ExternalID != nil {
		if err := checkLen("externalId", *req.ExternalID, 0, 256); err != nil {
			return "", "", 0, err
		}
	}
	ttl := time.Duration(maxDaysValid) * 24 * time.Hour
	if req.DaysValid != nil {
		if *req.DaysValid < 1 || *req.DaysValid > maxDaysValid {
			return "", "", 0, errBadRequest("daysValid must be between 1 and %d", maxDaysValid)
		}
		ttl = time.Duration(*req.DaysValid) * 24 * time.Hour
	}
	if req.SecondsValid != nil && allowSeconds {
		if *req.SecondsValid < 1 || *req.SecondsValid > maxDaysValid*24*3600 {
			return "", "", 0, errBadRequest("secondsValid must be between 1 and %d", maxDaysValid*24*3600)
		}
		ttl = time.Duration(*req.SecondsValid) * time.Second
	}
	if req.PermissionID != nil {
		if err := s.checkAssignablePermission(c, *req.PermissionID); err != nil {
			return "", "", 0, err
		}
	}
	return pemStr, fp, ttl, nil
}

// checkAssignablePermission validates permissionId on SA/PAT creation: it must exist, not be
// archived, and the caller needs Permissions:Assign (docs/dfns-api.md §11 question 2).
func (s *Server) checkAssignablePermission(c *call, id string) error {
	p := s.st.Permissions[id]
	if p == nil {
		return errNotFound("permission %s not found", id)
	}
	if p.IsArchived {
		return errBadRequest("permission %s is archived and cannot be assigned", id)
	}
	if !s.allowed(c.caller, "Permissions:Assign") {
		return errForbidden("%s is not authorized to perform operation (Permissions:Assign)", c.caller.describe())
	}
	return nil
}

func optString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ---- service accounts ----

func (s *Server) serviceAccountByName(name string) *userRec {
	for _, u := range s.st.Users {
		if u.IsServiceAccount && u.Name == name {
			return u
		}
	}
	return nil
}

// createServiceAccount creates a SA and its token. A SA created with permissionId gets that
// assignment; one created without gets no permissions at all. docs/dfns-api.md §11
// question 2 (inherit the creator's permissions, or none) is decided as "none", the newest
// web docs' reading and the safer one.
func (s *Server) createServiceAccount(c *call) (*reply, error) {
	if err := requireHumanCaller(c, "service accounts"); err != nil {
		return nil, err
	}
	var req tokenRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	pemStr, fp, ttl, err := s.validateTokenRequest(c, &req, false)
	if err != nil {
		return nil, err
	}
	if s.serviceAccountByName(*req.Name) != nil {
		return nil, errConflict("a service account named %q already exists", *req.Name)
	}
	u := s.newUser(*req.Name, *req.Name, true, c.now)
	u.IsRegistered = true
	u.ExternalID = optString(req.ExternalID)
	t := s.newToken(u.ID, tokenKindSA, *req.Name, pemStr, fp, optString(req.ExternalID), c.now, ttl)
	if req.PermissionID != nil {
		s.assign(*req.PermissionID, u.ID, c.now)
	}
	return ok(s.serviceAccountJSON(u, s.issueAuthToken(u, t, c.now, t.ExpiresAt))), nil
}

func (s *Server) newToken(userID, kind, name, pemStr, fp, externalID string, now time.Time, ttl time.Duration) *tokenRec {
	t := &tokenRec{
		ID: s.newID("to"), Kind: kind, Name: name, UserID: userID, PublicKey: fp, ExternalID: externalID,
		IsActive: true, DateCreated: now, ExpiresAt: now.Add(ttl), Seq: s.nextSeq(),
	}
	cred := s.newCredential(userID, t.ID, name, pemStr, now)
	t.CredID = cred.CredID
	s.st.Tokens[t.ID] = t
	if s.tokIdx != nil {
		s.tokIdx[userID] = append(s.tokIdx[userID], t)
	}
	return t
}

// tokensByUser returns the user's tokens, oldest first. The caller holds s.mu.
func (s *Server) tokensByUser(userID string) []*tokenRec {
	if s.tokIdx == nil {
		s.tokIdx = byOwner(s.st.Tokens, func(t *tokenRec) string { return t.UserID },
			func(a, b *tokenRec) int { return int(a.Seq - b.Seq) })
	}
	return s.tokIdx[userID]
}

func (s *Server) findServiceAccount(id string) (*userRec, error) {
	u := s.st.Users[id]
	if u == nil || !u.IsServiceAccount {
		return nil, errNotFound("service account %s not found", id)
	}
	return u, nil
}

func (s *Server) listServiceAccounts(_ *call) (*reply, error) {
	defer s.memoize()()
	var list []*userRec
	for _, u := range s.st.Users {
		if u.IsServiceAccount {
			list = append(list, u)
		}
	}
	slices.SortFunc(list, func(a, b *userRec) int { return int(a.Seq - b.Seq) })
	items := make([]map[string]any, 0, len(list))
	for _, u := range list {
		items = append(items, s.serviceAccountJSON(u, ""))
	}
	return ok(map[string]any{"items": items}), nil
}

func (s *Server) getServiceAccount(c *call) (*reply, error) {
	u, err := s.findServiceAccount(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(s.serviceAccountJSON(u, "")), nil
}

type updateIdentityRequest struct {
	Name       *string `json:"name"`
	ExternalID *string `json:"externalId"`
}

func (s *Server) updateServiceAccount(c *call) (*reply, error) {
	var req updateIdentityRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	u, err := s.findServiceAccount(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		return nil, errArchived("service account", u.ID)
	}
	if req.Name != nil {
		if err := checkName(req.Name); err != nil {
			return nil, err
		}
		if other := s.serviceAccountByName(*req.Name); other != nil && other.ID != u.ID {
			return nil, errConflict("a service account named %q already exists", *req.Name)
		}
		u.Name, u.Username = *req.Name, *req.Name
		for _, t := range s.tokensOf(u.ID, tokenKindSA) {
			t.Name = *req.Name
		}
	}
	if req.ExternalID != nil {
		u.ExternalID = *req.ExternalID
	}
	return ok(s.serviceAccountJSON(u, "")), nil
}

// forceBody is the body of a deactivation: force bypasses the policy approver check
// (DeactivateServiceAccountBody in @dfns/sdk; the user endpoint documents none).
type forceBody struct {
	Force *bool `json:"force"`
}

func (f *forceBody) force() bool { return f.Force != nil && *f.Force }

// forceQuery reports the force=true query parameter of a delete (ArchiveServiceAccountQuery).
func forceQuery(c *call) bool { return c.r.URL.Query().Get("force") == "true" }

// approverPolicies lists the active policies naming userID among an approval group's
// approvers.userId.in.
func (s *Server) approverPolicies(userID string) []string {
	var ids []string
	for _, p := range s.sortedPolicies() {
		if p.Status != policyActive {
			continue
		}
		for _, g := range p.Action.ApprovalGroups {
			if g.Approvers.UserID != nil && slices.Contains(g.Approvers.UserID.In, userID) {
				ids = append(ids, p.ID)
				break
			}
		}
	}
	return ids
}

// checkApproverForce refuses, in strict "approver-force" mode, to deactivate or delete a
// user or service account that an active policy names as an approver, unless force is set:
// 400, naming the policies in details.policyIds. The default mode ignores force.
func (s *Server) checkApproverForce(what string, u *userRec, force bool) error {
	if force || !s.Strict().ApproverForce {
		return nil
	}
	ids := s.approverPolicies(u.ID)
	if len(ids) == 0 {
		return nil
	}
	e := errBadRequest("%s %s is an approver in policy %s: set force to deactivate or delete it anyway", what, u.ID, strings.Join(ids, ", "))
	e.Details = map[string]any{"policyIds": ids}
	return e
}

func (s *Server) setServiceAccountActive(c *call, active bool) (*reply, error) {
	var req forceBody
	if err := decodeOptionalJSON(c.body, &req); err != nil {
		return nil, err
	}
	u, err := s.findServiceAccount(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		if active {
			return nil, errArchived("service account", u.ID)
		}
		return ok(s.serviceAccountJSON(u, "")), nil
	}
	if !active {
		if err := s.checkApproverForce("service account", u, req.force()); err != nil {
			return nil, err
		}
	}
	u.IsActive = active
	for _, t := range s.tokensOf(u.ID, tokenKindSA) {
		t.IsActive = active
	}
	return ok(s.serviceAccountJSON(u, "")), nil
}

func (s *Server) activateServiceAccount(c *call) (*reply, error) {
	return s.setServiceAccountActive(c, true)
}

func (s *Server) deactivateServiceAccount(c *call) (*reply, error) {
	return s.setServiceAccountActive(c, false)
}

// deleteServiceAccount removes the SA for good: GET answers 404 and its token stops working.
// In strict "archive" mode it is archived instead: still listed, inactive, name taken.
func (s *Server) deleteServiceAccount(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	u, err := s.findServiceAccount(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		return ok(s.serviceAccountJSON(u, "")), nil
	}
	if err := s.checkApproverForce("service account", u, forceQuery(c)); err != nil {
		return nil, err
	}
	if s.Strict().ArchiveKeepsListed {
		s.archiveUser(u)
		return ok(s.serviceAccountJSON(u, "")), nil
	}
	u.IsActive = false
	for _, t := range s.tokensOf(u.ID, tokenKindSA) {
		t.IsActive = false
	}
	out := s.serviceAccountJSON(u, "")
	s.removeUser(u.ID)
	return ok(out), nil
}

// errArchived answers a change to an archived identity (strict "archive" mode).
func errArchived(what, id string) error {
	return errBadRequest("%s %s is archived and cannot be changed", what, id)
}

// archiveUser is a delete in strict "archive" mode: the user or SA and its tokens (SA token,
// PATs) stay, inactive and archived, so that they are still listed and their names stay
// taken; their assignments are removed, as on a delete.
func (s *Server) archiveUser(u *userRec) {
	u.IsActive, u.IsArchived = false, true
	for _, t := range s.st.Tokens {
		if t.UserID == u.ID {
			s.archiveToken(t)
		}
	}
	s.deleteAssignmentsOf(u.ID)
}

func (s *Server) archiveToken(t *tokenRec) {
	t.IsActive, t.IsArchived = false, true
	s.deleteAssignmentsOf(t.ID)
}

// removeUser deletes a user or SA with its tokens, credentials and assignments.
func (s *Server) removeUser(id string) {
	for tid, t := range s.st.Tokens {
		if t.UserID == id {
			s.removeToken(tid)
		}
	}
	for cid, cr := range s.st.Credentials {
		if cr.UserID == id {
			delete(s.st.Credentials, cid)
			s.credIdx = nil
		}
	}
	s.deleteAssignmentsOf(id)
	delete(s.st.Users, id)
}

func (s *Server) removeToken(id string) {
	for cid, cr := range s.st.Credentials {
		if cr.TokenID == id {
			delete(s.st.Credentials, cid)
			s.credIdx = nil
		}
	}
	s.deleteAssignmentsOf(id)
	delete(s.st.Tokens, id)
	s.tokIdx = nil
}

// ---- personal access tokens ----

func (s *Server) patByName(userID, name string) *tokenRec {
	for _, t := range s.tokensOf(userID, tokenKindPat) {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// createPAT creates a PAT of the calling user. A PAT created without permissionId gets no
// permissions (same decision as for service accounts).
func (s *Server) createPAT(c *call) (*reply, error) {
	if err := requireHumanCaller(c, "personal access tokens"); err != nil {
		return nil, err
	}
	var req tokenRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	pemStr, fp, ttl, err := s.validateTokenRequest(c, &req, true)
	if err != nil {
		return nil, err
	}
	if s.patByName(c.caller.user.ID, *req.Name) != nil {
		return nil, errConflict("a personal access token named %q already exists", *req.Name)
	}
	t := s.newToken(c.caller.user.ID, tokenKindPat, *req.Name, pemStr, fp, optString(req.ExternalID), c.now, ttl)
	if req.PermissionID != nil {
		s.assign(*req.PermissionID, t.ID, c.now)
	}
	return ok(s.tokenJSON(t, s.issueAuthToken(c.caller.user, t, c.now, t.ExpiresAt))), nil
}

func (s *Server) findPAT(c *call) (*tokenRec, error) {
	id := c.param("id")
	t := s.st.Tokens[id]
	if t == nil || t.Kind != tokenKindPat || t.UserID != c.caller.user.ID {
		return nil, errNotFound("personal access token %s not found", id)
	}
	return t, nil
}

func (s *Server) listPATs(c *call) (*reply, error) {
	owned := s.tokensOf(c.caller.user.ID, tokenKindPat)
	items := make([]map[string]any, 0, len(owned))
	for _, t := range owned {
		items = append(items, s.tokenJSON(t, ""))
	}
	return ok(map[string]any{"items": items}), nil
}

func (s *Server) getPAT(c *call) (*reply, error) {
	t, err := s.findPAT(c)
	if err != nil {
		return nil, err
	}
	return ok(s.tokenJSON(t, "")), nil
}

func (s *Server) updatePAT(c *call) (*reply, error) {
	var req updateIdentityRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	t, err := s.findPAT(c)
	if err != nil {
		return nil, err
	}
	if t.IsArchived {
		return nil, errArchived("personal access token", t.ID)
	}
	if req.Name != nil {
		if err := checkName(req.Name); err != nil {
			return nil, err
		}
		if other := s.patByName(t.UserID, *req.Name); other != nil && other.ID != t.ID {
			return nil, errConflict("a personal access token named %q already exists", *req.Name)
		}
		t.Name = *req.Name
	}
	if req.ExternalID != nil {
		t.ExternalID = *req.ExternalID
	}
	return ok(s.tokenJSON(t, "")), nil
}

func (s *Server) setPATActive(c *call, active bool) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	t, err := s.findPAT(c)
	if err != nil {
		return nil, err
	}
	if t.IsArchived {
		if active {
			return nil, errArchived("personal access token", t.ID)
		}
		return ok(s.tokenJSON(t, "")), nil
	}
	t.IsActive = active
	return ok(s.tokenJSON(t, "")), nil
}

func (s *Server) activatePAT(c *call) (*reply, error)   { return s.setPATActive(c, true) }
func (s *Server) deactivatePAT(c *call) (*reply, error) { return s.setPATActive(c, false) }

// deletePAT removes the PAT for good: GET answers 404 and its token stops working. In strict
// "archive" mode it is archived instead: still listed, inactive, name taken.
func (s *Server) deletePAT(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	t, err := s.findPAT(c)
	if err != nil {
		return nil, err
	}
	if t.IsArchived {
		return ok(s.tokenJSON(t, "")), nil
	}
	if s.Strict().ArchiveKeepsListed {
		s.archiveToken(t)
		return ok(s.tokenJSON(t, "")), nil
	}
	t.IsActive = false
	out := s.tokenJSON(t, "")
	s.removeToken(t.ID)
	return ok(out), nil
}

// ---- users ----

func (s *Server) findUser(id string) (*userRec, error) {
	u := s.st.Users[id]
	if u == nil || u.IsServiceAccount {
		return nil, errNotFound("user %s not found", id)
	}
	return u, nil
}

func (s *Server) listUsers(c *call) (*reply, error) {
	defer s.memoize()()
	kind := c.r.URL.Query().Get("kind")
	if kind != "" {
		if err := checkEnum("kind", kind, kindEmployee, "EndUser"); err != nil {
			return nil, err
		}
	}
	var all []*userRec
	for _, u := range s.st.Users {
		if !u.IsServiceAccount && (kind == "" || u.Kind == kind) {
			all = append(all, u)
		}
	}
	items, next, err := paginate(c, all, func(u *userRec) int64 { return u.Seq }, 50)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, u := range items {
		out.Items = append(out.Items, s.userInfoJSON(u))
	}
	return ok(out), nil
}

type createUserRequest struct {
	Email         *string `json:"email"`
	Kind          *string `json:"kind"`
	PublicKey     *string `json:"publicKey"`
	ExternalID    *string `json:"externalId"`
	IsSSORequired *bool   `json:"isSSORequired"`
}

// createUser invites a CustomerEmployee. With publicKey the key becomes the user's Key
// credential and the user counts as registered (it can log in at once); without one the
// user stays unregistered, as after a real invitation. In strict "invitations" mode the user
// is always invited: unregistered, the key (if any) kept inactive until RegisterUser.
func (s *Server) createUser(c *call) (*reply, error) {
	if c.caller.token != nil && c.caller.token.Kind == tokenKindPat {
		return nil, errForbidden("%s cannot create users", c.caller.describe())
	}
	var req createUserRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.Email == nil || req.Kind == nil {
		return nil, errBadRequest("email and kind are required")
	}
	if err := checkEmail(*req.Email); err != nil {
		return nil, err
	}
	if err := checkEnum("kind", *req.Kind, kindEmployee); err != nil {
		return nil, err
	}
	if s.userByUsername(*req.Email) != nil {
		return nil, errConflict("a user with email %q already exists", *req.Email)
	}
	pemStr := ""
	if req.PublicKey != nil {
		p, _, err := normalizePublicKeyPEM(*req.PublicKey)
		if err != nil {
			return nil, errBadRequest("publicKey is not a supported PEM public key: %v", err)
		}
		pemStr = p
	}
	u := s.newUser(*req.Email, *req.Email, false, c.now)
	u.ExternalID = optString(req.ExternalID)
	u.IsSSORequired = req.IsSSORequired != nil && *req.IsSSORequired
	if pemStr != "" {
		cred := s.newCredential(u.ID, "", "Key credential", pemStr, c.now)
		u.IsRegistered = true
		if s.Strict().Invitations {
			cred.IsActive, u.IsRegistered = false, false
		}
	}
	return ok(s.userInfoJSON(u)), nil
}

func (s *Server) getUser(c *call) (*reply, error) {
	u, err := s.findUser(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(s.userInfoJSON(u)), nil
}

func (s *Server) updateUser(c *call) (*reply, error) {
	var req struct {
		IsSSORequired *bool `json:"isSSORequired"`
	}
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.IsSSORequired == nil {
		return nil, errBadRequest("isSSORequired is required")
	}
	u, err := s.findUser(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		return nil, errArchived("user", u.ID)
	}
	u.IsSSORequired = *req.IsSSORequired
	return ok(s.userInfoJSON(u)), nil
}

func (s *Server) setUserActive(c *call, active bool) (*reply, error) {
	var req forceBody
	if err := decodeOptionalJSON(c.body, &req); err != nil {
		return nil, err
	}
	u, err := s.findUser(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		if active {
			return nil, errArchived("user", u.ID)
		}
		return ok(s.userInfoJSON(u)), nil
	}
	if !active {
		if err := s.checkApproverForce("user", u, req.force()); err != nil {
			return nil, err
		}
	}
	u.IsActive = active
	return ok(s.userInfoJSON(u)), nil
}

func (s *Server) activateUser(c *call) (*reply, error)   { return s.setUserActive(c, true) }
func (s *Server) deactivateUser(c *call) (*reply, error) { return s.setUserActive(c, false) }

// deleteUser removes the user with its PATs and credentials; its tokens stop working. In
// strict "archive" mode it is archived instead: still listed, inactive, e-mail taken.
func (s *Server) deleteUser(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	u, err := s.findUser(c.param("id"))
	if err != nil {
		return nil, err
	}
	if u.IsArchived {
		return ok(s.userInfoJSON(u)), nil
	}
	if err := s.checkApproverForce("user", u, forceQuery(c)); err != nil {
		return nil, err
	}
	if s.Strict().ArchiveKeepsListed {
		s.archiveUser(u)
		return ok(s.userInfoJSON(u)), nil
	}
	u.IsActive = false
	out := s.userInfoJSON(u)
	s.removeUser(u.ID)
	return ok(out), nil
}
