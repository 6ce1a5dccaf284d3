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
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// Keys of the Secret written for a webhook (docs/architecture.md, "Secrets written for apps").
const (
	KeyWebhookID     = "DFNS_WEBHOOK_ID"
	KeyWebhookSecret = "DFNS_WEBHOOK_SECRET"
)

// webhookKeys are the Secret keys whose values identify a webhook's secret: its fingerprint.
var webhookKeys = []string{KeyWebhookSecret, KeyWebhookID}

// Webhook statuses in Dfns.
const (
	webhookEnabled  = "Enabled"
	webhookDisabled = "Disabled"
)

// webhooks is the driver.External of DfnsWebhook. Dfns shows a webhook's signing secret only in the
// create answer, and webhooks have no externalId: the description carries a marker with the
// resource's UID (markerOf), so that a webhook whose answer was lost is found and deleted
// before a new one is created.
type webhooks struct {
	link
	secrets driver.SecretReader
}

var _ driver.External[*v1alpha1.DfnsWebhook, webhookView] = (*webhooks)(nil)
var _ adapter[*v1alpha1.DfnsWebhook, webhookView] = (*webhooks)(nil)

// bind returns the kind's calls through one connection.
func (e *webhooks) bind(l link) driver.External[*v1alpha1.DfnsWebhook, webhookView] {
	cp := *e
	cp.link = l
	return &cp
}

// Validate: the API server checks everything a webhook spec holds.
func (e *webhooks) Validate(context.Context, *v1alpha1.DfnsWebhook) error { return nil }

// Secret names the Secret the webhook's ID and signing secret go to.
func (e *webhooks) Secret(w *v1alpha1.DfnsWebhook) (string, v1alpha1.SecretTemplate) {
	return w.SecretName(), w.Spec.SecretTemplate
}

// markerOf is the ownership marker in the description: 52 characters, so that it fits with a
// spec.description of at most 200 in Dfns' 256.
func markerOf(w *v1alpha1.DfnsWebhook) string {
	return "[dfns-operator " + string(w.UID) + "]"
}

// wantDescription is spec.description followed by the marker.
func wantDescription(w *v1alpha1.DfnsWebhook) string {
	if w.Spec.Description == "" {
		return markerOf(w)
	}
	return w.Spec.Description + " " + markerOf(w)
}

// wantStatus is the Dfns status spec.enabled asks for.
func wantStatus(w *v1alpha1.DfnsWebhook) string {
	if w.WantEnabled() {
		return webhookEnabled
	}
	return webhookDisabled
}

// wantEvents is spec.events, sorted.
func wantEvents(w *v1alpha1.DfnsWebhook) []string {
	out := make([]string, 0, len(w.Spec.Events))
	for _, e := range w.Spec.Events {
		out = append(out, string(e))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// secretOf describes the resource's Secret for the checks of secret.go.
func (e *webhooks) secretOf(w *v1alpha1.DfnsWebhook) driver.OneTimeSecret {
	return driver.OneTimeSecret{Owner: w, Kind: kindWebhook, Name: w.SecretName(), Fingerprint: w.Status.SecretFingerprint,
		StatusID: w.Status.WebhookID, Keys: webhookKeys}
}

// Observe reads the recorded webhook and checks both it and the Secret holding its signing
// secret; with no recorded ID it looks for one carrying this resource's marker.
func (e *webhooks) Observe(ctx context.Context, w *v1alpha1.DfnsWebhook, rec driver.Recorded) (driver.Observation[webhookView], error) {
	id := rec.ID
	if id == "" {
		return e.find(ctx, w, rec.Marked, rec.Previous...)
	}
	got, err := e.api.GetWebhook(ctx, id)
	if dfns.IsNotFound(err) {
		obs, err := e.find(ctx, w, rec.Marked, rec.Previous...)
		if err != nil || obs.Exists || obs.Replace != nil {
			return obs, err
		}
		return driver.Observation[webhookView]{Replace: &driver.Replacement{Reason: driver.EventRecreated,
			Message: fmt.Sprintf("webhook %s was deleted in Dfns; created a new one", id)}}, nil
	}
	if err != nil {
		return driver.Observation[webhookView]{}, fmt.Errorf("reading webhook %s: %w", id, err)
	}
	if rec.Marked != "" {
		// A rotation was sent and its ID never recorded: the new webhook holds the Secret (only
		// the record was lost), or is an orphan to delete before creating again.
		obs, err := e.find(ctx, w, rec.Marked, append([]string{id}, rec.Previous...)...)
		switch {
		case err != nil:
			return obs, err
		case obs.Exists:
			obs.Superseded = id
			return obs, nil
		case obs.Replace != nil:
			obs.Rotate = &driver.Replacement{ID: id, Reason: driver.EventRotated,
				Message: fmt.Sprintf("a rotation was interrupted: created a new webhook; %s keeps receiving events for %s", id, w.GetGracePeriod())}
			return obs, nil
		}
	}
	intact, fp, err := e.secrets.Intact(ctx, e.secretOf(w), id)
	if err != nil {
		return driver.Observation[webhookView]{}, err
	}
	if !intact {
		return driver.Observation[webhookView]{Replace: &driver.Replacement{ID: id, Reason: driver.EventReminted,
			Message: fmt.Sprintf("Secret %s was deleted or changed; deleted webhook %s and created a new one", w.SecretName(), id)}}, nil
	}
	return compareWebhook(w, got, fp), nil
}

// find looks for a webhook carrying the marker of this resource's create-pending mark (marked;
// its proof checked by the driver), other than the recorded one (skip). One whose secret our
// Secret holds is adopted (only the ID patch was lost); one without is an orphan of a lost
// create answer, deleted before a new one is created. With no mark, nothing can exist.
func (e *webhooks) find(ctx context.Context, w *v1alpha1.DfnsWebhook, marked string, skip ...string) (driver.Observation[webhookView], error) {
	if marked == "" {
		return driver.Observation[webhookView]{}, nil
	}
	all, err := e.api.ListWebhooks(ctx)
	if err != nil {
		return driver.Observation[webhookView]{}, fmt.Errorf("listing webhooks: %w", err)
	}
	var orphan string
	for i := range all {
		if !strings.Contains(all[i].Description, marked) || slices.Contains(skip, all[i].ID) {
			continue
		}
		holds, fp, err := e.secrets.Holds(ctx, e.secretOf(w), all[i].ID)
		if err != nil {
			return driver.Observation[webhookView]{}, err
		}
		if holds {
			return compareWebhook(w, &all[i], fp), nil
		}
		if orphan == "" {
			orphan = all[i].ID
		}
	}
	if orphan == "" {
		return driver.Observation[webhookView]{}, nil
	}
	return driver.Observation[webhookView]{Replace: &driver.Replacement{ID: orphan, Reason: driver.EventOrphanDeleted,
		Message: fmt.Sprintf("deleted webhook %s whose signing secret was never saved, and created a new one", orphan)}}, nil
}

// compareWebhook reports whether url, events, status and description match the spec.
func compareWebhook(w *v1alpha1.DfnsWebhook, got *dfns.Webhook, fp string) driver.Observation[webhookView] {
	var diff []string
	if got.URL != w.Spec.URL {
		diff = append(diff, fmt.Sprintf("url %q, want %q", got.URL, w.Spec.URL))
	}
	have, want := slices.Sorted(slices.Values(got.Events)), wantEvents(w)
	if !slices.Equal(slices.Compact(have), want) {
		diff = append(diff, fmt.Sprintf("events [%s], want [%s]", strings.Join(have, " "), strings.Join(want, " ")))
	}
	if got.Status != wantStatus(w) {
		diff = append(diff, fmt.Sprintf("status %s, want %s", got.Status, wantStatus(w)))
	}
	if got.Description != wantDescription(w) {
		diff = append(diff, "description")
	}
	return driver.Observation[webhookView]{ID: got.ID, Exists: true, UpToDate: len(diff) == 0, Diff: strings.Join(diff, ", "),
		Current: webhookView{Webhook: got, Fingerprint: fp}}
}

// webhookView is a webhook as Dfns shows it, and the Secret's fingerprint recovered for a
// status that lost it.
type webhookView struct {
	*dfns.Webhook
	Fingerprint string
}

// Report records the Secret's name and a fingerprint recovered from it.
func (e *webhooks) Report(w *v1alpha1.DfnsWebhook, obs driver.Observation[webhookView]) {
	if !obs.Exists {
		return
	}
	w.Status.SecretName = w.SecretName()
	if obs.Current.Fingerprint != "" {
		w.Status.SecretFingerprint = obs.Current.Fingerprint
	}
}

// Prepare readies the create of the webhook, marked by the marker in its description.
func (e *webhooks) Prepare(_ context.Context, w *v1alpha1.DfnsWebhook, _ driver.Observation[webhookView]) (driver.Prepared, error) {
	req := dfns.CreateWebhookRequest{URL: w.Spec.URL, Events: wantEvents(w), Status: wantStatus(w), Description: wantDescription(w)}
	return driver.Prepared{Name: markerOf(w), Create: func(ctx context.Context) (driver.Creation, error) {
		return e.create(ctx, w, req)
	}}, nil
}

// Remove deletes a webhook whose signing secret was lost, or an orphan of a lost create answer.
func (e *webhooks) Remove(ctx context.Context, w *v1alpha1.DfnsWebhook, _ driver.Observation[webhookView], id string) error {
	return e.Delete(ctx, w, id)
}

// create makes the webhook and returns its ID and signing secret for the Secret.
func (e *webhooks) create(ctx context.Context, w *v1alpha1.DfnsWebhook, req dfns.CreateWebhookRequest) (driver.Creation, error) {
	var c driver.Creation
	got, err := e.api.CreateWebhook(ctx, req)
	if err != nil {
		return c, createWebhookError(err)
	}
	c.ID = got.ID
	if got.Secret == "" {
		return c, fmt.Errorf("dfns answered the create of webhook %s without a secret", got.ID)
	}
	data := map[string][]byte{KeyWebhookID: []byte(got.ID), KeyWebhookSecret: []byte(got.Secret)}
	c.Secret = &driver.SecretContent{Data: data, Annotations: map[string]string{v1alpha1.AnnotationExternalID: got.ID}}
	w.Status.SecretName = w.SecretName()
	w.Status.SecretFingerprint = driver.FingerprintOf(data, webhookKeys)
	return c, nil
}

// createWebhookError classifies a refused create. Dfns answers 400 both for the per-org
// webhook limit and for a spec it does not accept; neither is helped by a quick retry.
func createWebhookError(err error) error {
	var de *dfns.Error
	if !errors.As(err, &de) || de.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("creating webhook: %w", err)
	}
	if strings.Contains(strings.ToLower(de.Message), "limit") {
		return driver.Waitf(v1alpha1.ReasonWebhookLimitReached, "Dfns refused a new webhook: %s; delete a webhook of the "+
			"organisation or ask Dfns to raise the limit (retried every sync period)", de.Message)
	}
	return driver.Stopf(v1alpha1.ReasonInvalidSpec, "Dfns refused the webhook: %s; fix the spec", de.Message)
}

// Update sets url, events, status and description back to the spec.
func (e *webhooks) Update(ctx context.Context, w *v1alpha1.DfnsWebhook, obs driver.Observation[webhookView]) ([]driver.Note, error) {
	desc := wantDescription(w)
	_, err := e.api.UpdateWebhook(ctx, obs.ID, dfns.UpdateWebhookRequest{
		URL: w.Spec.URL, Events: wantEvents(w), Status: wantStatus(w), Description: &desc})
	if err != nil {
		return nil, fmt.Errorf("updating webhook %s: %w", obs.ID, err)
	}
	return []driver.Note{{Reason: driver.EventUpdated, Message: fmt.Sprintf("updated webhook %s: %s", obs.ID, obs.Diff)}}, nil
}

// Delete deletes the webhook; empty or already gone is fine.
func (e *webhooks) Delete(ctx context.Context, _ *v1alpha1.DfnsWebhook, id string) error {
	if id == "" {
		return nil
	}
	if err := e.api.DeleteWebhook(ctx, id); err != nil && !dfns.IsNotFound(err) {
		return fmt.Errorf("deleting webhook %s: %w", id, err)
	}
	return nil
}

// Retire deletes a webhook a rotation superseded, after its grace period.
func (e *webhooks) Retire(ctx context.Context, w *v1alpha1.DfnsWebhook, id string) error {
	return e.Delete(ctx, w, id)
}
