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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PolicyActivityKind is the kind of activity a Dfns policy governs (docs/dfns-api.md §3.8).
// +kubebuilder:validation:Enum=Wallets:Sign;Wallets:IncomingTransaction;Permissions:Assign;Permissions:Modify;Policies:Modify;Registry:Addresses:Modify;Registry:ContractSchemas:Modify
type PolicyActivityKind string

// PolicyRuleKind is the kind of a policy rule.
// +kubebuilder:validation:Enum=AlwaysTrigger;TransactionRecipientWhitelist;TransactionAmountLimit;TransactionAmountVelocity;TransactionCountVelocity;ChainalysisTransactionPrescreening;ChainalysisTransactionScreening;GlobalLedgerTransactionPrescreening;TravelRuleTransactionPrescreening
type PolicyRuleKind string

// PolicyActionKind is what happens when a policy's rule triggers.
// +kubebuilder:validation:Enum=RequestApproval;Block;NoAction
type PolicyActionKind string

// The CEL rules below encode the table of allowed combinations of docs/dfns-api.md §3.8, so that a
// wrong combination is refused at kubectl apply instead of by Dfns.

// DfnsPolicySpec is the desired state of a Dfns policy.
// +kubebuilder:validation:XValidation:rule="self.activityKind != 'Wallets:Sign' || self.rule.kind in ['AlwaysTrigger','TransactionRecipientWhitelist','TransactionAmountLimit','TransactionAmountVelocity','TransactionCountVelocity','ChainalysisTransactionPrescreening','GlobalLedgerTransactionPrescreening','TravelRuleTransactionPrescreening']",message="rule.kind is not allowed for activityKind Wallets:Sign"
// +kubebuilder:validation:XValidation:rule="self.activityKind != 'Wallets:IncomingTransaction' || (self.rule.kind == 'ChainalysisTransactionScreening' && self.action.kind == 'NoAction')",message="activityKind Wallets:IncomingTransaction takes rule.kind ChainalysisTransactionScreening and action.kind NoAction"
// +kubebuilder:validation:XValidation:rule="self.activityKind.startsWith('Wallets:') || self.rule.kind == 'AlwaysTrigger'",message="this activityKind takes rule.kind AlwaysTrigger"
// +kubebuilder:validation:XValidation:rule="self.activityKind.startsWith('Wallets:') || self.action.kind != 'NoAction'",message="this activityKind takes action.kind RequestApproval or Block"
// +kubebuilder:validation:XValidation:rule="self.activityKind != 'Policies:Modify' || self.action.kind == 'RequestApproval'",message="activityKind Policies:Modify takes action.kind RequestApproval"
// +kubebuilder:validation:XValidation:rule="!has(self.filters) || ((!has(self.filters.walletId) && !has(self.filters.walletTags)) || self.activityKind.startsWith('Wallets:'))",message="filters.walletId and filters.walletTags apply to Wallets activity kinds only"
// +kubebuilder:validation:XValidation:rule="!has(self.filters) || !has(self.filters.permissionId) || self.activityKind.startsWith('Permissions:')",message="filters.permissionId applies to Permissions activity kinds only"
// +kubebuilder:validation:XValidation:rule="!has(self.filters) || !has(self.filters.policyId) || self.activityKind == 'Policies:Modify'",message="filters.policyId applies to activityKind Policies:Modify only"
type DfnsPolicySpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// name is the policy's name within the namespace's naming: its name in Dfns is
	// <namespace>/<name>. Default: the resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	Name string `json:"name,omitempty"`

	// activityKind is the activity the policy governs.
	// +required
	ActivityKind PolicyActivityKind `json:"activityKind"`

	// rule decides when the policy triggers.
	// +required
	Rule PolicyRule `json:"rule"`

	// action is what happens when it triggers.
	// +required
	Action PolicyAction `json:"action"`

	// filters narrow the policy to some wallets, permissions or policies.
	// +optional
	Filters *PolicyFilters `json:"filters,omitempty"`

	// deletionPolicy says what happens in Dfns when the resource is deleted: Delete archives the
	// policy, Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// PolicyRule is a policy's rule: its kind and the configuration that kind takes.
// +kubebuilder:validation:XValidation:rule="self.kind != 'AlwaysTrigger' || !has(self.configuration)",message="rule kind AlwaysTrigger takes no configuration"
// +kubebuilder:validation:XValidation:rule="self.kind == 'AlwaysTrigger' || has(self.configuration)",message="this rule kind needs a configuration"
// +kubebuilder:validation:XValidation:rule="!(self.kind in ['TransactionAmountLimit','TransactionAmountVelocity']) || (has(self.configuration) && has(self.configuration.limit) && has(self.configuration.currency))",message="amount rules need configuration.limit and configuration.currency"
// +kubebuilder:validation:XValidation:rule="!(self.kind in ['TransactionAmountVelocity','TransactionCountVelocity']) || (has(self.configuration) && has(self.configuration.limit) && has(self.configuration.timeframe))",message="velocity rules need configuration.limit and configuration.timeframe"
// +kubebuilder:validation:XValidation:rule="!(self.kind in ['ChainalysisTransactionPrescreening','ChainalysisTransactionScreening']) || (has(self.configuration) && has(self.configuration.alerts) && has(self.configuration.exposures) && has(self.configuration.fallbackBehaviours) && ['skipUnscreenableTransaction','skipUnsupportedNetwork','skipUnsupportedAsset','skipChainalysisFailure'].all(k, k in self.configuration.fallbackBehaviours))",message="Chainalysis rules need configuration.alerts, configuration.exposures and configuration.fallbackBehaviours with skipUnscreenableTransaction, skipUnsupportedNetwork, skipUnsupportedAsset and skipChainalysisFailure"
// +kubebuilder:validation:XValidation:rule="self.kind != 'GlobalLedgerTransactionPrescreening' || (has(self.configuration) && has(self.configuration.riskScoreThreshold) && has(self.configuration.fallbackBehaviours))",message="GlobalLedgerTransactionPrescreening needs configuration.riskScoreThreshold and configuration.fallbackBehaviours"
// +kubebuilder:validation:XValidation:rule="self.kind != 'TravelRuleTransactionPrescreening' || (has(self.configuration) && has(self.configuration.vendor) && has(self.configuration.autoTriggerTimeoutSeconds))",message="TravelRuleTransactionPrescreening needs configuration.vendor and configuration.autoTriggerTimeoutSeconds"
type PolicyRule struct {
	// kind of the rule.
	// +required
	Kind PolicyRuleKind `json:"kind"`
	// configuration of the rule; AlwaysTrigger takes none.
	// +optional
	Configuration *PolicyRuleConfiguration `json:"configuration,omitempty"`
}

// PolicyRuleConfiguration holds the fields of every rule kind's configuration; each kind uses
// its own (see the rule's validations and docs/dfns-api.md §3.8).
type PolicyRuleConfiguration struct {
	// limit is the amount (amount rules, in currency) or the count (TransactionCountVelocity).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Limit *int64 `json:"limit,omitempty"`
	// currency of an amount limit.
	// +optional
	// The current Dfns SDK allows USD only (docs/dfns-compatibility.md).
	// +kubebuilder:validation:Enum=USD
	Currency string `json:"currency,omitempty"`
	// timeframe of a velocity rule, in minutes.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=43200
	Timeframe *int32 `json:"timeframe,omitempty"`
	// addresses is, for TransactionRecipientWhitelist, the list of allowed recipient addresses
	// (empty: always triggers); for ChainalysisTransactionPrescreening, {categoryIds: [...]}.
	// The two shapes share the key, so the schema leaves it open and the operator checks it.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Addresses *apiextensionsv1.JSON `json:"addresses,omitempty"`
	// alerts of a Chainalysis rule.
	// +optional
	Alerts *ChainalysisAlerts `json:"alerts,omitempty"`
	// exposures of a Chainalysis rule.
	// +optional
	Exposures *ChainalysisExposures `json:"exposures,omitempty"`
	// userIdTemplate of a Chainalysis rule.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UserIDTemplate string `json:"userIdTemplate,omitempty"`
	// fallbackBehaviours of a screening rule: skipUnscreenableTransaction, skipUnsupportedNetwork,
	// skipUnsupportedAsset, skipChainalysisFailure, skipGlobalLedgerFailure.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	FallbackBehaviours map[string]bool `json:"fallbackBehaviours,omitempty"`
	// riskScoreThreshold of GlobalLedgerTransactionPrescreening.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RiskScoreThreshold *int32 `json:"riskScoreThreshold,omitempty"`
	// vendor of TravelRuleTransactionPrescreening.
	// +optional
	// +kubebuilder:validation:Enum=Notabene
	Vendor string `json:"vendor,omitempty"`
	// autoTriggerTimeoutSeconds of TravelRuleTransactionPrescreening.
	// +optional
	// +kubebuilder:validation:Minimum=0
	AutoTriggerTimeoutSeconds *int32 `json:"autoTriggerTimeoutSeconds,omitempty"`
	// autoClearAfterDeliveredTimeoutSeconds of TravelRuleTransactionPrescreening.
	// +optional
	// +kubebuilder:validation:Minimum=0
	AutoClearAfterDeliveredTimeoutSeconds *int32 `json:"autoClearAfterDeliveredTimeoutSeconds,omitempty"`
}

// ChainalysisAlerts selects the Chainalysis alerts that trigger a rule.
type ChainalysisAlerts struct {
	// alertLevel is the lowest level that triggers.
	// +required
	// +kubebuilder:validation:Enum=LOW;MEDIUM;HIGH;SEVERE
	AlertLevel string `json:"alertLevel"`
	// categoryIds are Chainalysis category IDs; Dfns requires the list, which may be empty.
	// +required
	// +kubebuilder:validation:MaxItems=100
	CategoryIDs []int32 `json:"categoryIds"`
}

// ChainalysisExposures selects the exposures that trigger a rule.
type ChainalysisExposures struct {
	// direct exposures.
	// +required
	Direct ChainalysisCategories `json:"direct"`
}

// ChainalysisCategories lists Chainalysis category IDs.
type ChainalysisCategories struct {
	// categoryIds are Chainalysis category IDs.
	// +required
	// +kubebuilder:validation:MaxItems=100
	CategoryIDs []int32 `json:"categoryIds"`
}

// PolicyAction is what a triggered policy does.
// +kubebuilder:validation:XValidation:rule="self.kind == 'RequestApproval' ? has(self.approvalGroups) : (!has(self.approvalGroups) && !has(self.autoRejectTimeout))",message="approvalGroups (and autoRejectTimeout) go with action.kind RequestApproval only, which needs at least one group"
type PolicyAction struct {
	// kind of the action.
	// +required
	Kind PolicyActionKind `json:"kind"`
	// approvalGroups must each approve (RequestApproval).
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	ApprovalGroups []ApprovalGroup `json:"approvalGroups,omitempty"`
	// autoRejectTimeout rejects an approval not decided within this many minutes; unset, it
	// never expires.
	// +optional
	// +kubebuilder:validation:Minimum=1
	AutoRejectTimeout *int32 `json:"autoRejectTimeout,omitempty"`
}

// ApprovalGroup is a group of approvers of which a quorum must approve.
type ApprovalGroup struct {
	// name of the group.
	// +optional
	// +kubebuilder:validation:MaxLength=100
	Name string `json:"name,omitempty"`
	// quorum is how many of the group must approve.
	// +required
	// +kubebuilder:validation:Minimum=1
	Quorum int32 `json:"quorum"`
	// approvers are the users who may approve; empty means anyone in the organisation.
	// +optional
	Approvers Approvers `json:"approvers,omitzero"`
	// initiatorCanApprove lets the initiator approve their own request.
	// +optional
	InitiatorCanApprove *bool `json:"initiatorCanApprove,omitempty"`
	// serviceAccountsCanApprove lets service accounts approve.
	// +optional
	ServiceAccountsCanApprove *bool `json:"serviceAccountsCanApprove,omitempty"`
}

// Approvers selects the approvers of a group.
type Approvers struct {
	// userId lists the Dfns user IDs that may approve.
	// +optional
	UserID *IDFilter `json:"userId,omitempty"`
	// userRefs names DfnsUsers of this namespace that may approve: their Dfns user IDs join
	// userId.in. The policy waits until each is Ready.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	UserRefs []UserRef `json:"userRefs,omitempty"`
}

// UserRef names a DfnsUser in the same namespace.
type UserRef struct {
	// name of the DfnsUser.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// IDFilter is a list of Dfns IDs: {in: [...]}.
type IDFilter struct {
	// in are the IDs.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=64
	In []string `json:"in"`
}

// TagFilter selects wallets by tags.
// +kubebuilder:validation:XValidation:rule="has(self.hasAny) || has(self.hasAll)",message="set hasAny or hasAll"
type TagFilter struct {
	// hasAny matches wallets with at least one of the tags.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=100
	HasAny []string `json:"hasAny,omitempty"`
	// hasAll matches wallets with every one of the tags.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=100
	HasAll []string `json:"hasAll,omitempty"`
}

// PolicyFilters narrow a policy; which apply depends on the activity kind.
type PolicyFilters struct {
	// walletId selects wallets by ID (Wallets activity kinds).
	// +optional
	WalletID *IDFilter `json:"walletId,omitempty"`
	// walletTags selects wallets by tags (Wallets activity kinds).
	// +optional
	WalletTags *TagFilter `json:"walletTags,omitempty"`
	// permissionId selects permissions (Permissions activity kinds).
	// +optional
	PermissionID *IDFilter `json:"permissionId,omitempty"`
	// policyId selects policies (Policies:Modify).
	// +optional
	PolicyID *IDFilter `json:"policyId,omitempty"`
}

// DfnsPolicyStatus is the observed state of a Dfns policy.
type DfnsPolicyStatus struct {
	// policyId is the Dfns policy ID (plc-…).
	// +optional
	PolicyID string `json:"policyId,omitempty"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnspol,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.policyId`
// +kubebuilder:printcolumn:name="Activity",type=string,JSONPath=`.spec.activityKind`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsPolicy is a Dfns policy: a rule on an activity kind and what happens when it triggers
// (request approval, block, or nothing).
type DfnsPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsPolicySpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsPolicyStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsPolicyList is a list of DfnsPolicy.
type DfnsPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsPolicy `json:"items"`
}

// DfnsName returns the policy's name in Dfns: <namespace>/<spec.name or metadata.name>.
// A namespace name holds no "/", so two resources never share a name, and no namespace can
// choose a name in another's naming.
func (p *DfnsPolicy) DfnsName() string {
	return DfnsName(p.Namespace, p.Name, p.Spec.Name)
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsPolicy{}, &DfnsPolicyList{})
		return nil
	})
}
