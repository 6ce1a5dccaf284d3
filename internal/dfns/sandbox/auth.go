package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// JWT claim names the SDKs read.
const (
	claimAppMetadata = "https://custom/app_metadata"
	claimUsername    = "https://custom/username"
)

// Purposes of the JWTs the sandbox signs; a JWT is only accepted for its own purpose.
const (
	purposeAuth        = "auth"
	purposeLoginChall  = "login-challenge"
	purposeActionChall = "action-challenge"
	purposeUserAction  = "user-action"
)

// challengeTTL bounds challenges and user-action tokens.
const challengeTTL = 5 * time.Minute

// appMetadata is the https://custom/app_metadata claim.
type appMetadata struct {
	OrgID   string `json:"orgId"`
	UserID  string `json:"userId"`
	TokenID string `json:"tokenId,omitempty"`
}

// jwtClaims is the payload of every JWT the sandbox signs (HS256 with the state's key).
type jwtClaims struct {
	Iss      string      `json:"iss"`
	Sub      string      `json:"sub"`
	Iat      int64       `json:"iat"`
	Exp      int64       `json:"exp"`
	Jti      string      `json:"jti"`
	Purpose  string      `json:"sandbox/purpose"`
	App      appMetadata `json:"https://custom/app_metadata"`
	Username string      `json:"https://custom/username,omitempty"`

	// Challenge and user-action binding.
	Challenge   string `json:"sandbox/challenge,omitempty"`
	Method      string `json:"sandbox/method,omitempty"`
	Path        string `json:"sandbox/path,omitempty"`
	PayloadHash string `json:"sandbox/payloadSha256,omitempty"`
}

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

func (s *Server) signJWT(c jwtClaims) string {
	c.Iss = "https://sandbox.dfns.local"
	payload, _ := json.Marshal(c)
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(jwtHeader)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.st.SigningKey)
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var errBadJWT = errors.New("invalid token")

// parseJWT verifies signature, purpose and expiry.
func (s *Server) parseJWT(tok, purpose string, now time.Time) (*jwtClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errBadJWT
	}
	mac := hmac.New(sha256.New, s.st.SigningKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errBadJWT
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errBadJWT
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errBadJWT
	}
	if c.Purpose != purpose || c.App.OrgID != s.st.OrgID {
		return nil, errBadJWT
	}
	if now.Unix() >= c.Exp {
		return nil, errExpired
	}
	return &c, nil
}

var errExpired = errors.New("token expired")

// caller is the authenticated identity of a request.
type caller struct {
	user  *userRec  // the user, or the service account
	token *tokenRec // the SA token or PAT, nil for a login token
}

// kind is "CustomerEmployee" (a logged-in user), "ServiceAccount" or "Pat".
func (c *caller) kind() string {
	if c.token != nil {
		return c.token.Kind
	}
	return c.user.Kind
}

// identityID is the ID permissions are assigned to: the user/SA ID, or the PAT's token ID.
func (c *caller) identityID() string {
	if c.token != nil && c.token.Kind == tokenKindPat {
		return c.token.ID
	}
	return c.user.ID
}

// principal binds challenges and user actions to the caller.
func (c *caller) principal() string {
	if c.token != nil {
		return c.token.ID
	}
	return c.user.ID
}

func (c *caller) describe() string { return c.kind() + " " + c.identityID() }

// authenticate checks the bearer token and, on every request, the state of the identity
// and token behind it, so that deactivation and deletion take effect at once.
func (s *Server) authenticate(r *http.Request, now time.Time) (*caller, error) {
	h := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(h, "Bearer ")
	if !found || tok == "" {
		return nil, errUnauthorized("user token is missing or invalid")
	}
	cl, err := s.parseJWT(strings.TrimSpace(tok), purposeAuth, now)
	if errors.Is(err, errExpired) {
		return nil, errUnauthorized("user token has expired")
	}
	if err != nil {
		return nil, errUnauthorized("user token is missing or invalid")
	}
	u := s.st.Users[cl.App.UserID]
	if u == nil {
		return nil, errUnauthorized("user token is missing or invalid")
	}
	if !u.IsActive {
		return nil, errUnauthorized("user account has been deactivated")
	}
	c := &caller{user: u}
	if cl.App.TokenID != "" {
		t := s.st.Tokens[cl.App.TokenID]
		if t == nil || t.UserID != u.ID {
			return nil, errUnauthorized("user token is missing or invalid")
		}
		if !t.IsActive {
			return nil, errUnauthorized("access token has been deactivated")
		}
		c.token = t
	}
	return c, nil
}

// issueAuthToken signs a bearer token for a user (login) or for a SA/PAT token record.
func (s *Server) issueAuthToken(u *userRec, t *tokenRec, now, exp time.Time) string {
	c := jwtClaims{
		Sub: u.ID, Iat: now.Unix(), Exp: exp.Unix(), Jti: s.newID("jt"), Purpose: purposeAuth,
		App: appMetadata{OrgID: s.st.OrgID, UserID: u.ID}, Username: u.Username,
	}
	if t != nil {
		c.Sub = t.ID
		c.App.TokenID = t.ID
	}
	return s.signJWT(c)
}

// callerCredentials lists the Key credentials the caller may sign with: a user's active
// credentials, or the one a SA/PAT was created with.
func (s *Server) callerCredentials(c *caller) []*credRec {
	var out []*credRec
	for _, cr := range s.credentialsOf(c.user.ID) {
		if !cr.IsActive {
			continue
		}
		if c.token != nil && cr.TokenID == c.token.ID {
			out = append(out, cr)
		}
		if c.token == nil && cr.TokenID == "" && cr.UserID == c.user.ID {
			out = append(out, cr)
		}
	}
	return out
}

func userCredentials(s *Server, userID string) []*credRec {
	var out []*credRec
	for _, cr := range s.credentialsOf(userID) {
		if cr.IsActive && cr.TokenID == "" {
			out = append(out, cr)
		}
	}
	return out
}

// challengeBody is the answer of /auth/action/init and /auth/login/init.
func (s *Server) challengeBody(challenge, identifier string, creds []*credRec) map[string]any {
	keys := make([]map[string]string, 0, len(creds))
	for _, cr := range creds {
		keys = append(keys, map[string]string{"type": "public-key", "id": cr.CredID})
	}
	return map[string]any{
		"challenge":           challenge,
		"challengeIdentifier": identifier,
		"supportedCredentialKinds": []map[string]any{
			{"kind": "Key", "factor": "first", "requiresSecondFactor": false},
		},
		"userVerification":          "required",
		"attestation":               "none",
		"allowCredentials":          map[string]any{"key": keys, "webauthn": []any{}},
		"externalAuthenticationUrl": "",
		"otpUrl":                    "",
	}
}

func (s *Server) newChallenge() string {
	return base64.RawURLEncoding.EncodeToString([]byte(s.newID("ch")))
}

// actionInitRequest is the body of POST /auth/action/init.
type actionInitRequest struct {
	Payload    *string `json:"userActionPayload"`
	Method     *string `json:"userActionHttpMethod"`
	Path       *string `json:"userActionHttpPath"`
	ServerKind *string `json:"userActionServerKind"`
}

func (s *Server) actionInit(c *call) (*reply, error) {
	var req actionInitRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.Payload == nil || req.Method == nil || req.Path == nil {
		return nil, errBadRequest("userActionPayload, userActionHttpMethod and userActionHttpPath are required")
	}
	if err := checkEnum("userActionHttpMethod", *req.Method, "POST", "PUT", "DELETE", "GET"); err != nil {
		return nil, err
	}
	if req.ServerKind != nil {
		if err := checkEnum("userActionServerKind", *req.ServerKind, "Api", "Staff"); err != nil {
			return nil, err
		}
	}
	path, _, _ := strings.Cut(*req.Path, "?") // the Go SDK includes the query, the TS SDK drops it
	if !strings.HasPrefix(path, "/") {
		return nil, errBadRequest("userActionHttpPath must be an absolute path")
	}
	challenge := s.newChallenge()
	id := s.signJWT(jwtClaims{
		Sub: c.caller.principal(), Iat: c.now.Unix(), Exp: c.now.Add(challengeTTL).Unix(), Jti: s.newID("jt"),
		Purpose: purposeActionChall, App: appMetadata{OrgID: s.st.OrgID, UserID: c.caller.user.ID},
		Challenge: challenge, Method: *req.Method, Path: path, PayloadHash: sha256Hex([]byte(*req.Payload)),
	})
	return ok(s.challengeBody(challenge, id, s.callerCredentials(c.caller))), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// assertionRequest is the body of POST /auth/action and POST /auth/login.
type assertionRequest struct {
	ChallengeIdentifier *string `json:"challengeIdentifier"`
	FirstFactor         *struct {
		Kind      string `json:"kind"`
		Assertion *struct {
			CredID     string `json:"credId"`
			ClientData string `json:"clientData"`
			Signature  string `json:"signature"`
			Algorithm  string `json:"algorithm"`
		} `json:"credentialAssertion"`
	} `json:"firstFactor"`
}

// checkAssertion validates the first factor against the challenge and the allowed credentials.
func (s *Server) checkAssertion(req *assertionRequest, challenge string, creds []*credRec) error {
	ff := req.FirstFactor
	if ff == nil || ff.Assertion == nil {
		return errBadRequest("firstFactor.credentialAssertion is required")
	}
	if ff.Kind != "Key" {
		return errBadRequest("firstFactor.kind must be Key (the only credential kind this sandbox supports)")
	}
	var cred *credRec
	for _, cr := range creds {
		if cr.CredID == ff.Assertion.CredID {
			cred = cr
		}
	}
	if cred == nil {
		return errUnauthorized("credential %q is not one of the caller's active credentials", ff.Assertion.CredID)
	}
	pub, err := parsePublicKeyPEM(cred.PublicKeyPEM)
	if err != nil {
		return errInternal("stored credential key is unreadable")
	}
	if err := verifyClientData(pub, ff.Assertion.ClientData, ff.Assertion.Signature, challenge); err != nil {
		return errUnauthorized("credential assertion is invalid: %v", err)
	}
	return nil
}

func (s *Server) actionSign(c *call) (*reply, error) {
	var req assertionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.ChallengeIdentifier == nil {
		return nil, errBadRequest("challengeIdentifier is required")
	}
	ch, err := s.parseJWT(*req.ChallengeIdentifier, purposeActionChall, c.now)
	if err != nil || ch.Sub != c.caller.principal() {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	if err := s.checkAssertion(&req, ch.Challenge, s.callerCredentials(c.caller)); err != nil {
		return nil, err
	}
	if _, used := s.st.Used[ch.Jti]; used {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	s.st.Used[ch.Jti] = time.Unix(ch.Exp, 0)
	ua := s.signJWT(jwtClaims{
		Sub: ch.Sub, Iat: c.now.Unix(), Exp: c.now.Add(challengeTTL).Unix(), Jti: s.newID("jt"),
		Purpose: purposeUserAction, App: ch.App, Method: ch.Method, Path: ch.Path, PayloadHash: ch.PayloadHash,
	})
	return ok(map[string]string{"userAction": ua}), nil
}

// consumeUserAction checks X-DFNS-USERACTION against the request (caller, method, path
// without query, exact body bytes) and marks it used.
func (s *Server) consumeUserAction(c *call) error {
	invalid := errForbidden("user action signature is missing or invalid")
	h := c.r.Header.Get("X-DFNS-USERACTION")
	if h == "" {
		return invalid
	}
	ua, err := s.parseJWT(h, purposeUserAction, c.now)
	if err != nil || ua.Sub != c.caller.principal() || ua.Method != c.r.Method {
		return invalid
	}
	if ua.Path != c.r.URL.Path && ua.Path != c.r.URL.EscapedPath() {
		return invalid
	}
	if subtle.ConstantTimeCompare([]byte(ua.PayloadHash), []byte(sha256Hex(c.body))) != 1 {
		return invalid
	}
	if _, used := s.st.Used[ua.Jti]; used {
		return errBadRequest("user action has already been used")
	}
	s.st.Used[ua.Jti] = time.Unix(ua.Exp, 0)
	for k, exp := range s.st.Used {
		if c.now.After(exp.Add(time.Minute)) {
			delete(s.st.Used, k)
		}
	}
	return nil
}

// loginInitRequest is the body of POST /auth/login/init.
type loginInitRequest struct {
	Username *string `json:"username"`
	OrgID    *string `json:"orgId"`
}

func (s *Server) loginInit(c *call) (*reply, error) {
	var req loginInitRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.OrgID == nil || req.Username == nil {
		return nil, errBadRequest("username and orgId are required (login codes are not supported)")
	}
	if *req.OrgID != s.st.OrgID {
		return nil, errUnauthorized("User not found")
	}
	u := s.userByUsername(*req.Username)
	if u == nil || u.IsServiceAccount {
		return nil, errUnauthorized("User not found")
	}
	if !u.IsActive {
		return nil, errBadRequest("User account has been deactivated.")
	}
	if !u.IsRegistered && s.Strict().Invitations {
		return nil, errUnauthorized("User has not completed registration")
	}
	challenge := s.newChallenge()
	id := s.signJWT(jwtClaims{
		Sub: u.ID, Iat: c.now.Unix(), Exp: c.now.Add(challengeTTL).Unix(), Jti: s.newID("jt"),
		Purpose: purposeLoginChall, App: appMetadata{OrgID: s.st.OrgID, UserID: u.ID}, Challenge: challenge,
	})
	return ok(s.challengeBody(challenge, id, userCredentials(s, u.ID))), nil
}

func (s *Server) login(c *call) (*reply, error) {
	var req assertionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.ChallengeIdentifier == nil {
		return nil, errBadRequest("challengeIdentifier is required")
	}
	ch, err := s.parseJWT(*req.ChallengeIdentifier, purposeLoginChall, c.now)
	if err != nil {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	u := s.st.Users[ch.Sub]
	if u == nil {
		return nil, errUnauthorized("User not found")
	}
	if !u.IsActive {
		return nil, errBadRequest("User account has been deactivated.")
	}
	if err := s.checkAssertion(&req, ch.Challenge, userCredentials(s, u.ID)); err != nil {
		return nil, err
	}
	if _, used := s.st.Used[ch.Jti]; used {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	s.st.Used[ch.Jti] = time.Unix(ch.Exp, 0)
	return ok(map[string]string{"token": s.issueAuthToken(u, nil, c.now, c.now.Add(s.opts.TokenTTL))}), nil
}

func (s *Server) userByUsername(name string) *userRec {
	for _, u := range s.st.Users {
		if strings.EqualFold(u.Username, name) {
			return u
		}
	}
	return nil
}
