package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseStrictness(t *testing.T) {
	all := StrictAll()
	if got := all.Names(); !slices.Equal(got, StrictnessNames()) {
		t.Fatalf("StrictAll().Names() = %v, want every behaviour %v", got, StrictnessNames())
	}
	v := reflect.ValueOf(all)
	for i := range v.NumField() {
		if !v.Field(i).Bool() {
			t.Errorf("StrictAll leaves %s off", v.Type().Field(i).Name)
		}
	}
	for _, name := range StrictnessNames() {
		s, err := ParseStrictness([]string{name})
		if err != nil {
			t.Fatalf("ParseStrictness(%q): %v", name, err)
		}
		if got := s.Names(); !slices.Equal(got, []string{name}) {
			t.Errorf("ParseStrictness(%q).Names() = %v, want only that behaviour", name, got)
		}
	}
	s, err := ParseStrictness([]string{" archive", "", "input "})
	if err != nil || !s.ArchiveKeepsListed || !s.StrictInput || s.NoApprovalID {
		t.Errorf("ParseStrictness(archive, input) = %+v, %v", s, err)
	}
	if s, err := ParseStrictness([]string{"all"}); err != nil || s != all {
		t.Errorf(`ParseStrictness("all") = %+v, %v; want StrictAll()`, s, err)
	}
	if _, err := ParseStrictness([]string{"archive", "lenient"}); err == nil || !strings.Contains(err.Error(), `"lenient"`) {
		t.Errorf("an unknown behaviour must be an error naming it, got %v", err)
	}
	if got := (Strictness{}).Names(); got == nil || len(got) != 0 {
		t.Errorf("the default Names() = %#v, want an empty list (JSON [])", got)
	}
}

// TestStrictControls flips behaviours through Options, SetStrict and /sandbox/strict, and
// shows that the state file keeps none of it (it is configuration).
func TestStrictControls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, Options{StateFile: path, Strict: Strictness{Invitations: true}})
	if got := e.sb.Strict(); got != (Strictness{Invitations: true}) {
		t.Errorf("Strict() = %+v after Options.Strict", got)
	}
	get := func() string {
		st, out := e.request("GET", "/sandbox/strict", "", "", nil)
		if st != 200 {
			t.Fatalf("GET /sandbox/strict: %d %s", st, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := get(); got != `["invitations"]` {
		t.Errorf("GET /sandbox/strict = %s", got)
	}
	cases := []struct {
		reason, body string
		want         int
		answer       string
	}{
		{"one behaviour", `["archive"]`, 200, `["archive"]`},
		{"two, in any order", `["input","no-approval-id"]`, 200, `["no-approval-id","input"]`},
		{"all", `["all"]`, 200, mustStr(t, StrictAll().Names())},
		{"none", `[]`, 200, `[]`},
		{"unknown name", `["archive","nope"]`, 400, ""},
		{"not a list", `{"archive":true}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.request("PUT", "/sandbox/strict", "", "", []byte(tc.body))
			if st != tc.want {
				t.Fatalf("PUT /sandbox/strict %s: %d, want %d: %s", tc.body, st, tc.want, out)
			}
			if tc.want == 200 && (strings.TrimSpace(string(out)) != tc.answer || get() != tc.answer) {
				t.Errorf("PUT /sandbox/strict %s answered %s, GET %s; want %s", tc.body, out, get(), tc.answer)
			}
		})
	}
	if got := get(); got != `[]` {
		t.Errorf("a refused PUT changed the behaviours: %s", got)
	}
	e.sb.SetStrict(StrictAll())
	e.user("admin@example.com", true) // a change, so the state file is written
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"strict", "Strict", "archive\"", "hold-creates"} {
		if strings.Contains(string(data), word) {
			t.Errorf("the state file holds %q: the strict behaviours are configuration", word)
		}
	}
	restarted := newEnv(t, Options{StateFile: path})
	if got := restarted.sb.Strict(); got != (Strictness{}) {
		t.Errorf("a restart from the state file restored strict behaviours %+v", got)
	}
}

func mustStr(t testing.TB, v any) string {
	t.Helper()
	return string(mustJSON(t, v))
}

// modes runs f once with the kind (default) reading and once with the strict one.
func modes(t *testing.T, f func(t *testing.T, strict bool)) {
	t.Helper()
	for _, strict := range []bool{false, true} {
		name := "Default"
		if strict {
			name = "Strict"
		}
		t.Run(name, func(t *testing.T) { f(t, strict) })
	}
}

// listed reports whether a list answer's items hold one whose field (a dotted path) is id.
func listed(answer map[string]any, path, id string) map[string]any {
	for _, it := range answer["items"].([]any) {
		v := it
		for key := range strings.SplitSeq(path, ".") {
			v = v.(map[string]any)[key]
		}
		if v == id {
			return it.(map[string]any)
		}
	}
	return nil
}

// TestStrictArchive: a deleted service account, PAT or user is gone with its name free
// (default), or stays listed and readable with isActive false and its name taken (strict
// "archive"); its token stops working either way.
func TestStrictArchive(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{ArchiveKeepsListed: strict}})
		admin := e.user("admin@example.com", true)
		pm := e.permission(admin, "reader", "Permissions:Read")
		sa, _ := e.serviceAccount(admin, "ci", pm, "ed25519")
		patKey := newTestKey(t, "p256")
		pat := e.mustCall(admin, 200, "POST", "/auth/pats", map[string]any{"name": "laptop", "publicKey": patKey.publicPEM(t), "permissionId": pm})
		patID := pat["tokenId"].(string)
		invited := e.mustCall(admin, 200, "POST", "/auth/users", map[string]any{"email": "bob@example.com", "kind": "CustomerEmployee"})
		userID := invited["userId"].(string)

		saDel := e.mustCall(admin, 200, "DELETE", "/auth/service-accounts/"+sa.userID+"?force=true", nil)
		patDel := e.mustCall(admin, 200, "DELETE", "/auth/pats/"+patID, map[string]any{})
		userDel := e.mustCall(admin, 200, "DELETE", "/auth/users/"+userID, nil)
		if saDel["userInfo"].(map[string]any)["isActive"] != false || patDel["isActive"] != false || userDel["isActive"] != false {
			t.Errorf("delete answers must show isActive false: %v / %v / %v", saDel, patDel, userDel)
		}
		if st, out := e.request("GET", "/permissions", sa.token, "", nil); st != 401 {
			t.Errorf("a deleted service account's token answered %d %s, want 401", st, out)
		}
		if st, out := e.request("GET", "/permissions", pat["accessToken"].(string), "", nil); st != 401 {
			t.Errorf("a deleted PAT answered %d %s, want 401", st, out)
		}
		sas := e.mustCall(admin, 200, "GET", "/auth/service-accounts", nil)
		pats := e.mustCall(admin, 200, "GET", "/auth/pats", nil)
		users := e.mustCall(admin, 200, "GET", "/auth/users", nil)
		assigned := e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil)
		if n := len(assigned["items"].([]any)); n != 0 {
			t.Errorf("the deleted identities keep %d assignments", n)
		}
		newSA := map[string]any{"name": "ci", "publicKey": newTestKey(t, "ed25519").publicPEM(t)}
		newPAT := map[string]any{"name": "laptop", "publicKey": patKey.publicPEM(t)}
		newUser := map[string]any{"email": "bob@example.com", "kind": "CustomerEmployee"}
		if !strict {
			e.mustCall(admin, 404, "GET", "/auth/service-accounts/"+sa.userID, nil)
			e.mustCall(admin, 404, "GET", "/auth/pats/"+patID, nil)
			e.mustCall(admin, 404, "GET", "/auth/users/"+userID, nil)
			if listed(sas, "userInfo.userId", sa.userID) != nil || listed(pats, "tokenId", patID) != nil || listed(users, "userId", userID) != nil {
				t.Errorf("a deleted identity is still listed")
			}
			e.mustCall(admin, 200, "POST", "/auth/service-accounts", newSA)
			e.mustCall(admin, 200, "POST", "/auth/pats", newPAT)
			e.mustCall(admin, 200, "POST", "/auth/users", newUser)
			return
		}
		gotSA := e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+sa.userID, nil)
		gotPAT := e.mustCall(admin, 200, "GET", "/auth/pats/"+patID, nil)
		gotUser := e.mustCall(admin, 200, "GET", "/auth/users/"+userID, nil)
		saTok := gotSA["accessTokens"].([]any)[0].(map[string]any)
		if gotSA["userInfo"].(map[string]any)["isActive"] != false || saTok["isActive"] != false ||
			gotPAT["isActive"] != false || gotUser["isActive"] != false {
			t.Errorf("archived identities must read back inactive: %v / %v / %v", gotSA, gotPAT, gotUser)
		}
		if l := listed(sas, "userInfo.userId", sa.userID); l == nil || l["userInfo"].(map[string]any)["isActive"] != false {
			t.Errorf("the archived service account is not listed as inactive: %v", sas)
		}
		if l := listed(pats, "tokenId", patID); l == nil || l["isActive"] != false {
			t.Errorf("the archived PAT is not listed as inactive: %v", pats)
		}
		if l := listed(users, "userId", userID); l == nil || l["isActive"] != false {
			t.Errorf("the archived user is not listed as inactive: %v", users)
		}
		for _, c := range []struct{ path, want string }{
			{"/auth/service-accounts", "a service account named \"ci\" already exists"},
			{"/auth/pats", "a personal access token named \"laptop\" already exists"},
			{"/auth/users", "a user with email \"bob@example.com\" already exists"},
		} {
			body := map[string]any{"/auth/service-accounts": newSA, "/auth/pats": newPAT, "/auth/users": newUser}[c.path]
			st, out := e.call(admin, "POST", c.path, body)
			if st != 409 || errMessage(t, out) != c.want {
				t.Errorf("POST %s with an archived one's name: %d %s, want 409 %q", c.path, st, out, c.want)
			}
		}
		e.mustCall(admin, 400, "PUT", "/auth/service-accounts/"+sa.userID+"/activate", nil)
		e.mustCall(admin, 400, "PUT", "/auth/pats/"+patID, map[string]any{"name": "laptop-2"})
		e.mustCall(admin, 400, "PUT", "/auth/users/"+userID+"/activate", nil)
		e.mustCall(admin, 200, "PUT", "/auth/service-accounts/"+sa.userID+"/deactivate", nil)
		e.mustCall(admin, 200, "DELETE", "/auth/service-accounts/"+sa.userID, nil)
		e.mustCall(admin, 200, "DELETE", "/auth/pats/"+patID, nil)
		e.mustCall(admin, 404, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": sa.userID})
	})
}

// approvalOf finds, through GET /v2/policy-approvals, the approval whose
// activity.changeRequest is the change request crID: the way to follow a change request
// that carries no approvalId.
func (e *env) approvalOf(a *actor, crID string) map[string]any {
	e.t.Helper()
	list := e.mustCall(a, 200, "GET", "/v2/policy-approvals?limit=500", nil)
	for _, it := range list["items"].([]any) {
		ap := it.(map[string]any)
		if cr, has := ap["activity"].(map[string]any)["changeRequest"].(map[string]any); has && cr["id"] == crID {
			return ap
		}
	}
	e.t.Fatalf("no approval lists change request %s: %v", crID, list)
	return nil
}

// TestStrictNoApprovalID: 202 change requests (permission update, assign, revoke) and
// pendingChangeRequest carry approvalId (default) or not (strict "no-approval-id"); the
// approval is found by listing approvals either way, and deciding it applies the change.
func TestStrictNoApprovalID(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{NoApprovalID: strict}})
		admin := e.user("admin@example.com", true)
		second := e.user("second@example.com", true)
		target := e.user("target@example.com", false)
		pm := e.permission(admin, "guarded", "Permissions:Read")
		e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("modify", "Permissions:Modify", 1, nil))
		e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("assign", "Permissions:Assign", 1, nil))

		check := func(what string, cr map[string]any) {
			t.Helper()
			_, has := cr["approvalId"]
			if has == strict {
				t.Errorf("%s: approvalId present = %v, want %v: %v", what, has, !strict, cr)
			}
		}
		approve := func(cr map[string]any) {
			t.Helper()
			ap := e.approvalOf(admin, cr["id"].(string))
			if !strict && ap["id"] != cr["approvalId"] {
				t.Errorf("change request %s names approval %v, the list %v", cr["id"], cr["approvalId"], ap["id"])
			}
			check("activity.changeRequest", ap["activity"].(map[string]any)["changeRequest"].(map[string]any))
			e.mustCall(second, 200, "POST", "/v2/policy-approvals/"+ap["id"].(string)+"/decisions", map[string]any{"value": "Approved"})
		}

		upd := e.mustCall(admin, 202, "PUT", "/permissions/"+pm, map[string]any{"name": "guarded-2"})
		check("202 of a permission update", upd)
		got := e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil)
		pending := got["pendingChangeRequest"].(map[string]any)
		if pending["id"] != upd["id"] {
			t.Fatalf("pendingChangeRequest %v, want %s", pending, upd["id"])
		}
		check("pendingChangeRequest", pending)
		st, out := e.call(admin, "PUT", "/permissions/"+pm, map[string]any{"name": "guarded-3"})
		details := decode(t, out)["error"].(map[string]any)["details"].(map[string]any)
		if _, has := details["approvalId"]; st != 409 || details["changeRequestId"] != upd["id"] || has == strict {
			t.Errorf("a second change while pending: %d %s", st, out)
		}
		approve(upd)
		if got := e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil); got["name"] != "guarded-2" {
			t.Errorf("after approval: %v", got)
		}

		assign := e.mustCall(admin, 202, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": target.userID})
		check("202 of an assignment", assign)
		approve(assign)
		revoke := e.mustCall(admin, 202, "DELETE", "/permissions/"+pm+"/assignments/"+assign["entityId"].(string), nil)
		check("202 of a revoke", revoke)
		approve(revoke)
		if list := e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil); len(list["items"].([]any)) != 0 {
			t.Errorf("after the approved revoke: %v", list)
		}
	})
}

// TestStrictEmptyCredID: the create answers of a service account and a PAT carry the real
// credId (default) or "" (strict "empty-cred-id"); GET and list carry the real one, which
// signs.
func TestStrictEmptyCredID(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{EmptyCredID: strict}})
		admin := e.user("admin@example.com", true)
		all := e.sb.permissionByNameForTest(fullAdminPermission)
		saKey := newTestKey(t, "ed25519")
		sa := e.mustCall(admin, 200, "POST", "/auth/service-accounts", map[string]any{"name": "ci", "publicKey": saKey.publicPEM(t), "permissionId": all})
		saTok := sa["accessTokens"].([]any)[0].(map[string]any)
		patKey := newTestKey(t, "p256")
		pat := e.mustCall(admin, 200, "POST", "/auth/pats", map[string]any{"name": "laptop", "publicKey": patKey.publicPEM(t), "permissionId": all})
		for what, created := range map[string]map[string]any{"service account": saTok, "PAT": pat} {
			if id, _ := created["credId"].(string); (id == "") != strict {
				t.Errorf("%s create answer: credId %q (strict %v)", what, id, strict)
			}
		}
		saID := sa["userInfo"].(map[string]any)["userId"].(string)
		gotSA := e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+saID, nil)["accessTokens"].([]any)[0].(map[string]any)
		listedSA := listed(e.mustCall(admin, 200, "GET", "/auth/service-accounts", nil), "userInfo.userId", saID)["accessTokens"].([]any)[0].(map[string]any)
		gotPAT := e.mustCall(admin, 200, "GET", "/auth/pats/"+pat["tokenId"].(string), nil)
		listedPAT := listed(e.mustCall(admin, 200, "GET", "/auth/pats", nil), "tokenId", pat["tokenId"].(string))
		for what, m := range map[string]map[string]any{"SA get": gotSA, "SA list": listedSA, "PAT get": gotPAT, "PAT list": listedPAT} {
			if !strings.HasPrefix(mustB64(t, m["credId"].(string)), "ci-") {
				t.Errorf("%s: credId %v, want the real one", what, m["credId"])
			}
		}
		// The credId read back signs.
		saActor := &actor{token: saTok["accessToken"].(string), credID: gotSA["credId"].(string), key: saKey}
		e.mustCall(saActor, 200, "POST", "/permissions", map[string]any{"name": "by-sa", "operations": []string{"Permissions:Read"}})
		patActor := &actor{token: pat["accessToken"].(string), credID: gotPAT["credId"].(string), key: patKey}
		e.mustCall(patActor, 200, "POST", "/permissions", map[string]any{"name": "by-pat", "operations": []string{"Permissions:Read"}})
		if strict {
			blank := &actor{token: pat["accessToken"].(string), credID: "", key: patKey}
			if _, st, out := e.tryUserAction(blank, "POST", "/permissions", []byte(`{}`)); st != 401 {
				t.Errorf("signing with the empty credId of the create answer: %d %s, want 401", st, out)
			}
		}
	})
}

// TestStrictPolicyDefaults: a policy reads back as sent (default) or with the defaults the
// client did not send and limits as strings (strict "policy-defaults"), in the create, get,
// list and update answers and in a held change's body; either form is accepted back as an
// update body and reads back the same.
func TestStrictPolicyDefaults(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{PolicyDefaults: strict}})
		admin := e.user("admin@example.com", true)
		approval := map[string]any{
			"name": "guard", "activityKind": "Permissions:Modify", "rule": map[string]any{"kind": "AlwaysTrigger"},
			"action": map[string]any{"kind": "RequestApproval", "approvalGroups": []any{map[string]any{"quorum": 1, "approvers": map[string]any{}}}},
		}
		limit := map[string]any{
			"name": "limit", "activityKind": "Wallets:Sign",
			"rule":   map[string]any{"kind": "TransactionAmountLimit", "configuration": map[string]any{"limit": 1000, "currency": "USD"}},
			"action": map[string]any{"kind": "Block"},
		}
		want := func(what string, got map[string]any, defaults bool) {
			t.Helper()
			action := got["action"].(map[string]any)
			rule := got["rule"].(map[string]any)
			if got["activityKind"] == "Wallets:Sign" {
				lim := rule["configuration"].(map[string]any)["limit"]
				if _, isStr := lim.(string); isStr != defaults || (defaults && lim != "1000") {
					t.Errorf("%s: limit %#v (defaults %v)", what, lim, defaults)
				}
				if _, has := action["autoRejectTimeout"]; has {
					t.Errorf("%s: a Block action shows autoRejectTimeout: %v", what, action)
				}
			} else {
				group := action["approvalGroups"].([]any)[0].(map[string]any)
				cfg, hasCfg := rule["configuration"]
				timeout, hasTimeout := action["autoRejectTimeout"]
				name, hasName := group["name"]
				ok := hasCfg == defaults && hasTimeout == defaults && hasName == defaults &&
					(group["initiatorCanApprove"] == false) == defaults && (group["serviceAccountsCanApprove"] == false) == defaults
				if defaults {
					ok = ok && len(cfg.(map[string]any)) == 0 && timeout == nil && name == nil && group["quorum"] == 1.0
				}
				if !ok {
					t.Errorf("%s: rule %v action %v (defaults %v)", what, rule, action, defaults)
				}
			}
			if f, has := got["filters"]; has != defaults || (defaults && len(f.(map[string]any)) != 0) {
				t.Errorf("%s: filters %v (defaults %v)", what, f, defaults)
			}
		}
		for _, body := range []map[string]any{approval, limit} {
			created := e.mustCall(admin, 200, "POST", "/v2/policies", body)
			id := created["id"].(string)
			want("create answer", created, strict)
			got := e.mustCall(admin, 200, "GET", "/v2/policies/"+id, nil)
			want("get", got, strict)
			want("list", listed(e.mustCall(admin, 200, "GET", "/v2/policies", nil), "id", id), strict)
			// What was read back is accepted as an update body and reads back the same.
			for _, k := range []string{"id", "status", "dateCreated", "dateUpdated"} {
				delete(got, k)
			}
			updated := e.mustCall(admin, 200, "PUT", "/v2/policies/"+id, got)
			want("update answer", updated, strict)
			again := e.mustCall(admin, 200, "GET", "/v2/policies/"+id, nil)
			delete(again, "dateUpdated")
			delete(updated, "dateUpdated")
			if mustStr(t, again) != mustStr(t, updated) {
				t.Errorf("a read-back body sent as an update changed the policy:\n%v\n%v", updated, again)
			}
		}
		guard := map[string]any{
			"name": "policy-guard", "activityKind": "Policies:Modify", "rule": map[string]any{"kind": "AlwaysTrigger"},
			"action": map[string]any{"kind": "RequestApproval", "approvalGroups": []any{map[string]any{"quorum": 1, "approvers": map[string]any{}}}},
		}
		gid := e.mustCall(admin, 200, "POST", "/v2/policies", guard)["id"].(string)
		cr := e.mustCall(admin, 202, "PUT", "/v2/policies/"+gid, guard)
		want("a held update's body", cr["body"].(map[string]any), strict)
		want("pendingChangeRequest.body", e.mustCall(admin, 200, "GET", "/v2/policies/"+gid, nil)["pendingChangeRequest"].(map[string]any)["body"].(map[string]any), strict)
	})
}

// TestStrictPendingListed: a held assignment creation is not listed until approved (default),
// or is listed with its pendingChangeRequest (operationKind Create), also among the
// identity's permissionAssignments (strict "pending-listed"); a held revoke shows
// pendingChangeRequest with operationKind Delete in both modes.
func TestStrictPendingListed(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{PendingListed: strict}})
		admin := e.user("admin@example.com", true)
		second := e.user("second@example.com", true)
		target := e.user("target@example.com", false)
		pm := e.permission(admin, "held", "Permissions:Read")
		e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("assign", "Permissions:Assign", 1, nil))
		cr := e.mustCall(admin, 202, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": target.userID})
		aid := cr["entityId"].(string)

		list := e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil)
		item := listed(list, "id", aid)
		held := listed(map[string]any{"items": e.mustCall(admin, 200, "GET", "/auth/users/"+target.userID, nil)["permissionAssignments"]}, "assignmentId", aid)
		if !strict {
			if item != nil || held != nil {
				t.Errorf("a pending assignment creation is listed: %v / %v", list, held)
			}
		} else {
			if item == nil || held == nil {
				t.Fatalf("the pending creation is not listed: %v / %v", list, held)
			}
			pcr, _ := item["pendingChangeRequest"].(map[string]any)
			if pcr["id"] != cr["id"] || pcr["kind"] != "Assignment" || pcr["operationKind"] != "Create" ||
				pcr["status"] != "Pending" || pcr["entityId"] != aid || item["identityId"] != target.userID || item["permissionId"] != pm {
				t.Errorf("pending item: %v", item)
			}
			st, out := e.call(admin, "DELETE", "/permissions/"+pm+"/assignments/"+aid, nil)
			if st != 409 || decode(t, out)["error"].(map[string]any)["details"].(map[string]any)["changeRequestId"] != cr["id"] {
				t.Errorf("revoking a pending creation: %d %s, want 409 naming its change request", st, out)
			}
		}
		e.mustCall(target, 403, "GET", "/permissions", nil) // listed or not, it grants nothing yet
		e.mustCall(second, 200, "POST", "/v2/policy-approvals/"+e.approvalOf(admin, cr["id"].(string))["id"].(string)+"/decisions", map[string]any{"value": "Approved"})
		item = listed(e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil), "id", aid)
		if item == nil || item["pendingChangeRequest"] != nil {
			t.Fatalf("the approved assignment: %v", item)
		}
		e.mustCall(target, 200, "GET", "/permissions", nil)

		revoke := e.mustCall(admin, 202, "DELETE", "/permissions/"+pm+"/assignments/"+aid, nil)
		item = listed(e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil), "id", aid)
		pcr, _ := item["pendingChangeRequest"].(map[string]any)
		if pcr["id"] != revoke["id"] || pcr["operationKind"] != "Delete" || pcr["status"] != "Pending" {
			t.Errorf("an assignment with a held revoke: %v", item)
		}
	})
}

// TestStrictApproverForce: deactivating or deleting a service account or user that an active
// policy names as approver is accepted with or without force (default), or refused with 400
// unless force is given where @dfns/sdk puts it: the deactivate body, the delete query
// (strict "approver-force").
func TestStrictApproverForce(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{ApproverForce: strict}})
		admin := e.user("admin@example.com", true)
		approverSA, _ := e.serviceAccount(admin, "approver-sa", "", "ed25519")
		bystander, _ := e.serviceAccount(admin, "bystander", "", "ed25519")
		approverUser := e.user("approver@example.com", false)
		policy := approvalPolicy("named approvers", "Permissions:Modify", 1, nil)
		group := policy["action"].(map[string]any)["approvalGroups"].([]any)[0].(map[string]any)
		group["approvers"] = map[string]any{"userId": map[string]any{"in": []string{approverSA.userID, approverUser.userID}}}
		group["serviceAccountsCanApprove"] = true
		pol := e.mustCall(admin, 200, "POST", "/v2/policies", policy)["id"].(string)

		// Default: the first delete goes through, a second one finds nothing.
		refused, again, gone := 200, 404, 404
		if strict {
			refused, again, gone = 400, 400, 200
		}
		for _, c := range []struct {
			reason, method, path string
			body                 any
			want                 int
		}{
			{"deactivate an approver service account", "PUT", "/auth/service-accounts/" + approverSA.userID + "/deactivate", nil, refused},
			{"force in the query of a deactivate is not where the SDK sends it", "PUT", "/auth/service-accounts/" + approverSA.userID + "/deactivate?force=true", map[string]any{}, refused},
			{"deactivate it with force in the body", "PUT", "/auth/service-accounts/" + approverSA.userID + "/deactivate", map[string]any{"force": true}, 200},
			{"activate it again", "PUT", "/auth/service-accounts/" + approverSA.userID + "/activate", nil, 200},
			{"delete it", "DELETE", "/auth/service-accounts/" + approverSA.userID, nil, refused},
			{"delete it with force=false", "DELETE", "/auth/service-accounts/" + approverSA.userID + "?force=false", nil, again},
			{"deactivate an approver user", "PUT", "/auth/users/" + approverUser.userID + "/deactivate", map[string]any{}, refused},
			{"deactivate it with force in the body", "PUT", "/auth/users/" + approverUser.userID + "/deactivate", map[string]any{"force": true}, 200},
			{"delete it", "DELETE", "/auth/users/" + approverUser.userID, nil, refused},
			{"delete it with force", "DELETE", "/auth/users/" + approverUser.userID + "?force=true", nil, gone},
			{"a service account no policy names", "DELETE", "/auth/service-accounts/" + bystander.userID, nil, 200},
		} {
			st, out := e.call(admin, c.method, c.path, c.body)
			if st != c.want {
				t.Errorf("%s: %d %s, want %d", c.reason, st, out, c.want)
				continue
			}
			if st == 400 {
				details := decode(t, out)["error"].(map[string]any)["details"].(map[string]any)
				if ids, _ := details["policyIds"].([]any); len(ids) != 1 || ids[0] != pol || !strings.Contains(errMessage(t, out), pol) {
					t.Errorf("%s: the refusal must name the policy %s: %s", c.reason, pol, out)
				}
			}
		}
		// An archived policy names no approver any more.
		e.mustCall(admin, 200, "DELETE", "/v2/policies/"+pol, nil)
		e.mustCall(admin, gone, "DELETE", "/auth/service-accounts/"+approverSA.userID, nil)
	})
}

// TestStrictInput: the sandbox accepts any currency, incomplete Chainalysis configurations and
// the Go SDK's extra webhook event kinds (default), or only what @dfns/sdk 0.8.21 allows
// (strict "input").
func TestStrictInput(t *testing.T) {
	chainalysis := func(drop string, addresses bool) map[string]any {
		cfg := map[string]any{
			"alerts":    map[string]any{"alertLevel": "HIGH", "categoryIds": []int{1, 2}},
			"exposures": map[string]any{"direct": map[string]any{"categoryIds": []int{3}}},
			"fallbackBehaviours": map[string]any{
				"skipUnscreenableTransaction": true, "skipUnsupportedNetwork": false,
				"skipUnsupportedAsset": false, "skipChainalysisFailure": true,
			},
		}
		if addresses {
			cfg["addresses"] = map[string]any{"categoryIds": []int{}}
		}
		switch parent, key, nested := strings.Cut(drop, "."); {
		case drop == "":
		case nested:
			delete(cfg[parent].(map[string]any), key)
		default:
			delete(cfg, parent)
		}
		return cfg
	}
	sign := func(name, kind string, cfg map[string]any) map[string]any {
		return map[string]any{"name": name, "activityKind": "Wallets:Sign", "rule": map[string]any{"kind": kind, "configuration": cfg}, "action": map[string]any{"kind": "Block"}}
	}
	incoming := func(name string, cfg map[string]any) map[string]any {
		return map[string]any{"name": name, "activityKind": "Wallets:IncomingTransaction", "rule": map[string]any{"kind": "ChainalysisTransactionScreening", "configuration": cfg}, "action": map[string]any{"kind": "NoAction"}}
	}
	level := chainalysis("", true)
	level["alerts"].(map[string]any)["alertLevel"] = "EXTREME"
	cases := []struct {
		reason        string
		path          string
		body          map[string]any
		refusedStrict bool // refused in strict mode
	}{
		{"amount limit in USD", "/v2/policies", sign("usd", "TransactionAmountLimit", map[string]any{"limit": 100, "currency": "USD"}), false},
		{"amount limit in EUR", "/v2/policies", sign("eur", "TransactionAmountLimit", map[string]any{"limit": 100, "currency": "EUR"}), true},
		{"amount velocity in EUR", "/v2/policies", sign("eur-v", "TransactionAmountVelocity", map[string]any{"limit": 100, "currency": "EUR", "timeframe": 60}), true},
		{"amount limit without currency", "/v2/policies", sign("none", "TransactionAmountLimit", map[string]any{"limit": 100}), true},
		{"complete Chainalysis prescreening", "/v2/policies", sign("ch", "ChainalysisTransactionPrescreening", chainalysis("", true)), false},
		{"prescreening without alerts.categoryIds", "/v2/policies", sign("ch1", "ChainalysisTransactionPrescreening", chainalysis("alerts.categoryIds", true)), true},
		{"prescreening without exposures", "/v2/policies", sign("ch2", "ChainalysisTransactionPrescreening", chainalysis("exposures", true)), true},
		{"prescreening without addresses", "/v2/policies", sign("ch3", "ChainalysisTransactionPrescreening", chainalysis("", false)), true},
		{"prescreening without fallbackBehaviours", "/v2/policies", sign("ch4", "ChainalysisTransactionPrescreening", chainalysis("fallbackBehaviours", true)), true},
		{"prescreening without one fallback", "/v2/policies", sign("ch5", "ChainalysisTransactionPrescreening", chainalysis("fallbackBehaviours.skipChainalysisFailure", true)), true},
		{"prescreening with an unknown alert level", "/v2/policies", sign("ch6", "ChainalysisTransactionPrescreening", level), true},
		{"complete Chainalysis screening (no addresses)", "/v2/policies", incoming("in", chainalysis("", false)), false},
		{"screening without alerts", "/v2/policies", incoming("in1", chainalysis("alerts", false)), true},
		{"webhook on @dfns/sdk events", "/webhooks", map[string]any{"url": "https://x.example", "events": []string{"policy.approval.pending", "*"}}, false},
		{"webhook on vault.created", "/webhooks", map[string]any{"url": "https://x.example", "events": []string{"vault.created"}}, true},
		{"webhook on wallet.blockchain_event.transfer.included", "/webhooks", map[string]any{"url": "https://x.example", "events": []string{"wallet.blockchain_event.transfer.included"}}, true},
	}
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{StrictInput: strict}})
		admin := e.user("admin@example.com", true)
		for _, c := range cases {
			want := 200
			if strict && c.refusedStrict {
				want = 400
			}
			st, out := e.call(admin, "POST", c.path, c.body)
			if st != want {
				t.Errorf("%s: %d %s, want %d", c.reason, st, out, want)
			}
			if st == 200 && c.path == "/v2/policies" && c.refusedStrict {
				// What the default mode accepted, strict mode refuses as an update too.
				id := decode(t, out)["id"].(string)
				e.sb.SetStrict(Strictness{StrictInput: true})
				e.mustCall(admin, 400, "PUT", "/v2/policies/"+id, c.body)
				e.sb.SetStrict(Strictness{})
			}
			if st == 200 && c.path == "/webhooks" {
				id := decode(t, out)["id"].(string)
				upd := 200
				if strict {
					upd = 400
				}
				e.mustCall(admin, upd, "PUT", "/webhooks/"+id, map[string]any{"events": []string{"vault.updated"}})
				e.mustCall(admin, 200, "DELETE", "/webhooks/"+id, nil)
			}
		}
	})
}

// TestStrictChallengeSpent: after an injected 500 or 429 on /auth/action or /auth/login, a
// retry with the same challenge succeeds (default) or is refused as a reused challenge
// (strict "challenge-spent"), as if the server had failed after consuming it.
func TestStrictChallengeSpent(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{ChallengeSpent: strict}})
		creds, err := e.sb.CreateUser("admin@example.com", true)
		if err != nil {
			t.Fatal(err)
		}
		key := keyFromPEM(t, creds.PrivateKeyPEM)
		retry := 200
		if strict {
			retry = 400
		}
		for _, kind := range []FaultKind{FaultInternal, FaultRateLimited, FaultRateLimitedRetry} {
			t.Run(string(kind), func(t *testing.T) {
				st, body := e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": creds.Username, "orgId": creds.OrgID}))
				if st != 200 {
					t.Fatalf("login init: %d %s", st, body)
				}
				var ch challengeAnswer
				_ = json.Unmarshal(body, &ch)
				a := &actor{credID: creds.CredID, key: key, form: formTS, userID: creds.UserID}
				login := e.assertion(a, ch)
				e.sb.InjectOnce("Login", kind)
				if st, body := e.request("POST", "/auth/login", "", "", login); st < 429 {
					t.Fatalf("the injected fault did not hit the login: %d %s", st, body)
				}
				st, body = e.request("POST", "/auth/login", "", "", login)
				if st != retry || (strict && errMessage(t, body) != "Challenge token is not valid.") {
					t.Fatalf("login retried with the same challenge: %d %s, want %d", st, body, retry)
				}
				a = e.login(creds, key, formTS)

				init := mustJSON(t, map[string]string{"userActionHttpMethod": "POST", "userActionHttpPath": "/permissions", "userActionPayload": "{}"})
				st, body = e.request("POST", "/auth/action/init", a.token, "", init)
				if st != 200 {
					t.Fatalf("action init: %d %s", st, body)
				}
				_ = json.Unmarshal(body, &ch)
				sign := e.assertion(a, ch)
				e.sb.InjectOnce("CreateUserActionSignature", kind)
				if st, body := e.request("POST", "/auth/action", a.token, "", sign); st < 429 {
					t.Fatalf("the injected fault did not hit the signing: %d %s", st, body)
				}
				st, body = e.request("POST", "/auth/action", a.token, "", sign)
				if st != retry || (strict && errMessage(t, body) != "Challenge token is not valid.") {
					t.Errorf("signing retried with the same challenge: %d %s, want %d", st, body, retry)
				}
				// A fresh challenge works in both modes.
				e.mustCall(a, 200, "POST", "/permissions", map[string]any{"name": "after-" + string(kind), "operations": []string{"Permissions:Read"}})
			})
		}
	})
}

// TestStrictInvitations: a user made with POST /auth/users and a publicKey is registered and
// logs in at once (default), or is invited, unregistered and refused at login until the
// register control completes its registration (strict "invitations"); a user made without a
// key is unregistered in both modes. The register control (and Server.RegisterUser) works
// in both modes and is idempotent.
func TestStrictInvitations(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{Invitations: strict}})
		admin := e.user("admin@example.com", true)
		aliceKey := newTestKey(t, "ed25519")
		alice := e.mustCall(admin, 200, "POST", "/auth/users", map[string]any{"email": "alice@example.com", "kind": "CustomerEmployee", "publicKey": aliceKey.publicPEM(t)})
		bob := e.mustCall(admin, 200, "POST", "/auth/users", map[string]any{"email": "bob@example.com", "kind": "CustomerEmployee"})
		if alice["isRegistered"] != !strict || bob["isRegistered"] != false {
			t.Errorf("isRegistered: alice %v, bob %v (strict %v)", alice["isRegistered"], bob["isRegistered"], strict)
		}
		initLogin := func(email string) (int, []byte) {
			return e.request("POST", "/auth/login/init", "", "", mustJSON(t, map[string]string{"username": email, "orgId": e.sb.OrgID()}))
		}
		if strict {
			for _, email := range []string{"alice@example.com", "bob@example.com"} {
				if st, out := initLogin(email); st != 401 || errMessage(t, out) != "User has not completed registration" {
					t.Errorf("login of the invited %s: %d %s", email, st, out)
				}
			}
		} else {
			st, out := initLogin("bob@example.com")
			var ch challengeAnswer
			_ = json.Unmarshal(out, &ch)
			if st != 200 || len(ch.AllowCredentials.Key) != 0 {
				t.Errorf("login init of bob, who has no credential: %d %s", st, out)
			}
		}

		register := func(userID, body string, want int) *UserCredentials {
			t.Helper()
			var b []byte
			if body != "" {
				b = []byte(body)
			}
			st, out := e.request("POST", "/sandbox/users/"+userID+"/register", "", "", b)
			if st != want {
				t.Fatalf("register %s %s: %d %s, want %d", userID, body, st, out, want)
			}
			var creds UserCredentials
			if st == 200 {
				if err := json.Unmarshal(out, &creds); err != nil {
					t.Fatal(err)
				}
			}
			return &creds
		}
		aliceID := alice["userId"].(string)
		creds := register(aliceID, "", 200) // the key given at creation
		if creds.UserID != aliceID || creds.Username != "alice@example.com" || creds.CredID == "" || creds.PrivateKeyPEM != nil {
			t.Errorf("alice's registration: %+v", creds)
		}
		e.login(creds, aliceKey, formTS)
		if again := register(aliceID, mustStr(t, map[string]string{"publicKey": aliceKey.publicPEM(t)}), 200); again.CredID != creds.CredID {
			t.Errorf("registering again with the same key answered another credential %s", again.CredID)
		}
		register(aliceID, mustStr(t, map[string]string{"publicKey": newTestKey(t, "p256").publicPEM(t)}), 409)

		bobCreds, err := e.sb.RegisterUser(bob["userId"].(string), nil)
		if err != nil || bobCreds.PrivateKeyPEM == nil {
			t.Fatalf("RegisterUser(bob) = %+v, %v; want generated credentials", bobCreds, err)
		}
		e.login(bobCreds, keyFromPEM(t, bobCreds.PrivateKeyPEM), formGo)
		if got := e.mustCall(admin, 200, "GET", "/auth/users/"+bobCreds.UserID, nil); got["isRegistered"] != true {
			t.Errorf("bob after registration: %v", got)
		}

		carol := e.mustCall(admin, 200, "POST", "/auth/users", map[string]any{"email": "carol@example.com", "kind": "CustomerEmployee"})
		carolKey := newTestKey(t, "rsa")
		e.login(register(carol["userId"].(string), mustStr(t, map[string]string{"publicKeyPem": carolKey.publicPEM(t)}), 200), carolKey, formTS)

		sa, _ := e.serviceAccount(admin, "not-a-user", "", "ed25519")
		register(sa.userID, "", 404)
		register("us-nobody", "", 404)
		register(aliceID, `{"publicKey":"nope"}`, 400)
	})
}

// TestStrictHoldCreates: an active Policies:Modify (or Permissions:Modify) approval policy
// without an ID filter holds updates only (default), or also the creation of policies (or
// permissions): 202, a Create change request naming the ID the entity will get, applied on
// approval (strict "hold-creates"). A policy with an ID filter never holds a creation.
func TestStrictHoldCreates(t *testing.T) {
	modes(t, func(t *testing.T, strict bool) {
		e := newEnv(t, Options{Strict: Strictness{HoldCreates: strict}})
		admin := e.user("admin@example.com", true)
		second := e.user("second@example.com", true)
		held := 200
		if strict {
			held = 202
		}
		decide := func(cr map[string]any, value string) {
			t.Helper()
			ap := e.approvalOf(admin, cr["id"].(string))
			e.mustCall(second, 200, "POST", "/v2/policy-approvals/"+ap["id"].(string)+"/decisions", map[string]any{"value": value})
		}
		filtered := func(name, activity, key string) map[string]any {
			return approvalPolicy(name, activity, 1, map[string]any{key: map[string]any{"in": []string{"x-1"}}})
		}

		// A Block policy refuses what an approval policy would hold.
		blocked := newEnv(t, Options{Strict: Strictness{HoldCreates: strict}})
		blockAdmin := blocked.user("admin@example.com", true)
		blocked.mustCall(blockAdmin, 200, "POST", "/v2/policies", map[string]any{
			"name": "no changes", "activityKind": "Permissions:Modify", "rule": map[string]any{"kind": "AlwaysTrigger"}, "action": map[string]any{"kind": "Block"},
		})
		blocked.mustCall(blockAdmin, map[bool]int{false: 200, true: 403}[strict], "POST", "/permissions", map[string]any{"name": "p", "operations": []string{"Permissions:Read"}})

		// Filtered guards select existing entities only.
		e.mustCall(admin, 200, "POST", "/v2/policies", filtered("some policies", "Policies:Modify", "policyId"))
		e.mustCall(admin, 200, "POST", "/v2/policies", filtered("some permissions", "Permissions:Modify", "permissionId"))
		e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("all policies", "Policies:Modify", 1, nil))
		e.mustCall(admin, 200, "POST", "/permissions", map[string]any{"name": "free", "operations": []string{"Permissions:Read"}})

		pol := e.mustCall(admin, held, "POST", "/v2/policies", approvalPolicy("all permissions", "Permissions:Modify", 1, nil))
		if strict {
			id := pol["entityId"].(string)
			body := pol["body"].(map[string]any)
			if pol["kind"] != "Policy" || pol["operationKind"] != "Create" || pol["status"] != "Pending" ||
				!strings.HasPrefix(id, "plc-") || body["id"] != id || body["name"] != "all permissions" {
				t.Fatalf("held policy creation: %v", pol)
			}
			e.mustCall(admin, 404, "GET", "/v2/policies/"+id, nil)
			decide(pol, "Approved")
			if got := e.mustCall(admin, 200, "GET", "/v2/policies/"+id, nil); got["status"] != "Active" || got["name"] != "all permissions" {
				t.Fatalf("the approved policy: %v", got)
			}
			if ap := e.approvalOf(admin, pol["id"].(string)); ap["activity"].(map[string]any)["changeRequest"].(map[string]any)["status"] != "Applied" {
				t.Errorf("the applied change request: %v", ap)
			}
		}

		perm := e.mustCall(admin, held, "POST", "/permissions", map[string]any{"name": "held", "operations": []string{"Permissions:Read"}})
		if !strict {
			return
		}
		id := perm["entityId"].(string)
		if perm["kind"] != "Permission" || perm["operationKind"] != "Create" || !strings.HasPrefix(id, "pm-") ||
			perm["body"].(map[string]any)["name"] != "held" {
			t.Fatalf("held permission creation: %v", perm)
		}
		e.mustCall(admin, 404, "GET", "/permissions/"+id, nil)
		st, out := e.call(admin, "POST", "/permissions", map[string]any{"name": "held", "operations": []string{"Permissions:Read"}})
		if st != 409 || decode(t, out)["error"].(map[string]any)["details"].(map[string]any)["changeRequestId"] != perm["id"] {
			t.Errorf("the name of a held creation: %d %s, want 409 naming the change request", st, out)
		}
		decide(perm, "Approved")
		if got := e.mustCall(admin, 200, "GET", "/permissions/"+id, nil); got["name"] != "held" || len(got["operations"].([]any)) != 1 {
			t.Errorf("the approved permission: %v", got)
		}
		denied := e.mustCall(admin, 202, "POST", "/permissions", map[string]any{"name": "denied", "operations": []string{"Permissions:Read"}})
		decide(denied, "Denied")
		e.mustCall(admin, 404, "GET", "/permissions/"+denied["entityId"].(string), nil)
	})
}
