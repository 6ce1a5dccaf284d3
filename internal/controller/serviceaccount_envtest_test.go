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

	"strings"

	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// readyPermission makes a DfnsPermission and waits until it is Ready.
func readyPermission(ns, name string, ops ...v1alpha1.Operation) *v1alpha1.DfnsPermission {
	GinkgoHelper()
	p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsPermissionSpec{Operations: ops}}
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	waitReady(p)
	return p
}

// newSA builds a DfnsServiceAccount referencing a DfnsPermission by name.
func newSA(ns, name, perm string) *v1alpha1.DfnsServiceAccount {
	return &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{Name: perm}}}
}

// saSecret reads the Secret of a DfnsServiceAccount.
func saSecret(sa *v1alpha1.DfnsServiceAccount) (*corev1.Secret, error) {
	var s corev1.Secret
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: sa.Namespace, Name: sa.SecretName()}, &s)
	return &s, err
}

// tokenClient is a dfns.Client in token mode built from a Secret, as an app would use it.
func tokenClient(s *corev1.Secret) dfns.API {
	return newClient(dfns.Credentials{APIURL: string(s.Data[KeyAPIURL]), OrgID: string(s.Data[KeyOrgID]),
		AuthToken: string(s.Data[KeyAuthToken]), CredID: string(s.Data[KeyCredID]), PrivateKeyPEM: s.Data[KeyPrivateKey]})
}

// activeNamed lists the active service accounts with a name in the sandbox.
func activeNamed(name string) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListServiceAccounts(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, sa := range all {
			if (sa.UserInfo.Name == name || strings.HasPrefix(sa.UserInfo.Name, name+".")) && sa.UserInfo.IsActive {
				ids = append(ids, sa.UserInfo.UserID)
			}
		}
		return ids
	}
}

// deletedSA reports whether service account id was deleted in Dfns: it answers 404, or, where
// Dfns keeps a deleted account listed (the strict sandbox's "archive"), it shows it inactive
// and refuses to activate it (a probe that changes nothing of a merely deactivated account
// the test then finds active again, which fails it).
func deletedSA(id string) bool {
	got, err := dashboard.GetServiceAccount(ctx, id)
	if dfns.IsNotFound(err) {
		return true
	}
	if err != nil || got.UserInfo.IsActive {
		return false
	}
	_, err = dashboard.ActivateServiceAccount(ctx, id)
	return dfns.IsBadRequest(err)
}

// statusID reads status.serviceAccountId.
func statusID(sa *v1alpha1.DfnsServiceAccount) func(g Gomega) string {
	return func(g Gomega) string {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
		return sa.Status.ServiceAccountID
	}
}

// hasEvent matches a captured event by type and reason.
func hasEvent(obj client.Object, typ, reason string) func() bool {
	return func() bool {
		return slices.ContainsFunc(capture.eventsFor(obj), func(e string) bool {
			var t, r string
			_, _ = fmt.Sscanf(e, "%s %s", &t, &r)
			return t == typ && r == reason
		})
	}
}

var _ = Describe("DfnsServiceAccount", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		readyPermission(ns, "payments", "Permissions:Read", "Permissions:Create")
	})

	It("creates the service account and writes a Secret an app can sign requests with", func() {
		sa := newSA(ns, "payments-api", "payments")
		sa.Spec.SecretName = "payments-api-dfns"
		sa.Spec.SecretTemplate = v1alpha1.SecretTemplate{Labels: map[string]v1alpha1.LabelValue{"team": "a"}, Annotations: map[string]string{"note": "x"}}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)

		Expect(sa.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(sa.Status.ServiceAccountID))
		Expect(sa.Annotations).NotTo(HaveKey(v1alpha1.AnnotationCreatePending))
		Expect(sa.Status.ServiceAccountID).To(HavePrefix("us-"))
		Expect(sa.Status.TokenID).To(HavePrefix("to-"))
		Expect(sa.Status.ExpiresAt).NotTo(BeNil())
		Expect(sa.Status.SecretName).To(Equal("payments-api-dfns"))
		Expect(sa.Status.SecretFingerprint).To(HaveLen(64))
		Expect(sa.Status.ObservedGeneration).To(Equal(sa.Generation))

		s, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(HaveKeyWithValue(KeyAPIURL, []byte(sbServer.URL)))
		Expect(s.Data).To(HaveKeyWithValue(KeyOrgID, []byte(sb.OrgID())))
		Expect(s.Data).To(HaveKey(KeyAuthToken))
		Expect(s.Data).To(HaveKey(KeyCredID))
		Expect(string(s.Data[KeyPrivateKey])).To(HavePrefix("-----BEGIN"))
		Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
		Expect(s.Labels).To(HaveKeyWithValue("team", "a"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "x"))
		Expect(metav1.IsControlledBy(s, sa)).To(BeTrue())

		got, err := dashboard.GetServiceAccount(ctx, sa.Status.ServiceAccountID)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.UserInfo.Name).To(HavePrefix(ns + "/payments-api."))
		Expect(got.UserInfo.Name).To(Equal(sa.Status.DfnsName))
		Expect(got.UserInfo.PermissionAssignments).To(ContainElement(HaveField("PermissionName", ns+"/payments")))

		By("signing a request as the service account with its Secret")
		app := tokenClient(s)
		created, err := app.CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/made-by-app", Operations: []string{tOpRead}})
		Expect(err).NotTo(HaveOccurred())
		Expect(created.ID).To(HavePrefix("pm-"))
		Expect(hasEvent(sa, corev1.EventTypeNormal, driver.EventCreated)()).To(BeTrue())
		eventually(func(g Gomega) []string {
			var list eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var reasons []string
			for _, e := range list.Items {
				if e.Regarding.Name == sa.Name {
					reasons = append(reasons, e.Reason)
				}
			}
			return reasons
		}).Should(ContainElement(driver.EventCreated))
	})

	It("recovers from a create whose answer was lost, leaving exactly one active service account", func() {
		sb.InjectOnce("CreateServiceAccount", sandbox.FaultAnswerLost)
		sa := newSA(ns, "lost", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		Expect(activeNamed(ns + "/lost")(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
		Expect(hasEvent(sa, corev1.EventTypeNormal, driver.EventOrphanDeleted)()).To(BeTrue())
		s, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	It("recovers when the answer to the create replacing an account deleted in Dfns is lost", func() {
		sa := newSA(ns, "lost-again", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		id := sa.Status.ServiceAccountID
		sb.InjectOnce("CreateServiceAccount", sandbox.FaultAnswerLost)
		Expect(dashboard.DeleteServiceAccount(ctx, id)).To(Succeed())
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventOrphanDeleted)).Should(BeTrue())
		eventually(statusID(sa)).ShouldNot(Equal(id))
		waitReady(sa)
		eventually(activeNamed(ns + "/lost-again")).Should(ConsistOf(sa.Status.ServiceAccountID))
		s, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	It("deletes the orphan of a reconciler stopped between the create and the Secret write", func() {
		_, pub, err := dfns.GenerateKey(dfns.KeyECDSAP256)
		Expect(err).NotTo(HaveOccurred())
		orphan, err := dashboard.CreateServiceAccount(ctx, dfns.CreateServiceAccountRequest{Name: ns + "/stopped.abc123", PublicKey: pub})
		Expect(err).NotTo(HaveOccurred())
		// The resource waits for its permission, so that the test can give it the mark the
		// operator sets before its create (signed, naming the account it made, bound to the UID).
		sa := newSA(ns, "stopped", "stopped-perm")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		eventually(conditionOf(sa, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonPermissionNotReady))
		sa.Annotations = map[string]string{v1alpha1.AnnotationCreatePending: operatorMark(sa, kindServiceAccount, ns+"/stopped.abc123")}
		Expect(k8sClient.Update(ctx, sa)).To(Succeed())
		readyPermission(ns, "stopped-perm", tOpRead)
		waitReady(sa)
		Expect(sa.Status.ServiceAccountID).NotTo(Equal(orphan.UserInfo.UserID))
		Expect(deletedSA(orphan.UserInfo.UserID)).To(BeTrue())
		Expect(activeNamed(ns + "/stopped")(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
		Expect(hasEvent(sa, corev1.EventTypeNormal, driver.EventOrphanDeleted)()).To(BeTrue())
	})

	It("mints under a name of its own beside an account someone made with its base name", func() {
		_, pub, err := dfns.GenerateKey(dfns.KeyEd25519)
		Expect(err).NotTo(HaveOccurred())
		theirs, err := dashboard.CreateServiceAccount(ctx, dfns.CreateServiceAccountRequest{Name: ns + "/taken", PublicKey: pub})
		Expect(err).NotTo(HaveOccurred())
		sa := newSA(ns, "taken", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		Expect(sa.Status.DfnsName).To(HavePrefix(ns + "/taken."))
		Consistently(activeNamed(ns + "/taken")).WithTimeout(3 * syncPeriod).Should(ConsistOf(theirs.UserInfo.UserID, sa.Status.ServiceAccountID))
	})

	It("never touches a Secret it does not own", func() {
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conflict"}, Data: map[string][]byte{"keep": []byte("me")}}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		sa := newSA(ns, "conflict", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		eventually(conditionOf(sa, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonSecretConflict))
		Expect(hasEvent(sa, corev1.EventTypeWarning, v1alpha1.ReasonSecretConflict)()).To(BeTrue())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(foreign), foreign)).To(Succeed())
		Expect(foreign.Data).To(Equal(map[string][]byte{"keep": []byte("me")}))
		Expect(foreign.OwnerReferences).To(BeEmpty())
		Expect(activeNamed(ns + "/conflict")(Default)).To(BeEmpty())
	})

	It("repairs drift in Dfns and in its Secret", func() {
		sa := newSA(ns, "drift", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		id := sa.Status.ServiceAccountID

		By("reactivating a service account deactivated in Dfns")
		_, err := dashboard.DeactivateServiceAccount(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		eventually(activeNamed(ns + "/drift")).Should(ConsistOf(id))
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventReactivated)).Should(BeTrue())

		By("renaming back a service account renamed in Dfns")
		_, err = dashboard.UpdateServiceAccount(ctx, id, dfns.UpdateServiceAccountRequest{Name: ns + "/renamed"})
		Expect(err).NotTo(HaveOccurred())
		eventually(activeNamed(ns + "/drift")).Should(ConsistOf(id))

		By("deactivating it when spec.active is false")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
		sa.Spec.Active = new(bool)
		Expect(k8sClient.Update(ctx, sa)).To(Succeed())
		eventually(activeNamed(ns + "/drift")).Should(BeEmpty())
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventDeactivated)).Should(BeTrue())
		waitReady(sa)
		yes := true
		sa.Spec.Active = &yes
		Expect(k8sClient.Update(ctx, sa)).To(Succeed())
		eventually(activeNamed(ns + "/drift")).Should(ConsistOf(id))

		By("creating a new one and replacing the Secret when it is deleted in Dfns")
		old, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(dashboard.DeleteServiceAccount(ctx, id)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(id))
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventRecreated)).Should(BeTrue())
		waitReady(sa)
		id2 := sa.Status.ServiceAccountID
		renewed, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(renewed.Data[KeyAuthToken]).NotTo(Equal(old.Data[KeyAuthToken]))
		_, err = tokenClient(renewed).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())

		By("minting a new one when the Secret is deleted, and retiring the previous after its grace period")
		Expect(k8sClient.Delete(ctx, renewed)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(id2))
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventReminted)).Should(BeTrue())
		waitReady(sa)
		id3 := sa.Status.ServiceAccountID
		Expect(activeNamed(ns+"/drift")(Default)).To(ConsistOf(id2, id3), "the previous token may still run in pods")
		clock.Advance(v1alpha1.DefaultGracePeriod + time.Minute)
		eventually(func() bool { return deletedSA(id2) }).Should(BeTrue())

		By("minting a new one when the token in the Secret is changed")
		var s *corev1.Secret
		eventually(func() error { s, err = saSecret(sa); return err }).Should(Succeed())
		s.Data[KeyAuthToken] = []byte("edited-token-5b2f8a")
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(id3))
		waitReady(sa)
		clock.Advance(v1alpha1.DefaultGracePeriod + time.Minute)
		eventually(activeNamed(ns + "/drift")).Should(ConsistOf(sa.Status.ServiceAccountID))
		s, err = saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	It("waits for its DfnsPermission to be Ready, then creates the service account", func() {
		sa := newSA(ns, "waiting", "later")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		eventually(conditionOf(sa, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonPermissionNotReady),
			HaveField("Message", ContainSubstring("later"))))
		Expect(activeNamed(ns + "/waiting")(Default)).To(BeEmpty())
		readyPermission(ns, "later", tOpRead)
		waitReady(sa)
	})

	It("uses a permission given by ID", func() {
		p := &v1alpha1.DfnsPermission{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payments"}, p)).To(Succeed())
		sa := newSA(ns, "by-id", "")
		sa.Spec.PermissionRef = v1alpha1.PermissionRef{ID: p.Status.PermissionID}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
	})

	DescribeTable("handles deletion per deletionPolicy",
		func(policy v1alpha1.DeletionPolicy, goneFirst bool, check func(id string)) {
			sa := newSA(ns, "del", "payments")
			sa.Spec.DeletionPolicy = policy
			Expect(k8sClient.Create(ctx, sa)).To(Succeed())
			waitReady(sa)
			id := sa.Status.ServiceAccountID
			if goneFirst {
				Expect(dashboard.DeleteServiceAccount(ctx, id)).To(Succeed())
			}
			deleteAndWait(sa)
			check(id)
		},
		Entry("Delete removes it", v1alpha1.DeletionPolicyDelete, false, func(id string) { Expect(deletedSA(id)).To(BeTrue()) }),
		Entry("Deactivate keeps it inactive", v1alpha1.DeletionPolicyDeactivate, false, func(id string) {
			got, err := dashboard.GetServiceAccount(ctx, id)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.UserInfo.IsActive).To(BeFalse())
			Expect(deletedSA(id)).To(BeFalse(), "deactivated, not deleted")
		}),
		Entry("Orphan leaves it active", v1alpha1.DeletionPolicyOrphan, false, func(id string) {
			got, err := dashboard.GetServiceAccount(ctx, id)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.UserInfo.IsActive).To(BeTrue())
		}),
		Entry("one already gone in Dfns does not block", v1alpha1.DeletionPolicyDelete, true, func(id string) { Expect(deletedSA(id)).To(BeTrue()) }),
	)
})

var _ = Describe("DfnsServiceAccount and the API server's rules for its Secret", func() {
	It("mints nothing while the API server refuses its Secret, and says why", func() {
		ns := newNamespace()
		readyPermission(ns, "payments", tOpRead)
		// An admission policy that refuses every Secret of the namespace, as a quota or a
		// cluster's own policy might.
		policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-secrets-" + ns},
			Spec: admissionv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionv1.Fail),
				MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
						Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
					}}}},
				Validations: []admissionv1.Validation{{Expression: "object.metadata.namespace != '" + ns + "'", Message: "no Secrets in this namespace"}},
			}}
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
			Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
				ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}}}
		Expect(k8sClient.Create(ctx, binding)).To(Succeed())
		eventually(func() error {
			probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}}
			return k8sClient.Create(ctx, probe, client.DryRunAll)
		}).Should(HaveOccurred(), "the policy is in force")
		before := sb.Counters()["CreateServiceAccount"]
		sa := newSA(ns, "quota", "payments")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		eventually(conditionOf(sa, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonSecretConflict),
			HaveField("Message", ContainSubstring("no Secrets in this namespace"))))
		Consistently(activeNamed(ns + "/quota")).WithTimeout(3 * syncPeriod).Should(BeEmpty())
		Expect(sb.Counters()["CreateServiceAccount"]).To(Equal(before))

		By("minting at the next sync once the Secret is allowed")
		Expect(k8sClient.Delete(ctx, binding)).To(Succeed())
		Expect(k8sClient.Delete(ctx, policy)).To(Succeed())
		waitReady(sa)
		Expect(activeNamed(ns + "/quota")(Default)).To(ConsistOf(sa.Status.ServiceAccountID))
	})

	It("keeps the Secret of an account it orphans, so the token stays usable", func() {
		ns := newNamespace()
		readyPermission(ns, "payments", "Permissions:Read")
		sa := newSA(ns, "kept", "payments")
		sa.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		deleteAndWait(sa)
		s, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.OwnerReferences).To(BeEmpty())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
	})
})
