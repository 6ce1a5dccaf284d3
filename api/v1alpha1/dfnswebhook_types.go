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

// WebhookEvent is a Dfns webhook event kind, or "*" for all. The list is that of @dfns/sdk
// 0.8.21 (32 kinds), the newest SDK: the Go SDK's five more (vault.* and
// wallet.blockchain_event.transfer.included) may be refused by Dfns (docs/dfns-compatibility.md).
// +kubebuilder:validation:Enum="*";key.created;key.deleted;key.delegated;key.exported;payout.action.required;policy.approval.pending;policy.approval.resolved;policy.triggered;wallet.activated;wallet.blockchainevent.detected;wallet.created;wallet.delegated;wallet.exported;wallet.offer.accepted;wallet.offer.received;wallet.offer.rejected;wallet.offer.withdrawn;wallet.signature.failed;wallet.signature.rejected;wallet.signature.requested;wallet.signature.signed;wallet.tags.modified;wallet.transaction.broadcasted;wallet.transaction.confirmed;wallet.transaction.failed;wallet.transaction.rejected;wallet.transaction.requested;wallet.transfer.broadcasted;wallet.transfer.confirmed;wallet.transfer.failed;wallet.transfer.rejected;wallet.transfer.requested
type WebhookEvent string

// DfnsWebhookSpec is the desired state of a Dfns webhook.
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName)",message="secretName is immutable"
type DfnsWebhookSpec struct {
	// connectionRef names the connection the resource reaches Dfns through: a
	// ClusterDfnsConnection, or a DfnsConnection in the same namespace. Default: the
	// ClusterDfnsConnection "default".
	// +optional
	// +kubebuilder:default={kind: ClusterDfnsConnection, name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionRef is immutable"
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// url receives the events: an absolute http or https URL.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^/\s]+(/\S*)?$`
	URL string `json:"url"`

	// events are the event kinds delivered, or ["*"] for all.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=40
	Events []WebhookEvent `json:"events"`

	// description is the webhook's description in Dfns. The operator appends a marker naming the
	// resource, so that a webhook whose create answer was lost is recognised as its own; a
	// description may therefore not hold a marker of its own.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:XValidation:rule="!self.contains('[dfns-operator')",message="description may not contain the operator's marker \"[dfns-operator\""
	Description string `json:"description,omitempty"`

	// enabled says whether Dfns delivers events to the webhook.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// secretName is the Secret that receives DFNS_WEBHOOK_ID and DFNS_WEBHOOK_SECRET.
	// Default: the resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="secretName is immutable"
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate holds labels and annotations added to the Secret.
	// +optional
	SecretTemplate SecretTemplate `json:"secretTemplate,omitempty,omitzero"`

	// rotation.gracePeriod is how long the previous webhook keeps receiving events after a
	// rotation (access.dfns.io/rotate); renewBefore does not apply, a webhook secret never expires.
	// +optional
	Rotation *Rotation `json:"rotation,omitempty"`

	// rolloutRestartTargets are workloads in this namespace whose pods are restarted (through
	// the access.dfns.io/restartedAt annotation of their pod template) once each time the
	// Secret gets a new signing secret: pods that read it through envFrom see a new value only then.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RestartTarget `json:"rolloutRestartTargets,omitempty"`

	// deletionPolicy says what happens in Dfns when the resource is deleted: Delete deletes the
	// webhook, Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// DfnsWebhookStatus is the observed state of a Dfns webhook.
type DfnsWebhookStatus struct {
	// webhookId is the Dfns webhook ID (wh-…).
	// +optional
	WebhookID string `json:"webhookId,omitempty"`
	// secretName is the Secret holding the webhook's ID and signing secret.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// secretFingerprint is the SHA-256 of the signing secret written to the Secret (a hash, never
	// the value): a Secret whose contents no longer match gets a new webhook.
	// +optional
	SecretFingerprint string `json:"secretFingerprint,omitempty"`
	// ManagedStatus holds the conditions, observedGeneration and pendingChangeRequest that
	// the reconcile driver writes for every kind.
	ManagedStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfnswh,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.webhookId`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsWebhook is a Dfns webhook whose ID and signing secret are written to a Secret in the
// resource's namespace.
type DfnsWebhook struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsWebhookSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DfnsWebhookStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsWebhookList is a list of DfnsWebhook.
type DfnsWebhookList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsWebhook `json:"items"`
}

// SecretName returns the name of the Secret the webhook's ID and secret are written to.
func (w *DfnsWebhook) SecretName() string {
	if w.Spec.SecretName != "" {
		return w.Spec.SecretName
	}
	return w.Name
}

// WantEnabled reports whether the webhook should be enabled in Dfns.
func (w *DfnsWebhook) WantEnabled() bool {
	return w.Spec.Enabled == nil || *w.Spec.Enabled
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &DfnsWebhook{}, &DfnsWebhookList{})
		return nil
	})
}
