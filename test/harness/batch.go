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

package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// A batch is what the chaos test and the benchmark apply: the permissions "base" (what each
// app's token is created with: it may create and delete webhooks, which proves a token and its
// key work) and "extra", N DfnsServiceAccounts app-000… and, for each, a
// DfnsPermissionAssignment of "extra".

// PermissionsManifest is the batch's two DfnsPermissions.
const PermissionsManifest = `apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: base}
spec:
  operations: [Wallets:Read, Webhooks:Create, Webhooks:Delete]
---
apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: extra}
spec:
  operations: [Permissions:Read]
`

// AppName is the name of the batch's i-th service account.
func AppName(i int) string { return fmt.Sprintf("app-%03d", i) }

// AppsManifest is the batch's service accounts and assignments from..to-1.
func AppsManifest(from, to int) string { return RotatingAppsManifest(from, to, nil, "") }

// RotatingAppsManifest is AppsManifest in which the service accounts i for which rotating(i)
// holds have spec.rotation.gracePeriod set to grace (a Go duration such as "10s"): the ones a
// test rotates, whose previous identity is then retired soon. nil rotates none.
func RotatingAppsManifest(from, to int, rotating func(int) bool, grace string) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		rotation := ""
		if rotating != nil && rotating(i) {
			rotation = fmt.Sprintf("  rotation: {gracePeriod: %s}\n", grace)
		}
		fmt.Fprintf(&b, `---
apiVersion: access.dfns.io/v1alpha1
kind: DfnsServiceAccount
metadata: {name: %[1]s}
spec:
  permissionRef: {name: base}
%[2]s---
apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermissionAssignment
metadata: {name: %[1]s-extra}
spec:
  permissionRef: {name: extra}
  identityRef: {kind: DfnsServiceAccount, name: %[1]s}
`, AppName(i), rotation)
	}
	return b.String()
}

// WithConnection makes every resource of a batch manifest (PermissionsManifest, AppsManifest)
// use ClusterDfnsConnection name instead of the default one.
func WithConnection(manifest, name string) string {
	return strings.ReplaceAll(manifest, "\nspec:\n",
		fmt.Sprintf("\nspec:\n  connectionRef: {kind: %s, name: %s}\n", v1alpha1.KindClusterDfnsConnection, name))
}

// BatchReport is what VerifyBatch found.
type BatchReport struct {
	// Problems lists every resource not as it must be; empty when the batch is right.
	Problems []string
	// Accounts is the number of active Dfns service accounts of the batch.
	Accounts int
}

// VerifyBatch checks the batch in namespace ns against the sandbox: exactly one active Dfns
// service account per DfnsServiceAccount (the one its annotation names) and none without a
// resource; "extra" held by exactly the batch's accounts; and every Secret's token accepted
// and its key able to sign (a signed create and delete of a webhook).
func (h *Harness) VerifyBatch(ctx context.Context, ns string, n int) (BatchReport, error) {
	var r BatchReport
	all, err := h.Admin.ListServiceAccounts(ctx)
	if err != nil {
		return r, err
	}
	active := map[string][]string{}
	for _, sa := range all {
		// Each minted account is named <namespace>/<name>.<suffix>: group them by resource.
		base, _, _ := strings.Cut(sa.UserInfo.Name, ".")
		if sa.UserInfo.IsActive && strings.HasPrefix(base, ns+"/") {
			active[base] = append(active[base], sa.UserInfo.UserID)
			r.Accounts++
		}
	}
	var extra v1alpha1.DfnsPermission
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "extra"}, &extra); err != nil {
		return r, err
	}
	assignments, err := h.Admin.ListAssignments(ctx, extra.Status.PermissionID)
	if err != nil {
		return r, err
	}
	var holders, want []string
	for _, a := range assignments {
		holders = append(holders, a.IdentityID)
	}
	for i := range n {
		name := AppName(i)
		var sa v1alpha1.DfnsServiceAccount
		if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sa); err != nil {
			return r, err
		}
		id := sa.Annotations[v1alpha1.AnnotationExternalID]
		want = append(want, id)
		if got := active[ns+"/"+name]; !slices.Equal(got, []string{id}) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: active Dfns service accounts %v, want [%s]",
				name, got, id))
		}
		delete(active, ns+"/"+name)
		if err := h.signs(ctx, ns, name); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: its Secret does not work: %v", name, err))
		}
	}
	for name, ids := range active {
		r.Problems = append(r.Problems, fmt.Sprintf("active Dfns service accounts %v named %s have no resource", ids, name))
	}
	slices.Sort(holders)
	slices.Sort(want)
	if !slices.Equal(holders, want) {
		r.Problems = append(r.Problems, fmt.Sprintf("permission extra is held by %d identities, want the batch's %d",
			len(holders), len(want)))
	}
	return r, nil
}

// signs proves that a Secret's token authenticates and its key signs user actions.
func (h *Harness) signs(ctx context.Context, ns, name string) error {
	app, err := h.AppClient(ctx, ns, name)
	if err != nil {
		return err
	}
	wh, err := app.CreateWebhook(ctx, dfns.CreateWebhookRequest{URL: "https://app.example/hook", Events: []string{"*"}})
	if err != nil {
		return err
	}
	return app.DeleteWebhook(ctx, wh.ID)
}

// ServiceAccountDeleted reports whether service account id was deleted in Dfns: it answers
// 404, or, where Dfns keeps a deleted account listed (the strict sandbox's "archive",
// docs/dfns-compatibility.md), it is inactive and refuses to be activated. The probe changes
// nothing of an archived account; a merely deactivated one is activated, which the caller's
// next check then sees.
func ServiceAccountDeleted(ctx context.Context, api dfns.API, id string) bool {
	got, err := api.GetServiceAccount(ctx, id)
	if dfns.IsNotFound(err) {
		return true
	}
	if err != nil || got.UserInfo.IsActive {
		return false
	}
	_, err = api.ActivateServiceAccount(ctx, id)
	return dfns.IsBadRequest(err)
}
