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
	"time"

	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

func TestAssignmentObserve(t *testing.T) {
	const perm, user, oldUser, as = "pm-1", "us-new", "us-old", "as-1"
	pending := &v1alpha1.ChangeRequestStatus{ID: "cr-1", ApprovalID: "ap-1", Status: crPending, Generation: 1}
	list := func(items ...dfns.Assignment) func(string) ([]dfns.Assignment, error) {
		return func(string) ([]dfns.Assignment, error) { return items, nil }
	}
	approval := func(status string) func(string) (*dfns.Approval, error) {
		return func(string) (*dfns.Approval, error) { return &dfns.Approval{Status: status}, nil }
	}
	cases := map[string]struct {
		reason  string
		id      string
		pending *v1alpha1.ChangeRequestStatus
		api     *fakeAPI
		want    string // "exists/uptodate/id", "replace:<id>:<reason>", "pending:<cr>", "create" or "err:<reason>"
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
			want:   "replace::" + EventRecreated,
		},
		"IdentityReplaced": {
			reason: "the recorded assignment belongs to the old identity: revoke it and assign the new one",
			id:     as,
			api:    &fakeAPI{listAssigns: list(dfns.Assignment{ID: as, PermissionID: perm, IdentityID: oldUser})},
			want:   "replace:" + as + ":" + EventReassigned,
		},
		"Pending": {
			reason:  "an assign held for approval is followed, not listed or resent",
			pending: pending,
			api:     &fakeAPI{getApproval: approval(crPending)},
			want:    "pending:cr-1",
		},
		"Denied": {
			reason:  "a denied assign stops until the spec changes",
			pending: pending,
			api:     &fakeAPI{getApproval: approval("Denied")},
			want:    "err:" + v1alpha1.ReasonChangeRejected,
		},
		"Approved": {
			reason:  "an approved assign is cleared and the assignment found",
			pending: pending,
			api: &fakeAPI{getApproval: approval(apApproved),
				listAssigns: list(dfns.Assignment{ID: as, PermissionID: perm, IdentityID: user})},
			want: "true/true/" + as,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := &v1alpha1.DfnsPermissionAssignment{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grant", Generation: 1},
				Spec:       v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: perm}, IdentityID: user},
			}
			if tc.pending != nil {
				cp := *tc.pending
				a.Status.PendingChangeRequest = &cp
			}
			e := &assignments{api: tc.api, client: fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).Build(), lists: newListCache[dfns.Assignment](time.Minute)}
			obs, err := e.Observe(context.Background(), a, tc.id)
			var got string
			switch {
			case err != nil:
				got = "err:" + classify(err).reason
			case obs.Pending != nil:
				got = "pending:" + obs.Pending.ID
			case obs.Replace != nil:
				got = "replace:" + obs.Replace.ID + ":" + obs.Replace.Reason
			case !obs.Exists:
				got = "create"
			default:
				got = boolString(obs.Exists) + "/" + boolString(obs.UpToDate) + "/" + obs.ID
			}
			if got != tc.want {
				t.Errorf("%s\nObserve = %s, want %s (calls %v)", tc.reason, got, tc.want, tc.api.calls)
			}
			if tc.want == "pending:cr-1" && len(tc.api.calls) != 0 && tc.api.calls[0] == "ListAssignments" {
				t.Errorf("%s: listed assignments while a change is pending", tc.reason)
			}
		})
	}
}
