package sandbox

import (
	"strconv"
	"strings"
	"testing"
)

func TestPermissionChecksNameTheOperation(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	none := e.user("nobody@example.com", false)
	sa, _ := e.serviceAccount(admin, "no-perms", "", "ed25519")
	cases := []struct {
		reason string
		caller *actor
		method string
		path   string
		body   any
		op     string
		kind   string
	}{
		{"list permissions", none, "GET", "/permissions", nil, "Permissions:Read", "CustomerEmployee " + none.userID},
		{"create permission", none, "POST", "/permissions", map[string]any{"name": "x", "operations": []string{"Wallets:Read"}}, "Permissions:Create", "CustomerEmployee"},
		{"list service accounts", sa, "GET", "/auth/service-accounts", nil, "Auth:ServiceAccounts:Read", "ServiceAccount " + sa.userID},
		{"create policy", sa, "POST", "/v2/policies", map[string]any{}, "Policies:Create", "ServiceAccount"},
		{"list webhooks", none, "GET", "/webhooks", nil, "Webhooks:Read", "CustomerEmployee"},
		{"list users", none, "GET", "/auth/users", nil, "Auth:Users:Read", "CustomerEmployee"},
		{"list approvals", none, "GET", "/v2/policy-approvals", nil, "Policies:Approvals:Read", "CustomerEmployee"},
		{"create PAT", none, "POST", "/auth/pats", map[string]any{}, "Auth:Pats:Create", "CustomerEmployee"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.call(tc.caller, tc.method, tc.path, tc.body)
			if st != 403 {
				t.Fatalf("status %d: %s", st, out)
			}
			msg := errMessage(t, out)
			if !strings.HasPrefix(msg, tc.kind) || !strings.HasSuffix(msg, "is not authorized to perform operation ("+tc.op+")") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestPermissionsAndAssignments(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	pm := e.permission(admin, "ops", "Permissions:Read", "Permissions:Read")
	cases := []struct {
		reason string
		method string
		path   string
		body   any
		want   int
	}{
		{"duplicate name", "POST", "/permissions", map[string]any{"name": "ops", "operations": []string{"Wallets:Read"}}, 409},
		{"unknown operation", "POST", "/permissions", map[string]any{"name": "bad", "operations": []string{"Wallets:Fly"}}, 400},
		{"no operations", "POST", "/permissions", map[string]any{"name": "bad", "operations": []string{}}, 400},
		{"operations not an array", "POST", "/permissions", map[string]any{"name": "bad", "operations": "Wallets:Read"}, 400},
		{"name too long", "POST", "/permissions", map[string]any{"name": strings.Repeat("x", 101), "operations": []string{"Wallets:Read"}}, 400},
		{"get unknown", "GET", "/permissions/pm-nope", nil, 404},
		{"update", "PUT", "/permissions/" + pm, map[string]any{"operations": []string{"Permissions:Read", "Wallets:Read"}}, 200},
		{"archive requires isArchived", "PUT", "/permissions/" + pm + "/archive", map[string]any{}, 400},
		{"archive", "PUT", "/permissions/" + pm + "/archive", map[string]any{"isArchived": true}, 200},
		{"archived name stays taken", "POST", "/permissions", map[string]any{"name": "ops", "operations": []string{"Wallets:Read"}}, 409},
		{"archived permission cannot be assigned", "POST", "/permissions/" + pm + "/assignments", map[string]any{"identityId": admin.userID}, 400},
		{"unarchive", "PUT", "/permissions/" + pm + "/archive", map[string]any{"isArchived": false}, 200},
		{"assign to unknown identity", "POST", "/permissions/" + pm + "/assignments", map[string]any{"identityId": "us-nope"}, 404},
		{"assign without identity", "POST", "/permissions/" + pm + "/assignments", map[string]any{}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.call(admin, tc.method, tc.path, tc.body); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	t.Run("DfnsFullAdminAccess is immutable", func(t *testing.T) {
		full := e.sb.permissionByNameForTest(fullAdminPermission)
		got := e.mustCall(admin, 200, "GET", "/permissions/"+full, nil)
		if got["isImmutable"] != true || len(got["operations"].([]any)) != len(allOperations) {
			t.Errorf("full admin: %v", got["isImmutable"])
		}
		e.mustCall(admin, 403, "PUT", "/permissions/"+full, map[string]any{"name": "mine"})
		e.mustCall(admin, 403, "PUT", "/permissions/"+full+"/archive", map[string]any{"isArchived": true})
	})
	t.Run("assignment visible on the identity and revocable", func(t *testing.T) {
		sa, out := e.serviceAccount(admin, "assignee", "", "ed25519")
		id := out["userInfo"].(map[string]any)["userId"].(string)
		e.mustCall(sa, 403, "GET", "/permissions", nil)
		as := e.mustCall(admin, 200, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": id})
		aid := as["id"].(string)
		if !strings.HasPrefix(aid, "as-") || as["permissionId"] != pm || as["identityId"] != id {
			t.Fatalf("assignment: %v", as)
		}
		e.mustCall(admin, 409, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": id})
		got := e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+id, nil)
		pa := got["userInfo"].(map[string]any)["permissionAssignments"].([]any)
		if len(pa) != 1 || pa[0].(map[string]any)["assignmentId"] != aid || pa[0].(map[string]any)["permissionName"] != "ops" {
			t.Errorf("permissionAssignments = %v", pa)
		}
		e.mustCall(sa, 200, "GET", "/permissions", nil)
		list := e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil)
		if n := len(list["items"].([]any)); n != 1 {
			t.Errorf("assignments listed: %d", n)
		}
		if st, out := e.call(admin, "DELETE", "/permissions/"+pm+"/assignments/"+aid, nil); st != 204 || len(out) != 0 {
			t.Errorf("revoke: %d %q", st, out)
		}
		e.mustCall(sa, 403, "GET", "/permissions", nil)
		got = e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+id, nil)
		if pa := got["userInfo"].(map[string]any)["permissionAssignments"].([]any); len(pa) != 0 {
			t.Errorf("permissionAssignments after the revocation = %v", pa)
		}
		e.mustCall(admin, 404, "DELETE", "/permissions/"+pm+"/assignments/"+aid, nil)
	})
}

func TestPagination(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	for i := range 7 {
		e.permission(admin, "p"+strconv.Itoa(i), "Wallets:Read")
	}
	seen := map[string]bool{}
	token := ""
	pages := 0
	for {
		path := "/permissions?limit=3"
		if token != "" {
			path += "&paginationToken=" + token
		}
		out := e.mustCall(admin, 200, "GET", path, nil)
		for _, it := range out["items"].([]any) {
			seen[it.(map[string]any)["id"].(string)] = true
		}
		pages++
		next, more := out["nextPageToken"].(string)
		if !more {
			break
		}
		token = next
	}
	if len(seen) != 8 || pages != 3 {
		t.Errorf("saw %d permissions in %d pages, want 8 in 3", len(seen), pages)
	}
	cases := []struct {
		reason string
		query  string
	}{
		{"limit 0", "limit=0"},
		{"limit 501", "limit=501"},
		{"limit not a number", "limit=ten"},
		{"malformed query", "paginationToken=%%%"},
		{"garbage token", "paginationToken=***"},
		{"token not a position", "paginationToken=eHl6"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.call(admin, "GET", "/permissions?"+tc.query, nil); st != 400 {
				t.Errorf("status %d: %s", st, out)
			}
		})
	}
}
