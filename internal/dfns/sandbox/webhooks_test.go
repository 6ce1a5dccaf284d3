package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook endpoint recording what it gets.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	status int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get("X-DFNS-WEBHOOK-SIGNATURE"))
		r.mu.Unlock()
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() ([][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]string(nil), r.sigs...)
}

func validSig(secret string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return header == "sha256="+hex.EncodeToString(mac.Sum(nil))
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookDeliveries(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	second := e.user("second@example.com", true)
	ok200 := newReceiver(t, 200)
	fail := newReceiver(t, 500)
	wh := e.mustCall(admin, 200, "POST", "/webhooks", map[string]any{"url": ok200.srv.URL, "events": []string{"policy.approval.pending", "policy.approval.resolved"}, "description": "marker"})
	secret := wh["secret"].(string)
	if !strings.HasPrefix(secret, "whs-") || !strings.HasPrefix(wh["id"].(string), "wh-") || wh["status"] != "Enabled" {
		t.Fatalf("create answer: %v", wh)
	}
	whFail := e.mustCall(admin, 200, "POST", "/webhooks", map[string]any{"url": fail.srv.URL, "events": []string{"*"}})
	got := e.mustCall(admin, 200, "GET", "/webhooks/"+wh["id"].(string), nil)
	if got["secret"] != nil || got["description"] != "marker" {
		t.Errorf("get answer: %v", got)
	}

	pm := e.permission(admin, "hooked", "Wallets:Read")
	e.mustCall(admin, 200, "POST", "/v2/policies", approvalPolicy("guard", "Permissions:Modify", 1, nil))
	cr := e.mustCall(admin, 202, "PUT", "/permissions/"+pm, map[string]any{"name": "hooked-2"})
	e.mustCall(second, 200, "POST", "/v2/policy-approvals/"+cr["approvalId"].(string)+"/decisions", map[string]any{"value": "Approved"})

	waitFor(t, "two deliveries", func() bool { b, _ := ok200.received(); return len(b) == 2 })
	bodies, sigs := ok200.received()
	kinds := make([]string, 0, len(bodies))
	for i, b := range bodies {
		if !validSig(secret, b, sigs[i]) {
			t.Errorf("delivery %d has an invalid signature %q", i, sigs[i])
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev["kind"].(string))
		if ev["data"].(map[string]any)["approval"].(map[string]any)["id"] != cr["approvalId"] {
			t.Errorf("event data: %v", ev["data"])
		}
	}
	slices.Sort(kinds) // deliveries are concurrent: Dfns promises no order either
	if strings.Join(kinds, ",") != "policy.approval.pending,policy.approval.resolved" {
		t.Errorf("kinds = %v", kinds)
	}
	e.sb.Close()
	events := e.mustCall(admin, 200, "GET", "/webhooks/"+wh["id"].(string)+"/events", nil)
	items := events["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["status"] != "200" || items[0].(map[string]any)["deliveryFailed"] != false {
		t.Fatalf("events: %v", events)
	}
	evID := items[0].(map[string]any)["id"].(string)
	e.mustCall(admin, 200, "GET", "/webhooks/"+wh["id"].(string)+"/events/"+evID, nil)
	e.mustCall(admin, 404, "GET", "/webhooks/"+whFail["id"].(string)+"/events/"+evID, nil)
	failed := e.mustCall(admin, 200, "GET", "/webhooks/"+whFail["id"].(string)+"/events?deliveryFailed=true&kind=policy.approval.pending", nil)
	if n := len(failed["items"].([]any)); n != 1 {
		t.Errorf("failed deliveries: %v", failed)
	}
	e.mustCall(admin, 400, "GET", "/webhooks/"+whFail["id"].(string)+"/events?deliveryFailed=maybe", nil)

	t.Run("ping", func(t *testing.T) {
		out := e.mustCall(admin, 200, "POST", "/webhooks/"+wh["id"].(string)+"/ping", map[string]any{})
		if out["status"] != "200" {
			t.Errorf("ping: %v", out)
		}
		bodies, sigs := ok200.received()
		last := bodies[len(bodies)-1]
		if !validSig(secret, last, sigs[len(sigs)-1]) || !strings.Contains(string(last), `"kind":"ping"`) {
			t.Errorf("ping delivery %s", last)
		}
		out = e.mustCall(admin, 200, "POST", "/webhooks/"+whFail["id"].(string)+"/ping", nil)
		if out["status"] != "500" || out["error"] == nil {
			t.Errorf("failing ping: %v", out)
		}
		e.mustCall(admin, 404, "POST", "/webhooks/wh-nope/ping", nil)
	})
}

func TestWebhookCRUD(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	cases := []struct {
		reason string
		body   any
		want   int
	}{
		{"ftp url", map[string]any{"url": "ftp://x", "events": []string{"*"}}, 400},
		{"relative url", map[string]any{"url": "/hook", "events": []string{"*"}}, 400},
		{"no events", map[string]any{"url": "https://x.example", "events": []string{}}, 400},
		{"unknown event", map[string]any{"url": "https://x.example", "events": []string{"cake.baked"}}, 400},
		{"bad status", map[string]any{"url": "https://x.example", "events": []string{"*"}, "status": "On"}, 400},
		{"description too long", map[string]any{"url": "https://x.example", "events": []string{"*"}, "description": strings.Repeat("d", 257)}, 400},
		{"disabled", map[string]any{"url": "https://x.example", "events": []string{"*"}, "status": "Disabled"}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if st, out := e.call(admin, "POST", "/webhooks", tc.body); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	var last string
	for i := range 4 {
		last = e.mustCall(admin, 200, "POST", "/webhooks", map[string]any{"url": "https://x.example/" + string(rune('a'+i)), "events": []string{"*"}})["id"].(string)
	}
	out := e.mustCall(admin, 400, "POST", "/webhooks", map[string]any{"url": "https://x.example/z", "events": []string{"*"}})
	if !strings.Contains(out["error"].(map[string]any)["message"].(string), "limit") {
		t.Errorf("limit message: %v", out)
	}
	upd := e.mustCall(admin, 200, "PUT", "/webhooks/"+last, map[string]any{"status": "Disabled", "events": []string{"policy.triggered"}, "url": "https://y.example"})
	if upd["status"] != "Disabled" || upd["url"] != "https://y.example" || upd["secret"] != nil {
		t.Errorf("update: %v", upd)
	}
	del := e.mustCall(admin, 200, "DELETE", "/webhooks/"+last, nil)
	if del["deleted"] != true {
		t.Errorf("delete: %v", del)
	}
	e.mustCall(admin, 404, "GET", "/webhooks/"+last, nil)
	list := e.mustCall(admin, 200, "GET", "/webhooks?limit=2", nil)
	if len(list["items"].([]any)) != 2 || list["nextPageToken"] == nil {
		t.Errorf("list: %v", list)
	}
}
