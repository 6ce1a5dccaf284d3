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
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

func TestPolicyValidateWhitelist(t *testing.T) {
	const chainalysis = ruleChainalysisPrescreening
	cases := map[string]struct {
		reason    string
		kind      v1alpha1.PolicyRuleKind
		addresses string // raw JSON; "" for none
		wantErr   bool
	}{
		"List":               {reason: "a list of addresses is a whitelist", addresses: `["0xabc","0xdef"]`},
		"EmptyList":          {reason: "an empty list is allowed: the rule always triggers", addresses: `[]`},
		"Missing":            {reason: "a whitelist without addresses is refused", wantErr: true},
		"Object":             {reason: "the Chainalysis shape is not a whitelist", addresses: `{"categoryIds":[1]}`, wantErr: true},
		"ChainalysisObject":  {reason: "Chainalysis prescreening takes {categoryIds}", kind: chainalysis, addresses: `{"categoryIds":[]}`},
		"ChainalysisMissing": {reason: "Chainalysis prescreening needs addresses", kind: chainalysis, wantErr: true},
		"ChainalysisList":    {reason: "a list is not the Chainalysis shape", kind: chainalysis, addresses: `["0xabc"]`, wantErr: true},
		"ChainalysisNoIDs":   {reason: "categoryIds is required", kind: chainalysis, addresses: `{}`, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1alpha1.DfnsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
				Spec: v1alpha1.DfnsPolicySpec{Rule: v1alpha1.PolicyRule{Kind: "TransactionRecipientWhitelist",
					Configuration: &v1alpha1.PolicyRuleConfiguration{}}}}
			if tc.kind != "" {
				p.Spec.Rule.Kind = tc.kind
			}
			if tc.addresses != "" {
				p.Spec.Rule.Configuration.Addresses = &apiextensionsv1.JSON{Raw: []byte(tc.addresses)}
			}
			err := (&policies{}).Validate(context.Background(), p)
			if (err != nil) != tc.wantErr || (err != nil && classify(err).Reason != v1alpha1.ReasonInvalidSpec) {
				t.Errorf("%s\nValidate = %v, want error %t", tc.reason, err, tc.wantErr)
			}
		})
	}
}

func TestComparePolicy(t *testing.T) {
	limit := int64(10)
	p := &v1alpha1.DfnsPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: v1alpha1.DfnsPolicySpec{ActivityKind: "Wallets:Sign",
			Rule:   v1alpha1.PolicyRule{Kind: "TransactionAmountLimit", Configuration: &v1alpha1.PolicyRuleConfiguration{Limit: &limit, Currency: "USD"}},
			Action: v1alpha1.PolicyAction{Kind: "RequestApproval", ApprovalGroups: []v1alpha1.ApprovalGroup{{Quorum: 1}}}}}
	same := func() *dfns.Policy {
		return &dfns.Policy{ID: "plc-1", PolicyBody: dfns.PolicyBody{Name: "ns/p", ActivityKind: "Wallets:Sign",
			Rule:    dfns.PolicyRule{Kind: "TransactionAmountLimit", Configuration: map[string]any{"currency": "USD", "limit": 10.0}},
			Action:  dfns.PolicyAction{Kind: "RequestApproval", ApprovalGroups: []dfns.ApprovalGroup{{Quorum: 1, Approvers: map[string]any{}}}},
			Filters: map[string]any{}}}
	}
	cases := map[string]struct {
		reason string
		mutate func(*dfns.Policy)
		want   string
	}{
		"UpToDate": {reason: "key order, number form, empty filters and empty approvers do not matter", mutate: func(*dfns.Policy) {}},
		"Limit":    {reason: "a changed limit", mutate: func(g *dfns.Policy) { g.Rule.Configuration["limit"] = 11.0 }, want: partRule},
		"EchoedDefaults": {reason: "defaults Dfns may echo: a limit as a string, false flags, null timeout, empty names", mutate: func(g *dfns.Policy) {
			g.Rule.Configuration["limit"] = "10"
			g.Rule.Configuration["userIdTemplate"] = nil
			g.Filters = map[string]any{"walletTags": map[string]any{}}
			g.Action.ApprovalGroups[0].Approvers = map[string]any{"userId": nil}
			no := false
			g.Action.ApprovalGroups[0].InitiatorCanApprove, g.Action.ApprovalGroups[0].ServiceAccountsCanApprove = &no, &no
		}},
		"LimitAsStringChanged": {reason: "a limit given as a string still compares by value", mutate: func(g *dfns.Policy) {
			g.Rule.Configuration["limit"] = "11"
		}, want: partRule},
		"Name": {reason: "a changed name", mutate: func(g *dfns.Policy) { g.Name = "x" }, want: `name "x", want "ns/p"`},
		"Approvers": {reason: "approvers narrowed in Dfns", mutate: func(g *dfns.Policy) {
			g.Action.ApprovalGroups[0].Approvers = map[string]any{"userId": map[string]any{"in": []any{"us-1"}}}
		}, want: "action"},
		"Filters": {reason: "a filter added in Dfns", mutate: func(g *dfns.Policy) {
			g.Filters = map[string]any{"walletId": map[string]any{"in": []any{"wa-1"}}}
		}, want: "filters"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := same()
			tc.mutate(got)
			obs := comparePolicy((&policies{}).want(p, nil), got)
			if obs.Diff != tc.want || obs.UpToDate != (tc.want == "") || obs.ID != "plc-1" {
				t.Errorf("%s\ncompare = %q (up to date %t), want %q", tc.reason, obs.Diff, obs.UpToDate, tc.want)
			}
		})
	}
}
