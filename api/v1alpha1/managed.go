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

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The methods below let the operator's generic reconcile driver read and write the parts of
// status every kind shares.

// StatusConditions returns a pointer to the resource's conditions.
func (sa *DfnsServiceAccount) StatusConditions() *[]metav1.Condition { return &sa.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (sa *DfnsServiceAccount) SetObservedGeneration(g int64) { sa.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (sa *DfnsServiceAccount) GetDeletionPolicy() DeletionPolicy {
	if sa.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return sa.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns ID into status.
func (sa *DfnsServiceAccount) SetStatusID(id string) { sa.Status.ServiceAccountID = id }

// GetStatus returns a pointer to the status, for change detection.
func (sa *DfnsServiceAccount) GetStatus() any { return &sa.Status }

// StatusConditions returns a pointer to the resource's conditions.
func (p *DfnsPermission) StatusConditions() *[]metav1.Condition { return &p.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (p *DfnsPermission) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPermission) GetDeletionPolicy() DeletionPolicy {
	if p.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return p.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns ID into status.
func (p *DfnsPermission) SetStatusID(id string) { p.Status.PermissionID = id }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPermission) GetStatus() any { return &p.Status }

// SetPendingChangeRequest records (or, with nil, clears) the change request Dfns holds for approval.
func (p *DfnsPermission) SetPendingChangeRequest(cr *ChangeRequestStatus) {
	p.Status.PendingChangeRequest = cr
}

// StatusConditions returns the conditions for the reconcile driver.
func (a *DfnsPermissionAssignment) StatusConditions() *[]metav1.Condition {
	return &a.Status.Conditions
}

// SetObservedGeneration records the generation the status describes.
func (a *DfnsPermissionAssignment) SetObservedGeneration(g int64) { a.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (a *DfnsPermissionAssignment) GetDeletionPolicy() DeletionPolicy {
	if a.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return a.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns assignment ID into status.
func (a *DfnsPermissionAssignment) SetStatusID(id string) { a.Status.AssignmentID = id }

// GetStatus returns the status for change detection.
func (a *DfnsPermissionAssignment) GetStatus() any { return &a.Status }

// SetPendingChangeRequest records (or clears) the change request Dfns holds for approval.
func (a *DfnsPermissionAssignment) SetPendingChangeRequest(cr *ChangeRequestStatus) {
	a.Status.PendingChangeRequest = cr
}

// StatusConditions returns a pointer to the resource's conditions.
func (p *DfnsPersonalAccessToken) StatusConditions() *[]metav1.Condition {
	return &p.Status.Conditions
}

// SetObservedGeneration records the generation the status describes.
func (p *DfnsPersonalAccessToken) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPersonalAccessToken) GetDeletionPolicy() DeletionPolicy {
	if p.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return p.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns token ID into status.
func (p *DfnsPersonalAccessToken) SetStatusID(id string) { p.Status.TokenID = id }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPersonalAccessToken) GetStatus() any { return &p.Status }

// StatusConditions returns a pointer to the resource's conditions.
func (w *DfnsWebhook) StatusConditions() *[]metav1.Condition { return &w.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (w *DfnsWebhook) SetObservedGeneration(g int64) { w.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (w *DfnsWebhook) GetDeletionPolicy() DeletionPolicy {
	if w.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return w.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns webhook ID into status.
func (w *DfnsWebhook) SetStatusID(id string) { w.Status.WebhookID = id }

// GetStatus returns a pointer to the status, for change detection.
func (w *DfnsWebhook) GetStatus() any { return &w.Status }

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

// StatusConditions returns a pointer to the resource's conditions.
func (p *DfnsPolicy) StatusConditions() *[]metav1.Condition { return &p.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (p *DfnsPolicy) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }

// GetDeletionPolicy returns spec.deletionPolicy, Delete when unset.
func (p *DfnsPolicy) GetDeletionPolicy() DeletionPolicy {
	if p.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return p.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns policy ID into status.
func (p *DfnsPolicy) SetStatusID(id string) { p.Status.PolicyID = id }

// GetStatus returns a pointer to the status, for change detection.
func (p *DfnsPolicy) GetStatus() any { return &p.Status }

// SetPendingChangeRequest records (or, with nil, clears) the change request Dfns holds for approval.
func (p *DfnsPolicy) SetPendingChangeRequest(cr *ChangeRequestStatus) {
	p.Status.PendingChangeRequest = cr
}

// GetPendingChangeRequest returns the change request Dfns holds for approval, if any.
func (p *DfnsPolicy) GetPendingChangeRequest() *ChangeRequestStatus {
	return p.Status.PendingChangeRequest
}

// GetPendingChangeRequest returns the change request Dfns holds for approval, if any.
func (p *DfnsPermission) GetPendingChangeRequest() *ChangeRequestStatus {
	return p.Status.PendingChangeRequest
}

// GetStatusID returns the Dfns ID status records.
func (sa *DfnsServiceAccount) GetStatusID() string { return sa.Status.ServiceAccountID }

// GetStatusID returns the Dfns ID status records.
func (p *DfnsPermission) GetStatusID() string { return p.Status.PermissionID }

// GetStatusID returns the Dfns ID status records.
func (a *DfnsPermissionAssignment) GetStatusID() string { return a.Status.AssignmentID }

// GetStatusID returns the Dfns ID status records.
func (p *DfnsPersonalAccessToken) GetStatusID() string { return p.Status.TokenID }

// GetStatusID returns the Dfns ID status records.
func (w *DfnsWebhook) GetStatusID() string { return w.Status.WebhookID }

// GetStatusID returns the Dfns ID status records.
func (p *DfnsPolicy) GetStatusID() string { return p.Status.PolicyID }
