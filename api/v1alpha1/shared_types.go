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

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations the operator reads and writes on its resources.
const (
	// AnnotationExternalID records the Dfns ID of the object a resource manages, so that it
	// survives a backup and restore that drops status. Annotations are written by tenants too:
	// the ID is taken as this resource's own only with AnnotationProof beside it, or when status
	// records the same ID (docs/architecture.md, "Ownership"). Set by hand on a new resource it is
	// a claim: it adopts an existing Dfns object, where the kind has no one-time secret and no
	// other resource manages the object.
	AnnotationExternalID = "access.dfns.io/external-id"
	// AnnotationProof is the operator's HMAC over (connection, kind, namespace, name, Dfns ID),
	// keyed by a Secret in the operator's namespace: what makes AnnotationExternalID proof of
	// ownership rather than a claim. It survives a backup and restore; a tenant cannot forge it.
	AnnotationProof = "access.dfns.io/proof"
	// AnnotationCreatePending is set just before a create is sent to Dfns and cleared once the
	// ID is recorded. Its value is "<RFC 3339 time> <proof> <Dfns name>": the name the create
	// uses and the operator's HMAC over it, so that an object whose create answer was lost is
	// recognised as this resource's by its name on the next reconcile. A mark without a valid
	// proof is ignored (and removed).
	AnnotationCreatePending = "access.dfns.io/create-pending"
	// AnnotationRotate: changing it to any new value rotates the resource's token or secret once.
	AnnotationRotate = "access.dfns.io/rotate"
	// AnnotationRotateCredential, on a connection: changing it to any new value replaces the
	// operator's own Key credential once (docs/architecture.md, "Rotating the operator's
	// credential").
	AnnotationRotateCredential = "access.dfns.io/rotate-credential"
	// AnnotationCredentialRotation is written by the operator on a connection's credentials
	// Secret: the rotation under way, or the last one, as JSON. Together with the Secret's
	// DFNS_NEXT_* and DFNS_PREVIOUS_* keys it is what a rotation resumes from.
	AnnotationCredentialRotation = "access.dfns.io/credential-rotation"
	// AnnotationPrevious lists the Dfns objects a rotation superseded, each with the time it is
	// retired and the operator's proof that it was this resource's, as JSON. Written in the
	// same patch that records the new object's ID, so that a crash never forgets one.
	AnnotationPrevious = "access.dfns.io/previous"
	// AnnotationRestartedAt is set on the pod template of a rolloutRestartTargets workload when
	// the Secret it reads was rotated; AnnotationRestartedFor beside it names the Secret's
	// fingerprint, so that a rotation restarts a workload once, also across a crash.
	AnnotationRestartedAt  = "access.dfns.io/restartedAt"
	AnnotationRestartedFor = "access.dfns.io/restartedFor"
)

// Rotation says when a token is renewed and how long the one it replaces stays usable.
type Rotation struct {
	// renewBefore is how long before the token expires a new one is minted. Default: a third of
	// its lifetime. At most two thirds of the lifetime is used.
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
	// gracePeriod is how long the previous identity stays usable after the new Secret is
	// written, so that consumers still running with the old token can finish. Default: 1h; at
	// most 24h is used.
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// DefaultGracePeriod is how long a superseded identity or webhook stays usable by default;
// MaxGracePeriod is the longest a spec may ask for.
const (
	DefaultGracePeriod = time.Hour
	MaxGracePeriod     = 24 * time.Hour
)

// RestartTarget is a workload in the resource's namespace whose pods read its Secret.
type RestartTarget struct {
	// kind is Deployment, StatefulSet or DaemonSet.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	Kind string `json:"kind"`
	// name is the workload's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PreviousObject is a Dfns object a rotation superseded, retired once its time comes.
type PreviousObject struct {
	// id is the Dfns ID.
	ID string `json:"id"`
	// retireAt is when it is deleted (or deactivated).
	RetireAt metav1.Time `json:"retireAt"`
}

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
	// DeletionPolicyDeactivate deactivates the Dfns object and keeps it (service accounts and
	// users).
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

// LabelValue is a Kubernetes label value: at most 63 characters, letters, digits, '-', '_'
// and '.', starting and ending with a letter or digit.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// SecretTemplate holds metadata added to a Secret the operator writes.
// Keys are qualified names (an optional DNS-subdomain prefix and "/", then at most 63
// characters); label values are at most 63 characters of the label alphabet. The API server
// refuses a Secret that breaks these, so they are refused here, at apply time, before anything
// is minted.
type SecretTemplate struct {
	// labels are added to the Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="label keys must be qualified names"
	Labels map[string]LabelValue `json:"labels,omitempty"`
	// annotations are added to the Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="annotation keys must be qualified names"
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
	// renewAt is when a new token is minted.
	// +optional
	RenewAt *metav1.Time `json:"renewAt,omitempty"`
	// secretName is the Secret holding the token and key.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// dfnsName is the identity's name in Dfns: <namespace>/<name>.<suffix>, with a suffix new
	// for every identity minted.
	// +optional
	DfnsName string `json:"dfnsName,omitempty"`
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
	// operation is what the change does: Create, Update or Delete.
	// +optional
	Operation string `json:"operation,omitempty"`
	// requesterId is the Dfns user who asked for the change; the approval is looked up among
	// that user's when Dfns gave no approvalId.
	// +optional
	RequesterID string `json:"requesterId,omitempty"`
	// generation is the resource generation whose spec the change request carries; a rejected
	// change is not sent again until the spec changes past it.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}

// DfnsName is the Dfns name of a resource: <namespace>/<name>, with name the spec's name when
// set, else the resource's. It is injective: namespace names are DNS labels, so the first "/"
// ends the namespace.
func DfnsName(namespace, resourceName, specName string) string {
	if specName != "" {
		return namespace + "/" + specName
	}
	return namespace + "/" + resourceName
}

// ManagedStatus is the part of status every kind shares, written by the reconcile driver.
type ManagedStatus struct {
	// pendingChangeRequest is the change request Dfns holds for approval, if any.
	// +optional
	PendingChangeRequest *ChangeRequestStatus `json:"pendingChangeRequest,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions are Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// previous are the Dfns objects a rotation superseded, until they are retired.
	// +optional
	Previous []PreviousObject `json:"previous,omitempty"`
	// rotateRequest is the value of the access.dfns.io/rotate annotation last acted on.
	// +optional
	RotateRequest string `json:"rotateRequest,omitempty"`
	// restartedFor is the fingerprint of the Secret whose consumers (rolloutRestartTargets)
	// were last restarted.
	// +optional
	RestartedFor string `json:"restartedFor,omitempty"`
}
