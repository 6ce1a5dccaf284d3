package dfns

import (
	"context"
	"fmt"
)

// This file is the contract between the controllers and the Dfns client: the interfaces the
// controllers depend on (so that they can be tested with fakes) and the wire types they see.
// *Client implements every interface; see the assertions at the end of the file.

// Identity tells the controllers who the operator is in Dfns and what it can do.
type Identity interface {
	// Endpoint returns the base URL and org ID the client talks to, as published in the
	// Secrets written for apps (DFNS_API_URL, DFNS_ORG_ID). The org ID comes from the
	// credentials directory or, failing that, from the bearer token's org claim.
	Endpoint(ctx context.Context) (apiURL, orgID string, err error)
	// CanCreateIdentities reports whether the operator's credentials can create service
	// accounts and personal access tokens: only a user logged in with a Key credential
	// (login mode) can; a service-account token or PAT (token mode) cannot.
	CanCreateIdentities(ctx context.Context) (bool, error)
	// Check proves the credentials work against Dfns and tells who they act as.
	Check(ctx context.Context) (Account, error)
	// Admit lets a reconcile start, or returns a *ThrottledError when the client's rate limiter
	// is booked too far ahead (see Client.Admit).
	Admit() error
}

// ServiceAccountsAPI manages service accounts (/auth/service-accounts).
type ServiceAccountsAPI interface {
	ListServiceAccounts(ctx context.Context) ([]ServiceAccount, error)
	// GetServiceAccount returns an error satisfying IsNotFound when the account is gone.
	GetServiceAccount(ctx context.Context, id string) (*ServiceAccount, error)
	// CreateServiceAccount is signed and never retried by the client once the request may
	// have reached Dfns: the only copy of the new token is in its answer.
	CreateServiceAccount(ctx context.Context, req CreateServiceAccountRequest) (*ServiceAccount, error)
	UpdateServiceAccount(ctx context.Context, id string, req UpdateServiceAccountRequest) (*ServiceAccount, error)
	ActivateServiceAccount(ctx context.Context, id string) (*ServiceAccount, error)
	DeactivateServiceAccount(ctx context.Context, id string) (*ServiceAccount, error)
	DeleteServiceAccount(ctx context.Context, id string) error
}

// PersonalAccessTokensAPI manages the operator user's personal access tokens (/auth/pats).
type PersonalAccessTokensAPI interface {
	ListPersonalAccessTokens(ctx context.Context) ([]AccessToken, error)
	GetPersonalAccessToken(ctx context.Context, id string) (*AccessToken, error)
	CreatePersonalAccessToken(ctx context.Context, req CreatePersonalAccessTokenRequest) (*AccessToken, error)
	UpdatePersonalAccessToken(ctx context.Context, id string, req UpdatePersonalAccessTokenRequest) (*AccessToken, error)
	ActivatePersonalAccessToken(ctx context.Context, id string) (*AccessToken, error)
	DeactivatePersonalAccessToken(ctx context.Context, id string) (*AccessToken, error)
	DeletePersonalAccessToken(ctx context.Context, id string) error
}

// UsersAPI manages the organisation's people (/auth/users): CustomerEmployee users, invited
// by e-mail. Every change may be held for approval (an error satisfying IsPendingApproval).
type UsersAPI interface {
	// ListUsers follows every page; kind (CustomerEmployee, EndUser) filters when not empty.
	ListUsers(ctx context.Context, kind string) ([]User, error)
	// GetUser returns an error satisfying IsNotFound when the user is gone.
	GetUser(ctx context.Context, id string) (*User, error)
	// CreateUser invites a user: Dfns mails a registration link, and the user can log in once
	// registered.
	CreateUser(ctx context.Context, req CreateUserRequest) (*User, error)
	UpdateUser(ctx context.Context, id string, req UpdateUserRequest) (*User, error)
	ActivateUser(ctx context.Context, id string) (*User, error)
	DeactivateUser(ctx context.Context, id string) (*User, error)
	// DeleteUser deletes (archives) a user.
	DeleteUser(ctx context.Context, id string) error
}

// PermissionsAPI manages permissions and their assignments (/permissions).
//
// Calls that Dfns may answer with 202 (update, archive, assign, revoke) return an error
// satisfying IsPendingApproval, carrying the change request; the change must not be sent again
// while it is pending.
type PermissionsAPI interface {
	// ListPermissions follows every page.
	ListPermissions(ctx context.Context) ([]Permission, error)
	GetPermission(ctx context.Context, id string) (*Permission, error)
	CreatePermission(ctx context.Context, req CreatePermissionRequest) (*Permission, error)
	UpdatePermission(ctx context.Context, id string, req UpdatePermissionRequest) (*Permission, error)
	ArchivePermission(ctx context.Context, id string, archived bool) (*Permission, error)
	// ListAssignments follows every page.
	ListAssignments(ctx context.Context, permissionID string) ([]Assignment, error)
	AssignPermission(ctx context.Context, permissionID, identityID string) (*Assignment, error)
	// RevokePermission treats an assignment that is already gone as success.
	RevokePermission(ctx context.Context, permissionID, assignmentID string) error
}

// WebhooksAPI manages webhooks (/webhooks).
type WebhooksAPI interface {
	// ListWebhooks follows every page.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	GetWebhook(ctx context.Context, id string) (*Webhook, error)
	// CreateWebhook returns the signing secret, which Dfns never shows again.
	CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*Webhook, error)
	UpdateWebhook(ctx context.Context, id string, req UpdateWebhookRequest) (*Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
}

// PoliciesAPI manages policies (/v2/policies) and reads approvals (/v2/policy-approvals).
type PoliciesAPI interface {
	// ListPolicies follows every page; status filters by Active or Archived when not empty.
	ListPolicies(ctx context.Context, status string) ([]Policy, error)
	GetPolicy(ctx context.Context, id string) (*Policy, error)
	CreatePolicy(ctx context.Context, req PolicyBody) (*Policy, error)
	UpdatePolicy(ctx context.Context, id string, req PolicyBody) (*Policy, error)
	ArchivePolicy(ctx context.Context, id string) (*Policy, error)
	GetApproval(ctx context.Context, id string) (*Approval, error)
	// ListApprovals follows every page.
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
	DecideApproval(ctx context.Context, id string, req ApprovalDecisionRequest) (*Approval, error)
}

// CredentialsAPI manages the calling user's own credentials (/auth/credentials): what the
// operator needs to rotate its Key credential (docs/dfns-api.md §3.6). Only a user logged in
// with a credential (login mode) may call it.
type CredentialsAPI interface {
	// ListCredentials lists the caller's credentials, active or not (not paginated by Dfns).
	ListCredentials(ctx context.Context) ([]Credential, error)
	// CreateKeyCredential registers a new Key credential for the caller: a challenge from
	// POST /auth/credentials/init, answered with the new key, sent to POST /auth/credentials
	// signed by the client's current credential. The new credential is active at once. It is
	// never retried once the request may have reached Dfns: list to find out.
	CreateKeyCredential(ctx context.Context, req NewKeyCredential) (*Credential, error)
	ActivateCredential(ctx context.Context, credentialUUID string) error
	// DeactivateCredential deactivates one of the caller's credentials; Dfns refuses to
	// deactivate the last active one.
	DeactivateCredential(ctx context.Context, credentialUUID string) error
	// ConfirmSigning proves that Dfns accepts the client's current credential: it logs in when
	// needed and has a user action signed (for activating credentialUUID), which it never sends.
	ConfirmSigning(ctx context.Context, credentialUUID string) error
}

// API is everything the controllers use.
type API interface {
	Identity
	ServiceAccountsAPI
	PersonalAccessTokensAPI
	UsersAPI
	PermissionsAPI
	WebhooksAPI
	PoliciesAPI
	CredentialsAPI
}

// PermissionAssignmentInfo is an identity's view of one of its assignments.
type PermissionAssignmentInfo struct {
	PermissionName string   `json:"permissionName"`
	PermissionID   string   `json:"permissionId"`
	AssignmentID   string   `json:"assignmentId"`
	Operations     []string `json:"operations,omitempty"`
}

// UserInfo describes a user or a service account (a service account is a user).
type UserInfo struct {
	Username              string                     `json:"username"`
	Name                  string                     `json:"name"`
	UserID                string                     `json:"userId"`
	Kind                  string                     `json:"kind"`
	CredentialUUID        string                     `json:"credentialUuid"`
	OrgID                 string                     `json:"orgId"`
	IsActive              bool                       `json:"isActive"`
	IsServiceAccount      bool                       `json:"isServiceAccount"`
	IsRegistered          bool                       `json:"isRegistered"`
	PermissionAssignments []PermissionAssignmentInfo `json:"permissionAssignments"`
}

// AccessToken is a service account's token or a personal access token. Token holds the bearer
// token and is set only in the answer to a create.
type AccessToken struct {
	Token                 string                     `json:"accessToken,omitempty"`
	TokenID               string                     `json:"tokenId"`
	CredID                string                     `json:"credId"`
	PublicKey             string                     `json:"publicKey"`
	Name                  string                     `json:"name"`
	OrgID                 string                     `json:"orgId"`
	LinkedUserID          string                     `json:"linkedUserId"`
	IsActive              bool                       `json:"isActive"`
	Kind                  string                     `json:"kind"`
	DateCreated           string                     `json:"dateCreated"`
	PermissionAssignments []PermissionAssignmentInfo `json:"permissionAssignments"`
}

// Credential is one of a user's credentials (ListCredentials, CreateKeyCredential), as
// @dfns/sdk types it: credentialId is the credId a signature names, credentialUuid (cr-…) the
// ID the activate and deactivate calls take.
type Credential struct {
	Kind           string `json:"kind"`
	CredentialID   string `json:"credentialId"`
	CredentialUUID string `json:"credentialUuid"`
	DateCreated    string `json:"dateCreated"`
	IsActive       bool   `json:"isActive"`
	Name           string `json:"name"`
	// PublicKey is a fingerprint of the public key (SHA256:…), not the key.
	PublicKey      string `json:"publicKey"`
	RelyingPartyID string `json:"relyingPartyId"`
	Origin         string `json:"origin"`
}

// NewKeyCredential is a Key credential to register: its name in Dfns, the credId the client
// chooses, and its private key (PEM), which signs the registration and never leaves the client.
type NewKeyCredential struct {
	Name          string
	CredID        string
	PrivateKeyPEM []byte
}

// String hides the key.
func (n NewKeyCredential) String() string {
	return fmt.Sprintf("new Key credential (name %q, credId %s, key set %t)", n.Name, n.CredID, len(n.PrivateKeyPEM) > 0)
}

// GoString is String.
func (n NewKeyCredential) GoString() string { return n.String() }

// ServiceAccount is the answer of every service-account call.
type ServiceAccount struct {
	UserInfo     UserInfo      `json:"userInfo"`
	AccessTokens []AccessToken `json:"accessTokens"`
}

// CreateServiceAccountRequest is the body of POST /auth/service-accounts.
type CreateServiceAccountRequest struct {
	Name         string `json:"name"`
	PublicKey    string `json:"publicKey"`
	PermissionID string `json:"permissionId,omitempty"`
	ExternalID   string `json:"externalId,omitempty"`
	DaysValid    int    `json:"daysValid,omitempty"`
}

// UpdateServiceAccountRequest is the body of PUT /auth/service-accounts/{id}.
type UpdateServiceAccountRequest struct {
	Name       string `json:"name,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
}

// UserKindEmployee is the kind of the organisation's people, the only kind POST /auth/users
// makes (EndUsers come from delegated registration).
const UserKindEmployee = "CustomerEmployee"

// User is a person of the organisation, as every /auth/users call answers (@dfns/sdk
// GetUserResponse): its username is the e-mail it was invited with.
type User struct {
	UserInfo
	// IsSSORequired says the user must log in through the organisation's SSO.
	IsSSORequired bool `json:"isSSORequired"`
	// ExternalID is the value given at creation, where an answer carries it (the SDK's types
	// do not list it, so nothing relies on it).
	ExternalID string `json:"externalId,omitempty"`
}

// Email is the e-mail the user was invited with: its username.
func (u *User) Email() string { return u.Username }

// CreateUserRequest is the body of POST /auth/users (@dfns/sdk CreateUserBody).
type CreateUserRequest struct {
	Email         string `json:"email"`
	Kind          string `json:"kind"`
	ExternalID    string `json:"externalId,omitempty"`
	IsSSORequired bool   `json:"isSSORequired,omitempty"`
}

// UpdateUserRequest is the body of PUT /auth/users/{id}: only isSSORequired can change.
type UpdateUserRequest struct {
	IsSSORequired bool `json:"isSSORequired"`
}

// CreatePersonalAccessTokenRequest is the body of POST /auth/pats.
type CreatePersonalAccessTokenRequest struct {
	Name         string `json:"name"`
	PublicKey    string `json:"publicKey"`
	PermissionID string `json:"permissionId,omitempty"`
	ExternalID   string `json:"externalId,omitempty"`
	DaysValid    int    `json:"daysValid,omitempty"`
	SecondsValid int    `json:"secondsValid,omitempty"`
}

// UpdatePersonalAccessTokenRequest is the body of PUT /auth/pats/{id}.
type UpdatePersonalAccessTokenRequest struct {
	Name       string `json:"name,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
}

// Permission is a named set of operations.
type Permission struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	Operations           []string       `json:"operations"`
	Status               string         `json:"status"`
	IsImmutable          bool           `json:"isImmutable"`
	IsArchived           bool           `json:"isArchived"`
	DateCreated          string         `json:"dateCreated"`
	DateUpdated          string         `json:"dateUpdated"`
	PendingChangeRequest *ChangeRequest `json:"pendingChangeRequest,omitempty"`
}

// CreatePermissionRequest is the body of POST /permissions.
type CreatePermissionRequest struct {
	Name       string   `json:"name"`
	Operations []string `json:"operations"`
}

// UpdatePermissionRequest is the body of PUT /permissions/{id}.
type UpdatePermissionRequest struct {
	Name       string   `json:"name,omitempty"`
	Operations []string `json:"operations,omitempty"`
}

// Assignment grants a permission to an identity (user, service account or PAT).
type Assignment struct {
	ID                   string         `json:"id"`
	PermissionID         string         `json:"permissionId"`
	IdentityID           string         `json:"identityId"`
	IsImmutable          bool           `json:"isImmutable"`
	DateCreated          string         `json:"dateCreated"`
	DateUpdated          string         `json:"dateUpdated"`
	PendingChangeRequest *ChangeRequest `json:"pendingChangeRequest,omitempty"`
}

// Requester is who asked for a change.
type Requester struct {
	UserID  string `json:"userId"`
	TokenID string `json:"tokenId,omitempty"`
}

// ChangeRequest is what Dfns answers with 202 when a policy requires approval.
type ChangeRequest struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	OperationKind string    `json:"operationKind"`
	Status        string    `json:"status"` // Pending, Applied, Failed, Rejected
	EntityID      string    `json:"entityId"`
	ApprovalID    string    `json:"approvalId,omitempty"`
	Requester     Requester `json:"requester"`
	DateCreated   string    `json:"dateCreated"`
	DateResolved  string    `json:"dateResolved,omitempty"`
}

// Webhook is a webhook; Secret is set only in the answer to a create.
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Status      string   `json:"status"` // Enabled, Disabled
	Description string   `json:"description,omitempty"`
	DateCreated string   `json:"dateCreated"`
	DateUpdated string   `json:"dateUpdated"`
	Secret      string   `json:"secret,omitempty"`
}

// CreateWebhookRequest is the body of POST /webhooks.
type CreateWebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Status      string   `json:"status,omitempty"`
	Description string   `json:"description,omitempty"`
}

// UpdateWebhookRequest is the body of PUT /webhooks/{id}.
type UpdateWebhookRequest struct {
	URL         string   `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Status      string   `json:"status,omitempty"`
	Description *string  `json:"description,omitempty"`
}

// PolicyRule is a policy's trigger; Configuration depends on Kind (docs/dfns-api.md §3.8).
type PolicyRule struct {
	Kind          string         `json:"kind"`
	Configuration map[string]any `json:"configuration,omitempty"`
}

// ApprovalGroup is one group of approvers of a RequestApproval action.
type ApprovalGroup struct {
	Name                      string         `json:"name,omitempty"`
	Quorum                    int            `json:"quorum"`
	Approvers                 map[string]any `json:"approvers"`
	InitiatorCanApprove       *bool          `json:"initiatorCanApprove,omitempty"`
	ServiceAccountsCanApprove *bool          `json:"serviceAccountsCanApprove,omitempty"`
}

// PolicyAction is what a triggered policy does: RequestApproval, Block or NoAction.
type PolicyAction struct {
	Kind              string          `json:"kind"`
	ApprovalGroups    []ApprovalGroup `json:"approvalGroups,omitempty"`
	AutoRejectTimeout *int            `json:"autoRejectTimeout,omitempty"`
}

// PolicyBody is the body of a policy create or update.
type PolicyBody struct {
	Name         string         `json:"name"`
	ActivityKind string         `json:"activityKind"`
	Rule         PolicyRule     `json:"rule"`
	Action       PolicyAction   `json:"action"`
	Filters      map[string]any `json:"filters,omitempty"`
}

// Policy is a policy as Dfns returns it.
type Policy struct {
	PolicyBody
	ID                   string         `json:"id"`
	Status               string         `json:"status"` // Active, Archived
	DateCreated          string         `json:"dateCreated,omitempty"`
	DateUpdated          string         `json:"dateUpdated,omitempty"`
	PendingChangeRequest *ChangeRequest `json:"pendingChangeRequest,omitempty"`
}

// ApprovalDecision is one approver's decision.
type ApprovalDecision struct {
	UserID string `json:"userId"`
	Date   string `json:"date"`
	Reason string `json:"reason,omitempty"`
	Value  string `json:"value"` // Approved, Denied
}

// Approval is a policy approval (/v2/policy-approvals).
type Approval struct {
	ID           string             `json:"id"`
	InitiatorID  string             `json:"initiatorId"`
	Status       string             `json:"status"` // Pending, Approved, Denied, Expired
	Activity     map[string]any     `json:"activity"`
	Decisions    []ApprovalDecision `json:"decisions"`
	DateCreated  string             `json:"dateCreated,omitempty"`
	DateUpdated  string             `json:"dateUpdated,omitempty"`
	DateResolved string             `json:"dateResolved,omitempty"`
}

// ChangeRequestID returns the ID of the change request the approval holds ("" when its
// activity holds none): the one link from a change request answered without approvalId to
// its approval.
func (a *Approval) ChangeRequestID() string {
	cr, _ := a.Activity["changeRequest"].(map[string]any)
	id, _ := cr["id"].(string)
	return id
}

// ApprovalDecisionRequest is the body of POST /v2/policy-approvals/{id}/decisions.
type ApprovalDecisionRequest struct {
	Value  string `json:"value"` // Approved, Denied
	Reason string `json:"reason,omitempty"`
}
