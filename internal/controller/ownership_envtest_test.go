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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/driver"
	"github.com/dfns-operator/dfns-operator/internal/ownership"
)

// operatorMark is the create-pending mark the operator sets before it creates dfnsName for the
// resource: what a reconciler stopped right after its create leaves behind.
func operatorMark(obj client.Object, kind, dfnsName string) string {
	s := ownership.Subject{Connection: "ClusterDfnsConnection/default", Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	return ownershipKey.EncodeMark(s, ownership.Mark{At: time.Now(), Name: dfnsName, UID: string(obj.GetUID())})
}

// victimWorks checks, in the sandbox, that the victim's service account is still there,
// active, with its name, and that its token still signs.
func victimWorks(sa *v1alpha1.DfnsServiceAccount) {
	GinkgoHelper()
	got, err := dashboard.GetServiceAccount(ctx, sa.Status.ServiceAccountID)
	Expect(err).NotTo(HaveOccurred())
	Expect(got.UserInfo.IsActive).To(BeTrue())
	Expect(got.UserInfo.Name).To(Equal(sa.Status.DfnsName))
	s, err := saSecret(sa)
	Expect(err).NotTo(HaveOccurred())
	_, err = tokenClient(s).ListPermissions(ctx)
	Expect(err).NotTo(HaveOccurred())
}

// The attacks of a tenant with write access to custom resources and Secrets in its own
// namespace only: each tries to reach another namespace's Dfns objects, and each spec checks
// in the sandbox that nothing of the victim's changed.
var _ = Describe("Ownership proof against a hostile tenant", func() {
	var victimNS, tenantNS string
	var victimPerm *v1alpha1.DfnsPermission
	var victimSA *v1alpha1.DfnsServiceAccount

	BeforeEach(func() {
		victimNS, tenantNS = newNamespace(), newNamespace()
		victimPerm = readyPermission(victimNS, "treasury", tOpRead, "Permissions:Read")
		victimSA = newSA(victimNS, "payments", "treasury")
		Expect(k8sClient.Create(ctx, victimSA)).To(Succeed())
		waitReady(victimSA)
	})

	It("1: a hand-set create-pending mark naming another namespace's account deletes nothing", func() {
		attacker := newSA(tenantNS, "attacker", "own")
		readyPermission(tenantNS, "own", tOpRead)
		// The tenant asks for the victim's Dfns name and marks a create as pending by hand, in
		// the old format and naming the victim's account.
		got, err := dashboard.GetServiceAccount(ctx, victimSA.Status.ServiceAccountID)
		Expect(err).NotTo(HaveOccurred())
		attacker.Spec.Name = got.UserInfo.Name
		attacker.Annotations = map[string]string{
			v1alpha1.AnnotationCreatePending: time.Now().UTC().Format(time.RFC3339) + " v1.forged " + got.UserInfo.Name,
		}
		Expect(k8sClient.Create(ctx, attacker)).To(Succeed())
		waitReady(attacker)
		Expect(hasEvent(attacker, corev1.EventTypeWarning, driver.EventClaimIgnored)()).To(BeTrue())
		Expect(attacker.Status.ServiceAccountID).NotTo(Equal(victimSA.Status.ServiceAccountID))
		Expect(attacker.Status.DfnsName).To(HavePrefix(tenantNS + "/" + got.UserInfo.Name + "."))
		Expect(attacker.Annotations).NotTo(HaveKey(v1alpha1.AnnotationCreatePending))
		victimWorks(victimSA)
	})

	It("2: an external-id naming another namespace's permission changes and archives nothing", func() {
		claim := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "grab",
			Annotations: map[string]string{v1alpha1.AnnotationExternalID: victimPerm.Status.PermissionID}},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Permissions:Assign", tOpRead}}}
		Expect(k8sClient.Create(ctx, claim)).To(Succeed())
		eventually(conditionOf(claim, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))
		Expect(conditionOf(claim, v1alpha1.ConditionReady)(Default)).To(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))
		Consistently(func(g Gomega) []string {
			got, err := dashboard.GetPermission(ctx, victimPerm.Status.PermissionID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.IsArchived).To(BeFalse())
			return got.Operations
		}).WithTimeout(3 * syncPeriod).Should(ConsistOf(string(tOpRead), "Permissions:Read"))

		deleteAndWait(claim)
		got, err := dashboard.GetPermission(ctx, victimPerm.Status.PermissionID)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.IsArchived).To(BeFalse())
		Expect(hasEvent(claim, corev1.EventTypeWarning, driver.EventClaimIgnored)()).To(BeTrue())
		waitReady(victimPerm)
	})

	It("3: an external-id naming another namespace's account neither deactivates nor deletes it", func() {
		readyPermission(tenantNS, "own", tOpRead)
		attacker := newSA(tenantNS, "deactivator", "own")
		attacker.Spec.Active = ptr.To(false)
		attacker.Annotations = map[string]string{v1alpha1.AnnotationExternalID: victimSA.Status.ServiceAccountID}
		Expect(k8sClient.Create(ctx, attacker)).To(Succeed())
		eventually(conditionOf(attacker, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec))
		Consistently(func(g Gomega) bool {
			got, err := dashboard.GetServiceAccount(ctx, victimSA.Status.ServiceAccountID)
			g.Expect(err).NotTo(HaveOccurred())
			return got.UserInfo.IsActive
		}).WithTimeout(3 * syncPeriod).Should(BeTrue())

		deleteAndWait(attacker)
		victimWorks(victimSA)
	})

	It("4: a hand-made Secret naming another namespace's account does not get it adopted", func() {
		readyPermission(tenantNS, "own", tOpRead)
		attacker := newSA(tenantNS, "adopter", "own")
		attacker.Spec.SecretName = "forged"
		attacker.Annotations = map[string]string{v1alpha1.AnnotationExternalID: victimSA.Status.ServiceAccountID}
		Expect(k8sClient.Create(ctx, attacker)).To(Succeed())
		forged := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "forged",
			Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			Annotations: map[string]string{v1alpha1.AnnotationExternalID: victimSA.Status.ServiceAccountID},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindServiceAccount,
				Name: attacker.Name, UID: attacker.UID, Controller: ptr.To(true)}}},
			Data: map[string][]byte{KeyAuthToken: []byte("planted-token-7c1e9d"), KeyPrivateKey: []byte("planted-key-7c1e9d")}}
		Expect(k8sClient.Create(ctx, forged)).To(Succeed())
		eventually(conditionOf(attacker, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec))
		Consistently(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(attacker), attacker)).To(Succeed())
			return attacker.Status.ServiceAccountID
		}).WithTimeout(3 * syncPeriod).Should(BeEmpty())
		deleteAndWait(attacker)
		victimWorks(victimSA)
	})

	It("5: an assignment naming another namespace's permission and identity by ID neither adopts nor revokes theirs", func() {
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: victimNS, Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "treasury"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: "payments"}}}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		waitReady(grant)

		steal := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "steal"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: victimPerm.Status.PermissionID},
				IdentityID: victimSA.Status.ServiceAccountID}}
		Expect(k8sClient.Create(ctx, steal)).To(Succeed())
		eventually(conditionOf(steal, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))
		Expect(steal.Annotations).NotTo(HaveKey(v1alpha1.AnnotationExternalID))
		Expect(steal.Status.AssignmentID).To(BeEmpty())

		deleteAndWait(steal)
		all, err := dashboard.ListAssignments(ctx, victimPerm.Status.PermissionID)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ContainElement(HaveField("ID", grant.Status.AssignmentID)))
		waitReady(grant)
	})
})

var _ = Describe("Ownership proof against replayed proofs and marks", func() {
	It("a create-pending mark copied from a deleted resource of the same name revokes nothing", func() {
		victimNS, tenantNS := newNamespace(), newNamespace()
		readyPermission(victimNS, "treasury", tOpRead)
		victimSA := newSA(victimNS, "payments", "treasury")
		Expect(k8sClient.Create(ctx, victimSA)).To(Succeed())
		waitReady(victimSA)
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: victimNS, Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "treasury"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: "payments"}}}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		waitReady(grant)

		By("recreating a resource with the mark its deleted predecessor of the same name carried")
		predecessor := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "steal", UID: "predecessor-uid"}}
		steal := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "steal",
			Annotations: map[string]string{v1alpha1.AnnotationCreatePending: operatorMark(predecessor, kindAssignment,
				grant.Status.PermissionID+" "+grant.Status.IdentityID)}},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: grant.Status.PermissionID},
				IdentityID: grant.Status.IdentityID}}
		Expect(k8sClient.Create(ctx, steal)).To(Succeed())
		eventually(hasEvent(steal, corev1.EventTypeWarning, driver.EventClaimIgnored)).Should(BeTrue())
		eventually(conditionOf(steal, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))
		deleteAndWait(steal)
		all, err := dashboard.ListAssignments(ctx, grant.Status.PermissionID)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(ContainElement(HaveField("ID", grant.Status.AssignmentID)))
		waitReady(grant)
	})

	It("an old proof replayed after another namespace adopted the object changes and archives nothing", func() {
		tenantNS, otherNS := newNamespace(), newNamespace()
		p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "handed-over"},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead}, DeletionPolicy: v1alpha1.DeletionPolicyOrphan}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		saved := map[string]string{
			v1alpha1.AnnotationExternalID: p.Annotations[v1alpha1.AnnotationExternalID],
			v1alpha1.AnnotationProof:      p.Annotations[v1alpha1.AnnotationProof],
		}
		id := p.Status.PermissionID
		deleteAndWait(p)

		By("another namespace adopting the orphaned permission")
		adopter := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: otherNS, Name: "adopted",
			Annotations: map[string]string{v1alpha1.AnnotationExternalID: id}},
			Spec: v1alpha1.DfnsPermissionSpec{Name: "handed-over-adopted", Operations: []v1alpha1.Operation{tOpKeys}}}
		Expect(k8sClient.Create(ctx, adopter)).To(Succeed())
		waitReady(adopter)
		Expect(adopter.Status.PermissionID).To(Equal(id))

		By("the first namespace recreating its resource with the saved annotations")
		replay := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "handed-over", Annotations: saved},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Permissions:Assign"}}}
		Expect(k8sClient.Create(ctx, replay)).To(Succeed())
		eventually(conditionOf(replay, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))
		deleteAndWait(replay)
		got, err := dashboard.GetPermission(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.IsArchived).To(BeFalse())
		Expect(got.Operations).To(ConsistOf(string(tOpKeys)))
		Expect(got.Name).To(Equal(otherNS + "/handed-over-adopted"))
		waitReady(adopter)
	})
})

var _ = Describe("Ownership proof across a backup and restore", func() {
	It("keeps every Dfns object when resources come back without status and with new UIDs", func() {
		ns := newNamespace()
		stop := startManager(operator, restoreMode)
		defer func() { stop() }()
		label := map[string]string{testModeLabel: restoreMode}
		perm := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "treasury", Labels: label},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{tOpRead, "Permissions:Read"}}}
		sa := newSA(ns, "payments", "treasury")
		sa.Labels = label
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant", Labels: label},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "treasury"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: "payments"}}}
		objs := []interface {
			driver.Object
			Managed() *v1alpha1.ManagedStatus
		}{perm, sa, grant}
		for _, o := range objs {
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		for _, o := range objs {
			waitReady(o)
		}
		ids := map[string]string{}
		for _, o := range objs {
			ids[o.GetName()] = o.GetStatusID()
		}
		secret, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		token := string(secret.Data[KeyAuthToken])

		By("stopping the manager, then deleting every resource and restoring it without status and with a new UID")
		stop()
		for _, o := range objs {
			var restored driver.Object
			// A write of the stopping manager may still land: read again on a conflict.
			eventually(func() error {
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
					return err
				}
				restored = o.DeepCopyObject().(driver.Object)
				o.SetFinalizers(nil)
				return k8sClient.Update(ctx, o)
			}).Should(Succeed())
			deleteAndWait(o)
			restored.SetResourceVersion("")
			restored.SetUID("")
			restored.SetFinalizers(nil)
			restored.SetCreationTimestamp(metav1.Time{})
			restored.SetManagedFields(nil)
			Expect(k8sClient.Create(ctx, restored)).To(Succeed())
			Expect(restored.GetStatusID()).To(BeEmpty())
			Expect(restored.GetUID()).NotTo(Equal(o.GetUID()))
		}
		before := sb.Counters()

		By("starting the manager again")
		stop = startManager(operator, restoreMode)
		for _, o := range objs {
			waitReady(o)
			Expect(o.GetStatusID()).To(Equal(ids[o.GetName()]), o.GetName())
		}
		after := sb.Counters()
		for _, op := range []string{"CreateServiceAccount", "DeleteServiceAccount", "CreatePermission", "AssignPermission", "RevokePermission"} {
			Expect(after[op]).To(Equal(before[op]), op)
		}
		secret, err = saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(secret.Data[KeyAuthToken])).To(Equal(token))
		Expect(metav1.IsControlledBy(secret, sa)).To(BeTrue())
		_, err = tokenClient(secret).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, o := range objs {
			Expect(hasEvent(o, corev1.EventTypeWarning, v1alpha1.ReasonNameConflict)()).To(BeFalse())
		}
	})
})

var _ = Describe("The ownership key", func() {
	It("is made once in the operator's namespace and read back by every later start", func() {
		again, err := LoadOwnershipKey(ctx, k8sClient, DefaultOperatorNamespace)
		Expect(err).NotTo(HaveOccurred())
		s := ownership.Subject{Kind: kindPermission, Namespace: "a", Name: "b"}
		Expect(again.OwnsID(s, "pm-1", ownershipKey.ProveID(s, "pm-1"))).To(BeTrue())
		other := newNamespace()
		fresh, err := LoadOwnershipKey(ctx, k8sClient, other)
		Expect(err).NotTo(HaveOccurred())
		Expect(fresh.OwnsID(s, "pm-1", ownershipKey.ProveID(s, "pm-1"))).To(BeFalse())
		var secret corev1.Secret
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: other, Name: OwnershipKeySecret}, &secret)).To(Succeed())
		Expect(secret.Data[ownershipKeyField]).To(HaveLen(ownership.MinKeyLen))
	})
})
