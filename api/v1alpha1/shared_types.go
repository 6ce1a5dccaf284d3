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

// Annotations the operator reads and writes on its resources.
const (
	// AnnotationExternalID records the Dfns ID of the object a resource manages. It is the source
	// of truth (status only mirrors it), so it survives a backup and restore that drops status.
	// Setting it on a new resource adopts an existing Dfns object, where the kind has no
	// one-time secret.
	AnnotationExternalID = "access.dfns.io/external-id"
	// AnnotationCreatePending is set (to an RFC 3339 time) just before a create is sent to Dfns
	// and cleared once the ID is recorded, so that an object whose create answer was lost is
	// recognised as ours by its unique name on the next reconcile.
	AnnotationCreatePending = "access.dfns.io/create-pending"
)

// Labels the operator puts on the Secrets it writes.
const (
	// LabelManagedBy is the label key that marks Secrets written by the operator; the manager's
	// cache only sees Secrets that carry it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on the operator's Secrets.
	ManagedByValue = "dfns-operator"
)

// DeletionPolicy says what happens in Dfns when a resource is deleted.
// +kubebuilder:validation:Enum=Delete;Deactivate;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes (or archives) the Dfns object with the resource.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyDeactivate deactivates the Dfns object and keeps it (service accounts only).
	DeletionPolicyDeactivate DeletionPolicy = "Deactivate"
	// DeletionPolicyOrphan leaves the Dfns object as it is.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// PermissionRef names a permission: a DfnsPermission in the same namespace, or a Dfns
// permission ID for one made outside the cluster. Exactly one of the two is set.
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.id)",message="exactly one of name and id must be set"
type PermissionRef struct {
	// name is the name of a DfnsPermission in the same namespace.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// id is the ID of a Dfns permission (pm-…).
	// +optional
	// +kubebuilder:validation:Pattern=`^pm-[a-z0-9]+(-[a-z0-9]+)*$`
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id,omitempty"`
}

// SecretTemplate holds metadata added to a Secret the operator writes.
type SecretTemplate struct {
	// labels are added to the Secret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations are added to the Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// TokenStatus is the status every kind that mints a Dfns token (DfnsServiceAccount,
// DfnsPersonalAccessToken) shares.
type TokenStatus struct {
	// tokenId is the ID of the access token (to-…).
	// +optional
	TokenID string `json:"tokenId,omitempty"`
	// expiresAt is when the token expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// secretName is the Secret holding the token and key.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// secretFingerprint is the SHA-256 of the token and key written to the Secret (a hash, never
	// the values): a Secret whose contents no longer match gets a newly minted token.
	// +optional
	SecretFingerprint string `json:"secretFingerprint,omitempty"`
}

// ChangeRequestStatus records a Dfns change request (an answer 202) that waits for approval.
// The operator never sends the same change again while it is pending.
type ChangeRequestStatus struct {
	// id is the change request ID (cr-…).
	ID string `json:"id"`
	// approvalId is the policy approval ID (ap-…), when Dfns gave one.
	// +optional
	ApprovalID string `json:"approvalId,omitempty"`
	// status is Pending, Applied, Failed or Rejected.
	Status string `json:"status"`
	// generation is the resource generation whose spec the change request carries; a rejected
	// change is not sent again until the spec changes past it.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}
