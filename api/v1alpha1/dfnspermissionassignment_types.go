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

// IdentityRef names an identity resource in the same namespace: a DfnsServiceAccount, a
// DfnsPersonalAccessToken or a DfnsUser.
type IdentityRef struct {
	// kind of the identity resource.
	// +required
	// +kubebuilder:validation:Enum=DfnsServiceAccount;DfnsPersonalAccessToken;DfnsUser
	Kind string `json:"kind"`
	// name of the identity resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DfnsPermissionAssignmentSpec is the desired state of a Dfns permission assignment.
// +kubebuilder:validation:XValidation:rule="has(self.identityRef) != has(self.identityId)",message="set exactly one of identityRef and identityId"
// +kubebuilder:validation:XValidation:rule="has(self.identityRef) == has(oldSelf.identityRef)",message="the identity is immutable: make a new assignment"
type DfnsPermissionAssignmentSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// permissionRef is the permission to assign: a DfnsPermission in this namespace ({name}) or
	// a Dfns permission ID ({id}). Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="permissionRef is immutable: make a new assignment"
	PermissionRef PermissionRef `json:"permissionRef"`

	// identityRef is the identity resource that gets the permission. The assignment follows it
	// when it is replaced (a service account minted anew). Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="identityRef is immutable: make a new assignment"
	IdentityRef *IdentityRef `json:"identityRef,omitempty"`

	// identityId is the Dfns ID of an identity made outside the cluster: a user or service
	// account (us-…) or a personal access token (to-…). Immutable.
	// +optional
	// +kubebuilder:validation:Pattern=`^(us|to)-[a-z0-9]+(-[a-z0-9]+)*$`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="identityId is immutable: make a new assignment"
	IdentityID string `json:"identityId,omitempty"`

	// deletionPolicy says what happens in Dfns when the resource is deleted: Delete revokes the
	// assignment, Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsPermissionAssignmentStatus is the observed state of a Dfns permission assignment.
type DfnsPermissionAssignmentStatus struct {
	// assignmentId is the Dfns assignment ID (as-…).
	// +optional
	AssignmentID string `json:"assignmentId,omitempty"`
	// permissionId is the Dfns permission assigned.
	// +optional
	PermissionID string `json:"permissionId,omitempty"`
	// identityId is the Dfns identity that holds the permission.
	// +optional
	IdentityID string `json:"identityId,omitempty"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnsassign,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.assignmentId`
// +kubebuilder:printcolumn:name="Permission",type=string,JSONPath=`.status.permissionId`,priority=1
// +kubebuilder:printcolumn:name="Identity",type=string,JSONPath=`.status.identityId`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsPermissionAssignment grants a Dfns permission to an identity.
type DfnsPermissionAssignment struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsPermissionAssignmentSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsPermissionAssignmentStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsPermissionAssignmentList is a list of DfnsPermissionAssignment.
type DfnsPermissionAssignmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsPermissionAssignment `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsPermissionAssignment{}, &DfnsPermissionAssignmentList{})
		return nil
	})
}
