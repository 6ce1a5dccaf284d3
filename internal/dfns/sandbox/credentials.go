package sandbox

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// A user's own credentials (/auth/credentials): list, a registration challenge, the
// registration of a Key credential (user-action signed by a credential the user has already),
// activation and deactivation. Only Key credentials exist in the sandbox.

// purposeCredentialChall is the purpose of a credential registration challenge.
const purposeCredentialChall = "credential-challenge"

// credentialKinds are the kinds @dfns/sdk names in CreateCredentialChallengeBody.
var credentialKinds = []string{"Fido2", "Key", "Password", "Totp", "RecoveryKey", "PasswordProtectedKey"}

// maxCredIDLen bounds a client-chosen credId (the browser signer's is 43 characters).
const maxCredIDLen = 256

// requireCredentialOwner refuses service-account tokens and PATs: a user manages its own
// credentials, logged in with one of them (newest Dfns docs: service accounts and PATs
// cannot create credential challenges).
func requireCredentialOwner(c *call) error {
	if c.caller.token != nil {
		return errForbidden("%s cannot manage credentials: only a user logged in with a credential can", c.caller.describe())
	}
	return nil
}

// credentialJSON renders a credential as @dfns/sdk's ListCredentialsResponse items.
func credentialJSON(cr *credRec) map[string]any {
	_, fp, err := normalizePublicKeyPEM(cr.PublicKeyPEM)
	if err != nil {
		fp = ""
	}
	return map[string]any{
		"kind": "Key", "credentialId": cr.CredID, "credentialUuid": cr.UUID, "dateCreated": isoTime(cr.DateCreated),
		"isActive": cr.IsActive, "name": cr.Name, "publicKey": fp, "relyingPartyId": "", "origin": "",
	}
}

// ownCredentials are the user's own Key credentials (not those of its PATs), active or not,
// oldest first.
func (s *Server) ownCredentials(userID string) []*credRec {
	var out []*credRec
	for _, cr := range s.st.Credentials {
		if cr.UserID == userID && cr.TokenID == "" {
			out = append(out, cr)
		}
	}
	slices.SortFunc(out, func(a, b *credRec) int {
		if c := a.DateCreated.Compare(b.DateCreated); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out
}

func (s *Server) listCredentials(c *call) (*reply, error) {
	if err := requireCredentialOwner(c); err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, cr := range s.ownCredentials(c.caller.user.ID) {
		items = append(items, credentialJSON(cr))
	}
	return ok(map[string]any{"items": items}), nil
}

func (s *Server) credentialInit(c *call) (*reply, error) {
	var req struct {
		Kind *string `json:"kind"`
	}
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.Kind == nil {
		return nil, errBadRequest("kind is required")
	}
	if err := checkEnum("kind", *req.Kind, credentialKinds...); err != nil {
		return nil, err
	}
	if *req.Kind != "Key" {
		return nil, errBadRequest("credential kind %s is not supported by this sandbox (only Key)", *req.Kind)
	}
	if err := requireCredentialOwner(c); err != nil {
		return nil, err
	}
	u := c.caller.user
	challenge := s.newChallenge()
	id := s.signJWT(jwtClaims{
		Sub: u.ID, Iat: c.now.Unix(), Exp: c.now.Add(challengeTTL).Unix(), Jti: s.newID("jt"),
		Purpose: purposeCredentialChall, App: appMetadata{OrgID: s.st.OrgID, UserID: u.ID}, Challenge: challenge,
	})
	return ok(map[string]any{
		"kind": "Key", "user": map[string]string{"id": u.ID, "displayName": u.Name, "name": u.Username},
		"challengeIdentifier": id, "challenge": challenge, "attestation": "none",
		"pubKeyCredParams": []map[string]any{
			{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8}, {"type": "public-key", "alg": -257},
		},
		"temporaryAuthenticationToken": id,
	}), nil
}

// createCredentialRequest is the body of POST /auth/credentials (Key credentials).
type createCredentialRequest struct {
	CredentialKind      *string `json:"credentialKind"`
	CredentialName      *string `json:"credentialName"`
	ChallengeIdentifier *string `json:"challengeIdentifier"`
	CredentialInfo      *struct {
		CredID          string `json:"credId"`
		ClientData      string `json:"clientData"`
		AttestationData string `json:"attestationData"`
	} `json:"credentialInfo"`
}

func (s *Server) createCredential(c *call) (*reply, error) {
	var req createCredentialRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.CredentialKind == nil || req.ChallengeIdentifier == nil || req.CredentialInfo == nil {
		return nil, errBadRequest("credentialKind, credentialName, challengeIdentifier and credentialInfo are required")
	}
	if err := checkEnum("credentialKind", *req.CredentialKind, credentialKinds...); err != nil {
		return nil, err
	}
	if *req.CredentialKind != "Key" {
		return nil, errBadRequest("credential kind %s is not supported by this sandbox (only Key)", *req.CredentialKind)
	}
	if req.CredentialName == nil {
		return nil, errBadRequest("credentialName is required")
	}
	if err := checkLen("credentialName", *req.CredentialName, 1, 100); err != nil {
		return nil, err
	}
	if err := requireCredentialOwner(c); err != nil {
		return nil, err
	}
	ch, err := s.parseJWT(*req.ChallengeIdentifier, purposeCredentialChall, c.now)
	if err != nil || ch.Sub != c.caller.user.ID {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	if _, used := s.st.Used[ch.Jti]; used {
		return nil, errBadRequest("Challenge token is not valid.")
	}
	info := req.CredentialInfo
	if err := checkLen("credentialInfo.credId", info.CredID, 1, maxCredIDLen); err != nil {
		return nil, err
	}
	pemStr, err := verifyKeyAttestation(info.ClientData, info.AttestationData, ch.Challenge)
	if err != nil {
		return nil, err
	}
	if s.st.Credentials[info.CredID] != nil {
		return nil, errConflict("a credential with this credId already exists")
	}
	s.st.Used[ch.Jti] = time.Unix(ch.Exp, 0)
	cr := &credRec{
		UUID: s.newID("cr"), CredID: info.CredID, UserID: c.caller.user.ID, Name: *req.CredentialName,
		PublicKeyPEM: pemStr, IsActive: true, DateCreated: c.now,
	}
	s.addCredential(cr)
	return ok(credentialJSON(cr)), nil
}

// verifyKeyAttestation checks a Key credential's registration (Dfns docs, "API objects"):
// clientData of type "key.create" carrying the challenge; attestationData {publicKey,
// signature, algorithm?} whose hex signature, by the new key, covers the compact JSON
// {"clientDataHash": hex SHA-256 of the clientData bytes, "publicKey": the PEM as sent}. It
// returns the public key as SPKI PEM.
func verifyKeyAttestation(clientDataB64, attestationB64, challenge string) (string, error) {
	clientData, err := decodeB64URL(clientDataB64)
	if err != nil {
		return "", errBadRequest("credentialInfo.clientData is not base64url")
	}
	var cd struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(clientData, &cd) != nil {
		return "", errBadRequest("credentialInfo.clientData is not a JSON object")
	}
	if cd.Type != "key.create" {
		return "", errBadRequest(`credentialInfo.clientData type must be "key.create"`)
	}
	if cd.Challenge != challenge {
		return "", errBadRequest("credentialInfo.clientData challenge does not match")
	}
	raw, err := decodeB64URL(attestationB64)
	if err != nil {
		return "", errBadRequest("credentialInfo.attestationData is not base64url")
	}
	var att struct {
		PublicKey string `json:"publicKey"`
		Signature string `json:"signature"`
		Algorithm string `json:"algorithm"`
	}
	if json.Unmarshal(raw, &att) != nil || att.PublicKey == "" || att.Signature == "" {
		return "", errBadRequest("credentialInfo.attestationData must be a JSON object with publicKey and signature")
	}
	if att.Algorithm != "" {
		if err := checkEnum("attestationData.algorithm", att.Algorithm, "RSA-SHA256", "SHA256"); err != nil {
			return "", err
		}
	}
	pub, err := parsePublicKeyPEM(att.PublicKey)
	if err != nil {
		return "", errBadRequest("attestationData.publicKey is not a supported PEM public key: %v", err)
	}
	sig, err := hex.DecodeString(att.Signature)
	if err != nil {
		return "", errBadRequest("attestationData.signature must be hex")
	}
	fingerprint, err := fingerprintJSON(clientData, att.PublicKey)
	if err != nil {
		return "", errInternal("fingerprint could not be built")
	}
	if err := verifySignature(pub, fingerprint, sig); err != nil {
		return "", errUnauthorized("credential attestation is invalid: %v", err)
	}
	pemStr, _, err := normalizePublicKeyPEM(att.PublicKey)
	if err != nil {
		return "", errBadRequest("attestationData.publicKey is not a supported PEM public key: %v", err)
	}
	return pemStr, nil
}

// fingerprintJSON is the credential info fingerprint as JSON.stringify writes it: keys
// clientDataHash then publicKey, no spaces, no HTML escaping.
func fingerprintJSON(clientData []byte, publicKey string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		ClientDataHash string `json:"clientDataHash"`
		PublicKey      string `json:"publicKey"`
	}{sha256Hex(clientData), publicKey})
	return bytes.TrimRight(buf.Bytes(), "\n"), err
}

// credentialUUIDBody is the body of the activate and deactivate calls.
type credentialUUIDBody struct {
	CredentialUUID *string `json:"credentialUuid"`
}

// ownCredential finds the caller's own credential named by the body's credentialUuid.
func (s *Server) ownCredential(c *call) (*credRec, error) {
	var req credentialUUIDBody
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.CredentialUUID == nil || *req.CredentialUUID == "" {
		return nil, errBadRequest("credentialUuid is required")
	}
	if err := requireCredentialOwner(c); err != nil {
		return nil, err
	}
	for _, cr := range s.ownCredentials(c.caller.user.ID) {
		if cr.UUID == *req.CredentialUUID {
			return cr, nil
		}
	}
	return nil, errNotFound("credential %s not found", *req.CredentialUUID)
}

func (s *Server) activateCredential(c *call) (*reply, error) {
	cr, err := s.ownCredential(c)
	if err != nil {
		return nil, err
	}
	cr.IsActive = true
	return ok(map[string]string{"message": "success"}), nil
}

func (s *Server) deactivateCredential(c *call) (*reply, error) {
	cr, err := s.ownCredential(c)
	if err != nil {
		return nil, err
	}
	if cr.IsActive && len(userCredentials(s, c.caller.user.ID)) <= 1 {
		return nil, errBadRequest("the last active credential of a user cannot be deactivated")
	}
	cr.IsActive = false
	return ok(map[string]string{"message": "success"}), nil
}

// CredentialState is one of a user's Key credentials as a test sees it.
type CredentialState struct {
	CredID   string
	UUID     string
	Name     string
	IsActive bool
}

// UserCredentials lists a user's own Key credentials (not those of its PATs), oldest first.
func (s *Server) UserCredentials(userID string) []CredentialState {
	s.mu.Lock()
	defer s.mu.Unlock()
	own := s.ownCredentials(userID)
	out := make([]CredentialState, 0, len(own))
	for _, cr := range own {
		out = append(out, CredentialState{CredID: cr.CredID, UUID: cr.UUID, Name: cr.Name, IsActive: cr.IsActive})
	}
	return out
}
