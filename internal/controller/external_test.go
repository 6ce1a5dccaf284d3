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
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

const nsP = "ns/p"

// fakeAPI is a function-field dfns.API: a test sets the calls it expects; any other call
// panics through the nil embedded interface, failing the test.
type fakeAPI struct {
	dfns.API
	listSAs       func() ([]dfns.ServiceAccount, error)
	getSA         func(id string) (*dfns.ServiceAccount, error)
	createSA      func(req dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error)
	deleteSA      func(id string) error
	getPermission func(id string) (*dfns.Permission, error)
	getApproval   func(id string) (*dfns.Approval, error)
	listApprovals func(f dfns.ApprovalFilter) ([]dfns.Approval, error)
	listAssigns   func(permissionID string) ([]dfns.Assignment, error)
	assign        func(permissionID, identityID string) (*dfns.Assignment, error)
	canCreate     bool
	calls         []string
}

func (f *fakeAPI) call(name string) { f.calls = append(f.calls, name) }

func (f *fakeAPI) ListServiceAccounts(context.Context) ([]dfns.ServiceAccount, error) {
	f.call("ListServiceAccounts")
	if f.listSAs == nil {
		return nil, errors.New("the list is not faked")
	}
	return f.listSAs()
}

func (f *fakeAPI) GetServiceAccount(_ context.Context, id string) (*dfns.ServiceAccount, error) {
	f.call("GetServiceAccount")
	return f.getSA(id)
}

func (f *fakeAPI) CreateServiceAccount(_ context.Context, req dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
	f.call("CreateServiceAccount")
	return f.createSA(req)
}

func (f *fakeAPI) DeleteServiceAccount(_ context.Context, id string) error {
	f.call("DeleteServiceAccount:" + id)
	return f.deleteSA(id)
}

func (f *fakeAPI) CanCreateIdentities(context.Context) (bool, error) { return f.canCreate, nil }

func (f *fakeAPI) Admit() error { return nil }

func (f *fakeAPI) Endpoint(context.Context) (string, string, error) {
	return "https://dfns.test", "or-1", nil
}

func (f *fakeAPI) GetPermission(_ context.Context, id string) (*dfns.Permission, error) {
	f.call("GetPermission")
	return f.getPermission(id)
}

func (f *fakeAPI) ListAssignments(_ context.Context, permissionID string) ([]dfns.Assignment, error) {
	f.call("ListAssignments")
	return f.listAssigns(permissionID)
}

func (f *fakeAPI) AssignPermission(_ context.Context, permissionID, identityID string) (*dfns.Assignment, error) {
	f.call("AssignPermission")
	return f.assign(permissionID, identityID)
}

func (f *fakeAPI) GetApproval(_ context.Context, id string) (*dfns.Approval, error) {
	f.call("GetApproval")
	return f.getApproval(id)
}

func (f *fakeAPI) ListApprovals(_ context.Context, filter dfns.ApprovalFilter) ([]dfns.Approval, error) {
	f.call("ListApprovals")
	return f.listApprovals(filter)
}

var notFound = &dfns.Error{StatusCode: http.StatusNotFound}

// saFixture is a DfnsServiceAccount referencing permission pm-1 by ID.
func saFixture(annotations map[string]string) *v1alpha1.DfnsServiceAccount {
	return &v1alpha1.DfnsServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "DfnsServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: tSAName, UID: tUID, Annotations: annotations},
		Spec:       v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{ID: tPermID}},
	}
}

// ownedSecret is the resource's Secret holding the token of service account id.
func ownedSecret(id, token string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: tSAName,
		Labels:          map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations:     map[string]string{v1alpha1.AnnotationExternalID: id},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "DfnsServiceAccount", Name: tSAName, UID: tUID, Controller: ptr.To(true)}}},
		Data: map[string][]byte{KeyAuthToken: []byte(token), KeyPrivateKey: []byte("key")}}
}

// tSADfnsName is the Dfns name of saFixture's minted account.
const tSADfnsName = "ns/" + tSAName + ".x1y2z3"

func account(id, name string, active bool) dfns.ServiceAccount {
	return dfns.ServiceAccount{UserInfo: dfns.UserInfo{UserID: id, Name: name, IsActive: active},
		AccessTokens: []dfns.AccessToken{{TokenID: "to-" + id}}}
}

func TestServiceAccountObserve(t *testing.T) {
	pending := map[string]string{v1alpha1.AnnotationCreatePending: tPendingSince}
	recorded := map[string]string{v1alpha1.AnnotationExternalID: tSAID}
	cases := map[string]struct {
		reason string
		sa     *v1alpha1.DfnsServiceAccount
		secret bool
		fp     string // status.secretFingerprint
		// statusID is the ID status records when it lags the annotation ("": the recorded one).
		statusID string
		api      *fakeAPI
		want     string // "exists/uptodate/id" or "replace:<id>:<reason>" or "rotate:<id>:<reason>" or "err:<reason>"
	}{
		"NothingFound": {
			reason: "no recorded ID and no account of that name: create",
			sa:     saFixture(nil),
			api: &fakeAPI{listSAs: func() ([]dfns.ServiceAccount, error) {
				return []dfns.ServiceAccount{account("us-9", "other", true)}, nil
			}},
			want: "false/false/",
		},
		"UnmarkedLooksNowhere": {
			reason: "without a create-pending mark nothing can exist: no list, whatever Dfns holds",
			sa:     saFixture(nil),
			api:    &fakeAPI{},
			want:   "false/false/",
		},
		"OrphanAfterLostAnswer": {
			reason: "create-pending set and no Secret with its token: the account is an orphan, replaced",
			sa:     saFixture(pending),
			api: &fakeAPI{listSAs: func() ([]dfns.ServiceAccount, error) {
				return []dfns.ServiceAccount{account("us-9", tSADfnsName, true)}, nil
			}},
			want: "replace:us-9:OrphanDeleted",
		},
		"AdoptAfterLostIDPatch": {
			reason: "our Secret holds the account's token: only the ID patch was lost, adopt",
			sa:     saFixture(pending), secret: true,
			api: &fakeAPI{listSAs: func() ([]dfns.ServiceAccount, error) {
				return []dfns.ServiceAccount{account(tSAID, tSADfnsName, true)}, nil
			}},
			want: "true/true/us-1",
		},
		"StatusLagsRecord": {
			reason: "a rotation recorded its ID but not yet its status: the Secret naming the new identity is intact, not edited",
			sa:     saFixture(recorded), secret: true, fp: "fingerprint-of-the-previous-token", statusID: "us-0",
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, tSADfnsName, true)
				return &a, nil
			}},
			want: "true/true/us-1",
		},
		"RotationRecordLost": {
			reason: "a rotation whose Secret was written but whose ID was not recorded: the new account, superseding the recorded one",
			sa:     saFixture(map[string]string{v1alpha1.AnnotationExternalID: "us-0", v1alpha1.AnnotationCreatePending: tPendingSince}), secret: true,
			api: &fakeAPI{
				getSA: func(string) (*dfns.ServiceAccount, error) {
					a := account("us-0", "ns/api.old000", true)
					return &a, nil
				},
				listSAs: func() ([]dfns.ServiceAccount, error) {
					return []dfns.ServiceAccount{account("us-0", "ns/api.old000", true), account(tSAID, tSADfnsName, true)}, nil
				},
			},
			want: "true/true/us-1 superseding us-0",
		},
		"RotationOrphan": {
			reason: "a rotation minted but its Secret still holds the recorded token: the orphan goes, the recorded one stays for now",
			sa:     saFixture(map[string]string{v1alpha1.AnnotationExternalID: tSAID, v1alpha1.AnnotationCreatePending: tPendingSince}), secret: true,
			api: &fakeAPI{
				getSA: func(string) (*dfns.ServiceAccount, error) { a := account(tSAID, "ns/api.old000", true); return &a, nil },
				listSAs: func() ([]dfns.ServiceAccount, error) {
					return []dfns.ServiceAccount{account(tSAID, "ns/api.old000", true), account("us-9", tSADfnsName, true)}, nil
				},
			},
			want: "replace:us-9:OrphanDeleted rotate:us-1:Rotated",
		},
		"DeletedInDfns": {
			reason: "the recorded account is gone: create a new one",
			sa:     saFixture(recorded),
			api: &fakeAPI{
				getSA:   func(string) (*dfns.ServiceAccount, error) { return nil, notFound },
				listSAs: func() ([]dfns.ServiceAccount, error) { return nil, nil },
			},
			want: "replace::Recreated",
		},
		"DeletedThenCreateLost": {
			reason: "the recorded account is gone and the answer to its replacement's create was lost: the replacement is an orphan",
			sa:     saFixture(map[string]string{v1alpha1.AnnotationExternalID: tSAID, v1alpha1.AnnotationCreatePending: tPendingSince}),
			api: &fakeAPI{
				getSA: func(string) (*dfns.ServiceAccount, error) { return nil, notFound },
				listSAs: func() ([]dfns.ServiceAccount, error) {
					return []dfns.ServiceAccount{account("us-9", tSADfnsName, true)}, nil
				},
			},
			want: "replace:us-9:OrphanDeleted",
		},
		"SecretGone": {
			reason: "the Secret is gone: mint a new account, keeping the old for the grace period",
			sa:     saFixture(recorded), fp: "x",
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, tSADfnsName, true)
				return &a, nil
			}},
			want: "rotate:us-1:Reminted",
		},
		"ProvedWithoutSecret": {
			reason: "a proved account whose Secret is gone and whose fingerprint status lost is minted anew",
			sa:     saFixture(recorded),
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, tSADfnsName, true)
				return &a, nil
			}},
			want: "rotate:us-1:Reminted",
		},
		"SecretEdited": {
			reason: "the token in the Secret no longer matches the fingerprint: mint a new account",
			sa:     saFixture(recorded), secret: true, fp: "not-the-fingerprint",
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, tSADfnsName, true)
				return &a, nil
			}},
			want: "rotate:us-1:Reminted",
		},
		"Deactivated": {
			reason: "deactivated in Dfns while active is wanted: update",
			sa:     saFixture(recorded), secret: true,
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, tSADfnsName, false)
				return &a, nil
			}},
			want: "true/false/us-1",
		},
		"FromTheList": {
			reason: "a drift check reads the account from the kind's list, without a GET",
			sa:     saFixture(recorded), secret: true,
			api: &fakeAPI{listSAs: func() ([]dfns.ServiceAccount, error) {
				return []dfns.ServiceAccount{account(tSAID, tSADfnsName, true)}, nil
			}},
			want: "true/true/us-1",
		},
		"UsernameOnly": {
			reason: "an answer with the name as username only is not a rename",
			sa:     saFixture(recorded), secret: true,
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, "", true)
				a.UserInfo.Username = tSADfnsName
				return &a, nil
			}},
			want: "true/true/us-1",
		},
		"Renamed": {
			reason: "renamed in Dfns: update",
			sa:     saFixture(recorded), secret: true,
			api: &fakeAPI{getSA: func(string) (*dfns.ServiceAccount, error) {
				a := account(tSAID, "renamed", true)
				return &a, nil
			}},
			want: "true/false/us-1",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{tc.sa}
			if tc.secret {
				objs = append(objs, ownedSecret(tSAID, "tok"))
			}
			c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(objs...).Build()
			tc.sa.Status.SecretFingerprint = tc.fp
			if tc.fp != "" {
				// A fingerprint in status comes with the ID of the identity it describes.
				tc.sa.Status.ServiceAccountID = driver.ExternalID(tc.sa)
				if tc.statusID != "" {
					tc.sa.Status.ServiceAccountID = tc.statusID
				}
			}
			e := testServiceAccounts(tc.api, c)
			rec := driver.Recorded{ID: driver.ExternalID(tc.sa), Proved: true}
			if _, ok := tc.sa.Annotations[v1alpha1.AnnotationCreatePending]; ok {
				rec.Marked = tSADfnsName
			}
			obs, err := e.Observe(context.Background(), tc.sa, rec)
			var got string
			switch {
			case err != nil:
				got = "err:" + classify(err).Reason
			case obs.Replace != nil:
				got = "replace:" + obs.Replace.ID + ":" + obs.Replace.Reason
				if obs.Rotate != nil {
					got += " rotate:" + obs.Rotate.ID + ":" + obs.Rotate.Reason
				}
			case obs.Rotate != nil:
				got = "rotate:" + obs.Rotate.ID + ":" + obs.Rotate.Reason
			default:
				got = strings.Join([]string{boolString(obs.Exists), boolString(obs.UpToDate), obs.ID}, "/")
				if obs.Superseded != "" {
					got += " superseding " + obs.Superseded
				}
			}
			if got != tc.want {
				t.Errorf("%s\nObserve = %s, want %s", tc.reason, got, tc.want)
			}
		})
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// withoutCredID answers a create as create does, with an empty credId.
func withoutCredID(create func(dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error)) func(dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
	return func(req dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
		a, err := create(req)
		if a != nil {
			a.AccessTokens[0].CredID = ""
		}
		return a, err
	}
}

func TestServiceAccountCreate(t *testing.T) {
	created := func(req dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
		if req.ExternalID != tUID || req.PermissionID != tPermID || !strings.HasPrefix(req.Name, "ns/"+tSAName+".") || !strings.Contains(req.PublicKey, "PUBLIC KEY") {
			return nil, errors.New("unexpected request")
		}
		a := account("us-2", req.Name, true)
		a.AccessTokens[0].Token = "header.eyJleHAiOjE4OTM0NTYwMDB9.sig"
		a.AccessTokens[0].CredID = "cred-2"
		return &a, nil
	}
	cases := map[string]struct {
		reason    string
		api       *fakeAPI
		obs       driver.Observation[identityView]
		wantCalls string
		wantErr   string // classified reason, "" = success
	}{
		"Creates": {
			reason: "a create sends the UID as externalId and the resolved permission, and returns the Secret",
			api:    &fakeAPI{canCreate: true, createSA: created}, wantCalls: "mark,CreateServiceAccount",
		},
		"ReplacesOrphanFirst": {
			reason:    "an orphan is deleted before the new account is created (names are unique)",
			api:       &fakeAPI{canCreate: true, createSA: created, deleteSA: func(string) error { return nil }},
			obs:       driver.Observation[identityView]{Replace: &driver.Replacement{ID: "us-9", Reason: driver.EventOrphanDeleted}},
			wantCalls: "DeleteServiceAccount:us-9,mark,CreateServiceAccount",
		},
		"TokenMode": {
			reason: "in token mode nothing is sent and the operator reports Forbidden",
			api:    &fakeAPI{canCreate: false}, wantErr: v1alpha1.ReasonForbidden,
		},
		"EmptyCredIDReadBack": {
			reason: "an answer with an empty credId: the credential ID is read back before the Secret is written",
			api: &fakeAPI{canCreate: true, createSA: withoutCredID(created),
				getSA: func(id string) (*dfns.ServiceAccount, error) {
					a := account(id, "x", true)
					a.AccessTokens[0].CredID = "cred-2"
					return &a, nil
				}},
			wantCalls: "mark,CreateServiceAccount,GetServiceAccount",
		},
		"EmptyCredIDEverywhere": {
			reason: "no credential ID in the answer nor in a read: no Secret",
			api: &fakeAPI{canCreate: true, createSA: withoutCredID(created),
				getSA: func(id string) (*dfns.ServiceAccount, error) { a := account(id, "x", true); return &a, nil }},
			wantCalls: "mark,CreateServiceAccount,GetServiceAccount", wantErr: v1alpha1.ReasonReconcileError,
		},
		"OutcomeUnknown": {
			reason: "a lost answer is returned for a retry, after create-pending was marked",
			api: &fakeAPI{canCreate: true, createSA: func(dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
				return nil, dfns.ErrOutcomeUnknown
			}},
			wantCalls: "mark,CreateServiceAccount", wantErr: v1alpha1.ReasonReconcileError,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sa := saFixture(nil)
			c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(sa).Build()
			e := testServiceAccounts(tc.api, c)
			cr, err := createAsDriver(context.Background(), e, sa, tc.obs, func() { tc.api.call("mark") })
			if got := strings.Join(tc.api.calls, ","); got != tc.wantCalls {
				t.Errorf("%s\ncalls = %s, want %s", tc.reason, got, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || classify(err).Reason != tc.wantErr {
					t.Errorf("%s\nerror = %v, want reason %s", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nerror = %v", tc.reason, err)
			}
			d := cr.Secret.Data
			if cr.ID != "us-2" || string(d[KeyAPIURL]) != "https://dfns.test" || string(d[KeyOrgID]) != "or-1" ||
				string(d[KeyCredID]) != "cred-2" || !strings.Contains(string(d[KeyPrivateKey]), "PRIVATE KEY") || len(d[KeyAuthToken]) == 0 {
				t.Errorf("%s\ncreation = %s, keys %v", tc.reason, cr.ID, len(d))
			}
			if sa.Status.SecretFingerprint != driver.FingerprintOf(d, []string{KeyAuthToken, KeyPrivateKey}) || sa.Status.ExpiresAt == nil ||
				sa.Status.TokenID != "to-us-2" {
				t.Errorf("%s\nstatus = %+v", tc.reason, sa.Status)
			}
			if tc.obs.Replace != nil && !strings.HasPrefix(sa.Status.DfnsName, "ns/"+tSAName+".") {
				t.Errorf("%s\na replacement gets a fresh name, got %q", tc.reason, sa.Status.DfnsName)
			}
		})
	}
}

func TestResolvePermission(t *testing.T) {
	// The ID comes from status; an annotation naming another (set by a tenant) is not read.
	ready := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ready",
		Annotations: map[string]string{v1alpha1.AnnotationExternalID: "pm-forged"}},
		Status: v1alpha1.DfnsPermissionStatus{PermissionID: "pm-7", ManagedStatus: v1alpha1.ManagedStatus{Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Available"}}}}}
	notReady := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new"}}
	cases := map[string]struct {
		reason string
		ref    v1alpha1.PermissionRef
		want   string
	}{
		"ByID":     {"an ID is used as is", v1alpha1.PermissionRef{ID: tPermID}, tPermID},
		"Ready":    {"a Ready DfnsPermission gives its recorded ID", v1alpha1.PermissionRef{Name: "ready"}, "pm-7"},
		"NotReady": {"a DfnsPermission not Ready yet is waited for", v1alpha1.PermissionRef{Name: "new"}, "err:PermissionNotReady"},
		"Missing":  {"a missing DfnsPermission is waited for", v1alpha1.PermissionRef{Name: "nope"}, "err:PermissionNotReady"},
	}
	c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(ready, notReady).Build()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			id, err := resolvePermission(context.Background(), c, "ns", tc.ref)
			got := id
			if err != nil {
				got = "err:" + classify(err).Reason
			}
			if got != tc.want {
				t.Errorf("%s\nresolvePermission = %s, want %s", tc.reason, got, tc.want)
			}
		})
	}
}

// TestApprovalOutcome: an approval's status tells the driver what became of its change.
func TestApprovalOutcome(t *testing.T) {
	for status, want := range map[string]string{
		crPending: driver.StatusPending, apApproved: driver.StatusApplied, tDenied: driver.StatusRejected, "Expired": driver.StatusRejected,
	} {
		api := &fakeAPI{getApproval: func(string) (*dfns.Approval, error) { return &dfns.Approval{Status: status}, nil }}
		got, err := dfnsApprovals{api: api}.Outcome(context.Background(), driver.ChangeRequest{ID: "cr-1", ApprovalID: tApproval})
		if err != nil || got.Status != want {
			t.Errorf("approval %s: Outcome = %s, %v, want %s", status, got.Status, err, want)
		}
	}
}

// TestApprovalFoundByChangeRequest: Dfns may hold a change without naming its approval; the
// approval is found by the change request its activity holds, pending ones first, then the
// requester's decided ones; none found leaves the status unknown.
func TestApprovalFoundByChangeRequest(t *testing.T) {
	approval := func(id, status, cr string) dfns.Approval {
		return dfns.Approval{ID: id, Status: status, Activity: map[string]any{"changeRequest": map[string]any{"id": cr, "status": "Pending"}}}
	}
	all := []dfns.Approval{approval("ap-1", crPending, "cr-1"), approval("ap-2", apApproved, "cr-2"), approval("ap-3", tDenied, "cr-3")}
	for _, tc := range []struct {
		cr, requester      string
		wantID, wantStatus string
		wantFilters        []dfns.ApprovalFilter
	}{
		{"cr-1", "us-op", "ap-1", driver.StatusPending, []dfns.ApprovalFilter{{Status: crPending, InitiatorID: "us-op"}}},
		{"cr-2", "us-op", "ap-2", driver.StatusApplied, []dfns.ApprovalFilter{{Status: crPending, InitiatorID: "us-op"}, {InitiatorID: "us-op"}}},
		{"cr-3", "us-op", "ap-3", driver.StatusRejected, []dfns.ApprovalFilter{{Status: crPending, InitiatorID: "us-op"}, {InitiatorID: "us-op"}}},
		{"cr-9", "us-op", "", "", []dfns.ApprovalFilter{{Status: crPending, InitiatorID: "us-op"}, {InitiatorID: "us-op"}}},
		{"cr-9", "", "", "", []dfns.ApprovalFilter{{Status: crPending}}},
	} {
		var filters []dfns.ApprovalFilter
		api := &fakeAPI{listApprovals: func(f dfns.ApprovalFilter) ([]dfns.Approval, error) {
			filters = append(filters, f)
			var out []dfns.Approval
			for _, a := range all {
				if f.Status == "" || a.Status == f.Status {
					out = append(out, a)
				}
			}
			return out, nil
		}}
		got, err := dfnsApprovals{api: api}.Outcome(context.Background(), driver.ChangeRequest{ID: tc.cr, Requester: tc.requester})
		if err != nil || got.ApprovalID != tc.wantID || got.Status != tc.wantStatus {
			t.Errorf("%s: Outcome = %+v, %v; want approval %q, status %q", tc.cr, got, err, tc.wantID, tc.wantStatus)
		}
		if !slices.Equal(filters, tc.wantFilters) {
			t.Errorf("%s: lists %+v, want %+v", tc.cr, filters, tc.wantFilters)
		}
	}
}

func TestComparePermission(t *testing.T) {
	p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead, tOpKeys}}}
	cases := map[string]struct {
		reason string
		got    dfns.Permission
		want   bool
	}{
		"Same":     {"the same operations in another order match", dfns.Permission{Name: nsP, Operations: []string{tOpKeys, tOpRead}}, true},
		"Edited":   {"edited operations differ", dfns.Permission{Name: nsP, Operations: []string{tOpKeys}}, false},
		"Archived": {"an archived permission differs", dfns.Permission{Name: nsP, IsArchived: true, Operations: []string{tOpKeys, tOpRead}}, false},
		"Renamed":  {"a renamed permission differs", dfns.Permission{Name: "x", Operations: []string{tOpKeys, tOpRead}}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := (&permissions{}).compare(p, &tc.got).UpToDate; got != tc.want {
				t.Errorf("%s\nUpToDate = %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}

// TestServiceAccountKeptList: a resource that cannot have minted lists nothing; a marked one
// lists afresh; a mint is added to the kept list, so the second look after a create lists
// nothing.
func TestServiceAccountKeptList(t *testing.T) {
	inDfns := []dfns.ServiceAccount{account("us-9", "other", true)}
	api := &fakeAPI{canCreate: true,
		listSAs: func() ([]dfns.ServiceAccount, error) { return slices.Clone(inDfns), nil },
		createSA: func(req dfns.CreateServiceAccountRequest) (*dfns.ServiceAccount, error) {
			a := account("us-2", req.Name, true)
			a.AccessTokens[0].Token, a.AccessTokens[0].CredID = "header.eyJleHAiOjE4OTM0NTYwMDB9.sig", "cred-2"
			inDfns = append(inDfns, a)
			return &a, nil
		}}
	sa := saFixture(nil)
	c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(sa).Build()
	e := testServiceAccounts(api, c)
	ctx := context.Background()
	lists := func() int { return countOf(api.calls, "ListServiceAccounts") }
	observe := func(step, marked string, wantExists bool, wantLists int) {
		t.Helper()
		obs, err := e.Observe(ctx, sa, driver.Recorded{Marked: marked})
		if err != nil || obs.Exists != wantExists || lists() != wantLists {
			t.Fatalf("%s: Observe = exists %t, %v after %d lists; want exists %t after %d", step, obs.Exists, err, lists(), wantExists, wantLists)
		}
	}
	observe("first look", "", false, 0)
	observe("never minted: nothing to look for", "", false, 0)
	observe("a create may have been sent: listed afresh", tSADfnsName, false, 1)
	cr, err := createAsDriver(ctx, e, sa, driver.Observation[identityView]{}, func() {})
	if err != nil || cr.ID != "us-2" {
		t.Fatalf("Create = %v, %v", cr.ID, err)
	}
	got, err := e.view(ctx, cr.ID)
	if err != nil || got.ID != cr.ID || !got.Active || got.TokenID != "to-us-2" || lists() != 1 || countOf(api.calls, "GetServiceAccount") != 0 {
		t.Errorf("the second look finds the mint in the kept list: %+v, %v, calls %v", got, err, api.calls)
	}
}

// TestReplacementFoundByMark: killed after it published a replacement's token but before it
// recorded it, the resource finds the replacement by its mark and takes it whole (name, token
// ID, the Secret's fingerprint) instead of keeping the old one's status, which would make the
// next look take the new Secret for an edited one and delete the live token.
func TestReplacementFoundByMark(t *testing.T) {
	const newID, newName = "us-2", "ns/" + tSAName + ".n2n2n2"
	sa := saFixture(map[string]string{v1alpha1.AnnotationExternalID: tSAID})
	sa.Status.ServiceAccountID = tSAID
	sa.Status.TokenStatus = v1alpha1.TokenStatus{TokenID: "to-us-1", DfnsName: tSADfnsName, SecretFingerprint: "the-old-token's"}
	secret := ownedSecret(newID, "new-token")
	c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(sa, secret).Build()
	api := &fakeAPI{
		getSA: func(string) (*dfns.ServiceAccount, error) { return nil, notFound },
		listSAs: func() ([]dfns.ServiceAccount, error) {
			return []dfns.ServiceAccount{account(newID, newName, true)}, nil
		},
	}
	e := testServiceAccounts(api, c)
	obs, err := e.Observe(context.Background(), sa, driver.Recorded{ID: tSAID, Proved: true, Marked: newName})
	if err != nil || !obs.Exists || obs.ID != newID || !obs.UpToDate || obs.Replace != nil {
		t.Fatalf("Observe = %+v, %v; want the replacement, up to date", obs, err)
	}
	e.Report(sa, obs)
	ts := sa.Status.TokenStatus
	if ts.DfnsName != newName || ts.TokenID != "to-"+newID || ts.SecretFingerprint != driver.FingerprintOf(secret.Data, tokenKeys) {
		t.Errorf("status after Report = %+v", ts)
	}
}

// testServiceAccounts is the DfnsServiceAccount adapter bound to api.
func testServiceAccounts(api dfns.API, c client.Client) *minter[*v1alpha1.DfnsServiceAccount] {
	return newServiceAccounts(c, c, time.Minute).bind(link{api: api}).(*minter[*v1alpha1.DfnsServiceAccount])
}
