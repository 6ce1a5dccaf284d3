package sandbox

import (
	"testing"
	"time"
)

func approvalPolicy(name, activity string, quorum int, filters map[string]any) map[string]any {
	p := map[string]any{
		"name": name, "activityKind": activity, "rule": map[string]any{"kind": "AlwaysTrigger"},
		"action": map[string]any{"kind": "RequestApproval", "approvalGroups": []any{
			map[string]any{"name": "admins", "quorum": quorum, "approvers": map[string]any{}},
		}},
	}
	if filters != nil {
		p["filters"] = filters
	}
	return p
}

func TestPolicyValidation(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	always := map[string]any{"kind": "AlwaysTrigger"}
	block := map[string]any{"kind": "Block"}
	cases := []struct {
		reason string
		body   map[string]any
		want   int
	}{
		{"Permissions:Modify with approval", approvalPolicy("a", "Permissions:Modify", 1, nil), 200},
		{"Permissions:Assign with Block and permission filter", map[string]any{"name": "b", "activityKind": "Permissions:Assign", "rule": always, "action": block, "filters": map[string]any{"permissionId": map[string]any{"in": []string{"pm-x"}}}}, 200},
		{"Policies:Modify cannot Block", map[string]any{"name": "c", "activityKind": "Policies:Modify", "rule": always, "action": block}, 400},
		{"Permissions:Modify cannot use a whitelist rule", map[string]any{"name": "d", "activityKind": "Permissions:Modify", "rule": map[string]any{"kind": "TransactionRecipientWhitelist", "configuration": map[string]any{"addresses": []string{}}}, "action": block}, 400},
		{"Wallets:Sign with a whitelist", map[string]any{"name": "e", "activityKind": "Wallets:Sign", "rule": map[string]any{"kind": "TransactionRecipientWhitelist", "configuration": map[string]any{"addresses": []string{"0x1"}}}, "action": map[string]any{"kind": "NoAction"}}, 200},
		{"wallet filter on a permission policy", map[string]any{"name": "f", "activityKind": "Permissions:Modify", "rule": always, "action": block, "filters": map[string]any{"walletId": map[string]any{"in": []string{"wa-1"}}}}, 400},
		{"unknown activity", map[string]any{"name": "g", "activityKind": "Coffee:Make", "rule": always, "action": block}, 400},
		{"quorum 0", approvalPolicy("h", "Permissions:Modify", 0, nil), 400},
		{"missing rule", map[string]any{"name": "i", "activityKind": "Permissions:Modify", "action": block}, 400},
		{"Block with approval groups", map[string]any{"name": "j", "activityKind": "Permissions:Modify", "rule": always, "action": map[string]any{"kind": "Block", "approvalGroups": []any{map[string]any{"quorum": 1, "approvers": map[string]any{}}}}}, 400},
		{"incoming transactions only NoAction", map[string]any{"name": "k", "activityKind": "Wallets:IncomingTransaction", "rule": map[string]any{"kind": "ChainalysisTransactionScreening", "configuration": map[string]any{}}, "action": block}, 400},
		{"AlwaysTrigger with configuration", map[string]any{"name": "l", "activityKind": "Permissions:Modify", "rule": map[string]any{"kind": "AlwaysTrigger", "configuration": map[string]any{"x": 1}}, "action": block}, 400},
		{"rule is a string", map[string]any{"name": "m", "activityKind": "Permissions:Modify", "rule": "AlwaysTrigger", "action": block}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.call(admin, "POST", "/v2/policies", tc.body); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	list := e.mustCall(admin, 200, "GET", "/v2/policies?status=Active", nil)
	if n := len(list["items"].([]any)); n != 3 {
		t.Errorf("%d active policies, want 3", n)
	}
	e.mustCall(admin, 400, "GET", "/v2/policies?status=Sleeping", nil)
}

// TestApprovalFlow drives a Permissions:Modify approval: 202, pendingChangeRequest, the
// initiator cannot approve, a second user approves and the change is applied; a denial
// leaves the permission unchanged.
func TestApprovalFlow(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	second := e.user("second@example.com", true)
	pm := e.permission(admin, "guarded", "Wallets:Read")
	free := e.permission(admin, "unguarded", "Wallets:Read")
	e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("guard", "Permissions:Modify", 1, map[string]any{"permissionId": map[string]any{"in": []string{pm}}}))

	e.mustCall(admin, 200, "PUT", "/permissions/"+free, map[string]any{"name": "unguarded-2"})

	cr := e.mustCall(admin, 202, "PUT", "/permissions/"+pm, map[string]any{"operations": []string{"Wallets:Read", "Wallets:Create"}})
	if cr["kind"] != "Permission" || cr["operationKind"] != "Update" || cr["status"] != "Pending" || cr["entityId"] != pm {
		t.Fatalf("change request: %v", cr)
	}
	if cr["requester"].(map[string]any)["userId"] != admin.userID {
		t.Errorf("requester: %v", cr["requester"])
	}
	apID := cr["approvalId"].(string)
	got := e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil)
	pending, has := got["pendingChangeRequest"].(map[string]any)
	if !has || pending["id"] != cr["id"] || len(got["operations"].([]any)) != 1 {
		t.Fatalf("permission while pending: %v", got)
	}
	list := e.mustCall(admin, 200, "GET", "/permissions", nil)
	foundPending := false
	for _, it := range list["items"].([]any) {
		if m := it.(map[string]any); m["id"] == pm && m["pendingChangeRequest"] != nil {
			foundPending = true
		}
	}
	if !foundPending {
		t.Error("list does not show pendingChangeRequest")
	}
	e.mustCall(admin, 409, "PUT", "/permissions/"+pm, map[string]any{"name": "again"})
	e.mustCall(admin, 403, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Approved"})
	pendingList := e.mustCall(second, 200, "GET", "/v2/policy-approvals?status=Pending&approverId="+second.userID, nil)
	if n := len(pendingList["items"].([]any)); n != 1 {
		t.Errorf("pending approvals for the second user: %d", n)
	}
	ap := e.mustCall(second, 200, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Approved", "reason": "ok"})
	if ap["status"] != "Approved" || ap["activity"].(map[string]any)["changeRequest"].(map[string]any)["status"] != "Applied" {
		t.Fatalf("approval: %v", ap)
	}
	got = e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil)
	if got["pendingChangeRequest"] != nil || len(got["operations"].([]any)) != 2 {
		t.Errorf("permission after approval: %v", got)
	}
	e.mustCall(second, 400, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Denied"})

	t.Run("denied change leaves the permission unchanged", func(t *testing.T) {
		cr := e.mustCall(admin, 202, "PUT", "/permissions/"+pm+"/archive", map[string]any{"isArchived": true})
		ap := e.mustCall(admin, 200, "POST", "/v2/policy-approvals/"+cr["approvalId"].(string)+"/decisions", map[string]any{"value": "Denied"})
		if ap["status"] != "Denied" || ap["activity"].(map[string]any)["changeRequest"].(map[string]any)["status"] != "Rejected" {
			t.Fatalf("approval: %v", ap)
		}
		got := e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil)
		if got["isArchived"] != false || got["pendingChangeRequest"] != nil {
			t.Errorf("permission after denial: %v", got)
		}
	})
}

func TestAssignmentAndPolicyApprovals(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	b := e.user("b@example.com", true)
	c := e.user("c@example.com", true)
	pm := e.permission(admin, "assignable", "Permissions:Read")
	e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("assign-quorum-2", "Permissions:Assign", 2, nil))
	target := e.user("target@example.com", false)

	cr := e.mustCall(admin, 202, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": target.userID})
	if cr["kind"] != "Assignment" || cr["operationKind"] != "Create" {
		t.Fatalf("change request: %v", cr)
	}
	e.mustCall(admin, 409, "POST", "/permissions/"+pm+"/assignments", map[string]any{"identityId": target.userID})
	apID := cr["approvalId"].(string)
	ap := e.mustCall(b, 200, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Approved"})
	if ap["status"] != "Pending" {
		t.Fatalf("after one of two approvals: %v", ap["status"])
	}
	e.mustCall(b, 409, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Approved"})
	e.mustCall(target, 403, "GET", "/permissions", nil)
	ap = e.mustCall(c, 200, "POST", "/v2/policy-approvals/"+apID+"/decisions", map[string]any{"value": "Approved"})
	if ap["status"] != "Approved" {
		t.Fatalf("after quorum: %v", ap)
	}
	e.mustCall(target, 200, "GET", "/permissions", nil)
	got := e.mustCall(admin, 200, "GET", "/v2/policy-approvals/"+apID, nil)
	if n := len(got["decisions"].([]any)); n != 2 {
		t.Errorf("decisions: %d", n)
	}

	t.Run("revoke needs approval too", func(t *testing.T) {
		list := e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil)
		aid := list["items"].([]any)[0].(map[string]any)["id"].(string)
		cr := e.mustCall(admin, 202, "DELETE", "/permissions/"+pm+"/assignments/"+aid, nil)
		list = e.mustCall(admin, 200, "GET", "/permissions/"+pm+"/assignments", nil)
		if list["items"].([]any)[0].(map[string]any)["pendingChangeRequest"] == nil {
			t.Error("assignment lacks pendingChangeRequest")
		}
		e.mustCall(c, 200, "POST", "/v2/policy-approvals/"+cr["approvalId"].(string)+"/decisions", map[string]any{"value": "Denied"})
		e.mustCall(target, 200, "GET", "/permissions", nil)
	})

	t.Run("Policies:Modify guards policy update and archive", func(t *testing.T) {
		guard := e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("policy-guard", "Policies:Modify", 1, nil))
		id := guard["id"].(string)
		cr := e.mustCall(admin, 202, "DELETE", "/v2/policies/"+id, nil)
		if cr["kind"] != "Policy" || cr["operationKind"] != "Delete" {
			t.Fatalf("change request: %v", cr)
		}
		got := e.mustCall(admin, 200, "GET", "/v2/policies/"+id, nil)
		if got["pendingChangeRequest"] == nil || got["status"] != "Active" {
			t.Errorf("policy while pending: %v", got)
		}
		e.mustCall(b, 200, "POST", "/v2/policy-approvals/"+cr["approvalId"].(string)+"/decisions", map[string]any{"value": "Approved"})
		got = e.mustCall(admin, 200, "GET", "/v2/policies/"+id, nil)
		if got["status"] != "Archived" {
			t.Errorf("policy after approval: %v", got["status"])
		}
	})
}

func TestBlockPolicyAndExpiry(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	pm := e.permission(admin, "blocked", "Wallets:Read")
	pol := e.mustCall(admin, 200, "POST", "/v2/policies", map[string]any{
		"name": "no-modify", "activityKind": "Permissions:Modify", "rule": map[string]any{"kind": "AlwaysTrigger"}, "action": map[string]any{"kind": "Block"},
	})
	e.mustCall(admin, 403, "PUT", "/permissions/"+pm, map[string]any{"name": "x"})
	e.mustCall(admin, 200, "DELETE", "/v2/policies/"+pol["id"].(string), nil)
	e.mustCall(admin, 200, "PUT", "/permissions/"+pm, map[string]any{"name": "x"})

	timeout := approvalPolicy("expiring", "Permissions:Modify", 1, nil)
	timeout["action"].(map[string]any)["autoRejectTimeout"] = 5
	e.mustCall(admin, 200, "POST", "/v2/policies", timeout)
	cr := e.mustCall(admin, 202, "PUT", "/permissions/"+pm, map[string]any{"name": "y"})
	e.advance(10 * time.Minute)
	ap := e.mustCall(admin, 200, "GET", "/v2/policy-approvals/"+cr["approvalId"].(string), nil)
	if ap["status"] != "Expired" {
		t.Errorf("approval after timeout: %v", ap["status"])
	}
	got := e.mustCall(admin, 200, "GET", "/permissions/"+pm, nil)
	if got["name"] != "x" || got["pendingChangeRequest"] != nil {
		t.Errorf("permission after expiry: %v", got)
	}
}
