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

package v1alpha1

import "time"

// The methods below let the operator's reconcile driver read and write what every kind shares:
// the managed status, the deletion policy and the Dfns ID.

// deletionPolicyOrDefault is the deletion policy, Delete when unset.
func deletionPolicyOrDefault(p DeletionPolicy) DeletionPolicy {
	if p == "" {
		return DeletionPolicyDelete
	}
	return p
}

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (sa *DfnsServiceAccount) Managed() *ManagedStatus { return &sa.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (sa *DfnsServiceAccount) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(sa.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns Dfns user ID into status.
func (sa *DfnsServiceAccount) SetStatusID(id string) { sa.Status.ServiceAccountID = id }

// GetStatusID returns the Dfns Dfns user ID status records.
func (sa *DfnsServiceAccount) GetStatusID() string { return sa.Status.ServiceAccountID }

// GetStatus returns a pointer to the status, for change detection.
func (sa *DfnsServiceAccount) GetStatus() any { return &sa.Status }

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (p *DfnsPermission) Managed() *ManagedStatus { return &p.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPermission) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(p.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns permission ID into status.
func (p *DfnsPermission) SetStatusID(id string) { p.Status.PermissionID = id }

// GetStatusID returns the Dfns permission ID status records.
func (p *DfnsPermission) GetStatusID() string { return p.Status.PermissionID }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPermission) GetStatus() any { return &p.Status }

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (a *DfnsPermissionAssignment) Managed() *ManagedStatus { return &a.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (a *DfnsPermissionAssignment) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(a.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns assignment ID into status.
func (a *DfnsPermissionAssignment) SetStatusID(id string) { a.Status.AssignmentID = id }

// GetStatusID returns the Dfns assignment ID status records.
func (a *DfnsPermissionAssignment) GetStatusID() string { return a.Status.AssignmentID }

// GetStatus returns a pointer to the status, for change detection.
func (a *DfnsPermissionAssignment) GetStatus() any { return &a.Status }

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (p *DfnsPersonalAccessToken) Managed() *ManagedStatus { return &p.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPersonalAccessToken) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(p.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns token ID into status.
func (p *DfnsPersonalAccessToken) SetStatusID(id string) { p.Status.TokenID = id }

// GetStatusID returns the Dfns token ID status records.
func (p *DfnsPersonalAccessToken) GetStatusID() string { return p.Status.TokenID }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPersonalAccessToken) GetStatus() any { return &p.Status }

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (w *DfnsWebhook) Managed() *ManagedStatus { return &w.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (w *DfnsWebhook) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(w.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns webhook ID into status.
func (w *DfnsWebhook) SetStatusID(id string) { w.Status.WebhookID = id }

// GetStatusID returns the Dfns webhook ID status records.
func (w *DfnsWebhook) GetStatusID() string { return w.Status.WebhookID }

// GetStatus returns a pointer to the status, for change detection.
func (w *DfnsWebhook) GetStatus() any { return &w.Status }

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (p *DfnsPolicy) Managed() *ManagedStatus { return &p.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPolicy) GetDeletionPolicy() DeletionPolicy {
	return deletionPolicyOrDefault(p.Spec.DeletionPolicy)
}

// SetStatusID mirrors the Dfns policy ID into status.
func (p *DfnsPolicy) SetStatusID(id string) { p.Status.PolicyID = id }

// GetStatusID returns the Dfns policy ID status records.
func (p *DfnsPolicy) GetStatusID() string { return p.Status.PolicyID }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPolicy) GetStatus() any { return &p.Status }

// The methods below let the operator mint service accounts and personal access tokens with one
// piece of code.

// GetTokenStatus returns a pointer to the token part of the status.
func (sa *DfnsServiceAccount) GetTokenStatus() *TokenStatus { return &sa.Status.TokenStatus }

// GetPermissionRef returns spec.permissionRef.
func (sa *DfnsServiceAccount) GetPermissionRef() PermissionRef { return sa.Spec.PermissionRef }

// GetKeyAlgorithm returns spec.keyAlgorithm, ECDSA-P256 when unset.
func (sa *DfnsServiceAccount) GetKeyAlgorithm() KeyAlgorithm {
	return keyAlgorithmOrDefault(sa.Spec.KeyAlgorithm)
}

// GetSecretTemplate returns spec.secretTemplate.
func (sa *DfnsServiceAccount) GetSecretTemplate() SecretTemplate { return sa.Spec.SecretTemplate }

// GetTokenStatus returns a pointer to the token part of the status.
func (p *DfnsPersonalAccessToken) GetTokenStatus() *TokenStatus { return &p.Status.TokenStatus }

// GetPermissionRef returns spec.permissionRef.
func (p *DfnsPersonalAccessToken) GetPermissionRef() PermissionRef { return p.Spec.PermissionRef }

// GetKeyAlgorithm returns spec.keyAlgorithm, ECDSA-P256 when unset.
func (p *DfnsPersonalAccessToken) GetKeyAlgorithm() KeyAlgorithm {
	return keyAlgorithmOrDefault(p.Spec.KeyAlgorithm)
}

// GetSecretTemplate returns spec.secretTemplate.
func (p *DfnsPersonalAccessToken) GetSecretTemplate() SecretTemplate { return p.Spec.SecretTemplate }

// keyAlgorithmOrDefault is the key algorithm, ECDSA-P256 when unset.
func keyAlgorithmOrDefault(a KeyAlgorithm) KeyAlgorithm {
	if a == "" {
		return "ECDSA-P256"
	}
	return a
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (sa *DfnsServiceAccount) GetConnectionRef() ConnectionReference {
	return connectionOf(sa.Spec.ConnectionRef)
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (p *DfnsPermission) GetConnectionRef() ConnectionReference {
	return connectionOf(p.Spec.ConnectionRef)
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (a *DfnsPermissionAssignment) GetConnectionRef() ConnectionReference {
	return connectionOf(a.Spec.ConnectionRef)
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (p *DfnsPersonalAccessToken) GetConnectionRef() ConnectionReference {
	return connectionOf(p.Spec.ConnectionRef)
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (w *DfnsWebhook) GetConnectionRef() ConnectionReference {
	return connectionOf(w.Spec.ConnectionRef)
}

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (p *DfnsPolicy) GetConnectionRef() ConnectionReference {
	return connectionOf(p.Spec.ConnectionRef)
}

// GetGracePeriod is how long a superseded Dfns object stays usable after a rotation.
func (sa *DfnsServiceAccount) GetGracePeriod() time.Duration { return gracePeriod(sa.Spec.Rotation) }

// GetRolloutRestartTargets are the workloads restarted when the Secret gets a new value.
func (sa *DfnsServiceAccount) GetRolloutRestartTargets() []RestartTarget {
	return sa.Spec.RolloutRestartTargets
}

// GetGracePeriod is how long a superseded Dfns object stays usable after a rotation.
func (p *DfnsPersonalAccessToken) GetGracePeriod() time.Duration { return gracePeriod(p.Spec.Rotation) }

// GetRolloutRestartTargets are the workloads restarted when the Secret gets a new value.
func (p *DfnsPersonalAccessToken) GetRolloutRestartTargets() []RestartTarget {
	return p.Spec.RolloutRestartTargets
}

// GetGracePeriod is how long a superseded Dfns object stays usable after a rotation.
func (w *DfnsWebhook) GetGracePeriod() time.Duration { return gracePeriod(w.Spec.Rotation) }

// GetRolloutRestartTargets are the workloads restarted when the Secret gets a new value.
func (w *DfnsWebhook) GetRolloutRestartTargets() []RestartTarget { return w.Spec.RolloutRestartTargets }

// gracePeriod is the rotation's grace period, or the default.
func gracePeriod(r *Rotation) time.Duration {
	if r != nil && r.GracePeriod != nil && r.GracePeriod.Duration > 0 {
		return min(r.GracePeriod.Duration, MaxGracePeriod)
	}
	return DefaultGracePeriod
}

// GetRotation returns spec.rotation (nil: the defaults).
func (sa *DfnsServiceAccount) GetRotation() *Rotation { return sa.Spec.Rotation }

// GetRotation returns spec.rotation (nil: the defaults).
func (p *DfnsPersonalAccessToken) GetRotation() *Rotation { return p.Spec.Rotation }

// SecretFingerprint is the fingerprint of the token and key in the Secret.
func (sa *DfnsServiceAccount) SecretFingerprint() string { return sa.Status.SecretFingerprint }

// SecretFingerprint is the fingerprint of the token and key in the Secret.
func (p *DfnsPersonalAccessToken) SecretFingerprint() string { return p.Status.SecretFingerprint }

// SecretFingerprint is the fingerprint of the signing secret in the Secret.
func (w *DfnsWebhook) SecretFingerprint() string { return w.Status.SecretFingerprint }
