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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newUser builds a DfnsUser inviting email.
func newUser(ns, name, email string) *v1alpha1.DfnsUser {
	return &v1alpha1.DfnsUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.DfnsUserSpec{Email: email}}
}

// emailIn is an address no other spec uses: a namespace's name is unique in the suite.
func emailIn(ns, who string) string { return who + "-" + ns + "@example.com" }

// dfnsUser reads a user from the sandbox.
func dfnsUser(id string) func(g Gomega) *dfns.User {
	return func(g Gomega) *dfns.User {
		got, err := dashboard.GetUser(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		return got
	}
}

// usersNamed lists the IDs of the users the sandbox shows with the e-mail.
func usersNamed(email string) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListUsers(ctx, "")
		g.Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, u := range all {
			if u.Email() == email {
				ids = append(ids, u.UserID)
			}
		}
		return ids
	}
}

// deletedUser reports whether user id was deleted in Dfns: it answers 404, or, where Dfns
// keeps a deleted user listed (the strict sandbox's "archive"), it shows it inactive and
// refuses to activate it (a merely deactivated user would be activated by the probe, and the
// test then finds it active, which fails it).
func deletedUser(id string) bool {
	got, err := dashboard.GetUser(ctx, id)
	if dfns.IsNotFound(err) {
		return true
	}
	if err != nil || got.IsActive {
		return false
	}
	_, err = dashboard.ActivateUser(ctx, id)
	return dfns.IsBadRequest(err)
}

// userStatus reads a DfnsUser's status.
func userStatus(u *v1alpha1.DfnsUser) func(g Gomega) v1alpha1.DfnsUserStatus {
	return func(g Gomega) v1alpha1.DfnsUserStatus {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
		return u.Status
	}
}

// patchUser changes a DfnsUser's spec.
func patchUser(u *v1alpha1.DfnsUser, mutate func(*v1alpha1.DfnsUser)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	before := u.DeepCopy()
	mutate(u)
	Expect(k8sClient.Patch(ctx, u, client.MergeFrom(before))).To(Succeed())
}

var _ = Describe("DfnsUser", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("invites, reports the registration, takes a permission, follows spec.active and is deactivated on deletion", func() {
		email := emailIn(ns, "alice")
		u := newUser(ns, "alice", email)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		waitReady(u)
		id := u.Status.UserID
		Expect(id).To(HavePrefix("us-"))
		Expect(u.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(id))
		Expect(u.Spec.DeletionPolicy).To(Equal(v1alpha1.DeletionPolicyDeactivate), "people are deactivated by default")

		By("an invited user has not registered yet")
		eventually(userStatus(u)).Should(And(HaveField("Registered", ptr.To(false)), HaveField("Active", ptr.To(true))))
		got := dfnsUser(id)(Default)
		Expect(got.Email()).To(Equal(email))
		Expect(got.Kind).To(Equal(dfns.UserKindEmployee))
		Expect(got.IsRegistered).To(BeFalse())
		Expect(usersNamed(email)(Default)).To(ConsistOf(id))

		By("completing the registration, as the person would by following the invitation")
		_, err := sb.RegisterUser(id, nil)
		Expect(err).NotTo(HaveOccurred())
		eventually(userStatus(u)).Should(HaveField("Registered", ptr.To(true)))

		By("assigning a permission to the user by resource")
		perm := readyPermission(ns, "treasury-approver", tOpRead)
		a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-treasury"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: perm.Name},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindUser, Name: u.Name}}}
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		waitReady(a)
		Expect(a.Status.IdentityID).To(Equal(id))
		Expect(holders(perm.Status.PermissionID)(Default)).To(ConsistOf(id))

		By("requiring SSO")
		patchUser(u, func(u *v1alpha1.DfnsUser) { u.Spec.IsSSORequired = ptr.To(true) })
		eventually(func(g Gomega) bool { return dfnsUser(id)(g).IsSSORequired }).Should(BeTrue())

		By("offboarding: spec.active false deactivates the user, who keeps the assignment")
		patchUser(u, func(u *v1alpha1.DfnsUser) { u.Spec.Active = ptr.To(false) })
		eventually(func(g Gomega) bool { return dfnsUser(id)(g).IsActive }).Should(BeFalse())
		eventually(userStatus(u)).Should(HaveField("Active", ptr.To(false)))
		eventually(hasEvent(u, corev1.EventTypeNormal, driver.EventDeactivated)).Should(BeTrue())
		waitReady(u)
		Expect(holders(perm.Status.PermissionID)(Default)).To(ConsistOf(id))

		By("onboarding again: spec.active true activates the same user")
		patchUser(u, func(u *v1alpha1.DfnsUser) { u.Spec.Active = ptr.To(true) })
		eventually(func(g Gomega) bool { return dfnsUser(id)(g).IsActive }).Should(BeTrue())
		eventually(userStatus(u)).Should(And(HaveField("Active", ptr.To(true)), HaveField("UserID", id)))

		By("setting back a deactivation made in the dashboard")
		_, err = dashboard.DeactivateUser(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		eventually(hasEvent(u, corev1.EventTypeNormal, driver.EventReactivated)).Should(BeTrue())
		eventually(func(g Gomega) bool { return dfnsUser(id)(g).IsActive }).Should(BeTrue())

		By("deleting the assignment revokes it; deleting the user deactivates it and keeps it in Dfns")
		deleteAndWait(a)
		Expect(holders(perm.Status.PermissionID)(Default)).To(BeEmpty())
		deleteAndWait(u)
		got = dfnsUser(id)(Default)
		Expect(got.IsActive).To(BeFalse())
		Expect(got.Email()).To(Equal(email))
		Expect(hasEvent(u, corev1.EventTypeNormal, driver.EventDeleted)()).To(BeTrue())
		By("a deactivated user is kept, not deleted: it can be activated again")
		_, err = dashboard.ActivateUser(ctx, id)
		Expect(err).NotTo(HaveOccurred())
	})

	It("deletes per deletionPolicy: Delete removes the user, Orphan leaves it active", func() {
		del, orphan := newUser(ns, "leaver", emailIn(ns, "leaver")), newUser(ns, "kept", emailIn(ns, "kept"))
		del.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
		orphan.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		for _, u := range []*v1alpha1.DfnsUser{del, orphan} {
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			waitReady(u)
		}
		delID, orphanID := del.Status.UserID, orphan.Status.UserID
		deleteAndWait(del)
		Expect(deletedUser(delID)).To(BeTrue())
		deleteAndWait(orphan)
		Expect(dfnsUser(orphanID)(Default).IsActive).To(BeTrue())
		Expect(deletedUser(orphanID)).To(BeFalse())
	})

	It("invites again a user deleted in Dfns, or says why it cannot where Dfns keeps the e-mail taken", func() {
		email := emailIn(ns, "gone")
		u := newUser(ns, "gone", email)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		waitReady(u)
		id := u.Status.UserID
		Expect(dashboard.DeleteUser(ctx, id)).To(Succeed())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
			synced := conditionOf(u, v1alpha1.ConditionSynced)(g)
			if u.Status.UserID != id {
				// Dfns forgot the user (404): invited anew, under the same e-mail.
				g.Expect(usersNamed(email)(g)).To(ConsistOf(u.Status.UserID))
				g.Expect(synced).To(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess))
				return
			}
			// Dfns keeps the deleted user listed, inactive, and will not activate it.
			g.Expect(synced).To(And(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec),
				HaveField("Message", ContainSubstring(id))))
		}).Should(Succeed())
		deleteAndWait(u)
	})

	It("finds its invitation again after a lost answer, under a connection that denies adoption", func() {
		conn := "people-" + ns
		clusterConnection(conn, v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{ns}})
		sb.InjectOnce("CreateUser", sandbox.FaultAnswerLost)
		email := emailIn(ns, "lost")
		u := newUser(ns, "lost", email)
		u.Spec.ConnectionRef = via(conn)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		waitReady(u)
		Expect(usersNamed(email)(Default)).To(ConsistOf(u.Status.UserID))
		Expect(hasEvent(u, corev1.EventTypeNormal, driver.EventCreated)() || hasEvent(u, corev1.EventTypeNormal, "AdoptedExisting")()).To(BeTrue())
		deleteAndWait(u)
	})

	It("names approvers of a policy by resource, and waits for them to be Ready", func() {
		p := newPolicy(ns, "treasury", 1000)
		p.Spec.Action.ApprovalGroups[0].Quorum = 1
		p.Spec.Action.ApprovalGroups[0].Approvers = v1alpha1.Approvers{UserID: &v1alpha1.IDFilter{In: []string{approver.UserID}},
			UserRefs: []v1alpha1.UserRef{{Name: "bob"}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())

		By("waiting while the user does not exist")
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonIdentityNotReady), HaveField("Message", ContainSubstring("DfnsUser bob"))))
		Expect(p.Status.PolicyID).To(BeEmpty())

		By("creating the policy once the user is Ready, with its ID among the approvers")
		bob := newUser(ns, "bob", emailIn(ns, "bob"))
		Expect(k8sClient.Create(ctx, bob)).To(Succeed())
		waitReady(bob)
		waitReady(p)
		in := func(g Gomega) any {
			return dfnsPolicy(p.Status.PolicyID)(g).Action.ApprovalGroups[0].Approvers["userId"]
		}
		Expect(in(Default)).To(Equal(map[string]any{"in": []any{approver.UserID, bob.Status.UserID}}))

		By("following a second user added by resource")
		carol := newUser(ns, "carol", emailIn(ns, "carol"))
		Expect(k8sClient.Create(ctx, carol)).To(Succeed())
		waitReady(carol)
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		before := p.DeepCopy()
		p.Spec.Action.ApprovalGroups[0].Approvers.UserRefs = append(p.Spec.Action.ApprovalGroups[0].Approvers.UserRefs, v1alpha1.UserRef{Name: "carol"})
		Expect(k8sClient.Patch(ctx, p, client.MergeFrom(before))).To(Succeed())
		eventually(in).Should(Equal(map[string]any{"in": []any{approver.UserID, bob.Status.UserID, carol.Status.UserID}}))
		waitReady(p)

		By("archiving the policy before its approvers leave")
		policyID := p.Status.PolicyID
		deleteAndWait(p)
		Expect(dfnsPolicy(policyID)(Default).Status).To(Equal("Archived"))
		for _, u := range []*v1alpha1.DfnsUser{bob, carol} {
			deleteAndWait(u)
		}
	})
})

var _ = Describe("Offboarding an approver", func() {
	It("waits while a policy names the user as approver, and goes through once the policy no longer does", func() {
		withStrict(func(s *sandbox.Strictness) { s.ApproverForce = true })
		ns := newNamespace()
		dave := newUser(ns, "dave", emailIn(ns, "dave"))
		Expect(k8sClient.Create(ctx, dave)).To(Succeed())
		waitReady(dave)
		id := dave.Status.UserID
		p := newPolicy(ns, "treasury", 1000)
		p.Spec.Action.ApprovalGroups[0].Quorum = 1
		p.Spec.Action.ApprovalGroups[0].Approvers = v1alpha1.Approvers{UserRefs: []v1alpha1.UserRef{{Name: "dave"}}}
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)

		By("offboarding: Dfns refuses to deactivate an approver, and the operator does not force it")
		patchUser(dave, func(u *v1alpha1.DfnsUser) { u.Spec.Active = ptr.To(false) })
		eventually(conditionOf(dave, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonDeletionRefused), HaveField("Message", ContainSubstring("approvers"))))
		Consistently(func(g Gomega) bool { return dfnsUser(id)(g).IsActive }, 3*syncPeriod, 200*time.Millisecond).Should(BeTrue())

		By("taking dave out of the policy: the deactivation goes through")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		before := p.DeepCopy()
		p.Spec.Action.ApprovalGroups[0].Approvers = v1alpha1.Approvers{UserID: &v1alpha1.IDFilter{In: []string{approver.UserID}}}
		Expect(k8sClient.Patch(ctx, p, client.MergeFrom(before))).To(Succeed())
		eventually(func(g Gomega) bool { return dfnsUser(id)(g).IsActive }).Should(BeFalse())
		waitReady(dave)
		Expect(dave.Status.Active).To(Equal(ptr.To(false)))
		deleteAndWait(p)
		deleteAndWait(dave)
	})
})

var _ = Describe("A tenant's DfnsUser", func() {
	It("cannot take over a person another resource manages, adopt one where adoption is denied, or manage the operator", func() {
		team, tenant := newNamespace(), newNamespace()
		email := emailIn(team, "victim")
		victim := newUser(team, "victim", email)
		Expect(k8sClient.Create(ctx, victim)).To(Succeed())
		waitReady(victim)
		id := victim.Status.UserID
		_, err := sb.RegisterUser(id, nil)
		Expect(err).NotTo(HaveOccurred())
		eventually(userStatus(victim)).Should(HaveField("Registered", ptr.To(true)))

		By("the same e-mail, through the default connection, which allows adoption")
		grab := newUser(tenant, "grab", email)
		grab.Spec.Active = ptr.To(false)
		grab.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
		Expect(k8sClient.Create(ctx, grab)).To(Succeed())
		eventually(conditionOf(grab, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted), HaveField("Message", ContainSubstring("managed by another resource"))))
		Expect(grab.Status.UserID).To(BeEmpty())
		Expect(grab.Status.Registered).To(BeNil(), "nothing of the other resource's user is shown")

		By("claiming the victim's ID with an external-id annotation")
		claim := newUser(tenant, "claim", email)
		claim.Annotations = map[string]string{v1alpha1.AnnotationExternalID: id}
		claim.Spec.Active = ptr.To(false)
		Expect(k8sClient.Create(ctx, claim)).To(Succeed())
		eventually(conditionOf(claim, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted))

		By("a person nobody manages, through a connection that denies adoption")
		conn := "tenant-" + tenant
		clusterConnection(conn, v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{tenant}})
		adopt := newUser(tenant, "adopt", approver.Username)
		adopt.Spec.ConnectionRef = via(conn)
		adopt.Spec.Active = ptr.To(false)
		Expect(k8sClient.Create(ctx, adopt)).To(Succeed())
		refused(adopt, "ClusterDfnsConnection/"+conn, "does not allow adoption (limits.adoption)")

		By("the operator's own user")
		self := newUser(tenant, "self", admin.Username)
		self.Spec.Active = ptr.To(false)
		Expect(k8sClient.Create(ctx, self)).To(Succeed())
		eventually(conditionOf(self, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted), HaveField("Message", ContainSubstring("logs in as"))))
		Expect(self.GetFinalizers()).To(BeEmpty())

		By("the user another connection logs in as, through the default connection, which allows adoption")
		ops, err := sb.CreateUser(emailIn(team, "ops"), true)
		Expect(err).NotTo(HaveOccurred())
		opsConn := "ops-" + team
		credentialsSecret(DefaultOperatorNamespace, opsConn, loginData(sbServer.URL, ops))
		oc := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: opsConn},
			Spec: v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{team}, ConnectionSpec: v1alpha1.ConnectionSpec{
				Credentials: v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: opsConn}}}}}
		Expect(k8sClient.Create(ctx, oc)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, oc))).To(Succeed()) })
		connectionReady(oc, &oc.Status)
		other := newUser(tenant, "other", ops.Username)
		other.Spec.Active = ptr.To(false)
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		eventually(conditionOf(other, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNotPermitted), HaveField("Message", ContainSubstring("logs in as"))))
		Expect(other.Status.UserID).To(BeEmpty())

		By("a connection whose limits.kinds leaves DfnsUser out")
		narrow := "no-people-" + tenant
		clusterConnection(narrow, v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{tenant},
			Limits: &v1alpha1.ConnectionLimits{Kinds: []v1alpha1.ManagedKind{kindServiceAccount, kindPermission}}})
		outsider := newUser(tenant, "outsider", emailIn(tenant, "outsider"))
		outsider.Spec.ConnectionRef = via(narrow)
		Expect(k8sClient.Create(ctx, outsider)).To(Succeed())
		refused(outsider, "ClusterDfnsConnection/"+narrow, "does not allow kind DfnsUser (limits.kinds)")
		Expect(usersNamed(emailIn(tenant, "outsider"))(Default)).To(BeEmpty())

		By("deleting the tenant's resources, each with a policy that would deactivate or delete")
		for _, u := range []*v1alpha1.DfnsUser{grab, claim, adopt, self, other, outsider} {
			deleteAndWait(u)
		}

		By("checking in Dfns that nobody's user changed")
		for _, who := range []string{id, approver.UserID, admin.UserID, ops.UserID} {
			got := dfnsUser(who)(Default)
			Expect(got.IsActive).To(BeTrue(), who)
			Expect(got.IsRegistered).To(BeTrue(), who)
		}
		Expect(usersNamed(email)(Default)).To(ConsistOf(id))
		waitReady(victim)
		deleteAndWait(victim)
	})
})

var _ = Describe("The user sample", func() {
	It("invites alice and assigns her the treasury-approver permission", func() {
		ns := newNamespace()
		b, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "access_v1alpha1_dfnsuser.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var (
			alice *v1alpha1.DfnsUser
			perm  *v1alpha1.DfnsPermission
			grant *v1alpha1.DfnsPermissionAssignment
			objs  []client.Object
		)
		for doc := range strings.SplitSeq(string(b), "\n---\n") {
			var meta metav1.TypeMeta
			Expect(yaml.Unmarshal([]byte(doc), &meta)).To(Succeed())
			var obj client.Object
			switch meta.Kind {
			case kindUser:
				alice = &v1alpha1.DfnsUser{}
				obj = alice
			case kindPermission:
				perm = &v1alpha1.DfnsPermission{}
				obj = perm
			case kindAssignment:
				grant = &v1alpha1.DfnsPermissionAssignment{}
				obj = grant
			}
			Expect(obj).NotTo(BeNil(), "unexpected kind %q", meta.Kind)
			Expect(yaml.UnmarshalStrict([]byte(doc), obj)).To(Succeed())
			obj.SetNamespace(ns)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			objs = append(objs, obj)
		}
		Expect(alice).NotTo(BeNil())
		for _, obj := range objs {
			waitReady(obj.(driver.Object))
		}
		Expect(holders(perm.Status.PermissionID)(Default)).To(ConsistOf(alice.Status.UserID))
		Expect(grant.Status.IdentityID).To(Equal(alice.Status.UserID))
		_, err = sb.RegisterUser(alice.Status.UserID, nil)
		Expect(err).NotTo(HaveOccurred())
		eventually(userStatus(alice)).Should(HaveField("Registered", ptr.To(true)))
		for _, obj := range []client.Object{grant, perm, alice} {
			deleteAndWait(obj)
		}
		Expect(dfnsUser(alice.Status.UserID)(Default).IsActive).To(BeFalse(), "the sample deactivates alice on deletion")
	})
})
