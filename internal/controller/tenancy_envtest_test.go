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

package controller

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// clusterConnection makes a ClusterDfnsConnection with the operator's mounted credentials,
// deleted when the spec ends.
func clusterConnection(name string, spec v1alpha1.ClusterDfnsConnectionSpec) *v1alpha1.ClusterDfnsConnection {
	GinkgoHelper()
	if spec.Credentials == (v1alpha1.ConnectionCredentials{}) {
		spec.Credentials.Mounted = &v1alpha1.MountedCredentials{}
	}
	c := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	Expect(k8sClient.Create(ctx, c)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, c))).To(Succeed()) })
	return c
}

// credentialsSecret makes a Secret of Dfns credentials, deleted when the spec ends.
func credentialsSecret(ns, name string, data map[string][]byte) *corev1.Secret {
	GinkgoHelper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	Expect(k8sClient.Create(ctx, s)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, s))).To(Succeed()) })
	return s
}

// loginData is a credentials Secret's data for a user in login mode.
func loginData(url string, u *sandbox.UserCredentials) map[string][]byte {
	return map[string][]byte{dfns.FileAPIURL: []byte(url), dfns.FileOrgID: []byte(u.OrgID), dfns.FileUsername: []byte(u.Username),
		dfns.FileCredID: []byte(u.CredID), dfns.FilePrivateKey: u.PrivateKeyPEM}
}

// tokenConnection is a ClusterDfnsConnection serving ns with credentials from a Secret in the
// operator's namespace.
func tokenConnection(ns string, data map[string][]byte) *v1alpha1.ClusterDfnsConnection {
	GinkgoHelper()
	credentialsSecret(DefaultOperatorNamespace, "creds-"+ns, data)
	return clusterConnection("token-"+ns, v1alpha1.ClusterDfnsConnectionSpec{
		ConnectionSpec: v1alpha1.ConnectionSpec{Credentials: v1alpha1.ConnectionCredentials{
			SecretRef: &v1alpha1.SecretReference{Name: "creds-" + ns}}},
		Namespaces: []string{ns},
		Limits:     &v1alpha1.ConnectionLimits{PermissionIDs: []string{"*"}},
	})
}

// via is a connectionRef to the ClusterDfnsConnection name.
func via(name string) *v1alpha1.ConnectionReference {
	return &v1alpha1.ConnectionReference{Kind: v1alpha1.KindClusterDfnsConnection, Name: name}
}

// connectionReady waits until a connection's credentials work.
func connectionReady(c client.Object, status *v1alpha1.ConnectionStatus) {
	GinkgoHelper()
	eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
}

// refused waits until the resource is NotPermitted with a message naming the connection and
// the rule, and checks that it never held a finalizer: nothing was made.
func refused(obj interface {
	driver.Object
	Managed() *v1alpha1.ManagedStatus
}, connection, rule string) {
	GinkgoHelper()
	eventually(conditionOf(obj, v1alpha1.ConditionSynced)).Should(And(
		haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted),
		HaveField("Message", ContainSubstring("connection "+connection)),
		HaveField("Message", ContainSubstring(rule))))
	Expect(obj.GetStatusID()).To(BeEmpty())
	Expect(driver.ExternalID(obj)).To(Or(BeEmpty(), Equal(obj.GetAnnotations()[v1alpha1.AnnotationExternalID])))
}

// namedInSandbox lists the names of the permissions, service accounts and policies whose Dfns
// name lies in the namespace's naming, under any prefix.
func namedInSandbox(ns string) func(g Gomega) []string {
	return func(g Gomega) []string {
		var names []string
		in := func(n string) bool { return strings.HasPrefix(n, ns+"/") || strings.Contains(n, ":"+ns+"/") }
		perms, err := dashboard.ListPermissions(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		for _, p := range perms {
			if in(p.Name) {
				names = append(names, p.Name)
			}
		}
		sas, err := dashboard.ListServiceAccounts(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		for _, sa := range sas {
			if in(sa.UserInfo.Name) {
				names = append(names, sa.UserInfo.Name)
			}
		}
		pols, err := dashboard.ListPolicies(ctx, "")
		g.Expect(err).NotTo(HaveOccurred())
		for _, p := range pols {
			if in(p.Name) {
				names = append(names, p.Name)
			}
		}
		return names
	}
}

var _ = Describe("A tenant limited to Wallets:* service accounts", func() {
	var (
		ns, conn string
		// neighbour is another team's namespace served by the same connection.
		neighbour string
		admin     *dfns.Permission // an org-wide permission made in the dashboard
		victim    *dfns.ServiceAccount
	)
	BeforeEach(func() {
		ns, neighbour = newNamespace(), newNamespace()
		conn = "team-" + ns
		clusterConnection(conn, v1alpha1.ClusterDfnsConnectionSpec{
			Namespaces: []string{ns, neighbour},
			Limits: &v1alpha1.ConnectionLimits{
				Kinds:       []v1alpha1.ManagedKind{kindServiceAccount, kindPermission, kindAssignment, kindWebhook},
				Operations:  []string{"Wallets:*"},
				WebhookURLs: []string{`https://hooks\.team\.example/.*`},
			},
		})
		var err error
		admin, err = dashboard.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: "admin-" + ns,
			Operations: []string{"Permissions:Assign", "Auth:Users:Create"}})
		Expect(err).NotTo(HaveOccurred())
		_, pub, err := dfns.GenerateKey(dfns.KeyECDSAP256)
		Expect(err).NotTo(HaveOccurred())
		victim, err = dashboard.CreateServiceAccount(ctx, dfns.CreateServiceAccountRequest{Name: "victim-" + ns, PublicKey: pub,
			PermissionID: admin.ID})
		Expect(err).NotTo(HaveOccurred())
	})

	It("is refused every escalation, and nothing of anyone else changes in Dfns", func() {
		By("a permission holding Permissions:Assign (limits.operations)")
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escalate"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Read", "Permissions:Assign"}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		refused(p, "ClusterDfnsConnection/"+conn, `does not allow operation "Permissions:Assign" (limits.operations)`)

		By("a service account with the admin permission by ID (limits.permissionIds)")
		sa := newSA(ns, "borrow", "")
		sa.Spec.ConnectionRef = via(conn)
		sa.Spec.PermissionRef = v1alpha1.PermissionRef{ID: admin.ID}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		refused(sa, "ClusterDfnsConnection/"+conn, "does not allow referencing permission "+admin.ID+" by ID")

		By("an assignment of its own permission to another team's identity by ID (limits.identityIds)")
		own := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wallets"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Read"}}}
		Expect(k8sClient.Create(ctx, own)).To(Succeed())
		waitReady(own)
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{ConnectionRef: via(conn), PermissionRef: v1alpha1.PermissionRef{Name: "wallets"},
				IdentityID: victim.UserInfo.UserID}}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		refused(grant, "ClusterDfnsConnection/"+conn, "does not allow referencing identity "+victim.UserInfo.UserID+" by ID")

		By("an assignment to an identity a neighbouring namespace made through the same connection, by ID")
		theirPerm := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: neighbour, Name: "wallets"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Read"}}}
		Expect(k8sClient.Create(ctx, theirPerm)).To(Succeed())
		theirs := newSA(neighbour, "theirs", "wallets")
		theirs.Spec.ConnectionRef = via(conn)
		Expect(k8sClient.Create(ctx, theirs)).To(Succeed())
		waitReady(theirs)
		poach := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "poach"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{ConnectionRef: via(conn), PermissionRef: v1alpha1.PermissionRef{Name: "wallets"},
				IdentityID: theirs.GetStatusID()}}
		Expect(k8sClient.Create(ctx, poach)).To(Succeed())
		refused(poach, "ClusterDfnsConnection/"+conn, "does not allow referencing identity "+theirs.GetStatusID()+" by ID")
		assigned, err := dashboard.ListAssignments(ctx, own.Status.PermissionID)
		Expect(err).NotTo(HaveOccurred())
		Expect(assigned).To(BeEmpty())

		By("a policy, which acts on the whole organisation (limits.kinds)")
		pol := newPolicy(ns, "block", 1)
		pol.Spec.ConnectionRef = via(conn)
		Expect(k8sClient.Create(ctx, pol)).To(Succeed())
		refused(pol, "ClusterDfnsConnection/"+conn, "does not allow kind DfnsPolicy (limits.kinds)")

		By("a webhook to a URL outside the allowed ones (limits.webhookURLs)")
		hooksBefore, err := dashboard.ListWebhooks(ctx)
		Expect(err).NotTo(HaveOccurred())
		w := newWebhook(ns, "exfiltrate", newReceiver())
		w.Spec.ConnectionRef = via(conn)
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		refused(w, "ClusterDfnsConnection/"+conn, "(limits.webhookURLs)")
		Expect(dashboard.ListWebhooks(ctx)).To(HaveLen(len(hooksBefore)))

		By("adopting the admin permission by its ID (limits.adoption)")
		adopt := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopt",
			Annotations: map[string]string{v1alpha1.AnnotationExternalID: admin.ID}},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Read"}}}
		Expect(k8sClient.Create(ctx, adopt)).To(Succeed())
		refused(adopt, "ClusterDfnsConnection/"+conn, "does not allow adoption (limits.adoption)")

		By("checking in Dfns that nothing of anyone else changed and nothing was made but the allowed permission")
		Expect(dfnsPermission(admin.ID)(Default)).To(And(
			HaveField("Name", "admin-"+ns), HaveField("IsArchived", false),
			HaveField("Operations", ConsistOf("Auth:Users:Create", "Permissions:Assign"))))
		got, err := dashboard.GetServiceAccount(ctx, victim.UserInfo.UserID)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.UserInfo.IsActive).To(BeTrue())
		Expect(namedInSandbox(ns)(Default)).To(ConsistOf(ns + "/wallets"))
		Expect(namedInSandbox(neighbour)(Default)).To(ConsistOf(neighbour+"/wallets", HavePrefix(neighbour+"/theirs.")))
	})

	It("may reference by ID what its own resources made, and is re-evaluated when the connection changes", func() {
		own := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wallets"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Read"}}}
		Expect(k8sClient.Create(ctx, own)).To(Succeed())
		waitReady(own)
		sa := newSA(ns, "by-id", "")
		sa.Spec.ConnectionRef = via(conn)
		sa.Spec.PermissionRef = v1alpha1.PermissionRef{ID: own.Status.PermissionID}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		more := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "more"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Wallets:Transfers:Create"}}}
		Expect(k8sClient.Create(ctx, more)).To(Succeed())
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{ConnectionRef: via(conn), PermissionRef: v1alpha1.PermissionRef{Name: "more"},
				IdentityID: sa.Status.ServiceAccountID}}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		waitReady(grant)

		By("refusing to take over an assignment it did not make (limits.adoption): the service account's own, made with it")
		taken := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{ConnectionRef: via(conn), PermissionRef: v1alpha1.PermissionRef{Name: "wallets"},
				IdentityID: sa.Status.ServiceAccountID}}
		Expect(k8sClient.Create(ctx, taken)).To(Succeed())
		refused(taken, "ClusterDfnsConnection/"+conn, "does not allow adoption (limits.adoption)")
		deleteAndWait(taken)
		assigned, err := dashboard.ListAssignments(ctx, own.Status.PermissionID)
		Expect(err).NotTo(HaveOccurred())
		Expect(assigned).To(HaveLen(1), "deleting the refused resource revoked nothing")

		By("refusing a permission's operation until the platform team allows it")
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{tOpKeys}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		refused(p, "ClusterDfnsConnection/"+conn, `"Keys:Read"`)
		var c v1alpha1.ClusterDfnsConnection
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: conn}, &c)).To(Succeed())
		before := c.DeepCopy()
		c.Spec.Limits.Operations = append(c.Spec.Limits.Operations, "Keys:*")
		Expect(k8sClient.Patch(ctx, &c, client.MergeFrom(before))).To(Succeed())
		waitReady(p)

		By("refusing a permission referenced by ID whose operations Dfns shows beyond the limits")
		before = c.DeepCopy()
		c.Spec.Limits.PermissionIDs = []string{admin.ID}
		Expect(k8sClient.Patch(ctx, &c, client.MergeFrom(before))).To(Succeed())
		borrow := newSA(ns, "borrow", "")
		borrow.Spec.ConnectionRef = via(conn)
		borrow.Spec.PermissionRef = v1alpha1.PermissionRef{ID: admin.ID}
		Expect(k8sClient.Create(ctx, borrow)).To(Succeed())
		refused(borrow, "ClusterDfnsConnection/"+conn, "held by permission "+admin.ID)
		Expect(activeNamed(ns + "/borrow")(Default)).To(BeEmpty())
	})
})

var _ = Describe("The namespaces a connection serves", func() {
	It("refuses a namespace the connection does not select, until it is labelled", func() {
		plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: plain.Name, Name: "p"},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		refused(p, "ClusterDfnsConnection/default", "does not serve namespace "+plain.Name+" (namespaceSelector, namespaces)")
		Expect(p.GetFinalizers()).To(BeEmpty())
		Expect(namedInSandbox(plain.Name)(Default)).To(BeEmpty())

		By("labelling the namespace: the resource is evaluated again")
		plain.Labels = map[string]string{enabledLabel: "true"}
		Expect(k8sClient.Update(ctx, plain)).To(Succeed())
		waitReady(p)
	})

	It("serves no namespace when it names none", func() {
		ns := newNamespace()
		clusterConnection("nobody-"+ns, v1alpha1.ClusterDfnsConnectionSpec{})
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via("nobody-" + ns), Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		refused(p, "ClusterDfnsConnection/nobody-"+ns, "does not serve namespace")
		Expect(namedInSandbox(ns)(Default)).To(BeEmpty())
	})
})

var _ = Describe("A missing connection", func() {
	It("makes its resources ConnectionNotFound, deletes nothing in Dfns, and resumes when it comes back", func() {
		ns := newNamespace()
		name := "come-and-go-" + ns
		spec := v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{ns}, ConnectionSpec: v1alpha1.ConnectionSpec{NamePrefix: "c2"}}
		clusterConnection(name, spec)
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(name), Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		id := p.Status.PermissionID
		By("naming the Dfns object with the connection's prefix")
		Expect(dfnsPermission(id)(Default).Name).To(Equal("c2:" + ns + "/p"))

		By("deleting the connection")
		Expect(k8sClient.Delete(ctx, &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonConnectionNotFound),
			HaveField("Message", ContainSubstring("ClusterDfnsConnection/"+name))))
		By("deleting the resource: the Dfns object stays while the connection is gone")
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonConnectionNotFound),
			HaveField("Message", ContainSubstring("deletionPolicy: Orphan"))))
		Expect(dfnsPermission(id)(Default).IsArchived).To(BeFalse())

		By("making the connection again: the deletion goes through")
		clusterConnection(name, spec)
		eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p) }).ShouldNot(Succeed())
		Expect(dfnsPermission(id)(Default).IsArchived).To(BeTrue())
	})
})

var _ = Describe("Two organisations", func() {
	It("gives each namespace tokens of its own organisation, and re-reads a replaced credentials Secret", func() {
		By("a second sandbox is another organisation")
		srv2 := sb2Server
		admin2, err := sb2.CreateUser("operator@org2.example", true)
		Expect(err).NotTo(HaveOccurred())
		Expect(sb2.OrgID()).NotTo(Equal(sb.OrgID()))

		nsA, nsB := newNamespace(), newNamespace()
		By("a DfnsConnection in namespace B, with credentials that do not work yet")
		bad := loginData(srv2.URL, admin2)
		bad[dfns.FileUsername] = []byte("nobody@org2.example")
		secret := credentialsSecret(nsB, "org2", bad)
		conn := &v1alpha1.DfnsConnection{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "org2"},
			Spec: v1alpha1.DfnsConnectionSpec{ConnectionSpec: v1alpha1.ConnectionSpec{
				Credentials: v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: "org2"}}}}}
		Expect(k8sClient.Create(ctx, conn)).To(Succeed())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionReady)).To(
				haveCondition(metav1.ConditionFalse, v1alpha1.ReasonCredentialsUnavailable))
		}).Should(Succeed())

		permA := readyPermission(nsA, "wallets", tOpRead)
		saA := newSA(nsA, "app", "wallets")
		Expect(k8sClient.Create(ctx, saA)).To(Succeed())
		By("namespace A keeps working while B's connection is broken")
		waitReady(saA)

		By("replacing B's credentials Secret: re-read without a restart")
		secret.Data = loginData(srv2.URL, admin2)
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		connectionReady(conn, &conn.Status)
		Expect(conn.Status.OrgID).To(Equal(sb2.OrgID()))
		Expect(conn.Status.Identity).To(Equal(admin2.Username))

		ref := &v1alpha1.ConnectionReference{Kind: v1alpha1.KindDfnsConnection, Name: "org2"}
		permB := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "wallets"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: ref, Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, permB)).To(Succeed())
		waitReady(permB)
		saB := newSA(nsB, "app", "wallets")
		saB.Spec.ConnectionRef = ref
		Expect(k8sClient.Create(ctx, saB)).To(Succeed())
		waitReady(saB)

		By("checking each Secret's token against both organisations")
		secretA, err := saSecret(saA)
		Expect(err).NotTo(HaveOccurred())
		secretB, err := saSecret(saB)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(secretA.Data[KeyOrgID])).To(Equal(sb.OrgID()))
		Expect(string(secretB.Data[KeyOrgID])).To(Equal(sb2.OrgID()))
		Expect(string(secretB.Data[KeyAPIURL])).To(Equal(srv2.URL))
		works := func(s *corev1.Secret, url string) error {
			c := newClient(dfns.Credentials{APIURL: url, OrgID: string(s.Data[KeyOrgID]), AuthToken: string(s.Data[KeyAuthToken]),
				CredID: string(s.Data[KeyCredID]), PrivateKeyPEM: s.Data[KeyPrivateKey]})
			_, err := c.Check(ctx)
			return err
		}
		Expect(works(secretA, sbServer.URL)).To(Succeed())
		Expect(works(secretB, srv2.URL)).To(Succeed())
		Expect(works(secretA, srv2.URL)).To(MatchError(dfns.ErrCredentials))
		Expect(works(secretB, sbServer.URL)).To(MatchError(dfns.ErrCredentials))

		By("each organisation holds only its own namespace's objects")
		Expect(namedInSandbox(nsB)(Default)).To(BeEmpty())
		perms2, err := newClient(loginCredentials(srv2.URL, admin2)).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
		names := make([]string, 0, len(perms2))
		for _, p := range perms2 {
			names = append(names, p.Name)
		}
		Expect(names).To(ContainElement(nsB + "/wallets"))
		Expect(names).NotTo(ContainElement(HavePrefix(nsA + "/")))
		Expect(permA.Status.PermissionID).NotTo(Equal(permB.Status.PermissionID))

		By("a DfnsConnection cannot point the manager at a URL it does not allow")
		credentialsSecret(nsB, "elsewhere", loginData(sbServer.URL, admin))
		elsewhere := &v1alpha1.DfnsConnection{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "elsewhere"},
			Spec: v1alpha1.DfnsConnectionSpec{ConnectionSpec: v1alpha1.ConnectionSpec{
				Credentials: v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: "elsewhere"}}}}}
		Expect(k8sClient.Create(ctx, elsewhere)).To(Succeed())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(elsewhere), elsewhere)).To(Succeed())
			g.Expect(meta.FindStatusCondition(elsewhere.Status.Conditions, v1alpha1.ConditionReady)).To(And(
				haveCondition(metav1.ConditionFalse, v1alpha1.ReasonCredentialsUnavailable),
				HaveField("Message", ContainSubstring("--dfns-connection-api-urls"))))
		}).Should(Succeed())

		By("a resource cannot use a permission made through another connection")
		cross := newSA(nsB, "cross", "")
		cross.Spec.PermissionRef = v1alpha1.PermissionRef{Name: "wallets"}
		Expect(k8sClient.Create(ctx, cross)).To(Succeed())
		refused(cross, "ClusterDfnsConnection/default", "which uses connection DfnsConnection/org2")
		for _, o := range []client.Object{saB, permB} {
			deleteAndWait(o)
		}
	})
})
