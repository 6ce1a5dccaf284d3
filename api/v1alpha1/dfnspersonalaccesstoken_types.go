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

// DfnsPersonalAccessTokenSpec is the desired state of a personal access token of the operator's
// own Dfns user. Dfns lets only users create PATs: the operator must run in login mode.
// +kubebuilder:validation:XValidation:rule="!(has(self.daysValid) && has(self.secondsValid))",message="set at most one of daysValid and secondsValid"
// +kubebuilder:validation:XValidation:rule="has(self.name) == has(oldSelf.name)",message="name is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.daysValid) == has(oldSelf.daysValid)",message="daysValid is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.secondsValid) == has(oldSelf.secondsValid)",message="secondsValid is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName)",message="secretName is immutable"
type DfnsPersonalAccessTokenSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// name is the token's name within the namespace's naming: its name in Dfns is
	// <namespace>/<name>.<suffix>, with a suffix new for every token minted. Default: the
	// resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="name is immutable"
	Name string `json:"name,omitempty"`

	// permissionRef is the permission the token is created with. It is required: a token created
	// without one may hold the permissions of the operator's own user.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="permissionRef is immutable"
	PermissionRef PermissionRef `json:"permissionRef"`

	// daysValid is the token's lifetime in days.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=730
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="daysValid is immutable"
	DaysValid *int32 `json:"daysValid,omitempty"`

	// secondsValid is the token's lifetime in seconds (instead of daysValid).
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=63072000
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="secondsValid is immutable"
	SecondsValid *int32 `json:"secondsValid,omitempty"`

	// active says whether the token is active in Dfns; false deactivates it.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// keyAlgorithm is the type of the key pair the operator generates for the token.
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

	// deletionPolicy says what happens in Dfns when the resource is deleted: Delete deletes the
	// token, Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsPersonalAccessTokenStatus is the observed state of a personal access token.
type DfnsPersonalAccessTokenStatus struct {
	// TokenStatus describes the token and the Secret holding it.
	TokenStatus `json:",inline"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnspat,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.tokenId`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renews",type=string,JSONPath=`.status.renewAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsPersonalAccessToken is a personal access token of the operator's Dfns user whose token
// and generated key are written to a Secret in the resource's namespace.
type DfnsPersonalAccessToken struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsPersonalAccessTokenSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsPersonalAccessTokenStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsPersonalAccessTokenList is a list of DfnsPersonalAccessToken.
type DfnsPersonalAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsPersonalAccessToken `json:"items"`
}

// DfnsName returns the base of the token's name in Dfns: <namespace>/<spec.name or
// metadata.name>. Each minted token adds a suffix of its own.
// A namespace name holds no "/", so two resources never share a name, and no namespace can
// choose a name in another's naming.
func (p *DfnsPersonalAccessToken) DfnsName() string {
	return DfnsName(p.Namespace, p.Name, p.Spec.Name)
}

// SecretName returns the name of the Secret the token and key are written to.
func (p *DfnsPersonalAccessToken) SecretName() string {
	if p.Spec.SecretName != "" {
		return p.Spec.SecretName
	}
	return p.Name
}

// WantActive reports whether the token should be active in Dfns.
func (p *DfnsPersonalAccessToken) WantActive() bool {
	return p.Spec.Active == nil || *p.Spec.Active
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsPersonalAccessToken{}, &DfnsPersonalAccessTokenList{})
		return nil
	})
}
