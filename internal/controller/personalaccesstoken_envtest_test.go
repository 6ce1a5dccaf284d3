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

	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newPAT is a DfnsPersonalAccessToken referencing a DfnsPermission by name.
func newPAT(ns, name, perm string) *v1alpha1.DfnsPersonalAccessToken {
	return &v1alpha1.DfnsPersonalAccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsPersonalAccessTokenSpec{PermissionRef: v1alpha1.PermissionRef{Name: perm}}}
}

// secretOf reads the Secret named in a resource's status.
func secretOf(ns, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	return &s, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s)
}

// activePATs lists the IDs of the operator user's active PATs with a name.
func activePATs(name string) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListPersonalAccessTokens(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, t := range all {
			if (t.Name == name || strings.HasPrefix(t.Name, name+".")) && t.IsActive {
				ids = append(ids, t.TokenID)
			}
		}
		return ids
	}
}

// deletedPAT is deletedSA for a personal access token.
func deletedPAT(id string) bool {
	got, err := dashboard.GetPersonalAccessToken(ctx, id)
	if dfns.IsNotFound(err) {
		return true
	}
	if err != nil || got.IsActive {
		return false
	}
	_, err = dashboard.ActivatePersonalAccessToken(ctx, id)
	return dfns.IsBadRequest(err)
}

// patID reads status.tokenId.
func patID(p *v1alpha1.DfnsPersonalAccessToken) func(g Gomega) string {
	return func(g Gomega) string {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		return p.Status.TokenID
	}
}

var _ = Describe("DfnsPersonalAccessToken", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		readyPermission(ns, "ci", "Permissions:Read")
	})

	It("creates the token and writes a Secret an app can sign requests with", func() {
		p := newPAT(ns, "ci", "ci")
		p.Spec.SecretName = "ci-dfns"
		days := int32(30)
		p.Spec.DaysValid = &days
		p.Spec.KeyAlgorithm = "Ed25519"
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)

		Expect(p.Status.TokenID).To(HavePrefix("to-"))
		Expect(p.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(p.Status.TokenID))
		Expect(p.Status.ExpiresAt).NotTo(BeNil())
		Expect(p.Status.ExpiresAt.Time).To(BeTemporally("~", clock.Now().AddDate(0, 0, 30), time.Minute), "the sandbox's clock, which rotation specs move")
		Expect(p.Status.SecretName).To(Equal("ci-dfns"))
		Expect(activePATs(ns + "/ci")(Default)).To(ConsistOf(p.Status.TokenID))

		s, err := secretOf(ns, "ci-dfns")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(HaveKeyWithValue(KeyAPIURL, []byte(sbServer.URL)))
		Expect(s.Data).To(HaveKeyWithValue(KeyOrgID, []byte(sb.OrgID())))
		Expect(s.Data).To(HaveKey(KeyAuthToken))
		Expect(string(s.Data[KeyPrivateKey])).To(HavePrefix("-----BEGIN"))
		Expect(metav1.IsControlledBy(s, p)).To(BeTrue())

		By("reading permissions with the token, the permission given at creation")
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
		By("signing a request with the generated key: the token may not create, so Dfns answers 403, not 401")
		_, err = tokenClient(s).CreatePermission(ctx, dfns.CreatePermissionRequest{Name: ns + "/no", Operations: []string{tOpRead}})
		Expect(dfns.MissingOperation(err)).To(Equal("Permissions:Create"))
		Expect(hasEvent(p, corev1.EventTypeNormal, driver.EventCreated)()).To(BeTrue())
	})

	It("recovers from a create whose answer was lost, leaving exactly one active token", func() {
		sb.InjectOnce("CreatePersonalAccessToken", sandbox.FaultAnswerLost)
		p := newPAT(ns, "lost", "ci")
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		Expect(activePATs(ns + "/lost")(Default)).To(ConsistOf(p.Status.TokenID))
		Expect(hasEvent(p, corev1.EventTypeNormal, driver.EventOrphanDeleted)()).To(BeTrue())
		s, err := secretOf(ns, p.Name)
		Expect(err).NotTo(HaveOccurred())
		_, err = tokenClient(s).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	It("repairs drift in Dfns and mints a new token when its Secret is lost", func() {
		p := newPAT(ns, "drift", "ci")
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		id := p.Status.TokenID

		By("reactivating a token deactivated in Dfns")
		_, err := dashboard.DeactivatePersonalAccessToken(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventReactivated)).Should(BeTrue())
		eventually(activePATs(ns + "/drift")).Should(ConsistOf(id))

		By("renaming back a token renamed in Dfns")
		_, err = dashboard.UpdatePersonalAccessToken(ctx, id, dfns.UpdatePersonalAccessTokenRequest{Name: ns + "/renamed"})
		Expect(err).NotTo(HaveOccurred())
		eventually(activePATs(ns + "/drift")).Should(ConsistOf(id))

		By("minting a new token when the Secret is deleted, and retiring the old one after its grace period")
		s, err := secretOf(ns, p.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		eventually(patID(p)).ShouldNot(Equal(id))
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventReminted)).Should(BeTrue())
		waitReady(p)
		Expect(activePATs(ns+"/drift")(Default)).To(ConsistOf(id, p.Status.TokenID), "the previous token may still run in pods")
		clock.Advance(v1alpha1.DefaultGracePeriod + time.Minute)
		eventually(func() bool { return deletedPAT(id) }).Should(BeTrue())
		Expect(activePATs(ns + "/drift")(Default)).To(ConsistOf(p.Status.TokenID))
		var renewed *corev1.Secret
		eventually(func() error { renewed, err = secretOf(ns, p.Name); return err }).Should(Succeed())
		_, err = tokenClient(renewed).ListPermissions(ctx)
		Expect(err).NotTo(HaveOccurred())

		By("creating a new one when the token is deleted in Dfns")
		id2 := p.Status.TokenID
		Expect(dashboard.DeletePersonalAccessToken(ctx, id2)).To(Succeed())
		eventually(patID(p)).ShouldNot(Equal(id2))
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventRecreated)).Should(BeTrue())
		waitReady(p)
	})

	It("is the identity of a DfnsPermissionAssignment", func() {
		readyPermission(ns, "keys", tOpKeys)
		p := newPAT(ns, "assigned", "ci")
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		a := newAssignment(ns, "pat-keys", "keys", "")
		a.Spec.IdentityRef = &v1alpha1.IdentityRef{Kind: kindPersonalAccessToken, Name: p.Name}
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		waitReady(a)
		Expect(a.Status.IdentityID).To(Equal(patID(p)(Default)))
		keys := &v1alpha1.DfnsPermission{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "keys"}, keys)).To(Succeed())
		Expect(holders(keys.Status.PermissionID)(Default)).To(ConsistOf(p.Status.TokenID))

		By("following the token when it is minted anew")
		old := p.Status.TokenID
		s, err := secretOf(ns, p.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		eventually(patID(p)).ShouldNot(Equal(old))
		eventually(holders(keys.Status.PermissionID)).Should(ConsistOf(old, p.Status.TokenID),
			"the previous token keeps its permission for its grace period")
		clock.Advance(v1alpha1.DefaultGracePeriod + time.Minute)
		eventually(holders(keys.Status.PermissionID)).Should(ConsistOf(p.Status.TokenID))
	})

	DescribeTable("handles deletion per deletionPolicy",
		func(policy v1alpha1.DeletionPolicy, active bool) {
			p := newPAT(ns, "del", "ci")
			p.Spec.DeletionPolicy = policy
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
			waitReady(p)
			deleteAndWait(p)
			if !active {
				Expect(deletedPAT(p.Status.TokenID)).To(BeTrue())
				return
			}
			got, err := dashboard.GetPersonalAccessToken(ctx, p.Status.TokenID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.IsActive).To(BeTrue())
			Expect(dashboard.DeletePersonalAccessToken(ctx, got.TokenID)).To(Succeed())
		},
		Entry("Delete removes it", v1alpha1.DeletionPolicyDelete, false),
		Entry("Orphan leaves it active", v1alpha1.DeletionPolicyOrphan, true),
	)
})
