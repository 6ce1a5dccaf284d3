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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// KeyAlgorithm is the type of the key pair the operator generates for a Dfns identity.
// +kubebuilder:validation:Enum=ECDSA-P256;Ed25519;RSA-2048
type KeyAlgorithm string

// DfnsServiceAccountSpec is the desired state of a Dfns service account.
// +kubebuilder:validation:XValidation:rule="has(self.name) == has(oldSelf.name)",message="name is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.daysValid) == has(oldSelf.daysValid)",message="daysValid is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName)",message="secretName is immutable"
type DfnsServiceAccountSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// name is the service account's name within the namespace's naming: its name in Dfns is
	// <namespace>/<name>.<suffix>, with a suffix new for every identity minted. Default: the
	// resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="name is immutable"
	Name string `json:"name,omitempty"`

	// permissionRef is the permission the service account is created with. It is required:
	// Dfns may give a service account created without one the permissions of its creator.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="permissionRef is immutable"
	PermissionRef PermissionRef `json:"permissionRef"`

	// daysValid is the lifetime of the service account's token in days.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=730
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="daysValid is immutable"
	DaysValid *int32 `json:"daysValid,omitempty"`

	// active says whether the service account is active in Dfns; false deactivates it.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// keyAlgorithm is the type of the key pair the operator generates for the service account.
	// +optional
	// +kubebuilder:default=ECDSA-P256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="keyAlgorithm is immutable"
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm,omitempty"`

	// secretName is the Secret that receives the token and key. Default: the resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="secretName is immutable"
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate holds labels and annotations added to the Secret.
	// +optional
	SecretTemplate SecretTemplate `json:"secretTemplate,omitempty,omitzero"`

	// rotation says when the token is renewed and how long the previous identity stays usable.
	// +optional
	Rotation *Rotation `json:"rotation,omitempty"`

	// rolloutRestartTargets are workloads in this namespace whose pods are restarted (through
	// the access.dfns.io/restartedAt annotation of their pod template) once each time the
	// Secret gets a new token: pods that read it through envFrom see a new value only then.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RestartTarget `json:"rolloutRestartTargets,omitempty"`

	// deletionPolicy says what happens in Dfns when the resource is deleted.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsServiceAccountStatus is the observed state of a Dfns service account.
type DfnsServiceAccountStatus struct {
	// serviceAccountId is the Dfns user ID of the service account (us-…).
	// +optional
	ServiceAccountID string `json:"serviceAccountId,omitempty"`
	// TokenStatus describes the token and the Secret holding it.
	TokenStatus `json:",inline"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnssa,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.serviceAccountId`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// Expires is a plain string column: kubectl renders a future date column as "<invalid>".
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renews",type=string,JSONPath=`.status.renewAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsServiceAccount is a Dfns service account whose token and generated key are written to a
// Secret in the resource's namespace.
type DfnsServiceAccount struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsServiceAccountSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsServiceAccountStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsServiceAccountList is a list of DfnsServiceAccount.
type DfnsServiceAccountList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsServiceAccount `json:"items"`
}

// DfnsName returns the base of the service account's name in Dfns:
// <namespace>/<spec.name or metadata.name>. Each minted identity adds a suffix of its own.
func (sa *DfnsServiceAccount) DfnsName() string {
	return DfnsName(sa.Namespace, sa.Name, sa.Spec.Name)
}

// SecretName returns the name of the Secret the token and key are written to.
func (sa *DfnsServiceAccount) SecretName() string {
	if sa.Spec.SecretName != "" {
		return sa.Spec.SecretName
	}
	return sa.Name
}

// WantActive reports whether the service account should be active in Dfns.
func (sa *DfnsServiceAccount) WantActive() bool {
	return sa.Spec.Active == nil || *sa.Spec.Active
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsServiceAccount{}, &DfnsServiceAccountList{})
		return nil
	})
}
