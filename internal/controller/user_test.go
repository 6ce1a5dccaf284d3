/*
Copyright 2026 The dfns-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// fakeUsers is a dfns.API that serves only the user endpoints, from a list; any other call
// panics through the nil embedded interface.
type fakeUsers struct {
	dfns.API
	all []dfns.User
	// refuse answers every change with this error when set.
	refuse error
	calls  []string
}

func (f *fakeUsers) ListUsers(context.Context, string) ([]dfns.User, error) {
	f.calls = append(f.calls, "ListUsers")
	return slices.Clone(f.all), nil
}

func (f *fakeUsers) GetUser(_ context.Context, id string) (*dfns.User, error) {
	f.calls = append(f.calls, "GetUser")
	return f.find(id)
}

func (f *fakeUsers) find(id string) (*dfns.User, error) {
	for i := range f.all {
		if f.all[i].UserID == id {
			return &f.all[i], nil
		}
	}
	return nil, notFound
}

func (f *fakeUsers) change(call, id string) (*dfns.User, error) {
	f.calls = append(f.calls, call+":"+id)
	if f.refuse != nil {
		return nil, f.refuse
	}
	return f.find(id)
}

func (f *fakeUsers) DeactivateUser(_ context.Context, id string) (*dfns.User, error) {
	return f.change("DeactivateUser", id)
}

func (f *fakeUsers) ActivateUser(_ context.Context, id string) (*dfns.User, error) {
	return f.change("ActivateUser", id)
}

func (f *fakeUsers) DeleteUser(_ context.Context, id string) error {
	_, err := f.change("DeleteUser", id)
	return err
}

// person is a user as Dfns lists it.
func person(id, email string, active bool) dfns.User {
	return dfns.User{UserInfo: dfns.UserInfo{UserID: id, Username: email, Name: email, Kind: dfns.UserKindEmployee, IsActive: active}}
}

func testUsers(api dfns.API) *users {
	e := &users{lists: driver.NewListCache(time.Minute, userFields)}
	return e.bind(link{api: api, key: "c", self: "operator@example.com"}).(*users)
}

// TestUserObserve: a user is found by its e-mail, whatever its case, but only a person with
// the spec's e-mail is ever taken as the resource's.
func TestUserObserve(t *testing.T) {
	all := []dfns.User{person("us-1", "Alice@Example.com", true), person("us-2", "bob@example.com", false),
		{UserInfo: dfns.UserInfo{UserID: "us-3", Username: "sa@example.com", IsServiceAccount: true, IsActive: true}}}
	cases := map[string]struct {
		reason string
		email  string
		active bool
		rec    driver.Recorded
		want   string // exists:<id>:<upToDate>:<marker>, create, replace, or err:<reason>
	}{
		"FoundByEmail":   {"with nothing recorded the user is found by e-mail, in any case", "alice@example.com", true, driver.Recorded{}, "exists:us-1:true:alice@example.com"},
		"Drift":          {"an inactive user wanted active is not up to date", "bob@example.com", true, driver.Recorded{}, "exists:us-2:false:bob@example.com"},
		"NotFound":       {"an e-mail nobody has is invited", "carol@example.com", true, driver.Recorded{}, "create"},
		"ServiceAccount": {"a service account is never taken for a person", "sa@example.com", true, driver.Recorded{}, "create"},
		"Recorded":       {"the recorded user is read", "bob@example.com", false, driver.Recorded{ID: "us-2", Proved: true}, "exists:us-2:true:bob@example.com"},
		"OtherEmail":     {"a claimed ID of another person is refused", "carol@example.com", true, driver.Recorded{ID: "us-1"}, "err:InvalidSpec"},
		"Gone":           {"a recorded user deleted in Dfns is invited again", "dave@example.com", true, driver.Recorded{ID: "us-9", Proved: true}, "replace"},
		"GoneMarked": {"a lost answer to the invitation sent again is found by e-mail", "alice@example.com", true,
			driver.Recorded{ID: "us-9", Proved: true, Marked: "alice@example.com"}, "exists:us-1:true:alice@example.com"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := newUserFixture(tc.email)
			u.Spec.Active = ptr.To(tc.active)
			obs, err := testUsers(&fakeUsers{all: all}).Observe(context.Background(), u, tc.rec)
			var got string
			switch {
			case err != nil:
				got = "err:" + classify(err).Reason
			case obs.Exists:
				got = "exists:" + obs.ID + ":" + map[bool]string{true: "true", false: "false"}[obs.UpToDate] + ":" + obs.Marker
			case obs.Replace != nil:
				got = "replace"
			default:
				got = "create"
			}
			if got != tc.want {
				t.Errorf("%s\nObserve = %s, want %s", tc.reason, got, tc.want)
			}
		})
	}
}

func newUserFixture(email string) *v1alpha1.DfnsUser {
	return &v1alpha1.DfnsUser{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "u", UID: "uid-1"}, Spec: v1alpha1.DfnsUserSpec{Email: email}}
}

// TestUserReport: status shows the registration and activity of the recorded user only: a
// user only found by e-mail may be someone else's, refused by the driver.
func TestUserReport(t *testing.T) {
	got := person("us-1", "a@example.com", true)
	got.IsRegistered = true
	u := newUserFixture("a@example.com")
	e := testUsers(&fakeUsers{})
	e.Report(u, driver.Observation[*dfns.User]{ID: "us-1", Exists: true, Current: &got})
	if u.Status.Registered != nil || u.Status.Active != nil {
		t.Errorf("a user found by e-mail only was reported: %+v", u.Status)
	}
	u.Status.UserID = "us-1"
	e.Report(u, driver.Observation[*dfns.User]{ID: "us-1", Exists: true, Current: &got})
	if !ptr.Deref(u.Status.Registered, false) || !ptr.Deref(u.Status.Active, false) {
		t.Errorf("the recorded user was not reported: %+v", u.Status)
	}
}

// TestUserValidate: no DfnsUser may manage the user the connection logs in as.
func TestUserValidate(t *testing.T) {
	e := testUsers(&fakeUsers{})
	if err := e.Validate(context.Background(), newUserFixture("Operator@example.com")); classify(err).Reason != v1alpha1.ReasonNotPermitted {
		t.Errorf("the operator's own user: %v, want NotPermitted", err)
	}
	if err := e.Validate(context.Background(), newUserFixture("alice@example.com")); err != nil {
		t.Errorf("another user: %v", err)
	}
}

// TestUserDelete: the deletion policy picks the call; a user already gone is fine; a refusal
// (a policy naming the user as an approver) waits rather than forcing.
func TestUserDelete(t *testing.T) {
	badRequest := &dfns.Error{StatusCode: http.StatusBadRequest, Message: "user us-1 is an approver in policy plc-1"}
	cases := map[string]struct {
		reason string
		policy v1alpha1.DeletionPolicy
		id     string
		refuse error
		call   string
		want   string // "" or err:<reason>/<policy>
	}{
		"Default":    {"people are deactivated by default", "", "us-1", nil, "DeactivateUser:us-1", ""},
		"Delete":     {"Delete deletes", v1alpha1.DeletionPolicyDelete, "us-1", nil, "DeleteUser:us-1", ""},
		"Gone":       {"a user already gone is fine", v1alpha1.DeletionPolicyDelete, "us-9", notFound, "DeleteUser:us-9", ""},
		"GoneDeact":  {"a user already gone is fine to deactivate too", "", "us-9", notFound, "DeactivateUser:us-9", ""},
		"Approver":   {"an approver's deactivation waits", "", "us-1", badRequest, "DeactivateUser:us-1", "err:DeletionRefused/wait"},
		"ApproverDe": {"an approver's deletion waits", v1alpha1.DeletionPolicyDelete, "us-1", badRequest, "DeleteUser:us-1", "err:DeletionRefused/wait"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fakeUsers{all: []dfns.User{person("us-1", "a@example.com", true)}, refuse: tc.refuse}
			u := newUserFixture("a@example.com")
			u.Spec.DeletionPolicy = tc.policy
			err := testUsers(f).Delete(context.Background(), u, tc.id)
			got := ""
			if err != nil {
				v := classify(err)
				got = "err:" + v.Reason + "/" + map[driver.Policy]string{driver.Wait: "wait", driver.Stop: "stop", driver.Retry: "retry"}[v.Policy]
			}
			if got != tc.want || !slices.Equal(f.calls, []string{tc.call}) {
				t.Errorf("%s\nDelete = %q after %v, want %q after [%s]", tc.reason, got, f.calls, tc.want, tc.call)
			}
		})
	}
}

// TestPolicyApproversByResource: userRefs join userId.in, each ID once, in order; the policy
// waits for a DfnsUser missing or not Ready, and reads its ID from status only.
func TestPolicyApproversByResource(t *testing.T) {
	ready := func(name, id string) *v1alpha1.DfnsUser {
		return &v1alpha1.DfnsUser{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Annotations: map[string]string{v1alpha1.AnnotationExternalID: "us-forged"}},
			Status: v1alpha1.DfnsUserStatus{UserID: id, ManagedStatus: v1alpha1.ManagedStatus{
				Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAvailable}}}}}
	}
	invited := &v1alpha1.DfnsUser{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new"}}
	c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(ready("alice", "us-a"), ready("bob", "us-b"), invited).Build()
	e := &policies{client: c}
	cases := map[string]struct {
		reason string
		groups []v1alpha1.Approvers
		want   string
	}{
		"Merged": {"refs follow the IDs, each once", []v1alpha1.Approvers{{UserID: &v1alpha1.IDFilter{In: []string{"us-x", "us-b"}},
			UserRefs: []v1alpha1.UserRef{{Name: "alice"}, {Name: "bob"}}}}, `[["us-x","us-b","us-a"]]`},
		"RefsOnly":  {"refs alone make userId.in", []v1alpha1.Approvers{{UserRefs: []v1alpha1.UserRef{{Name: "bob"}}}, {}}, `[["us-b"],null]`},
		"NotReady":  {"a DfnsUser not Ready is waited for", []v1alpha1.Approvers{{UserRefs: []v1alpha1.UserRef{{Name: "new"}}}}, "err:IdentityNotReady"},
		"Missing":   {"a missing DfnsUser is waited for", []v1alpha1.Approvers{{UserRefs: []v1alpha1.UserRef{{Name: "nobody"}}}}, "err:IdentityNotReady"},
		"NoRefsIDs": {"without refs nothing changes", []v1alpha1.Approvers{{UserID: &v1alpha1.IDFilter{In: []string{"us-x"}}}}, `[["us-x"]]`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1alpha1.DfnsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
				Spec: v1alpha1.DfnsPolicySpec{ActivityKind: "Wallets:Sign", Action: v1alpha1.PolicyAction{Kind: "RequestApproval"}}}
			for _, g := range tc.groups {
				p.Spec.Action.ApprovalGroups = append(p.Spec.Action.ApprovalGroups, v1alpha1.ApprovalGroup{Quorum: 1, Approvers: g})
			}
			body, err := e.body(context.Background(), p)
			var got string
			if err != nil {
				got = "err:" + classify(err).Reason
			} else {
				ins := make([]any, 0, len(body.Action.ApprovalGroups))
				for _, g := range body.Action.ApprovalGroups {
					var in any
					if f, ok := g.Approvers["userId"].(map[string]any); ok {
						in = f["in"]
					}
					ins = append(ins, in)
				}
				b, _ := json.Marshal(ins)
				got = string(b)
			}
			if got != tc.want {
				t.Errorf("%s\nbody approvers = %s, want %s", tc.reason, got, tc.want)
			}
		})
	}
	if got := approverNames(&v1alpha1.DfnsPolicy{Spec: v1alpha1.DfnsPolicySpec{Action: v1alpha1.PolicyAction{ApprovalGroups: []v1alpha1.ApprovalGroup{
		{Approvers: v1alpha1.Approvers{UserRefs: []v1alpha1.UserRef{{Name: "a"}, {Name: "b"}}}},
		{Approvers: v1alpha1.Approvers{UserRefs: []v1alpha1.UserRef{{Name: "b"}, {Name: "c"}}}}}}}}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("approverNames = %v, want each name once", got)
	}
}
