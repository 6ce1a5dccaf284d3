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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// secretConflict is the error for a Secret that this resource does not control.
func secretConflict(name string) error {
	return Stopf(v1alpha1.ReasonSecretConflict,
		"Secret %s exists and is not owned by this resource; it is never overwritten: delete it or choose another spec.secretName", name)
}

// checkSecret makes sure the Secret a create will write is free or ours, and that the API
// server accepts it (a server-side dry run: quotas, admission policies), before Dfns is called:
// a token that cannot be stored must not be minted. absent says the Secret is not expected to
// exist (see writeSecret).
func (r *Reconciler[T, O]) checkSecret(ctx context.Context, obj T, absent bool) error {
	name, tmpl := r.connector.Secret(obj)
	if name == "" {
		return nil
	}
	placeholder := &SecretContent{Data: map[string][]byte{"DFNS_DRY_RUN": []byte("placeholder")}}
	err := r.writeSecret(ctx, obj, name, tmpl, placeholder, true, absent)
	switch {
	case err == nil || isStop(err):
		return err
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		// A quota or an admission policy may change without the spec: look again each sync
		// period. The message is the API server's, about a dry run holding no secret value.
		return Waitf(v1alpha1.ReasonSecretConflict, "the API server refuses Secret %s, so nothing was created in Dfns: %s",
			name, err.Error())
	}
	return fmt.Errorf("checking Secret %s: %w", name, err)
}

// releaseSecret removes the resource's owner reference from its Secret, so that the garbage
// collector keeps the Secret of an object orphaned in Dfns.
func (r *Reconciler[T, O]) releaseSecret(ctx context.Context, obj T) error {
	name, _ := r.connector.Secret(obj)
	if name == "" {
		return nil
	}
	var s corev1.Secret
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, &s)
	if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(&s, obj)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %w", name, err)
	}
	before := s.DeepCopy()
	s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == obj.GetUID() })
	if err := r.client.Patch(ctx, &s, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("releasing Secret %s: %w", name, err)
	}
	return nil
}

// publish writes a one-time secret into the resource's Secret, retrying with a short backoff:
// the values exist nowhere else. It has its own deadline, not what the rate-limiter wait and
// the create left of the reconcile's. absent is as for checkSecret.
func (r *Reconciler[T, O]) publish(ctx context.Context, obj T, content *SecretContent, absent bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), secretTimeout)
	defer cancel()
	name, tmpl := r.connector.Secret(obj)
	backoff := r.secretBackoff
	var err error
	for attempt := 0; attempt <= r.secretRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("writing Secret %s: %w", name, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		err = r.writeSecret(ctx, obj, name, tmpl, content, false, absent)
		if err == nil || isStop(err) {
			return err
		}
	}
	return fmt.Errorf("writing Secret %s: %w", name, err)
}

// secretTimeout bounds the writes of one one-time secret, retries included.
const secretTimeout = 30 * time.Second

// writeSecret creates the Secret or replaces the data of the one this resource controls.
// When the Secret is expected to be absent (the first create of a resource that recorded
// nothing), it is created without reading it first, one round trip fewer; if it exists after
// all, it is read and handled as any existing Secret.
func (r *Reconciler[T, O]) writeSecret(ctx context.Context, obj T, name string, tmpl v1alpha1.SecretTemplate,
	content *SecretContent, dryRun, absent bool) error {
	var s corev1.Secret
	exists := false
	if !absent {
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, &s)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		exists = err == nil
	}
	if exists && !ownsSecret(&s, obj, r.kind) {
		return secretConflict(name)
	}
	// A Secret kept from before a restore names this resource by kind and name under an old
	// UID: it takes the new one.
	s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.Controller != nil && *o.Controller && o.UID != obj.GetUID()
	})
	s.Name, s.Namespace, s.Type = name, obj.GetNamespace(), corev1.SecretTypeOpaque
	labels := make(map[string]string, len(tmpl.Labels))
	for k, v := range tmpl.Labels {
		labels[k] = string(v)
	}
	s.Labels = mergeMaps(s.Labels, labels, map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	s.Annotations = mergeMaps(s.Annotations, tmpl.Annotations, content.Annotations)
	s.Data = maps.Clone(content.Data)
	if err := controllerutil.SetControllerReference(obj, &s, r.scheme); err != nil {
		return Stopf(v1alpha1.ReasonInvalidSpec, "cannot own Secret %s: %v", name, err)
	}
	var upd []client.UpdateOption
	var crt []client.CreateOption
	if dryRun {
		upd, crt = []client.UpdateOption{client.DryRunAll}, []client.CreateOption{client.DryRunAll}
	}
	if exists {
		return r.client.Update(ctx, &s, upd...)
	}
	err := r.client.Create(ctx, &s, crt...)
	switch {
	case apierrors.IsAlreadyExists(err) && absent:
		return r.writeSecret(ctx, obj, name, tmpl, content, dryRun, false)
	case apierrors.IsAlreadyExists(err):
		return secretConflict(name)
	}
	return err
}

// ownsSecret reports whether the Secret is the resource's: controlled by it, or by a resource
// of the same kind and name whose UID changed (a backup restored). Both live in the tenant's
// own namespace, so taking the second over reaches nothing of anyone else's.
func ownsSecret(s *corev1.Secret, owner client.Object, kind string) bool {
	if metav1.IsControlledBy(s, owner) {
		return true
	}
	ref := metav1.GetControllerOf(s)
	return ref != nil && ref.Name == owner.GetName() && ref.Kind == kind &&
		strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/")
}

// isStop reports whether err stops the reconcile until the spec changes.
func isStop(err error) bool { _, ok := StopReason(err); return ok }

// mergeMaps returns the union of the maps, later ones winning.
func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// fingerprint is the SHA-256 of the given Secret values, in order, as hex; it identifies the
// values without revealing them.
func fingerprint(values ...[]byte) string {
	h := sha256.New()
	for _, v := range values {
		_, _ = fmt.Fprintf(h, "%d:", len(v))
		h.Write(v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// OneTimeSecret is a resource's Secret holding a one-time value, as the checks below see it.
type OneTimeSecret struct {
	Owner client.Object
	Kind  string
	Name  string
	// Fingerprint is status.secretFingerprint: the hash of the values last written.
	Fingerprint string
	// StatusID is the Dfns ID status records. When it is not the object asked about, the
	// fingerprint describes another object (status not yet written after a rotation was
	// recorded): a Secret naming the object is then taken as its, fingerprint recovered.
	StatusID string
	// Keys are the Secret keys whose values are fingerprinted; the first must not be empty.
	Keys []string
}

// SecretReader checks the Secrets holding one-time values: from the cache first, and past it
// when the cache may not have caught up with a write just made.
type SecretReader struct {
	client client.Client // cached: only the operator's labelled Secrets
	reader client.Reader // uncached
}

// NewSecretReader reads Secrets from the cached client c and, past the cache, from r.
func NewSecretReader(c client.Client, r client.Reader) SecretReader {
	return SecretReader{client: c, reader: r}
}

// Intact reports whether the Secret still holds the values written for the Dfns object id, by
// their fingerprint. A status that lost the fingerprint gets it back as recovered, from a
// Secret naming id.
func (r SecretReader) Intact(ctx context.Context, o OneTimeSecret, id string) (intact bool, recovered string, err error) {
	names := func(s *corev1.Secret) bool {
		return (o.Fingerprint == "" || o.StatusID != id) && s.Annotations[v1alpha1.AnnotationExternalID] == id
	}
	s, err := r.read(ctx, o, func(s *corev1.Secret) bool {
		return FingerprintOf(s.Data, o.Keys) == o.Fingerprint || names(s)
	})
	if err != nil || s == nil || !ownsSecret(s, o.Owner, o.Kind) {
		return false, "", err
	}
	fp := FingerprintOf(s.Data, o.Keys)
	if names(s) {
		recovered = fp
	} else if fp != o.Fingerprint {
		return false, "", nil
	}
	return true, recovered, r.reown(ctx, s, o.Owner)
}

// reown points a Secret kept from before a restore at the resource's new UID, before the
// garbage collector removes it for an owner that no longer exists.
func (r SecretReader) reown(ctx context.Context, s *corev1.Secret, owner client.Object) error {
	if metav1.IsControlledBy(s, owner) {
		return nil
	}
	before := s.DeepCopy()
	s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.Controller != nil && *o.Controller
	})
	if err := controllerutil.SetControllerReference(owner, s, r.client.Scheme()); err != nil {
		return fmt.Errorf("owning Secret %s: %w", s.Name, err)
	}
	if err := r.client.Patch(ctx, s, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("owning Secret %s: %w", s.Name, err)
	}
	return nil
}

// Holds reports whether our Secret holds the values of the Dfns object id; recovered is their
// fingerprint when status has another.
func (r SecretReader) Holds(ctx context.Context, o OneTimeSecret, id string) (holds bool, recovered string, err error) {
	s, err := r.read(ctx, o, func(s *corev1.Secret) bool {
		return s.Annotations[v1alpha1.AnnotationExternalID] == id
	})
	if err != nil || s == nil {
		return false, "", err
	}
	ok := ownsSecret(s, o.Owner, o.Kind) && s.Annotations[v1alpha1.AnnotationExternalID] == id && len(s.Data[o.Keys[0]]) > 0
	if !ok {
		return false, "", nil
	}
	// The Secret names this object, so its values are this object's, whatever status says (it
	// may still describe the object this one replaced).
	if fp := FingerprintOf(s.Data, o.Keys); fp != o.Fingerprint {
		recovered = fp
	}
	return true, recovered, r.reown(ctx, s, o.Owner)
}

// read reads the Secret from the cache and, when it is missing there or fails good, past the
// cache; nil when it does not exist.
func (r SecretReader) read(ctx context.Context, o OneTimeSecret, good func(*corev1.Secret) bool) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: o.Owner.GetNamespace(), Name: o.Name}
	var s corev1.Secret
	err := r.client.Get(ctx, key, &s)
	if err == nil && good(&s) {
		return &s, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	err = r.reader.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	return &s, nil
}

// FingerprintOf is the fingerprint of the values of keys in data.
func FingerprintOf(data map[string][]byte, keys []string) string {
	values := make([][]byte, len(keys))
	for i, k := range keys {
		values[i] = data[k]
	}
	return fingerprint(values...)
}
