package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// registration is what a client sends to register a Key credential; the fields are what a
// case may spoil.
type registration struct {
	kind        string
	name        string
	credID      string
	clientData  []byte
	publicKey   string
	fingerprint []byte // what the attestation signature covers
	signer      *testKey
	challengeID string
}

// newRegistration asks for a challenge as a and builds a valid registration of key, with
// clientData in the Dfns docs' sorted form (origin and crossOrigin included).
func (e *env) newRegistration(a *actor, key *testKey, credID string) *registration {
	e.t.Helper()
	out := e.mustCall(a, 200, "POST", "/auth/credentials/init", map[string]string{"kind": "Key"})
	if out["kind"] != "Key" || out["challenge"] == "" || out["user"].(map[string]any)["id"] != a.userID {
		e.t.Fatalf("credential challenge: %v", out)
	}
	cd := []byte(`{"challenge":"` + out["challenge"].(string) + `","crossOrigin":false,"origin":"https://app.dfns.ninja","type":"key.create"}`)
	pub := key.publicPEM(e.t)
	return &registration{kind: "Key", name: "second key", credID: credID, clientData: cd, publicKey: pub,
		fingerprint: fingerprintOf(e.t, cd, pub), signer: key, challengeID: out["challengeIdentifier"].(string)}
}

// fingerprintOf is the credential info fingerprint, built by hand as the docs show it.
func fingerprintOf(t testing.TB, clientData []byte, publicKey string) []byte {
	t.Helper()
	sum := sha256.Sum256(clientData)
	pk, err := json.Marshal(publicKey)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"clientDataHash":"` + hex.EncodeToString(sum[:]) + `","publicKey":` + string(pk) + `}`)
}

func (r *registration) body(t testing.TB) map[string]any {
	att := mustJSON(t, map[string]string{"publicKey": r.publicKey, "signature": hex.EncodeToString(r.signer.sign(t, r.fingerprint))})
	return map[string]any{
		"credentialKind": r.kind, "credentialName": r.name, "challengeIdentifier": r.challengeID,
		"credentialInfo": map[string]string{
			"credId": r.credID, "clientData": base64.RawURLEncoding.EncodeToString(r.clientData),
			"attestationData": base64.RawURLEncoding.EncodeToString(att),
		},
	}
}

// credentials lists a's credentials by credentialId.
func (e *env) credentials(a *actor) map[string]map[string]any {
	e.t.Helper()
	out := map[string]map[string]any{}
	for _, it := range e.mustCall(a, 200, "GET", "/auth/credentials", nil)["items"].([]any) {
		m := it.(map[string]any)
		out[m["credentialId"].(string)] = m
	}
	return out
}

// TestCredentialRotation walks what the operator does to replace its own credential: register
// a new Key credential signed by the current one, log in and sign with it, deactivate the
// old one; the last active credential cannot be deactivated.
func TestCredentialRotation(t *testing.T) {
	for _, alg := range []string{"p256", "ed25519", "rsa"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, Options{})
			creds, err := e.sb.CreateUser("bot@example.com", false) // no permission is needed
			if err != nil {
				t.Fatal(err)
			}
			old := e.login(creds, keyFromPEM(t, creds.PrivateKeyPEM), formGo)
			list := e.credentials(old)
			first := list[creds.CredID]
			if len(list) != 1 || first == nil || first["isActive"] != true || first["kind"] != "Key" ||
				!strings.HasPrefix(first["credentialUuid"].(string), "cr-") || first["dateCreated"] == "" ||
				!strings.HasPrefix(first["publicKey"].(string), "SHA256:") {
				t.Fatalf("credentials before: %v", list)
			}

			key := newTestKey(t, alg)
			reg := e.newRegistration(old, key, "bmV3LWNyZWQtaWQ")
			made := e.mustCall(old, 200, "POST", "/auth/credentials", reg.body(t))
			if made["credentialId"] != "bmV3LWNyZWQtaWQ" || made["isActive"] != true || made["name"] != "second key" ||
				made["credentialUuid"] == first["credentialUuid"] {
				t.Fatalf("created: %v", made)
			}

			next := e.login(&UserCredentials{UserID: creds.UserID, Username: creds.Username, OrgID: creds.OrgID, CredID: "bmV3LWNyZWQtaWQ"}, key, formTS)
			e.mustCall(next, 200, "PUT", "/auth/credentials/deactivate", map[string]string{"credentialUuid": first["credentialUuid"].(string)})
			list = e.credentials(next)
			if list[creds.CredID]["isActive"] != false || list["bmV3LWNyZWQtaWQ"]["isActive"] != true {
				t.Fatalf("credentials after: %v", list)
			}
			if st, body := e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": creds.Username, "orgId": creds.OrgID})); st != 200 {
				t.Fatalf("login init: %d %s", st, body)
			} else {
				var ch challengeAnswer
				_ = json.Unmarshal(body, &ch)
				if len(ch.AllowCredentials.Key) != 1 || ch.AllowCredentials.Key[0].ID != "bmV3LWNyZWQtaWQ" {
					t.Errorf("login allows %v, want the new credential only", ch.AllowCredentials.Key)
				}
				if st, _ := e.request("POST", "/auth/login", "", "", e.assertion(old, ch)); st != 401 {
					t.Errorf("login with the deactivated credential: %d, want 401", st)
				}
			}
			if _, st, _ := e.tryUserAction(old, "PUT", "/auth/credentials/activate", nil); st != 401 {
				t.Errorf("a user action signed with the deactivated credential: %d, want 401", st)
			}

			st, body := e.call(next, "PUT", "/auth/credentials/deactivate", map[string]string{"credentialUuid": made["credentialUuid"].(string)})
			if st != 400 || !strings.Contains(errMessage(t, body), "last active credential") {
				t.Fatalf("deactivating the last active credential: %d %s", st, body)
			}
			e.mustCall(next, 200, "PUT", "/auth/credentials/activate", map[string]string{"credentialUuid": first["credentialUuid"].(string)})
			e.login(creds, old.key, formGo)
		})
	}
}

// TestCredentialRegistrationRefusals: every part of a registration is checked.
func TestCredentialRegistrationRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.user("bot@example.com", true)
	other := e.user("other@example.com", true)
	otherCreds := e.credentials(other)
	cases := []struct {
		reason string
		spoil  func(r *registration)
		status int
		msg    string
	}{
		{"clientData of a signature, not a registration", func(r *registration) {
			r.clientData = []byte(strings.Replace(string(r.clientData), "key.create", "key.get", 1))
			r.fingerprint = fingerprintOf(t, r.clientData, r.publicKey)
		}, 400, `type must be "key.create"`},
		{"clientData of another challenge", func(r *registration) {
			r.clientData = []byte(`{"challenge":"Y2gtb3RoZXI","type":"key.create"}`)
			r.fingerprint = fingerprintOf(t, r.clientData, r.publicKey)
		}, 400, "challenge does not match"},
		{"attestation signed by another key", func(r *registration) { r.signer = newTestKey(t, "p256") }, 401, "attestation is invalid"},
		{"fingerprint with spaces", func(r *registration) {
			r.fingerprint = []byte(strings.Replace(string(r.fingerprint), `","publicKey":`, `", "publicKey": `, 1))
		}, 401, "attestation is invalid"},
		{"fingerprint over another clientData", func(r *registration) {
			r.fingerprint = fingerprintOf(t, []byte(`{}`), r.publicKey)
		}, 401, "attestation is invalid"},
		{"a kind the sandbox does not have", func(r *registration) { r.kind = "Fido2" }, 400, "only Key"},
		{"an unknown kind", func(r *registration) { r.kind = "Pin" }, 400, "credentialKind must be one of"},
		{"no name", func(r *registration) { r.name = "" }, 400, "credentialName"},
		{"no credId", func(r *registration) { r.credID = "" }, 400, "credId"},
		{"a credId taken", func(r *registration) { r.credID = a.credID }, 409, "already exists"},
		{"a credId another user holds", func(r *registration) {
			for id := range otherCreds {
				r.credID = id
			}
		}, 409, "already exists"},
		{"another user's challenge", func(r *registration) {
			r.challengeID = e.newRegistration(other, r.signer, "x").challengeID
		}, 400, "Challenge token is not valid"},
		{"a login challenge", func(r *registration) {
			_, body := e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": "bot@example.com", "orgId": e.sb.OrgID()}))
			r.challengeID = decode(t, body)["challengeIdentifier"].(string)
		}, 400, "Challenge token is not valid"},
	}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			r := e.newRegistration(a, newTestKey(t, "p256"), "Y3JlZC1pZC0"+string(rune('a'+i)))
			tc.spoil(r)
			st, body := e.call(a, "POST", "/auth/credentials", r.body(t))
			if st != tc.status || !strings.Contains(errMessage(t, body), tc.msg) {
				t.Fatalf("status %d %s, want %d with %q", st, body, tc.status, tc.msg)
			}
		})
	}

	t.Run("a challenge is single-use", func(t *testing.T) {
		r := e.newRegistration(a, newTestKey(t, "ed25519"), "c2luZ2xlLXVzZQ")
		e.mustCall(a, 200, "POST", "/auth/credentials", r.body(t))
		r.credID = "c2luZ2xlLXVzZS0y"
		st, body := e.call(a, "POST", "/auth/credentials", r.body(t))
		if st != 400 || !strings.Contains(errMessage(t, body), "Challenge token is not valid") {
			t.Fatalf("second use: %d %s", st, body)
		}
	})
	t.Run("the registration must be user-action signed", func(t *testing.T) {
		r := e.newRegistration(a, newTestKey(t, "p256"), "dW5zaWduZWQ")
		if st, _ := e.request("POST", "/auth/credentials", a.token, "", mustJSON(t, r.body(t))); st != 403 {
			t.Fatalf("unsigned registration: %d, want 403", st)
		}
	})
	t.Run("service-account tokens manage no credentials", func(t *testing.T) {
		pm := e.permission(a, "creds-readers", "Auth:ServiceAccounts:Read")
		sa, _ := e.serviceAccount(a, "robot", pm, "p256")
		for _, call := range []struct{ method, path string }{{"GET", "/auth/credentials"}, {"POST", "/auth/credentials/init"}} {
			var body any
			if call.method == "POST" {
				body = map[string]string{"kind": "Key"}
			}
			if st, out := e.call(sa, call.method, call.path, body); st != 403 {
				t.Errorf("%s %s as a service account: %d %s, want 403", call.method, call.path, st, out)
			}
		}
	})
	t.Run("activate and deactivate find only the caller's credentials", func(t *testing.T) {
		for _, uuid := range []string{"cr-nothere", otherCreds[other.credID]["credentialUuid"].(string)} {
			for _, op := range []string{"activate", "deactivate"} {
				if st, out := e.call(a, "PUT", "/auth/credentials/"+op, map[string]string{"credentialUuid": uuid}); st != 404 {
					t.Errorf("%s %s: %d %s, want 404", op, uuid, st, out)
				}
			}
		}
		if st, _ := e.call(a, "PUT", "/auth/credentials/deactivate", map[string]string{}); st != 400 {
			t.Errorf("deactivate without credentialUuid: %d, want 400", st)
		}
	})
}
