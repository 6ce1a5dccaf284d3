//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	pm := map[string]any{"id": "pm-1", "name": "p", "operations": []string{"Auth:Logs:Read"}, "status": "Active"}
	as := map[string]any{"id": "as-1", "permissionId": "pm-1", "identityId": "us-1"}
	wh := map[string]any{"id": "wh-1", "url": "https://x", "events": []string{"*"}, "status": "Enabled", "secret": "whs-1"}
	pat := map[string]any{"tokenId": "to-1", "name": "pat", "accessToken": "PAT-TOKEN", "credId": "Y2kt"}
	plc := map[string]any{"id": "plc-1", "name": "p", "activityKind": "Permissions:Modify", "status": "Active"}
	ap := map[string]any{"id": "ap-1", "status": "Pending", "initiatorId": "us-1"}
	user := map[string]any{"userId": "us-2", "username": "alice@example.com", "name": "alice@example.com", "kind": "CustomerEmployee",
		"isActive": true, "isServiceAccount": false, "isRegistered": false, "isSSORequired": true,
		"permissionAssignments": []map[string]any{{"permissionName": "p", "permissionId": "pm-1", "assignmentId": "as-1"}}}
	items := func(v any) map[string]any { return map[string]any{"items": []any{v}} }
	desc := "d"
	cases := []struct {
		reason   string
		route    string // "METHOD /path" the call must hit
		answer   any
		status   int
		wantBody string // exact body; "-" = none
		call     func(c *Client) (any, error)
		check    func(any) bool
	}{
		{"list service accounts", "GET /auth/service-accounts", items(saJSON()), 200, "-",
			func(c *Client) (any, error) { return c.ListServiceAccounts(ctx) },
			func(v any) bool { l := v.([]ServiceAccount); return len(l) == 1 && l[0].UserInfo.UserID == "us-1" }},
		{"get service account", "GET /auth/service-accounts/us-1", saJSON(), 200, "-",
			func(c *Client) (any, error) { return c.GetServiceAccount(ctx, "us-1") },
			func(v any) bool { return v.(*ServiceAccount).UserInfo.IsServiceAccount }},
		{"update service account", "PUT /auth/service-accounts/us-1", saJSON(), 200, `{"name":"n2"}`,
			func(c *Client) (any, error) {
				return c.UpdateServiceAccount(ctx, "us-1", UpdateServiceAccountRequest{Name: "n2"})
			},
			func(v any) bool { return v.(*ServiceAccount).UserInfo.UserID == "us-1" }},
		{"delete service account", "DELETE /auth/service-accounts/us-1", saJSON(), 200, "-",
			func(c *Client) (any, error) { return nil, c.DeleteServiceAccount(ctx, "us-1") }, nil},
		{"list PATs", "GET /auth/pats", items(pat), 200, "-",
			func(c *Client) (any, error) { return c.ListPersonalAccessTokens(ctx) },
			func(v any) bool { return v.([]AccessToken)[0].TokenID == "to-1" }},
		{"get PAT", "GET /auth/pats/to-1", pat, 200, "-",
			func(c *Client) (any, error) { return c.GetPersonalAccessToken(ctx, "to-1") },
			func(v any) bool { return v.(*AccessToken).Name == "pat" }},
		{"create PAT", "POST /auth/pats", pat, 200, `{"name":"pat","publicKey":"PEM","secondsValid":60}`,
			func(c *Client) (any, error) {
				return c.CreatePersonalAccessToken(ctx, CreatePersonalAccessTokenRequest{Name: "pat", PublicKey: "PEM", SecondsValid: 60})
			},
			func(v any) bool { return v.(*AccessToken).Token == "PAT-TOKEN" }},
		{"update PAT", "PUT /auth/pats/to-1", pat, 200, `{"externalId":"e"}`,
			func(c *Client) (any, error) {
				return c.UpdatePersonalAccessToken(ctx, "to-1", UpdatePersonalAccessTokenRequest{ExternalID: "e"})
			},
			func(v any) bool { return v.(*AccessToken).TokenID == "to-1" }},
		{"activate PAT", "PUT /auth/pats/to-1/activate", pat, 200, "-",
			func(c *Client) (any, error) { return c.ActivatePersonalAccessToken(ctx, "to-1") },
			func(v any) bool { return v.(*AccessToken).TokenID == "to-1" }},
		{"deactivate PAT", "PUT /auth/pats/to-1/deactivate", pat, 200, "-",
			func(c *Client) (any, error) { return c.DeactivatePersonalAccessToken(ctx, "to-1") },
			func(v any) bool { return v.(*AccessToken).TokenID == "to-1" }},
		{"delete PAT", "DELETE /auth/pats/to-1", pat, 200, "-",
			func(c *Client) (any, error) { return nil, c.DeletePersonalAccessToken(ctx, "to-1") }, nil},
		{"list users", "GET /auth/users", items(user), 200, "-",
			func(c *Client) (any, error) { return c.ListUsers(ctx, "") },
			func(v any) bool { l := v.([]User); return len(l) == 1 && l[0].Email() == "alice@example.com" }},
		{"get user", "GET /auth/users/us-2", user, 200, "-",
			func(c *Client) (any, error) { return c.GetUser(ctx, "us-2") },
			func(v any) bool {
				u := v.(*User)
				return u.UserID == "us-2" && u.Kind == "CustomerEmployee" && u.IsActive && !u.IsRegistered && u.IsSSORequired &&
					len(u.PermissionAssignments) == 1 && u.PermissionAssignments[0].AssignmentID == "as-1"
			}},
		{"create user", "POST /auth/users", user, 200, `{"email":"alice@example.com","kind":"CustomerEmployee","externalId":"uid-1","isSSORequired":true}`,
			func(c *Client) (any, error) {
				return c.CreateUser(ctx, CreateUserRequest{Email: "alice@example.com", Kind: UserKindEmployee, ExternalID: "uid-1", IsSSORequired: true})
			},
			func(v any) bool { return v.(*User).UserID == "us-2" }},
		{"create user without SSO omits it", "POST /auth/users", user, 200, `{"email":"alice@example.com","kind":"CustomerEmployee"}`,
			func(c *Client) (any, error) {
				return c.CreateUser(ctx, CreateUserRequest{Email: "alice@example.com", Kind: UserKindEmployee})
			},
			func(v any) bool { return v.(*User).UserID == "us-2" }},
		{"update user sends false", "PUT /auth/users/us-2", user, 200, `{"isSSORequired":false}`,
			func(c *Client) (any, error) { return c.UpdateUser(ctx, "us-2", UpdateUserRequest{}) },
			func(v any) bool { return v.(*User).UserID == "us-2" }},
		{"activate user", "PUT /auth/users/us-2/activate", user, 200, "-",
			func(c *Client) (any, error) { return c.ActivateUser(ctx, "us-2") },
			func(v any) bool { return v.(*User).IsActive }},
		{"deactivate user", "PUT /auth/users/us-2/deactivate", user, 200, `{}`,
			func(c *Client) (any, error) { return c.DeactivateUser(ctx, "us-2") },
			func(v any) bool { return v.(*User).UserID == "us-2" }},
		{"delete user", "DELETE /auth/users/us-2", user, 200, "-",
			func(c *Client) (any, error) { return nil, c.DeleteUser(ctx, "us-2") }, nil},
		{"a missing user is NotFound", "GET /auth/users/us-404", nil, 404, "-",
			func(c *Client) (any, error) { u, err := c.GetUser(ctx, "us-404"); return u, err },
			nil},
		{"get permission", "GET /permissions/pm-1", pm, 200, "-",
			func(c *Client) (any, error) { return c.GetPermission(ctx, "pm-1") },
			func(v any) bool { return v.(*Permission).Name == "p" }},
		{"create permission", "POST /permissions", pm, 200, `{"name":"p","operations":["Auth:Logs:Read"]}`,
			func(c *Client) (any, error) {
				return c.CreatePermission(ctx, CreatePermissionRequest{Name: "p", Operations: []string{"Auth:Logs:Read"}})
			},
			func(v any) bool { return v.(*Permission).ID == "pm-1" }},
		{"update permission", "PUT /permissions/pm-1", pm, 200, `{"operations":["A:B"]}`,
			func(c *Client) (any, error) {
				return c.UpdatePermission(ctx, "pm-1", UpdatePermissionRequest{Operations: []string{"A:B"}})
			},
			func(v any) bool { return v.(*Permission).ID == "pm-1" }},
		{"archive permission", "PUT /permissions/pm-1/archive", pm, 200, `{"isArchived":true}`,
			func(c *Client) (any, error) { return c.ArchivePermission(ctx, "pm-1", true) },
			func(v any) bool { return v.(*Permission).ID == "pm-1" }},
		{"unarchive permission sends false", "PUT /permissions/pm-1/archive", pm, 200, `{"isArchived":false}`,
			func(c *Client) (any, error) { return c.ArchivePermission(ctx, "pm-1", false) },
			func(v any) bool { return v.(*Permission).ID == "pm-1" }},
		{"assign permission", "POST /permissions/pm-1/assignments", as, 200, `{"identityId":"us-1"}`,
			func(c *Client) (any, error) { return c.AssignPermission(ctx, "pm-1", "us-1") },
			func(v any) bool { return v.(*Assignment).ID == "as-1" }},
		{"revoke permission", "DELETE /permissions/pm-1/assignments/as-1", nil, 204, "-",
			func(c *Client) (any, error) { return nil, c.RevokePermission(ctx, "pm-1", "as-1") }, nil},
		{"get webhook", "GET /webhooks/wh-1", wh, 200, "-",
			func(c *Client) (any, error) { return c.GetWebhook(ctx, "wh-1") },
			func(v any) bool { return v.(*Webhook).URL == "https://x" }},
		{"create webhook", "POST /webhooks", wh, 200, `{"url":"https://x","events":["*"],"description":"uid-1"}`,
			func(c *Client) (any, error) {
				return c.CreateWebhook(ctx, CreateWebhookRequest{URL: "https://x", Events: []string{"*"}, Description: "uid-1"})
			},
			func(v any) bool { return v.(*Webhook).Secret == "whs-1" }},
		{"update webhook", "PUT /webhooks/wh-1", wh, 200, `{"status":"Disabled","description":"d"}`,
			func(c *Client) (any, error) {
				return c.UpdateWebhook(ctx, "wh-1", UpdateWebhookRequest{Status: "Disabled", Description: &desc})
			},
			func(v any) bool { return v.(*Webhook).ID == "wh-1" }},
		{"delete webhook", "DELETE /webhooks/wh-1", map[string]any{"deleted": true}, 200, "-",
			func(c *Client) (any, error) { return nil, c.DeleteWebhook(ctx, "wh-1") }, nil},
		{"ping webhook", "POST /webhooks/wh-1/ping", WebhookPing{Status: "401", Error: "webhook endpoint answered 401"}, 200, "-",
			func(c *Client) (any, error) { return c.PingWebhook(ctx, "wh-1") },
			func(v any) bool { p := v.(*WebhookPing); return p.Status == "401" && p.Error != "" }},
		{"get policy", "GET /v2/policies/plc-1", plc, 200, "-",
			func(c *Client) (any, error) { return c.GetPolicy(ctx, "plc-1") },
			func(v any) bool { return v.(*Policy).ActivityKind == "Permissions:Modify" }},
		{"create policy", "POST /v2/policies", plc, 200,
			`{"name":"p","activityKind":"Permissions:Modify","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"Block"}}`,
			func(c *Client) (any, error) {
				return c.CreatePolicy(ctx, PolicyBody{Name: "p", ActivityKind: "Permissions:Modify",
					Rule: PolicyRule{Kind: "AlwaysTrigger"}, Action: PolicyAction{Kind: "Block"}})
			},
			func(v any) bool { return v.(*Policy).ID == "plc-1" }},
		{"update policy", "PUT /v2/policies/plc-1", plc, 200,
			`{"name":"p","activityKind":"","rule":{"kind":""},"action":{"kind":""}}`,
			func(c *Client) (any, error) { return c.UpdatePolicy(ctx, "plc-1", PolicyBody{Name: "p"}) },
			func(v any) bool { return v.(*Policy).ID == "plc-1" }},
		{"archive policy", "DELETE /v2/policies/plc-1", plc, 200, "-",
			func(c *Client) (any, error) { return c.ArchivePolicy(ctx, "plc-1") },
			func(v any) bool { return v.(*Policy).ID == "plc-1" }},
		{"get approval", "GET /v2/policy-approvals/ap-1", ap, 200, "-",
			func(c *Client) (any, error) { return c.GetApproval(ctx, "ap-1") },
			func(v any) bool { return v.(*Approval).Status == "Pending" }},
		{"decide approval", "POST /v2/policy-approvals/ap-1/decisions", ap, 200, `{"value":"Approved","reason":"ok"}`,
			func(c *Client) (any, error) {
				return c.DecideApproval(ctx, "ap-1", ApprovalDecisionRequest{Value: "Approved", Reason: "ok"})
			},
			func(v any) bool { return v.(*Approval).ID == "ap-1" }},
		{"list credentials", "GET /auth/credentials", items(map[string]any{"kind": "Key", "credentialId": "Y2kt", "credentialUuid": "cr-1",
			"dateCreated": "2026-01-02T03:04:05.000Z", "isActive": true, "name": "bot", "publicKey": "SHA256:x"}), 200, "-",
			func(c *Client) (any, error) { return c.ListCredentials(ctx) },
			func(v any) bool {
				l := v.([]Credential)
				return len(l) == 1 && l[0].CredentialID == "Y2kt" && l[0].CredentialUUID == "cr-1" && l[0].IsActive && l[0].Kind == "Key"
			}},
		{"activate credential", "PUT /auth/credentials/activate", map[string]string{"message": "success"}, 200, `{"credentialUuid":"cr-1"}`,
			func(c *Client) (any, error) { return nil, c.ActivateCredential(ctx, "cr-1") }, nil},
		{"deactivate credential", "PUT /auth/credentials/deactivate", map[string]string{"message": "success"}, 200, `{"credentialUuid":"cr-1"}`,
			func(c *Client) (any, error) { return nil, c.DeactivateCredential(ctx, "cr-1") }, nil},
		{"IDs are escaped in paths", "GET /permissions/a%2Fb", pm, 200, "-",
			func(c *Client) (any, error) { return c.GetPermission(ctx, "a/b") },
			func(v any) bool { return v.(*Permission).ID == "pm-1" }},
		{"a failed read returns nil and the error", "GET /webhooks/wh-404", nil, 404, "-",
			func(c *Client) (any, error) { w, err := c.GetWebhook(ctx, "wh-404"); return w, err },
			nil},
	}
	key := newTestKey(t, KeyECDSAP256)
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			f := newFakeDfns(t, key.signer.Public(), false)
			var got struct {
				sync.Mutex
				body []byte
				path string
			}
			f.route(strings.SplitN(tc.route, " ", 2)[0]+" "+mustUnescape(t, strings.SplitN(tc.route, " ", 2)[1]), func(w http.ResponseWriter, r *http.Request) {
				got.Lock()
				got.body, _ = io.ReadAll(r.Body)
				got.path = r.Method + " " + r.URL.EscapedPath()
				got.Unlock()
				if tc.answer == nil {
					w.WriteHeader(tc.status)
					return
				}
				writeJSON(w, tc.status, tc.answer)
			})
			c := tokenClient(t, f, key)
			v, err := tc.call(c)
			if tc.status >= 400 {
				if !IsNotFound(err) || !isNil(v) {
					t.Fatalf("got %v, %v; want nil and a 404", v, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got.Lock()
			defer got.Unlock()
			if got.path != tc.route {
				t.Errorf("hit %s, want %s", got.path, tc.route)
			}
			wantBody := tc.wantBody
			if wantBody == "-" {
				wantBody = ""
			}
			if string(got.body) != wantBody {
				t.Errorf("body = %s, want %s", got.body, wantBody)
			}
			if tc.check != nil && !tc.check(v) {
				t.Errorf("answer decoded wrongly: %+v", v)
			}
		})
	}
}

func mustUnescape(t *testing.T, p string) string {
	t.Helper()
	u, err := url.PathUnescape(p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case *Webhook:
		return x == nil
	case *User:
		return x == nil
	}
	return false
}

func TestPagination(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	var mu sync.Mutex
	var queries []url.Values
	pages := map[string]map[string]any{
		"":   {"items": []map[string]any{{"id": "pm-1"}, {"id": "pm-2"}}, "nextPageToken": "t1"},
		"t1": {"items": []map[string]any{{"id": "pm-3"}}, "nextPageToken": "t2"},
		"t2": {"items": []map[string]any{{"id": "pm-4"}}},
	}
	paged := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		mu.Unlock()
		writeJSON(w, 200, pages[r.URL.Query().Get("paginationToken")])
	}
	for _, route := range []string{"GET /permissions", "GET /permissions/pm-1/assignments", "GET /webhooks", "GET /v2/policies", "GET /auth/users"} {
		f.route(route, paged)
	}
	f.route("GET /loop", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"items": []map[string]any{{"id": "x"}}, "nextPageToken": "same"})
	})
	c := tokenClient(t, f, key)
	ctx := context.Background()
	cases := []struct {
		reason     string
		list       func() (int, error)
		wantStatus string
		wantLimit  string // the documented maximum where there is one (docs/dfns-api.md §6.2)
		wantKind   string
	}{
		{"permissions", func() (int, error) { l, err := c.ListPermissions(ctx); return len(l), err }, "", "500", ""},
		{"assignments", func() (int, error) { l, err := c.ListAssignments(ctx, "pm-1"); return len(l), err }, "", "500", ""},
		{"webhooks", func() (int, error) { l, err := c.ListWebhooks(ctx); return len(l), err }, "", "100", ""},
		{"policies filtered by status", func() (int, error) { l, err := c.ListPolicies(ctx, "Active"); return len(l), err }, "Active", "100", ""},
		{"policies unfiltered", func() (int, error) { l, err := c.ListPolicies(ctx, ""); return len(l), err }, "", "100", ""},
		{"users filtered by kind", func() (int, error) { l, err := c.ListUsers(ctx, UserKindEmployee); return len(l), err }, "", "100", UserKindEmployee},
		{"users unfiltered", func() (int, error) { l, err := c.ListUsers(ctx, ""); return len(l), err }, "", "100", ""},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			mu.Lock()
			queries = nil
			mu.Unlock()
			n, err := tc.list()
			if err != nil || n != 4 {
				t.Fatalf("got %d items, %v; want 4 from 3 pages", n, err)
			}
			mu.Lock()
			defer mu.Unlock()
			wantTokens := []string{"", "t1", "t2"}
			if len(queries) != 3 {
				t.Fatalf("%d pages fetched, want 3", len(queries))
			}
			for i, q := range queries {
				if q.Get("limit") != tc.wantLimit || q.Get("paginationToken") != wantTokens[i] || q.Get("status") != tc.wantStatus || q.Get("kind") != tc.wantKind {
					t.Errorf("page %d query = %v", i, q)
				}
			}
		})
	}
	_, err := listAll[Permission](ctx, c, "ListLoop", "/loop", pageLimit, nil)
	if err == nil || !strings.Contains(err.Error(), "pagination token repeats") {
		t.Errorf("endless pagination: %v", err)
	}
	f.route("GET /permissions", func(w http.ResponseWriter, _ *http.Request) { dfnsError(w, 403, "no") })
	if _, err := c.ListPermissions(ctx); !IsForbidden(err) {
		t.Errorf("failed page: %v", err)
	}
}

// TestNoSecretsInErrors drives failures through every layer and checks that no token,
// private key, signature, user-action token or request body shows up in an error string.
func TestNoSecretsInErrors(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	const bodySecret = "BODY-SECRET-PUBLIC-KEY-PEM"
	const answerSecret = "ANSWER-SECRET-TOKEN"
	f.route("POST /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"accessTokens":[{"accessToken":"` + answerSecret + `"}],"userInfo":7}`))
	})
	f.route("POST /auth/pats", func(w http.ResponseWriter, _ *http.Request) { dfnsError(w, 400, "invalid publicKey") })
	f.route("POST /webhooks", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f.route("GET /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(503)
		_, _ = w.Write([]byte("upstream " + answerSecret))
	})
	c := tokenClient(t, f, key, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	recordSleeps(c)
	login := loginClient(t, f, newTestKey(t, KeyEd25519)) // a key Dfns does not know
	ctx := context.Background()
	var errs []error
	collect := func(_ any, err error) { errs = append(errs, err) }
	collect(c.CreateServiceAccount(ctx, CreateServiceAccountRequest{Name: "n", PublicKey: bodySecret}))
	collect(c.CreatePersonalAccessToken(ctx, CreatePersonalAccessTokenRequest{Name: "n", PublicKey: bodySecret}))
	collect(c.CreateWebhook(ctx, CreateWebhookRequest{URL: "https://x", Description: bodySecret}))
	collect(c.GetWebhook(ctx, "wh-1"))
	collect(login.ListServiceAccounts(ctx))
	collect(nil, login.DeleteWebhook(ctx, "wh-1"))
	f.revokeAll()
	collect(c.CreatePermission(ctx, CreatePermissionRequest{Name: bodySecret}))

	s, _ := c.session()
	f.mu.Lock()
	secrets := append([]string{bodySecret, answerSecret, s.creds.AuthToken, string(key.pem), "PRIVATE KEY"}, f.signatures...)
	secrets = append(secrets, f.seenUA...)
	for tok := range f.userAct {
		secrets = append(secrets, tok)
	}
	f.mu.Unlock()
	for i, err := range errs {
		if err == nil {
			t.Errorf("scenario %d: no error", i)
			continue
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("scenario %d: error %q contains a secret", i, err)
			}
		}
	}
	if !errors.Is(errs[0], ErrOutcomeUnknown) || !errors.Is(errs[2], ErrOutcomeUnknown) || !errors.Is(errs[4], ErrCredentials) {
		t.Errorf("scenarios did not fail the expected way: %v", errs)
	}
}

// Any change may be held for approval: the official TypeScript SDK treats every 202 as
// pending, so the client reports it for every mutation, never decoding the change request as
// the object.
func TestEveryChangeMayBeHeld(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(c *Client) error{
		"POST /auth/service-accounts": func(c *Client) error {
			_, err := c.CreateServiceAccount(ctx, CreateServiceAccountRequest{Name: "n", PublicKey: "k"})
			return err
		},
		"PUT /auth/service-accounts/us-1/deactivate": func(c *Client) error { _, err := c.DeactivateServiceAccount(ctx, "us-1"); return err },
		"DELETE /auth/service-accounts/us-1":         func(c *Client) error { return c.DeleteServiceAccount(ctx, "us-1") },
		"POST /auth/pats": func(c *Client) error {
			_, err := c.CreatePersonalAccessToken(ctx, CreatePersonalAccessTokenRequest{Name: "n", PublicKey: "k"})
			return err
		},
		"POST /permissions": func(c *Client) error {
			_, err := c.CreatePermission(ctx, CreatePermissionRequest{Name: "p"})
			return err
		},
		"POST /webhooks": func(c *Client) error {
			_, err := c.CreateWebhook(ctx, CreateWebhookRequest{URL: "https://x"})
			return err
		},
		"DELETE /webhooks/wh-1": func(c *Client) error { return c.DeleteWebhook(ctx, "wh-1") },
		"POST /auth/users": func(c *Client) error {
			_, err := c.CreateUser(ctx, CreateUserRequest{Email: "a@example.com", Kind: UserKindEmployee})
			return err
		},
		"PUT /auth/users/us-2":            func(c *Client) error { _, err := c.UpdateUser(ctx, "us-2", UpdateUserRequest{}); return err },
		"PUT /auth/users/us-2/activate":   func(c *Client) error { _, err := c.ActivateUser(ctx, "us-2"); return err },
		"PUT /auth/users/us-2/deactivate": func(c *Client) error { _, err := c.DeactivateUser(ctx, "us-2"); return err },
		"DELETE /auth/users/us-2":         func(c *Client) error { return c.DeleteUser(ctx, "us-2") },
		"POST /v2/policies":               func(c *Client) error { _, err := c.CreatePolicy(ctx, PolicyBody{Name: "p"}); return err },
		"POST /permissions/pm-1/assignments": func(c *Client) error {
			_, err := c.AssignPermission(ctx, "pm-1", "us-1")
			return err
		},
	}
	key := newTestKey(t, KeyECDSAP256)
	for route, call := range calls {
		t.Run(route, func(t *testing.T) {
			f := newFakeDfns(t, key.signer.Public(), false)
			f.route(route, func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, http.StatusAccepted, map[string]any{"id": "cr-1", "kind": "Policy", "operationKind": "Create", "status": "Pending"})
			})
			err := call(tokenClient(t, f, key))
			cr, pending := IsPendingApproval(err)
			if !pending || cr.ID != "cr-1" || cr.ApprovalID != "" {
				t.Fatalf("err = %v; want a pending change request cr-1 without approval ID", err)
			}
		})
	}
}
