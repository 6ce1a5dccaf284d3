//go:build e2e

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

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// activeByName maps the base names (<namespace>/<name>) of the sandbox's active service
// accounts to their IDs.
func activeByName(g Gomega) map[string][]string {
	all, err := admin.ListServiceAccounts(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string][]string{}
	for _, sa := range all {
		// Each minted account is named <namespace>/<name>.<suffix>: group them by resource.
		base, _, _ := strings.Cut(sa.UserInfo.Name, ".")
		if sa.UserInfo.IsActive {
			out[base] = append(out[base], sa.UserInfo.UserID)
		}
	}
	return out
}

// externalIDOf reads a DfnsServiceAccount's Dfns ID from its external-id annotation.
func externalIDOf(ns, name string) string {
	GinkgoHelper()
	path := strings.ReplaceAll(v1alpha1.AnnotationExternalID, ".", `\.`)
	jsonpath := "jsonpath={.metadata.annotations." + path + "}"
	return strings.TrimSpace(kubectl("get", "dfnsserviceaccount", name, "-n", ns, "-o", jsonpath))
}

// serviceAccountYAML is a DfnsServiceAccount manifest.
func serviceAccountYAML(name, perm, policy string) string {
	return fmt.Sprintf(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsServiceAccount
metadata:
  name: %s
spec:
  permissionRef: {name: %s}
  deletionPolicy: %s
`, name, perm, policy)
}

// signs proves that the Secret's token authenticates and its key signs user actions: a signed
// create and delete of a webhook, which the sample permission allows.
func signs(api dfns.API) {
	GinkgoHelper()
	ctx := context.Background()
	wh, err := api.CreateWebhook(ctx, dfns.CreateWebhookRequest{URL: "https://app.example/hook", Events: []string{"*"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(api.DeleteWebhook(ctx, wh.ID)).To(Succeed())
}

// sampleKinds are the kinds config/samples holds, for kubectl wait.
const sampleKinds = "dfnspermissions,dfnsserviceaccounts,dfnspermissionassignments," +
	"dfnspersonalaccesstokens,dfnswebhooks,dfnspolicies,dfnsusers"

var _ = Describe("dfns-operator", Ordered, func() {
	It("makes the samples Ready with kubectl, with a Secret an app can use", func() {
		createNamespace("samples")
		kubectl("apply", "-k", "config/samples", "-n", "samples")
		kubectl("wait", "--for=condition=Ready", sampleKinds, "--all", "-n", "samples", "--timeout=90s")
		Expect(kubectl("get", "dfns", "-n", "samples")).To(ContainSubstring("payments-api"))

		app := appClient("samples", "payments-api-dfns")
		By("signing requests as the service account")
		signs(app)
		By("reading permissions, which the sample assignment grants")
		_, err := app.ListPermissions(context.Background())
		Expect(err).NotTo(HaveOccurred())
		By("signing requests with the personal access token")
		signs(appClient("samples", "ci-dfns"))
		By("writing the webhook's ID and signing secret")
		tmpl := "go-template={{len .data.DFNS_WEBHOOK_SECRET}} {{.data.DFNS_WEBHOOK_ID | base64decode}}"
		Expect(kubectl("get", "secret", "payments-webhook", "-n", "samples", "-o", tmpl)).To(MatchRegexp(`^[1-9][0-9]* wh-`))
	})

	It("applies each deletion policy", func() {
		createNamespace("policies")
		for _, policy := range []string{"Delete", "Deactivate", "Orphan"} {
			manifest := serviceAccountYAML("sa-"+strings.ToLower(policy), "payments", policy)
			kubectlIn(manifest, "apply", "-n", "policies", "-f", "-")
		}
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: payments}
spec:
  operations: [Wallets:Read, Webhooks:Create, Webhooks:Delete]
`, "apply", "-n", "policies", "-f", "-")
		kubectl("wait", "--for=condition=Ready", "dfnsserviceaccounts", "--all", "-n", "policies", "--timeout=90s")
		ids := map[string]string{}
		for _, policy := range []string{"Delete", "Deactivate", "Orphan"} {
			name := "sa-" + strings.ToLower(policy)
			ids[policy] = externalIDOf("policies", name)
			Expect(ids[policy]).To(HavePrefix("us-"))
		}
		kubectl("delete", "dfnsserviceaccounts", "--all", "-n", "policies", "--timeout=60s")

		ctx := context.Background()
		Expect(harness.ServiceAccountDeleted(ctx, admin, ids["Delete"])).To(BeTrue(), "Delete removes the service account")
		got, err := admin.GetServiceAccount(ctx, ids["Deactivate"])
		Expect(err).NotTo(HaveOccurred())
		Expect(got.UserInfo.IsActive).To(BeFalse(), "Deactivate keeps it, inactive")
		got, err = admin.GetServiceAccount(ctx, ids["Orphan"])
		Expect(err).NotTo(HaveOccurred())
		Expect(got.UserInfo.IsActive).To(BeTrue(), "Orphan leaves it as it is")
	})

	It("loses no token when the manager is killed in the middle of a batch", func() {
		const n = 20
		createNamespace("batch")
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: payments}
spec:
  operations: [Wallets:Read, Webhooks:Create, Webhooks:Delete]
`, "apply", "-n", "batch", "-f", "-")
		kubectl("wait", "--for=condition=Ready", "dfnspermission/payments", "-n", "batch", "--timeout=60s")
		before := counters()["CreateServiceAccount"]
		docs := make([]string, 0, n)
		for i := range n {
			docs = append(docs, serviceAccountYAML(fmt.Sprintf("app-%02d", i), "payments", "Delete"))
		}
		kubectlIn(strings.Join(docs, "---\n"), "apply", "-n", "batch", "-f", "-")

		By("killing the manager with SIGKILL once some creates went out, then starting it again")
		Eventually(func() int { return counters()["CreateServiceAccount"] - before }).
			WithTimeout(60 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNumerically(">=", 4))
		killManager()
		startManager()
		kubectl("wait", "--for=condition=Ready", "dfnsserviceaccounts", "--all", "-n", "batch", "--timeout=120s")

		By("finding exactly one active service account per resource, the one its status names")
		active := activeByName(Default)
		for i := range n {
			name := fmt.Sprintf("app-%02d", i)
			id := externalIDOf("batch", name)
			Expect(active["batch/"+name]).To(Equal([]string{id}), "service account %s", name)
		}
		By("signing with every Secret")
		for i := range n {
			signs(appClient("batch", fmt.Sprintf("app-%02d", i)))
		}
		created := counters()["CreateServiceAccount"] - before
		_, _ = fmt.Fprintf(GinkgoWriter, "creates sent for %d service accounts across the kill: %d\n", n, created)
		Expect(created).To(BeNumerically(">=", n))
	})
})

var _ = Describe("A manager with unusable credentials", Ordered, func() {
	It("keeps running, fails readiness with the reason, and reports CredentialsUnavailable", func() {
		killManager()
		DeferCleanup(startManager)
		empty := GinkgoT().TempDir()
		probe := freeAddr()
		cmd := managerCommand("--kubeconfig", h.Kubeconfig, "--dfns-credentials-dir", empty,
			"--metrics-bind-address", "0", "--health-probe-bind-address", probe, "--sync-period", "5s", "--leader-elect=false")
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		DeferCleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

		By("answering /readyz with the credentials error")
		Eventually(func(g Gomega) string {
			resp, err := http.Get("http://" + probe + "/readyz?verbose")
			g.Expect(err).NotTo(HaveOccurred())
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			g.Expect(resp.StatusCode).To(Equal(http.StatusInternalServerError))
			return string(body)
		}).WithTimeout(30 * time.Second).Should(ContainSubstring("dfns-credentials"))

		By("marking resources CredentialsUnavailable instead of crashing")
		// Served by ClusterDfnsConnection/default, whose mounted credentials are the empty
		// directory: the credentials are the only thing missing.
		createNamespace("nocreds")
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: p}
spec:
  operations: [Wallets:Read]
`, "apply", "-n", "nocreds", "-f", "-")
		Eventually(func() string {
			return kubectl("get", "dfnspermission", "p", "-n", "nocreds",
				"-o", `jsonpath={.status.conditions[?(@.type=="Synced")].reason}`)
		}).WithTimeout(30 * time.Second).Should(Equal(v1alpha1.ReasonCredentialsUnavailable))
		Expect(kubectl("get", "dfnspermission", "p", "-n", "nocreds",
			"-o", `jsonpath={.status.conditions[?(@.type=="Synced")].message}`)).
			To(ContainSubstring("ClusterDfnsConnection/default"), "the message names the connection")
		Expect(cmd.ProcessState).To(BeNil(), "the manager is still running")
	})
})

// freeAddr returns a loopback address with a free port.
func freeAddr() string {
	GinkgoHelper()
	addr, err := harness.FreeAddr()
	Expect(err).NotTo(HaveOccurred())
	return addr
}
