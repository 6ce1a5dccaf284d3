package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLoginAndTokenClaims(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	parts := strings.Split(admin.token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	meta, _ := claims[claimAppMetadata].(map[string]any)
	if meta["orgId"] != e.sb.OrgID() || meta["userId"] != admin.userID {
		t.Errorf("app_metadata = %v, want org %s user %s", meta, e.sb.OrgID(), admin.userID)
	}
	if claims[claimUsername] != "admin@example.com" {
		t.Errorf("username claim = %v", claims[claimUsername])
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
		t.Errorf("exp-iat = %v, want 3600 (default TokenTTL)", exp-iat)
	}
	e.mustCall(admin, 200, "GET", "/permissions", nil)
}

// TestUserActionAlgorithmsAndForms signs user actions with every supported key type and
// both SDKs' clientData forms.
func TestUserActionAlgorithmsAndForms(t *testing.T) {
	cases := []struct {
		reason string
		alg    string
		form   clientDataForm
	}{
		{"Ed25519 with the Go SDK's clientData", "ed25519", formGo},
		{"Ed25519 with the TS keysigner's clientData", "ed25519", formTS},
		{"P-256 DER signatures, Go form", "p256", formGo},
		{"P-256 DER signatures, TS form", "p256", formTS},
		{"RSA PKCS#1 v1.5, Go form", "rsa", formGo},
		{"RSA PKCS#1 v1.5, TS form", "rsa", formTS},
	}
	e := newEnv(t, Options{})
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			key := newTestKey(t, tc.alg)
			creds, err := e.sb.CreateUserWithPublicKey("u"+string(rune('a'+i))+"@example.com", true, []byte(key.publicPEM(t)))
			if err != nil {
				t.Fatal(err)
			}
			a := e.login(creds, key, tc.form)
			out := e.mustCall(a, 200, "POST", "/permissions", map[string]any{"name": "perm-" + tc.alg + string(rune('a'+i)), "operations": []string{"Permissions:Read"}})
			if !strings.HasPrefix(out["id"].(string), "pm-") {
				t.Errorf("id = %v", out["id"])
			}
			// A service account signing with the same algorithm.
			sa, _ := e.serviceAccount(a, "sa-"+tc.alg+string(rune('a'+i)), out["id"].(string), tc.alg)
			sa.form = tc.form
			e.mustCall(sa, 200, "GET", "/permissions/"+out["id"].(string), nil)
		})
	}
}

// TestSpecVectorClientData checks the verifier against docs/dfns-api.md §2.6 (Ed25519 key from
// seed 00..1f, challenge dGVzdC1jaGFsbGVuZ2U, both SDK forms).
func TestSpecVectorClientData(t *testing.T) {
	pub := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----"
	key, err := parsePublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		reason, clientData, signature, challenge string
		wantErr                                  bool
	}{
		{"Go v2 form verifies", "eyJjaGFsbGVuZ2UiOiJkR1Z6ZEMxamFHRnNiR1Z1WjJVIiwiY3Jvc3NPcmlnaW4iOmZhbHNlLCJ0eXBlIjoia2V5LmdldCJ9", "c42rWFzJc75wxVrspSDQesOR4ZTLhmRQY1rOwlwZmzbAR4OoBKHW1RzqXL2Z35AshTrMj7Mtniok1xvpIQRpBQ", "dGVzdC1jaGFsbGVuZ2U", false},
		{"TS form verifies", "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ", "ffrxy6PlCQ-oEGtvoxVVKwen9uTj50eragUBH6ef-7HeHXbBOGqZhdNTNveLZ2Je9g3LfxWUP5AkGqTRkImNCA", "dGVzdC1jaGFsbGVuZ2U", false},
		{"other challenge is rejected", "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ", "ffrxy6PlCQ-oEGtvoxVVKwen9uTj50eragUBH6ef-7HeHXbBOGqZhdNTNveLZ2Je9g3LfxWUP5AkGqTRkImNCA", "b3RoZXI", true},
		{"signature of the other form is rejected", "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ", "c42rWFzJc75wxVrspSDQesOR4ZTLhmRQY1rOwlwZmzbAR4OoBKHW1RzqXL2Z35AshTrMj7Mtniok1xvpIQRpBQ", "dGVzdC1jaGFsbGVuZ2U", true},
		{"non-base64 signature is rejected", "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ", "!!!", "dGVzdC1jaGFsbGVuZ2U", true},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			err := verifyClientData(key, tc.clientData, tc.signature, tc.challenge)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

// TestUserActionBinding shows that a user action is bound to method, path, exact payload,
// caller, and is single-use.
func TestUserActionBinding(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	other := e.user("other@example.com", true)
	payload := []byte(`{"name":"p1","operations":["Wallets:Read"]}`)
	cases := []struct {
		reason       string
		signMethod   string
		signPath     string
		signPayload  string
		sendMethod   string
		sendPath     string
		sendBody     string
		signer       *actor
		want         int
		wantContains string
	}{
		{"tampered payload", "POST", "/permissions", string(payload), "POST", "/permissions", `{"name":"p2","operations":["Wallets:Read"]}`, admin, 403, "user action signature is missing or invalid"},
		{"changed path", "POST", "/webhooks", string(payload), "POST", "/permissions", string(payload), admin, 403, "user action signature is missing or invalid"},
		{"changed method", "PUT", "/permissions", string(payload), "POST", "/permissions", string(payload), admin, 403, "user action signature is missing or invalid"},
		{"another caller's user action", "POST", "/permissions", string(payload), "POST", "/permissions", string(payload), other, 403, "user action signature is missing or invalid"},
		{"query string ignored (Go SDK signs it, TS does not)", "POST", "/permissions?x=1", string(payload), "POST", "/permissions?y=2", string(payload), admin, 200, ""},
	}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			sp := strings.Replace(tc.signPayload, "p1", "q"+string(rune('a'+i)), 1)
			body := strings.Replace(tc.sendBody, "p1", "q"+string(rune('a'+i)), 1)
			ua := e.userAction(tc.signer, tc.signMethod, tc.signPath, []byte(sp))
			st, out := e.request(tc.sendMethod, tc.sendPath, admin.token, ua, []byte(body))
			if st != tc.want {
				t.Fatalf("status %d, want %d: %s", st, tc.want, out)
			}
			if tc.wantContains != "" && !strings.Contains(errMessage(t, out), tc.wantContains) {
				t.Errorf("message %q lacks %q", errMessage(t, out), tc.wantContains)
			}
		})
	}
	t.Run("missing header", func(t *testing.T) {
		st, out := e.request("POST", "/permissions", admin.token, "", payload)
		if st != 403 || errMessage(t, out) != "user action signature is missing or invalid" {
			t.Errorf("got %d %s", st, out)
		}
	})
	t.Run("replayed user action", func(t *testing.T) {
		ua := e.userAction(admin, "POST", "/permissions", payload)
		if st, out := e.request("POST", "/permissions", admin.token, ua, payload); st != 200 {
			t.Fatalf("first use: %d %s", st, out)
		}
		st, out := e.request("POST", "/permissions", admin.token, ua, payload)
		if st != 400 || errMessage(t, out) != "user action has already been used" {
			t.Errorf("replay: %d %s", st, out)
		}
	})
	t.Run("absent body equals empty payload", func(t *testing.T) {
		key := newTestKey(t, "ed25519")
		sa := e.mustCall(admin, 200, "POST", "/auth/service-accounts", map[string]any{"name": "empty", "publicKey": key.publicPEM(t)})
		id := sa["userInfo"].(map[string]any)["userId"].(string)
		ua := e.userAction(admin, "PUT", "/auth/service-accounts/"+id+"/deactivate", nil)
		if st, out := e.request("PUT", "/auth/service-accounts/"+id+"/deactivate", admin.token, ua, nil); st != 200 {
			t.Errorf("status %d: %s", st, out)
		}
	})
}

func TestUserActionSignatureFailures(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	other := e.user("other@example.com", false)
	cases := []struct {
		reason string
		actor  *actor
		want   int
	}{
		{"wrong key for the credential", &actor{token: admin.token, credID: admin.credID, key: newTestKey(t, "p256")}, 401},
		{"credId not the caller's", &actor{token: admin.token, credID: other.credID, key: other.key}, 401},
		{"unknown credId", &actor{token: admin.token, credID: "Y2ktbm9wZQ", key: admin.key}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			_, st, out := e.tryUserAction(tc.actor, "POST", "/permissions", []byte(`{}`))
			if st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
			if strings.Contains(string(out), "BEGIN") {
				t.Errorf("error leaks key material: %s", out)
			}
		})
	}
	t.Run("challenge of another caller", func(t *testing.T) {
		init := mustJSON(t, map[string]string{"userActionHttpMethod": "POST", "userActionHttpPath": "/permissions", "userActionPayload": "{}"})
		_, body := e.request("POST", "/auth/action/init", other.token, "", init)
		var ch challengeAnswer
		_ = json.Unmarshal(body, &ch)
		st, out := e.request("POST", "/auth/action", admin.token, "", e.assertion(admin, ch))
		if st != 400 {
			t.Errorf("status %d: %s", st, out)
		}
	})
	t.Run("challenge used twice", func(t *testing.T) {
		init := mustJSON(t, map[string]string{"userActionHttpMethod": "POST", "userActionHttpPath": "/permissions", "userActionPayload": "{}"})
		_, body := e.request("POST", "/auth/action/init", admin.token, "", init)
		var ch challengeAnswer
		_ = json.Unmarshal(body, &ch)
		if st, out := e.request("POST", "/auth/action", admin.token, "", e.assertion(admin, ch)); st != 200 {
			t.Fatalf("first: %d %s", st, out)
		}
		if st, out := e.request("POST", "/auth/action", admin.token, "", e.assertion(admin, ch)); st != 400 {
			t.Errorf("second: %d %s", st, out)
		}
	})
}

func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Minute})
	admin := e.user("admin@example.com", true)
	pm := e.permission(admin, "readers", "Permissions:Read", "Auth:ServiceAccounts:Read")
	cases := []struct {
		reason string
		break_ func(sa *actor, saID string)
		want   int
	}{
		{"working token", func(*actor, string) {}, 200},
		{"deactivated service account", func(_ *actor, id string) {
			e.mustCall(admin, 200, "PUT", "/auth/service-accounts/"+id+"/deactivate", map[string]any{})
		}, 401},
		{"deleted service account", func(_ *actor, id string) {
			e.mustCall(admin, 200, "DELETE", "/auth/service-accounts/"+id, nil)
		}, 401},
		{"tampered token", func(sa *actor, _ string) { sa.token = sa.token[:len(sa.token)-2] + "xx" }, 401},
		{"no token", func(sa *actor, _ string) { sa.token = "" }, 401},
	}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			sa, out := e.serviceAccount(admin, "lifecycle-"+string(rune('a'+i)), pm, "ed25519")
			tc.break_(sa, out["userInfo"].(map[string]any)["userId"].(string))
			st, body := e.request("GET", "/permissions", sa.token, "", nil)
			if st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, body)
			}
		})
	}
	t.Run("reactivated service account works again", func(t *testing.T) {
		sa, out := e.serviceAccount(admin, "reactivated", pm, "p256")
		id := out["userInfo"].(map[string]any)["userId"].(string)
		e.mustCall(admin, 200, "PUT", "/auth/service-accounts/"+id+"/deactivate", nil)
		e.mustCall(admin, 200, "PUT", "/auth/service-accounts/"+id+"/activate", map[string]any{})
		e.mustCall(sa, 200, "GET", "/permissions", nil)
	})
	t.Run("expired login token", func(t *testing.T) {
		u := e.user("expiring@example.com", true)
		e.advance(2 * time.Minute)
		defer e.advance(-2 * time.Minute)
		st, body := e.request("GET", "/permissions", u.token, "", nil)
		if st != 401 || errMessage(t, body) != "user token has expired" {
			t.Errorf("got %d %s", st, body)
		}
	})
	t.Run("deactivated user", func(t *testing.T) {
		u := e.user("deactivated@example.com", true)
		e.mustCall(admin, 200, "PUT", "/auth/users/"+u.userID+"/deactivate", nil)
		if st, _ := e.request("GET", "/permissions", u.token, "", nil); st != 401 {
			t.Errorf("status %d, want 401", st)
		}
		creds := &UserCredentials{Username: "deactivated@example.com", OrgID: e.sb.OrgID()}
		st, body := e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": creds.Username, "orgId": creds.OrgID}))
		if st != 400 {
			t.Errorf("login of deactivated user: %d %s", st, body)
		}
	})
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t, Options{})
	creds, err := e.sb.CreateUser("admin@example.com", true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		reason string
		body   string
		want   int
	}{
		{"unknown user", `{"username":"nobody@example.com","orgId":"` + creds.OrgID + `"}`, 401},
		{"wrong org", `{"username":"admin@example.com","orgId":"or-x"}`, 401},
		{"missing orgId", `{"username":"admin@example.com"}`, 400},
		{"malformed JSON", `{"username":`, 400},
		{"wrong type", `{"username":5,"orgId":"x"}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.request("POST", "/auth/login/init", "", "", []byte(tc.body)); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		_, body := e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": creds.Username, "orgId": creds.OrgID}))
		var ch challengeAnswer
		_ = json.Unmarshal(body, &ch)
		if len(ch.AllowCredentials.Key) != 1 || ch.AllowCredentials.Key[0].ID != creds.CredID {
			t.Errorf("allowCredentials = %+v", ch.AllowCredentials)
		}
		a := &actor{credID: creds.CredID, key: newTestKey(t, "p256")}
		if st, out := e.request("POST", "/auth/login", "", "", e.assertion(a, ch)); st != 401 {
			t.Errorf("status %d: %s", st, out)
		}
	})
}

// TestErrorsNeverEchoSecrets checks that tokens, signatures and keys sent in failing
// requests do not come back in error messages.
func TestErrorsNeverEchoSecrets(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	bogusToken := admin.token[:len(admin.token)-4] + "AAAA"
	signature := base64.RawURLEncoding.EncodeToString(admin.key.sign(t, []byte("x")))
	cases := []struct {
		reason string
		method string
		path   string
		token  string
		ua     string
		body   string
		secret string
	}{
		{"tampered bearer token", "GET", "/permissions", bogusToken, "", "", bogusToken},
		{"garbage user action", "POST", "/permissions", admin.token, bogusToken, "{}", bogusToken},
		{"bad signature at /auth/action", "POST", "/auth/action", admin.token, "", `{"challengeIdentifier":"x","firstFactor":{"kind":"Key","credentialAssertion":{"credId":"c","clientData":"e30","signature":"` + signature + `"}}}`, signature},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.request(tc.method, tc.path, tc.token, tc.ua, []byte(tc.body))
			if st < 400 || strings.Contains(string(out), tc.secret) {
				t.Errorf("status %d, body %s", st, out)
			}
		})
	}
}
