package dfns

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// Page sizes asked for on paginated lists. Dfns documents limit 1..500 for permissions and
// their assignments (docs/dfns-api.md §6.2), so those lists take the largest page: listing the
// assignments of a permission held by 1,000 identities is 2 calls, not 10. The other lists
// keep 100, as no maximum is documented for them.
const (
	pageLimit            = 100
	permissionsPageLimit = 500
)

// queryStatus is the query parameter filtering policies by status; queryKind filters users by
// kind.
const (
	queryStatus = "status"
	queryKind   = "kind"
)

// maxPages stops a pagination that never ends.
const maxPages = 10000

// page is one page of a list answer.
type page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"nextPageToken"`
}

// listAll reads every page of a paginated list (query limit + paginationToken).
func listAll[T any](ctx context.Context, c *Client, op, path string, limit int, filters url.Values) ([]T, error) {
	all := []T{}
	seen := map[string]bool{}
	token := ""
	for range maxPages {
		q := url.Values{}
		maps.Copy(q, filters)
		q.Set("limit", strconv.Itoa(limit))
		if token != "" {
			q.Set("paginationToken", token)
		}
		var p page[T]
		if err := c.get(ctx, op, path+"?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextPageToken == "" {
			return all, nil
		}
		if seen[p.NextPageToken] {
			return nil, fmt.Errorf("dfns %s: pagination token repeats", op)
		}
		seen[p.NextPageToken] = true
		token = p.NextPageToken
	}
	return nil, fmt.Errorf("dfns %s: more than %d pages", op, maxPages)
}

// listOnce reads a list that Dfns does not paginate, item by item as it arrives: the answer
// (12 MB at 10,000 service accounts) is never held whole.
func listOnce[T any](ctx context.Context, c *Client, op, path string) ([]T, error) {
	var items []T
	err := c.getStream(ctx, op, path, nil, func(r io.Reader) error {
		got, err := decodeItems[T](r)
		if err == nil {
			items = got
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// itemsMember is the member of a list answer that holds its items.
const itemsMember = "items"

// decodeItems decodes the items of {"items": [...], ...}, one at a time; other members are
// skipped.
func decodeItems[T any](r io.Reader) ([]T, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	items := []T{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key != itemsMember {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if tok == nil { // "items": null
			continue
		}
		if tok != json.Delim('[') {
			return nil, wrongType(tok)
		}
		for dec.More() {
			var item T
			if err := dec.Decode(&item); err != nil {
				return nil, err
			}
			items = append(items, item)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return nil, err
		}
	}
	return items, expectDelim(dec, '}')
}

// expectDelim reads the next token, which must be d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return wrongType(tok)
	}
	return nil
}

// wrongType says that the answer is not a list of items where tok stands, naming its type only.
func wrongType(tok json.Token) error {
	return &json.UnmarshalTypeError{Value: fmt.Sprintf("%T", tok), Field: itemsMember, Type: reflect.TypeFor[[]any]()}
}

// pathOf joins path pieces, escaping every second one (the IDs): pathOf("/a/", id, "/b").
func pathOf(parts ...string) string {
	var b strings.Builder
	for i, part := range parts {
		if i%2 == 1 {
			part = url.PathEscape(part)
		}
		b.WriteString(part)
	}
	return b.String()
}

// ListServiceAccounts lists the org's service accounts (not paginated by Dfns).
func (c *Client) ListServiceAccounts(ctx context.Context) ([]ServiceAccount, error) {
	return listOnce[ServiceAccount](ctx, c, "ListServiceAccounts", "/auth/service-accounts")
}

// GetServiceAccount reads one service account.
func (c *Client) GetServiceAccount(ctx context.Context, id string) (*ServiceAccount, error) {
	var out ServiceAccount
	return orNil(&out, c.get(ctx, "GetServiceAccount", pathOf("/auth/service-accounts/", id), &out))
}

// CreateServiceAccount creates a service account; the answer holds its only token copy.
func (c *Client) CreateServiceAccount(ctx context.Context, req CreateServiceAccountRequest) (*ServiceAccount, error) {
	var out ServiceAccount
	err := c.change(ctx, "CreateServiceAccount", http.MethodPost, "/auth/service-accounts", req, &out)
	return orNil(&out, err)
}

// UpdateServiceAccount renames a service account or changes its externalId.
func (c *Client) UpdateServiceAccount(ctx context.Context, id string, req UpdateServiceAccountRequest) (*ServiceAccount, error) {
	var out ServiceAccount
	err := c.change(ctx, "UpdateServiceAccount", http.MethodPut, pathOf("/auth/service-accounts/", id), req, &out)
	return orNil(&out, err)
}

// ActivateServiceAccount activates a service account.
func (c *Client) ActivateServiceAccount(ctx context.Context, id string) (*ServiceAccount, error) {
	var out ServiceAccount
	err := c.change(ctx, "ActivateServiceAccount", http.MethodPut, pathOf("/auth/service-accounts/", id, "/activate"), nil, &out)
	return orNil(&out, err)
}

// DeactivateServiceAccount deactivates a service account (body {} as the Go SDK sends it).
func (c *Client) DeactivateServiceAccount(ctx context.Context, id string) (*ServiceAccount, error) {
	var out ServiceAccount
	err := c.change(ctx, "DeactivateServiceAccount", http.MethodPut, pathOf("/auth/service-accounts/", id, "/deactivate"), struct{}{}, &out)
	return orNil(&out, err)
}

// DeleteServiceAccount deletes (archives) a service account.
func (c *Client) DeleteServiceAccount(ctx context.Context, id string) error {
	return c.change(ctx, "DeleteServiceAccount", http.MethodDelete, pathOf("/auth/service-accounts/", id), nil, nil)
}

// ListPersonalAccessTokens lists the calling user's PATs (not paginated by Dfns).
func (c *Client) ListPersonalAccessTokens(ctx context.Context) ([]AccessToken, error) {
	return listOnce[AccessToken](ctx, c, "ListPersonalAccessTokens", "/auth/pats")
}

// GetPersonalAccessToken reads one PAT.
func (c *Client) GetPersonalAccessToken(ctx context.Context, id string) (*AccessToken, error) {
	var out AccessToken
	return orNil(&out, c.get(ctx, "GetPersonalAccessToken", pathOf("/auth/pats/", id), &out))
}

// CreatePersonalAccessToken creates a PAT; the answer holds its only token copy.
func (c *Client) CreatePersonalAccessToken(ctx context.Context, req CreatePersonalAccessTokenRequest) (*AccessToken, error) {
	var out AccessToken
	err := c.change(ctx, "CreatePersonalAccessToken", http.MethodPost, "/auth/pats", req, &out)
	return orNil(&out, err)
}

// UpdatePersonalAccessToken renames a PAT or changes its externalId.
func (c *Client) UpdatePersonalAccessToken(ctx context.Context, id string, req UpdatePersonalAccessTokenRequest) (*AccessToken, error) {
	var out AccessToken
	err := c.change(ctx, "UpdatePersonalAccessToken", http.MethodPut, pathOf("/auth/pats/", id), req, &out)
	return orNil(&out, err)
}

// ActivatePersonalAccessToken activates a PAT.
func (c *Client) ActivatePersonalAccessToken(ctx context.Context, id string) (*AccessToken, error) {
	var out AccessToken
	err := c.change(ctx, "ActivatePersonalAccessToken", http.MethodPut, pathOf("/auth/pats/", id, "/activate"), nil, &out)
	return orNil(&out, err)
}

// DeactivatePersonalAccessToken deactivates a PAT.
func (c *Client) DeactivatePersonalAccessToken(ctx context.Context, id string) (*AccessToken, error) {
	var out AccessToken
	err := c.change(ctx, "DeactivatePersonalAccessToken", http.MethodPut, pathOf("/auth/pats/", id, "/deactivate"), nil, &out)
	return orNil(&out, err)
}

// DeletePersonalAccessToken deletes (archives) a PAT.
func (c *Client) DeletePersonalAccessToken(ctx context.Context, id string) error {
	return c.change(ctx, "DeletePersonalAccessToken", http.MethodDelete, pathOf("/auth/pats/", id), nil, nil)
}

// ListUsers lists the organisation's users, following every page; kind filters when set.
func (c *Client) ListUsers(ctx context.Context, kind string) ([]User, error) {
	var filters url.Values
	if kind != "" {
		filters = url.Values{queryKind: {kind}}
	}
	return listAll[User](ctx, c, "ListUsers", "/auth/users", pageLimit, filters)
}

// GetUser reads one user.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	var out User
	return orNil(&out, c.get(ctx, "GetUser", pathOf("/auth/users/", id), &out))
}

// CreateUser invites a user; Dfns mails the registration link.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (*User, error) {
	var out User
	err := c.change(ctx, "CreateUser", http.MethodPost, "/auth/users", req, &out)
	return orNil(&out, err)
}

// UpdateUser sets whether the user must log in through SSO.
func (c *Client) UpdateUser(ctx context.Context, id string, req UpdateUserRequest) (*User, error) {
	var out User
	err := c.change(ctx, "UpdateUser", http.MethodPut, pathOf("/auth/users/", id), req, &out)
	return orNil(&out, err)
}

// ActivateUser activates a user.
func (c *Client) ActivateUser(ctx context.Context, id string) (*User, error) {
	var out User
	err := c.change(ctx, "ActivateUser", http.MethodPut, pathOf("/auth/users/", id, "/activate"), nil, &out)
	return orNil(&out, err)
}

// DeactivateUser deactivates a user (body {} as @dfns/sdk sends it).
func (c *Client) DeactivateUser(ctx context.Context, id string) (*User, error) {
	var out User
	err := c.change(ctx, "DeactivateUser", http.MethodPut, pathOf("/auth/users/", id, "/deactivate"), struct{}{}, &out)
	return orNil(&out, err)
}

// DeleteUser deletes (archives) a user (@dfns/sdk archiveUser).
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.change(ctx, "ArchiveUser", http.MethodDelete, pathOf("/auth/users/", id), nil, nil)
}

// ListPermissions lists every permission of the org, following every page.
func (c *Client) ListPermissions(ctx context.Context) ([]Permission, error) {
	return listAll[Permission](ctx, c, "ListPermissions", "/permissions", permissionsPageLimit, nil)
}

// GetPermission reads one permission.
func (c *Client) GetPermission(ctx context.Context, id string) (*Permission, error) {
	var out Permission
	return orNil(&out, c.get(ctx, "GetPermission", pathOf("/permissions/", id), &out))
}

// CreatePermission creates a permission.
func (c *Client) CreatePermission(ctx context.Context, req CreatePermissionRequest) (*Permission, error) {
	var out Permission
	err := c.change(ctx, "CreatePermission", http.MethodPost, "/permissions", req, &out)
	return orNil(&out, err)
}

// UpdatePermission changes a permission; a 202 gives an error satisfying IsPendingApproval.
func (c *Client) UpdatePermission(ctx context.Context, id string, req UpdatePermissionRequest) (*Permission, error) {
	var out Permission
	err := c.change(ctx, "UpdatePermission", http.MethodPut, pathOf("/permissions/", id), req, &out)
	return orNil(&out, err)
}

// archiveRequest is the body of PUT /permissions/{id}/archive.
type archiveRequest struct {
	IsArchived bool `json:"isArchived"`
}

// ArchivePermission archives (or unarchives) a permission; a 202 gives an error satisfying
// IsPendingApproval.
func (c *Client) ArchivePermission(ctx context.Context, id string, archived bool) (*Permission, error) {
	var out Permission
	err := c.change(ctx, "ArchivePermission", http.MethodPut, pathOf("/permissions/", id, "/archive"),
		archiveRequest{IsArchived: archived}, &out)
	return orNil(&out, err)
}

// ListAssignments lists a permission's assignments, following every page.
func (c *Client) ListAssignments(ctx context.Context, permissionID string) ([]Assignment, error) {
	return listAll[Assignment](ctx, c, "ListPermissionAssignments", pathOf("/permissions/", permissionID, "/assignments"), permissionsPageLimit, nil)
}

// assignRequest is the body of POST /permissions/{id}/assignments.
type assignRequest struct {
	IdentityID string `json:"identityId"`
}

// AssignPermission assigns a permission to an identity; a 202 gives an error satisfying
// IsPendingApproval.
func (c *Client) AssignPermission(ctx context.Context, permissionID, identityID string) (*Assignment, error) {
	var out Assignment
	err := c.change(ctx, "AssignPermission", http.MethodPost, pathOf("/permissions/", permissionID, "/assignments"),
		assignRequest{IdentityID: identityID}, &out)
	return orNil(&out, err)
}

// RevokePermission removes an assignment; one already gone counts as success, and a 202
// gives an error satisfying IsPendingApproval.
func (c *Client) RevokePermission(ctx context.Context, permissionID, assignmentID string) error {
	err := c.change(ctx, "RevokePermission", http.MethodDelete,
		pathOf("/permissions/", permissionID, "/assignments/", assignmentID), nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// ListWebhooks lists the org's webhooks, following every page.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	return listAll[Webhook](ctx, c, "ListWebhooks", "/webhooks", pageLimit, nil)
}

// GetWebhook reads one webhook (without its secret).
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var out Webhook
	return orNil(&out, c.get(ctx, "GetWebhook", pathOf("/webhooks/", id), &out))
}

// CreateWebhook creates a webhook; the answer holds its only secret copy.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*Webhook, error) {
	var out Webhook
	err := c.change(ctx, "CreateWebhook", http.MethodPost, "/webhooks", req, &out)
	return orNil(&out, err)
}

// UpdateWebhook changes a webhook.
func (c *Client) UpdateWebhook(ctx context.Context, id string, req UpdateWebhookRequest) (*Webhook, error) {
	var out Webhook
	err := c.change(ctx, "UpdateWebhook", http.MethodPut, pathOf("/webhooks/", id), req, &out)
	return orNil(&out, err)
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.change(ctx, "DeleteWebhook", http.MethodDelete, pathOf("/webhooks/", id), nil, nil)
}

// WebhookPing is the answer to a ping: the HTTP status the webhook's URL answered.
type WebhookPing struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// PingWebhook sends a test event to the webhook's URL and reports its answer. The operator does
// not need it; tests and tools use it to check a receiver.
func (c *Client) PingWebhook(ctx context.Context, id string) (*WebhookPing, error) {
	var out WebhookPing
	return orNil(&out, c.change(ctx, "PingWebhook", http.MethodPost, pathOf("/webhooks/", id, "/ping"), nil, &out))
}

// ListPolicies lists policies, following every page; status (Active, Archived) filters when set.
func (c *Client) ListPolicies(ctx context.Context, status string) ([]Policy, error) {
	var filters url.Values
	if status != "" {
		filters = url.Values{queryStatus: {status}}
	}
	return listAll[Policy](ctx, c, "ListPolicies", "/v2/policies", pageLimit, filters)
}

// GetPolicy reads one policy.
func (c *Client) GetPolicy(ctx context.Context, id string) (*Policy, error) {
	var out Policy
	return orNil(&out, c.get(ctx, "GetPolicy", pathOf("/v2/policies/", id), &out))
}

// CreatePolicy creates a policy.
func (c *Client) CreatePolicy(ctx context.Context, req PolicyBody) (*Policy, error) {
	var out Policy
	err := c.change(ctx, "CreatePolicy", http.MethodPost, "/v2/policies", req, &out)
	return orNil(&out, err)
}

// UpdatePolicy replaces a policy; a 202 gives an error satisfying IsPendingApproval.
func (c *Client) UpdatePolicy(ctx context.Context, id string, req PolicyBody) (*Policy, error) {
	var out Policy
	err := c.change(ctx, "UpdatePolicy", http.MethodPut, pathOf("/v2/policies/", id), req, &out)
	return orNil(&out, err)
}

// ArchivePolicy archives a policy (DELETE); a 202 gives an error satisfying IsPendingApproval.
func (c *Client) ArchivePolicy(ctx context.Context, id string) (*Policy, error) {
	var out Policy
	err := c.change(ctx, "ArchivePolicy", http.MethodDelete, pathOf("/v2/policies/", id), nil, &out)
	return orNil(&out, err)
}

// GetApproval reads a policy approval.
func (c *Client) GetApproval(ctx context.Context, id string) (*Approval, error) {
	var out Approval
	return orNil(&out, c.get(ctx, "GetPolicyApproval", pathOf("/v2/policy-approvals/", id), &out))
}

// ApprovalFilter narrows ListApprovals; empty fields do not filter.
type ApprovalFilter struct {
	// Status is Pending, Approved, Denied or Expired.
	Status string
	// InitiatorID is the user whose change the approval holds.
	InitiatorID string
}

// ListApprovals lists policy approvals, following every page.
func (c *Client) ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error) {
	filters := url.Values{}
	if f.Status != "" {
		filters.Set(queryStatus, f.Status)
	}
	if f.InitiatorID != "" {
		filters.Set("initiatorId", f.InitiatorID)
	}
	return listAll[Approval](ctx, c, "ListPolicyApprovals", "/v2/policy-approvals", pageLimit, filters)
}

// DecideApproval approves or denies a policy approval.
func (c *Client) DecideApproval(ctx context.Context, id string, req ApprovalDecisionRequest) (*Approval, error) {
	var out Approval
	err := c.change(ctx, "CreateApprovalDecision", http.MethodPost, pathOf("/v2/policy-approvals/", id, "/decisions"), req, &out)
	return orNil(&out, err)
}

// orNil returns out, or nil and the error.
func orNil[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
