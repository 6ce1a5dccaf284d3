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
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// rotatingConnection makes a Dfns user of its own (a rotation deactivates the credential it
// replaces, so nothing else may sign with it), a Secret in the operator's namespace holding
// its credentials, and a ClusterDfnsConnection reading that Secret which serves ns.
func rotatingConnection(ns string, rotation *v1alpha1.CredentialRotation) (*v1alpha1.ClusterDfnsConnection, *sandbox.UserCredentials) {
	GinkgoHelper()
	name := "rot-" + ns
	u, err := sb.CreateUser(name+"@example.com", true)
	Expect(err).NotTo(HaveOccurred())
	credentialsSecret(DefaultOperatorNamespace, name, loginData(sbServer.URL, u))
	c := clusterConnection(name, v1alpha1.ClusterDfnsConnectionSpec{
		ConnectionSpec: v1alpha1.ConnectionSpec{Credentials: v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: name}},
			CredentialRotation: rotation},
		Namespaces: []string{ns},
	})
	connectionReady(c, &c.Status)
	return c, u
}

// askRotation sets the connection's access.dfns.io/rotate-credential annotation.
func askRotation(c client.Object, value string) {
	GinkgoHelper()
	eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return err
		}
		ann := c.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[v1alpha1.AnnotationRotateCredential] = value
		c.SetAnnotations(ann)
		return k8sClient.Update(ctx, c)
	}).Should(Succeed())
}

// credentialOf reads a ClusterDfnsConnection's credential status and CredentialRotation
// condition.
func credentialOf(c *v1alpha1.ClusterDfnsConnection) func(g Gomega) *v1alpha1.ConnectionCredentialStatus {
	return func(g Gomega) *v1alpha1.ConnectionCredentialStatus {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		return c.Status.Credential
	}
}

// rotationCond reads a ClusterDfnsConnection's CredentialRotation condition.
func rotationCond(c *v1alpha1.ClusterDfnsConnection) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		return meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionCredentialRotation)
	}
}

// rotatedFrom waits until the connection signs with a credential other than from and no
// rotation is under way, and returns that credential.
func rotatedFrom(c *v1alpha1.ClusterDfnsConnection, from string) string {
	GinkgoHelper()
	eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("CredID", Not(Equal(from))), HaveField("Phase", BeEmpty())))
	return c.Status.Credential.CredID
}

// operatorSecret reads a Secret of the operator's namespace.
func operatorSecret(g Gomega, name string) *corev1.Secret {
	var s corev1.Secret
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: DefaultOperatorNamespace, Name: name}, &s)).To(Succeed())
	return &s
}

// credentialStates are a user's credentials in the sandbox, by credId: true when active.
func credentialStates(u *sandbox.UserCredentials) map[string]bool {
	out := map[string]bool{}
	for _, cr := range sb.UserCredentials(u.UserID) {
		out[cr.CredID] = cr.IsActive
	}
	return out
}

// rotationEvents are the rotation events of a connection, by reason, in order.
func rotationEvents(c client.Object) []string {
	var out []string
	for _, e := range capture.eventsFor(c) {
		f := strings.Fields(e)
		if len(f) > 1 && (strings.HasPrefix(f[1], "Credential") || strings.HasPrefix(f[1], "Orphan") || f[1] == v1alpha1.ReasonRotationFailed) {
			out = append(out, f[1])
		}
	}
	return out
}

// inOrder matches a list holding the given elements in that order (others may come between).
func inOrder(want ...string) OmegaMatcher {
	return WithTransform(func(got []string) bool {
		i := 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		return i == len(want)
	}, BeTrue())
}

// denySecretWrites makes the API server refuse updates of Secret name in the operator's
// namespace for which expr (CEL over object and oldObject) holds, until allow is called or
// the spec ends. It returns once the API server enforces it.
func denySecretWrites(name, expr string) (allow func()) {
	GinkgoHelper()
	id := fmt.Sprintf("test-deny-%s-%d", name, time.Now().UnixNano())
	fail := admissionv1.Fail
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: id},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}}}}}},
			MatchConditions: []admissionv1.MatchCondition{{Name: "the-secret",
				Expression: fmt.Sprintf("object.metadata.namespace == %q && object.metadata.name == %q", DefaultOperatorNamespace, name)}},
			Validations: []admissionv1.Validation{
				{Expression: "!(" + expr + ")", Message: "test: this write is refused"},
				{Expression: fmt.Sprintf("!(has(object.metadata.labels) && %q in object.metadata.labels)", probeLabel), Message: "test: probe"},
			},
		}}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: id},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: id,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}}}
	Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	allow = func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, binding))).To(Succeed())
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, policy))).To(Succeed())
	}
	DeferCleanup(allow)
	By("waiting until the API server refuses the writes")
	eventually(func(g Gomega) {
		probe := operatorSecret(g, name)
		if probe.Labels == nil {
			probe.Labels = map[string]string{}
		}
		probe.Labels[probeLabel] = "true"
		g.Expect(k8sClient.Update(ctx, probe, client.DryRunAll)).To(MatchError(ContainSubstring("test: probe")))
	}).Should(Succeed())
	return allow
}

// probeLabel, set in a dry run, tells when a denySecretWrites policy is enforced.
const probeLabel = "test.dfns.io/probe"

// hasKey is CEL: the Secret holds key.
func hasKey(obj, key string) string {
	return fmt.Sprintf("has(%s.data) && %q in %s.data", obj, key, obj)
}

// signsThrough makes a DfnsPermission and a DfnsServiceAccount through the connection and
// waits until both are Ready: the connection's credential signs.
func signsThrough(ns, conn, name string, labels ...string) {
	GinkgoHelper()
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Spec: v1alpha1.DfnsPermissionSpec{ConnectionRef: via(conn), Operations: []v1alpha1.Operation{"Auth:ServiceAccounts:Read"}}}
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	sa := newSA(ns, name, name)
	sa.Labels = l
	sa.Spec.ConnectionRef = via(conn)
	Expect(k8sClient.Create(ctx, sa)).To(Succeed())
	// Deleted while the connection still exists (cleanups run in reverse order).
	DeferCleanup(deleteAndWait, p)
	DeferCleanup(deleteAndWait, sa)
	waitReady(p)
	waitReady(sa)
}

var _ = Describe("Rotating the operator's own credential", func() {
	It("replaces it when asked, with events for each step, and the connection goes on signing", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		By("saying that only the annotation rotates without a schedule")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", v1alpha1.ReasonRotationScheduled), HaveField("Message", ContainSubstring("access.dfns.io/rotate-credential"))))
		Expect(c.Status.Credential.CredID).To(Equal(u.CredID))

		askRotation(c, "1")
		next := rotatedFrom(c, u.CredID)
		Expect(c.Status.Credential).To(And(HaveField("RotateRequest", "1"), HaveField("PreviousCredID", u.CredID),
			HaveField("LastRotatedAt", Not(BeNil())), HaveField("NewCredID", BeEmpty())))
		s := operatorSecret(Default, c.Name)
		Expect(string(s.Data[dfns.FileCredID])).To(Equal(next))
		Expect(s.Data).NotTo(Or(HaveKey(keyNextCredID), HaveKey(keyNextPrivateKey), HaveKey(keyPreviousCredID), HaveKey(keyPreviousPrivateKey)))
		Expect(readRecord(s)).To(And(HaveField("Phase", recordDone), HaveField("NewCredID", next), HaveField("Request", "1")))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
		Expect(sb.UserCredentials(u.UserID)[1].Name).To(HavePrefix("dfns-operator " + DefaultOperatorNamespace + "/" + c.Name + " "))
		Expect(rotationEvents(c)).To(inOrder(eventRotationStarted, eventCredentialCreated, eventCredentialWritten,
			eventCredentialConfirm, eventCredentialRotated))

		By("signing with the new credential")
		signsThrough(ns, c.Name, "after")
		By("not rotating again while the annotation keeps its value")
		Consistently(credentialOf(c)).WithTimeout(2 * time.Second).Should(HaveField("CredID", next))
	})

	It("is scheduled by credentialRotation.every, counted from the credential's creation", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, &v1alpha1.CredentialRotation{Every: metav1.Duration{Duration: 24 * time.Hour}})
		eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("CreatedAt", Not(BeNil())), HaveField("NextRotationAt", Not(BeNil()))))
		first := c.Status.Credential
		Expect(first.NextRotationAt.Sub(first.CreatedAt.Time)).To(Equal(24 * time.Hour))
		Expect(meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionCredentialRotation)).To(And(Not(BeNil()),
			HaveField("Reason", v1alpha1.ReasonRotationScheduled), HaveField("Message", ContainSubstring("next rotation due at"))))

		clock.Advance(25 * time.Hour)
		next := rotatedFrom(c, u.CredID)
		eventually(credentialOf(c)).Should(And(HaveField("CreatedAt.Time", BeTemporally(">", first.NextRotationAt.Time)),
			HaveField("RotateRequest", BeEmpty())))
		Expect(c.Status.Credential.NextRotationAt.Sub(c.Status.Credential.CreatedAt.Time)).To(Equal(24 * time.Hour))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
		Expect(rotationEvents(c)).To(inOrder(eventRotationStarted, eventCredentialRotated))
	})

	It("rotates a DfnsConnection's credential in its namespace's Secret: once when due, whatever Dfns' clock says, and when asked", func() {
		ns := newNamespace()
		u, err := sb2.CreateUser("tenant-"+ns+"@org2.example", true)
		Expect(err).NotTo(HaveOccurred())
		credentialsSecret(ns, "org2", loginData(sb2Server.URL, u))
		// sb2 keeps the real time and the managers' clock runs ahead of it: the credential just made
		// looks two hours old, and so does each one the rotation makes.
		clock.Advance(2 * time.Hour)
		conn := &v1alpha1.DfnsConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "org2"},
			Spec: v1alpha1.DfnsConnectionSpec{ConnectionSpec: v1alpha1.ConnectionSpec{
				Credentials:        v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: "org2"}},
				CredentialRotation: &v1alpha1.CredentialRotation{Every: metav1.Duration{Duration: time.Hour}}}}}
		Expect(k8sClient.Create(ctx, conn)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, conn))).To(Succeed()) })
		connectionReady(conn, &conn.Status)
		credential := func(g Gomega) *v1alpha1.ConnectionCredentialStatus {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(conn.Status.Credential).NotTo(BeNil())
			return conn.Status.Credential
		}
		var scheduled string
		eventually(func(g Gomega) {
			c := credential(g)
			g.Expect(c).To(And(HaveField("CredID", Not(Equal(u.CredID))), HaveField("Phase", BeEmpty()),
				HaveField("NextRotationAt", Not(BeNil()))))
			scheduled = c.CredID
		}).Should(Succeed())
		// Due an hour after that rotation ended, by the manager's clock: not again at once.
		Consistently(func(g Gomega) string { return credential(g).CredID }, 3*time.Second, 200*time.Millisecond).
			Should(Equal(scheduled))

		askRotation(conn, "tenant-1")
		eventually(func(g Gomega) {
			g.Expect(credential(g)).To(And(HaveField("CredID", Not(Equal(scheduled))), HaveField("Phase", BeEmpty()),
				HaveField("RotateRequest", "tenant-1"), HaveField("PreviousCredID", scheduled)))
		}).Should(Succeed())
		next := conn.Status.Credential.CredID
		var s corev1.Secret
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "org2"}, &s)).To(Succeed())
		Expect(string(s.Data[dfns.FileCredID])).To(Equal(next))
		states := map[string]bool{}
		for _, cr := range sb2.UserCredentials(u.UserID) {
			states[cr.CredID] = cr.IsActive
			if cr.CredID != u.CredID {
				Expect(cr.Name).To(HavePrefix("dfns-operator " + ns + "/org2 "))
			}
		}
		Expect(states).To(Equal(map[string]bool{u.CredID: false, scheduled: false, next: true}))
	})

	It("says what it cannot rotate: a token, or mounted credentials whose Secret the manager was not told", func() {
		ns := newNamespace()
		_, pub, err := dfns.GenerateKey(dfns.KeyECDSAP256)
		Expect(err).NotTo(HaveOccurred())
		pat, err := dashboard.CreatePersonalAccessToken(ctx, dfns.CreatePersonalAccessTokenRequest{Name: "token-mode-" + ns, PublicKey: pub})
		Expect(err).NotTo(HaveOccurred())
		c := tokenConnection(ns, map[string][]byte{dfns.FileAPIURL: []byte(sbServer.URL), dfns.FileAuthToken: []byte(pat.Token)})
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonNotRotatable), HaveField("Message", ContainSubstring("token mode: nothing to rotate"))))
		Expect(c.Status.Credential).To(BeNil())

		def := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultConnectionName}}
		eventually(rotationCond(def)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonNotRotatable),
			HaveField("Message", ContainSubstring("--dfns-credentials-secret"))))
		Expect(def.Status.Credential).To(HaveField("CredID", admin.CredID))
	})
})

var _ = Describe("A rotation of the operator's credential interrupted", func() {
	It("changes nothing in Dfns while the new key cannot be saved, and goes on once it can", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		allow := denySecretWrites(c.Name, hasKey("object", keyNextCredID))
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonRotationFailed), HaveField("Message", ContainSubstring("saving the new key"))))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: true}))
		signsThrough(ns, c.Name, "meanwhile")

		allow()
		next := rotatedFrom(c, u.CredID)
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
	})

	It("finds the new credential when the answer to its registration was lost", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		before := sb.Counters()["CreateCredential"]
		sb.InjectOnce("CreateCredential", sandbox.FaultAnswerLost)
		askRotation(c, "1")
		next := rotatedFrom(c, u.CredID)
		Expect(sb.Counters()["CreateCredential"]-before).To(Equal(1), "registered once, found by listing")
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
	})

	It("keeps both credentials active while the new one cannot be written in place, and signs meanwhile", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		allow := denySecretWrites(c.Name, hasKey("object", keyPreviousCredID))
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationFailed),
			HaveField("Message", ContainSubstring("both credentials are active"))))
		Expect(c.Status.Credential).To(And(HaveField("Phase", v1alpha1.CredentialPhaseStaged), HaveField("CredID", u.CredID)))
		staged := c.Status.Credential.NewCredID
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: true, staged: true}))
		s := operatorSecret(Default, c.Name)
		Expect(string(s.Data[dfns.FileCredID])).To(Equal(u.CredID))
		Expect(string(s.Data[keyNextCredID])).To(Equal(staged))
		signsThrough(ns, c.Name, "meanwhile")

		allow()
		Expect(rotatedFrom(c, u.CredID)).To(Equal(staged))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, staged: true}))
	})

	It("waits for a registration Dfns holds for approval, and never sends it again", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		before := sb.Counters()["CreateCredential"]
		sb.InjectOnce("CreateCredential", sandbox.FaultHeld)
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotating),
			HaveField("Message", ContainSubstring("held for approval"))))
		Consistently(func() int { return sb.Counters()["CreateCredential"] - before }, 3*rotationPoll, 200*time.Millisecond).
			Should(Equal(1))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: true}))
		Expect(hasEvent(c, corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval)()).To(BeTrue())
		signsThrough(ns, c.Name, "held")
	})

	It("finishes when Dfns holds the previous credential's deactivation for approval, and never asks for it again", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		askRotation(c, "1")
		first := rotatedFrom(c, u.CredID)
		By("a second rotation, whose previous credential (made by the first) Dfns keeps active pending approval")
		before := sb.Counters()["DeactivateCredential"]
		sb.InjectOnce("DeactivateCredential", sandbox.FaultHeld)
		askRotation(c, "2")
		second := rotatedFrom(c, first)
		Expect(hasEvent(c, corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval)()).To(BeTrue())
		// Neither the end of the rotation nor the later passes, which deactivate what rotations
		// left active, ask again.
		Consistently(func() int { return sb.Counters()["DeactivateCredential"] - before }, 3*rotationPoll, 200*time.Millisecond).
			Should(Equal(1))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, first: true, second: true}))
		signsThrough(ns, c.Name, "held")
	})

	It("retries the deactivation of the previous credential", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		before := sb.Counters()["DeactivateCredential"]
		sb.InjectOnce("DeactivateCredential", sandbox.FaultInternal)
		askRotation(c, "1")
		next := rotatedFrom(c, u.CredID)
		Expect(sb.Counters()["DeactivateCredential"] - before).To(Equal(2))
		Expect(capture.eventsFor(c)).To(ContainElement(And(ContainSubstring(v1alpha1.ReasonRotationFailed),
			ContainSubstring("deactivating the previous credential"))))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
	})

	It("finishes once the deactivated credential can be removed from the Secret", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		allow := denySecretWrites(c.Name, hasKey("oldObject", keyPreviousCredID)+" && !("+hasKey("object", keyPreviousCredID)+")")
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationFailed),
			HaveField("Message", ContainSubstring("removing the deactivated credential"))))
		next := c.Status.Credential.NewCredID
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, next: true}))
		s := operatorSecret(Default, c.Name)
		Expect(string(s.Data[dfns.FileCredID])).To(Equal(next))
		Expect(string(s.Data[keyPreviousCredID])).To(Equal(u.CredID))
		Expect(readRecord(s).Phase).To(Equal(recordConfirmed))
		signsThrough(ns, c.Name, "meanwhile")

		allow()
		Expect(rotatedFrom(c, u.CredID)).To(Equal(next))
		eventually(func(g Gomega) {
			s := operatorSecret(g, c.Name)
			g.Expect(s.Data).NotTo(HaveKey(keyPreviousCredID))
			g.Expect(readRecord(s).Phase).To(Equal(recordDone))
		}).Should(Succeed())
	})

	It("deactivates a registered credential that the Secret no longer holds, then rotates again", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		allow := denySecretWrites(c.Name, hasKey("object", keyPreviousCredID))
		askRotation(c, "1")
		eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("Phase", v1alpha1.CredentialPhaseStaged)))
		orphan := c.Status.Credential.NewCredID
		eventually(func() map[string]bool { return credentialStates(u) }).Should(HaveKeyWithValue(orphan, true))

		By("someone writing the Secret back as it was before the rotation")
		eventually(func(g Gomega) {
			s := operatorSecret(g, c.Name)
			delete(s.Data, keyNextCredID)
			delete(s.Data, keyNextPrivateKey)
			delete(s.Annotations, v1alpha1.AnnotationCredentialRotation)
			g.Expect(k8sClient.Update(ctx, s)).To(Succeed())
		}).Should(Succeed())
		eventually(func() map[string]bool { return credentialStates(u) }).Should(HaveKeyWithValue(orphan, false))
		eventually(hasEvent(c, corev1.EventTypeNormal, eventOrphanDeactivated)).Should(BeTrue())

		allow()
		next := rotatedFrom(c, u.CredID)
		Expect(next).NotTo(Equal(orphan))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, orphan: false, next: true}))
	})

	It("abandons a new credential deactivated in Dfns before it was used", func() {
		ns := newNamespace()
		c, u := rotatingConnection(ns, nil)
		_ = denySecretWrites(c.Name, hasKey("object", keyPreviousCredID))
		askRotation(c, "1")
		eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("Phase", v1alpha1.CredentialPhaseStaged)))
		staged := c.Status.Credential.NewCredID
		eventually(func() map[string]bool { return credentialStates(u) }).Should(HaveKeyWithValue(staged, true))

		By("someone deactivating it in Dfns")
		Expect(newClient(loginCredentials(sbServer.URL, u)).DeactivateCredential(ctx, credentialUUID(u, staged))).To(Succeed())
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationFailed),
			HaveField("Message", ContainSubstring("credential "+staged+" was deactivated in Dfns before it was used"))))
		Expect(hasEvent(c, corev1.EventTypeWarning, eventRotationFailed)()).To(BeTrue())
		Expect(c.Status.Credential).To(And(HaveField("CredID", u.CredID), HaveField("Phase", BeEmpty()), HaveField("RotateRequest", "1")))
		Expect(operatorSecret(Default, c.Name).Data).NotTo(HaveKey(keyNextCredID))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: true, staged: false}))
		signsThrough(ns, c.Name, "after")
	})
})

// credentialUUID finds the credentialUuid of one of the user's credentials.
func credentialUUID(u *sandbox.UserCredentials, credID string) string {
	GinkgoHelper()
	for _, cr := range sb.UserCredentials(u.UserID) {
		if cr.CredID == credID {
			return cr.UUID
		}
	}
	Fail("no credential " + credID)
	return ""
}

// fakeKubelet copies a Secret of the operator's namespace into a directory the way the kubelet
// updates a mounted Secret: a while after it changed, every file at once (a new timestamped
// directory behind the ..data symlink), and not at all while paused.
type fakeKubelet struct {
	dir, secret string
	delay       time.Duration
	paused      atomic.Bool
	// shown, when set, is written into the directory at the next tick, whatever the Secret
	// holds: a stale view, as another node's kubelet may show a replica for a while.
	shown atomic.Pointer[map[string][]byte]
	n     int
}

// write puts data into the directory in one atomic swap of ..data.
func (k *fakeKubelet) write(data map[string][]byte) error {
	k.n++
	ts := fmt.Sprintf("..%d", k.n)
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o700); err != nil {
		return err
	}
	for key, v := range data {
		if err := os.WriteFile(filepath.Join(k.dir, ts, key), v, 0o600); err != nil {
			return err
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		return err
	}
	for key := range data {
		link := filepath.Join(k.dir, key)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
				return err
			}
		}
	}
	if k.n > 1 {
		return os.RemoveAll(filepath.Join(k.dir, fmt.Sprintf("..%d", k.n-1)))
	}
	return nil
}

// run follows the Secret until ctx ends.
func (k *fakeKubelet) run(ctx context.Context, written map[string][]byte) {
	var pending map[string][]byte
	var since time.Time
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if shown := k.shown.Swap(nil); shown != nil {
			if err := k.write(*shown); err != nil {
				_, _ = fmt.Fprintln(GinkgoWriter, "fake kubelet:", err)
			}
			written, pending = *shown, nil
			continue
		}
		var s corev1.Secret
		if k8sClient.Get(ctx, client.ObjectKey{Namespace: DefaultOperatorNamespace, Name: k.secret}, &s) != nil {
			continue
		}
		if reflect.DeepEqual(s.Data, written) {
			pending = nil
			continue
		}
		if !reflect.DeepEqual(s.Data, pending) {
			pending, since = s.Data, time.Now()
		}
		if k.paused.Load() || time.Since(since) < k.delay {
			continue
		}
		if err := k.write(pending); err != nil {
			_, _ = fmt.Fprintln(GinkgoWriter, "fake kubelet:", err)
			continue
		}
		written = pending
	}
}

var _ = Describe("Rotating the manager's mounted credentials", func() {
	It("waits for the kubelet to update the mounted files, and rolls back what does not work", func() {
		ns := newNamespace()
		name := "mounted-" + ns
		u, err := sb.CreateUser(name+"@example.com", true)
		Expect(err).NotTo(HaveOccurred())
		data := loginData(sbServer.URL, u)
		credentialsSecret(DefaultOperatorNamespace, name, data)
		k := &fakeKubelet{dir: GinkgoT().TempDir(), secret: name, delay: 3 * time.Second}
		Expect(k.write(data)).To(Succeed())
		kctx, stopKubelet := context.WithCancel(ctx)
		DeferCleanup(stopKubelet)
		go k.run(kctx, data)

		stop := startManager(dfns.NewFileCredentials(k.dir), mountedMode, func(o *Options) {
			o.MountedSecret = name
			o.CredentialConfirmTimeout = 8 * time.Second
		})
		DeferCleanup(stop)
		c := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{testModeLabel: mountedMode}},
			Spec: v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{ns},
				ConnectionSpec: v1alpha1.ConnectionSpec{Credentials: v1alpha1.ConnectionCredentials{Mounted: &v1alpha1.MountedCredentials{}}}}}
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, c))).To(Succeed()) })
		connectionReady(c, &c.Status)
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationScheduled)))

		By("rotating: the manager goes on with the previous credential until the files change")
		askRotation(c, "1")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotating),
			HaveField("Message", ContainSubstring("waiting for the manager to read"))))
		Expect(c.Status.Credential).To(And(HaveField("Phase", v1alpha1.CredentialPhaseWritten), HaveField("CredID", u.CredID)))
		first := rotatedFrom(c, u.CredID)
		Expect(os.ReadFile(filepath.Join(k.dir, dfns.FileCredID))).To(BeEquivalentTo(first))
		Expect(credentialStates(u)).To(Equal(map[string]bool{u.CredID: false, first: true}))
		signsThrough(ns, c.Name, "after", testModeLabel, mountedMode)

		By("rolling back a new credential that Dfns refuses once the files hold it")
		k.paused.Store(true)
		askRotation(c, "2")
		eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("Phase", v1alpha1.CredentialPhaseWritten)))
		refused := c.Status.Credential.NewCredID
		s := operatorSecret(Default, name)
		Expect(newClient(dfns.Credentials{APIURL: sbServer.URL, OrgID: u.OrgID, Username: u.Username, CredID: first,
			PrivateKeyPEM: s.Data[keyPreviousPrivateKey]}).DeactivateCredential(ctx, credentialUUID(u, refused))).To(Succeed())
		k.paused.Store(false)
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationFailed),
			HaveField("Message", ContainSubstring("credential "+refused+" does not log in"))))
		eventually(credentialOf(c)).Should(And(HaveField("CredID", first), HaveField("RotateRequest", "2")))
		connectionReady(c, &c.Status)
		Expect(string(operatorSecret(Default, name).Data[dfns.FileCredID])).To(Equal(first))
		Expect(hasEvent(c, corev1.EventTypeWarning, eventRotationRolledBack)()).To(BeTrue())

		By("rolling back when the files do not change in time, and deactivating the credential left over")
		k.paused.Store(true)
		askRotation(c, "3")
		eventually(credentialOf(c)).Should(And(Not(BeNil()), HaveField("Phase", v1alpha1.CredentialPhaseWritten)))
		unread := c.Status.Credential.NewCredID
		Eventually(rotationCond(c)).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(And(Not(BeNil()),
			HaveField("Message", ContainSubstring("the manager still signs with "+first))))
		Expect(readRecord(operatorSecret(Default, name))).To(And(HaveField("Phase", recordRolledBack), HaveField("NewCredID", unread)))
		k.paused.Store(false)
		eventually(func() map[string]bool { return credentialStates(u) }).Should(Equal(
			map[string]bool{u.CredID: false, first: true, refused: false, unread: false}))
		eventually(hasEvent(c, corev1.EventTypeNormal, eventOrphanDeactivated)).Should(BeTrue())
		connectionReady(c, &c.Status)
		signsThrough(ns, c.Name, "still", testModeLabel, mountedMode)

		By("never going back once the new credential is confirmed, though the files show the previous one again")
		record := func(obj string) string {
			return fmt.Sprintf("(has(%s.metadata.annotations) && %q in %s.metadata.annotations ? %s.metadata.annotations[%q] : '')",
				obj, v1alpha1.AnnotationCredentialRotation, obj, obj, v1alpha1.AnnotationCredentialRotation)
		}
		allow := denySecretWrites(name, record("oldObject")+`.contains('"phase":"Confirmed"') && `+
			record("object")+`.contains('"phase":"Done"')`)
		askRotation(c, "4")
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Reason", v1alpha1.ReasonRotationFailed),
			HaveField("Message", ContainSubstring("removing the deactivated credential"))))
		confirmed := c.Status.Credential.NewCredID
		s = operatorSecret(Default, name)
		Expect(readRecord(s).Phase).To(Equal(recordConfirmed))
		Expect(credentialStates(u)).To(And(HaveKeyWithValue(first, false), HaveKeyWithValue(confirmed, true)))
		k.paused.Store(true)
		stale := maps.Clone(s.Data)
		stale[dfns.FileCredID], stale[dfns.FilePrivateKey] = s.Data[keyPreviousCredID], s.Data[keyPreviousPrivateKey]
		k.shown.Store(&stale)
		clock.Advance(10 * time.Second) // past the confirmation's time limit
		eventually(rotationCond(c)).Should(And(Not(BeNil()), HaveField("Message", ContainSubstring("not rolled back"))))
		s = operatorSecret(Default, name)
		Expect(string(s.Data[dfns.FileCredID])).To(Equal(confirmed))
		Expect(readRecord(s).Phase).To(Equal(recordConfirmed))

		allow()
		k.paused.Store(false)
		eventually(func(g Gomega) {
			s := operatorSecret(g, name)
			g.Expect(readRecord(s).Phase).To(Equal(recordDone))
			g.Expect(string(s.Data[dfns.FileCredID])).To(Equal(confirmed))
		}).Should(Succeed())
		connectionReady(c, &c.Status)
		signsThrough(ns, c.Name, "confirmed", testModeLabel, mountedMode)
	})
})
