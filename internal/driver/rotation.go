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
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// This file is the rest of the rotation protocol (docs/architecture.md, "Rotation"): the create
// of a rotation is the driver's create (driver.go) with the superseded object kept; here are
// the list of superseded objects, their retirement once their grace period is over, the
// restart of the Secret's consumers, and the manual rotation request.

// Events of a rotation.
const (
	// EventRotated: a new object replaced the previous one, which stays usable for the grace
	// period.
	EventRotated = "Rotated"
	// EventRetired: a superseded object was deleted (or deactivated) after its grace period.
	EventRetired = "Retired"
	// EventRestarted: a workload reading the Secret was restarted after a rotation.
	EventRestarted = "Restarted"
	// EventRestartTargetMissing: a rolloutRestartTargets workload does not exist, or does not
	// read the resource's Secret (it is not restarted).
	EventRestartTargetMissing = "RestartTargetMissing"
)

// graced is a resource whose rotations keep the previous object for a grace period.
type graced interface {
	GetGracePeriod() time.Duration
}

// restarting is a resource with workloads to restart when its Secret changes.
type restarting interface {
	GetRolloutRestartTargets() []v1alpha1.RestartTarget
}

// fingerprinted is a resource whose status holds its Secret's fingerprint.
type fingerprinted interface {
	SecretFingerprint() string
}

// previousEntry is one superseded object in the AnnotationPrevious annotation.
type previousEntry struct {
	ID       string    `json:"id"`
	RetireAt time.Time `json:"retireAt"`
	Proof    string    `json:"proof"`
}

// maxPrevious bounds the superseded objects a resource keeps at once: a rotation asked for by
// hand waits while that many are still in their grace period, so that nobody can keep an
// unbounded number of old identities alive.
const maxPrevious = 3

// previousProof signs one entry: its ID and its retirement time, for a purpose no ID proof
// shares, so that an entry can be neither forged, nor postponed, nor made from an ID proof.
func (r *Reconciler[T, O]) previousProof(obj T, id string, at time.Time) string {
	return r.key.ProveID(r.subject(obj), "previous "+id+" "+at.UTC().Format(time.RFC3339))
}

// previous reads the superseded objects: those status lists (only the operator writes it), then
// those of the annotation (which survives a restore that drops status) whose proof is valid. A
// tenant can therefore neither add an entry, nor remove or postpone one status holds.
func (r *Reconciler[T, O]) previous(obj T) []previousEntry {
	var all []previousEntry
	for _, p := range obj.Managed().Previous {
		all = append(all, previousEntry{ID: p.ID, RetireAt: p.RetireAt.UTC()})
	}
	var signed []previousEntry
	if raw := obj.GetAnnotations()[v1alpha1.AnnotationPrevious]; raw != "" && json.Unmarshal([]byte(raw), &signed) == nil {
		for _, e := range signed {
			if !slices.ContainsFunc(all, func(p previousEntry) bool { return p.ID == e.ID }) &&
				r.key.OwnsID(r.subject(obj), "previous "+e.ID+" "+e.RetireAt.UTC().Format(time.RFC3339), e.Proof) {
				all = append(all, previousEntry{ID: e.ID, RetireAt: e.RetireAt.UTC()})
			}
		}
	}
	return all
}

// withPrevious is the AnnotationPrevious value with id added, retired after the grace period.
func (r *Reconciler[T, O]) withPrevious(obj T, id string) string {
	all := r.previous(obj)
	if id != "" && !slices.ContainsFunc(all, func(e previousEntry) bool { return e.ID == id }) {
		all = append(all, previousEntry{ID: id, RetireAt: r.now().Add(gracePeriodOf(obj)).UTC().Truncate(time.Second)})
	}
	return r.encodePrevious(obj, all)
}

// encodePrevious is the annotation's value, each entry signed; "" when the list is empty.
func (r *Reconciler[T, O]) encodePrevious(obj T, all []previousEntry) string {
	if len(all) == 0 {
		return ""
	}
	for i := range all {
		all[i].Proof = r.previousProof(obj, all[i].ID, all[i].RetireAt)
	}
	b, _ := json.Marshal(all)
	return string(b)
}

// setPrevious records the superseded objects in status.
func setPrevious(obj Object, all []previousEntry) {
	out := make([]v1alpha1.PreviousObject, 0, len(all))
	for _, e := range all {
		out = append(out, v1alpha1.PreviousObject{ID: e.ID, RetireAt: metav1.NewTime(e.RetireAt)})
	}
	if len(out) == 0 {
		out = nil
	}
	obj.Managed().Previous = out
}

// gracePeriodOf is the resource's grace period, or the default.
func gracePeriodOf(obj any) time.Duration {
	if g, ok := obj.(graced); ok {
		return g.GetGracePeriod()
	}
	return v1alpha1.DefaultGracePeriod
}

// reportPrevious records in status every superseded object status or the annotation lists;
// the driver calls it as it writes status.
func (r *Reconciler[T, O]) reportPrevious(obj T) { setPrevious(obj, r.previous(obj)) }

// retire deletes (or deactivates) the superseded objects whose grace period is over, then
// drops them from the annotation. An object already gone is retired. A failure is reported and
// retried at the next reconcile; it does not stop the reconcile.
func (r *Reconciler[T, O]) retire(ctx context.Context, st *state[T, O], all bool) error {
	entries := r.previous(st.obj)
	now := r.now()
	var keep []previousEntry
	var retired []string
	var failed error
	for _, e := range entries {
		if !all && now.Before(e.RetireAt) {
			keep = append(keep, e)
			continue
		}
		if err := r.notManagedElsewhere(ctx, st.obj, e.ID); err != nil {
			// Someone else's now (adopted after this resource let it go): not ours to retire.
			r.warning(st.obj, EventClaimIgnored, fmt.Sprintf("left the superseded Dfns object %s alone: another resource manages it", e.ID))
			retired = append(retired, "")
			continue
		}
		if err := st.External.Retire(ctx, st.obj, e.ID); err != nil {
			keep = append(keep, e)
			failed = fmt.Errorf("retiring the superseded Dfns object %s: %w", e.ID, err)
			continue
		}
		retired = append(retired, e.ID)
	}
	if len(retired) > 0 {
		value := r.encodePrevious(st.obj, keep)
		if err := r.patchMeta(ctx, st, func(o T) {
			if value == "" {
				delete(o.GetAnnotations(), v1alpha1.AnnotationPrevious)
			} else {
				SetAnnotation(o, v1alpha1.AnnotationPrevious, value)
			}
		}); err != nil {
			return fmt.Errorf("recording the retired Dfns objects: %w", err)
		}
		setPrevious(st.obj, keep)
		for _, id := range retired {
			if id != "" {
				r.normal(st.obj, EventRetired, "retired the superseded Dfns object %s after its grace period", id)
			}
		}
	}
	return failed
}

// rotateRequested reports whether the access.dfns.io/rotate annotation held, when the reconcile
// began, a value not yet acted on, on a kind that publishes a secret, with fewer than
// maxPrevious objects in their grace period.
func (r *Reconciler[T, O]) rotateRequested(st *state[T, O]) bool {
	if name, _ := r.connector.Secret(st.obj); name == "" {
		return false
	}
	return st.rotateRequest != "" && st.rotateRequest != st.obj.Managed().RotateRequest && len(r.previous(st.obj)) < maxPrevious
}

// rotationDone records that the rotation request read when the reconcile began, if any, was
// acted on; one set since is not.
func rotationDone[T Object, O any](st *state[T, O]) {
	if st.rotateRequest != "" {
		st.obj.Managed().RotateRequest = st.rotateRequest
	}
}

// restartConsumers restarts the rolloutRestartTargets once the Secret's content changed since
// the last restart: it sets AnnotationRestartedAt on each workload's pod template, with
// AnnotationRestartedFor naming the Secret's fingerprint, so that a workload already restarted
// for this fingerprint (before a crash) is not restarted again. The first Secret restarts
// nothing: its consumers start with it.
func (r *Reconciler[T, O]) restartConsumers(ctx context.Context, st *state[T, O]) error {
	rt, ok := any(st.obj).(restarting)
	fpr, fok := any(st.obj).(fingerprinted)
	if !ok || !fok {
		return nil
	}
	fp, m := fpr.SecretFingerprint(), st.obj.Managed()
	if fp == "" || fp == m.RestartedFor {
		return nil
	}
	if m.RestartedFor == "" {
		m.RestartedFor = fp
		return nil
	}
	secretName, _ := r.connector.Secret(st.obj) // the Secret's name; its values are never read here
	for _, t := range rt.GetRolloutRestartTargets() {
		restarted, err := r.restart(ctx, st.obj.GetNamespace(), t, secretName, fp)
		switch {
		case apierrors.IsNotFound(err):
			r.warning(st.obj, EventRestartTargetMissing, fmt.Sprintf("%s %s does not exist: nothing to restart", t.Kind, t.Name))
		case errors.Is(err, errNotAConsumer):
			r.warning(st.obj, EventRestartTargetMissing, fmt.Sprintf("%s %s does not read Secret %s: not restarted", t.Kind, t.Name, secretName))
		case err != nil:
			return fmt.Errorf("restarting %s %s: %w", t.Kind, t.Name, err)
		case restarted:
			r.normal(st.obj, EventRestarted, "restarted %s %s: its Secret has a new value", t.Kind, t.Name)
		}
	}
	m.RestartedFor = fp
	return nil
}

// errNotAConsumer: a restart target whose pods do not read the resource's Secret. The operator
// restarts only consumers, so that naming a workload in a resource does not let anyone who may
// write the resource restart any workload of the namespace.
var errNotAConsumer = errors.New("the workload does not read the Secret")

// restart annotates one workload's pod template, unless it was restarted for fp already or
// does not read the Secret.
func (r *Reconciler[T, O]) restart(ctx context.Context, namespace string, t v1alpha1.RestartTarget, secretName, fp string) (bool, error) {
	var obj client.Object
	var tmpl func() *corev1.PodTemplateSpec
	switch t.Kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		obj, tmpl = d, func() *corev1.PodTemplateSpec { return &d.Spec.Template }
	case "StatefulSet":
		s := &appsv1.StatefulSet{}
		obj, tmpl = s, func() *corev1.PodTemplateSpec { return &s.Spec.Template }
	case "DaemonSet":
		s := &appsv1.DaemonSet{}
		obj, tmpl = s, func() *corev1.PodTemplateSpec { return &s.Spec.Template }
	default:
		return false, fmt.Errorf("unknown kind %q", t.Kind)
	}
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: t.Name}, obj); err != nil {
		return false, err
	}
	if !readsSecret(&tmpl().Spec, secretName) {
		return false, errNotAConsumer
	}
	if tmpl().Annotations[v1alpha1.AnnotationRestartedFor] == fp {
		return false, nil
	}
	before := obj.DeepCopyObject().(client.Object)
	if tmpl().Annotations == nil {
		tmpl().Annotations = map[string]string{}
	}
	tmpl().Annotations[v1alpha1.AnnotationRestartedAt] = r.now().UTC().Format(time.RFC3339)
	tmpl().Annotations[v1alpha1.AnnotationRestartedFor] = fp
	return true, r.client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// readsSecret reports whether a pod spec reads the Secret: through envFrom, an env value, or a
// volume (projected ones included).
func readsSecret(spec *corev1.PodSpec, name string) bool {
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == name {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// renewing is a resource whose status says when its token is renewed.
type renewing interface {
	GetTokenStatus() *v1alpha1.TokenStatus
}

// soonest shortens a requeue to the next time something is due: a superseded object's retirement
// or the token's renewal.
func (r *Reconciler[T, O]) soonest(obj T, res ctrl.Result) ctrl.Result {
	var due []time.Time
	for _, p := range r.previous(obj) {
		due = append(due, p.RetireAt)
	}
	if t, ok := any(obj).(renewing); ok {
		if at := t.GetTokenStatus().RenewAt; at != nil {
			due = append(due, at.Time)
		}
	}
	now := r.now()
	for _, at := range due {
		if !at.After(now) {
			continue // due already: the reconcile's own requeue (and backoff) applies
		}
		after := at.Sub(now) + time.Second
		if res.RequeueAfter == 0 || after < res.RequeueAfter {
			res.RequeueAfter = after
		}
	}
	return res
}

// tokenExpired reports whether the token status describes has expired.
func (r *Reconciler[T, O]) tokenExpired(obj T) bool {
	t, ok := any(obj).(renewing)
	if !ok {
		return false
	}
	at := t.GetTokenStatus().ExpiresAt
	return at != nil && !r.now().Before(at.Time)
}
