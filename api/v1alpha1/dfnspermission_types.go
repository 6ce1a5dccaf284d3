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

// Operation is a Dfns operation name, from the main list of the newest Dfns API.
// +kubebuilder:validation:Enum=Auth:Logs:Read;Auth:Users:Create;Auth:Users:Read;Auth:Users:Update;Auth:Users:Activate;Auth:Users:Deactivate;Auth:Users:Delete;Auth:ServiceAccounts:Create;Auth:ServiceAccounts:Read;Auth:ServiceAccounts:Update;Auth:ServiceAccounts:Deactivate;Auth:ServiceAccounts:Activate;Auth:ServiceAccounts:Delete;Auth:Pats:Create;Auth:Register:Delegated;Auth:Login:Delegated;Auth:Recover:Delegated;Permissions:Archive;Permissions:Create;Permissions:Read;Permissions:Update;Permissions:Assign;Permissions:Revoke;Permissions:Assignments:Read;Policies:Archive;Policies:Create;Policies:Read;Policies:Update;Policies:Approvals:Read;Policies:Approvals:Approve;Webhooks:Create;Webhooks:Read;Webhooks:Update;Webhooks:Delete;Webhooks:Ping;Webhooks:Events:Read;Events:Read;Orgs:Read;Orgs:Update;Orgs:Settings:Read;Orgs:Settings:Update;Billing:Read;Billing:Write;Analytics:Read;Registry:Addresses:Create;Registry:Addresses:Delete;Registry:Addresses:Read;Registry:Addresses:Update;Registry:ContractSchemas:Create;Registry:ContractSchemas:Delete;Registry:ContractSchemas:Read;Agreements:Acceptance:Create;Agreements:Acceptance:Read;Exchanges:Create;Exchanges:Read;Exchanges:Delete;Exchanges:Deposits:Create;Exchanges:Withdrawals:Create;FeeSponsors:Create;FeeSponsors:Read;FeeSponsors:Update;FeeSponsors:Delete;FeeSponsors:Use;Signers:ListSigners;Stakes:Create;Stakes:Read;Stakes:Update;Swaps:Create;Swaps:Read;Payouts:Create;Payouts:Read;Payouts:Write;Allocations:Create;Allocations:Update;Allocations:Read;Keys:Create;Keys:Delete;Keys:Read;Keys:Update;Keys:Reuse;Keys:Delegate;Keys:Import;Keys:Export;Keys:Derive;Keys:ChildKeys:Create;Keys:Signatures:Create;Keys:Signatures:Read;KeyStores:Read;KeyStores:Fleets:Create;KeyStores:Fleets:Clone;KeyStores:ProofOfControl:Create;KeyStores:OnchainSignatures:Create;Networks:CantonValidators:Create;Networks:CantonValidators:Read;Networks:CantonValidators:Update;Networks:CantonValidators:Delete;Wallets:Create;Wallets:Read;Wallets:Update;Wallets:Tags:Add;Wallets:Tags:Delete;Wallets:Transactions:Create;Wallets:Transactions:Read;Wallets:Transactions:Abort;Wallets:Transfers:Create;Wallets:Transfers:Read;Wallets:Transfers:Abort;Wallets:Offers:Read;Wallets:Offers:Settle;Vaults:Create;Vaults:Read;Vaults:Update;Vaults:Tags:Add;Vaults:Tags:Delete
type Operation string

// DfnsPermissionSpec is the desired state of a Dfns permission.
type DfnsPermissionSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// name is the permission's name within the namespace's naming: its name in Dfns is
	// <namespace>/<name>, unique in the org including archived permissions. Default: the
	// resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	Name string `json:"name,omitempty"`

	// operations are the Dfns operations the permission grants.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=200
	Operations []Operation `json:"operations"`

	// deletionPolicy says what happens in Dfns when the resource is deleted: Delete archives the
	// permission, Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:XValidation:rule="self != 'Deactivate'",message="deletionPolicy of a permission is Delete or Orphan"
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsPermissionStatus is the observed state of a Dfns permission.
type DfnsPermissionStatus struct {
	// permissionId is the Dfns permission ID (pm-…).
	// +optional
	PermissionID string `json:"permissionId,omitempty"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnsperm,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.permissionId`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsPermission is a named set of Dfns operations that can be assigned to identities.
type DfnsPermission struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsPermissionSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsPermissionStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsPermissionList is a list of DfnsPermission.
type DfnsPermissionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsPermission `json:"items"`
}

// DfnsName returns the permission's name in Dfns: <namespace>/<spec.name or metadata.name>.
// A namespace name holds no "/", so two resources never share a name, and no namespace can
// choose a name in another's naming.
func (p *DfnsPermission) DfnsName() string {
	return DfnsName(p.Namespace, p.Name, p.Spec.Name)
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsPermission{}, &DfnsPermissionList{})
		return nil
	})
}
