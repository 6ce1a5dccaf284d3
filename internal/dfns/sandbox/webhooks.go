package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// maxWebhooks is Dfns' default limit of webhooks per organisation.
const maxWebhooks = 5

// webhookEventKinds are the event kinds of @dfns/sdk 0.8.21 (CreateWebhookBody.events) and of
// the Go SDK, which adds five (docs/dfns-api.md §11 question 13): both SDKs' kinds are
// accepted, except in strict "input" mode (nonSDKWebhookEventKinds).
var webhookEventKinds = []string{
	"vault.created", "vault.updated", "vault.tags.modified", "vault.event.created",
	"wallet.blockchain_event.transfer.included",
	"*", "key.created", "key.delegated", "key.deleted", "key.exported", "payout.action.required",
	"policy.approval.pending", "policy.approval.resolved", "policy.triggered", "wallet.activated",
	"wallet.blockchainevent.detected", "wallet.created", "wallet.delegated", "wallet.exported",
	"wallet.offer.accepted", "wallet.offer.received", "wallet.offer.rejected", "wallet.offer.withdrawn",
	"wallet.signature.failed", "wallet.signature.rejected", "wallet.signature.requested", "wallet.signature.signed",
	"wallet.tags.modified", "wallet.transaction.broadcasted", "wallet.transaction.confirmed",
	"wallet.transaction.failed", "wallet.transaction.rejected", "wallet.transaction.requested",
	"wallet.transfer.broadcasted", "wallet.transfer.confirmed", "wallet.transfer.failed",
	"wallet.transfer.rejected", "wallet.transfer.requested",
}

// nonSDKWebhookEventKinds are the Go SDK's kinds that @dfns/sdk 0.8.21 lacks; strict
// "input" mode refuses them.
var nonSDKWebhookEventKinds = []string{
	"vault.created", "vault.updated", "vault.tags.modified", "vault.event.created",
	"wallet.blockchain_event.transfer.included",
}

// webhookRec is a webhook; Secret is shown only in the create answer.
type webhookRec struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Status      string    `json:"status"`
	Description *string   `json:"description,omitempty"`
	Secret      string    `json:"secret"`
	DateCreated time.Time `json:"dateCreated"`
	DateUpdated time.Time `json:"dateUpdated"`
	Seq         int64     `json:"seq"`
}

// eventRec is a webhook event with its delivery outcome.
type eventRec struct {
	ID              string          `json:"id"`
	WebhookID       string          `json:"webhookId"`
	Kind            string          `json:"kind"`
	Date            time.Time       `json:"date"`
	Data            json.RawMessage `json:"data"`
	Status          string          `json:"status"`
	Error           string          `json:"error,omitempty"`
	TimestampSent   int64           `json:"timestampSent"`
	DeliveryFailed  bool            `json:"deliveryFailed"`
	DeliveryAttempt int             `json:"deliveryAttempt"`
	Seq             int64           `json:"seq"`
}

// deliveryBody is the compact JSON POSTed to the webhook URL (and signed).
type deliveryBody struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	Date            string          `json:"date"`
	Data            json.RawMessage `json:"data"`
	TimestampSent   int64           `json:"timestampSent"`
	DeliveryAttempt int             `json:"deliveryAttempt"`
}

func webhookJSON(w *webhookRec) map[string]any {
	m := map[string]any{
		"id": w.ID, "url": w.URL, "events": w.Events, "status": w.Status,
		"dateCreated": isoTime(w.DateCreated), "dateUpdated": isoTime(w.DateUpdated),
	}
	if w.Description != nil {
		m["description"] = *w.Description
	}
	return m
}

func eventJSON(e *eventRec) map[string]any {
	m := map[string]any{
		"id": e.ID, "date": isoTime(e.Date), "kind": e.Kind, "data": e.Data, "status": e.Status,
		"timestampSent": e.TimestampSent, "deliveryFailed": e.DeliveryFailed, "deliveryAttempt": e.DeliveryAttempt,
	}
	if e.Error != "" {
		m["error"] = e.Error
	}
	return m
}

// webhookRequest is the create/update body.
type webhookRequest struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"`
	Status      *string  `json:"status"`
	Description *string  `json:"description"`
}

// validate checks a create (create) or update body; strictInput (strict "input" mode)
// accepts only the event kinds of @dfns/sdk 0.8.21.
func (req *webhookRequest) validate(create, strictInput bool) error {
	if create && (req.URL == nil || req.Events == nil) {
		return errBadRequest("url and events are required")
	}
	if req.URL != nil {
		u, err := url.Parse(*req.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(*req.URL) > 2048 {
			return errBadRequest("url must be an absolute http or https URL")
		}
	}
	if req.Events != nil {
		if len(req.Events) == 0 {
			return errBadRequest("events must contain at least one event kind")
		}
		for _, e := range req.Events {
			if !slices.Contains(webhookEventKinds, e) || (strictInput && slices.Contains(nonSDKWebhookEventKinds, e)) {
				return errBadRequest("events contains an unknown event kind %q", e)
			}
		}
	}
	if req.Status != nil {
		if err := checkEnum("status", *req.Status, "Enabled", "Disabled"); err != nil {
			return err
		}
	}
	if req.Description != nil {
		return checkLen("description", *req.Description, 0, 256)
	}
	return nil
}

// createWebhook creates a webhook; over the per-org limit it answers 400.
func (s *Server) createWebhook(c *call) (*reply, error) {
	var req webhookRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if err := req.validate(true, s.Strict().StrictInput); err != nil {
		return nil, err
	}
	if len(s.st.Webhooks) >= maxWebhooks {
		return nil, errBadRequest("webhook limit reached: an organisation can have at most %d webhooks", maxWebhooks)
	}
	w := &webhookRec{
		ID: s.newID("wh"), URL: *req.URL, Events: dedupe(req.Events), Status: "Enabled", Description: req.Description,
		Secret: "whs-" + randomToken(32), DateCreated: c.now, DateUpdated: c.now, Seq: s.nextSeq(),
	}
	if req.Status != nil {
		w.Status = *req.Status
	}
	s.st.Webhooks[w.ID] = w
	out := webhookJSON(w)
	out["secret"] = w.Secret
	return ok(out), nil
}

func (s *Server) findWebhook(id string) (*webhookRec, error) {
	w := s.st.Webhooks[id]
	if w == nil {
		return nil, errNotFound("webhook %s not found", id)
	}
	return w, nil
}

func (s *Server) getWebhook(c *call) (*reply, error) {
	w, err := s.findWebhook(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(webhookJSON(w)), nil
}

func (s *Server) listWebhooks(c *call) (*reply, error) {
	all := make([]*webhookRec, 0, len(s.st.Webhooks))
	for _, w := range s.st.Webhooks {
		all = append(all, w)
	}
	items, next, err := paginate(c, all, func(w *webhookRec) int64 { return w.Seq }, 50)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, w := range items {
		out.Items = append(out.Items, webhookJSON(w))
	}
	return ok(out), nil
}

func (s *Server) updateWebhook(c *call) (*reply, error) {
	var req webhookRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if err := req.validate(false, s.Strict().StrictInput); err != nil {
		return nil, err
	}
	w, err := s.findWebhook(c.param("id"))
	if err != nil {
		return nil, err
	}
	if req.URL != nil {
		w.URL = *req.URL
	}
	if req.Events != nil {
		w.Events = dedupe(req.Events)
	}
	if req.Status != nil {
		w.Status = *req.Status
	}
	if req.Description != nil {
		w.Description = req.Description
	}
	w.DateUpdated = c.now
	return ok(webhookJSON(w)), nil
}

func (s *Server) deleteWebhook(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	w, err := s.findWebhook(c.param("id"))
	if err != nil {
		return nil, err
	}
	delete(s.st.Webhooks, w.ID)
	for id, e := range s.st.Events {
		if e.WebhookID == w.ID {
			delete(s.st.Events, id)
		}
	}
	return ok(map[string]bool{"deleted": true}), nil
}

// pingWebhook sends a test event synchronously (the answer carries its HTTP status); as in
// Dfns, the ping is not stored as a webhook event. It runs without the state lock.
func (s *Server) pingWebhook(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	w, err := s.findWebhook(c.param("id"))
	var target, secret, id string
	if err == nil {
		target, secret, id = w.URL, w.Secret, s.newID("whe")
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	body := deliveryBody{ID: id, Kind: "ping", Date: isoTime(c.now), Data: json.RawMessage(`{"message":"ping"}`),
		TimestampSent: c.now.Unix(), DeliveryAttempt: 1}
	status, derr := s.deliver(c.r.Context(), target, secret, body)
	out := map[string]string{"status": status}
	if derr != "" {
		out["error"] = derr
	}
	return ok(out), nil
}

// emitEvent records an event for every enabled webhook subscribed to kind and delivers it
// asynchronously. It must be called with the state lock held.
func (s *Server) emitEvent(kind string, data any, now time.Time) {
	raw, _ := json.Marshal(data)
	for _, w := range s.st.Webhooks {
		if w.Status != "Enabled" || (!slices.Contains(w.Events, kind) && !slices.Contains(w.Events, "*")) {
			continue
		}
		e := &eventRec{ID: s.newID("whe"), WebhookID: w.ID, Kind: kind, Date: now, Data: raw, DeliveryAttempt: 1, Seq: s.nextSeq()}
		s.st.Events[e.ID] = e
		body := deliveryBody{ID: e.ID, Kind: kind, Date: isoTime(now), Data: raw, TimestampSent: s.now().Unix(), DeliveryAttempt: 1}
		target, secret := w.URL, w.Secret
		s.deliveries.Go(func() {
			status, derr := s.deliver(context.Background(), target, secret, body)
			s.recordDelivery(e.ID, status, derr, body.TimestampSent)
		})
	}
}

func (s *Server) recordDelivery(id, status, derr string, sent int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.st.Events[id]
	if e == nil {
		return
	}
	e.Status, e.Error, e.TimestampSent = status, derr, sent
	e.DeliveryFailed = status != "200"
	_ = s.persistLocked()
}

// deliver POSTs the compact JSON body with X-DFNS-WEBHOOK-SIGNATURE: sha256=<hex HMAC>.
// It answers the HTTP status as a string ("" when no answer came) and an error message.
func (s *Server) deliver(ctx context.Context, target, secret string, body deliveryBody) (string, string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
	payload := bytes.TrimRight(buf.Bytes(), "\n")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return "", "invalid webhook url"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-DFNS-WEBHOOK-SIGNATURE", "sha256="+signWebhook(secret, payload))
	resp, err := s.client.Do(req)
	if err != nil {
		return "", "delivery failed: the webhook endpoint could not be reached"
	}
	defer func() { _ = resp.Body.Close() }()
	status := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return status, "webhook endpoint answered " + status
	}
	return status, ""
}

func signWebhook(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func (s *Server) listWebhookEvents(c *call) (*reply, error) {
	w, err := s.findWebhook(c.param("id"))
	if err != nil {
		return nil, err
	}
	q := c.r.URL.Query()
	kind, failed := q.Get("kind"), q.Get("deliveryFailed")
	if kind != "" && !slices.Contains(webhookEventKinds, kind) {
		return nil, errBadRequest("kind %q is not a webhook event kind", kind)
	}
	if failed != "" {
		if err := checkEnum("deliveryFailed", failed, "true", "false"); err != nil {
			return nil, err
		}
	}
	var all []*eventRec
	for _, e := range s.st.Events {
		if e.WebhookID == w.ID && (kind == "" || e.Kind == kind) &&
			(failed == "" || strconv.FormatBool(e.DeliveryFailed) == failed) {
			all = append(all, e)
		}
	}
	items, next, err := paginate(c, all, func(e *eventRec) int64 { return e.Seq }, 50)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, e := range items {
		out.Items = append(out.Items, eventJSON(e))
	}
	return ok(out), nil
}

func (s *Server) getWebhookEvent(c *call) (*reply, error) {
	w, err := s.findWebhook(c.param("id"))
	if err != nil {
		return nil, err
	}
	e := s.st.Events[c.param("eid")]
	if e == nil || e.WebhookID != w.ID {
		return nil, errNotFound("webhook event %s not found", c.param("eid"))
	}
	return ok(eventJSON(e)), nil
}
