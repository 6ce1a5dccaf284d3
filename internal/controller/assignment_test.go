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
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

func TestAssignmentObserve(t *testing.T) {
	const perm, user, oldUser, as = "pm-1", "us-new", "us-old", "as-1"
	list := func(items ...dfns.Assignment) func(string) ([]dfns.Assignment, error) {
		return func(string) ([]dfns.Assignment, error) { return items, nil }
	}
	cases := map[string]struct {
		reason string
		id     string
		api    *fakeAPI
		want   string // "exists/uptodate/id", "replace:<id>:<reason>", "create" or "err:<reason>"
	}{
		"Found": {
			reason: "the permission is assigned to the identity: up to date, whatever was recorded",
			api:    &fakeAPI{listAssigns: list(dfns.Assignment{ID: as, PermissionID: perm, IdentityID: user})},
			want:   "true/true/" + as,
		},
		"NotYet": {
			reason: "nothing recorded and nothing found: assign",
			api:    &fakeAPI{listAssigns: list(dfns.Assignment{ID: "as-9", IdentityID: "us-other"})},
			want:   "create",
		},
		"Revoked": {
			reason: "the recorded assignment is gone: assign again",
			id:     as,
			api:    &fakeAPI{listAssigns: list()},
			want:   "replace::" + driver.EventRecreated,
		},
		"IdentityReplaced": {
			reason: "the recorded assignment belongs to the old identity: assign the new one, revoke the old after the grace period",
			id:     as,
			api:    &fakeAPI{listAssigns: list(dfns.Assignment{ID: as, PermissionID: perm, IdentityID: oldUser})},
			want:   "rotate:" + as + ":" + EventReassigned,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.DfnsPermissionAssignment{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant", Generation: 1},
				Spec:       v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: perm}, IdentityID: user},
			}
			e := &assignments{link: link{api: tc.api}, client: fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).Build(), lists: driver.NewListCache(time.Minute, assignmentFields)}
			obs, err := e.Observe(context.Background(), a, driver.Recorded{ID: tc.id, Proved: true})
			var got string
			switch {
			case err != nil:
				got = "err:" + classify(err).Reason
			case obs.Replace != nil:
				got = "replace:" + obs.Replace.ID + ":" + obs.Replace.Reason
			case obs.Rotate != nil:
				got = "rotate:" + obs.Rotate.ID + ":" + obs.Rotate.Reason
			case !obs.Exists:
				got = "create"
			default:
				got = boolString(obs.Exists) + "/" + boolString(obs.UpToDate) + "/" + obs.ID
			}
			if got != tc.want {
				t.Errorf("%s\nObserve = %s, want %s (calls %v)", tc.reason, got, tc.want, tc.api.calls)
			}
		})
	}
}

// TestAssignmentKeptList: a new assignment costs no list of the permission's assignments
// beyond the one kept for the sync period, an assign the operator may have sent is looked for
// in a fresh list, and a 409 (assigned by another hand meanwhile) is retried, not stopped on.
func TestAssignmentKeptList(t *testing.T) {
	const perm, user = "pm-1", "us-new"
	inDfns := []dfns.Assignment{{ID: "as-9", PermissionID: perm, IdentityID: "us-other"}}
	var assignErr error
	api := &fakeAPI{
		listAssigns: func(string) ([]dfns.Assignment, error) { return slices.Clone(inDfns), nil },
		assign: func(p, i string) (*dfns.Assignment, error) {
			if assignErr != nil {
				return nil, assignErr
			}
			a := dfns.Assignment{ID: "as-1", PermissionID: p, IdentityID: i}
			inDfns = append(inDfns, a)
			return &a, nil
		},
	}
	e := &assignments{link: link{api: api}, client: fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).Build(),
		lists: driver.NewListCache(time.Minute, assignmentFields)}
	a := &v1alpha1.DfnsPermissionAssignment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant", Generation: 1},
		Spec:       v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: perm}, IdentityID: user},
	}
	ctx := context.Background()
	lists := func() int { return countOf(api.calls, "ListAssignments") }
	var last driver.Observation[assignmentView]
	observe := func(step, id string, wantExists bool, wantLists int) {
		t.Helper()
		rec := driver.Recorded{ID: id, Proved: id != ""}
		if _, ok := a.Annotations[v1alpha1.AnnotationCreatePending]; ok {
			rec.Marked = perm + " " + user
		}
		obs, err := e.Observe(ctx, a, rec)
		last = obs
		if err != nil || obs.Exists != wantExists || lists() != wantLists {
			t.Fatalf("%s: Observe = exists %t, %v after %d lists; want exists %t after %d", step, obs.Exists, err, lists(), wantExists, wantLists)
		}
	}
	observe("first look", "", false, 1)
	observe("never assigned: the kept list is trusted", "", false, 1)

	a.Annotations = map[string]string{v1alpha1.AnnotationCreatePending: "2026-01-01T00:00:00Z"}
	observe("an assign may have been sent: listed afresh", "", false, 2)
	c, err := createAsDriver(ctx, e, a, last, func() {})
	if err != nil || c.ID != "as-1" {
		t.Fatalf("Create = %v, %v", c, err)
	}
	observe("the kept list learnt of the assign", "as-1", true, 2)

	a.Annotations, a.Spec.IdentityID = nil, "us-third"
	assignErr = &dfns.Error{StatusCode: http.StatusConflict, Message: "permission pm-1 is already assigned to us-third"}
	observe("assigned meanwhile by another hand, unseen in the kept list", "", false, 2)
	_, err = createAsDriver(ctx, e, a, last, func() {})
	if v := classify(err); err == nil || v.Policy != driver.Retry || v.Reason == v1alpha1.ReasonNameConflict {
		t.Errorf("a 409 to an assign is retried, not a name to change: %v (%+v)", err, v)
	}
}

// countOf counts the calls named name.
func countOf(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

// revokeAPI records the revokes it is asked for.
type revokeAPI struct {
	fakeAPI
	revoked []string
}

func (f *revokeAPI) RevokePermission(_ context.Context, permissionID, assignmentID string) error {
	f.revoked = append(f.revoked, permissionID+"/"+assignmentID)
	return nil
}

// TestAssignmentDeleteWithoutStatus: an assignment whose status lost its permission (a status
// patch that never landed, a restore) is still revoked, through its reference; with no way to
// know the permission, deletion waits rather than claiming success.
func TestAssignmentDeleteWithoutStatus(t *testing.T) {
	perm := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "treasury"},
		Status: v1alpha1.DfnsPermissionStatus{PermissionID: "pm-9"}}
	for name, tc := range map[string]struct {
		ref  v1alpha1.PermissionRef
		want string
	}{
		"ByID":    {v1alpha1.PermissionRef{ID: "pm-7"}, "pm-7/as-1"},
		"ByName":  {v1alpha1.PermissionRef{Name: "treasury"}, "pm-9/as-1"},
		"Unknown": {v1alpha1.PermissionRef{Name: "gone"}, "wait"},
	} {
		t.Run(name, func(t *testing.T) {
			api := &revokeAPI{}
			e := &assignments{link: link{api: api}, client: fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(perm).Build(),
				lists: driver.NewListCache(time.Minute, assignmentFields)}
			a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant"},
				Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: tc.ref, IdentityID: "us-1"}}
			err := e.Delete(context.Background(), a, "as-1")
			got := strings.Join(api.revoked, ",")
			if err != nil {
				got = "wait"
				if v := classify(err); v.Policy != driver.Wait {
					t.Errorf("error %v is not a wait", err)
				}
			}
			if got != tc.want {
				t.Errorf("Delete revoked %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReferenceNotYetCached: an identity applied with its assignment but not yet in the cache
// is read past it, and waited for without a word (it has not been reconciled); one missing
// from both is reported.
func TestReferenceNotYetCached(t *testing.T) {
	s := testSchemeUnit(t)
	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}}
	e := &assignments{link: link{api: &fakeAPI{}}, lists: driver.NewListCache(time.Minute, assignmentFields),
		client: references{cache: fake.NewClientBuilder().WithScheme(s).Build(), direct: fake.NewClientBuilder().WithScheme(s).WithObjects(sa).Build()}}
	for name, want := range map[string]driver.Verdict{
		"app":  {Reason: v1alpha1.ReasonIdentityNotReady, Policy: driver.Wait, Quiet: true},
		"typo": {Reason: v1alpha1.ReasonIdentityNotReady, Policy: driver.Wait},
	} {
		a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: "pm-1"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: name}}}
		_, _, err := e.resolve(context.Background(), a)
		got := driver.Classify(nil, err)
		if got.Reason != want.Reason || got.Policy != want.Policy || got.Quiet != want.Quiet {
			t.Errorf("identity %s: %+v; want %+v", name, got, want)
		}
	}
}

// TestConnectionCheckReadsPastTheCache: the connection check of an assignment whose service
// account was applied with it, but is not in the cache yet, reads the account past the cache
// instead of reporting it missing; an account missing from both is reported.
func TestConnectionCheckReadsPastTheCache(t *testing.T) {
	s := testSchemeUnit(t)
	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}}
	c := &connector[*v1alpha1.DfnsPermissionAssignment, assignmentView]{kind: kindAssignment,
		cache: references{cache: fake.NewClientBuilder().WithScheme(s).Build(), direct: fake.NewClientBuilder().WithScheme(s).WithObjects(sa).Build()}}
	for name, wantErr := range map[string]bool{"app": false, "typo": true} {
		a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: "pm-1"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: name}}}
		if err := c.sameConnection(context.Background(), nil, a); (err != nil) != wantErr {
			t.Errorf("identity %s: %v; want an error %t", name, err, wantErr)
		}
	}
}
