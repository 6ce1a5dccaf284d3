package sandbox

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
)

func TestCallerKindRules(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	all := e.sb.permissionByNameForTest(fullAdminPermission)
	sa, _ := e.serviceAccount(admin, "powerful-sa", all, "ed25519")
	patKey := newTestKey(t, "p256")
	pat := e.mustCall(admin, 200, "POST", "/auth/pats", map[string]any{"name": "admin-pat", "publicKey": patKey.publicPEM(t), "permissionId": all})
	patActor := &actor{token: pat["accessToken"].(string), credID: pat["credId"].(string), key: patKey}
	cases := []struct {
		reason string
		caller *actor
		path   string
		want   int
	}{
		{"CE user creates a service account", admin, "/auth/service-accounts", 200},
		{"service account cannot create a service account", sa, "/auth/service-accounts", 403},
		{"PAT cannot create a service account", patActor, "/auth/service-accounts", 403},
		{"CE user creates a PAT", admin, "/auth/pats", 200},
		{"service account cannot create a PAT", sa, "/auth/pats", 403},
		{"PAT cannot create a PAT", patActor, "/auth/pats", 403},
	}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			key := newTestKey(t, "ed25519")
			st, out := e.call(tc.caller, "POST", tc.path, map[string]any{"name": "kind-" + string(rune('a'+i)), "publicKey": key.publicPEM(t)})
			if st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	t.Run("service account may create users and permissions", func(t *testing.T) {
		e.mustCall(sa, 200, "POST", "/auth/users", map[string]any{"email": "new@example.com", "kind": "CustomerEmployee"})
		e.mustCall(sa, 200, "POST", "/permissions", map[string]any{"name": "by-sa", "operations": []string{"Wallets:Read"}})
	})
	t.Run("PAT cannot create users", func(t *testing.T) {
		e.mustCall(patActor, 403, "POST", "/auth/users", map[string]any{"email": "new2@example.com", "kind": "CustomerEmployee"})
	})
}

// permissionByNameForTest is a locked lookup for tests.
func (s *Server) permissionByNameForTest(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.permissionByName(name).ID
}

func TestServiceAccountLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	key := newTestKey(t, "ed25519")
	pm := e.permission(admin, "sa-perm", "Wallets:Read")
	out := e.mustCall(admin, 200, "POST", "/auth/service-accounts", map[string]any{
		"name": "ci", "publicKey": key.publicPEM(t), "permissionId": pm, "externalId": "uid-1", "daysValid": 30,
	})
	info := out["userInfo"].(map[string]any)
	tok := out["accessTokens"].([]any)[0].(map[string]any)
	id := info["userId"].(string)
	checks := []struct {
		reason string
		ok     bool
	}{
		{"userId is a us- id", strings.HasPrefix(id, "us-") && len(id) == len("us-xxxxx-xxxxx-xxxxxxxxxxxxxxxx")},
		{"isServiceAccount", info["isServiceAccount"] == true},
		{"kind CustomerEmployee", info["kind"] == "CustomerEmployee"},
		{"accessToken in create answer", tok["accessToken"] != nil},
		{"token kind ServiceAccount", tok["kind"] == "ServiceAccount"},
		{"credId is base64url of ci-", strings.HasPrefix(mustB64(t, tok["credId"].(string)), "ci-")},
		{"publicKey is a fingerprint", strings.HasPrefix(tok["publicKey"].(string), "SHA256:")},
		{"no externalId in the answer", info["externalId"] == nil && tok["externalId"] == nil},
		{"assignment of permissionId", len(info["permissionAssignments"].([]any)) == 1},
		{"dateCreated has milliseconds", strings.HasSuffix(tok["dateCreated"].(string), ".000Z")},
		{"credentialUuid is the token credential", strings.HasPrefix(info["credentialUuid"].(string), "cr-")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: %v", c.reason, out)
		}
	}
	got := e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+id, nil)
	if got["accessTokens"].([]any)[0].(map[string]any)["accessToken"] != nil {
		t.Error("GET shows the access token")
	}
	list := e.mustCall(admin, 200, "GET", "/auth/service-accounts", nil)
	if n := len(list["items"].([]any)); n != 1 {
		t.Errorf("list has %d items", n)
	}
	e.mustCall(admin, 409, "POST", "/auth/service-accounts", map[string]any{"name": "ci", "publicKey": key.publicPEM(t)})
	upd := e.mustCall(admin, 200, "PUT", "/auth/service-accounts/"+id, map[string]any{"name": "ci-renamed"})
	if upd["userInfo"].(map[string]any)["name"] != "ci-renamed" {
		t.Errorf("update: %v", upd)
	}
	del := e.mustCall(admin, 200, "DELETE", "/auth/service-accounts/"+id+"?force=true", nil)
	if del["userInfo"].(map[string]any)["isActive"] != false {
		t.Errorf("delete answer: %v", del)
	}
	e.mustCall(admin, 404, "GET", "/auth/service-accounts/"+id, nil)
	// The name is free again once the SA is deleted.
	e.mustCall(admin, 200, "POST", "/auth/service-accounts", map[string]any{"name": "ci-renamed", "publicKey": key.publicPEM(t)})
}

func mustB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServiceAccountValidation(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	pub := newTestKey(t, "ed25519").publicPEM(t)
	rsaKey := newTestKey(t, "rsa")
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaKey.priv.Public().(*rsa.PublicKey))}))
	cases := []struct {
		reason string
		body   any
		want   int
	}{
		{"empty name", map[string]any{"name": "", "publicKey": pub}, 400},
		{"name of 101 characters", map[string]any{"name": strings.Repeat("n", 101), "publicKey": pub}, 400},
		{"name of 100 characters", map[string]any{"name": strings.Repeat("n", 100), "publicKey": pub}, 200},
		{"missing publicKey", map[string]any{"name": "a"}, 400},
		{"garbage publicKey", map[string]any{"name": "b", "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, 400},
		{"PKCS#1 RSA public key", map[string]any{"name": "c", "publicKey": pkcs1}, 200},
		{"escaped newlines in PEM", map[string]any{"name": "d", "publicKey": strings.ReplaceAll(pub, "\n", `\n`)}, 200},
		{"daysValid 0", map[string]any{"name": "e", "publicKey": pub, "daysValid": 0}, 400},
		{"daysValid 731", map[string]any{"name": "f", "publicKey": pub, "daysValid": 731}, 400},
		{"daysValid 730", map[string]any{"name": "g", "publicKey": pub, "daysValid": 730}, 200},
		{"daysValid is a string", map[string]any{"name": "h", "publicKey": pub, "daysValid": "7"}, 400},
		{"unknown permissionId", map[string]any{"name": "i", "publicKey": pub, "permissionId": "pm-nope"}, 404},
		{"body is an array", []any{1}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.call(admin, "POST", "/auth/service-accounts", tc.body)
			if st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
}

func TestPersonalAccessTokens(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	other := e.user("other@example.com", true)
	key := newTestKey(t, "rsa")
	pat := e.mustCall(admin, 200, "POST", "/auth/pats", map[string]any{"name": "laptop", "publicKey": key.publicPEM(t), "secondsValid": 3600})
	id := pat["tokenId"].(string)
	if !strings.HasPrefix(id, "to-") || pat["kind"] != "Pat" || pat["accessToken"] == nil || pat["linkedUserId"] != admin.userID {
		t.Fatalf("create answer: %v", pat)
	}
	patActor := &actor{token: pat["accessToken"].(string), credID: pat["credId"].(string), key: key}
	cases := []struct {
		reason string
		caller *actor
		method string
		path   string
		body   any
		want   int
	}{
		{"owner gets it", admin, "GET", "/auth/pats/" + id, nil, 200},
		{"another user cannot see it", other, "GET", "/auth/pats/" + id, nil, 404},
		{"duplicate name for the same user", admin, "POST", "/auth/pats", map[string]any{"name": "laptop", "publicKey": key.publicPEM(t)}, 409},
		{"same name for another user", other, "POST", "/auth/pats", map[string]any{"name": "laptop", "publicKey": key.publicPEM(t)}, 200},
		{"PAT without permissions cannot read permissions", patActor, "GET", "/permissions", nil, 403},
		{"PAT lists its owner's PATs", patActor, "GET", "/auth/pats", nil, 200},
		{"update name", admin, "PUT", "/auth/pats/" + id, map[string]any{"name": "laptop2", "externalId": "x"}, 200},
		{"deactivate", admin, "PUT", "/auth/pats/" + id + "/deactivate", map[string]any{}, 200},
		{"deactivated PAT is refused", patActor, "GET", "/auth/pats", nil, 401},
		{"activate", admin, "PUT", "/auth/pats/" + id + "/activate", nil, 200},
		{"secondsValid 0", admin, "POST", "/auth/pats", map[string]any{"name": "z", "publicKey": key.publicPEM(t), "secondsValid": 0}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.call(tc.caller, tc.method, tc.path, tc.body)
			if st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
			if st == 200 && tc.method != "POST" && strings.Contains(string(out), "accessToken") {
				t.Errorf("answer shows the access token: %s", out)
			}
		})
	}
	t.Run("PAT never exceeds its user", func(t *testing.T) {
		limited := e.user("limited@example.com", false)
		pm := e.permission(admin, "pat-create", "Auth:Pats:Create")
		e.mustCall(admin, 200, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": limited.userID})
		k := newTestKey(t, "p256")
		p := e.mustCall(limited, 200, "POST", "/auth/pats", map[string]any{"name": "p", "publicKey": k.publicPEM(t)})
		readPerm := e.permission(admin, "reader", "Permissions:Read")
		e.mustCall(admin, 200, "POST", "/permissions/"+readPerm+"/assignments", map[string]any{"identityId": p["tokenId"]})
		pa := &actor{token: p["accessToken"].(string), credID: p["credId"].(string), key: k}
		st, out := e.call(pa, "GET", "/permissions", nil)
		if st != 403 || !strings.Contains(errMessage(t, out), "Pat "+p["tokenId"].(string)) {
			t.Errorf("got %d %s", st, out)
		}
	})
	t.Run("delete", func(t *testing.T) {
		e.mustCall(admin, 200, "DELETE", "/auth/pats/"+id, map[string]any{})
		e.mustCall(admin, 404, "GET", "/auth/pats/"+id, nil)
		if st, _ := e.request("GET", "/auth/pats", patActor.token, "", nil); st != 401 {
			t.Errorf("deleted PAT still works: %d", st)
		}
	})
}

func TestUsers(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	key := newTestKey(t, "ed25519")
	cases := []struct {
		reason string
		body   any
		want   int
	}{
		{"create with publicKey", map[string]any{"email": "alice@example.com", "kind": "CustomerEmployee", "publicKey": key.publicPEM(t)}, 200},
		{"create invited", map[string]any{"email": "bob@example.com", "kind": "CustomerEmployee", "externalId": "b"}, 200},
		{"duplicate email", map[string]any{"email": "bob@example.com", "kind": "CustomerEmployee"}, 409},
		{"EndUser kind not allowed", map[string]any{"email": "c@example.com", "kind": "EndUser"}, 400},
		{"bad email", map[string]any{"email": "nope", "kind": "CustomerEmployee"}, 400},
		{"missing kind", map[string]any{"email": "d@example.com"}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.call(admin, "POST", "/auth/users", tc.body); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	list := e.mustCall(admin, 200, "GET", "/auth/users?limit=2", nil)
	items := list["items"].([]any)
	if len(items) != 2 || list["nextPageToken"] == nil {
		t.Fatalf("page 1: %v", list)
	}
	list2 := e.mustCall(admin, 200, "GET", "/auth/users?limit=2&paginationToken="+list["nextPageToken"].(string), nil)
	if n := len(list2["items"].([]any)); n != 1 || list2["nextPageToken"] != nil {
		t.Fatalf("page 2: %v", list2)
	}
	bob := list2["items"].([]any)[0].(map[string]any)
	id := bob["userId"].(string)
	if bob["isRegistered"] != false || bob["isSSORequired"] != false {
		t.Errorf("bob: %v", bob)
	}
	e.mustCall(admin, 200, "PUT", "/auth/users/"+id, map[string]any{"isSSORequired": true})
	e.mustCall(admin, 400, "PUT", "/auth/users/"+id, map[string]any{})
	e.mustCall(admin, 200, "PUT", "/auth/users/"+id+"/deactivate", nil)
	e.mustCall(admin, 200, "PUT", "/auth/users/"+id+"/activate", nil)
	got := e.mustCall(admin, 200, "GET", "/auth/users/"+id, nil)
	if got["isSSORequired"] != true || got["isActive"] != true {
		t.Errorf("get: %v", got)
	}
	e.mustCall(admin, 200, "DELETE", "/auth/users/"+id, nil)
	e.mustCall(admin, 404, "GET", "/auth/users/"+id, nil)
	e.mustCall(admin, 400, "GET", "/auth/users?kind=Robot", nil)
	// Alice was created with a public key: she can log in.
	alice := e.sb.userByUsernameForTest("alice@example.com")
	e.login(alice, key, formTS)
}

func (s *Server) userByUsernameForTest(name string) *UserCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByUsername(name)
	return &UserCredentials{UserID: u.ID, Username: u.Username, OrgID: s.st.OrgID, CredID: userCredentials(s, u.ID)[0].CredID}
}
