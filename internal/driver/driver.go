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
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/ownership"
)

// Finalizer holds a resource until its Dfns object is handled per its deletionPolicy.
const Finalizer = "access.dfns.io/finalizer"

// Object is a resource the driver reconciles; the api/v1alpha1 kinds implement it.
type Object interface {
	client.Object
	Managed() *v1alpha1.ManagedStatus
	GetDeletionPolicy() v1alpha1.DeletionPolicy
	SetStatusID(id string)
	GetStatusID() string
	GetStatus() any
	// GetConnectionRef names the connection the resource reaches Dfns through.
	GetConnectionRef() v1alpha1.ConnectionReference
}

// Replacement asks Create to remove an existing Dfns object before it creates a new one.
type Replacement struct {
	// ID is the object to delete first; empty when it is gone already.
	ID string
	// Reason and Message make the Normal event recorded once the replacement is done.
	Reason, Message string
}

// Observation is what Observe found in Dfns; O is the kind's view of its Dfns object.
type Observation[O any] struct {
	// ID is the Dfns ID of the object found.
	ID string
	// Exists is false when a new object must be created.
	Exists bool
	// UpToDate is false when Update must run.
	UpToDate bool
	// Shown is the change request the Dfns object itself shows as waiting for approval, for
	// kinds whose objects show one; the driver follows the one status records with it.
	Shown *ChangeRequest
	// Replace, with Exists false, says what Create removes first and why.
	Replace *Replacement
	// Rotate, with Exists false, asks for a new object while the current one (Rotate.ID) stays
	// usable: the driver records it as superseded once the new secret is published, and retires
	// it after the grace period. Never delete-then-create for an object whose secret may still
	// be in use.
	Rotate *Replacement
	// Superseded, with Exists true, is the object a rotation replaced when the object found is
	// that rotation's (its ID was never recorded): it is retired after the grace period.
	Superseded string
	// Expired says the secret in use has expired: a failure to replace it makes Ready False.
	Expired bool
	// Diff says what differs, for the Updated event; it never holds secret values.
	Diff string
	// Current is the Dfns object, for Update.
	Current O
	// Marker is the found object's natural key, the one a create-pending mark names (its Dfns
	// name, or an assignment's permission and identity); "" when the kind has none.
	Marker string
	// Marked, set by the driver for Create, is the Dfns name of an earlier create whose answer
	// may be lost ("" when none): a create that does not replace anything sends it again, so
	// that Dfns answers 409 rather than making a second object.
	Marked string
}

// Recorded is what the resource holds about its Dfns object, once the driver has sorted proof
// from claims (docs/architecture.md, "Ownership"). Adapters act on nothing else.
type Recorded struct {
	// ID is the Dfns ID recorded in the external-id annotation; "" when none.
	ID string
	// Proved says that ID is this resource's own (status records it, or the operator's proof
	// annotation signs it). An ID that is not proved is a claim: the driver lets Observe see it
	// only when it may be adopted, and deletes nothing it names.
	Proved bool
	// Marked is the Dfns name of a create that was sent and whose answer may be lost, from a
	// create-pending mark whose proof is valid; "" when none.
	Marked string
	// Previous are the objects earlier rotations superseded, not yet retired: never orphans.
	Previous []string
}

// Note is a change made in Dfns, recorded by the driver as a Normal event.
type Note struct{ Reason, Message string }

// SecretContent is a one-time secret the driver publishes before anything else can fail.
type SecretContent struct {
	Data        map[string][]byte
	Annotations map[string]string
}

// Prepared is a create ready to send.
type Prepared struct {
	// Name is what the create-pending mark records: the Dfns name or marker the create uses.
	// A create sent again under the name of an earlier mark keeps that mark.
	Name string
	// Create makes the object with exactly one Dfns call and returns it. A refusal (4xx) is
	// read as a create that made nothing.
	Create func(ctx context.Context) (Creation, error)
}

// Creation is the result of a create.
type Creation struct {
	ID string
	// UpToDate says that Dfns' answer to the create shows the object as the spec asks, so that
	// no second look is needed before Ready.
	UpToDate bool
	// Secret is the one-time secret to publish, nil for a kind without one.
	Secret *SecretContent
}

// External is what a kind contributes to the driver: the calls against Dfns. Methods never
// record events or log; they return notes and wrapped errors.
type External[T Object, O any] interface {
	// Validate checks what the API server could not; it returns a stopError or waitError.
	Validate(ctx context.Context, obj T) error
	// Observe looks at the Dfns object with the recorded ID, or, with none, for one this
	// resource made (by rec.Marked, the name of a create whose answer may be lost). It does not
	// change Dfns.
	Observe(ctx context.Context, obj T, rec Recorded) (Observation[O], error)
	// Prepare readies a create: it resolves references, generates keys and checks what the
	// create needs, changing nothing in Dfns. The driver then removes what obs.Replace names,
	// marks the create with Prepared.Name, and calls Prepared.Create.
	Prepare(ctx context.Context, obj T, obs Observation[O]) (Prepared, error)
	// Remove deletes (or revokes) an object this resource replaces: one whose secret was lost,
	// an orphan of a lost create answer, an assignment of an identity minted anew. An object
	// already gone is success.
	Remove(ctx context.Context, obj T, obs Observation[O], id string) error
	Update(ctx context.Context, obj T, obs Observation[O]) ([]Note, error)
	// Report writes what Observe found into the kind's part of status (resolved IDs, the name
	// in use, a fingerprint recovered from the Secret). Observe writes nothing; the driver calls
	// Report once after Observe, and writes status once at the end of the reconcile.
	Report(obj T, obs Observation[O])
	// Delete handles the Dfns object per the deletion policy; an object already gone is success.
	Delete(ctx context.Context, obj T, id string) error
	// Retire deletes (or deactivates) an object a rotation superseded, once its grace period is
	// over; an object already gone is success.
	Retire(ctx context.Context, obj T, id string) error
}

// Connector is a kind as the driver sees it before any Dfns call: it binds the kind's calls to
// the connection a resource uses, and names the Secret the kind writes.
type Connector[T Object, O any] interface {
	// Connect finds the resource's connection and checks the connection's rules for it; it
	// returns the kind's calls bound to the connection's Dfns client. A resource that breaks a
	// rule gets a stopError (NotPermitted), one whose connection is missing a waitError
	// (ConnectionNotFound), and no Dfns call is made. deleting: the resource is being deleted,
	// and only the connection itself is needed: deleting what a resource proves it made never
	// needs a grant (docs/architecture.md, "Connections and tenancy").
	Connect(ctx context.Context, obj T, deleting bool) (Session[T, O], error)
	// Secret returns the Secret the kind publishes into: name ("" for none) and template.
	Secret(obj T) (string, v1alpha1.SecretTemplate)
}

// Session is a resource's kind bound to its connection, for one reconcile.
type Session[T Object, O any] struct {
	External  External[T, O]
	Approvals Approvals
	// Adoption says whether the connection lets a resource adopt a Dfns object it cannot prove
	// it made.
	Adoption bool
}

// Reconciler is the reconcile driver shared by every kind.
type Reconciler[T Object, O any] struct {
	client    client.Client
	reader    client.Reader // uncached, for Secrets the cache cannot see and fresh reads
	scheme    *runtime.Scheme
	connector Connector[T, O]
	newObject func() T
	newList   func() client.ObjectList
	// owners looks up the resources of the kind by the Dfns IDs they prove are their own.
	owners Lookup
	// kind names T in ownership proofs and messages.
	kind string
	// key signs and checks ownership proofs.
	key *ownership.Key
	// errs classifies the errors of the Dfns client.
	errs       ErrorClassifier
	recorder   EventRecorder
	syncPeriod time.Duration
	timeout    time.Duration
	// secretRetries and secretBackoff bound the retries of a one-time Secret write.
	secretRetries int
	secretBackoff time.Duration
	now           func() time.Time
	// current is, per resource, the resourceVersion this driver last wrote or read past the
	// cache: a cached copy at that version is as fresh as a read past the cache.
	current versions
	// primed is done once every resource's version was read with one list past the cache.
	primed sync.Once
}

// primePageSize is the page size of the list that primes current.
const primePageSize = 500

// Statuses of a change request.
const (
	StatusPending  = "Pending"
	StatusApplied  = "Applied"
	StatusRejected = "Rejected"
	StatusFailed   = "Failed"
)

// Approvals tells what became of a change Dfns held for approval.
type Approvals interface {
	// Outcome returns the change request with Status StatusPending, StatusApplied or
	// StatusRejected, and its ApprovalID. Dfns may hold a change without naming its approval
	// (docs/dfns-compatibility.md): with ApprovalID "", the approval is looked up by the change
	// request's ID, and a Status "" says that none names it.
	Outcome(ctx context.Context, cr ChangeRequest) (ChangeRequest, error)
}

// Config is what New needs to build the driver of one kind.
type Config[T Object, O any] struct {
	// Client is the manager's cached client; Reader reads past the cache.
	Client client.Client
	Reader client.Reader
	Scheme *runtime.Scheme
	// Kind names T in proofs and messages.
	Kind string
	// Connector binds the kind's calls to each resource's connection.
	Connector Connector[T, O]
	// NewObject and NewList make empty objects of the kind.
	NewObject func() T
	NewList   func() client.ObjectList
	// Owners looks up the resources of the kind by the Dfns IDs they prove are their own: an
	// index (NewIndex) named OwnedIDIndex whose values are OwnedIDs.
	Owners Lookup
	// Key signs and checks ownership proofs.
	Key *ownership.Key
	// Errors classifies the errors of the Dfns client.
	Errors   ErrorClassifier
	Recorder EventRecorder
	// SyncPeriod is how often a resource is compared with Dfns; Timeout bounds one reconcile.
	SyncPeriod, Timeout time.Duration
	// Now tells the time (default time.Now): renewals and grace periods follow it.
	Now func() time.Time
}

// New builds the driver of one kind.
func New[T Object, O any](c Config[T, O]) *Reconciler[T, O] {
	r := &Reconciler[T, O]{
		client: c.Client, reader: c.Reader, scheme: c.Scheme, connector: c.Connector,
		newObject: c.NewObject, newList: c.NewList, owners: c.Owners, kind: c.Kind, key: c.Key, errs: c.Errors,
		recorder: c.Recorder, syncPeriod: c.SyncPeriod, timeout: c.Timeout,
		secretRetries: 5, secretBackoff: 100 * time.Millisecond, now: c.Now,
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// state is one reconcile's object and the snapshot its status patch is computed from.
type state[T Object, O any] struct {
	obj, before T
	// Session is the kind bound to the resource's connection, once Connect succeeded.
	Session[T, O]
	// unusable is set once the reconcile knows the Dfns object cannot be used as it is (it is
	// being created or replaced): a failure then turns Ready False.
	unusable bool
	// expired is set when the secret in use has expired: a failure then turns Ready
	// False/Expired.
	expired bool
	// rotateRequest is the access.dfns.io/rotate value read when the reconcile began.
	rotateRequest string
	// silent is set when the reconcile ends without a verdict on the resource (a requeue for
	// the connection's rate limit, a quiet wait): status keeps its observedGeneration, so that
	// such a reconcile writes nothing that was not found.
	silent bool
}

// Reconcile drives one resource towards its spec.
func (r *Reconciler[T, O]) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	obj, found, err := r.get(ctx, req)
	if err != nil || !found {
		if err == nil {
			forget(r.kind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, err
	}
	log := logf.FromContext(ctx).WithValues("uid", obj.GetUID(), "generation", obj.GetGeneration())
	ctx = logf.IntoContext(ctx, log)
	st := &state[T, O]{obj: obj, before: obj.DeepCopyObject().(T), rotateRequest: obj.GetAnnotations()[v1alpha1.AnnotationRotate]}
	defer func() { res, err = r.patchStatus(ctx, st, res, err) }()

	if !obj.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, st)
	}
	if err := r.connect(ctx, st, false); err != nil {
		return r.fail(ctx, st, err)
	}
	// The finalizer goes on only once the spec is valid and permitted: a resource refused at
	// once holds nothing in Dfns and must not block its own deletion. A resource that records
	// nothing yet gets it in the write that marks its create, or records what it found.
	if err := st.External.Validate(ctx, obj); err != nil {
		return r.fail(ctx, st, err)
	}
	if err := r.ensureFinalizer(ctx, st); err != nil {
		return r.fail(ctx, st, fmt.Errorf("adding the finalizer: %w", err))
	}
	rec, err := r.recorded(ctx, st)
	if err != nil {
		return r.fail(ctx, st, err)
	}
	switch {
	case rec.ID != "" && !rec.Proved:
		if err := r.adoptable(ctx, st, rec.ID); err != nil {
			return r.fail(ctx, st, err)
		}
	case r.provedBySignatureOnly(obj, rec):
		if err := r.notManagedElsewhere(ctx, obj, rec.ID); err != nil {
			return r.fail(ctx, st, err)
		}
	}
	// Superseded objects whose grace period is over go first: their successor's Secret was
	// written before they were recorded as superseded.
	if err := r.retire(ctx, st, false); err != nil {
		r.warning(obj, v1alpha1.ReasonReconcileError, err.Error())
	}
	obs, err := st.External.Observe(ctx, obj, rec)
	if err != nil {
		return r.fail(ctx, st, err)
	}
	st.External.Report(obj, obs)
	res, err = r.converge(ctx, st, rec, obs)
	if err == nil {
		if rerr := r.restartConsumers(ctx, st); rerr != nil {
			return r.fail(ctx, st, rerr)
		}
	}
	return r.soonest(obj, res), err
}

// get reads the resource and reports whether it exists. A stale copy (an ID or a Secret
// fingerprint just written but not yet in the cache) could make a second Dfns object or
// re-mint a token that was just written, so the cached copy is used only at the version this
// driver last wrote or read; otherwise the resource is read past the cache. At rest that saves
// the API server one read per resource per sync period.
//
// One more cached copy is used as it is: that of a resource this driver has not seen before
// and that holds nothing of it (no finalizer, nothing recorded), such as one just applied.
// Acting on it changes nothing in Dfns before the write that marks the create, which adds the
// finalizer under optimistic locking: were the copy stale, that write fails with a conflict
// and the next reconcile reads past the cache (fail). A new resource's Secret comes one read
// sooner.
func (r *Reconciler[T, O]) get(ctx context.Context, req ctrl.Request) (T, bool, error) {
	r.primed.Do(func() { r.prime(ctx) })
	obj := r.newObject()
	err := r.client.Get(ctx, req.NamespacedName, obj)
	if err == nil {
		v, ok := r.current.load(req.NamespacedName)
		if ok && v == obj.GetResourceVersion() || !ok && r.holdsNothing(obj) {
			return obj, true, nil
		}
	} else if !apierrors.IsNotFound(err) {
		return obj, false, err
	}
	obj = r.newObject()
	if err := r.reader.Get(ctx, req.NamespacedName, obj); err != nil {
		r.current.forget(req.NamespacedName)
		return obj, false, client.IgnoreNotFound(err)
	}
	r.current.store(req.NamespacedName, obj.GetResourceVersion())
	return obj, true, nil
}

// prime reads the version of every resource of the kind with one paged list of their metadata
// past the cache, when the driver first runs, as if it had read each one: a manager that starts
// beside thousands of resources then trusts its fresh cache at those versions instead of
// reading each resource again (at 10,000 pairs, 40 list pages instead of 20,000 reads). A write
// of a former process is in the list, which is read after it; a version the cache has not
// caught up with yet differs from the listed one and is read again. A failed list is not
// retried: every resource is then read past the cache, as before.
func (r *Reconciler[T, O]) prime(ctx context.Context) {
	gvk, err := apiutil.GVKForObject(r.newObject(), r.scheme)
	if err != nil {
		return
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	for {
		if err := r.reader.List(ctx, list, client.Limit(primePageSize), client.Continue(list.Continue)); err != nil {
			logf.FromContext(ctx).V(1).Info("could not list the kind's versions; each resource is read past the cache", "error", err.Error())
			return
		}
		for i := range list.Items {
			m := &list.Items[i]
			// A version this driver wrote meanwhile is newer: kept.
			r.current.storeIfAbsent(types.NamespacedName{Namespace: m.Namespace, Name: m.Name}, m.ResourceVersion)
		}
		if list.Continue == "" {
			return
		}
	}
}

// wrote records the resourceVersion of a write of this driver.
func (r *Reconciler[T, O]) wrote(obj T) {
	r.current.store(client.ObjectKeyFromObject(obj), obj.GetResourceVersion())
}

// versions maps resources to resourceVersions: a plain map under a mutex keeps key and value
// in place, where a sync.Map boxes both (two more allocations per resource).
type versions struct {
	mu sync.Mutex
	m  map[types.NamespacedName]string
}

func (v *versions) load(k types.NamespacedName) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rv, ok := v.m[k]
	return rv, ok
}

func (v *versions) store(k types.NamespacedName, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[types.NamespacedName]string{}
	}
	v.m[k] = rv
}

func (v *versions) storeIfAbsent(k types.NamespacedName, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.m[k]; !ok {
		if v.m == nil {
			v.m = map[types.NamespacedName]string{}
		}
		v.m[k] = rv
	}
}

// distrust makes the next read of the resource go past the cache: "" is no resourceVersion.
func (v *versions) distrust(k types.NamespacedName) { v.store(k, "") }

func (v *versions) forget(k types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, k)
}

// converge acts on an observation: adopt, create, wait for approval, update, or report Ready.
func (r *Reconciler[T, O]) converge(ctx context.Context, st *state[T, O], rec Recorded, obs Observation[O]) (ctrl.Result, error) {
	if obs.Exists && obs.ID != "" && !r.signed(st.obj, obs.ID) {
		// Found by this resource's mark or marker, allowed as a claim, or proved by status only
		// (written before proofs existed): record the ID with its proof, once. An object found
		// by its natural key alone (an assignment of the same pair) with nothing recorded and
		// no mark is not proved this resource's: taking it is adoption.
		if rec.ID == "" && rec.Marked == "" && st.obj.GetStatusID() != obs.ID && !st.Adoption {
			return r.fail(ctx, st, Stopf(v1alpha1.ReasonNotPermitted, "connection %s does not allow adoption (limits.adoption): "+
				"the Dfns object %s exists and was not created by this resource", st.obj.GetConnectionRef(), obs.ID))
		}
		if obs.ID != rec.ID {
			if err := r.notManagedElsewhere(ctx, st.obj, obs.ID); err != nil {
				return r.fail(ctx, st, err)
			}
		}
		// Another resource whose create of this very object waits for approval, or whose ID
		// patch is not in yet, holds a mark naming it.
		if obs.Marker != "" {
			if err := r.notManagedElsewhere(ctx, st.obj, markKey(obs.Marker)); err != nil {
				return r.fail(ctx, st, err)
			}
		}
		if err := r.recordID(ctx, st, obs.ID, obs.Superseded); err != nil {
			return r.fail(ctx, st, err)
		}
		switch {
		case obs.Superseded != "":
			rotationDone(st)
			r.normal(st.obj, EventRotated, "recorded %s, which replaced %s; the previous one is retired after its grace period",
				obs.ID, obs.Superseded)
		case obs.ID != rec.ID || !rec.Proved:
			r.normal(st.obj, EventAdopted, "adopted the existing Dfns object %s", obs.ID)
		}
	}
	pending, err := r.followApproval(ctx, st, obs.Shown, false)
	if err != nil {
		return r.fail(ctx, st, err)
	}
	if pending != nil {
		if obs.Exists {
			st.obj.SetStatusID(obs.ID)
		}
		return r.awaitApproval(ctx, st, pending, "")
	}
	if obs.Shown != nil && obs.Shown.Status == StatusPending {
		// The object waits on a change this resource did not record (another hand's, or one
		// whose status was lost): sending a change now would only be refused, and a create
		// shown pending is not made yet. Wait for it to be decided.
		if obs.Exists {
			st.obj.SetStatusID(obs.ID)
		}
		return r.awaitApproval(ctx, st, obs.Shown, "")
	}
	if obs.Exists && r.rotateRequested(st) {
		obs.Exists, obs.Rotate = false, &Replacement{ID: obs.ID, Reason: EventRotated,
			Message: fmt.Sprintf("rotated as %s asked: replaced %s, which is retired after its grace period", v1alpha1.AnnotationRotate, obs.ID)}
	}
	switch {
	case !obs.Exists:
		obs.Marked = rec.Marked
		return r.create(ctx, st, obs)
	case !obs.UpToDate:
		return r.update(ctx, st, obs)
	}
	st.obj.SetStatusID(obs.ID)
	setReady(st.obj)
	return r.resync(), nil
}

// create makes the Dfns object and publishes its one-time secret before anything else.
// The order is the protocol: check the Secret can be written, prepare (no Dfns change), remove
// what is replaced, mark, make the one create call, publish the Secret, record the ID.
func (r *Reconciler[T, O]) create(ctx context.Context, st *state[T, O], obs Observation[O]) (ctrl.Result, error) {
	// A rotation keeps the current object usable until its successor's secret is published.
	st.unusable, st.expired = obs.Rotate == nil, obs.Expired
	// The first create of a resource that recorded nothing finds no Secret of its own.
	absent := r.recordsNothing(st.obj)
	if err := r.checkSecret(ctx, st.obj, absent); err != nil {
		return r.fail(ctx, st, err)
	}
	prep, err := st.External.Prepare(ctx, st.obj, obs)
	if err != nil {
		return r.fail(ctx, st, err)
	}
	if obs.Replace != nil && obs.Replace.ID != "" {
		// A refusal here leaves an earlier mark in place, which finds the object again.
		if err := st.External.Remove(ctx, st.obj, obs, obs.Replace.ID); err != nil {
			if cr, ok := r.errs.Pending(err); ok {
				return r.awaitApproval(ctx, st, cr, OperationDelete)
			}
			return r.fail(ctx, st, err)
		}
	}
	marked := prep.Name == "" || prep.Name != obs.Marked
	if marked {
		value := r.key.EncodeMark(r.subject(st.obj), ownership.Mark{At: r.now(), Name: prep.Name, UID: string(st.obj.GetUID())})
		err := r.patchMeta(ctx, st, func(o T) {
			SetAnnotation(o, v1alpha1.AnnotationCreatePending, value)
			controllerutil.AddFinalizer(o, Finalizer) // with the mark: before the create is sent
		})
		if err != nil {
			return r.fail(ctx, st, fmt.Errorf("marking the create as pending: %w", err))
		}
	}
	created, err := prep.Create(ctx)
	if cr, ok := r.errs.Pending(err); ok {
		return r.awaitApproval(ctx, st, cr, OperationCreate)
	}
	if err != nil {
		if marked && r.errs.Refused(err) {
			// Dfns refused the create, so it made nothing: without the mark, an object of the
			// same name made meanwhile by someone else is never taken for a lost one of ours.
			// A refusal (409) of a create sent again under an earlier mark keeps that mark:
			// the earlier create may have made the object.
			if uerr := r.unmark(ctx, st); uerr != nil {
				return r.fail(ctx, st, fmt.Errorf("%w; clearing the create-pending mark: %w", err, uerr))
			}
		}
		return r.fail(ctx, st, err)
	}
	if obs.Replace != nil {
		r.normal(st.obj, obs.Replace.Reason, "%s", obs.Replace.Message)
	}
	if created.Secret != nil {
		st.unusable = true // the Secret is about to hold the new object's secret
		if err := r.publish(ctx, st.obj, created.Secret, absent); err != nil {
			if reason, stop := StopReason(err); stop {
				// The secret is lost: the mark finds the object as an orphan at the next look,
				// which must come without a spec change.
				return r.fail(ctx, st, Waitf(reason, "%s", err.Error()))
			}
			return r.fail(ctx, st, err)
		}
	}
	superseded := ""
	if obs.Rotate != nil {
		superseded = obs.Rotate.ID
	}
	if err := r.recordID(ctx, st, created.ID, superseded); err != nil {
		return r.fail(ctx, st, err)
	}
	st.obj.SetStatusID(created.ID)
	if obs.Rotate != nil {
		rotationDone(st)
		r.normal(st.obj, obs.Rotate.Reason, "%s; the new one is %s", obs.Rotate.Message, created.ID)
	}
	r.normal(st.obj, EventCreated, "created the Dfns object %s", created.ID)
	logf.FromContext(ctx).Info("Created the Dfns object", "id", created.ID)
	if created.UpToDate {
		// Dfns' answer shows the object as the spec asks: Ready now, and status is written once.
		setReady(st.obj)
		return r.resync(), nil
	}
	// A second look confirms the object matches the spec (e.g. deactivated when asked).
	setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess,
		"the last reconcile converged")
	if obs.Rotate == nil || st.expired {
		setNotReady(st.obj, v1alpha1.ReasonCreating, "created; checking it matches the spec")
	}
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// update changes the Dfns object to match the spec; a 202 is recorded and waited on.
func (r *Reconciler[T, O]) update(ctx context.Context, st *state[T, O], obs Observation[O]) (ctrl.Result, error) {
	notes, err := st.External.Update(ctx, st.obj, obs)
	r.notes(st.obj, notes)
	if cr, ok := r.errs.Pending(err); ok {
		return r.awaitApproval(ctx, st, cr, OperationUpdate)
	}
	if isGone(err) {
		// Dfns shows the object but will not bring it back: it is replaced, as one deleted.
		obs.Exists, obs.Replace = false, &Replacement{ID: obs.ID, Reason: EventRecreated,
			Message: fmt.Sprintf("the Dfns object %s was archived in Dfns (%s); created a new one", obs.ID, err.Error())}
		return r.create(ctx, st, obs)
	}
	if err != nil {
		return r.fail(ctx, st, err)
	}
	if len(notes) == 0 {
		r.normal(st.obj, EventUpdated, "updated the Dfns object %s: %s", obs.ID, obs.Diff)
	}
	st.obj.SetStatusID(obs.ID)
	setReady(st.obj)
	return r.resync(), nil
}

// Operations a change request can hold.
const (
	OperationCreate = "Create"
	OperationUpdate = "Update"
	OperationDelete = "Delete"
)

// awaitApproval reports a change Dfns holds for approval and polls it at the sync period; the
// change is never sent again while it is pending. op is the operation just sent, which is
// recorded in status; "" for one recorded already.
func (r *Reconciler[T, O]) awaitApproval(ctx context.Context, st *state[T, O], cr *ChangeRequest, op string) (ctrl.Result, error) {
	msg := ApprovalMessage(cr)
	if op != "" && cr != nil {
		if cr.ApprovalID == "" {
			// Dfns held the change without naming its approval: find it now, while it is
			// surely pending, so that status names what to approve. A miss is looked for again.
			if got, err := st.Approvals.Outcome(ctx, *cr); err == nil {
				cr.ApprovalID = got.ApprovalID
			}
			msg = ApprovalMessage(cr)
		}
		st.obj.Managed().PendingChangeRequest = &v1alpha1.ChangeRequestStatus{
			ID: cr.ID, ApprovalID: cr.ApprovalID, Status: StatusPending, Generation: st.obj.GetGeneration(), Operation: op,
			RequesterID: cr.Requester,
		}
		r.normal(st.obj, EventChangePendingApproval, "%s", msg)
	}
	setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, msg)
	if !st.obj.GetDeletionTimestamp().IsZero() {
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, msg)
	} else {
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnavailable, msg)
	}
	logf.FromContext(ctx).V(1).Info("Waiting for approval", "changeRequest", msg)
	return ctrl.Result{RequeueAfter: r.syncPeriod}, nil
}

// fail records a failure: Synced=False with the classified reason, a Warning event when the
// condition changed or the error is retried, and the requeue policy of the class.
func (r *Reconciler[T, O]) fail(ctx context.Context, st *state[T, O], err error) (ctrl.Result, error) {
	v := Classify(r.errs, err)
	var stale *staleCopyError
	if errors.As(err, &stale) {
		// The copy this reconcile acted on was older than the resource: that says nothing
		// about the resource, so nothing is reported, and the next reconcile reads past the
		// cache. The short delay bounds the loop a writer fighting over the resource makes.
		r.current.distrust(client.ObjectKeyFromObject(st.obj))
		v = Verdict{Policy: Requeue, Reason: v.Reason, After: staleCopyRequeue}
	}
	if v.Policy == Requeue {
		st.silent = true
		logf.FromContext(ctx).V(1).Info("Requeued", "reason", v.Reason, "after", v.After)
		return ctrl.Result{RequeueAfter: max(v.After, time.Millisecond)}, nil
	}
	if v.Quiet && len(st.obj.Managed().Conditions) == 0 {
		st.silent = true
		logf.FromContext(ctx).V(1).Info("Waiting for a reference to be reconciled", "reason", v.Reason)
		return ctrl.Result{RequeueAfter: r.syncPeriod}, nil
	}
	changed := setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionFalse, v.Reason, v.Message)
	switch {
	case !st.obj.GetDeletionTimestamp().IsZero():
	case st.expired || r.tokenExpired(st.obj):
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonExpired,
			"the token in the Secret has expired and a new one could not be made: "+v.Message)
	case st.unusable || v.Policy == Stop:
		// The object is being made or replaced, or the spec cannot be applied: whatever Ready
		// said before no longer holds.
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v.Reason, v.Message)
	default:
		reason, msg := notReadyReason(st.obj)
		setNotReady(st.obj, reason, msg)
	}
	if changed || v.Policy == Retry {
		r.warning(st.obj, v.Reason, v.Message)
	}
	log := logf.FromContext(ctx)
	switch v.Policy {
	case Stop:
		log.V(1).Info("Stopped until the spec changes", "reason", v.Reason, "error", err.Error())
		return ctrl.Result{}, nil
	case Wait:
		after := v.After
		if after <= 0 {
			after = r.syncPeriod
		}
		log.V(1).Info("Waiting", "reason", v.Reason, "after", after)
		return ctrl.Result{RequeueAfter: after}, nil
	}
	return ctrl.Result{}, err
}

// notes records the changes a kind made as Normal events.
func (r *Reconciler[T, O]) notes(obj T, notes []Note) {
	for _, n := range notes {
		r.normal(obj, n.Reason, "%s", n.Message)
	}
}

// reconcileDelete handles the Dfns object per the deletion policy, then drops the Finalizer.
func (r *Reconciler[T, O]) reconcileDelete(ctx context.Context, st *state[T, O]) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(st.obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting,
		"the resource is being deleted")
	if st.obj.GetDeletionPolicy() == v1alpha1.DeletionPolicyOrphan {
		// The Dfns object stays usable, so its Secret stays too: without the owner reference
		// the garbage collector leaves it. What a rotation superseded is retired all the same:
		// nothing would record it once the resource is gone.
		if err := r.releaseSecret(ctx, st.obj); err != nil {
			return r.fail(ctx, st, err)
		}
		if left := r.previous(st.obj); len(left) > 0 {
			err := r.connect(ctx, st, true)
			if err == nil {
				err = r.retire(ctx, st, true)
			}
			if err != nil {
				ids := make([]string, 0, len(left))
				for _, e := range left {
					ids = append(ids, e.ID)
				}
				r.warning(st.obj, EventClaimIgnored, fmt.Sprintf("left the superseded Dfns objects %v in Dfns: %v", ids, err))
			}
		}
	} else {
		if err := r.connect(ctx, st, true); err != nil {
			return r.fail(ctx, st, err)
		}
		if res, done, err := r.followApprovalBeforeDelete(ctx, st); done {
			return res, err
		}
		id, err := r.deletionTarget(ctx, st)
		if err != nil {
			return r.fail(ctx, st, err)
		}
		if err := r.retire(ctx, st, true); err != nil {
			return r.fail(ctx, st, err)
		}
		if id != "" {
			err := st.External.Delete(ctx, st.obj, id)
			if cr, ok := r.errs.Pending(err); ok {
				return r.awaitApproval(ctx, st, cr, OperationDelete)
			}
			if err != nil {
				return r.fail(ctx, st, err)
			}
			r.normal(st.obj, EventDeleted, "%s the Dfns object %s", pastTense(st.obj.GetDeletionPolicy()), id)
		}
	}
	if err := r.patchMeta(ctx, st, func(o T) { controllerutil.RemoveFinalizer(o, Finalizer) }); err != nil {
		return r.fail(ctx, st, fmt.Errorf("removing the finalizer: %w", err))
	}
	return ctrl.Result{}, nil
}

// deletionTarget is the recorded ID or, after a create whose answer was lost, the object
// found by its mark. An ID this resource cannot prove is its own is never deleted.
func (r *Reconciler[T, O]) deletionTarget(ctx context.Context, st *state[T, O]) (string, error) {
	obj := st.obj
	rec, err := r.recorded(ctx, st)
	if err != nil {
		return "", err
	}
	leave := func(id string) (string, error) {
		r.warning(obj, EventClaimIgnored, fmt.Sprintf("left the Dfns object %s alone: this resource cannot prove it is its own", id))
		return "", nil
	}
	if rec.ID != "" {
		if !rec.Proved || r.provedBySignatureOnly(obj, rec) && r.notManagedElsewhere(ctx, obj, rec.ID) != nil {
			return leave(rec.ID)
		}
		return rec.ID, nil
	}
	if rec.Marked == "" {
		return "", nil
	}
	obs, err := st.External.Observe(ctx, obj, rec)
	if err != nil {
		return "", err
	}
	id := obs.ID
	if obs.Replace != nil {
		id = obs.Replace.ID
	}
	// What the mark found is deleted only when it is what the mark names and no other resource
	// manages it: a mark proves a create was sent, not which object it made.
	if id != "" && (obs.Marker != "" && obs.Marker != rec.Marked || r.notManagedElsewhere(ctx, obj, id) != nil ||
		obs.Marker != "" && r.notManagedElsewhere(ctx, obj, markKey(obs.Marker)) != nil) {
		return leave(id)
	}
	return id, nil
}

// provedBySignatureOnly reports whether the recorded ID is proved by the proof annotation but
// not by status: a resource deleted and made again with saved annotations, or restored from a
// backup. Such a proof may be old, so the object is checked against other resources first.
func (r *Reconciler[T, O]) provedBySignatureOnly(obj T, rec Recorded) bool {
	return rec.Proved && obj.GetStatusID() != rec.ID
}

// pastTense words the deletion event.
func pastTense(p v1alpha1.DeletionPolicy) string {
	if p == v1alpha1.DeletionPolicyDeactivate {
		return "deactivated"
	}
	return "deleted"
}

// ensureFinalizer adds the Finalizer to a resource that records a Dfns object, or a create
// that may have made one, before any change in Dfns. One that records nothing gets it with its
// create-pending mark or its first recorded ID (create, recordID): a new resource costs one
// write fewer.
func (r *Reconciler[T, O]) ensureFinalizer(ctx context.Context, st *state[T, O]) error {
	if controllerutil.ContainsFinalizer(st.obj, Finalizer) || r.recordsNothing(st.obj) {
		return nil
	}
	return r.patchMeta(ctx, st, func(o T) { controllerutil.AddFinalizer(o, Finalizer) })
}

// recordsNothing reports whether the resource holds no trace of a Dfns object: no ID in its
// annotations or status, no create-pending mark, no superseded object, no change held for
// approval. Nothing in Dfns can then be its own, and its deletion has nothing to handle.
func (r *Reconciler[T, O]) recordsNothing(obj T) bool {
	a := obj.GetAnnotations()
	for _, k := range []string{v1alpha1.AnnotationExternalID, v1alpha1.AnnotationCreatePending, v1alpha1.AnnotationPrevious} {
		if _, ok := a[k]; ok {
			return false
		}
	}
	m := obj.Managed()
	return obj.GetStatusID() == "" && m.PendingChangeRequest == nil && len(m.Previous) == 0
}

// staleCopyError is a conflict on an optimistic-lock patch of the resource itself: the copy
// the reconcile acted on was not the latest (fail). Conflicts on other objects (a Secret, a
// Deployment) stay ordinary failures, retried with backoff and reported.
type staleCopyError struct{ err error }

func (e *staleCopyError) Error() string { return e.err.Error() }
func (e *staleCopyError) Unwrap() error { return e.err }

// staleCopyRequeue is the wait before a resource whose copy was stale is read again.
const staleCopyRequeue = 100 * time.Millisecond

// holdsNothing reports whether the resource carries nothing of this driver: no finalizer and
// nothing recorded.
func (r *Reconciler[T, O]) holdsNothing(obj T) bool {
	return !controllerutil.ContainsFinalizer(obj, Finalizer) && r.recordsNothing(obj)
}

// unmark clears create-pending, when it is set.
func (r *Reconciler[T, O]) unmark(ctx context.Context, st *state[T, O]) error {
	if _, ok := st.obj.GetAnnotations()[v1alpha1.AnnotationCreatePending]; !ok {
		return nil
	}
	return r.patchMeta(ctx, st, func(o T) { delete(o.GetAnnotations(), v1alpha1.AnnotationCreatePending) })
}

// recordID stores the Dfns ID in the external-id annotation with its proof, adds the object it
// supersedes ("" for none) to the superseded ones, and clears create-pending, in one write: a
// crash can never record the new object and forget the previous one.
func (r *Reconciler[T, O]) recordID(ctx context.Context, st *state[T, O], id, supersedes string) error {
	proof := r.key.ProveID(r.subject(st.obj), id)
	previous := ""
	if supersedes != "" && supersedes != id {
		previous = r.withPrevious(st.obj, supersedes)
	}
	err := r.patchMeta(ctx, st, func(o T) {
		controllerutil.AddFinalizer(o, Finalizer) // an object found by its marker is recorded first here
		SetAnnotation(o, v1alpha1.AnnotationExternalID, id)
		SetAnnotation(o, v1alpha1.AnnotationProof, proof)
		if previous != "" {
			SetAnnotation(o, v1alpha1.AnnotationPrevious, previous)
		}
		delete(o.GetAnnotations(), v1alpha1.AnnotationCreatePending)
	})
	if err != nil {
		return fmt.Errorf("recording Dfns ID %s: %w", id, err)
	}
	return nil
}

// patchMeta patches the resource's metadata at once (finalizers, annotations) and carries the
// result into the object and its snapshot, leaving the in-memory status alone.
func (r *Reconciler[T, O]) patchMeta(ctx context.Context, st *state[T, O], mutate func(T)) error {
	cp := st.obj.DeepCopyObject().(T)
	mutate(cp)
	patch := client.MergeFrom(st.obj)
	if !slices.Equal(cp.GetFinalizers(), st.obj.GetFinalizers()) {
		// A merge patch replaces the whole list of finalizers: with optimistic locking it never
		// drops one another controller added since this reconcile read the resource.
		patch = client.MergeFromWithOptions(st.obj, client.MergeFromWithOptimisticLock{})
	}
	if err := r.client.Patch(ctx, cp, patch); err != nil {
		if apierrors.IsConflict(err) {
			return &staleCopyError{err: err}
		}
		return err
	}
	for _, o := range []T{st.obj, st.before} {
		o.SetAnnotations(cp.GetAnnotations())
		o.SetFinalizers(cp.GetFinalizers())
		o.SetResourceVersion(cp.GetResourceVersion())
	}
	r.wrote(cp)
	return nil
}

// patchStatus writes status once per reconcile, only when it changed. A conflict is a silent
// requeue; a resource already gone is fine.
func (r *Reconciler[T, O]) patchStatus(ctx context.Context, st *state[T, O], res ctrl.Result, err error) (ctrl.Result, error) {
	if !st.silent {
		st.obj.Managed().ObservedGeneration = st.obj.GetGeneration()
	}
	r.reportPrevious(st.obj)
	if controllerutil.ContainsFinalizer(st.obj, Finalizer) || st.obj.GetDeletionTimestamp().IsZero() {
		observe(r.kind, st.obj)
	} else {
		forget(r.kind, st.obj.GetNamespace(), st.obj.GetName())
	}
	if equality.Semantic.DeepEqual(st.before.GetStatus(), st.obj.GetStatus()) {
		return res, err
	}
	perr := r.client.Status().Patch(ctx, st.obj, client.MergeFrom(st.before))
	switch {
	case perr == nil:
		r.wrote(st.obj)
		return res, err
	case apierrors.IsNotFound(perr):
		return res, err
	case apierrors.IsConflict(perr) && err == nil:
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	return res, errors.Join(err, fmt.Errorf("patching status: %w", perr))
}

// resync is the requeue of a resource in sync: its next drift check, at low priority, so that a
// new or changed resource is never queued behind the periodic checks of thousands of others.
func (r *Reconciler[T, O]) resync() ctrl.Result {
	low := handler.LowPriority
	return ctrl.Result{RequeueAfter: r.jitter(r.syncPeriod), Priority: &low}
}

// jitter spreads periodic resyncs by up to a tenth of the period.
func (r *Reconciler[T, O]) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// ExternalID is the recorded Dfns ID.
func ExternalID(obj client.Object) string {
	return obj.GetAnnotations()[v1alpha1.AnnotationExternalID]
}

// SetAnnotation sets one annotation.
func SetAnnotation(obj client.Object, key, value string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
}

// subject is the resource as ownership proofs name it: with its connection, so that a proof
// made through one connection proves nothing through another.
func (r *Reconciler[T, O]) subject(obj T) ownership.Subject {
	return ownership.Subject{Connection: obj.GetConnectionRef().String(), Kind: r.kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// signed reports whether the resource carries the operator's proof for id.
func (r *Reconciler[T, O]) signed(obj T, id string) bool {
	a := obj.GetAnnotations()
	return a[v1alpha1.AnnotationExternalID] == id && r.key.OwnsID(r.subject(obj), id, a[v1alpha1.AnnotationProof])
}

// recorded sorts what the resource's annotations say into proof and claims. A create-pending
// mark without a valid proof (set by hand, or copied from another resource) is removed, with a
// Warning event: it must never make someone else's object look like a lost one of ours.
func (r *Reconciler[T, O]) recorded(ctx context.Context, st *state[T, O]) (Recorded, error) {
	obj := st.obj
	rec := Recorded{ID: ExternalID(obj)}
	for _, e := range r.previous(obj) {
		rec.Previous = append(rec.Previous, e.ID)
	}
	rec.Proved = rec.ID != "" && (obj.GetStatusID() == rec.ID || r.signed(obj, rec.ID))
	value, marked := obj.GetAnnotations()[v1alpha1.AnnotationCreatePending]
	if !marked {
		return rec, nil
	}
	if m, ok := r.key.DecodeMark(r.subject(obj), string(obj.GetUID()), value); ok {
		rec.Marked = m.Name
		return rec, nil
	}
	r.warning(obj, EventClaimIgnored, fmt.Sprintf("removed the %s annotation: it does not carry the operator's proof, "+
		"so it was not set by the operator for this resource", v1alpha1.AnnotationCreatePending))
	if err := r.unmark(ctx, st); err != nil {
		return rec, fmt.Errorf("removing an unproved create-pending mark: %w", err)
	}
	return rec, nil
}

// adoptable checks that the resource may take the Dfns object id as its own although it cannot
// prove it made it: its kind has no one-time secret (which Dfns never shows again), and no other
// resource manages the object. Messages name no object of another resource.
func (r *Reconciler[T, O]) adoptable(ctx context.Context, st *state[T, O], id string) error {
	obj := st.obj
	if name, _ := r.connector.Secret(obj); name != "" {
		return Stopf(v1alpha1.ReasonInvalidSpec, "Dfns object %s was not created by this resource and Dfns never "+
			"shows its secret again, so it cannot be adopted; remove the %s annotation to create a new one",
			id, v1alpha1.AnnotationExternalID)
	}
	if !st.Adoption {
		return Stopf(v1alpha1.ReasonNotPermitted, "connection %s does not allow adoption (limits.adoption): Dfns object %s "+
			"was not created by this resource; remove the %s annotation", obj.GetConnectionRef(), id, v1alpha1.AnnotationExternalID)
	}
	if err := r.notManagedElsewhere(ctx, obj, id); err != nil {
		return Stopf(v1alpha1.ReasonNotPermitted, "Dfns object %s is managed by another resource, so this one "+
			"cannot adopt it; remove the %s annotation", id, v1alpha1.AnnotationExternalID)
	}
	return nil
}

// connect binds the kind to the resource's connection for this reconcile.
func (r *Reconciler[T, O]) connect(ctx context.Context, st *state[T, O], deleting bool) error {
	sess, err := r.connector.Connect(ctx, st.obj, deleting)
	if err != nil {
		return err
	}
	st.Session = sess
	return nil
}

// notManagedElsewhere fails (NotPermitted) when another resource of the kind proves it owns the
// Dfns object id. The message names no object of the other resource.
func (r *Reconciler[T, O]) notManagedElsewhere(ctx context.Context, obj T, id string) error {
	owners, err := r.owners(ctx, id)
	if err != nil {
		return fmt.Errorf("looking for other resources that manage the Dfns object: %w", err)
	}
	others := 0
	for _, o := range owners {
		if o.GetUID() != obj.GetUID() {
			others++
		}
	}
	if others > 0 {
		return Stopf(v1alpha1.ReasonNotPermitted, "the Dfns object this resource would take as its own is managed by another resource")
	}
	return nil
}

// OwnedIDIndex indexes every resource by the Dfns IDs it proves are its own (its status ID, and
// its external-id when the proof annotation signs it) and by the name in its signed
// create-pending mark (markKey). A claim does not enter the index.
const OwnedIDIndex = ".dfns.ownedID"

// OwnedIDs is the OwnedIDIndex function of one kind.
func OwnedIDs[T Object](kind string, key *ownership.Key) func(client.Object) []string {
	r := &Reconciler[T, struct{}]{kind: kind, key: key}
	return func(o client.Object) []string {
		obj, ok := o.(T)
		if !ok {
			return nil
		}
		var ids []string
		if id := obj.GetStatusID(); id != "" {
			ids = append(ids, id)
		}
		if id := ExternalID(obj); id != "" && id != obj.GetStatusID() && r.signed(obj, id) {
			ids = append(ids, id)
		}
		for _, e := range r.previous(obj) {
			ids = append(ids, e.ID)
		}
		if v, ok := obj.GetAnnotations()[v1alpha1.AnnotationCreatePending]; ok {
			if m, ok := key.DecodeMark(r.subject(obj), string(obj.GetUID()), v); ok {
				ids = append(ids, markKey(m.Name))
			}
		}
		return ids
	}
}

// markKey is the OwnedIDIndex value of a create-pending mark's name.
func markKey(name string) string { return "mark:" + name }

// followApproval follows the change request status records as waiting for approval (sent by
// any operation of any kind): still pending → returned, and nothing is sent; applied →
// cleared; rejected → ChangeRejected until the spec changes past the generation it carried.
// shown is the change request the Dfns object shows waiting, if the kind shows one: while it
// shows the recorded one, that one is pending without a look at its approval.
// deleting decides on a rejection whatever generation it carried (deleting a resource bumps
// its generation).
func (r *Reconciler[T, O]) followApproval(ctx context.Context, st *state[T, O], shown *ChangeRequest, deleting bool) (*ChangeRequest, error) {
	cr := st.obj.Managed().PendingChangeRequest
	if cr == nil {
		return nil, nil
	}
	if cr.Status == StatusPending && (shown == nil || shown.ID != cr.ID) {
		got, err := st.Approvals.Outcome(ctx, ChangeRequest{ID: cr.ID, ApprovalID: cr.ApprovalID, Requester: cr.RequesterID})
		if err != nil {
			return nil, fmt.Errorf("reading the approval of change request %s: %w", cr.ID, err)
		}
		if cr.ApprovalID == "" {
			cr.ApprovalID = got.ApprovalID
		}
		cr.Status = got.Status
		if cr.Status == "" {
			// No approval names it, and the object does not show it (or its kind shows
			// none): the observation says what exists, and a change still held is answered
			// 409.
			cr.Status = StatusApplied
		}
	}
	switch cr.Status {
	case StatusPending:
		return &ChangeRequest{ID: cr.ID, ApprovalID: cr.ApprovalID, Status: StatusPending}, nil
	case StatusRejected, StatusFailed:
		if deleting || cr.Generation == st.obj.GetGeneration() {
			return nil, Stopf(v1alpha1.ReasonChangeRejected, "change request %s (approval %s) was rejected in Dfns; "+
				"change the spec, or delete and re-create the resource, to ask again", cr.ID, cr.ApprovalID)
		}
	}
	st.obj.Managed().PendingChangeRequest = nil
	return nil, nil
}

// followApprovalBeforeDelete follows a change held for approval before the object is deleted:
// a create or delete still pending keeps the finalizer (the create may yet be applied, the
// delete must not be sent again); a rejected create made nothing, so the resource goes; a
// rejected delete stops, since sending it again would only be rejected again.
func (r *Reconciler[T, O]) followApprovalBeforeDelete(ctx context.Context, st *state[T, O]) (ctrl.Result, bool, error) {
	cr := st.obj.Managed().PendingChangeRequest
	if cr == nil {
		return ctrl.Result{}, false, nil
	}
	var shown *ChangeRequest
	if cr.Status == StatusPending && cr.ApprovalID == "" {
		// Only the object can tell whether it still waits.
		rec, err := r.recorded(ctx, st)
		if err != nil {
			res, err := r.fail(ctx, st, err)
			return res, true, err
		}
		if rec.Proved || rec.Marked != "" {
			obs, err := st.External.Observe(ctx, st.obj, rec)
			if err != nil {
				res, err := r.fail(ctx, st, err)
				return res, true, err
			}
			shown = obs.Shown
		}
	}
	op := cr.Operation
	pending, err := r.followApproval(ctx, st, shown, true)
	switch {
	case pending != nil:
		res, err := r.awaitApproval(ctx, st, pending, "")
		return res, true, err
	case err == nil:
		return ctrl.Result{}, false, nil
	case op == OperationDelete:
		res, err := r.fail(ctx, st, Stopf(v1alpha1.ReasonChangeRejected, "the deletion was rejected in Dfns (change request %s); "+
			"set deletionPolicy: Orphan to delete the resource and keep the Dfns object", cr.ID))
		return res, true, err
	case op == OperationCreate && ExternalID(st.obj) == "":
		// A rejected create made nothing: there is nothing to delete.
		st.obj.Managed().PendingChangeRequest = nil
		if err := r.patchMeta(ctx, st, func(o T) { controllerutil.RemoveFinalizer(o, Finalizer) }); err != nil {
			res, err := r.fail(ctx, st, fmt.Errorf("removing the finalizer: %w", err))
			return res, true, err
		}
		return ctrl.Result{}, true, nil
	}
	// A rejected update: the object is deleted as it is.
	st.obj.Managed().PendingChangeRequest = nil
	return ctrl.Result{}, false, nil
}
