package app

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
)

// SignChallenge makes the Key-credential assertion of docs/dfns-api.md §2.4 for a login or
// user-action challenge, with the TypeScript SDK's clientData form
// {"type":"key.get","challenge":"…"}: Ed25519 signs the clientData bytes, ECDSA (DER) and
// RSA (PKCS#1 v1.5) their SHA-256. The private key is PEM PKCS#8.
func SignChallenge(privateKeyPEM []byte, credID, challenge string) (map[string]any, error) {
	key, err := parseSigner(privateKeyPEM)
	if err != nil {
		return nil, err
	}
	clientData, _ := json.Marshal(struct { // a struct of strings always marshals
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}{"key.get", challenge})
	var sig []byte
	if _, isEd := key.(ed25519.PrivateKey); isEd {
		sig, err = key.Sign(rand.Reader, clientData, crypto.Hash(0))
	} else {
		sum := sha256.Sum256(clientData)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	if err != nil {
		return nil, errors.New("sign challenge: signing failed")
	}
	return map[string]any{
		"kind": "Key",
		"credentialAssertion": map[string]string{
			"credId":     credID,
			"clientData": base64.RawURLEncoding.EncodeToString(clientData),
			"signature":  base64.RawURLEncoding.EncodeToString(sig),
		},
	}, nil
}

// parseSigner reads a PKCS#8 PEM private key; its errors never quote the key.
func parseSigner(privateKeyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(privateKeyPEM)
	if block == nil {
		return nil, errors.New("private key: no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("private key: not a PKCS#8 key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key: unsupported key type")
	}
	return signer, nil
}

// canLogIn reports whether the bootstrap credentials log in to the sandbox, by running the
// login flow (/auth/login/init, /auth/login) against its handler in-process.
func canLogIn(h http.Handler, b *Bootstrap) error {
	var challenge struct {
		Challenge           string `json:"challenge"`
		ChallengeIdentifier string `json:"challengeIdentifier"`
	}
	initBody := map[string]string{"username": b.Username, "orgId": b.OrgID}
	if err := callHandler(h, "/auth/login/init", initBody, &challenge); err != nil {
		return err
	}
	assertion, err := SignChallenge(b.PrivateKeyPEM, b.CredID, challenge.Challenge)
	if err != nil {
		return err
	}
	var token struct {
		Token string `json:"token"`
	}
	body := map[string]any{"challengeIdentifier": challenge.ChallengeIdentifier, "firstFactor": assertion}
	if err := callHandler(h, "/auth/login", body, &token); err != nil {
		return err
	}
	if token.Token == "" {
		return errors.New("login: no token in the answer")
	}
	return nil
}

// callHandler POSTs a JSON body to h and decodes a 200 answer into out.
func callHandler(h http.Handler, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", path, err)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s: status %d", path, rec.Code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}
