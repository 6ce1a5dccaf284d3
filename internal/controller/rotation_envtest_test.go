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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newDeployment makes a Deployment whose pods would read the Secret (envtest runs no pods).
func newDeployment(ns, name, secret string) *appsv1.Deployment {
	GinkgoHelper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app",
					EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}}}}
	Expect(k8sClient.Create(ctx, d)).To(Succeed())
	return d
}

// tokenWorks reports whether Dfns accepts the token in a Secret.
func tokenWorks(s *corev1.Secret) error {
	_, err := tokenClient(s).Check(ctx)
	return err
}

var _ = Describe("Rotation", func() {
	It("renews a service account before expiry, keeps the previous one for the grace period, and restarts its consumers once", func() {
		ns := newNamespace()
		readyPermission(ns, "wallets", tOpRead)
		readyPermission(ns, "keys", tOpKeys)
		app := newDeployment(ns, "app", "api")
		sa := newSA(ns, "api", "wallets")
		sa.Spec.DaysValid = ptrTo[int32](1)
		sa.Spec.Rotation = &v1alpha1.Rotation{GracePeriod: &metav1.Duration{Duration: time.Hour}}
		sa.Spec.RolloutRestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "app"}, {Kind: "StatefulSet", Name: "gone"}}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		grant := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant"},
			Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "keys"},
				IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: "api"}}}
		Expect(k8sClient.Create(ctx, grant)).To(Succeed())
		waitReady(grant)
		first := sa.Status.ServiceAccountID
		old, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Status.ExpiresAt).NotTo(BeNil())
		Expect(sa.Status.RenewAt).NotTo(BeNil())
		Expect(sa.Status.ExpiresAt.Sub(sa.Status.RenewAt.Time)).To(BeNumerically("~", 8*time.Hour, time.Minute),
			"renewal a third of the lifetime before expiry")

		By("moving the clock past the renewal time")
		clock.Advance(17 * time.Hour)
		eventually(statusID(sa)).ShouldNot(Equal(first))
		second := sa.Status.ServiceAccountID
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
			g.Expect(sa.Status.Previous).To(HaveLen(1))
		}).Should(Succeed())
		Expect(sa.Status.Previous[0].ID).To(Equal(first))
		Expect(sa.Status.Previous[0].RetireAt.Sub(clock.Now())).To(BeNumerically("~", time.Hour, time.Minute))
		current, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(current.Data[KeyAuthToken]).NotTo(Equal(old.Data[KeyAuthToken]))
		Expect(tokenWorks(current)).To(Succeed())
		Expect(tokenWorks(old)).To(Succeed(), "the previous token works during the grace period")
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventRotated)).Should(BeTrue())
		eventually(hasEvent(sa, corev1.EventTypeWarning, driver.EventRestartTargetMissing)).Should(BeTrue())

		By("restarting the Deployment once, for the new Secret")
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(app), app)).To(Succeed())
			g.Expect(app.Spec.Template.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationRestartedFor, sa.Status.SecretFingerprint))
		}).Should(Succeed())
		Expect(app.Spec.Template.Annotations).To(HaveKey(v1alpha1.AnnotationRestartedAt))
		Consistently(func() int64 {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(app), app)).To(Succeed())
			return app.Generation
		}).WithTimeout(3*time.Second).Should(Equal(int64(2)), "one template change per rotation")

		By("assigning the new identity, and keeping the previous one's assignment for the grace period")
		eventually(func(g Gomega) []string {
			all, err := dashboard.ListAssignments(ctx, grantPermission(g, grant))
			g.Expect(err).NotTo(HaveOccurred())
			ids := make([]string, 0, len(all))
			for _, a := range all {
				ids = append(ids, a.IdentityID)
			}
			return ids
		}).Should(ConsistOf(first, second))

		By("retiring the previous identity once the grace period is over")
		clock.Advance(61 * time.Minute)
		eventually(func() bool { return deletedSA(first) }).Should(BeTrue())
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventRetired)).Should(BeTrue())
		eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
			g.Expect(sa.Status.Previous).To(BeEmpty())
			g.Expect(sa.GetAnnotations()).NotTo(HaveKey(v1alpha1.AnnotationPrevious))
		}).Should(Succeed())
		Expect(tokenWorks(old)).To(MatchError(dfns.ErrCredentials))
		Expect(tokenWorks(current)).To(Succeed())
		Expect(activeNamed(ns+"/api")(Default)).To(ConsistOf(second), "exactly one identity of the resource stays active")
	})

	It("rotates on request, replaces a lost Secret without deleting the identity first, and reports Expired", func() {
		ns := newNamespace()
		readyPermission(ns, "wallets", tOpRead)
		sa := newSA(ns, "api", "wallets")
		sa.Spec.DaysValid = ptrTo[int32](1)
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		first := sa.Status.ServiceAccountID

		By("changing access.dfns.io/rotate")
		patch := client.MergeFrom(sa.DeepCopy())
		driver.SetAnnotation(sa, v1alpha1.AnnotationRotate, "2026-11-30")
		Expect(k8sClient.Patch(ctx, sa, patch)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(first))
		second := sa.Status.ServiceAccountID
		Expect(sa.Status.RotateRequest).To(Equal("2026-11-30"))
		Consistently(statusID(sa)).WithTimeout(2*time.Second).Should(Equal(second), "one request, one rotation")
		Expect(activeNamed(ns+"/api")(Default)).To(ConsistOf(first, second), "the previous one is kept for its grace period")

		By("deleting the Secret: a new identity, the previous kept")
		old, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(second))
		Expect(activeNamed(ns+"/api")(Default)).To(ContainElement(second), "never delete-then-mint")

		By("a token expired while no successor can be minted")
		Expect(k8sClient.Delete(ctx, &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wallets"}})).To(Succeed())
		eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "wallets"}, &v1alpha1.DfnsPermission{})
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
		clock.Advance(25 * time.Hour)
		eventually(conditionOf(sa, v1alpha1.ConditionReady)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonExpired))
		deleteAndWait(sa)
		Expect(activeNamed(ns+"/api")(Default)).To(BeEmpty(), "deleting the resource retires the previous identities too")
	})

	It("rotates a webhook on request: a new one, the Secret updated, the previous deleted after the grace period", func() {
		ns := newNamespace()
		r := newReceiver()
		w := newWebhook(ns, "hook", r)
		w.Spec.Rotation = &v1alpha1.Rotation{GracePeriod: &metav1.Duration{Duration: 10 * time.Minute}}
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		waitReady(w)
		first := w.Status.WebhookID
		patch := client.MergeFrom(w.DeepCopy())
		driver.SetAnnotation(w, v1alpha1.AnnotationRotate, "1")
		Expect(k8sClient.Patch(ctx, w, patch)).To(Succeed())
		eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
			return w.Status.WebhookID
		}).ShouldNot(Equal(first))
		Expect(markedWebhooks(w)(Default)).To(ConsistOf(first, w.Status.WebhookID))
		clock.Advance(11 * time.Minute)
		eventually(markedWebhooks(w)).Should(ConsistOf(w.Status.WebhookID))
	})
})

// grantPermission is the permission ID an assignment resolved.
func grantPermission(g Gomega, a *v1alpha1.DfnsPermissionAssignment) string {
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
	return a.Status.PermissionID
}

// ptrTo is a pointer to v.
func ptrTo[V any](v V) *V { return &v }

var _ = Describe("An interrupted rotation", func() {
	It("resumes after a lost create answer: the orphan is deleted, a new identity minted, the previous kept for its grace period", func() {
		ns := newNamespace()
		readyPermission(ns, "wallets", tOpRead)
		sa := newSA(ns, "api", "wallets")
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		waitReady(sa)
		first := sa.Status.ServiceAccountID
		old, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())

		By("losing the answer to the rotation's create")
		sb.InjectOnce("CreateServiceAccount", sandbox.FaultAnswerLost)
		patch := client.MergeFrom(sa.DeepCopy())
		driver.SetAnnotation(sa, v1alpha1.AnnotationRotate, "lost")
		Expect(k8sClient.Patch(ctx, sa, patch)).To(Succeed())
		eventually(statusID(sa)).ShouldNot(Equal(first))
		second := sa.Status.ServiceAccountID
		eventually(hasEvent(sa, corev1.EventTypeNormal, driver.EventOrphanDeleted)).Should(BeTrue())
		Expect(activeNamed(ns+"/api")(Default)).To(ConsistOf(first, second), "the orphan is gone, the previous kept")
		current, err := saSecret(sa)
		Expect(err).NotTo(HaveOccurred())
		Expect(tokenWorks(current)).To(Succeed())
		Expect(tokenWorks(old)).To(Succeed(), "the Secret never held a token that did not work")
		Expect(sa.Status.Previous).To(ConsistOf(HaveField("ID", first)))
	})
})
