//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestCreateKeyCredential checks the registration on the wire: the challenge asked for a Key
// credential, clientData of type key.create with that challenge, an attestation whose hex
// signature by the new key covers the fingerprint as the Dfns docs build it, and the call
// signed as a user action by the current credential.
func TestCreateKeyCredential(t *testing.T) {
	for _, alg := range []KeyAlgorithm{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			current := newTestKey(t, KeyECDSAP256)
			next := newTestKey(t, alg)
			nextPub, err := PublicKeyPEM(next.signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			f := newFakeDfns(t, current.signer.Public(), false)
			const challenge = "Y2gtY3JlZA<&>"
			f.route("POST /auth/credentials/init", func(w http.ResponseWriter, r *http.Request) {
				var in map[string]any
				if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in) != 1 || in["kind"] != "Key" {
					dfnsError(w, http.StatusBadRequest, "want {kind: Key}")
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"kind": "Key", "challenge": challenge, "challengeIdentifier": "chid-cred",
					"user": map[string]string{"id": "us-1"}, "attestation": "none", "temporaryAuthenticationToken": "chid-cred"})
			})
			f.route("POST /auth/credentials", func(w http.ResponseWriter, r *http.Request) {
				if err := checkKeyRegistration(r, challenge, nextPub, next); err != nil {
					dfnsError(w, http.StatusBadRequest, err.Error())
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"kind": "Key", "credentialId": "bmV3", "credentialUuid": "cr-2",
					"dateCreated": "2026-01-02T03:04:05.000Z", "isActive": true, "name": "rotated"})
			})
			c := loginClient(t, f, current)
			got, err := c.CreateKeyCredential(context.Background(), NewKeyCredential{Name: "rotated", CredID: "bmV3", PrivateKeyPEM: next.pem})
			if err != nil {
				t.Fatalf("CreateKeyCredential: %v", err)
			}
			if got.CredentialUUID != "cr-2" || got.CredentialID != "bmV3" || !got.IsActive {
				t.Errorf("answer decoded wrongly: %+v", got)
			}
			if n := f.hitCount("POST /auth/action"); n != 1 {
				t.Errorf("user actions signed: %d, want 1 (the registration itself)", n)
			}
		})
	}
}

// checkKeyRegistration verifies a Key registration independently of the client's code.
func checkKeyRegistration(r *http.Request, challenge, publicKey string, key testKey) error {
	var in struct {
		CredentialKind      string `json:"credentialKind"`
		CredentialName      string `json:"credentialName"`
		ChallengeIdentifier string `json:"challengeIdentifier"`
		CredentialInfo      struct {
			CredID          string `json:"credId"`
			ClientData      string `json:"clientData"`
			AttestationData string `json:"attestationData"`
		} `json:"credentialInfo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return err
	}
	if in.CredentialKind != "Key" || in.CredentialName != "rotated" || in.ChallengeIdentifier != "chid-cred" || in.CredentialInfo.CredID != "bmV3" {
		return fmt.Errorf("fields: %+v", in)
	}
	cd, err := base64.RawURLEncoding.DecodeString(in.CredentialInfo.ClientData)
	if err != nil {
		return fmt.Errorf("clientData is not unpadded base64url")
	}
	var data struct{ Type, Challenge string }
	if json.Unmarshal(cd, &data) != nil || data.Type != "key.create" || data.Challenge != challenge {
		return fmt.Errorf("clientData %s", cd)
	}
	raw, err := base64.RawURLEncoding.DecodeString(in.CredentialInfo.AttestationData)
	if err != nil {
		return fmt.Errorf("attestationData is not unpadded base64url")
	}
	var att struct{ PublicKey, Signature string }
	if err := json.Unmarshal(raw, &att); err != nil || att.PublicKey != publicKey {
		return fmt.Errorf("attestation %s", raw)
	}
	sum := sha256.Sum256(cd)
	pk, _ := json.Marshal(publicKey) // no <, > or & in a PEM, so no HTML escaping differs
	fingerprint := `{"clientDataHash":"` + hex.EncodeToString(sum[:]) + `","publicKey":` + string(pk) + `}`
	sig, err := hex.DecodeString(att.Signature)
	if err != nil || !verifyMessage(key.signer.Public(), []byte(fingerprint), sig) {
		return fmt.Errorf("the attestation signature does not cover %s", fingerprint)
	}
	return nil
}

// TestConfirmSigning has a user action signed and never sends the call it is for.
func TestConfirmSigning(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	c := loginClient(t, f, key)
	if err := c.ConfirmSigning(context.Background(), "cr-2"); err != nil {
		t.Fatalf("ConfirmSigning: %v", err)
	}
	f.mu.Lock()
	logins, inits := f.logins, f.initBodies
	f.mu.Unlock()
	if logins != 1 || f.hitCount("POST /auth/action") != 1 || f.hitCount("PUT /auth/credentials/activate") != 0 {
		t.Errorf("logins %d, actions %d, activations sent %d; want 1, 1, 0", logins, f.hitCount("POST /auth/action"),
			f.hitCount("PUT /auth/credentials/activate"))
	}
	if len(inits) != 1 || !strings.Contains(string(inits[0]), `"userActionPayload":"{\"credentialUuid\":\"cr-2\"}"`) {
		t.Errorf("user action asked for: %s", inits)
	}

	other := newTestKey(t, KeyEd25519)
	bad := loginClient(t, f, other)
	if err := bad.ConfirmSigning(context.Background(), "cr-2"); err == nil {
		t.Error("ConfirmSigning with a key Dfns does not know succeeded")
	}
}

// TestNewKeyCredentialHidesKey: printing the request shows no key.
func TestNewKeyCredentialHidesKey(t *testing.T) {
	key := newTestKey(t, KeyECDSAP256)
	req := NewKeyCredential{Name: "n", CredID: "c", PrivateKeyPEM: key.pem}
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req)} {
		if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, string(key.pem[40:80])) {
			t.Errorf("printed request shows the key: %s", s)
		}
	}
}

// TestKeyAlgorithmOf names the algorithm of every key GenerateKey makes.
func TestKeyAlgorithmOf(t *testing.T) {
	for _, alg := range []KeyAlgorithm{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		k := newTestKey(t, alg)
		if got, err := KeyAlgorithmOf(k.pem); err != nil || got != alg {
			t.Errorf("KeyAlgorithmOf(%s key) = %s, %v", alg, got, err)
		}
	}
	if _, err := KeyAlgorithmOf([]byte("not a key")); err == nil {
		t.Error("KeyAlgorithmOf accepted garbage")
	}
	id, err := GenerateCredID()
	if err != nil || len(id) != 43 || strings.ContainsAny(id, "+/=") {
		t.Errorf("GenerateCredID = %q, %v", id, err)
	}
}
