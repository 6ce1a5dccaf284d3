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
	"errors"
	"fmt"
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

func TestCreateWebhookError(t *testing.T) {
	cases := map[string]struct {
		reason string
		err    error
		want   string
		policy driver.Policy
	}{
		"Limit": {
			reason: "the per-org limit waits a sync period with its own reason, never a fast retry",
			err:    &dfns.Error{StatusCode: http.StatusBadRequest, Operation: "CreateWebhook", Message: "webhook limit reached: at most 5"},
			want:   v1alpha1.ReasonWebhookLimitReached, policy: driver.Wait,
		},
		"Refused": {
			reason: "another 400 is a spec Dfns does not accept: stop until the spec changes",
			err:    &dfns.Error{StatusCode: http.StatusBadRequest, Operation: "CreateWebhook", Message: "events contains an unknown event kind"},
			want:   v1alpha1.ReasonInvalidSpec, policy: driver.Stop,
		},
		"ServerError": {
			reason: "a 500 is retried",
			err:    fmt.Errorf("wrapped: %w", &dfns.Error{StatusCode: http.StatusInternalServerError, Operation: "CreateWebhook"}),
			want:   v1alpha1.ReasonReconcileError, policy: driver.Retry,
		},
		"OutcomeUnknown": {
			reason: "a lost answer is retried (the marker finds the webhook first)",
			err:    dfns.ErrOutcomeUnknown,
			want:   v1alpha1.ReasonReconcileError, policy: driver.Retry,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := createWebhookError(tc.err)
			if v := classify(err); v.Reason != tc.want || v.Policy != tc.policy {
				t.Errorf("%s\nclassify = %s/%d, want %s/%d", tc.reason, v.Reason, v.Policy, tc.want, tc.policy)
			}
			if tc.policy == driver.Retry && !errors.Is(err, tc.err) {
				t.Errorf("%s\nthe cause is not kept: %v", tc.reason, err)
			}
		})
	}
}

func TestCompareWebhook(t *testing.T) {
	off := false
	w := &v1alpha1.DfnsWebhook{ObjectMeta: metav1.ObjectMeta{Name: "w", UID: tUID},
		Spec: v1alpha1.DfnsWebhookSpec{URL: "https://a.example/x", Events: []v1alpha1.WebhookEvent{"key.created", "*", "key.created"}}}
	same := func() *dfns.Webhook {
		return &dfns.Webhook{ID: "wh-1", URL: w.Spec.URL, Events: []string{"*", "key.created"}, Status: "Enabled", Description: wantDescription(w)}
	}
	cases := map[string]struct {
		reason string
		mutate func(*dfns.Webhook, *v1alpha1.DfnsWebhook)
		want   string
	}{
		"UpToDate": {reason: "event order and duplicates in the spec do not matter", mutate: func(*dfns.Webhook, *v1alpha1.DfnsWebhook) {}},
		"URL":      {reason: "a changed url", mutate: func(h *dfns.Webhook, _ *v1alpha1.DfnsWebhook) { h.URL = "https://b.example" }, want: `url "https://b.example", want "https://a.example/x"`},
		"Events":   {reason: "changed events", mutate: func(h *dfns.Webhook, _ *v1alpha1.DfnsWebhook) { h.Events = []string{"*"} }, want: "events [*], want [* key.created]"},
		"Status": {reason: "disabled while enabled is wanted", mutate: func(h *dfns.Webhook, _ *v1alpha1.DfnsWebhook) { h.Status = "Disabled" },
			want: "status Disabled, want Enabled"},
		"Disabled": {reason: "spec.enabled false wants Disabled", mutate: func(_ *dfns.Webhook, w *v1alpha1.DfnsWebhook) { w.Spec.Enabled = &off },
			want: "status Enabled, want Disabled"},
		"Marker": {reason: "a description without the marker is drift", mutate: func(h *dfns.Webhook, _ *v1alpha1.DfnsWebhook) { h.Description = "" },
			want: "description"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := w.DeepCopy()
			h := same()
			tc.mutate(h, w)
			obs := compareWebhook(w, h, "")
			if obs.Diff != tc.want || obs.UpToDate != (tc.want == "") || !obs.Exists || obs.ID != "wh-1" {
				t.Errorf("%s\ncompare = %+v, want diff %q", tc.reason, obs, tc.want)
			}
		})
	}
	if d := wantDescription(w); d != "[dfns-operator "+tUID+"]" {
		t.Errorf("an empty description is the marker alone, got %q", d)
	}
}
