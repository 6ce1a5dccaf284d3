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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// receiver is a webhook endpoint that, like an app's, accepts only deliveries whose
// X-DFNS-WEBHOOK-SIGNATURE is the HMAC-SHA256 of the raw body keyed with its secret.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	secret   []byte
	verified []string // kinds of the deliveries that verified
}

func newReceiver() *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		mac := hmac.New(sha256.New, r.secret)
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(req.Header.Get("X-DFNS-WEBHOOK-SIGNATURE")), []byte(want)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct{ Kind string }
		_ = json.Unmarshal(body, &ev)
		r.verified = append(r.verified, ev.Kind)
	}))
	DeferCleanup(r.srv.Close)
	return r
}

func (r *receiver) useSecret(s []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

// ping has the sandbox deliver a test event to the webhook now; it returns the HTTP status the
// receiver answered.
func ping(id string) string {
	GinkgoHelper()
	got, err := dashboard.(*dfns.Client).PingWebhook(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	return got.Status
}

// newWebhook is a DfnsWebhook for the receiver.
func newWebhook(ns, name string, r *receiver) *v1alpha1.DfnsWebhook {
	return &v1alpha1.DfnsWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsWebhookSpec{URL: r.srv.URL + "/dfns", Events: []v1alpha1.WebhookEvent{"policy.approval.pending"},
			Description: "payments notifications"}}
}

// markedWebhooks lists the sandbox's webhooks carrying the resource's marker.
func markedWebhooks(w *v1alpha1.DfnsWebhook) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListWebhooks(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, h := range all {
			if strings.Contains(h.Description, markerOf(w)) {
				ids = append(ids, h.ID)
			}
		}
		return ids
	}
}

// webhookID reads status.webhookId.
func webhookID(w *v1alpha1.DfnsWebhook) func(g Gomega) string {
	return func(g Gomega) string {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		return w.Status.WebhookID
	}
}

var _ = Describe("DfnsWebhook", func() {
	var (
		ns   string
		recv *receiver
	)
	BeforeEach(func() {
		ns = newNamespace()
		recv = newReceiver()
	})

	It("creates the webhook and writes a signing secret its receiver verifies deliveries with", func() {
		w := newWebhook(ns, "payments", recv)
		w.Spec.SecretName = "payments-webhook"
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		waitReady(w)

		id := w.Status.WebhookID
		Expect(id).To(HavePrefix("wh-"))
		Expect(w.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(id))
		Expect(w.Status.SecretName).To(Equal("payments-webhook"))
		got, err := dashboard.GetWebhook(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.URL).To(Equal(w.Spec.URL))
		Expect(got.Events).To(ConsistOf("policy.approval.pending"))
		Expect(got.Status).To(Equal("Enabled"))
		Expect(got.Description).To(Equal("payments notifications [dfns-operator " + string(w.UID) + "]"))
		Expect(len(got.Description)).To(BeNumerically("<=", 256))

		s, err := secretOf(ns, "payments-webhook")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(HaveKeyWithValue(KeyWebhookID, []byte(id)))
		Expect(s.Data[KeyWebhookSecret]).NotTo(BeEmpty())
		Expect(metav1.IsControlledBy(s, w)).To(BeTrue())

		By("delivering a signed event that the receiver verifies with the Secret's value")
		recv.useSecret([]byte("not-the-secret"))
		Expect(ping(id)).To(Equal("401"))
		recv.useSecret(s.Data[KeyWebhookSecret])
		Expect(ping(id)).To(Equal("200"))
		recv.mu.Lock()
		Expect(recv.verified).To(ConsistOf("ping"))
		recv.mu.Unlock()
		Expect(hasEvent(w, corev1.EventTypeNormal, driver.EventCreated)()).To(BeTrue())
	})

	It("recovers from a create whose answer was lost, leaving exactly one webhook", func() {
		sb.InjectOnce("CreateWebhook", sandbox.FaultAnswerLost)
		w := newWebhook(ns, "lost", recv)
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		waitReady(w)
		Expect(markedWebhooks(w)(Default)).To(ConsistOf(w.Status.WebhookID))
		Expect(hasEvent(w, corev1.EventTypeNormal, driver.EventOrphanDeleted)()).To(BeTrue())
		s, err := secretOf(ns, w.Name)
		Expect(err).NotTo(HaveOccurred())
		recv.useSecret(s.Data[KeyWebhookSecret])
		Expect(ping(w.Status.WebhookID)).To(Equal("200"))
	})

	It("sets drift back, follows spec changes, and replaces a webhook whose secret is lost", func() {
		w := newWebhook(ns, "drift", recv)
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		waitReady(w)
		id := w.Status.WebhookID

		By("setting url, events, status and description back after a change in Dfns")
		desc := "changed in the dashboard"
		_, err := dashboard.UpdateWebhook(ctx, id, dfns.UpdateWebhookRequest{URL: "https://elsewhere.example/x",
			Events: []string{"*"}, Status: "Disabled", Description: &desc})
		Expect(err).NotTo(HaveOccurred())
		eventually(func(g Gomega) *dfns.Webhook {
			got, err := dashboard.GetWebhook(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			return got
		}).Should(And(HaveField("URL", w.Spec.URL), HaveField("Events", ConsistOf("policy.approval.pending")),
			HaveField("Status", "Enabled"), HaveField("Description", wantDescription(w))))
		eventually(hasEvent(w, corev1.EventTypeNormal, driver.EventUpdated)).Should(BeTrue())

		By("applying a change of the spec")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		w.Spec.Events = []v1alpha1.WebhookEvent{"wallet.transfer.confirmed", "policy.approval.resolved"}
		w.Spec.Enabled = new(bool)
		Expect(k8sClient.Update(ctx, w)).To(Succeed())
		eventually(func(g Gomega) *dfns.Webhook {
			got, err := dashboard.GetWebhook(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			return got
		}).Should(And(HaveField("Events", ConsistOf("wallet.transfer.confirmed", "policy.approval.resolved")),
			HaveField("Status", "Disabled")))
		waitReady(w)

		By("replacing the webhook when its Secret is deleted: Dfns never shows the secret again")
		s, err := secretOf(ns, w.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		eventually(webhookID(w)).ShouldNot(Equal(id))
		eventually(hasEvent(w, corev1.EventTypeNormal, driver.EventReminted)).Should(BeTrue())
		waitReady(w)
		_, err = dashboard.GetWebhook(ctx, id)
		Expect(dfns.IsNotFound(err)).To(BeTrue())
		Expect(markedWebhooks(w)(Default)).To(ConsistOf(w.Status.WebhookID))

		By("creating a new one when the webhook is deleted in Dfns")
		id2 := w.Status.WebhookID
		Expect(dashboard.DeleteWebhook(ctx, id2)).To(Succeed())
		eventually(webhookID(w)).ShouldNot(Equal(id2))
		eventually(hasEvent(w, corev1.EventTypeNormal, driver.EventRecreated)).Should(BeTrue())
		waitReady(w)
		Expect(markedWebhooks(w)(Default)).To(ConsistOf(w.Status.WebhookID))
	})

	It("reports the organisation's webhook limit with its own reason and without a retry loop", func() {
		all, err := dashboard.ListWebhooks(ctx)
		Expect(err).NotTo(HaveOccurred())
		fillers := make([]string, 0, 5)
		for range 5 - len(all) {
			h, err := dashboard.CreateWebhook(ctx, dfns.CreateWebhookRequest{URL: recv.srv.URL, Events: []string{"*"}})
			Expect(err).NotTo(HaveOccurred())
			fillers = append(fillers, h.ID)
		}
		Expect(fillers).NotTo(BeEmpty())
		DeferCleanup(func() {
			for _, id := range fillers[1:] {
				Expect(dashboard.DeleteWebhook(ctx, id)).To(Succeed())
			}
		})
		w := newWebhook(ns, "over", recv)
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		DeferCleanup(deleteAndWait, w)
		eventually(conditionOf(w, v1alpha1.ConditionSynced)).Should(And(
			haveCondition(metav1.ConditionFalse, v1alpha1.ReasonWebhookLimitReached),
			HaveField("Message", ContainSubstring("limit"))))
		tries := sb.Counters()["CreateWebhook"]
		Consistently(func() int { return sb.Counters()["CreateWebhook"] - tries }, 2*time.Second, 100*time.Millisecond).
			Should(BeNumerically("<=", 3), "retried at most once per sync period (1s here)")

		By("creating the webhook once there is room")
		Expect(dashboard.DeleteWebhook(ctx, fillers[0])).To(Succeed())
		waitReady(w)
		Expect(markedWebhooks(w)(Default)).To(ConsistOf(w.Status.WebhookID))
	})

	DescribeTable("handles deletion per deletionPolicy",
		func(policy v1alpha1.DeletionPolicy, kept bool) {
			w := newWebhook(ns, "del", recv)
			w.Spec.DeletionPolicy = policy
			Expect(k8sClient.Create(ctx, w)).To(Succeed())
			waitReady(w)
			deleteAndWait(w)
			_, err := dashboard.GetWebhook(ctx, w.Status.WebhookID)
			if !kept {
				Expect(dfns.IsNotFound(err)).To(BeTrue())
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(dashboard.DeleteWebhook(ctx, w.Status.WebhookID)).To(Succeed())
		},
		Entry("Delete removes it", v1alpha1.DeletionPolicyDelete, false),
		Entry("Orphan leaves it", v1alpha1.DeletionPolicyOrphan, true),
	)

	DescribeTable("refuses an invalid spec at the API server",
		func(mutate func(*v1alpha1.DfnsWebhook), want string) {
			w := newWebhook(ns, "bad", recv)
			mutate(w)
			err := k8sClient.Create(ctx, w)
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("a URL that is not http(s)", func(w *v1alpha1.DfnsWebhook) { w.Spec.URL = "ftp://x.example/" }, "spec.url"),
		Entry("no events", func(w *v1alpha1.DfnsWebhook) { w.Spec.Events = nil }, "spec.events"),
		Entry("an unknown event kind", func(w *v1alpha1.DfnsWebhook) { w.Spec.Events = []v1alpha1.WebhookEvent{"wallet.stolen"} }, "spec.events"),
		Entry("a description too long for the marker", func(w *v1alpha1.DfnsWebhook) { w.Spec.Description = strings.Repeat("d", 201) }, "spec.description"),
	)
})
