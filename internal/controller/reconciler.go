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
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// finalizer holds a resource until its Dfns object is handled per its deletionPolicy.
const finalizer = "access.dfns.io/finalizer"

// Object is a resource the driver reconciles; the api/v1alpha1 kinds implement it.
type Object interface {
	client.Object
	StatusConditions() *[]metav1.Condition
	SetObservedGeneration(generation int64)
	GetDeletionPolicy() v1alpha1.DeletionPolicy
	SetStatusID(id string)
	GetStatus() any
}

// pendingRecorder is implemented by kinds whose changes Dfns may hold for approval.
type pendingRecorder interface {
	SetPendingChangeRequest(cr *v1alpha1.ChangeRequestStatus)
}

// Replacement asks Create to remove an existing Dfns object before it creates a new one.
type Replacement struct {
	// ID is the object to delete first; empty when it is gone already.
	ID string
	// Reason and Message make the Normal event recorded once the replacement is done.
	Reason, Message string
}

// Observation is what Observe found in Dfns.
type Observation struct {
	// ID is the Dfns ID of the object found.
	ID string
	// Exists is false when a new object must be created.
	Exists bool
	// UpToDate is false when Update must run.
	UpToDate bool
	// Pending is a change request that waits for approval: nothing is sent while it is set.
	Pending *dfns.ChangeRequest
	// Replace, with Exists false, says what Create removes first and why.
	Replace *Replacement
	// Diff says what differs, for the Updated event; it never holds secret values.
	Diff string
	// Current is the Dfns object, for Update.
	Current any
}

// Note is a change made in Dfns, recorded by the driver as a Normal event.
type Note struct{ Reason, Message string }

// SecretContent is a one-time secret the driver publishes before anything else can fail.
type SecretContent struct {
	Data        map[string][]byte
	Annotations map[string]string
}

// Creation is the result of a Create.
type Creation struct {
	ID     string
	Secret *SecretContent
	Notes  []Note
}

// External is what a kind contributes to the driver: the calls against Dfns. Methods never
// record events or log; they return notes and wrapped errors.
type External[T Object] interface {
	// Validate checks what the API server could not; it returns a stopError or waitError.
	Validate(ctx context.Context, obj T) error
	// Observe looks at the Dfns object with the recorded ID, or, with id empty, for one this
	// resource made (by its unique name). It does not change Dfns.
	Observe(ctx context.Context, obj T, id string) (Observation, error)
	// Create makes the Dfns object. It calls mark right before the create call, so that a
	// lost answer can be recognised later, and makes no other Dfns call after it: a refusal
	// (4xx) after mark is read as the create's, which made nothing, and clears the mark.
	Create(ctx context.Context, obj T, obs Observation, mark func(context.Context) error) (Creation, error)
	// Update brings the Dfns object in line with the spec.
	Update(ctx context.Context, obj T, obs Observation) ([]Note, error)
	// Delete handles the Dfns object per the deletion policy; an object already gone is success.
	Delete(ctx context.Context, obj T, id string) error
	// Secret returns the Secret the kind publishes into: name ("" for none) and template.
	Secret(obj T) (string, v1alpha1.SecretTemplate)
}

// Reconciler is the reconcile driver shared by every kind.
type Reconciler[T Object] struct {
	client     client.Client
	reader     client.Reader // uncached, for Secrets the cache cannot see and fresh reads
	scheme     *runtime.Scheme
	ext        External[T]
	newObject  func() T
	recorder   EventRecorder
	syncPeriod time.Duration
	timeout    time.Duration
	// secretRetries and secretBackoff bound the retries of a one-time Secret write.
	secretRetries int
	secretBackoff time.Duration
	now           func() time.Time
	// current is, per resource, the resourceVersion this driver last wrote or read past the
	// cache: a cached copy at that version is as fresh as a read past the cache.
	current sync.Map // types.NamespacedName -> string
}

// state is one reconcile's object and the snapshot its status patch is computed from.
type state[T Object] struct {
	obj, before T
}

// Reconcile drives one resource towards its spec.
func (r *Reconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	obj, found, err := r.get(ctx, req)
	if err != nil || !found {
		return ctrl.Result{}, err
	}
	log := logf.FromContext(ctx).WithValues("uid", obj.GetUID(), "generation", obj.GetGeneration())
	ctx = logf.IntoContext(ctx, log)
	st := &state[T]{obj: obj, before: obj.DeepCopyObject().(T)}
	defer func() { res, err = r.patchStatus(ctx, st, res, err) }()

	if !obj.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, st)
	}
	if err := r.ensureFinalizer(ctx, st); err != nil {
		return r.fail(ctx, st, fmt.Errorf("adding the finalizer: %w", err))
	}
	if err := r.ext.Validate(ctx, obj); err != nil {
		return r.fail(ctx, st, err)
	}
	obs, err := r.ext.Observe(ctx, obj, externalID(obj))
	if err != nil {
		return r.fail(ctx, st, err)
	}
	return r.converge(ctx, st, obs)
}

// get reads the resource and reports whether it exists. A stale copy (an ID or a Secret
// fingerprint just written but not yet in the cache) could make a second Dfns object or
// re-mint a token that was just written, so the cached copy is used only at the version this
// driver last wrote or read; otherwise the resource is read past the cache. At rest that saves
// the API server one read per resource per sync period.
func (r *Reconciler[T]) get(ctx context.Context, req ctrl.Request) (T, bool, error) {
	obj := r.newObject()
	err := r.client.Get(ctx, req.NamespacedName, obj)
	if err == nil {
		if v, ok := r.current.Load(req.NamespacedName); ok && v == obj.GetResourceVersion() {
			return obj, true, nil
		}
	} else if !apierrors.IsNotFound(err) {
		return obj, false, err
	}
	obj = r.newObject()
	if err := r.reader.Get(ctx, req.NamespacedName, obj); err != nil {
		r.current.Delete(req.NamespacedName)
		return obj, false, client.IgnoreNotFound(err)
	}
	r.current.Store(req.NamespacedName, obj.GetResourceVersion())
	return obj, true, nil
}

// wrote records the resourceVersion of a write of this driver.
func (r *Reconciler[T]) wrote(obj T) {
	r.current.Store(client.ObjectKeyFromObject(obj), obj.GetResourceVersion())
}

// converge acts on an observation: adopt, create, wait for approval, update, or report Ready.
func (r *Reconciler[T]) converge(ctx context.Context, st *state[T], obs Observation) (ctrl.Result, error) {
	if obs.Exists && obs.ID != externalID(st.obj) {
		if err := r.recordID(ctx, st, obs.ID); err != nil {
			return r.fail(ctx, st, err)
		}
		r.normal(st.obj, EventAdopted, "adopted the existing Dfns object %s", obs.ID)
	}
	switch {
	case !obs.Exists:
		return r.create(ctx, st, obs)
	case obs.Pending != nil:
		st.obj.SetStatusID(obs.ID)
		return r.awaitApproval(ctx, st, obs.Pending, false)
	case !obs.UpToDate:
		return r.update(ctx, st, obs)
	}
	st.obj.SetStatusID(obs.ID)
	setReady(st.obj)
	return ctrl.Result{RequeueAfter: r.jitter(r.syncPeriod)}, nil
}

// create makes the Dfns object and publishes its one-time secret before anything else.
func (r *Reconciler[T]) create(ctx context.Context, st *state[T], obs Observation) (ctrl.Result, error) {
	if err := r.checkSecret(ctx, st.obj); err != nil {
		return r.fail(ctx, st, err)
	}
	marked := false
	mark := func(ctx context.Context) error {
		err := r.patchMeta(ctx, st, func(o T) {
			setAnnotation(o, v1alpha1.AnnotationCreatePending, r.now().UTC().Format(time.RFC3339))
		})
		marked = err == nil
		return err
	}
	created, err := r.ext.Create(ctx, st.obj, obs, mark)
	r.notes(st.obj, created.Notes)
	if err != nil {
		if marked && dfns.IsRefused(err) {
			// Dfns refused the create call (each kind sends it right after mark), so it made
			// nothing: without the mark, an object of the same name made meanwhile by someone
			// else is never taken for a lost one of ours. A refusal before the mark (say, of
			// the delete of an orphan) leaves the mark that finds the orphan again.
			if uerr := r.unmark(ctx, st); uerr != nil {
				return r.fail(ctx, st, fmt.Errorf("%w; clearing the create-pending mark: %w", err, uerr))
			}
		}
		return r.fail(ctx, st, err)
	}
	if created.Secret != nil {
		if err := r.publish(ctx, st.obj, created.Secret); err != nil {
			return r.fail(ctx, st, err)
		}
	}
	if err := r.recordID(ctx, st, created.ID); err != nil {
		return r.fail(ctx, st, err)
	}
	st.obj.SetStatusID(created.ID)
	r.normal(st.obj, EventCreated, "created the Dfns object %s", created.ID)
	logf.FromContext(ctx).Info("Created the Dfns object", "id", created.ID)
	// A second look confirms the object matches the spec (e.g. deactivated when asked).
	setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess,
		"the last reconcile converged")
	setNotReady(st.obj, v1alpha1.ReasonCreating, "created; checking it matches the spec")
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// update changes the Dfns object to match the spec; a 202 is recorded and waited on.
func (r *Reconciler[T]) update(ctx context.Context, st *state[T], obs Observation) (ctrl.Result, error) {
	notes, err := r.ext.Update(ctx, st.obj, obs)
	r.notes(st.obj, notes)
	if cr, ok := dfns.IsPendingApproval(err); ok {
		return r.awaitApproval(ctx, st, cr, true)
	}
	if err != nil {
		return r.fail(ctx, st, err)
	}
	if len(notes) == 0 {
		r.normal(st.obj, EventUpdated, "updated the Dfns object %s: %s", obs.ID, obs.Diff)
	}
	st.obj.SetStatusID(obs.ID)
	setReady(st.obj)
	return ctrl.Result{RequeueAfter: r.jitter(r.syncPeriod)}, nil
}

// awaitApproval records a change request and polls it at the sync period; the change is
// never sent again while it is pending.
func (r *Reconciler[T]) awaitApproval(ctx context.Context, st *state[T], cr *dfns.ChangeRequest, sent bool) (ctrl.Result, error) {
	if pr, ok := any(st.obj).(pendingRecorder); ok && cr != nil {
		pr.SetPendingChangeRequest(&v1alpha1.ChangeRequestStatus{
			ID: cr.ID, ApprovalID: cr.ApprovalID, Status: crPending, Generation: st.obj.GetGeneration(),
		})
	}
	msg := approvalMessage(cr)
	if sent {
		r.normal(st.obj, EventChangePendingApproval, "%s", msg)
	}
	setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, msg)
	if !st.obj.GetDeletionTimestamp().IsZero() {
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting, msg)
	} else {
		setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnavailable, msg)
	}
	logf.FromContext(ctx).V(1).Info("Waiting for approval", "changeRequest", cr.ID)
	return ctrl.Result{RequeueAfter: r.syncPeriod}, nil
}

// fail records a failure: Synced=False with the classified reason, a Warning event when the
// condition changed or the error is retried, and the requeue policy of the class.
func (r *Reconciler[T]) fail(ctx context.Context, st *state[T], err error) (ctrl.Result, error) {
	v := classify(err)
	changed := setCondition(st.obj, v1alpha1.ConditionSynced, metav1.ConditionFalse, v.reason, v.message)
	if st.obj.GetDeletionTimestamp().IsZero() {
		reason, msg := notReadyReason(st.obj)
		setNotReady(st.obj, reason, msg)
	}
	if changed || v.policy == retry {
		r.warning(st.obj, v.reason, v.message)
	}
	log := logf.FromContext(ctx)
	switch v.policy {
	case stop:
		log.V(1).Info("Stopped until the spec changes", "reason", v.reason, "error", err.Error())
		return ctrl.Result{}, nil
	case wait:
		after := v.after
		if after <= 0 {
			after = r.syncPeriod
		}
		log.V(1).Info("Waiting", "reason", v.reason, "after", after)
		return ctrl.Result{RequeueAfter: after}, nil
	}
	return ctrl.Result{}, err
}

// notes records the changes a kind made as Normal events.
func (r *Reconciler[T]) notes(obj T, notes []Note) {
	for _, n := range notes {
		r.normal(obj, n.Reason, "%s", n.Message)
	}
}

// reconcileDelete handles the Dfns object per the deletion policy, then drops the finalizer.
func (r *Reconciler[T]) reconcileDelete(ctx context.Context, st *state[T]) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(st.obj, finalizer) {
		return ctrl.Result{}, nil
	}
	setCondition(st.obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleting,
		"the resource is being deleted")
	if st.obj.GetDeletionPolicy() != v1alpha1.DeletionPolicyOrphan {
		id, err := r.deletionTarget(ctx, st.obj)
		if err != nil {
			return r.fail(ctx, st, err)
		}
		if id != "" {
			err := r.ext.Delete(ctx, st.obj, id)
			if cr, ok := dfns.IsPendingApproval(err); ok {
				return r.awaitApproval(ctx, st, cr, true)
			}
			if err != nil {
				return r.fail(ctx, st, err)
			}
			r.normal(st.obj, EventDeleted, "%s the Dfns object %s", pastTense(st.obj.GetDeletionPolicy()), id)
		}
	}
	if err := r.patchMeta(ctx, st, func(o T) { controllerutil.RemoveFinalizer(o, finalizer) }); err != nil {
		return r.fail(ctx, st, fmt.Errorf("removing the finalizer: %w", err))
	}
	return ctrl.Result{}, nil
}

// deletionTarget is the recorded ID or, after a create whose answer was lost, the object
// found by its marker.
func (r *Reconciler[T]) deletionTarget(ctx context.Context, obj T) (string, error) {
	if id := externalID(obj); id != "" {
		return id, nil
	}
	if _, pending := obj.GetAnnotations()[v1alpha1.AnnotationCreatePending]; !pending {
		return "", nil
	}
	obs, err := r.ext.Observe(ctx, obj, "")
	if err != nil {
		if classify(err).reason == v1alpha1.ReasonChangeRejected {
			return "", nil // the create was rejected in Dfns: nothing exists
		}
		return "", err
	}
	if obs.Pending != nil {
		// A create held for approval may still be applied: keep the finalizer until it is decided.
		return "", waitf(v1alpha1.ReasonAwaitingApproval, "deleting once %s", approvalMessage(obs.Pending))
	}
	if obs.Replace != nil && obs.Replace.ID != "" {
		return obs.Replace.ID, nil
	}
	return obs.ID, nil
}

// pastTense words the deletion event.
func pastTense(p v1alpha1.DeletionPolicy) string {
	if p == v1alpha1.DeletionPolicyDeactivate {
		return "deactivated"
	}
	return "deleted"
}

// ensureFinalizer adds the finalizer before any call to Dfns.
func (r *Reconciler[T]) ensureFinalizer(ctx context.Context, st *state[T]) error {
	if controllerutil.ContainsFinalizer(st.obj, finalizer) {
		return nil
	}
	return r.patchMeta(ctx, st, func(o T) { controllerutil.AddFinalizer(o, finalizer) })
}

// unmark clears create-pending, when it is set.
func (r *Reconciler[T]) unmark(ctx context.Context, st *state[T]) error {
	if _, ok := st.obj.GetAnnotations()[v1alpha1.AnnotationCreatePending]; !ok {
		return nil
	}
	return r.patchMeta(ctx, st, func(o T) { delete(o.GetAnnotations(), v1alpha1.AnnotationCreatePending) })
}

// recordID stores the Dfns ID in the external-id annotation and clears create-pending.
func (r *Reconciler[T]) recordID(ctx context.Context, st *state[T], id string) error {
	err := r.patchMeta(ctx, st, func(o T) {
		setAnnotation(o, v1alpha1.AnnotationExternalID, id)
		delete(o.GetAnnotations(), v1alpha1.AnnotationCreatePending)
	})
	if err != nil {
		return fmt.Errorf("recording Dfns ID %s: %w", id, err)
	}
	return nil
}

// patchMeta patches the resource's metadata at once (finalizers, annotations) and carries the
// result into the object and its snapshot, leaving the in-memory status alone.
func (r *Reconciler[T]) patchMeta(ctx context.Context, st *state[T], mutate func(T)) error {
	cp := st.obj.DeepCopyObject().(T)
	mutate(cp)
	if err := r.client.Patch(ctx, cp, client.MergeFrom(st.obj)); err != nil {
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
func (r *Reconciler[T]) patchStatus(ctx context.Context, st *state[T], res ctrl.Result, err error) (ctrl.Result, error) {
	st.obj.SetObservedGeneration(st.obj.GetGeneration())
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

// jitter spreads periodic resyncs by up to a tenth of the period.
func (r *Reconciler[T]) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// externalID is the recorded Dfns ID.
func externalID(obj client.Object) string {
	return obj.GetAnnotations()[v1alpha1.AnnotationExternalID]
}

// setAnnotation sets one annotation.
func setAnnotation(obj client.Object, key, value string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
}
