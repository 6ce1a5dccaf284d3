package sandbox

import (
	"net/http"
	"strings"
)

// authMode says what a route requires of its caller.
type authMode int

const (
	authNone   authMode = iota // no bearer token (login flow)
	authToken                  // a valid bearer token
	authSigned                 // a bearer token and a valid single-use X-DFNS-USERACTION
)

// route is one Dfns API endpoint.
type route struct {
	method   string
	segs     []string // "{name}" segments are parameters
	op       string   // operation name (the official Go SDK's method name), used by counters and faults
	perm     string   // Dfns permission operation required, "" when none
	auth     authMode
	unlocked bool // the handler takes the state lock itself (it does network I/O)
	handle   func(c *call) (*reply, error)
}

// buildRoutes lists every endpoint. Non-GET routes other than the auth flow require a user
// action, as in the TypeScript SDK (which signs every non-GET call).
func (s *Server) buildRoutes() []*route {
	var rs []*route
	add := func(method, path, op, perm string, h func(c *call) (*reply, error)) *route {
		auth := authToken
		if method != http.MethodGet {
			auth = authSigned
		}
		rt := &route{method: method, segs: split(path), op: op, perm: perm, auth: auth, handle: h}
		rs = append(rs, rt)
		return rt
	}
	// Auth flow: not user-action signed.
	add("POST", "/auth/login/init", "CreateLoginChallenge", "", s.loginInit).auth = authNone
	add("POST", "/auth/login", "Login", "", s.login).auth = authNone
	add("POST", "/auth/action/init", "CreateUserActionChallenge", "", s.actionInit).auth = authToken
	add("POST", "/auth/action", "CreateUserActionSignature", "", s.actionSign).auth = authToken

	// The caller's own credentials: the registration challenge is not user-action signed.
	add("GET", "/auth/credentials", "ListCredentials", "", s.listCredentials)
	add("POST", "/auth/credentials/init", "CreateCredentialChallenge", "", s.credentialInit).auth = authToken
	add("POST", "/auth/credentials", "CreateCredential", "", s.createCredential)
	add("PUT", "/auth/credentials/activate", "ActivateCredential", "", s.activateCredential)
	add("PUT", "/auth/credentials/deactivate", "DeactivateCredential", "", s.deactivateCredential)

	add("GET", "/auth/service-accounts", "ListServiceAccounts", "Auth:ServiceAccounts:Read", s.listServiceAccounts)
	add("POST", "/auth/service-accounts", "CreateServiceAccount", "Auth:ServiceAccounts:Create", s.createServiceAccount)
	add("GET", "/auth/service-accounts/{id}", "GetServiceAccount", "Auth:ServiceAccounts:Read", s.getServiceAccount)
	add("PUT", "/auth/service-accounts/{id}", "UpdateServiceAccount", "Auth:ServiceAccounts:Update", s.updateServiceAccount)
	add("PUT", "/auth/service-accounts/{id}/activate", "ActivateServiceAccount", "Auth:ServiceAccounts:Activate", s.activateServiceAccount)
	add("PUT", "/auth/service-accounts/{id}/deactivate", "DeactivateServiceAccount", "Auth:ServiceAccounts:Deactivate", s.deactivateServiceAccount)
	add("DELETE", "/auth/service-accounts/{id}", "DeleteServiceAccount", "Auth:ServiceAccounts:Delete", s.deleteServiceAccount)

	add("GET", "/auth/pats", "ListPersonalAccessTokens", "", s.listPATs)
	add("POST", "/auth/pats", "CreatePersonalAccessToken", "Auth:Pats:Create", s.createPAT)
	add("GET", "/auth/pats/{id}", "GetPersonalAccessToken", "", s.getPAT)
	add("PUT", "/auth/pats/{id}", "UpdatePersonalAccessToken", "", s.updatePAT)
	add("PUT", "/auth/pats/{id}/activate", "ActivatePersonalAccessToken", "", s.activatePAT)
	add("PUT", "/auth/pats/{id}/deactivate", "DeactivatePersonalAccessToken", "", s.deactivatePAT)
	add("DELETE", "/auth/pats/{id}", "DeletePersonalAccessToken", "", s.deletePAT)

	add("GET", "/auth/users", "ListUsers", "Auth:Users:Read", s.listUsers)
	add("POST", "/auth/users", "CreateUser", "Auth:Users:Create", s.createUser)
	add("GET", "/auth/users/{id}", "GetUser", "Auth:Users:Read", s.getUser)
	add("PUT", "/auth/users/{id}", "UpdateUser", "Auth:Users:Update", s.updateUser)
	add("PUT", "/auth/users/{id}/activate", "ActivateUser", "Auth:Users:Activate", s.activateUser)
	add("PUT", "/auth/users/{id}/deactivate", "DeactivateUser", "Auth:Users:Deactivate", s.deactivateUser)
	add("DELETE", "/auth/users/{id}", "DeleteUser", "Auth:Users:Delete", s.deleteUser)

	add("GET", "/permissions", "ListPermissions", "Permissions:Read", s.listPermissions)
	add("POST", "/permissions", "CreatePermission", "Permissions:Create", s.createPermission)
	add("GET", "/permissions/{id}", "GetPermission", "Permissions:Read", s.getPermission)
	add("PUT", "/permissions/{id}", "UpdatePermission", "Permissions:Update", s.updatePermission)
	add("PUT", "/permissions/{id}/archive", "ArchivePermission", "Permissions:Archive", s.archivePermission)
	add("POST", "/permissions/{id}/assignments", "AssignPermission", "Permissions:Assign", s.assignPermission)
	add("GET", "/permissions/{id}/assignments", "ListPermissionAssignments", "Permissions:Assignments:Read", s.listAssignments)
	add("DELETE", "/permissions/{id}/assignments/{aid}", "RevokePermission", "Permissions:Revoke", s.revokePermission)

	add("GET", "/v2/policies", "ListPolicies", "Policies:Read", s.listPolicies)
	add("POST", "/v2/policies", "CreatePolicy", "Policies:Create", s.createPolicy)
	add("GET", "/v2/policies/{id}", "GetPolicy", "Policies:Read", s.getPolicy)
	add("PUT", "/v2/policies/{id}", "UpdatePolicy", "Policies:Update", s.updatePolicy)
	add("DELETE", "/v2/policies/{id}", "ArchivePolicy", "Policies:Archive", s.archivePolicy)
	add("GET", "/v2/policy-approvals", "ListPolicyApprovals", "Policies:Approvals:Read", s.listApprovals)
	add("GET", "/v2/policy-approvals/{id}", "GetPolicyApproval", "Policies:Approvals:Read", s.getApproval)
	add("POST", "/v2/policy-approvals/{id}/decisions", "CreateApprovalDecision", "Policies:Approvals:Approve", s.decideApproval)

	add("GET", "/webhooks", "ListWebhooks", "Webhooks:Read", s.listWebhooks)
	add("POST", "/webhooks", "CreateWebhook", "Webhooks:Create", s.createWebhook)
	add("GET", "/webhooks/{id}", "GetWebhook", "Webhooks:Read", s.getWebhook)
	add("PUT", "/webhooks/{id}", "UpdateWebhook", "Webhooks:Update", s.updateWebhook)
	add("DELETE", "/webhooks/{id}", "DeleteWebhook", "Webhooks:Delete", s.deleteWebhook)
	add("POST", "/webhooks/{id}/ping", "PingWebhook", "Webhooks:Ping", s.pingWebhook).unlocked = true
	add("GET", "/webhooks/{id}/events", "ListWebhookEvents", "Webhooks:Events:Read", s.listWebhookEvents)
	add("GET", "/webhooks/{id}/events/{eid}", "GetWebhookEvent", "Webhooks:Events:Read", s.getWebhookEvent)
	return rs
}

func split(path string) []string {
	return strings.Split(strings.Trim(path, "/"), "/")
}

// match finds the route for method and path; path parameters are returned by name.
func (s *Server) match(method, path string) (*route, map[string]string) {
	segs := split(path)
	for _, rt := range s.routes {
		if rt.method != method || len(rt.segs) != len(segs) {
			continue
		}
		if params, ok := matchSegs(rt.segs, segs); ok {
			return rt, params
		}
	}
	return nil, nil
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			params[strings.Trim(p, "{}")] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}
