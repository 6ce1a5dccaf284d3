//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// newSandbox starts the sandbox over TLS and returns it with its credentials source helpers.
func newSandbox(t *testing.T) (*sandbox.Server, *httptest.Server) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(sb.Handler())
	t.Cleanup(srv.Close)
	return sb, srv
}

func sandboxClient(t *testing.T, srv *httptest.Server, creds dfns.Credentials) *dfns.Client {
	t.Helper()
	creds.APIURL = srv.URL
	creds.CACertPEM = certPEM(srv)
	c, err := dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(creds), QPS: 1000, Burst: 1000,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sandboxEnv is what the sandbox subtests share.
type sandboxEnv struct {
	sb   *sandbox.Server
	srv  *httptest.Server
	c    *dfns.Client
	perm *dfns.Permission
	ctx  context.Context
}

// TestAgainstSandbox runs the client against the independent sandbox: login mode, user-action
// signing with every key type, the identity kinds, permissions, webhooks, policies, and an
// answer lost after the change was committed.
func TestAgainstSandbox(t *testing.T) {
	sb, srv := newSandbox(t)
	admin, err := sb.CreateUser("operator@example.com", true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := sandboxClient(t, srv, dfns.Credentials{Username: admin.Username, OrgID: admin.OrgID, CredID: admin.CredID, PrivateKeyPEM: admin.PrivateKeyPEM})
	if _, org, err := c.Endpoint(ctx); err != nil || org != sb.OrgID() {
		t.Fatalf("Endpoint: %s, %v", org, err)
	}

	perm, err := c.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: "readers", Operations: []string{"Auth:ServiceAccounts:Read", "Permissions:Read"}})
	if err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	env := &sandboxEnv{sb: sb, srv: srv, c: c, perm: perm, ctx: ctx}
	for _, alg := range []dfns.KeyAlgorithm{dfns.KeyECDSAP256, dfns.KeyEd25519, dfns.KeyRSA2048} {
		t.Run("service account with "+string(alg), func(t *testing.T) { sandboxServiceAccount(t, env, alg) })
	}

	t.Run("personal access token", func(t *testing.T) { sandboxPAT(t, env) })

	t.Run("webhook and policy", func(t *testing.T) { sandboxWebhookAndPolicy(t, env) })

	t.Run("user invited, registered, deactivated, deleted", func(t *testing.T) { sandboxUser(t, env) })

	t.Run("answer lost after the change was committed", func(t *testing.T) { sandboxAnswerLost(t, env) })

	t.Run("a read answered 500 is retried", func(t *testing.T) { sandboxRead500(t, env) })

	t.Run("a Retry-After beyond MaxBackoff goes back to the caller", func(t *testing.T) { sandboxRetryAfter(t, env) })

	t.Run("a change held for approval", func(t *testing.T) { sandboxApproval(t, env) })
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func sandboxServiceAccount(t *testing.T, env *sandboxEnv, alg dfns.KeyAlgorithm) {
	c, srv, perm, ctx := env.c, env.srv, env.perm, env.ctx
	priv, pub, err := dfns.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := c.CreateServiceAccount(ctx, dfns.CreateServiceAccountRequest{Name: "sa-" + string(alg), PublicKey: pub, ExternalID: "uid-" + string(alg)})
	if err != nil {
		t.Fatalf("CreateServiceAccount: %v", err)
	}
	tok := sa.AccessTokens[0]
	if _, err := c.AssignPermission(ctx, perm.ID, sa.UserInfo.UserID); err != nil {
		t.Fatalf("AssignPermission: %v", err)
	}
	// The app's view: token mode with the generated key signs its own changes.
	app := sandboxClient(t, srv, dfns.Credentials{AuthToken: tok.Token, CredID: tok.CredID, PrivateKeyPEM: priv})
	if can, _ := app.CanCreateIdentities(ctx); can {
		t.Error("a service-account token claims it can create identities")
	}
	if _, err := app.GetServiceAccount(ctx, sa.UserInfo.UserID); err != nil {
		t.Errorf("app reads itself: %v", err)
	}
	_, err = app.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: "x-" + string(alg), Operations: []string{"Permissions:Read"}})
	if !dfns.IsForbidden(err) || dfns.MissingOperation(err) != "Permissions:Create" {
		t.Errorf("signed change without the permission: %v (missing %q)", err, dfns.MissingOperation(err))
	}
	if _, err := c.DeactivateServiceAccount(ctx, sa.UserInfo.UserID); err != nil {
		t.Errorf("DeactivateServiceAccount: %v", err)
	}
	if _, err := c.ActivateServiceAccount(ctx, sa.UserInfo.UserID); err != nil {
		t.Errorf("ActivateServiceAccount: %v", err)
	}
	if err := c.DeleteServiceAccount(ctx, sa.UserInfo.UserID); err != nil {
		t.Errorf("DeleteServiceAccount: %v", err)
	}
	if _, err := c.GetServiceAccount(ctx, sa.UserInfo.UserID); !dfns.IsNotFound(err) {
		t.Errorf("deleted service account: %v, want 404", err)
	}
}

func sandboxPAT(t *testing.T, env *sandboxEnv) {
	c, ctx := env.c, env.ctx
	_, pub, _ := dfns.GenerateKey(dfns.KeyEd25519)
	pat, err := c.CreatePersonalAccessToken(ctx, dfns.CreatePersonalAccessTokenRequest{Name: "pat", PublicKey: pub})
	if err != nil || pat.Token == "" {
		t.Fatalf("CreatePersonalAccessToken: %v", err)
	}
	if _, err := c.UpdatePersonalAccessToken(ctx, pat.TokenID, dfns.UpdatePersonalAccessTokenRequest{Name: "pat2"}); err != nil {
		t.Errorf("UpdatePersonalAccessToken: %v", err)
	}
	if err := c.DeletePersonalAccessToken(ctx, pat.TokenID); err != nil {
		t.Errorf("DeletePersonalAccessToken: %v", err)
	}
}

func sandboxUser(t *testing.T, env *sandboxEnv) {
	c, ctx := env.c, env.ctx
	u, err := c.CreateUser(ctx, dfns.CreateUserRequest{Email: "alice@example.com", Kind: dfns.UserKindEmployee, ExternalID: "uid-1"})
	if err != nil || u.UserID == "" || u.Email() != "alice@example.com" || u.IsRegistered || !u.IsActive {
		t.Fatalf("CreateUser: %+v, %v", u, err)
	}
	if _, err := c.CreateUser(ctx, dfns.CreateUserRequest{Email: "ALICE@example.com", Kind: dfns.UserKindEmployee}); !dfns.IsConflict(err) {
		t.Errorf("a second invitation of the same e-mail: %v, want a 409", err)
	}
	if _, err := env.sb.RegisterUser(u.UserID, nil); err != nil {
		t.Fatalf("RegisterUser: %v", err)
	}
	all, err := c.ListUsers(ctx, dfns.UserKindEmployee)
	found := false
	for _, x := range all {
		found = found || x.UserID == u.UserID && x.IsRegistered
	}
	if err != nil || !found {
		t.Errorf("ListUsers: %+v, %v; want %s registered", all, err, u.UserID)
	}
	if got, err := c.UpdateUser(ctx, u.UserID, dfns.UpdateUserRequest{IsSSORequired: true}); err != nil || !got.IsSSORequired {
		t.Errorf("UpdateUser: %+v, %v", got, err)
	}
	if got, err := c.DeactivateUser(ctx, u.UserID); err != nil || got.IsActive {
		t.Errorf("DeactivateUser: %+v, %v", got, err)
	}
	if got, err := c.ActivateUser(ctx, u.UserID); err != nil || !got.IsActive {
		t.Errorf("ActivateUser: %+v, %v", got, err)
	}
	if err := c.DeleteUser(ctx, u.UserID); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	if _, err := c.GetUser(ctx, u.UserID); !dfns.IsNotFound(err) {
		t.Errorf("GetUser after delete: %v, want a 404", err)
	}
}

func sandboxWebhookAndPolicy(t *testing.T, env *sandboxEnv) {
	c, ctx := env.c, env.ctx
	wh, err := c.CreateWebhook(ctx, dfns.CreateWebhookRequest{URL: "https://example.com/hook", Events: []string{"*"}, Status: "Disabled"})
	if err != nil || wh.Secret == "" {
		t.Fatalf("CreateWebhook: %+v, %v", wh, err)
	}
	if hooks, err := c.ListWebhooks(ctx); err != nil || len(hooks) != 1 {
		t.Errorf("ListWebhooks: %d, %v", len(hooks), err)
	}
	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Errorf("DeleteWebhook: %v", err)
	}
	pol, err := c.CreatePolicy(ctx, dfns.PolicyBody{Name: "block", ActivityKind: "Permissions:Assign",
		Rule: dfns.PolicyRule{Kind: "AlwaysTrigger"}, Action: dfns.PolicyAction{Kind: "Block"}, Filters: map[string]any{}})
	if err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if pols, err := c.ListPolicies(ctx, "Active"); err != nil || len(pols) != 1 {
		t.Errorf("ListPolicies: %d, %v", len(pols), err)
	}
	if _, err := c.ArchivePolicy(ctx, pol.ID); err != nil {
		t.Errorf("ArchivePolicy: %v", err)
	}
}

func sandboxAnswerLost(t *testing.T, env *sandboxEnv) {
	c, sb, ctx := env.c, env.sb, env.ctx
	sb.ResetCounters()
	sb.InjectOnce("CreatePermission", sandbox.FaultAnswerLost)
	_, err := c.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: "lost", Operations: []string{"Permissions:Read"}})
	if !errors.Is(err, dfns.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	if n := sb.Counters()["CreatePermission"]; n != 1 {
		t.Errorf("CreatePermission reached the sandbox %d times, want 1", n)
	}
	perms, err := c.ListPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range perms {
		found = found || p.Name == "lost"
	}
	if !found {
		t.Error("the committed permission is not listed")
	}
}

func sandboxRead500(t *testing.T, env *sandboxEnv) {
	c, sb, ctx := env.c, env.sb, env.ctx
	sb.InjectOnce("ListPermissions", sandbox.FaultInternal)
	if _, err := c.ListPermissions(ctx); err != nil {
		t.Errorf("ListPermissions after a 500: %v", err)
	}
}

func sandboxRetryAfter(t *testing.T, env *sandboxEnv) {
	c, sb, ctx := env.c, env.sb, env.ctx
	sb.InjectOnce("ListPermissions", sandbox.FaultRateLimitedRetry)
	_, err := c.ListPermissions(ctx)
	if ra, ok := dfns.IsRateLimited(err); !ok || ra != time.Second {
		t.Errorf("err = %v, want 429 with Retry-After 1s", err)
	}
}

func sandboxApproval(t *testing.T, env *sandboxEnv) {
	c, perm, ctx := env.c, env.perm, env.ctx
	yes := true
	_, err := c.CreatePolicy(ctx, dfns.PolicyBody{Name: "approve-modify", ActivityKind: "Permissions:Modify",
		Rule: dfns.PolicyRule{Kind: "AlwaysTrigger"}, Filters: map[string]any{},
		Action: dfns.PolicyAction{Kind: "RequestApproval", ApprovalGroups: []dfns.ApprovalGroup{
			{Name: "admins", Quorum: 1, Approvers: map[string]any{}, InitiatorCanApprove: &yes}}}})
	if err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	_, err = c.UpdatePermission(ctx, perm.ID, dfns.UpdatePermissionRequest{Operations: []string{"Permissions:Read"}})
	cr, ok := dfns.IsPendingApproval(err)
	if !ok || cr.ApprovalID == "" {
		t.Fatalf("UpdatePermission: %v, want pending approval", err)
	}
	ap, err := c.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Approved"})
	if err != nil || ap.Status != "Approved" {
		t.Fatalf("DecideApproval: %+v, %v", ap, err)
	}
	got, err := c.GetPermission(ctx, perm.ID)
	if err != nil || len(got.Operations) != 1 {
		t.Errorf("permission after approval: %+v, %v", got, err)
	}
}

// TestCredentialRotationAgainstSandbox replaces the client's own Key credential three times
// (one key type after another), as the operator does: register the new key signed by the
// current one, switch the credentials source, confirm, deactivate the previous one.
func TestCredentialRotationAgainstSandbox(t *testing.T) {
	sb, srv := newSandbox(t)
	user, err := sb.CreateUser("bot@example.com", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := func(credID string, key []byte) map[string][]byte {
		return map[string][]byte{dfns.FileAPIURL: []byte(srv.URL), dfns.FileOrgID: []byte(user.OrgID), dfns.FileUsername: []byte(user.Username),
			dfns.FileCredID: []byte(credID), dfns.FilePrivateKey: key, dfns.FileCACert: certPEM(srv)}
	}
	src := &dfns.SettableCredentials{}
	src.Set(data(user.CredID, user.PrivateKeyPEM))
	c, err := dfns.New(dfns.Options{Credentials: src, QPS: 1000, Burst: 1000, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	current, currentKey := user.CredID, user.PrivateKeyPEM
	for i, alg := range []dfns.KeyAlgorithm{dfns.KeyEd25519, dfns.KeyRSA2048, dfns.KeyECDSAP256} {
		before := sandboxClient(t, srv, dfns.Credentials{Username: user.Username, OrgID: user.OrgID, CredID: current, PrivateKeyPEM: currentKey})
		key, _, err := dfns.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		credID, err := dfns.GenerateCredID()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 { // the answer is lost after Dfns registered the credential: listing finds it
			sb.InjectOnce("CreateCredential", sandbox.FaultAnswerLost)
			if _, err := c.CreateKeyCredential(ctx, dfns.NewKeyCredential{Name: "rotated", CredID: credID, PrivateKeyPEM: key}); !errors.Is(err, dfns.ErrOutcomeUnknown) {
				t.Fatalf("lost answer: %v, want ErrOutcomeUnknown", err)
			}
		} else if _, err := c.CreateKeyCredential(ctx, dfns.NewKeyCredential{Name: "rotated", CredID: credID, PrivateKeyPEM: key}); err != nil {
			t.Fatalf("CreateKeyCredential(%s): %v", alg, err)
		}
		list, err := c.ListCredentials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]dfns.Credential{}
		for _, cr := range list {
			byID[cr.CredentialID] = cr
		}
		if len(list) != i+2 || !byID[credID].IsActive || !byID[current].IsActive {
			t.Fatalf("after registering %s: %+v", alg, list)
		}
		src.Set(data(credID, key))
		if _, err := c.Check(ctx); err != nil {
			t.Fatalf("login with the new %s credential: %v", alg, err)
		}
		if err := c.ConfirmSigning(ctx, byID[credID].CredentialUUID); err != nil {
			t.Fatalf("signing with the new %s credential: %v", alg, err)
		}
		if err := c.DeactivateCredential(ctx, byID[current].CredentialUUID); err != nil {
			t.Fatalf("deactivating the previous credential: %v", err)
		}
		if _, err := before.Check(ctx); !errors.Is(err, dfns.ErrCredentials) {
			t.Errorf("the previous credential still logs in: %v", err)
		}
		current, currentKey = credID, key
	}
	list, err := c.ListCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := list[len(list)-1]
	if last.CredentialID != current || !last.IsActive || last.Name != "rotated" {
		t.Fatalf("credentials at the end: %+v", list)
	}
	if err := c.DeactivateCredential(ctx, last.CredentialUUID); !dfns.IsBadRequest(err) {
		t.Errorf("deactivating the last active credential: %v, want 400", err)
	}
}
