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

// UserKind is the kind of Dfns user a DfnsUser invites.
// +kubebuilder:validation:Enum=CustomerEmployee
type UserKind string

// UserKindCustomerEmployee is a person of the organisation, invited by e-mail.
const UserKindCustomerEmployee UserKind = "CustomerEmployee"

// DfnsUserSpec is the desired state of a person of the Dfns organisation.
type DfnsUserSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// email is the address Dfns sends the invitation to, and the user's name in Dfns. A user
	// of that e-mail who exists already is adopted where the connection allows adoption.
	// Immutable: Dfns cannot change a user's e-mail.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="email is immutable"
	Email string `json:"email"`

	// kind is the kind of Dfns user: CustomerEmployee, a person of the organisation. Immutable.
	// +optional
	// +kubebuilder:default=CustomerEmployee
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="kind is immutable"
	Kind UserKind `json:"kind,omitempty"`

	// isSSORequired makes the user log in through the organisation's single sign-on.
	// +optional
	IsSSORequired *bool `json:"isSSORequired,omitempty"`

	// active says whether the user may act in Dfns; false deactivates the user, who keeps
	// their history and permission assignments (offboarding).
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// deletionPolicy says what happens in Dfns when the resource is deleted: Deactivate (the
	// default: the user stays, with their history, and cannot act), Delete (Dfns archives the
	// user), or Orphan (the user stays as it is).
	// +optional
	// +kubebuilder:default=Deactivate
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsUserStatus is the observed state of a person of the Dfns organisation.
type DfnsUserStatus struct {
	// userId is the Dfns user ID (us-…).
	// +optional
	UserID string `json:"userId,omitempty"`
	// registered says the user accepted the invitation and registered a credential: only
	// then can they log in.
	// +optional
	Registered *bool `json:"registered,omitempty"`
	// active says whether the user is active in Dfns.
	// +optional
	Active *bool `json:"active,omitempty"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnsuser,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=1
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Registered",type=boolean,JSONPath=`.status.registered`
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.userId`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsUser is a person of the Dfns organisation: a CustomerEmployee user invited by e-mail,
// activated or deactivated as the spec says. It publishes no Secret: a person registers their
// own credentials through the invitation.
type DfnsUser struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsUserSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsUserStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsUserList is a list of DfnsUser.
type DfnsUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsUser `json:"items"`
}

// WantActive reports whether the user should be active in Dfns.
func (u *DfnsUser) WantActive() bool { return u.Spec.Active == nil || *u.Spec.Active }

// WantSSORequired reports whether the user must log in through SSO.
func (u *DfnsUser) WantSSORequired() bool {
	return u.Spec.IsSSORequired != nil && *u.Spec.IsSSORequired
}

// UserKind returns spec.kind, CustomerEmployee when unset.
func (u *DfnsUser) UserKind() UserKind {
	if u.Spec.Kind == "" {
		return UserKindCustomerEmployee
	}
	return u.Spec.Kind
}

// Managed returns the status the driver writes: conditions, observedGeneration, pendingChangeRequest.
func (u *DfnsUser) Managed() *ManagedStatus { return &u.Status.ManagedStatus }

// GetDeletionPolicy returns spec.deletionPolicy, Deactivate when unset: deleting a resource
// must not erase a person's history.
func (u *DfnsUser) GetDeletionPolicy() DeletionPolicy {
	if u.Spec.DeletionPolicy == "" {
		return DeletionPolicyDeactivate
	}
	return u.Spec.DeletionPolicy
}

// SetStatusID mirrors the Dfns user ID into status.
func (u *DfnsUser) SetStatusID(id string) { u.Status.UserID = id }

// GetStatusID returns the Dfns user ID status records.
func (u *DfnsUser) GetStatusID() string { return u.Status.UserID }

// GetStatus returns a pointer to the status, for change detection.
func (u *DfnsUser) GetStatus() any { return &u.Status }

// GetConnectionRef returns the connection the resource uses, defaults filled in.
func (u *DfnsUser) GetConnectionRef() ConnectionReference { return connectionOf(u.Spec.ConnectionRef) }

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsUser{}, &DfnsUserList{})
		return nil
	})
}
