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

// Kinds of connection a connectionRef names.
const (
	KindClusterDfnsConnection = "ClusterDfnsConnection"
	KindDfnsConnection        = "DfnsConnection"
	// DefaultConnectionName is the connection a resource uses when it names none.
	DefaultConnectionName = "default"
)

// ConnectionReference names the connection a resource reaches Dfns through: a
// ClusterDfnsConnection, or a DfnsConnection in the resource's namespace.
type ConnectionReference struct {
	// kind is ClusterDfnsConnection or DfnsConnection.
	// +kubebuilder:validation:Enum=ClusterDfnsConnection;DfnsConnection
	// +kubebuilder:default=ClusterDfnsConnection
	// +optional
	Kind string `json:"kind,omitempty"`
	// name is the connection's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:default=default
	// +optional
	Name string `json:"name,omitempty"`
}

// String is the connection as messages and ownership proofs name it: <kind>/<name>.
func (r ConnectionReference) String() string { return r.Kind + "/" + r.Name }

// connectionOf fills the defaults the API server applies, for objects built in memory.
func connectionOf(ref *ConnectionReference) ConnectionReference {
	out := ConnectionReference{Kind: KindClusterDfnsConnection, Name: DefaultConnectionName}
	if ref != nil {
		if ref.Kind != "" {
			out.Kind = ref.Kind
		}
		if ref.Name != "" {
			out.Name = ref.Name
		}
	}
	return out
}

// ConnectionCredentials says where a connection's Dfns credentials come from: exactly one of
// mounted and secretRef.
// +kubebuilder:validation:XValidation:rule="has(self.mounted) != has(self.secretRef)",message="set exactly one of mounted and secretRef"
type ConnectionCredentials struct {
	// mounted uses the manager's own credentials directory (--dfns-credentials-dir), normally
	// a Secret mounted into its pod. ClusterDfnsConnection only.
	// +optional
	Mounted *MountedCredentials `json:"mounted,omitempty"`
	// secretRef names a Secret holding the same keys as the credentials directory
	// (DFNS_API_URL, DFNS_ORG_ID, DFNS_USERNAME or DFNS_AUTH_TOKEN, DFNS_CRED_ID,
	// DFNS_PRIVATE_KEY, optional ca.crt): in the operator's namespace for a
	// ClusterDfnsConnection, in its own namespace for a DfnsConnection. It is re-read when it
	// changes.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// MountedCredentials selects the manager's credentials directory; it has no fields.
type MountedCredentials struct{}

// SecretReference names a Secret.
type SecretReference struct {
	// name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// RateLimit sizes a connection's client-side rate limiter.
type RateLimit struct {
	// qps is the sustained number of requests per second to Dfns. Default: --dfns-qps.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	QPS int32 `json:"qps,omitempty"`
	// burst is how many requests may go above qps at once. Default: --dfns-burst.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// ConnectionSpec is what both kinds of connection share.
type ConnectionSpec struct {
	// credentials are the Dfns identity the operator acts as through this connection.
	// +required
	Credentials ConnectionCredentials `json:"credentials"`
	// namePrefix goes before every Dfns name made through the connection, as
	// <namePrefix>:<namespace>/<name>, so that several clusters can share one organisation
	// without colliding. Changing it renames nothing already made.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	NamePrefix string `json:"namePrefix,omitempty"`
	// rateLimit is the connection's own client-side rate limiter. Default: the manager's flags.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// credentialRotation replaces the operator's own Key credential on a schedule. It needs
	// login mode and credentials in a Secret the operator may write: credentials.secretRef, or
	// mounted credentials whose Secret the manager is told (--dfns-credentials-secret).
	// Without it, the credential is replaced only when the annotation
	// access.dfns.io/rotate-credential changes.
	// +optional
	CredentialRotation *CredentialRotation `json:"credentialRotation,omitempty"`
}

// CredentialRotation schedules the replacement of the operator's own Key credential.
type CredentialRotation struct {
	// every is how long a credential is used before it is replaced, counted from its creation
	// in Dfns (e.g. 720h). At least 1h.
	// +required
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="every must be at least 1h"
	Every metav1.Duration `json:"every"`
}

// Adoption says whether resources may adopt existing Dfns objects.
// +kubebuilder:validation:Enum=Allowed;Denied
type Adoption string

// Adoption values.
const (
	AdoptionAllowed Adoption = "Allowed"
	AdoptionDenied  Adoption = "Denied"
)

// ConnectionLimits restrict what resources may do through a ClusterDfnsConnection. A limit
// that is absent does not restrict, except permissionIds, identityIds and adoption, whose
// absence allows nothing beyond what the namespace's own resources made.
type ConnectionLimits struct {
	// kinds are the kinds that may use the connection. DfnsPolicy and DfnsWebhook act on the
	// whole organisation; DfnsUser brings people into it.
	// +optional
	// +listType=set
	Kinds []ManagedKind `json:"kinds,omitempty"`
	// operations are the Dfns operations a permission may hold when it is made through the
	// connection or referenced by ID. An entry ending in "*" matches every operation that
	// starts with what comes before it ("Wallets:*").
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Operations []string `json:"operations,omitempty"`
	// permissionIds are the Dfns permissions (pm-…) a resource may reference by ID, besides
	// those its namespace's DfnsPermissions made; "*" allows any.
	// +optional
	// +listType=set
	PermissionIDs []string `json:"permissionIds,omitempty"`
	// identityIds are the Dfns users, service accounts and tokens (us-…, to-…) a resource may
	// reference by ID, besides those its namespace's resources made; "*" allows any.
	// +optional
	// +listType=set
	IdentityIDs []string `json:"identityIds,omitempty"`
	// webhookURLs are regular expressions; a DfnsWebhook's URL must match one of them whole.
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	WebhookURLs []string `json:"webhookURLs,omitempty"`
	// adoption says whether resources may adopt Dfns objects they did not make, named by an
	// access.dfns.io/external-id annotation, or found by their natural key (a DfnsUser's e-mail,
	// an assignment's permission and identity). Default: Denied.
	// +optional
	// +kubebuilder:default=Denied
	Adoption Adoption `json:"adoption,omitempty"`
}

// ManagedKind is a kind a connection serves.
// +kubebuilder:validation:Enum=DfnsServiceAccount;DfnsPersonalAccessToken;DfnsPermission;DfnsPermissionAssignment;DfnsWebhook;DfnsPolicy;DfnsUser
type ManagedKind string

// ClusterDfnsConnectionSpec is the desired state of a ClusterDfnsConnection.
type ClusterDfnsConnectionSpec struct {
	ConnectionSpec `json:",inline"`
	// namespaceSelector selects the namespaces whose resources may use the connection, by their
	// labels. With neither namespaceSelector nor namespaces, no namespace may.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// namespaces lists namespaces whose resources may use the connection.
	// +optional
	// +listType=set
	Namespaces []string `json:"namespaces,omitempty"`
	// limits restrict what the resources using the connection may do in Dfns.
	// +optional
	Limits *ConnectionLimits `json:"limits,omitempty"`
}

// DfnsConnectionSpec is the desired state of a DfnsConnection.
// +kubebuilder:validation:XValidation:rule="!has(self.credentials.mounted)",message="a DfnsConnection cannot use the manager's mounted credentials; use secretRef"
type DfnsConnectionSpec struct {
	ConnectionSpec `json:",inline"`
}

// ConnectionStatus is the observed state of a connection.
type ConnectionStatus struct {
	// orgId is the Dfns organisation the credentials act in.
	// +optional
	OrgID string `json:"orgId,omitempty"`
	// identity is who the operator acts as: the user it logs in as, or "token" for a
	// service-account token or personal access token.
	// +optional
	Identity string `json:"identity,omitempty"`
	// lastCheckedAt is when the credentials were last checked against Dfns; while nothing else in
	// status changes, it is refreshed hourly rather than at every check.
	// +optional
	LastCheckedAt *metav1.Time `json:"lastCheckedAt,omitempty"`
	// credential is the operator's own Key credential, as the connection uses it (login mode
	// only), and its rotation.
	// +optional
	Credential *ConnectionCredentialStatus `json:"credential,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready says whether the credentials work (logged in, or token accepted);
	// CredentialRotation whether the operator can replace its own Key credential, and how far
	// a rotation is.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Phases of a credential rotation (ConnectionCredentialStatus.Phase).
const (
	// CredentialPhaseStaged: the new key is saved in the Secret (DFNS_NEXT_*) and being
	// registered in Dfns; the credential in use is unchanged.
	CredentialPhaseStaged = "Staged"
	// CredentialPhaseWritten: the new credential is in DFNS_CRED_ID and DFNS_PRIVATE_KEY, the
	// previous one in DFNS_PREVIOUS_*, both active in Dfns; the new one is being confirmed
	// before the previous one is deactivated.
	CredentialPhaseWritten = "Written"
)

// ConnectionCredentialStatus is the operator's own Key credential. It names credentials by
// their credId, which is no secret.
type ConnectionCredentialStatus struct {
	// credId is the Key credential the operator signs with.
	// +optional
	CredID string `json:"credId,omitempty"`
	// createdAt is when Dfns created that credential (read when rotation is scheduled or
	// asked for).
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// nextRotationAt is when it is due to be replaced: createdAt plus credentialRotation.every
	// (later after a rotation that failed).
	// +optional
	NextRotationAt *metav1.Time `json:"nextRotationAt,omitempty"`
	// phase is the step of the rotation under way: Staged or Written; empty when none is.
	// +optional
	// +kubebuilder:validation:Enum=Staged;Written
	Phase string `json:"phase,omitempty"`
	// newCredId is the credential a rotation under way introduces.
	// +optional
	NewCredID string `json:"newCredId,omitempty"`
	// previousCredId is the credential a rotation under way replaces, or the last rotation
	// deactivated.
	// +optional
	PreviousCredID string `json:"previousCredId,omitempty"`
	// lastRotatedAt is when the last rotation finished (or was rolled back).
	// +optional
	LastRotatedAt *metav1.Time `json:"lastRotatedAt,omitempty"`
	// rotateRequest is the last value of the access.dfns.io/rotate-credential annotation a
	// rotation was made for.
	// +optional
	RotateRequest string `json:"rotateRequest,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Org",type=string,JSONPath=`.status.orgId`
// +kubebuilder:printcolumn:name="Identity",type=string,JSONPath=`.status.identity`
// +kubebuilder:printcolumn:name="Checked",type=date,JSONPath=`.status.lastCheckedAt`
// +kubebuilder:printcolumn:name="Credential",type=string,JSONPath=`.status.credential.credId`,priority=1
// +kubebuilder:printcolumn:name="Next-Rotation",type=date,JSONPath=`.status.credential.nextRotationAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterDfnsConnection is a Dfns identity the operator acts as, shared by the namespaces it
// selects, with limits on what they may do through it.
type ClusterDfnsConnection struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec ClusterDfnsConnectionSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ConnectionStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// ClusterDfnsConnectionList is a list of ClusterDfnsConnection.
type ClusterDfnsConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ClusterDfnsConnection `json:"items"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=dfns
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Org",type=string,JSONPath=`.status.orgId`
// +kubebuilder:printcolumn:name="Identity",type=string,JSONPath=`.status.identity`
// +kubebuilder:printcolumn:name="Checked",type=date,JSONPath=`.status.lastCheckedAt`
// +kubebuilder:printcolumn:name="Credential",type=string,JSONPath=`.status.credential.credId`,priority=1
// +kubebuilder:printcolumn:name="Next-Rotation",type=date,JSONPath=`.status.credential.nextRotationAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// DfnsConnection is a Dfns identity, held in a Secret of its own namespace, that the
// resources of that namespace may act as.
type DfnsConnection struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`
	// spec is the desired state.
	// +required
	Spec DfnsConnectionSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ConnectionStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DfnsConnectionList is a list of DfnsConnection.
type DfnsConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []DfnsConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &ClusterDfnsConnection{}, &ClusterDfnsConnectionList{},
			&DfnsConnection{}, &DfnsConnectionList{})
		return nil
	})
}
