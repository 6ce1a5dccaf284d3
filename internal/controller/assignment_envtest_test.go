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
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newAssignment builds a DfnsPermissionAssignment of a DfnsPermission to a DfnsServiceAccount.
func newAssignment(ns, name, perm, sa string) *v1alpha1.DfnsPermissionAssignment {
	return &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: perm},
			IdentityRef: &v1alpha1.IdentityRef{Kind: "DfnsServiceAccount", Name: sa}}}
}

// holders lists the identities the sandbox shows holding a permission.
func holders(permissionID string) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListAssignments(ctx, permissionID)
		g.Expect(err).NotTo(HaveOccurred())
		ids := make([]string, 0, len(all))
		for _, a := range all {
			if !pendingCreation(a.PendingChangeRequest) { // listed while its creation waits for approval
				ids = append(ids, a.IdentityID)
			}
		}
		return ids
	}
}

// readyIdentity makes a namespace with a Ready DfnsServiceAccount "app" (created with
// permission "base") and a second Ready DfnsPermission "extra" to assign to it.
func readyIdentity() (string, *v1alpha1.DfnsPermission, *v1alpha1.DfnsServiceAccount) {
	GinkgoHelper()
	ns := newNamespace()
	base := readyPermission(ns, "base", tOpRead)
	extra := readyPermission(ns, "extra", tOpKeys)
	sa := newSA(ns, "app", base.Name)
	Expect(k8sClient.Create(ctx, sa)).To(Succeed())
	waitReady(sa)
	return ns, extra, sa
}

// assignmentPending waits for a pending change request in status and returns it.
func assignmentPending(a *v1alpha1.DfnsPermissionAssignment) *v1alpha1.ChangeRequestStatus {
	GinkgoHelper()
	eventually(conditionOf(a, v1alpha1.ConditionSynced)).Should(And(
		haveCondition(metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval),
		HaveField("Message", MatchRegexp(`cr-\S+ waits for approval ap-\S+`))))
	Expect(a.Status.PendingChangeRequest).NotTo(BeNil())
	return a.Status.PendingChangeRequest
}

var _ = Describe("DfnsPermissionAssignment", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("waits for its references, assigns, repairs a revoke, follows a re-minted account and revokes on deletion", func() {
		base := readyPermission(ns, "base", tOpRead)
		a := newAssignment(ns, "grant", "extra", "app")
		Expect(k8sClient.Create(ctx, a)).To(Succeed())

		By("waiting, with a reason that names what is missing")
		eventually(conditionOf(a, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonPermissionNotReady), HaveField("Message", ContainSubstring("extra"))))
		extra := readyPermission(ns, "extra", tOpKeys)
		eventually(conditionOf(a, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonIdentityNotReady), HaveField("Message", ContainSubstring("app"))))

		By("assigning once the service account is Ready")
		sa := newSA(ns, "app", base.Name)
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		waitReady(a)
		permID, saID := extra.Status.PermissionID, sa.Status.ServiceAccountID
		Expect(a.Status).To(And(HaveField("PermissionID", permID), HaveField("IdentityID", saID),
			HaveField("AssignmentID", HavePrefix("as-"))))
		Expect(a.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(a.Status.AssignmentID))
		Expect(holders(permID)(Default)).To(ConsistOf(saID))
		s, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(dfns.MissingOperation(err)).To(Equal("Permissions:Read"), "the assigned permission grants Keys:Read, not Permissions:Read")

		By("assigning again when the assignment is revoked in Dfns")
		Expect(dashboard.RevokePermission(ctx, permID, a.Status.AssignmentID)).To(Succeed())
		eventually(holders(permID)).Should(ConsistOf(saID))
		eventually(hasEvent(a, corev1.EventTypeNormal, driver.EventRecreated)).Should(BeTrue())

		By("following the service account when it is minted anew")
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(saID))
		newID := sa.Status.ServiceAccountID
		eventually(holders(permID)).Should(ConsistOf(saID, newID), "the previous identity keeps its permission for its grace period")
		clock.Advance(v1alpha1.DefaultGracePeriod + time.Minute)
		eventually(holders(permID)).Should(ConsistOf(newID))
		eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
			return a.Status.IdentityID
		}).Should(Equal(newID))
		waitReady(a)

		By("revoking it when the resource is deleted")
		deleteAndWait(a)
		Expect(holders(permID)(Default)).To(BeEmpty())
	})

	It("adopts the assignment it finds after a lost answer, and leaves it on Orphan", func() {
		base := readyPermission(ns, "base", tOpRead)
		extra := readyPermission(ns, "extra", tOpKeys)
		sa := newSA(ns, "app", base.Name)
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		sb.InjectOnce("AssignPermission", sandbox.FaultAnswerLost)
		a := newAssignment(ns, "grant", extra.Name, sa.Name)
		a.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		waitReady(a)
		Expect(holders(extra.Status.PermissionID)(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
		deleteAndWait(a)
		Expect(holders(extra.Status.PermissionID)(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
	})

	It("assigns an identity given by ID and does not block deletion when the permission is gone", func() {
		user, err := sb.CreateUser("someone-"+ns+"@example.com", false)
		Expect(err).NotTo(HaveOccurred())
		p, err := dashboard.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/by-id", Operations: []string{tOpRead}})
		Expect(err).NotTo(HaveOccurred())
		a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-id"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: p.ID}, IdentityID: user.UserID}}
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		waitReady(a)
		Expect(holders(p.ID)(Default)).To(ConsistOf(user.UserID))
		_, err = dashboard.ArchivePermission(ctx, p.ID, true)
		Expect(err).NotTo(HaveOccurred())
		deleteAndWait(a)
	})
})

var _ = Describe("DfnsPermissionAssignment under an approval policy", func() {
	It("waits for approval of the assign without resending it, and of the revoke on deletion", func() {
		ns, extra, sa := readyIdentity()
		permID := extra.Status.PermissionID
		requireApproval("Permissions:Assign", permID)
		sb.ResetCounters()

		By("holding the assign for approval, sent once")
		a := newAssignment(ns, "grant", extra.Name, sa.Name)
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		cr := assignmentPending(a)
		Consistently(func() int { return sb.Counters()["AssignPermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		Expect(holders(permID)(Default)).To(BeEmpty())

		By("becoming Ready once approved")
		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: apApproved})
		Expect(err).NotTo(HaveOccurred())
		waitReady(a)
		Expect(a.Status.PendingChangeRequest).To(BeNil())
		Expect(holders(permID)(Default)).To(ConsistOf(sa.Status.ServiceAccountID))

		By("holding the revoke for approval on deletion, then finishing once approved")
		Expect(k8sClient.Delete(ctx, a)).To(Succeed())
		cr = assignmentPending(a)
		Consistently(func() int { return sb.Counters()["RevokePermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		_, err = approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: apApproved})
		Expect(err).NotTo(HaveOccurred())
		eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a) }).Should(Satisfy(apierrors.IsNotFound))
		Expect(holders(permID)(Default)).To(BeEmpty())
	})

	It("keeps a resource deleted while its assign waits for approval until the change is decided", func() {
		ns, extra, sa := readyIdentity()
		permID := extra.Status.PermissionID
		requireApproval("Permissions:Assign", permID)
		a := newAssignment(ns, "grant", extra.Name, sa.Name)
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		cr := assignmentPending(a)
		Expect(k8sClient.Delete(ctx, a)).To(Succeed())
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a) }, 2*syncPeriod, 200*time.Millisecond).
			Should(Succeed(), "the driver.Finalizer stays while the assign may still be applied")

		By("revoking the assignment once the assign is approved (the revoke waits for approval in turn)")
		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: apApproved})
		Expect(err).NotTo(HaveOccurred())
		eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
			g.Expect(a.Status.PendingChangeRequest).NotTo(BeNil())
			return a.Status.PendingChangeRequest.ID
		}).ShouldNot(Equal(cr.ID))
		Expect(holders(permID)(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
		_, err = approverC.DecideApproval(ctx, a.Status.PendingChangeRequest.ApprovalID, dfns.ApprovalDecisionRequest{Value: apApproved})
		Expect(err).NotTo(HaveOccurred())
		eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a) }).Should(Satisfy(apierrors.IsNotFound))
		Expect(holders(permID)(Default)).To(BeEmpty())
	})

	It("stops with ChangeRejected when the assign is denied, without resending it", func() {
		ns, extra, sa := readyIdentity()
		requireApproval("Permissions:Assign", extra.Status.PermissionID)
		sb.ResetCounters()
		a := newAssignment(ns, "grant", extra.Name, sa.Name)
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		cr := assignmentPending(a)
		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Denied"})
		Expect(err).NotTo(HaveOccurred())
		eventually(conditionOf(a, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonChangeRejected))
		Expect(hasEvent(a, corev1.EventTypeWarning, v1alpha1.ReasonChangeRejected)()).To(BeTrue())
		Consistently(func() int { return sb.Counters()["AssignPermission"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		Expect(holders(extra.Status.PermissionID)(Default)).To(BeEmpty())

		By("deleting the resource at once: the denied assign left nothing to revoke")
		deleteAndWait(a)
		Expect(sb.Counters()["RevokePermission"]).To(BeZero())
	})
})

var _ = Describe("DfnsPermissionAssignment validation", func() {
	It("refuses zero or two identities and changes to its references", func() {
		ns := newNamespace()
		none := newAssignment(ns, "none", "p", "sa")
		none.Spec.IdentityRef = nil
		Expect(apierrors.IsInvalid(k8sClient.Create(ctx, none))).To(BeTrue())
		both := newAssignment(ns, "both", "p", "sa")
		both.Spec.IdentityID = "us-aaaaa-bbbbb-ccccccccccccccc"
		Expect(apierrors.IsInvalid(k8sClient.Create(ctx, both))).To(BeTrue())

		a := newAssignment(ns, "fixed", "p", "sa")
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
			a.Spec.IdentityRef.Name = "other"
			err := k8sClient.Update(ctx, a)
			g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "retry on a conflict with the controller's writes")
			g.Expect(err).To(Satisfy(apierrors.IsInvalid))
		}).Should(Succeed())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
			a.Spec.PermissionRef = v1alpha1.PermissionRef{Name: "q"}
			err := k8sClient.Update(ctx, a)
			g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "retry on a conflict with the controller's writes")
			g.Expect(err).To(Satisfy(apierrors.IsInvalid))
		}).Should(Succeed())
		deleteAndWait(a)
	})
})

var _ = Describe("The assignment sample", func() {
	It("grants the sample service account a second permission", func() {
		ns := newNamespace()
		var objs []client.Object
		for _, file := range []string{"access_v1alpha1_dfnspermission.yaml", "access_v1alpha1_dfnsserviceaccount.yaml",
			"access_v1alpha1_dfnspermissionassignment.yaml"} {
			b, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			for doc := range strings.SplitSeq(string(b), "\n---\n") {
				var meta metav1.TypeMeta
				Expect(yaml.Unmarshal([]byte(doc), &meta)).To(Succeed())
				var obj client.Object
				switch meta.Kind {
				case "DfnsPermission":
					obj = &v1alpha1.DfnsPermission{}
				case "DfnsServiceAccount":
					obj = &v1alpha1.DfnsServiceAccount{}
				case "DfnsPermissionAssignment":
					obj = &v1alpha1.DfnsPermissionAssignment{}
				}
				Expect(obj).NotTo(BeNil(), "unexpected kind %q in %s", meta.Kind, file)
				Expect(yaml.UnmarshalStrict([]byte(doc), obj)).To(Succeed())
				obj.SetNamespace(ns)
				Expect(k8sClient.Create(ctx, obj)).To(Succeed())
				objs = append(objs, obj)
			}
		}
		for _, obj := range objs {
			waitReady(obj.(driver.Object))
		}
		var s corev1.Secret
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payments-api-dfns"}, &s)).To(Succeed())
		By("reading permissions with the token, which the assigned permission allows")
		eventually(func() error { _, err := tokenClient(&s).ListPermissions(ctx); return err }).Should(Succeed())
	})
})
