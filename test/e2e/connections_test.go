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
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// permissionAndAccountYAML is a DfnsPermission "payments" and a DfnsServiceAccount "app"
// holding it, both through the connection that connectionRef names ("" for the default).
func permissionAndAccountYAML(connectionRef string) string {
	ref := ""
	if connectionRef != "" {
		ref = "  connectionRef: " + connectionRef + "\n"
	}
	return `apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: payments}
spec:
` + ref + `  operations: [Wallets:Read, Webhooks:Create, Webhooks:Delete]
---
apiVersion: access.dfns.io/v1alpha1
kind: DfnsServiceAccount
metadata: {name: app}
spec:
` + ref + `  permissionRef: {name: payments}
`
}

// secretData reads a Secret's data.
func secretData(ns, name string) map[string][]byte {
	GinkgoHelper()
	var s corev1.Secret
	Expect(h.K8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s)).To(Succeed())
	return s.Data
}

// checkToken sends a generated Secret's token to sandbox sb, trusting sb's CA, and returns
// what Check says: nil when sb accepts the token.
func checkToken(data map[string][]byte, sb *harness.Sandbox) error {
	GinkgoHelper()
	c, err := dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(harness.SecretCredentials(data, sb))})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Check(ctx)
	return err
}

// expectRefused asserts that err is Dfns refusing a token: 401, a credentials error.
func expectRefused(err error, what string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), what)
	Expect(errors.Is(err, dfns.ErrCredentials)).To(BeTrue(), "%s: %v is not a credentials error", what, err)
	Expect(dfns.IsUnauthorized(err)).To(BeTrue(), "%s: %v is not a 401", what, err)
}

// accountNames are the names of the active service accounts of a sandbox.
func accountNames(api dfns.API) []string {
	GinkgoHelper()
	all, err := api.ListServiceAccounts(context.Background())
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, sa := range all {
		if sa.UserInfo.IsActive {
			names = append(names, sa.UserInfo.Name)
		}
	}
	return names
}

// syncedOf is a resource's Synced condition as "<status>/<reason>".
func syncedOf(kind, ns, name string) string {
	return strings.TrimSpace(kubectl("get", kind, name, "-n", ns, "-o",
		`jsonpath={.status.conditions[?(@.type=="Synced")].status}/{.status.conditions[?(@.type=="Synced")].reason}`))
}

var _ = Describe("Connections", Ordered, func() {
	It("serves two organisations, each namespace through its own connection", func() {
		ctx := context.Background()
		org1 := h.Sandbox
		By("starting a second sandbox: another Dfns organisation")
		org2, err := h.StartSandbox("org2")
		Expect(err).NotTo(HaveOccurred())
		Expect(org2.OrgID).NotTo(Equal(org1.OrgID))

		By("namespace org-a: labelled, served by ClusterDfnsConnection/default (organisation 1)")
		createNamespace("org-a")
		kubectlIn(permissionAndAccountYAML(""), "apply", "-n", "org-a", "-f", "-")

		By("namespace org-b: not labelled; its own DfnsConnection org2, whose Secret holds the second sandbox's bootstrap")
		kubectl("create", "namespace", "org-b")
		Expect(h.CreateCredentialsSecret(org2, "org-b", "org2-credentials")).To(Succeed())
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsConnection
metadata: {name: org2}
spec:
  credentials:
    secretRef: {name: org2-credentials}
`, "apply", "-n", "org-b", "-f", "-")
		kubectlIn(permissionAndAccountYAML("{kind: DfnsConnection, name: org2}"), "apply", "-n", "org-b", "-f", "-")

		By("refusing the Secret while the manager does not allow its DFNS_API_URL")
		Eventually(func() string {
			return kubectl("get", "dfnsconnection", "org2", "-n", "org-b",
				"-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}`)
		}).WithTimeout(30 * time.Second).Should(Equal("False/" + v1alpha1.ReasonCredentialsUnavailable))
		By("restarting the manager, which now allows the second sandbox's URL (--dfns-connection-api-urls)")
		Expect(h.ManagerArgs()).To(ContainElement(ContainSubstring(org2.URL)))
		killManager()
		startManager()

		By("the DfnsConnection is Ready, in organisation 2, as the second sandbox's admin")
		kubectl("wait", "--for=condition=Ready", "dfnsconnection/org2", "-n", "org-b", "--timeout=60s")
		var conn v1alpha1.DfnsConnection
		Expect(h.K8s.Get(ctx, client.ObjectKey{Namespace: "org-b", Name: "org2"}, &conn)).To(Succeed())
		Expect(conn.Status.OrgID).To(Equal(org2.OrgID))
		username, err := os.ReadFile(filepath.Join(org2.Bootstrap, "DFNS_USERNAME"))
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.Status.Identity).To(Equal(strings.TrimSpace(string(username))))
		By("the default connection is Ready, in organisation 1")
		kubectl("wait", "--for=condition=Ready", "clusterdfnsconnection/default", "--timeout=60s")
		var def v1alpha1.ClusterDfnsConnection
		Expect(h.K8s.Get(ctx, client.ObjectKey{Name: "default"}, &def)).To(Succeed())
		Expect(def.Status.OrgID).To(Equal(org1.OrgID))

		By("both permissions and service accounts become Ready")
		for _, ns := range []string{"org-a", "org-b"} {
			kubectl("wait", "--for=condition=Ready", "dfnspermission/payments", "dfnsserviceaccount/app", "-n", ns,
				"--timeout=90s")
		}

		By("each Secret names its own organisation and API")
		a, b := secretData("org-a", "app"), secretData("org-b", "app")
		Expect(string(a["DFNS_ORG_ID"])).To(Equal(org1.OrgID))
		Expect(string(b["DFNS_ORG_ID"])).To(Equal(org2.OrgID))
		Expect(string(a["DFNS_API_URL"])).To(Equal(org1.URL))
		Expect(string(b["DFNS_API_URL"])).To(Equal(org2.URL))

		By("each service account exists in its own organisation only")
		Expect(accountNames(org1.Admin)).To(ContainElement(HavePrefix("org-a/app.")))
		Expect(accountNames(org1.Admin)).NotTo(ContainElement(HavePrefix("org-b/")))
		Expect(accountNames(org2.Admin)).To(ContainElement(HavePrefix("org-b/app.")))
		Expect(accountNames(org2.Admin)).NotTo(ContainElement(HavePrefix("org-a/")))

		By("A's token is accepted by sandbox 1 and refused by sandbox 2, and the other way round for B's")
		Expect(checkToken(a, org1)).To(Succeed())
		expectRefused(checkToken(a, org2), "org-a's token at sandbox 2")
		Expect(checkToken(b, org2)).To(Succeed())
		expectRefused(checkToken(b, org1), "org-b's token at sandbox 1")

		By("each Secret signs requests in its own organisation")
		signs(appClient("org-a", "app"))
		signs(appClient("org-b", "app"))
	})

	It("does nothing in Dfns for a namespace that no connection serves: NotPermitted", func() {
		kubectl("create", "namespace", "unserved") // no access.dfns.io/enabled label
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: lonely}
spec:
  operations: [Wallets:Read]
`, "apply", "-n", "unserved", "-f", "-")
		Eventually(func() string { return syncedOf("dfnspermission", "unserved", "lonely") }).
			WithTimeout(30 * time.Second).Should(Equal("False/" + v1alpha1.ReasonNotPermitted))
		Expect(kubectl("get", "dfnspermission", "lonely", "-n", "unserved", "-o",
			`jsonpath={.status.conditions[?(@.type=="Synced")].message}`)).To(ContainSubstring("ClusterDfnsConnection/default"))

		By("finding nothing named after it in the sandbox, now or a few seconds later")
		Consistently(func(g Gomega) {
			perms, err := admin.ListPermissions(context.Background())
			g.Expect(err).NotTo(HaveOccurred())
			for _, p := range perms {
				g.Expect(p.Name).NotTo(ContainSubstring("unserved/"), "permission %s", p.ID)
			}
		}).WithTimeout(5 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(externalIDOfKind("dfnspermission", "unserved", "lonely")).To(BeEmpty())
	})

	It("waits with ConnectionNotFound for a connection that does not exist", func() {
		createNamespace("noconn")
		kubectlIn(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: p}
spec:
  connectionRef: {kind: DfnsConnection, name: missing}
  operations: [Wallets:Read]
`, "apply", "-n", "noconn", "-f", "-")
		Eventually(func() string { return syncedOf("dfnspermission", "noconn", "p") }).
			WithTimeout(30 * time.Second).Should(Equal("False/" + v1alpha1.ReasonConnectionNotFound))
		perms, err := admin.ListPermissions(context.Background())
		Expect(err).NotTo(HaveOccurred())
		for _, p := range perms {
			Expect(p.Name).NotTo(ContainSubstring("noconn/"))
		}
	})
})

// externalIDOfKind reads any resource's Dfns ID from its external-id annotation.
func externalIDOfKind(kind, ns, name string) string {
	GinkgoHelper()
	path := strings.ReplaceAll(v1alpha1.AnnotationExternalID, ".", `\.`)
	return strings.TrimSpace(kubectl("get", kind, name, "-n", ns, "-o", "jsonpath={.metadata.annotations."+path+"}"))
}
