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
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newPolicy is the example: transfers over a limit from hot wallets need two approvals.
func newPolicy(ns, name string, limit int64) *v1alpha1.DfnsPolicy {
	timeout := int32(60)
	return &v1alpha1.DfnsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DfnsPolicySpec{
			ActivityKind: "Wallets:Sign",
			Rule: v1alpha1.PolicyRule{Kind: "TransactionAmountLimit",
				Configuration: &v1alpha1.PolicyRuleConfiguration{Limit: &limit, Currency: "USD"}},
			Action: v1alpha1.PolicyAction{Kind: "RequestApproval", AutoRejectTimeout: &timeout, ApprovalGroups: []v1alpha1.ApprovalGroup{{
				Name: "treasury", Quorum: 2, Approvers: v1alpha1.Approvers{UserID: &v1alpha1.IDFilter{In: []string{admin.UserID, approver.UserID}}}}}},
			Filters: &v1alpha1.PolicyFilters{WalletTags: &v1alpha1.TagFilter{HasAny: []string{"hot"}}},
		}}
}

// dfnsPolicy reads a policy from the sandbox.
func dfnsPolicy(id string) func(g Gomega) *dfns.Policy {
	return func(g Gomega) *dfns.Policy {
		got, err := dashboard.GetPolicy(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		return got
	}
}

// limitOf is the limit of an amount rule as Dfns holds it.
func limitOf(p *dfns.Policy) any {
	// Dfns may echo a number as a string (docs/dfns-compatibility.md).
	if s, ok := p.Rule.Configuration["limit"].(string); ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return p.Rule.Configuration["limit"]
}

// setLimit edits the rule's limit.
func setLimit(p *v1alpha1.DfnsPolicy, limit int64) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
	p.Spec.Rule.Configuration.Limit = &limit
	Expect(k8sClient.Update(ctx, p)).To(Succeed())
}

// activePolicies lists the IDs of the active policies with a name.
func activePolicies(name string) func(g Gomega) []string {
	return func(g Gomega) []string {
		all, err := dashboard.ListPolicies(ctx, "Active")
		g.Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, p := range all {
			if p.Name == name {
				ids = append(ids, p.ID)
			}
		}
		return ids
	}
}

var _ = Describe("DfnsPolicy", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("creates the policy as the spec says, follows edits and sets drift back", func() {
		p := newPolicy(ns, "large-transfers", 10000)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		id := p.Status.PolicyID
		Expect(id).To(HavePrefix("plc-"))
		Expect(p.Annotations[v1alpha1.AnnotationExternalID]).To(Equal(id))
		got := dfnsPolicy(id)(Default)
		Expect(got.Name).To(Equal(ns + "/large-transfers"))
		Expect(got.ActivityKind).To(Equal("Wallets:Sign"))
		Expect(got.Rule.Kind).To(Equal("TransactionAmountLimit"))
		Expect(limitOf(got)).To(Equal(float64(10000)))
		Expect(got.Rule.Configuration).To(HaveKeyWithValue("currency", "USD"))
		Expect(got.Action.Kind).To(Equal("RequestApproval"))
		Expect(*got.Action.AutoRejectTimeout).To(Equal(60))
		Expect(got.Action.ApprovalGroups).To(ConsistOf(And(HaveField("Name", "treasury"), HaveField("Quorum", 2),
			HaveField("Approvers", map[string]any{"userId": map[string]any{"in": []any{admin.UserID, approver.UserID}}}))))
		Expect(got.Filters).To(Equal(map[string]any{"walletTags": map[string]any{"hasAny": []any{"hot"}}}))
		Expect(hasEvent(p, corev1.EventTypeNormal, driver.EventCreated)()).To(BeTrue())

		By("sending an edit of the spec")
		setLimit(p, 20000)
		eventually(func(g Gomega) any { return limitOf(dfnsPolicy(id)(g)) }).Should(Equal(float64(20000)))
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventUpdated)).Should(BeTrue())
		waitReady(p)

		By("setting back a change made in Dfns")
		drifted := (&policies{}).want(p, nil)
		drifted.Rule.Configuration = map[string]any{"limit": 1, "currency": "USD"}
		drifted.Filters = nil
		_, err := dashboard.UpdatePolicy(ctx, id, drifted)
		Expect(err).NotTo(HaveOccurred())
		eventually(func(g Gomega) *dfns.Policy { return dfnsPolicy(id)(g) }).Should(And(
			WithTransform(limitOf, Equal(float64(20000))),
			HaveField("Filters", HaveKey("walletTags"))))

		By("creating a new policy when it is archived in Dfns, which cannot be undone")
		_, err = dashboard.ArchivePolicy(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			return p.Status.PolicyID
		}).ShouldNot(Equal(id))
		eventually(hasEvent(p, corev1.EventTypeNormal, driver.EventRecreated)).Should(BeTrue())
		waitReady(p)
		Expect(activePolicies(ns + "/large-transfers")(Default)).To(ConsistOf(p.Status.PolicyID))

		By("archiving it when the resource is deleted")
		id = p.Status.PolicyID
		deleteAndWait(p)
		Expect(dfnsPolicy(id)(Default).Status).To(Equal("Archived"))
	})

	It("recovers from a create whose answer was lost, leaving exactly one policy", func() {
		sb.InjectOnce("CreatePolicy", sandbox.FaultAnswerLost)
		p := newPolicy(ns, "lost", 5)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		Expect(activePolicies(ns + "/lost")(Default)).To(ConsistOf(p.Status.PolicyID))
		deleteAndWait(p)
	})

	It("stops with NameConflict on a policy it did not make", func() {
		theirs := (&policies{}).want(newPolicy(ns, "taken", 1), nil)
		theirs.Name = ns + "/taken"
		made, err := dashboard.CreatePolicy(ctx, theirs)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = dashboard.ArchivePolicy(ctx, made.ID) })
		p := newPolicy(ns, "taken", 1)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonNameConflict))
		Expect(activePolicies(ns + "/taken")(Default)).To(ConsistOf(made.ID))
	})

	It("waits for approval of an update without resending it, then applies an approved one and stops on a denied one", func() {
		p := newPolicy(ns, "guarded", 100)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		id := p.Status.PolicyID
		requireApproval("Policies:Modify", id)
		sb.ResetCounters()

		By("holding the update for approval and sending it once")
		setLimit(p, 200)
		cr := pendingOf(p)
		Consistently(func() int { return sb.Counters()["UpdatePolicy"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(1))
		Expect(limitOf(dfnsPolicy(id)(Default))).To(Equal(float64(100)))
		Expect(hasEvent(p, corev1.EventTypeNormal, driver.EventChangePendingApproval)()).To(BeTrue())

		By("applying it once approved")
		_, err := approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Approved"})
		Expect(err).NotTo(HaveOccurred())
		waitReady(p)
		Expect(p.Status.PendingChangeRequest).To(BeNil())
		Expect(limitOf(dfnsPolicy(id)(Default))).To(Equal(float64(200)))

		By("stopping on a denied update until the spec changes")
		setLimit(p, 300)
		cr = pendingOf(p)
		_, err = approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Denied"})
		Expect(err).NotTo(HaveOccurred())
		eventually(conditionOf(p, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionFalse, v1alpha1.ReasonChangeRejected))
		Consistently(func() int { return sb.Counters()["UpdatePolicy"] }, 3*syncPeriod, 200*time.Millisecond).Should(Equal(2))
		Expect(limitOf(dfnsPolicy(id)(Default))).To(Equal(float64(200)))

		By("keeping the driver.Finalizer while the archive waits for approval")
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		cr = pendingOf(p)
		Expect(p.DeletionTimestamp).NotTo(BeNil())
		Expect(dfnsPolicy(id)(Default).Status).To(Equal("Active"))
		_, err = approverC.DecideApproval(ctx, cr.ApprovalID, dfns.ApprovalDecisionRequest{Value: "Approved"})
		Expect(err).NotTo(HaveOccurred())
		eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p) }).Should(Satisfy(apierrors.IsNotFound))
		Expect(dfnsPolicy(id)(Default).Status).To(Equal("Archived"))
		Expect(sb.Counters()["ArchivePolicy"]).To(Equal(1))
	})

	It("leaves the policy active on Orphan", func() {
		p := newPolicy(ns, "kept", 7)
		p.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		waitReady(p)
		deleteAndWait(p)
		Expect(dfnsPolicy(p.Status.PolicyID)(Default).Status).To(Equal("Active"))
		_, err := dashboard.ArchivePolicy(ctx, p.Status.PolicyID)
		Expect(err).NotTo(HaveOccurred())
	})

	DescribeTable("refuses a combination Dfns does not allow at the API server",
		func(mutate func(*v1alpha1.DfnsPolicySpec), want string) {
			p := newPolicy(ns, "bad", 1)
			mutate(&p.Spec)
			Expect(k8sClient.Create(ctx, p)).To(MatchError(ContainSubstring(want)))
		},
		Entry("an amount rule on Permissions:Modify", func(s *v1alpha1.DfnsPolicySpec) {
			s.ActivityKind = "Permissions:Modify"
			s.Filters = nil
		}, "this activityKind takes rule.kind AlwaysTrigger"),
		Entry("Block on Policies:Modify", func(s *v1alpha1.DfnsPolicySpec) {
			s.ActivityKind, s.Rule, s.Filters = "Policies:Modify", v1alpha1.PolicyRule{Kind: "AlwaysTrigger"}, nil
			s.Action = v1alpha1.PolicyAction{Kind: "Block"}
		}, "Policies:Modify takes action.kind RequestApproval"),
		Entry("NoAction on Permissions:Assign", func(s *v1alpha1.DfnsPolicySpec) {
			s.ActivityKind, s.Rule, s.Filters = "Permissions:Assign", v1alpha1.PolicyRule{Kind: "AlwaysTrigger"}, nil
			s.Action = v1alpha1.PolicyAction{Kind: "NoAction"}
		}, "takes action.kind RequestApproval or Block"),
		Entry("a wallet filter on Permissions:Assign", func(s *v1alpha1.DfnsPolicySpec) {
			s.ActivityKind, s.Rule = "Permissions:Assign", v1alpha1.PolicyRule{Kind: "AlwaysTrigger"}
		}, "filters.walletId and filters.walletTags apply to Wallets activity kinds only"),
		Entry("screening rule on incoming transactions with RequestApproval", func(s *v1alpha1.DfnsPolicySpec) {
			s.ActivityKind = "Wallets:IncomingTransaction"
			s.Rule = v1alpha1.PolicyRule{Kind: "ChainalysisTransactionScreening", Configuration: &v1alpha1.PolicyRuleConfiguration{
				Alerts:             &v1alpha1.ChainalysisAlerts{AlertLevel: "HIGH", CategoryIDs: []int32{}},
				Exposures:          &v1alpha1.ChainalysisExposures{Direct: v1alpha1.ChainalysisCategories{CategoryIDs: []int32{1}}},
				FallbackBehaviours: chainalysisFallbacks()}}
		}, "Wallets:IncomingTransaction takes rule.kind ChainalysisTransactionScreening and action.kind NoAction"),
		Entry("a Chainalysis rule without exposures", func(s *v1alpha1.DfnsPolicySpec) {
			s.Rule = v1alpha1.PolicyRule{Kind: "ChainalysisTransactionPrescreening", Configuration: &v1alpha1.PolicyRuleConfiguration{
				Alerts: &v1alpha1.ChainalysisAlerts{AlertLevel: "HIGH", CategoryIDs: []int32{}}, FallbackBehaviours: chainalysisFallbacks(),
				Addresses: &apiextensionsv1.JSON{Raw: []byte(`{"categoryIds":[]}`)}}}
		}, "Chainalysis rules need configuration.alerts, configuration.exposures"),
		Entry("a Chainalysis rule with a fallback behaviour missing", func(s *v1alpha1.DfnsPolicySpec) {
			fb := chainalysisFallbacks()
			delete(fb, "skipUnsupportedAsset")
			s.Rule = v1alpha1.PolicyRule{Kind: "ChainalysisTransactionPrescreening", Configuration: &v1alpha1.PolicyRuleConfiguration{
				Alerts:    &v1alpha1.ChainalysisAlerts{AlertLevel: "HIGH", CategoryIDs: []int32{}},
				Exposures: &v1alpha1.ChainalysisExposures{Direct: v1alpha1.ChainalysisCategories{CategoryIDs: []int32{1}}}, FallbackBehaviours: fb,
				Addresses: &apiextensionsv1.JSON{Raw: []byte(`{"categoryIds":[]}`)}}}
		}, "skipUnsupportedAsset"),
		Entry("a currency other than USD", func(s *v1alpha1.DfnsPolicySpec) { s.Rule.Configuration.Currency = "EUR" }, "currency"),
		Entry("an amount limit without currency", func(s *v1alpha1.DfnsPolicySpec) {
			s.Rule.Configuration.Currency = ""
		}, "amount rules need configuration.limit and configuration.currency"),
		Entry("a velocity rule without timeframe", func(s *v1alpha1.DfnsPolicySpec) { s.Rule.Kind = "TransactionAmountVelocity" },
			"velocity rules need configuration.limit and configuration.timeframe"),
		Entry("AlwaysTrigger with a configuration", func(s *v1alpha1.DfnsPolicySpec) { s.Rule.Kind = "AlwaysTrigger" },
			"rule kind AlwaysTrigger takes no configuration"),
		Entry("RequestApproval without groups", func(s *v1alpha1.DfnsPolicySpec) { s.Action.ApprovalGroups = nil },
			"approvalGroups (and autoRejectTimeout) go with action.kind RequestApproval only"),
		Entry("Block with approval groups", func(s *v1alpha1.DfnsPolicySpec) { s.Action.Kind = "Block" },
			"approvalGroups (and autoRejectTimeout) go with action.kind RequestApproval only"),
		Entry("a quorum of zero", func(s *v1alpha1.DfnsPolicySpec) { s.Action.ApprovalGroups[0].Quorum = 0 }, "quorum"),
		Entry("an unknown currency", func(s *v1alpha1.DfnsPolicySpec) { s.Rule.Configuration.Currency = "GBP" }, "currency"),
	)
})

// chainalysisFallbacks are the four fallback behaviours a Chainalysis rule must give.
func chainalysisFallbacks() map[string]bool {
	return map[string]bool{"skipUnscreenableTransaction": false, "skipUnsupportedNetwork": false, "skipUnsupportedAsset": true,
		"skipChainalysisFailure": false}
}
