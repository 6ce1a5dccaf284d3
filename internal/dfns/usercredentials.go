package dfns

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// This file holds the calls on the caller's own credentials (/auth/credentials, docs/dfns-api.md
// §3.6): what the operator needs to replace its Key credential without downtime.

// Names of the credential calls, as the official SDKs name them (the metric label).
const (
	opListCredentials           = "ListCredentials"
	opCreateCredentialChallenge = "CreateCredentialChallenge"
	opCreateCredential          = "CreateCredential"
	opActivateCredential        = "ActivateCredential"
	opDeactivateCredential      = "DeactivateCredential"
)

// Paths of the credential calls.
const (
	pathCredentials          = "/auth/credentials"
	pathCredentialsInit      = "/auth/credentials/init"
	pathCredentialActivate   = "/auth/credentials/activate"
	pathCredentialDeactivate = "/auth/credentials/deactivate"
)

// credentialChallengeRequest is the body of POST /auth/credentials/init.
type credentialChallengeRequest struct {
	Kind string `json:"kind"`
}

// credentialChallenge is the answer of POST /auth/credentials/init, the parts a Key
// credential uses.
type credentialChallenge struct {
	Kind                string `json:"kind"`
	Challenge           string `json:"challenge"`
	ChallengeIdentifier string `json:"challengeIdentifier"`
}

// createCredentialRequest is the body of POST /auth/credentials for a Key credential, fields
// in the order of @dfns/sdk's CreateCredentialBody.
type createCredentialRequest struct {
	CredentialKind      string            `json:"credentialKind"`
	CredentialInfo      keyCredentialInfo `json:"credentialInfo"`
	CredentialName      string            `json:"credentialName"`
	ChallengeIdentifier string            `json:"challengeIdentifier"`
}

// keyCredentialInfo is credentialInfo of a Key credential: all three base64url.
type keyCredentialInfo struct {
	CredID          string `json:"credId"`
	ClientData      string `json:"clientData"`
	AttestationData string `json:"attestationData"`
}

// credentialUUIDRequest is the body of the activate and deactivate calls.
type credentialUUIDRequest struct {
	CredentialUUID string `json:"credentialUuid"`
}

// credentialFingerprint is what a Key credential's registration signs: keys sorted, compact.
type credentialFingerprint struct {
	ClientDataHash string `json:"clientDataHash"`
	PublicKey      string `json:"publicKey"`
}

// keyAttestation is a Key credential's attestationData before its base64url encoding.
type keyAttestation struct {
	PublicKey string `json:"publicKey"`
	Signature string `json:"signature"`
}

// ListCredentials lists the caller's credentials (not paginated by Dfns).
func (c *Client) ListCredentials(ctx context.Context) ([]Credential, error) {
	return listOnce[Credential](ctx, c, opListCredentials, pathCredentials)
}

// CreateKeyCredential registers req as a new Key credential of the caller (see
// CredentialsAPI). The registration is signed twice: its clientData and public key by the
// new key (the attestation), and the call itself, as a user action, by the current credential.
func (c *Client) CreateKeyCredential(ctx context.Context, req NewKeyCredential) (*Credential, error) {
	if req.Name == "" || req.CredID == "" {
		return nil, errors.New("dfns CreateCredential: name and credId are required")
	}
	key, err := parsePrivateKey(normalizePEM(req.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("dfns CreateCredential: new key: %w", err)
	}
	publicKey, err := PublicKeyPEM(key.Public())
	if err != nil {
		return nil, fmt.Errorf("dfns CreateCredential: new key: %w", err)
	}
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(credentialChallengeRequest{Kind: credentialKindKey})
	if err != nil {
		return nil, fmt.Errorf("dfns %s: encode request: %w", opCreateCredentialChallenge, err)
	}
	var ch credentialChallenge
	resp, err := c.exchange(ctx, s, request{op: opCreateCredentialChallenge, method: http.MethodPost, path: pathCredentialsInit, body: body})
	if err := finish(opCreateCredentialChallenge, resp, err, &ch, callRead); err != nil {
		return nil, err
	}
	if ch.Challenge == "" || ch.ChallengeIdentifier == "" {
		return nil, fmt.Errorf("dfns %s: answer carries no challenge or challengeIdentifier", opCreateCredentialChallenge)
	}
	clientData, attestation, err := attestKey(key, publicKey, ch.Challenge)
	if err != nil {
		return nil, fmt.Errorf("dfns %s: %w", opCreateCredential, err)
	}
	create := createCredentialRequest{
		CredentialKind: credentialKindKey,
		CredentialInfo: keyCredentialInfo{
			CredID:          req.CredID,
			ClientData:      base64.RawURLEncoding.EncodeToString(clientData),
			AttestationData: base64.RawURLEncoding.EncodeToString(attestation),
		},
		CredentialName:      req.Name,
		ChallengeIdentifier: ch.ChallengeIdentifier,
	}
	var out Credential
	err = c.change(ctx, opCreateCredential, http.MethodPost, pathCredentials, create, &out)
	return orNil(&out, err)
}

// attestKey builds a Key credential's registration (Dfns docs, "API objects"): clientData
// {challenge, crossOrigin, type "key.create"}; the fingerprint {"clientDataHash": hex SHA-256
// of clientData, "publicKey": PEM}, compact with keys sorted; attestationData {"publicKey",
// "signature": hex of the fingerprint signed by the new key}.
func attestKey(key crypto.Signer, publicKeyPEM, challenge string) (clientData, attestation []byte, err error) {
	clientData = clientDataOf("key.create", challenge)
	sum := sha256.Sum256(clientData)
	fingerprint, err := compactJSON(credentialFingerprint{ClientDataHash: hex.EncodeToString(sum[:]), PublicKey: publicKeyPEM})
	if err != nil {
		return nil, nil, err
	}
	sig, err := signMessage(key, fingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the new credential: %w", err)
	}
	attestation, err = compactJSON(keyAttestation{PublicKey: publicKeyPEM, Signature: hex.EncodeToString(sig)})
	if err != nil {
		return nil, nil, err
	}
	return clientData, attestation, nil
}

// compactJSON encodes v as JavaScript's JSON.stringify does for plain strings: no spaces, and
// no HTML escaping (which encoding/json does by default), so that Dfns rebuilds the same bytes.
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// ActivateCredential activates one of the caller's credentials.
func (c *Client) ActivateCredential(ctx context.Context, credentialUUID string) error {
	return c.change(ctx, opActivateCredential, http.MethodPut, pathCredentialActivate,
		credentialUUIDRequest{CredentialUUID: credentialUUID}, nil)
}

// DeactivateCredential deactivates one of the caller's credentials.
func (c *Client) DeactivateCredential(ctx context.Context, credentialUUID string) error {
	return c.change(ctx, opDeactivateCredential, http.MethodPut, pathCredentialDeactivate,
		credentialUUIDRequest{CredentialUUID: credentialUUID}, nil)
}

// ConfirmSigning logs in when the session has no token yet, then has Dfns issue a user action
// for activating credentialUUID, signed by the current credential; the action is never sent,
// so nothing changes (Dfns lets an unused user action expire).
func (c *Client) ConfirmSigning(ctx context.Context, credentialUUID string) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	if _, err := c.bearer(ctx, s, false); err != nil {
		return err
	}
	body, err := json.Marshal(credentialUUIDRequest{CredentialUUID: credentialUUID})
	if err != nil {
		return fmt.Errorf("dfns %s: encode request: %w", opActivateCredential, err)
	}
	_, err = c.userAction(ctx, s, request{op: opActivateCredential, method: http.MethodPut, path: pathCredentialActivate, body: body})
	return err
}
