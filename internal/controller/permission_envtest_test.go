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
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// dfnsPermission reads a permission from the sandbox.
func dfnsPermission(id string) func(g Gomega) *dfns.Permission {
	return func(g Gomega) *dfns.Permission {
		got, err := dashboard.GetPermission(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		slices.Sort(got.Operations)
		return got
	}
}

// requireApproval makes a sandbox policy on activityKind (Permissions:Modify,
// Permissions:Assign or Policies:Modify) that holds every such change of the permission (or
// policy) id for the approver's decision; it is archived when the spec ends.
func requireApproval(activityKind, id string) {
	GinkgoHelper()
	filter := "permissionId"
	if activityKind == "Policies:Modify" {
		filter = "policyId"
	}
	pol, err := dashboard.CreatePolicy(ctx, dfns.PolicyBody{
		Name: "approve " + activityKind + " of " + id, ActivityKind: activityKind,
		Rule: dfns.PolicyRule{Kind: "AlwaysTrigger"},
		Action: dfns.PolicyAction{Kind: "RequestApproval", ApprovalGroups: []dfns.ApprovalGroup{{
			Name: "security", Quorum: 1, Approvers: map[string]any{"userId": map[string]any{"in": []string{approver.UserID}}},
		}}},
		Filters: map[string]any{filter: map[string]any{"in": []string{id}}},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		_, err := dashboard.ArchivePolicy(ctx, pol.ID)
		Expect(err).NotTo(HaveOccurred())
	})
}

// pendingOf waits for a pending change request in status and returns it.
func pendingOf(p interface {
	client.Object
	Managed() *v1alpha1.ManagedStatus
}) *v1alpha1.ChangeRequestStatus {
	GinkgoHelper()
	eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(And(
		haveCondition(metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval),
		HaveField("Message", MatchRegexp(`cr-\S+ waits for approval ap-\S+`))))
	cr := p.Managed().PendingChangeRequest
	Expect(cr).NotTo(BeNil())
	Expect(cr.Status).To(Equal("Pending"))
	return cr
}

// setOperations edits spec.operations.
func setOperations(p *v1alpha1.DfnsPermission, ops ...v1alpha1.Operation) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
	p.Spec.Operations = ops
	Expect(k8sClient.Update(ctx, p)).To(Succeed())
}

var _ = Describe("DfnsPermission", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("creates the permission, applies edits, and repairs drift", func() {
		p := readyPermission(ns, "perm", tOpRead)
		id := p.Status.PermissionID
		Expect(id).To(HavePrefix("pm-"))
		Expect(p.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(id))
		Expect(dfnsPermission(id)(Default)).To(And(HaveField("Name", ns+"/perm"), HaveField("Operations", []string{tOpRead})))

		By("updating the operations when the spec changes")
		setOperations(p, tOpRead, "Wallets:Transfers:Create")
		eventually(dfnsPermission(id)).Should(HaveField("Operations", []string{tOpRead, "Wallets:Transfers:Create"}))
		waitReady(p)

		By("setting back operations edited in Dfns")
		_, err := dashboard.UpdatePermission(ctx, id, dfns.UpdatePermissionRequest{Operations: []string{tOpKeys}})
		Expect(err).NotTo(HaveOccurred())
		eventually(dfnsPermission(id)).Should(HaveField("Operations", []string{tOpRead, "Wallets:Transfers:Create"}))

		By("unarchiving a permission archived in Dfns")
		_, err = dashboard.ArchivePermission(ctx, id, true)
		Expect(err).NotTo(HaveOccurred())
		eventually(dfnsPermission(id)).Should(HaveField("IsArchived", false))
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventUnarchived)).Should(BeTrue())

		By("archiving it when the resource is deleted")
		deleteAndWait(p)
		Expect(dfnsPermission(id)(Default).IsArchived).To(BeTrue())
	})

	It("stops with NameConflict on a permission it did not make", func() {
		_, err := dashboard.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/taken", Operations: []string{tOpRead}})
		Expect(err).NotTo(HaveOccurred())
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNameConflict))
		Expect(hasEvent(p, corev1.EventTypeWarning, v1alpha1.ReasonNameConflict)()).To(BeTrue())
	})

	It("adopts the permission named by the external-id annotation and leaves it on Orphan", func() {
		existing, err := dashboard.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/existing", Operations: []string{tOpRead}})
		Expect(err).NotTo(HaveOccurred())
		sb.ResetCounters()
		p := &v1alpha1.DfnsPermission{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted", Annotations: map[string]string{v1alpha1.AnnotationExternalID: existing.ID}},
			Spec: v1alpha1.DfnsPermissionSpec{Name: ns + "/existing", Operations: []v1alpha1.Operation{tOpKeys},
				DeletionPolicy: v1alpha1.DeletionPolicyOrphan}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		Expect(p.Status.PermissionID).To(Equal(existing.ID))
		Expect(dfnsPermission(existing.ID)(Default).Operations).To(Equal([]string{tOpKeys}))
		Expect(sb.Counters()["CreatePermission"]).To(BeZero())
		deleteAndWait(p)
		Expect(dfnsPermission(existing.ID)(Default).IsArchived).To(BeFalse())
	})

	It("waits for approval without resending, then applies an approved change and stops on a denied one", func() {
		p := readyPermission(ns, "guarded", tOpRead)
		id := p.Status.PermissionID
		requireApproval("Permissions:Modify", id)
		sb.ResetCounters()

		By("waiting for approval of an edit, sending it once")
		setOperations(p, tOpRead, "Wallets:Create")
		cr := pendingOf(p)
		Consistently(func() int { return sb.Counters()["UpdatePermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		Expect(conditionOf(p, v1alpha1.ConditionReady)(Default)).To(HaveField("Status", metav1.ConditionFalse))
		Expect(hasEvent(p, corev1.EventTypeNormal, driver.EventChangePendingApproval)()).To(BeTrue())

		By("applying the change once approved")
		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Approved"})
		Expect(err).NotTo(HaveOccurred())
		waitReady(p)
		Expect(p.Status.PendingChangeRequest).To(BeNil())
		Expect(dfnsPermission(id)(Default).Operations).To(Equal([]string{"Wallets:Create", tOpRead}))

		By("stopping with ChangeRejected when denied, until the spec changes")
		setOperations(p, tOpRead)
		cr = pendingOf(p)
		_, err = approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Denied"})
		Expect(err).NotTo(HaveOccurred())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonChangeRejected))
		Expect(hasEvent(p, corev1.EventTypeWarning, v1alpha1.ReasonChangeRejected)()).To(BeTrue())
		sent := sb.Counters()["UpdatePermission"]
		Consistently(func() int { return sb.Counters()["UpdatePermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(sent))

		By("sending a new change once the spec changes")
		setOperations(p, tOpRead, tOpKeys)
		pendingOf(p)
		Expect(sb.Counters()["UpdatePermission"]).To(Equal(sent + 1))
	})
})

var _ = Describe("DfnsPermission deletion under an approval policy", func() {
	It("keeps the driver.Finalizer while the archive waits for approval, without resending it", func() {
		ns := newNamespace()
		p := readyPermission(ns, "held", tOpRead)
		id := p.Status.PermissionID
		requireApproval("Permissions:Modify", id)
		sb.ResetCounters()
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		cr := pendingOf(p)
		Expect(conditionOf(p, v1alpha1.ConditionReady)(Default)).To(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonDeleting))
		Consistently(func() int { return sb.Counters()["ArchivePermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())

		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: apApproved})
		Expect(err).NotTo(HaveOccurred())
		eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p) }).Should(Satisfy(apierrors.IsNotFound))
		Expect(dfnsPermission(id)(Default).IsArchived).To(BeTrue())
		Expect(sb.Counters()["ArchivePermission"]).To(Equal(1))
	})
})

var _ = Describe("The operator in token mode", func() {
	It("reports Forbidden for a service account or PAT, saying login mode is needed, and manages the rest", func() {
		ns := newNamespace()
		perm, err := dashboard.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/operator",
			Operations: []string{"Auth:ServiceAccounts:Read", "Permissions:Read", "Permissions:Create", "Permissions:Update", "Permissions:Archive",
				"Webhooks:Create", "Webhooks:Read", "Webhooks:Update", "Webhooks:Delete"}})
		Expect(err).NotTo(HaveOccurred())
		keyPEM, pub, err := dfns.GenerateKey(dfns.KeyECDSAP256)
		Expect(err).NotTo(HaveOccurred())
		opSA, err := dashboard.CreateServiceAccount(ctx, dfns.CreateServiceAccountRequest{Name: ns + "/operator", PublicKey: pub, PermissionID: perm.ID})
		Expect(err).NotTo(HaveOccurred())
		tok := opSA.AccessTokens[0]
		if tok.CredID == "" { // Dfns may answer the create with an empty credId: read it back
			got, err := dashboard.GetServiceAccount(ctx, opSA.UserInfo.UserID)
			Expect(err).NotTo(HaveOccurred())
			tok.CredID = got.AccessTokens[0].CredID
		}
		By("reaching Dfns through a connection whose Secret holds the token")
		conn := tokenConnection(ns, map[string][]byte{dfns.FileAPIURL: []byte(sbServer.URL), dfns.FileOrgID: []byte(sb.OrgID()),
			dfns.FileAuthToken: []byte(tok.Token), dfns.FileCredID: []byte(tok.CredID), dfns.FilePrivateKey: keyPEM})
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(conn.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(conn.Status.Identity).To(Equal("token"))
			g.Expect(conn.Status.OrgID).To(Equal(sb.OrgID()))
		}).Should(Succeed())
		via := &v1alpha1.ConnectionReference{Kind: v1alpha1.KindClusterDfnsConnection, Name: conn.Name}

		sa := newSA(ns, "tm", "")
		sa.Spec.ConnectionRef = via
		sa.Spec.PermissionRef = v1alpha1.PermissionRef{ID: perm.ID}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		eventually(conditionOf(sa, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonForbidden),
			HaveField("Message", ContainSubstring("login mode"))))
		Expect(activeNamed(ns + "/tm")(Default)).To(BeEmpty())

		pat := newPAT(ns, "tm-pat", "")
		pat.Spec.ConnectionRef = via
		pat.Spec.PermissionRef = v1alpha1.PermissionRef{ID: perm.ID}
		Expect(k8sClient.Create(ctx, pat)).To(Succeed())
		eventually(conditionOf(pat, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonForbidden),
			HaveField("Message", ContainSubstring("login mode"))))
		Expect(activePATs(ns + "/tm-pat")(Default)).To(BeEmpty())

		By("still managing webhooks")
		w := newWebhook(ns, "tw", newReceiver())
		w.Spec.ConnectionRef = via
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		waitReady(w)

		By("still managing permissions")
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tp"},
			Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via, Operations: []v1alpha1.Operation{tOpRead}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
	})
})
