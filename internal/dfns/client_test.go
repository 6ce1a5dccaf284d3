//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func saJSON() map[string]any {
	const id = "us-1"
	return map[string]any{
		"userInfo":     map[string]any{"userId": id, "name": "sa", "isActive": true, "isServiceAccount": true},
		"accessTokens": []map[string]any{{"tokenId": "to-1", "credId": "Y2kt", "accessToken": "SA-TOKEN-SECRET", "isActive": true}},
	}
}

func TestUserActionWireFormat(t *testing.T) {
	key := newTestKey(t, KeyECDSAP256)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("POST /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	f.route("PUT /auth/service-accounts/us-1/activate", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	f.route("PUT /auth/service-accounts/us-1/deactivate", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	f.route("DELETE /things/x", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	c := tokenClient(t, f, key)
	ctx := context.Background()

	cases := []struct {
		reason      string
		call        func() error
		wantInit    string
		wantBody    string
		contentType bool
	}{{
		reason: "create: payload is the exact body, Go escaping of <>& kept",
		call: func() error {
			sa, err := c.CreateServiceAccount(ctx, CreateServiceAccountRequest{Name: "a<b>&c", PublicKey: "PEM", ExternalID: "uid-1"})
			if err == nil && sa.AccessTokens[0].Token != "SA-TOKEN-SECRET" {
				t.Errorf("token not decoded: %+v", sa)
			}
			return err
		},
		wantBody:    `{"name":"a\u003cb\u003e\u0026c","publicKey":"PEM","externalId":"uid-1"}`,
		wantInit:    `{"userActionHttpMethod":"POST","userActionHttpPath":"/auth/service-accounts","userActionPayload":"{\"name\":\"a\\u003cb\\u003e\\u0026c\",\"publicKey\":\"PEM\",\"externalId\":\"uid-1\"}","userActionServerKind":"Api"}`,
		contentType: true,
	}, {
		reason:   "activate: no body, payload empty (docs/dfns-api.md §2.2 example)",
		call:     func() error { _, err := c.ActivateServiceAccount(ctx, "us-1"); return err },
		wantBody: "",
		wantInit: `{"userActionHttpMethod":"PUT","userActionHttpPath":"/auth/service-accounts/us-1/activate","userActionPayload":"","userActionServerKind":"Api"}`,
	}, {
		reason:      "deactivate: body {} like the Go SDK",
		call:        func() error { _, err := c.DeactivateServiceAccount(ctx, "us-1"); return err },
		wantBody:    `{}`,
		wantInit:    `{"userActionHttpMethod":"PUT","userActionHttpPath":"/auth/service-accounts/us-1/deactivate","userActionPayload":"{}","userActionServerKind":"Api"}`,
		contentType: true,
	}, {
		reason: "the signed path keeps the query string, like the Go SDK",
		call: func() error {
			return c.change(ctx, "DeleteThing", http.MethodDelete, "/things/x?force=true", nil, nil)
		},
		wantBody: "",
		wantInit: `{"userActionHttpMethod":"DELETE","userActionHttpPath":"/things/x?force=true","userActionPayload":"","userActionServerKind":"Api"}`,
	}}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			var gotCT string
			var once sync.Once
			f.mu.Lock()
			for k, h := range f.routes {
				f.routes[k] = func(w http.ResponseWriter, r *http.Request) {
					once.Do(func() { gotCT = r.Header.Get("Content-Type") })
					h(w, r)
				}
			}
			f.mu.Unlock()
			if err := tc.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if got := string(f.initBodies[i]); got != tc.wantInit {
				t.Errorf("init body\n got %s\nwant %s", got, tc.wantInit)
			}
			if got := string(f.seenBodies[i]); got != tc.wantBody {
				t.Errorf("body = %s, want %s", got, tc.wantBody)
			}
			if f.seenUA[i] == "" {
				t.Error("X-DFNS-USERACTION missing")
			}
			if (gotCT == "application/json") != tc.contentType {
				t.Errorf("Content-Type = %q, want JSON only with a body", gotCT)
			}
		})
	}
	if n := len(f.userAct); n != 0 {
		t.Errorf("%d user-action tokens left unused", n)
	}
}

func TestUserActionRefusedCredential(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.allowCreds = []string{"another-credential"}
	c := tokenClient(t, f, key)
	_, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p", Operations: []string{"Auth:Logs:Read"}})
	if err == nil || !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "not among the credentials") {
		t.Fatalf("err = %v, want a credentials error", err)
	}
	if n := f.hitCount("POST /auth/action"); n != 0 {
		t.Errorf("/auth/action called %d times, want 0", n)
	}
}

func TestTokenModeWithoutKeyCannotSign(t *testing.T) {
	f := newFakeDfns(t, nil, false)
	creds := Credentials{APIURL: f.srv.URL, AuthToken: f.issueToken(time.Hour)}
	c := newTestClient(t, NewStaticCredentials(creds))
	err := c.DeleteWebhook(context.Background(), "wh-1")
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "needs a user-action signature") {
		t.Fatalf("err = %v", err)
	}
	can, err := c.CanCreateIdentities(context.Background())
	if err != nil || can {
		t.Errorf("CanCreateIdentities = %t, %v; want false in token mode", can, err)
	}
	url, org, err := c.Endpoint(context.Background())
	if err != nil || url != f.srv.URL || org != testOrg {
		t.Errorf("Endpoint = %s %s %v", url, org, err)
	}
}

func TestLogin(t *testing.T) {
	key := newTestKey(t, KeyRSA2048)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"id": "wh-1"}) })
	f.route("DELETE /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"deleted": true}) })
	now := time.Unix(1_800_000_000, 0)
	f.now = func() time.Time { return now }
	c := loginClient(t, f, key, func(o *Options) { o.Now = func() time.Time { return now } })
	ctx := context.Background()

	can, err := c.CanCreateIdentities(ctx)
	if err != nil || !can {
		t.Fatalf("CanCreateIdentities = %t, %v; want true in login mode", can, err)
	}
	steps := []struct {
		reason     string
		before     func()
		call       func() error
		wantLogins int
	}{
		{"first call logs in", nil, func() error { _, err := c.GetWebhook(ctx, "wh-1"); return err }, 1},
		{"the token is reused", nil, func() error { _, err := c.GetWebhook(ctx, "wh-1"); return err }, 1},
		{"signed calls use the same token", nil, func() error { return c.DeleteWebhook(ctx, "wh-1") }, 1},
		{"the token is refreshed before exp", func() { now = now.Add(59*time.Minute + 30*time.Second) }, func() error { _, err := c.GetWebhook(ctx, "wh-1"); return err }, 2},
		{"a 401 logs in again once and retries", f.revokeAll, func() error { _, err := c.GetWebhook(ctx, "wh-1"); return err }, 3},
		{"a 401 on a change logs in again and signs anew", f.revokeAll, func() error { return c.DeleteWebhook(ctx, "wh-1") }, 4},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.reason, err)
		}
		f.mu.Lock()
		logins := f.logins
		f.mu.Unlock()
		if logins != s.wantLogins {
			t.Errorf("%s: %d logins, want %d", s.reason, logins, s.wantLogins)
		}
	}
	f.mu.Lock()
	initBody := string(f.loginInits[0])
	f.mu.Unlock()
	if want := `{"username":"` + testUsername + `","orgId":"` + testOrg + `"}`; initBody != want {
		t.Errorf("login init body = %s, want %s", initBody, want)
	}
}

func TestLoginPersistent401(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /permissions/pm-1", func(w http.ResponseWriter, _ *http.Request) {
		dfnsError(w, http.StatusUnauthorized, "Not Authorized.")
	})
	c := loginClient(t, f, key)
	_, err := c.GetPermission(context.Background(), "pm-1")
	if !IsUnauthorized(err) || !errors.Is(err, ErrCredentials) {
		t.Fatalf("err = %v, want 401 wrapping ErrCredentials", err)
	}
	if f.logins != 2 {
		t.Errorf("%d logins, want 2 (one refresh on 401)", f.logins)
	}
}

func TestLoginRefused(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	other := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, other.signer.Public(), false) // Dfns knows another key
	c := loginClient(t, f, key)
	_, err := c.ListServiceAccounts(context.Background())
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "login failed") {
		t.Fatalf("err = %v, want a login failure wrapping ErrCredentials", err)
	}
	if n := f.hitCount("POST /auth/login"); n != 1 {
		t.Errorf("login tried %d times, want 1 (a 401 is not retried)", n)
	}
}

func TestLoginWithoutToken(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/login" {
			_, _ = io.ReadAll(r.Body)
			writeJSON(w, 200, map[string]string{"ssoClientId": "x"})
			return
		}
		f.serve(w, r)
	})
	c := loginClient(t, f, key)
	_, err := c.ListPersonalAccessTokens(context.Background())
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("err = %v", err)
	}
}

func TestCustomCAAndRotation(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), true)
	f.route("GET /auth/pats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"items": []map[string]any{{"tokenId": "to-1"}}})
	})
	k := &kubeletDir{t: t, dir: t.TempDir()}
	files := map[string]string{FileAPIURL: f.srv.URL, FileAuthToken: f.issueToken(time.Hour), FileOrgID: testOrg, FileCACert: string(serverCA(f.srv))}
	k.publish(files)
	now := time.Unix(0, 0)
	src := NewFileCredentials(k.dir)
	src.now = func() time.Time { return now }
	c := newTestClient(t, src)
	ctx := context.Background()
	if pats, err := c.ListPersonalAccessTokens(ctx); err != nil || len(pats) != 1 {
		t.Fatalf("with ca.crt: %v, %v", pats, err)
	}
	// A new token (same CA): the session changes, the HTTP client is kept.
	s1, _ := c.session()
	files[FileAuthToken] = f.issueToken(time.Hour)
	k.publish(files)
	now = now.Add(time.Hour)
	if _, err := c.ListPersonalAccessTokens(ctx); err != nil {
		t.Fatalf("after token rotation: %v", err)
	}
	s2, _ := c.session()
	if s1 == s2 || s1.http != s2.http {
		t.Error("want a new session sharing the HTTP client")
	}
	// Without the CA the server's certificate is not trusted.
	delete(files, FileCACert)
	k.publish(files)
	now = now.Add(time.Hour)
	if _, err := c.ListPersonalAccessTokens(ctx); err == nil {
		t.Fatal("call without ca.crt succeeded against a private CA")
	}
}

func TestBaseURLOverride(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"items": nil}) })
	creds := Credentials{APIURL: "https://unreachable.invalid", AuthToken: f.issueToken(time.Hour)}
	c := newTestClient(t, NewStaticCredentials(creds), func(o *Options) { o.BaseURL = f.srv.URL + "/" })
	sas, err := c.ListServiceAccounts(context.Background())
	if err != nil || sas == nil || len(sas) != 0 {
		t.Fatalf("ListServiceAccounts = %v, %v; want an empty list", sas, err)
	}
	if _, err := New(Options{Credentials: NewStaticCredentials(creds), BaseURL: "not a url"}); err == nil {
		t.Error("New accepted a bad base URL")
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted no credentials source")
	}
	bad := newTestClient(t, NewStaticCredentials(Credentials{}))
	if _, _, err := bad.Endpoint(context.Background()); !errors.Is(err, ErrCredentials) {
		t.Errorf("Endpoint with bad credentials: %v", err)
	}
	if _, err := bad.CanCreateIdentities(context.Background()); !errors.Is(err, ErrCredentials) {
		t.Errorf("CanCreateIdentities with bad credentials: %v", err)
	}
}

func TestDecodeFailures(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	const secret = "LEAKED-TOKEN-VALUE"
	f.route("GET /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"id":"wh-1","secret":"` + secret + `"`))
	})
	f.route("POST /webhooks", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"id":42,"secret":"` + secret + `"}`))
	})
	c := tokenClient(t, f, key)
	ctx := context.Background()
	_, err := c.GetWebhook(ctx, "wh-1")
	if err == nil || errors.Is(err, ErrOutcomeUnknown) || strings.Contains(err.Error(), secret) {
		t.Errorf("GET with truncated JSON: %v", err)
	}
	_, err = c.CreateWebhook(ctx, CreateWebhookRequest{URL: "https://x", Events: []string{"*"}})
	if !errors.Is(err, ErrOutcomeUnknown) || strings.Contains(err.Error(), secret) {
		t.Errorf("create with a wrongly typed answer: %v, want ErrOutcomeUnknown", err)
	}
	if got := describeJSONError(errors.New("x")); got != "not the expected JSON" {
		t.Errorf("describeJSONError = %s", got)
	}
}

func TestPendingApprovalAnswers(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	cr := map[string]any{"id": "cr-1", "kind": "Permission", "operationKind": "Update", "status": "Pending", "entityId": "pm-1", "approvalId": "ap-1", "requester": map[string]any{"userId": "us-1"}}
	pending := func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusAccepted, cr) }
	for _, k := range []string{"PUT /permissions/pm-1", "PUT /permissions/pm-1/archive", "POST /permissions/pm-1/assignments",
		"DELETE /permissions/pm-1/assignments/as-1", "PUT /v2/policies/plc-1", "DELETE /v2/policies/plc-1"} {
		f.route(k, pending)
	}
	f.route("DELETE /permissions/pm-1/assignments/as-gone", func(w http.ResponseWriter, _ *http.Request) { dfnsError(w, 404, "assignment not found") })
	f.route("DELETE /permissions/pm-1/assignments/as-ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f.route("PUT /v2/policies/plc-bad", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) })
	c := tokenClient(t, f, key)
	ctx := context.Background()
	cases := []struct {
		reason string
		call   func() error
	}{
		{"update permission", func() error {
			_, err := c.UpdatePermission(ctx, "pm-1", UpdatePermissionRequest{Name: "n"})
			return err
		}},
		{"archive permission", func() error { _, err := c.ArchivePermission(ctx, "pm-1", true); return err }},
		{"assign", func() error { _, err := c.AssignPermission(ctx, "pm-1", "us-1"); return err }},
		{"revoke", func() error { return c.RevokePermission(ctx, "pm-1", "as-1") }},
		{"update policy", func() error { _, err := c.UpdatePolicy(ctx, "plc-1", PolicyBody{Name: "p"}); return err }},
		{"archive policy", func() error { _, err := c.ArchivePolicy(ctx, "plc-1"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			err := tc.call()
			got, ok := IsPendingApproval(err)
			if !ok || got.ID != "cr-1" || got.ApprovalID != "ap-1" || got.Status != "Pending" {
				t.Fatalf("IsPendingApproval(%v) = %+v, %t", err, got, ok)
			}
			if !strings.Contains(err.Error(), "pending approval: change request cr-1, approval ap-1") {
				t.Errorf("message = %s", err)
			}
		})
	}
	if err := c.RevokePermission(ctx, "pm-1", "as-gone"); err != nil {
		t.Errorf("revoking a gone assignment: %v, want nil", err)
	}
	if err := c.RevokePermission(ctx, "pm-1", "as-ok"); err != nil {
		t.Errorf("revoke answered 204: %v", err)
	}
	if _, err := c.UpdatePolicy(ctx, "plc-bad", PolicyBody{}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("202 without a change request: %v, want ErrOutcomeUnknown", err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /permissions/pm-1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.invalid/steal", http.StatusTemporaryRedirect)
	})
	c := tokenClient(t, f, key)
	_, err := c.GetPermission(context.Background(), "pm-1")
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a 307 *Error", err)
	}
}

func TestJSONOfWireTypes(t *testing.T) {
	// The Policy type embeds PolicyBody: its fields must sit at the top level like Dfns sends them.
	var p Policy
	in := `{"id":"plc-1","name":"n","activityKind":"Permissions:Modify","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"Block"},"status":"Active"}`
	if err := json.Unmarshal([]byte(in), &p); err != nil || p.ID != "plc-1" || p.Name != "n" || p.Rule.Kind != "AlwaysTrigger" {
		t.Fatalf("Policy = %+v, %v", p, err)
	}
}

func TestLoginTransientFailureAndTokensWithoutExp(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.ttl = 0
	f.route("GET /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"id": "wh-1"}) })
	inner := f.srv.Config.Handler
	// /auth/login/init fails with 503 four times (one whole call), then works.
	f.srv.Config.Handler = failFirst(4, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/login/init" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	}, inner.ServeHTTP)
	c := loginClient(t, f, key)
	recordSleeps(c)
	ctx := context.Background()
	_, err := c.GetWebhook(ctx, "wh-1")
	if err == nil || errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "login: dfns CreateLoginChallenge: status 503") {
		t.Fatalf("err = %v, want a transient login error that is not a credentials problem", err)
	}
	for i := range 3 {
		if _, err := c.GetWebhook(ctx, "wh-1"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if f.logins != 1 {
		t.Errorf("%d logins, want 1: a token without exp is kept until a 401", f.logins)
	}
}

// TestAnswerLargerThanTheLimit: an answer over MaxAnswerSize fails once, saying so, instead of
// being cut short and failing as invalid JSON; an answer at the limit is read whole.
func TestAnswerLargerThanTheLimit(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	const limit = 4 << 10
	item := `{"userInfo":{"userId":"us-1","name":"sa"},"accessTokens":[]}`
	list := func(n int) string { return `{"items":[` + strings.Repeat(item+",", n) + item + `]}` }
	small := list(limit / len(item) / 2)
	calls := 0
	answer := small
	f.route("GET /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) {
		calls++
		_, _ = w.Write([]byte(answer))
	})
	c := tokenClient(t, f, key, func(o *Options) { o.MaxAnswerSize = limit })
	ctx := context.Background()
	if got, err := c.ListServiceAccounts(ctx); err != nil || len(got) != limit/len(item)/2+1 {
		t.Fatalf("an answer of %d bytes, under the limit: %d items, %v", len(small), len(got), err)
	}
	answer, calls = list(limit/len(item)+1), 0
	_, err := c.ListServiceAccounts(ctx)
	if !errors.Is(err, errAnswerTooLarge) || !strings.Contains(err.Error(), "larger than the client reads") {
		t.Errorf("an answer of %d bytes over a limit of %d: %v", len(answer), limit, err)
	}
	if calls != 1 {
		t.Errorf("%d calls; an answer too large is not asked for again", calls)
	}
}

// TestListReadAsItArrives: a list Dfns does not paginate is decoded item by item. A connection
// cut in the middle of the answer is tried again, and nothing of the cut attempt is kept; other
// members are skipped; an answer that is not a list fails once, quoting nothing of it.
func TestListReadAsItArrives(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	item := func(id string) string { return `{"userInfo":{"userId":"` + id + `","name":"n"},"accessTokens":[]}` }
	whole := `{"kind":"list","items":[` + item("us-1") + `,` + item("us-2") + `,` + item("us-3") + `],"more":{"a":[1]}}`
	calls := 0
	answer := func(w http.ResponseWriter) {
		calls++
		if calls == 1 { // cut after the first item: the client reads an unexpected end
			w.Header().Set("Content-Length", strconv.Itoa(len(whole)))
			_, _ = w.Write([]byte(whole[:len(whole)/2]))
			return
		}
		_, _ = w.Write([]byte(whole))
	}
	f.route("GET /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) { answer(w) })
	c := tokenClient(t, f, key, func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Millisecond, time.Millisecond })
	ctx := context.Background()
	got, err := c.ListServiceAccounts(ctx)
	if err != nil || calls != 2 {
		t.Fatalf("after a cut answer: %v after %d calls; want the list at the second", err, calls)
	}
	ids := make([]string, 0, len(got))
	for _, sa := range got {
		ids = append(ids, sa.UserInfo.UserID)
	}
	if !slices.Equal(ids, []string{"us-1", "us-2", "us-3"}) {
		t.Errorf("items %v; want us-1, us-2, us-3 once each", ids)
	}
	const secret = "NOT-A-LIST-SECRET"
	answer = func(w http.ResponseWriter) {
		calls++
		_, _ = w.Write([]byte(`{"items":"` + secret + `"}`))
	}
	calls = 0
	_, err = c.ListServiceAccounts(ctx)
	if err == nil || calls != 1 || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "decode answer") {
		t.Errorf("an answer that is not a list: %v after %d calls; want one decode error quoting nothing", err, calls)
	}
}
