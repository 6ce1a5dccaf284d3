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

package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/ownership"
)

// Values shared by the unit tests.
const (
	opGetPermission = "GetPermission"
	tPermID         = "pm-1"
	tKind           = "DfnsPermission"
	tMarkName       = "ns/p"
	tSAID           = "us-1"
	tOpRead         = "Wallets:Read"
	tOpKeys         = "Keys:Read"
	tObserve        = "Observe"
	tValidate       = "Validate"
	tUID            = "uid-sa"
	tSecret         = "sa-secret"
	tReady          = "True/Available"
	tCreating       = "False/Creating"
	tAwaiting       = "False/AwaitingApproval"
	tSAName         = "api"
	tDenied         = "Denied"
	tApproval       = "ap-1"
	tChange         = "cr-1"
	tPendingSince   = "2026-01-01T00:00:00Z"
	tSynced         = "True/ReconcileSuccess"
	tUnavailable    = "False/Unavailable"
)

// keyToken is a Secret key of the tests' one-time secrets.
const keyToken = "DFNS_AUTH_TOKEN"

// testOwnershipKey signs the proofs of the unit tests.
var testOwnershipKey = func() *ownership.Key {
	k, err := ownership.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return k
}()

// extFns is a function-field External for driver tests; it records the calls it gets.
type extFns[T Object] struct {
	validate func(T) error
	observe  func(T, string) (Observation[string], error)
	create   func(T, Observation[string]) (Creation, error)
	// beforeMark fails the create before the mark, as a failed check of its preconditions does.
	beforeMark func() error
	update     func(T, Observation[string]) ([]Note, error)
	delete     func(T, string) error
	secret     string
	calls      []string
	// recs are the Recorded values Observe got.
	recs []Recorded
}

func (e *extFns[T]) Validate(_ context.Context, obj T) error {
	e.calls = append(e.calls, tValidate)
	if e.validate == nil {
		return nil
	}
	return e.validate(obj)
}

func (e *extFns[T]) Observe(_ context.Context, obj T, rec Recorded) (Observation[string], error) {
	e.calls = append(e.calls, tObserve)
	e.recs = append(e.recs, rec)
	if e.observe == nil {
		return Observation[string]{}, errors.New("unexpected Observe")
	}
	return e.observe(obj, rec.ID)
}

// Prepare records "Create": the create's preparation and its one call are one step here.
func (e *extFns[T]) Prepare(_ context.Context, obj T, obs Observation[string]) (Prepared, error) {
	e.calls = append(e.calls, "Create")
	if e.create == nil {
		return Prepared{}, errors.New("unexpected Create")
	}
	if e.beforeMark != nil {
		if err := e.beforeMark(); err != nil {
			return Prepared{}, err
		}
	}
	name := obs.Marked
	if name == "" {
		name = tMarkName
	}
	return Prepared{Name: name, Create: func(context.Context) (Creation, error) {
		if obj.GetAnnotations()[v1alpha1.AnnotationCreatePending] == "" {
			return Creation{}, errors.New("create-pending not set before the create call")
		}
		return e.create(obj, obs)
	}}, nil
}

func (e *extFns[T]) Report(T, Observation[string]) {}

func (e *extFns[T]) Remove(_ context.Context, _ T, _ Observation[string], id string) error {
	e.calls = append(e.calls, "Remove:"+id)
	return nil
}

func (e *extFns[T]) Update(_ context.Context, obj T, obs Observation[string]) ([]Note, error) {
	e.calls = append(e.calls, "Update")
	if e.update == nil {
		return nil, errors.New("unexpected Update")
	}
	return e.update(obj, obs)
}

func (e *extFns[T]) Delete(_ context.Context, obj T, id string) error {
	e.calls = append(e.calls, "Delete:"+id)
	if e.delete == nil {
		return errors.New("unexpected Delete")
	}
	return e.delete(obj, id)
}

func (e *extFns[T]) Retire(_ context.Context, _ T, id string) error {
	e.calls = append(e.calls, "Retire:"+id)
	return nil
}

func (e *extFns[T]) Secret(T) (string, v1alpha1.SecretTemplate) {
	return e.secret, v1alpha1.SecretTemplate{}
}

// testConnector binds extFns as Connect would: no rule refuses unless refuse is set.
type testConnector[T Object] struct {
	ext       *extFns[T]
	approvals Approvals
	adoption  bool
	refuse    error
	connects  []bool // the deleting argument of each Connect
}

func (c *testConnector[T]) Connect(_ context.Context, _ T, deleting bool) (Session[T, string], error) {
	c.connects = append(c.connects, deleting)
	if c.refuse != nil {
		return Session[T, string]{}, c.refuse
	}
	return Session[T, string]{External: c.ext, Approvals: c.approvals, Adoption: c.adoption}, nil
}

func (c *testConnector[T]) Secret(obj T) (string, v1alpha1.SecretTemplate) { return c.ext.Secret(obj) }

// testSchemeUnit holds the types of the unit tests.
func testSchemeUnit(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// newDriver builds a driver over a fake client holding objs.
func newDriver[T Object](t *testing.T, ext *extFns[T], newObj func() T, objs ...client.Object) (*Reconciler[T, string], client.Client, *record.FakeRecorder) {
	s := testSchemeUnit(t)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithIndex(newObj(), OwnedIDIndex, OwnedIDs[T](tKind, testOwnershipKey)).
		WithStatusSubresource(&v1alpha1.DfnsPermission{}, &v1alpha1.DfnsServiceAccount{}).
		WithInterceptorFuncs(interceptor.Funcs{Create: dryRunCreate}).Build()
	rec := record.NewFakeRecorder(100)
	newList := func() client.ObjectList { return &v1alpha1.DfnsPermissionList{} }
	if _, ok := any(newObj()).(*v1alpha1.DfnsServiceAccount); ok {
		newList = func() client.ObjectList { return &v1alpha1.DfnsServiceAccountList{} }
	}
	conn := &testConnector[T]{ext: ext, approvals: testApprovals{}, adoption: true}
	// The fake client files the index as the cache would; the lookup lists through it.
	owners := func(ctx context.Context, id string) ([]client.Object, error) {
		list := newList()
		if err := c.List(ctx, list, client.MatchingFields{OwnedIDIndex: id}); err != nil {
			return nil, err
		}
		var out []client.Object
		err := meta.EachListItem(list, func(o runtime.Object) error {
			out = append(out, o.(client.Object))
			return nil
		})
		return out, err
	}
	return &Reconciler[T, string]{client: c, reader: c, scheme: s, connector: conn, newObject: newObj, newList: newList,
		owners: owners, recorder: rec, errs: testErrors{},
		kind: tKind, key: testOwnershipKey,
		syncPeriod: time.Minute, timeout: time.Minute, secretRetries: 1, secretBackoff: time.Millisecond,
		now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}, c, rec
}

// dryRunCreate answers a server-side dry-run create (the driver's are of Secrets) as the API
// server does, which the fake client does not: AlreadyExists when the object exists.
func dryRunCreate(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
	o := &client.CreateOptions{}
	o.ApplyOptions(opts)
	if slices.Contains(o.DryRun, metav1.DryRunAll) {
		existing := obj.DeepCopyObject().(client.Object)
		if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), existing); err == nil {
			return apierrors.NewAlreadyExists(corev1.Resource("secrets"), obj.GetName())
		}
	}
	return cl.Create(ctx, obj, opts...)
}

// drain returns the "Type Reason" of each recorded event.
func drain(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			f := strings.Fields(e)
			out = append(out, f[0]+" "+f[1])
		default:
			return out
		}
	}
}

// perm is a DfnsPermission fixture.
func perm(mods ...func(*v1alpha1.DfnsPermission)) *v1alpha1.DfnsPermission {
	p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Generation: 1, UID: "uid-1"},
		Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead}}}
	for _, m := range mods {
		m(p)
	}
	return p
}

func withFinalizer(p *v1alpha1.DfnsPermission) { p.Finalizers = []string{Finalizer} }

// withCreatePending sets a create-pending mark the operator made, for tMarkName.
func withCreatePending(p *v1alpha1.DfnsPermission) {
	at, _ := time.Parse(time.RFC3339, tPendingSince)
	SetAnnotation(p, v1alpha1.AnnotationCreatePending, testOwnershipKey.EncodeMark(testSubject(p), ownership.Mark{At: at, Name: tMarkName, UID: string(p.UID)}))
}

// withForgedMark sets a create-pending mark a tenant wrote by hand.
func withForgedMark(p *v1alpha1.DfnsPermission) {
	SetAnnotation(p, v1alpha1.AnnotationCreatePending, tPendingSince+" v1.forged "+tMarkName)
}

// withID records tPermID with the operator's proof.
func withID(p *v1alpha1.DfnsPermission) {
	SetAnnotation(p, v1alpha1.AnnotationExternalID, tPermID)
	SetAnnotation(p, v1alpha1.AnnotationProof, testOwnershipKey.ProveID(testSubject(p), tPermID))
}

// withClaim records tPermID without proof, as a tenant would.
func withClaim(p *v1alpha1.DfnsPermission) { SetAnnotation(p, v1alpha1.AnnotationExternalID, tPermID) }

// testSubject is the ownership subject of a fixture.
func testSubject(obj client.Object) ownership.Subject {
	return ownership.Subject{Connection: "ClusterDfnsConnection/default", Kind: tKind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// withPendingChange records an update held for approval tApproval.
func withPendingChange(p *v1alpha1.DfnsPermission) {
	p.Status.PendingChangeRequest = &v1alpha1.ChangeRequestStatus{ID: tChange, ApprovalID: tApproval, Status: StatusPending,
		Generation: p.Generation, Operation: OperationUpdate}
}

// testApprovals answers Outcome from a map of approval ID to status; a change request without
// approval ID is looked up under "cr:<id>", and found as approval tApproval.
type testApprovals map[string]string

func (a testApprovals) Outcome(_ context.Context, cr ChangeRequest) (ChangeRequest, error) {
	if cr.ApprovalID == "" {
		if s, ok := a["cr:"+cr.ID]; ok {
			cr.ApprovalID, cr.Status = tApproval, s
		}
		return cr, nil
	}
	if s, ok := a[cr.ApprovalID]; ok {
		cr.Status = s
		return cr, nil
	}
	return cr, errors.New("unexpected approval " + cr.ApprovalID)
}

func deleting(p *v1alpha1.DfnsPermission) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.Finalizers = []string{Finalizer}
}

func orphan(p *v1alpha1.DfnsPermission) { p.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan }

// testErr is an error of the Dfns client as the tests' classifier sees it: an HTTP status, a
// Retry-After, a change request.
type testErr struct {
	status     int
	retryAfter time.Duration
	cr         *ChangeRequest
}

func (e *testErr) Error() string { return http.StatusText(e.status) }

// testErrors classifies testErr as the real classifier does the client's errors.
type testErrors struct{}

func (testErrors) Classify(err error) (Verdict, bool) {
	var te *testErr
	if !errors.As(err, &te) {
		return Verdict{}, false
	}
	switch te.status {
	case 0: // held back by the connection's own limiter
		return Verdict{Reason: v1alpha1.ReasonRateLimited, Message: "throttled", Policy: Requeue, After: te.retryAfter}, true
	case http.StatusAccepted:
		return Verdict{Reason: v1alpha1.ReasonAwaitingApproval, Message: ApprovalMessage(te.cr), Policy: Wait}, true
	case http.StatusTooManyRequests:
		return Verdict{Reason: v1alpha1.ReasonRateLimited, Message: "slow down", Policy: Wait, After: te.retryAfter}, true
	case http.StatusForbidden:
		return Verdict{Reason: v1alpha1.ReasonForbidden, Message: "forbidden", Policy: Wait}, true
	case http.StatusConflict:
		return Verdict{Reason: v1alpha1.ReasonNameConflict, Message: "taken", Policy: Stop}, true
	}
	return Verdict{}, false
}

func (testErrors) Refused(err error) bool {
	var te *testErr
	return errors.As(err, &te) && te.status >= 400 && te.status < 500 && te.status != http.StatusRequestTimeout &&
		te.status != http.StatusTooManyRequests
}

func (testErrors) Pending(err error) (*ChangeRequest, bool) {
	var te *testErr
	if errors.As(err, &te) && te.status == http.StatusAccepted {
		return te.cr, true
	}
	return nil, false
}

var (
	pendingErr   = &testErr{status: http.StatusAccepted, cr: &ChangeRequest{ID: tChange, ApprovalID: tApproval, Status: StatusPending}}
	rateErr      = &testErr{status: http.StatusTooManyRequests, retryAfter: 7 * time.Second}
	forbiddenErr = &testErr{status: http.StatusForbidden}
	serverErr    = &testErr{status: http.StatusInternalServerError}
	// errOutcomeUnknown is a create whose answer was lost: neither refused nor classified.
	errOutcomeUnknown = errors.New("the outcome of the create is unknown")
	exists            = func(_ *v1alpha1.DfnsPermission, id string) (Observation[string], error) {
		return Observation[string]{ID: tPermID, Exists: true, UpToDate: true}, nil
	}
)

func TestReconcilePhases(t *testing.T) {
	type want struct {
		result  ctrl.Result
		err     bool
		calls   []string
		synced  string // "Status/Reason", "" = unset
		ready   string
		events  []string
		id      string // external-id annotation afterwards
		marked  bool   // create-pending is set afterwards
		removed bool   // the resource is gone (Finalizer removed)
	}
	cases := map[string]struct {
		reason string
		obj    *v1alpha1.DfnsPermission
		others []client.Object
		ext    *extFns[*v1alpha1.DfnsPermission]
		want   want
	}{
		"ClaimManagedElsewhere": {
			reason: "an external-id set by hand naming an object another resource manages is refused before any Dfns call",
			obj:    perm(withFinalizer, withClaim),
			others: []client.Object{func() client.Object {
				o := perm()
				o.Namespace, o.UID, o.Status.PermissionID = "victim", "uid-2", tPermID
				return o
			}()},
			ext: &extFns[*v1alpha1.DfnsPermission]{},
			want: want{calls: []string{tValidate}, synced: "False/NotPermitted", ready: "False/NotPermitted", id: "",
				events: []string{"Warning NotPermitted"}},
		},
		"AddsFinalizerFirst": {
			reason: "the Finalizer is added before any Dfns call, and an object in sync is Ready without events",
			obj:    perm(withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{observe: func(p *v1alpha1.DfnsPermission, id string) (Observation[string], error) {
				if len(p.Finalizers) == 0 || id != tPermID {
					return Observation[string]{}, errors.New("no Finalizer or wrong id")
				}
				return Observation[string]{ID: id, Exists: true, UpToDate: true}, nil
			}},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve},
				synced: tSynced, ready: tReady, id: tPermID},
		},
		"Creates": {
			reason: "nothing found: create with create-pending set, record the ID and clear create-pending",
			obj:    perm(withFinalizer),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
					return Observation[string]{Replace: &Replacement{Reason: EventRecreated, Message: "was gone"}}, nil
				},
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{ID: "pm-new"}, nil
				}},
			want: want{result: ctrl.Result{RequeueAfter: time.Millisecond}, calls: []string{tValidate, tObserve, "Create"},
				synced: tSynced, ready: tCreating, id: "pm-new",
				events: []string{"Normal Recreated", "Normal Created"}},
		},
		"ReplacesBeforeTheMark": {
			reason: "an object to replace is removed by the driver after the preparation and before the mark and the create",
			obj:    perm(withFinalizer),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
					return Observation[string]{Replace: &Replacement{ID: "pm-old", Reason: EventOrphanDeleted, Message: "orphan"}}, nil
				},
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{ID: "pm-new"}, nil
				}},
			want: want{result: ctrl.Result{RequeueAfter: time.Millisecond}, calls: []string{tValidate, tObserve, "Create", "Remove:pm-old"},
				synced: tSynced, ready: tCreating, id: "pm-new",
				events: []string{"Normal OrphanDeleted", "Normal Created"}},
		},
		"CreateOutcomeUnknown": {
			reason: "a lost create answer is retried with backoff; create-pending stays for the next look",
			obj:    perm(withFinalizer),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return Observation[string]{}, nil },
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{}, errOutcomeUnknown
				}},
			want: want{err: true, calls: []string{tValidate, tObserve, "Create"}, marked: true,
				synced: "False/ReconcileError", ready: "False/ReconcileError", events: []string{"Warning ReconcileError"}},
		},
		"RefusedBeforeMark": {
			reason: "a refusal before the mark (say, of the delete of an orphan) leaves the mark that finds the orphan again",
			obj:    perm(withFinalizer, withCreatePending),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return Observation[string]{}, nil },
				create:  func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) { return Creation{}, nil },
				beforeMark: func() error {
					return &testErr{status: http.StatusBadRequest}
				}},
			want: want{err: true, calls: []string{tValidate, tObserve, "Create"}, marked: true,
				synced: "False/ReconcileError", ready: "False/ReconcileError", events: []string{"Warning ReconcileError"}},
		},
		"RefusedRetryKeepsEarlierMark": {
			reason: "a create sent again under an earlier mark and refused (409: the earlier create made it) keeps the mark",
			obj:    perm(withFinalizer, withCreatePending),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return Observation[string]{}, nil },
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{}, &testErr{status: http.StatusConflict}
				}},
			want: want{calls: []string{tValidate, tObserve, "Create"}, marked: true,
				synced: "False/NameConflict", ready: "False/NameConflict", events: []string{"Warning NameConflict"}},
		},
		"ForgedMarkIgnored": {
			reason: "a create-pending mark without the operator's proof is removed and never reaches the kind",
			obj:    perm(withFinalizer, withForgedMark),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
					return Observation[string]{}, Stopf(v1alpha1.ReasonNameConflict, "taken")
				}},
			want: want{calls: []string{tValidate, tObserve}, synced: "False/NameConflict", ready: "False/NameConflict",
				events: []string{"Warning ClaimIgnored", "Warning NameConflict"}},
		},
		"ClaimAdopted": {
			reason: "an external-id set by hand on a kind without a secret, naming an object no resource manages, is adopted with a proof",
			obj:    perm(withFinalizer, withClaim),
			ext:    &extFns[*v1alpha1.DfnsPermission]{observe: exists},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve},
				synced: tSynced, ready: tReady, id: tPermID, events: []string{"Normal AdoptedExisting"}},
		},
		"CreateRefused": {
			reason: "a create Dfns refused made nothing: create-pending is cleared, so a same-named object " +
				"made by someone else is never taken for a lost one of ours",
			obj: perm(withFinalizer),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return Observation[string]{}, nil },
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{}, &testErr{status: http.StatusConflict}
				}},
			want: want{calls: []string{tValidate, tObserve, "Create"},
				synced: "False/NameConflict", ready: "False/NameConflict", events: []string{"Warning NameConflict"}},
		},
		"Adopts": {
			reason: "an object found without a recorded ID gets its ID recorded and an event",
			obj:    perm(withFinalizer),
			ext:    &extFns[*v1alpha1.DfnsPermission]{observe: exists},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve},
				synced: tSynced, ready: tReady, id: tPermID, events: []string{"Normal AdoptedExisting"}},
		},
		"InvalidSpecStops": {
			reason: "a spec error stops without a requeue or a Dfns call",
			obj:    perm(withFinalizer),
			ext: &extFns[*v1alpha1.DfnsPermission]{validate: func(*v1alpha1.DfnsPermission) error {
				return Stopf(v1alpha1.ReasonInvalidSpec, "bad")
			}},
			want: want{calls: []string{tValidate}, synced: "False/InvalidSpec", ready: "False/InvalidSpec",
				events: []string{"Warning InvalidSpec"}},
		},
		"Updates": {
			reason: "drift is updated with the kind's notes as events",
			obj:    perm(withFinalizer, withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
					return Observation[string]{ID: tPermID, Exists: true, Diff: "archived"}, nil
				},
				update: func(*v1alpha1.DfnsPermission, Observation[string]) ([]Note, error) {
					return []Note{{EventUnarchived, "unarchived"}}, nil
				}},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve, "Update"},
				synced: tSynced, ready: tReady, id: tPermID, events: []string{"Normal Unarchived"}},
		},
		"UpdatePendingApproval": {
			reason: "a 202 is recorded, reported and polled at the sync period",
			obj:    perm(withFinalizer, withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
					return Observation[string]{ID: tPermID, Exists: true}, nil
				},
				update: func(*v1alpha1.DfnsPermission, Observation[string]) ([]Note, error) { return nil, pendingErr }},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve, "Update"},
				synced: tAwaiting, ready: tUnavailable, id: tPermID,
				events: []string{"Normal ChangePendingApproval"}},
		},
		"PendingIsNotResent": {
			reason: "while the object shows the change request status records, nothing is sent and no event is recorded",
			obj:    perm(withFinalizer, withID, withPendingChange),
			ext: &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
				return Observation[string]{ID: tPermID, Exists: true, Shown: pendingErr.cr}, nil
			}},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve},
				synced: tAwaiting, ready: tUnavailable, id: tPermID},
		},
		"RateLimitedWaits": {
			reason: "a 429 waits for Retry-After without an error",
			obj:    perm(withFinalizer, withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
				return Observation[string]{}, rateErr
			}},
			want: want{result: ctrl.Result{RequeueAfter: 7 * time.Second}, calls: []string{tValidate, tObserve},
				synced: "False/RateLimited", ready: tUnavailable, id: tPermID, events: []string{"Warning RateLimited"}},
		},
		"ForbiddenWaits": {
			reason: "a 403 waits at the sync period",
			obj:    perm(withFinalizer, withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
				return Observation[string]{}, forbiddenErr
			}},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{tValidate, tObserve},
				synced: "False/Forbidden", ready: tUnavailable, id: tPermID, events: []string{"Warning Forbidden"}},
		},
		"TransientRetries": {
			reason: "anything else is returned for backoff",
			obj:    perm(withFinalizer, withID),
			ext: &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
				return Observation[string]{}, serverErr
			}},
			want: want{err: true, calls: []string{tValidate, tObserve},
				synced: "False/ReconcileError", ready: tUnavailable, id: tPermID, events: []string{"Warning ReconcileError"}},
		},
		"DeleteDeletes": {
			reason: "deletion calls Delete with the recorded ID and removes the Finalizer",
			obj:    perm(deleting, withID),
			ext:    &extFns[*v1alpha1.DfnsPermission]{delete: func(*v1alpha1.DfnsPermission, string) error { return nil }},
			want:   want{calls: []string{"Delete:" + tPermID + ""}, events: []string{"Normal Deleted"}, removed: true},
		},
		"DeleteLeavesClaimAlone": {
			reason: "deletion never deletes an ID the resource cannot prove is its own",
			obj:    perm(deleting, withClaim),
			ext:    &extFns[*v1alpha1.DfnsPermission]{},
			want:   want{events: []string{"Warning ClaimIgnored"}, removed: true},
		},
		"DeleteOrphan": {
			reason: "deletionPolicy Orphan leaves Dfns alone",
			obj:    perm(deleting, withID, orphan),
			ext:    &extFns[*v1alpha1.DfnsPermission]{},
			want:   want{removed: true},
		},
		"DeleteNeverCreated": {
			reason: "a resource that never got an ID is released without a Dfns call",
			obj:    perm(deleting),
			ext:    &extFns[*v1alpha1.DfnsPermission]{},
			want:   want{removed: true},
		},
		"DeletePendingApproval": {
			reason: "an archive held for approval keeps the Finalizer and polls",
			obj:    perm(deleting, withID),
			ext:    &extFns[*v1alpha1.DfnsPermission]{delete: func(*v1alpha1.DfnsPermission, string) error { return pendingErr }},
			want: want{result: ctrl.Result{RequeueAfter: time.Minute}, calls: []string{"Delete:" + tPermID + ""},
				synced: tAwaiting, ready: "False/Deleting", id: tPermID, events: []string{"Normal ChangePendingApproval"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, c, rec := newDriver[*v1alpha1.DfnsPermission](t, tc.ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} },
				append([]client.Object{tc.obj}, tc.others...)...)
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.obj)})
			if (err != nil) != tc.want.err {
				t.Fatalf("%s\nerror = %v, want error %t", tc.reason, err, tc.want.err)
			}
			if res.RequeueAfter < tc.want.result.RequeueAfter || res.RequeueAfter > tc.want.result.RequeueAfter*11/10 {
				t.Errorf("%s\nRequeueAfter = %v, want %v (+10%%)", tc.reason, res.RequeueAfter, tc.want.result.RequeueAfter)
			}
			if got := strings.Join(tc.ext.calls, ","); got != strings.Join(tc.want.calls, ",") {
				t.Errorf("%s\ncalls = %s, want %s", tc.reason, got, strings.Join(tc.want.calls, ","))
			}
			if got := strings.Join(drain(rec), ","); got != strings.Join(tc.want.events, ",") {
				t.Errorf("%s\nevents = %s, want %s", tc.reason, got, strings.Join(tc.want.events, ","))
			}
			var got v1alpha1.DfnsPermission
			err = c.Get(context.Background(), client.ObjectKeyFromObject(tc.obj), &got)
			if tc.want.removed {
				if err == nil {
					t.Errorf("%s\nthe resource is still there with finalizers %v", tc.reason, got.Finalizers)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkCondition(t, tc.reason, &got, v1alpha1.ConditionSynced, tc.want.synced)
			checkCondition(t, tc.reason, &got, v1alpha1.ConditionReady, tc.want.ready)
			if name == "ForgedMarkIgnored" && (len(tc.ext.recs) == 0 || tc.ext.recs[0].Marked != "") {
				t.Errorf("%s\nObserve got %+v", tc.reason, tc.ext.recs)
			}
			if id := ExternalID(&got); id != tc.want.id && (tc.want.id != "" || !strings.Contains(name, "Claim")) {
				t.Errorf("%s\nexternal-id = %q, want %q", tc.reason, id, tc.want.id)
			}
			if _, ok := got.Annotations[v1alpha1.AnnotationCreatePending]; ok != tc.want.marked {
				t.Errorf("%s\ncreate-pending set = %t, want %t", tc.reason, ok, tc.want.marked)
			}
			if tc.want.id != "" && !testOwnershipKey.OwnsID(testSubject(&got), tc.want.id, got.Annotations[v1alpha1.AnnotationProof]) {
				t.Errorf("%s\nexternal-id %s has no valid proof", tc.reason, tc.want.id)
			}
			if tc.want.synced != "" && got.Status.ObservedGeneration != got.Generation {
				t.Errorf("%s\nobservedGeneration = %d, want %d", tc.reason, got.Status.ObservedGeneration, got.Generation)
			}
		})
	}
}

// checkCondition compares a condition with "Status/Reason" ("" = absent).
func checkCondition(t *testing.T, reason string, obj Object, typ, want string) {
	t.Helper()
	c := meta.FindStatusCondition(obj.Managed().Conditions, typ)
	got := ""
	if c != nil {
		got = string(c.Status) + "/" + c.Reason
		if c.ObservedGeneration != obj.GetGeneration() {
			t.Errorf("%s\n%s observedGeneration = %d, want %d", reason, typ, c.ObservedGeneration, obj.GetGeneration())
		}
	}
	if got != want {
		t.Errorf("%s\n%s = %s, want %s", reason, typ, got, want)
	}
}

func TestStatusWrittenOnlyOnChange(t *testing.T) {
	ext := &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
		return Observation[string]{ID: tPermID, Exists: true, UpToDate: true}, nil
	}}
	obj := perm(withFinalizer, withID)
	r, c, rec := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, obj)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)}
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var first v1alpha1.DfnsPermission
	if err := c.Get(context.Background(), req.NamespacedName, &first); err != nil {
		t.Fatal(err)
	}
	drain(rec)
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var second v1alpha1.DfnsPermission
	if err := c.Get(context.Background(), req.NamespacedName, &second); err != nil {
		t.Fatal(err)
	}
	if first.ResourceVersion != second.ResourceVersion {
		t.Errorf("a reconcile that changed nothing wrote the resource (%s → %s)", first.ResourceVersion, second.ResourceVersion)
	}
	if ev := drain(rec); len(ev) != 0 {
		t.Errorf("a reconcile that changed nothing recorded events %v", ev)
	}
}

func TestCreatePublishesSecretFirst(t *testing.T) {
	sa := func() *v1alpha1.DfnsServiceAccount {
		return &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: tUID, Generation: 1,
			Finalizers: []string{Finalizer}}}
	}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: tSecret}}
	cases := map[string]struct {
		reason     string
		objs       []client.Object
		wantCalls  string
		wantSynced string
		wantID     string
		wantSecret bool
		// wantReads counts the reads of the Secret: none when it is absent, as expected of a
		// resource that recorded nothing.
		wantReads int
	}{
		"Publishes": {
			reason: "the Secret is written, owned and labelled, and the ID recorded after it",
			objs:   []client.Object{sa()}, wantCalls: "Validate,Observe,Create",
			wantSynced: tSynced, wantID: tSAID, wantSecret: true,
		},
		"SecretConflict": {
			reason: "an unowned Secret stops the create before Dfns is called",
			objs:   []client.Object{sa(), foreign}, wantCalls: "Validate,Observe",
			wantSynced: "False/SecretConflict", wantReads: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ext := &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret,
				observe: func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
					return Observation[string]{}, nil
				},
				create: func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error) {
					return Creation{ID: tSAID, Secret: &SecretContent{Data: map[string][]byte{keyToken: []byte("t")},
						Annotations: map[string]string{v1alpha1.AnnotationExternalID: tSAID}}}, nil
				}}
			r, c, _ := newDriver[*v1alpha1.DfnsServiceAccount](t, ext, func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }, tc.objs...)
			reads := 0
			r.reader = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
				Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*corev1.Secret); ok {
						reads++
					}
					return cl.Get(ctx, key, obj, opts...)
				},
			})
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "sa"}})
			if err != nil {
				t.Fatalf("%s\nerror = %v", tc.reason, err)
			}
			if reads != tc.wantReads {
				t.Errorf("%s\n%d reads of the Secret, want %d", tc.reason, reads, tc.wantReads)
			}
			if tc.wantSecret == (res.RequeueAfter == 0) {
				t.Errorf("%s\nresult = %+v", tc.reason, res)
			}
			if got := strings.Join(ext.calls, ","); got != tc.wantCalls {
				t.Errorf("%s\ncalls = %s, want %s", tc.reason, got, tc.wantCalls)
			}
			var got v1alpha1.DfnsServiceAccount
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "sa"}, &got); err != nil {
				t.Fatal(err)
			}
			checkCondition(t, tc.reason, &got, v1alpha1.ConditionSynced, tc.wantSynced)
			if ExternalID(&got) != tc.wantID {
				t.Errorf("%s\nexternal-id = %q, want %q", tc.reason, ExternalID(&got), tc.wantID)
			}
			var s corev1.Secret
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: tSecret}, &s); err != nil {
				t.Fatal(err)
			}
			owned := metav1.IsControlledBy(&s, &got)
			if owned != tc.wantSecret {
				t.Errorf("%s\nSecret owned = %t, want %t", tc.reason, owned, tc.wantSecret)
			}
			if tc.wantSecret && (s.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || string(s.Data[keyToken]) != "t" ||
				s.Annotations[v1alpha1.AnnotationExternalID] != tSAID) {
				t.Errorf("%s\nSecret = %+v", tc.reason, s.ObjectMeta)
			}
			if !tc.wantSecret && len(s.Data) != 0 {
				t.Errorf("%s\nthe foreign Secret was written", tc.reason)
			}
		})
	}
}

// TestValidateBeforeFinalizer: a spec refused at once gets no Finalizer, so deleting the
// resource is never blocked by the operator.
func TestValidateBeforeFinalizer(t *testing.T) {
	ext := &extFns[*v1alpha1.DfnsPermission]{validate: func(*v1alpha1.DfnsPermission) error {
		return Stopf(v1alpha1.ReasonInvalidSpec, "bad")
	}}
	r, c, _ := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, perm())
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "p"}}); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.DfnsPermission
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "p"}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Finalizers) != 0 {
		t.Errorf("finalizers = %v, want none on a refused spec", got.Finalizers)
	}
}

// TestPublishHasItsOwnDeadline: the one-time Secret is written even when the reconcile's
// context has run out (the rate-limiter wait and the create used it up).
func TestPublishHasItsOwnDeadline(t *testing.T) {
	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: tUID}}
	r, c, _ := newDriver[*v1alpha1.DfnsServiceAccount](t, &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret},
		func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }, sa)
	// A real API server refuses a request whose context is done; the fake client does not.
	live := func(ctx context.Context) error { return ctx.Err() }
	ic := interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := live(ctx); err != nil {
				return err
			}
			return cl.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := live(ctx); err != nil {
				return err
			}
			return cl.Create(ctx, obj, opts...)
		},
	})
	r.client, r.reader = ic, ic
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.publish(ctx, sa, &SecretContent{Data: map[string][]byte{keyToken: []byte("t")}}, true); err != nil {
		t.Fatalf("publish with a spent reconcile context: %v", err)
	}
	var s corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: tSecret}, &s); err != nil || string(s.Data[keyToken]) != "t" {
		t.Fatalf("Secret = %v, %v", s.Data, err)
	}
}

// TestSecretTakenOverAfterRestore: a Secret whose controller is this resource's kind and name
// under an old UID (a backup restored) is this resource's and gets the new UID; one controlled
// by another kind of the same name is a conflict. Both hold when the Secret was expected to be
// absent (created without a read first).
func TestSecretTakenOverAfterRestore(t *testing.T) {
	ref := func(kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: "sa", UID: "old-uid", Controller: new(true)}}
	}
	for name, tc := range map[string]struct {
		kind   string
		absent bool
		want   bool
	}{
		"SameKind": {tKind, false, true}, "OtherKind": {"DfnsWebhook", false, false},
		"SameKindExpectedAbsent": {tKind, true, true}, "OtherKindExpectedAbsent": {"DfnsWebhook", true, false},
	} {
		t.Run(name, func(t *testing.T) {
			sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: tUID}}
			old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: tSecret, OwnerReferences: ref(tc.kind)}}
			r, c, _ := newDriver[*v1alpha1.DfnsServiceAccount](t, &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret},
				func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }, sa, old)
			err := r.publish(context.Background(), sa, &SecretContent{Data: map[string][]byte{keyToken: []byte("t")}}, tc.absent)
			if (err == nil) != tc.want {
				t.Fatalf("publish = %v, want success %t", err, tc.want)
			}
			var s corev1.Secret
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: tSecret}, &s); err != nil {
				t.Fatal(err)
			}
			if metav1.IsControlledBy(&s, sa) != tc.want || len(s.OwnerReferences) != 1 {
				t.Errorf("owner references = %+v", s.OwnerReferences)
			}
		})
	}
}

// TestFollowApproval: the driver follows the change request status records, for every kind,
// before it sends anything.
func TestFollowApproval(t *testing.T) {
	shown := &ChangeRequest{ID: tChange}
	cases := map[string]struct {
		reason     string
		approvals  testApprovals
		shown      *ChangeRequest
		generation int64
		want       string // "pending", "cleared", "err:<reason>"
	}{
		"Shown":            {"the object shows it: pending, without a look at the approval", nil, shown, 1, "pending"},
		"ApprovalPending":  {"the approval is pending", testApprovals{tApproval: StatusPending}, nil, 1, "pending"},
		"Approved":         {"approved: cleared, and the reconcile goes on", testApprovals{tApproval: StatusApplied}, nil, 1, "cleared"},
		"Rejected":         {"rejected: stops until the spec changes", testApprovals{tApproval: StatusRejected}, nil, 1, "err:ChangeRejected"},
		"RejectedOldSpec":  {"rejected, but the spec changed since: cleared", testApprovals{tApproval: StatusRejected}, nil, 2, "cleared"},
		"NoApprovalNoShow": {"no approval ID and nothing shown: cleared, the observation tells what exists", nil, nil, 1, "cleared"},
		"NoApprovalFound":  {"no approval ID: found by the change request, pending", testApprovals{"cr:" + tChange: StatusPending}, nil, 1, "pending"},
		"NoApprovalFoundRejected": {"no approval ID: found by the change request, rejected", testApprovals{"cr:" + tChange: StatusRejected}, nil, 1,
			"err:ChangeRejected"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := perm(withPendingChange)
			p.Generation = tc.generation
			if strings.HasPrefix(name, "NoApproval") {
				p.Status.PendingChangeRequest.ApprovalID = ""
			}
			r := &Reconciler[*v1alpha1.DfnsPermission, string]{}
			st := &state[*v1alpha1.DfnsPermission, string]{obj: p, Session: Session[*v1alpha1.DfnsPermission, string]{Approvals: tc.approvals}}
			pending, err := r.followApproval(context.Background(), st, tc.shown, false)
			var got string
			switch {
			case err != nil:
				reason, _ := StopReason(err)
				got = "err:" + reason
			case pending != nil:
				got = "pending"
				if tc.approvals["cr:"+tChange] != "" && p.Status.PendingChangeRequest.ApprovalID != tApproval {
					t.Errorf("the approval found is not recorded: %+v", p.Status.PendingChangeRequest)
				}
			case p.Status.PendingChangeRequest == nil:
				got = "cleared"
			}
			if got != tc.want {
				t.Errorf("%s\nfollowApproval = %s, want %s", tc.reason, got, tc.want)
			}
		})
	}
}

// TestRejectedCreateReleasesOnDeletion: deleting a resource bumps its generation; a create
// rejected in Dfns still releases the resource (nothing was made) instead of being cleared and
// looked for, and a rejected delete is never sent again.
func TestRejectedCreateReleasesOnDeletion(t *testing.T) {
	for name, tc := range map[string]struct {
		op          string
		wantRemoved bool
		wantSynced  string
	}{
		"Create": {OperationCreate, true, ""},
		"Delete": {OperationDelete, false, "False/ChangeRejected"},
	} {
		t.Run(name, func(t *testing.T) {
			p := perm(deleting, withPendingChange)
			p.Status.PendingChangeRequest.Operation = tc.op
			if tc.op == OperationDelete {
				withID(p)
			}
			p.Generation = 2 // deletion bumped it past the change request's
			ext := &extFns[*v1alpha1.DfnsPermission]{}
			r, c, _ := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, p)
			r.connector.(*testConnector[*v1alpha1.DfnsPermission]).approvals = testApprovals{tApproval: StatusRejected}
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
				t.Fatal(err)
			}
			if len(ext.calls) != 0 {
				t.Errorf("calls = %v, want none", ext.calls)
			}
			var got v1alpha1.DfnsPermission
			err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &got)
			if removed := err != nil; removed != tc.wantRemoved {
				t.Fatalf("removed = %t, want %t", removed, tc.wantRemoved)
			}
			if !tc.wantRemoved {
				checkCondition(t, name, &got, v1alpha1.ConditionSynced, tc.wantSynced)
			}
		})
	}
}

func TestConnect(t *testing.T) {
	refusal := Stopf(v1alpha1.ReasonNotPermitted, "connection ClusterDfnsConnection/team does not allow kind DfnsPermission (limits.kinds)")
	missing := Waitf("ConnectionNotFound", "connection ClusterDfnsConnection/team does not exist")
	exists := func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
		return Observation[string]{ID: tPermID, Exists: true, UpToDate: true}, nil
	}
	cases := map[string]struct {
		reason       string
		obj          *v1alpha1.DfnsPermission
		refuse       error
		adoption     bool
		wantConnects []bool
		wantCalls    []string
		wantSynced   string
		wantFinal    bool
	}{
		"Refused": {"a rule refuses: no Dfns call, no finalizer", perm(), refusal, true,
			[]bool{false}, nil, "False/NotPermitted", false},
		"Missing": {"no connection: no Dfns call, no finalizer", perm(), missing, true,
			[]bool{false}, nil, "False/ConnectionNotFound", false},
		"RefusedAfterMade": {"a rule refuses a resource that holds an object: nothing is touched", perm(withID, func(p *v1alpha1.DfnsPermission) {
			p.Finalizers = []string{Finalizer}
		}), refusal, true,
			[]bool{false}, nil, "False/NotPermitted", true},
		"Deleting": {"a deletion connects without the rules and deletes", perm(withID, deleting), nil, true,
			[]bool{true}, []string{"Delete:" + tPermID}, "", false},
		"DeletingMissing": {"a deletion without its connection deletes nothing and waits", perm(withID, deleting), missing, true,
			[]bool{true}, nil, "False/ConnectionNotFound", true},
		"Orphan": {"an orphaning deletion needs no connection", perm(withID, deleting, orphan), missing, true,
			nil, nil, "", false},
		"AdoptionDenied": {"a claim is refused when the connection denies adoption", perm(func(p *v1alpha1.DfnsPermission) {
			SetAnnotation(p, v1alpha1.AnnotationExternalID, tPermID)
		}), nil, false, []bool{false}, []string{tValidate}, "False/NotPermitted", true},
		"NaturalKeyDenied": {"an object found by its natural key alone is adoption, refused when the connection denies it; " +
			"the resource records nothing, so no finalizer holds its deletion",
			perm(), nil, false, []bool{false}, []string{tValidate, tObserve}, "False/NotPermitted", false},
		"NaturalKeyAllowed": {"an object found by its natural key alone is adopted when the connection allows it",
			perm(), nil, true, []bool{false}, []string{tValidate, tObserve}, "True/ReconcileSuccess", true},
		"AdoptionAllowed": {"a claim is adopted when the connection allows it", perm(func(p *v1alpha1.DfnsPermission) {
			SetAnnotation(p, v1alpha1.AnnotationExternalID, tPermID)
		}), nil, true, []bool{false}, []string{tValidate, tObserve}, "True/ReconcileSuccess", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ext := &extFns[*v1alpha1.DfnsPermission]{observe: exists, delete: func(*v1alpha1.DfnsPermission, string) error { return nil }}
			r, c, _ := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, tc.obj)
			conn := r.connector.(*testConnector[*v1alpha1.DfnsPermission])
			conn.refuse, conn.adoption = tc.refuse, tc.adoption
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.obj)}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(conn.connects, tc.wantConnects) {
				t.Errorf("%s\nconnects = %v, want %v", tc.reason, conn.connects, tc.wantConnects)
			}
			if !slices.Equal(ext.calls, tc.wantCalls) {
				t.Errorf("%s\ncalls = %v, want %v", tc.reason, ext.calls, tc.wantCalls)
			}
			var got v1alpha1.DfnsPermission
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.obj), &got); err != nil {
				if tc.wantSynced != "" || tc.wantFinal {
					t.Fatalf("%s\nthe resource is gone: %v", tc.reason, err)
				}
				return
			}
			checkCondition(t, tc.reason, &got, v1alpha1.ConditionSynced, tc.wantSynced)
			if has := slices.Contains(got.Finalizers, Finalizer); has != tc.wantFinal {
				t.Errorf("%s\nfinalizer = %t, want %t", tc.reason, has, tc.wantFinal)
			}
		})
	}
}

func TestThrottledRequeuesSilently(t *testing.T) {
	p := perm(withID, func(p *v1alpha1.DfnsPermission) {
		p.Finalizers = []string{Finalizer}
		p.Status.PermissionID = tPermID
		setReady(p)
	})
	ext := &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
		return Observation[string]{}, &testErr{retryAfter: 300 * time.Millisecond}
	}}
	r, c, rec := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, p)
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	if err != nil || res.RequeueAfter != 300*time.Millisecond {
		t.Fatalf("Reconcile = %+v, %v; want a requeue after the limiter's delay", res, err)
	}
	var got v1alpha1.DfnsPermission
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
		t.Fatal(err)
	}
	checkCondition(t, "a throttled call changes no condition", &got, v1alpha1.ConditionSynced, tSynced)
	checkCondition(t, "a throttled call changes no condition", &got, v1alpha1.ConditionReady, tReady)
	if ev := drain(rec); len(ev) != 0 {
		t.Errorf("events = %v, want none", ev)
	}
}

// tNewSAID is the identity a rotation mints.
const tNewSAID = "us-2"

// rotatedSA is a service account whose identity tSAID is recorded and proved, with its Secret's
// fingerprint in status; mods add superseded objects or requests.
func rotatedSA(mods ...func(*v1alpha1.DfnsServiceAccount)) *v1alpha1.DfnsServiceAccount {
	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: tUID, Generation: 1,
		Finalizers: []string{Finalizer}}}
	SetAnnotation(sa, v1alpha1.AnnotationExternalID, tSAID)
	SetAnnotation(sa, v1alpha1.AnnotationProof, testOwnershipKey.ProveID(testSubject(sa), tSAID))
	sa.Status.ServiceAccountID = tSAID
	sa.Status.SecretFingerprint = "fp-1"
	sa.Status.RestartedFor = "fp-1"
	for _, m := range mods {
		m(sa)
	}
	return sa
}

// supersededAt records tSAID as superseded, retired at the given time, with a proof or a forged
// one.
func supersededAt(at time.Time, forged bool) func(*v1alpha1.DfnsServiceAccount) {
	return func(sa *v1alpha1.DfnsServiceAccount) {
		sa.Status.ServiceAccountID = tNewSAID
		SetAnnotation(sa, v1alpha1.AnnotationExternalID, tNewSAID)
		SetAnnotation(sa, v1alpha1.AnnotationProof, testOwnershipKey.ProveID(testSubject(sa), tNewSAID))
		at = at.UTC().Truncate(time.Second)
		proof := testOwnershipKey.ProveID(testSubject(sa), "previous "+tSAID+" "+at.Format(time.RFC3339))
		if forged {
			// The ID proof of tSAID is a valid proof, but of another statement.
			proof = testOwnershipKey.ProveID(testSubject(sa), tSAID)
		}
		b, _ := json.Marshal([]previousEntry{{ID: tSAID, RetireAt: at, Proof: proof}})
		SetAnnotation(sa, v1alpha1.AnnotationPrevious, string(b))
	}
}

func TestRotation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rotate := Observation[string]{Rotate: &Replacement{ID: tSAID, Reason: EventRotated, Message: "renewal due"}}
	minted := func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error) {
		return Creation{ID: tNewSAID, Secret: &SecretContent{Data: map[string][]byte{keyToken: []byte("new")}}}, nil
	}
	upToDate := func(id string) func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
		return func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
			return Observation[string]{ID: id, Exists: true, UpToDate: true}, nil
		}
	}
	cases := map[string]struct {
		reason       string
		sa           *v1alpha1.DfnsServiceAccount
		observe      func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error)
		create       func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error)
		wantCalls    string
		wantID       string
		wantPrevious []string // IDs in the annotation and status
		wantReady    string
		wantEvent    string
	}{
		"RotateKeepsPrevious": {"a rotation mints first, publishes, and records the previous identity for its grace period",
			rotatedSA(), func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) { return rotate, nil }, minted,
			"Validate,Observe,Create", tNewSAID, []string{tSAID}, "", EventRotated},
		"InterruptedRotation": {"a rotation whose record was lost is recorded with the identity it supersedes",
			rotatedSA(), func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
				return Observation[string]{ID: tNewSAID, Exists: true, UpToDate: true, Superseded: tSAID}, nil
			}, nil, "Validate,Observe", tNewSAID, []string{tSAID}, tReady, EventRotated},
		"NotDueYet": {"a superseded identity stays until its grace period is over",
			rotatedSA(supersededAt(now.Add(time.Minute), false)), upToDate(tNewSAID), nil,
			"Validate,Observe", tNewSAID, []string{tSAID}, tReady, ""},
		"Retire": {"a superseded identity is retired once its grace period is over",
			rotatedSA(supersededAt(now.Add(-time.Second), false)), upToDate(tNewSAID), nil,
			"Validate,Retire:" + tSAID + ",Observe", tNewSAID, nil, tReady, EventRetired},
		"ForgedPrevious": {"a superseded entry without the operator's proof retires nothing",
			rotatedSA(supersededAt(now.Add(-time.Second), true)), upToDate(tNewSAID), nil,
			"Validate,Observe", tNewSAID, nil, tReady, ""},
		"ManualRotation": {"a new access.dfns.io/rotate value rotates once",
			rotatedSA(func(sa *v1alpha1.DfnsServiceAccount) { SetAnnotation(sa, v1alpha1.AnnotationRotate, "1") }),
			upToDate(tSAID), minted, "Validate,Observe,Create", tNewSAID, []string{tSAID}, "", EventRotated},
		"ManualRotationDone": {"a rotate value acted on already rotates nothing",
			rotatedSA(func(sa *v1alpha1.DfnsServiceAccount) {
				SetAnnotation(sa, v1alpha1.AnnotationRotate, "1")
				sa.Status.RotateRequest = "1"
			}), upToDate(tSAID), nil, "Validate,Observe", tSAID, nil, tReady, ""},
		"Expired": {"an expired token whose successor cannot be minted is Ready=False/Expired",
			rotatedSA(), func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
				o := rotate
				o.Expired = true
				return o, nil
			}, func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error) {
				return Creation{}, &testErr{status: 403}
			}, "Validate,Observe,Create", tSAID, nil, "False/" + v1alpha1.ReasonExpired, ""},
		"RotationFailsStillReady": {"a failed rotation of a token still valid leaves Ready as it was",
			rotatedSA(func(sa *v1alpha1.DfnsServiceAccount) { setReady(sa) }),
			func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) { return rotate, nil },
			func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error) {
				return Creation{}, &testErr{status: 403}
			}, "Validate,Observe,Create", tSAID, nil, tReady, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ext := &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret, observe: tc.observe, create: tc.create}
			r, c, rec := newDriver[*v1alpha1.DfnsServiceAccount](t, ext, func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }, tc.sa)
			r.now = func() time.Time { return now }
			res, _ := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.sa)})
			if got := strings.Join(ext.calls, ","); got != tc.wantCalls {
				t.Errorf("%s\ncalls = %s, want %s", tc.reason, got, tc.wantCalls)
			}
			var got v1alpha1.DfnsServiceAccount
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.sa), &got); err != nil {
				t.Fatal(err)
			}
			if id := ExternalID(&got); id != tc.wantID {
				t.Errorf("%s\nexternal-id = %s, want %s", tc.reason, id, tc.wantID)
			}
			entries := r.previous(&got)
			ann, status := make([]string, 0, len(entries)), make([]string, 0, len(got.Status.Previous))
			for _, e := range entries {
				ann = append(ann, e.ID)
				if !e.RetireAt.After(now) && name != "Retire" {
					t.Errorf("%s\nretireAt = %s, want after %s", tc.reason, e.RetireAt, now)
				}
			}
			for _, p := range got.Status.Previous {
				status = append(status, p.ID)
			}
			if !slices.Equal(ann, tc.wantPrevious) || !slices.Equal(status, tc.wantPrevious) {
				t.Errorf("%s\nprevious = %v (status %v), want %v", tc.reason, ann, status, tc.wantPrevious)
			}
			if tc.wantReady != "" {
				checkCondition(t, tc.reason, &got, v1alpha1.ConditionReady, tc.wantReady)
			}
			events := drain(rec)
			if tc.wantEvent != "" && !slices.ContainsFunc(events, func(e string) bool { return strings.HasSuffix(e, " "+tc.wantEvent) }) {
				t.Errorf("%s\nevents = %v, want %s", tc.reason, events, tc.wantEvent)
			}
			if len(tc.wantPrevious) > 0 && (res.RequeueAfter == 0 || res.RequeueAfter > time.Hour+2*time.Second) {
				t.Errorf("%s\nrequeue after %s, want by the retirement", tc.reason, res.RequeueAfter)
			}
		})
	}
}

func TestRestartConsumers(t *testing.T) {
	deployment := func(annotations map[string]string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}}
		d.Spec.Template.Annotations = annotations
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: tSecret}}}}}}
		return d
	}
	stranger := deployment(nil)
	stranger.Spec.Template.Spec.Containers[0].EnvFrom = nil
	withTargets := func(fp string) func(*v1alpha1.DfnsServiceAccount) {
		return func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Status.SecretFingerprint = fp
			sa.Spec.RolloutRestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "app"}, {Kind: "StatefulSet", Name: "gone"}}
		}
	}
	cases := map[string]struct {
		reason      string
		sa          *v1alpha1.DfnsServiceAccount
		deployment  *appsv1.Deployment
		wantFor     string // the Deployment's restartedFor after the reconcile
		wantAt      bool   // restartedAt set by this reconcile
		wantEvents  []string
		wantRecords string // status.restartedFor
	}{
		"Rotated": {"a new Secret value restarts each target once; a missing one is a warning",
			rotatedSA(withTargets("fp-2")), deployment(nil), "fp-2", true,
			[]string{"Normal " + EventRestarted, "Warning " + EventRestartTargetMissing}, "fp-2"},
		"AlreadyRestarted": {"a target restarted for this value before a crash is not restarted again",
			rotatedSA(withTargets("fp-2")), deployment(map[string]string{v1alpha1.AnnotationRestartedFor: "fp-2"}), "fp-2", false,
			[]string{"Warning " + EventRestartTargetMissing}, "fp-2"},
		"NotAConsumer": {"a workload that does not read the Secret is not restarted",
			rotatedSA(withTargets("fp-2")), stranger, "", false,
			[]string{"Warning " + EventRestartTargetMissing, "Warning " + EventRestartTargetMissing}, "fp-2"},
		"Unchanged": {"the Secret's value did not change: nothing is restarted",
			rotatedSA(withTargets("fp-1")), deployment(nil), "", false, nil, "fp-1"},
		"FirstSecret": {"the first Secret restarts nothing: its consumers start with it",
			rotatedSA(withTargets("fp-1"), func(sa *v1alpha1.DfnsServiceAccount) { sa.Status.RestartedFor = "" }),
			deployment(nil), "", false, nil, "fp-1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ext := &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret,
				observe: func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
					return Observation[string]{ID: tSAID, Exists: true, UpToDate: true}, nil
				}}
			r, c, rec := newDriver[*v1alpha1.DfnsServiceAccount](t, ext, func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} },
				tc.sa, tc.deployment)
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.sa)}); err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.deployment), &d); err != nil {
				t.Fatal(err)
			}
			if got := d.Spec.Template.Annotations[v1alpha1.AnnotationRestartedFor]; got != tc.wantFor {
				t.Errorf("%s\nrestartedFor = %q, want %q", tc.reason, got, tc.wantFor)
			}
			if _, at := d.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]; at != tc.wantAt {
				t.Errorf("%s\nrestartedAt set = %t, want %t", tc.reason, at, tc.wantAt)
			}
			if got := drain(rec); !slices.Equal(got, tc.wantEvents) {
				t.Errorf("%s\nevents = %v, want %v", tc.reason, got, tc.wantEvents)
			}
			var sa v1alpha1.DfnsServiceAccount
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.sa), &sa); err != nil {
				t.Fatal(err)
			}
			if sa.Status.RestartedFor != tc.wantRecords {
				t.Errorf("%s\nstatus.restartedFor = %q, want %q", tc.reason, sa.Status.RestartedFor, tc.wantRecords)
			}
		})
	}
}

func TestResourceMetrics(t *testing.T) {
	p := perm(withID, withPendingChange, func(p *v1alpha1.DfnsPermission) { p.Finalizers = []string{Finalizer} })
	ext := &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
		return Observation[string]{ID: tPermID, Exists: true, UpToDate: true}, nil
	}}
	r, c, _ := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, p)
	r.connector.(*testConnector[*v1alpha1.DfnsPermission]).approvals = testApprovals{tApproval: StatusPending}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// series returns the resource's series of the named metric, by reason (the label's value,
	// "" for none), with their values.
	series := func(metric string) map[string]float64 {
		ch := make(chan prometheus.Metric, 100)
		go func() { resourceGauges.Collect(ch); close(ch) }()
		out := map[string]float64{}
		for m := range ch {
			if !strings.Contains(m.Desc().String(), `"`+metric+`"`) {
				continue
			}
			var d dto.Metric
			_ = m.Write(&d)
			labels := map[string]string{}
			for _, l := range d.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["name"] == p.Name && labels["kind"] == tKind {
				out[labels["reason"]] = d.GetGauge().GetValue()
			}
		}
		return out
	}
	if got := series("dfns_resource_ready"); len(got) != 1 || got[v1alpha1.ReasonUnavailable] != 0 {
		t.Errorf("dfns_resource_ready = %v, want one series, {reason=Unavailable} 0", got)
	}
	if got := series("dfns_pending_approvals"); len(got) != 1 || got[""] != 1 {
		t.Errorf("dfns_pending_approvals = %v, want 1", got)
	}
	if err := c.Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var gone v1alpha1.DfnsPermission
	if err := c.Get(context.Background(), req.NamespacedName, &gone); err == nil {
		// The approval still holds the deletion: take it away to let the resource go.
		gone.Finalizers = nil
		if err := c.Update(context.Background(), &gone); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	for _, metric := range []string{"dfns_resource_ready", "dfns_resource_synced", "dfns_pending_approvals"} {
		if got := series(metric); len(got) != 0 {
			t.Errorf("%s series of a deleted resource = %v, want none", metric, got)
		}
	}
}

// TestShownChangeWaits: an object that shows a change waiting for approval that status does
// not record (another hand's, or one whose status was lost) is waited on: nothing is sent,
// neither a create (a creation shown pending is not made yet) nor an update.
func TestShownChangeWaits(t *testing.T) {
	shown := &ChangeRequest{ID: "cr-other", ApprovalID: "ap-other", Status: StatusPending}
	for name, obs := range map[string]Observation[string]{
		"pending creation": {Shown: shown},
		"pending update":   {ID: tPermID, Exists: true, UpToDate: false, Shown: shown},
	} {
		t.Run(name, func(t *testing.T) {
			p := perm(withFinalizer)
			if obs.Exists {
				withID(p)
			}
			ext := &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return obs, nil }}
			r, c, _ := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, p)
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ext.calls, []string{tValidate, tObserve}) {
				t.Errorf("calls = %v, want only Validate and Observe", ext.calls)
			}
			var got v1alpha1.DfnsPermission
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
				t.Fatal(err)
			}
			checkCondition(t, name, &got, v1alpha1.ConditionSynced, "False/"+v1alpha1.ReasonAwaitingApproval)
			if got.Status.PendingChangeRequest != nil {
				t.Errorf("status records %+v as this resource's change; it is not", got.Status.PendingChangeRequest)
			}
		})
	}
}

// countingClient wraps the fake client and counts its writes: metadata patches and status
// patches.
func countingClient(c client.Client, patches, statusPatches *int) client.Client {
	return interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			*patches++
			return cl.Patch(ctx, obj, p, opts...)
		},
		SubResourcePatch: func(ctx context.Context, cl client.Client, sub string, obj client.Object, p client.Patch,
			opts ...client.SubResourcePatchOption) error {
			*statusPatches++
			return cl.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	})
}

// TestNewResourceWrites: a new resource costs two metadata writes (the create-pending mark with
// the finalizer, then the ID with its proof) and one status write when Dfns' answer shows the
// object as the spec asks; otherwise a second look decides Ready.
func TestNewResourceWrites(t *testing.T) {
	for name, tc := range map[string]struct {
		upToDate            bool
		wantReady           string
		wantStatusPatches   int
		wantRequeueSyncLike bool
	}{
		"AnswerMatches": {true, tReady, 1, true},
		"SecondLook":    {false, tCreating, 1, false},
	} {
		t.Run(name, func(t *testing.T) {
			p := perm()
			ext := &extFns[*v1alpha1.DfnsPermission]{
				observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) { return Observation[string]{}, nil },
				create: func(*v1alpha1.DfnsPermission, Observation[string]) (Creation, error) {
					return Creation{ID: tPermID, UpToDate: tc.upToDate}, nil
				},
			}
			r, c, rec := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, p)
			patches, statusPatches := 0, 0
			r.client = countingClient(c, &patches, &statusPatches)
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			if err != nil {
				t.Fatal(err)
			}
			if patches != 2 || statusPatches != tc.wantStatusPatches {
				t.Errorf("metadata patches %d, status patches %d; want 2 (mark with finalizer, ID) and %d",
					patches, statusPatches, tc.wantStatusPatches)
			}
			if got := res.RequeueAfter >= r.syncPeriod; got != tc.wantRequeueSyncLike {
				t.Errorf("requeue after %v: at the sync period %t, want %t", res.RequeueAfter, got, tc.wantRequeueSyncLike)
			}
			var got v1alpha1.DfnsPermission
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
				t.Fatal(err)
			}
			checkCondition(t, name, &got, v1alpha1.ConditionReady, tc.wantReady)
			if !slices.Contains(got.Finalizers, Finalizer) || ExternalID(&got) != tPermID {
				t.Errorf("finalizers %v, external-id %q; want the finalizer and %s", got.Finalizers, ExternalID(&got), tPermID)
			}
			if _, marked := got.Annotations[v1alpha1.AnnotationCreatePending]; marked {
				t.Errorf("create-pending left after the ID was recorded")
			}
			if ev := drain(rec); !slices.Equal(ev, []string{"Normal " + EventCreated}) {
				t.Errorf("events = %v, want one Created", ev)
			}
		})
	}
}

// TestQuietWait: a resource that has reported nothing yet waits for a reference not reconciled
// yet without a word (no status write, no event, no finalizer); one that has reported before
// reports the wait.
func TestQuietWait(t *testing.T) {
	for name, tc := range map[string]struct {
		obj               *v1alpha1.DfnsPermission
		wantStatusPatches int
		wantEvents        int
	}{
		"New":      {perm(), 0, 0},
		"Reported": {perm(func(p *v1alpha1.DfnsPermission) { setNotReady(p, v1alpha1.ReasonCreating, "x") }), 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			ext := &extFns[*v1alpha1.DfnsPermission]{observe: func(*v1alpha1.DfnsPermission, string) (Observation[string], error) {
				return Observation[string]{}, Deferf(v1alpha1.ReasonPermissionNotReady, "waiting for a reference")
			}}
			r, c, rec := newDriver[*v1alpha1.DfnsPermission](t, ext, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }, tc.obj)
			patches, statusPatches := 0, 0
			r.client = countingClient(c, &patches, &statusPatches)
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.obj)})
			if err != nil || res.RequeueAfter != r.syncPeriod {
				t.Fatalf("Reconcile = %+v, %v; want a requeue at the sync period", res, err)
			}
			if patches != 0 || statusPatches != tc.wantStatusPatches {
				t.Errorf("metadata patches %d, status patches %d; want 0 and %d", patches, statusPatches, tc.wantStatusPatches)
			}
			if ev := drain(rec); len(ev) != tc.wantEvents {
				t.Errorf("events = %v, want %d", ev, tc.wantEvents)
			}
		})
	}
}

// TestPrimedFromOneList: a driver that starts beside existing resources reads their versions
// with one list past the cache and then trusts the cache at those versions, reading past it
// only a resource whose cached copy is at another version (stale, or changed since).
func TestPrimedFromOneList(t *testing.T) {
	ctx := context.Background()
	newObj := func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} }
	names := []string{"a", "b", "c"}
	objs := make([]client.Object, 0, len(names))
	for _, n := range names {
		objs = append(objs, &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: n}})
	}
	r, apiServer, _ := newDriver[*v1alpha1.DfnsPermission](t, &extFns[*v1alpha1.DfnsPermission]{}, newObj, objs...)
	// The cache: the same objects, but "c" as it was before a change the list shows.
	cached := fake.NewClientBuilder().WithScheme(r.scheme).WithObjects(objs...).Build()
	var c v1alpha1.DfnsPermission
	if err := apiServer.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "c"}, &c); err != nil {
		t.Fatal(err)
	}
	c.Labels = map[string]string{"changed": "yes"}
	if err := apiServer.Update(ctx, &c); err != nil {
		t.Fatal(err)
	}
	gets, lists := 0, 0
	r.client = cached
	r.reader = interceptor.NewClient(apiServer.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return cl.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lists++
			return cl.List(ctx, list, opts...)
		},
	})
	for _, n := range names {
		got, ok, err := r.get(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: n}})
		if err != nil || !ok {
			t.Fatalf("get %s: %v, %v", n, ok, err)
		}
		if n == "c" && got.Labels["changed"] != "yes" {
			t.Errorf("c was taken from the stale cache: labels %v", got.Labels)
		}
	}
	if lists != 1 || gets != 1 {
		t.Errorf("%d lists and %d reads past the cache; want 1 list and 1 read (the stale c)", lists, gets)
	}
}

// TestNewResourceFromTheCache: a resource the driver has not seen, holding nothing of it, is
// taken from the cache; one carrying the finalizer is read past it. Were the new one's cached
// copy stale (someone marked it meanwhile), the marking write conflicts: nothing is created
// in Dfns, nothing is reported, and the next reconcile reads past the cache.
func TestNewResourceFromTheCache(t *testing.T) {
	ctx := context.Background()
	newObj := func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }
	fresh := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fresh", UID: tUID, Generation: 1}}
	held := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "held", UID: tUID, Generation: 1,
		Finalizers: []string{Finalizer}}}
	sent := 0
	ext := &extFns[*v1alpha1.DfnsServiceAccount]{secret: tSecret,
		observe: func(*v1alpha1.DfnsServiceAccount, string) (Observation[string], error) {
			return Observation[string]{}, nil
		},
		create: func(*v1alpha1.DfnsServiceAccount, Observation[string]) (Creation, error) {
			sent++
			return Creation{ID: tSAID}, nil
		}}
	r, apiServer, rec := newDriver[*v1alpha1.DfnsServiceAccount](t, ext, newObj, fresh, held)
	cached := fake.NewClientBuilder().WithScheme(r.scheme).WithObjects(fresh.DeepCopy(), held.DeepCopy()).Build()
	r.primed.Do(func() {}) // both appeared after the priming list
	reads := map[string]int{}
	r.client = interceptor.NewClient(apiServer.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			return cached.Get(ctx, key, obj, opts...) // reads come from the cache, writes go to the API server
		},
	})
	r.reader = interceptor.NewClient(apiServer.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			reads[key.Name]++
			return cl.Get(ctx, key, obj, opts...)
		},
	})
	for _, n := range []string{"fresh", "held"} {
		if _, ok, err := r.get(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: n}}); err != nil || !ok {
			t.Fatalf("get %s: %v, %v", n, ok, err)
		}
	}
	if reads["fresh"] != 0 || reads["held"] != 1 {
		t.Errorf("reads past the cache %v; want none for fresh and 1 for held", reads)
	}

	// Someone else marks fresh; the cache has not seen it yet.
	var live v1alpha1.DfnsServiceAccount
	if err := apiServer.Get(ctx, client.ObjectKeyFromObject(fresh), &live); err != nil {
		t.Fatal(err)
	}
	live.Finalizers = []string{Finalizer}
	SetAnnotation(&live, v1alpha1.AnnotationCreatePending, "someone else's")
	if err := apiServer.Update(ctx, &live); err != nil {
		t.Fatal(err)
	}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(fresh)}
	res, err := r.Reconcile(ctx, req)
	if err != nil || res.RequeueAfter == 0 {
		t.Fatalf("reconcile of a stale copy = %+v, %v; want a quiet requeue", res, err)
	}
	if sent != 0 {
		t.Errorf("a create was sent to Dfns from a stale copy")
	}
	if ev := drain(rec); len(ev) != 0 {
		t.Errorf("a stale copy's conflict recorded events %v", ev)
	}
	var after v1alpha1.DfnsServiceAccount
	if err := apiServer.Get(ctx, req.NamespacedName, &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != live.ResourceVersion {
		t.Errorf("the stale copy's reconcile wrote the resource: %+v", after.Status)
	}
	reads["fresh"] = 0
	if _, _, err := r.get(ctx, req); err != nil || reads["fresh"] != 1 {
		t.Errorf("after the conflict, %d reads past the cache (%v); want 1", reads["fresh"], err)
	}
}

// TestOnlyAStaleCopyIsQuiet: a conflict on the resource's own patch (its copy was stale)
// requeues without a word; a conflict on another object (a Secret, a Deployment) is a failure,
// reported and retried with backoff.
func TestOnlyAStaleCopyIsQuiet(t *testing.T) {
	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: tUID, Generation: 1}}
	r, _, rec := newDriver[*v1alpha1.DfnsServiceAccount](t, &extFns[*v1alpha1.DfnsServiceAccount]{},
		func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} }, sa)
	conflict := func(resource string) error {
		return apierrors.NewConflict(schema.GroupResource{Resource: resource}, "x", errors.New("modified"))
	}
	for name, tc := range map[string]struct {
		err   error
		quiet bool
	}{
		"OwnPatch":    {fmt.Errorf("marking the create as pending: %w", &staleCopyError{err: conflict("dfnsserviceaccounts")}), true},
		"OtherObject": {fmt.Errorf("writing Secret s: %w", conflict("secrets")), false},
	} {
		t.Run(name, func(t *testing.T) {
			st := &state[*v1alpha1.DfnsServiceAccount, string]{obj: sa.DeepCopy(), before: sa.DeepCopy()}
			res, err := r.fail(context.Background(), st, tc.err)
			events := drain(rec)
			quiet := err == nil && res.RequeueAfter > 0 && len(events) == 0 && len(st.obj.Status.Conditions) == 0
			if quiet != tc.quiet {
				t.Errorf("result %+v, error %v, events %v, conditions %v; want quiet %t", res, err, events, st.obj.Status.Conditions, tc.quiet)
			}
		})
	}
}
