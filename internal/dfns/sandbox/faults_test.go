package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestInjectedFaults(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	cases := []struct {
		reason     string
		kind       FaultKind
		wantStatus int
		retryAfter string
	}{
		{"internal error", FaultInternal, 500, ""},
		{"rate limited without Retry-After", FaultRateLimited, 429, ""},
		{"rate limited with Retry-After", FaultRateLimitedRetry, 429, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			e.sb.InjectOnce("ListPermissions", tc.kind)
			req, _ := http.NewRequest("GET", e.srv.URL+"/permissions", nil)
			req.Header.Set("Authorization", "Bearer "+admin.token)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Errorf("status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			if !strings.Contains(string(body), `"status":`+itoa(tc.wantStatus)) {
				t.Errorf("body not in the Dfns error shape: %s", body)
			}
			e.mustCall(admin, 200, "GET", "/permissions", nil)
		})
	}
	t.Run("timeout stalls until the client gives up", func(t *testing.T) {
		e.sb.InjectOnce("ListPermissions", FaultTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/permissions", nil)
		req.Header.Set("Authorization", "Bearer "+admin.token)
		start := time.Now()
		_, err := e.srv.Client().Do(req)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err = %v after %v", err, time.Since(start))
		}
	})
	t.Run("answer lost after the change is committed", func(t *testing.T) {
		key := newTestKey(t, "ed25519")
		payload := mustJSON(t, map[string]any{"name": "lost", "publicKey": key.publicPEM(t)})
		ua := e.userAction(admin, "POST", "/auth/service-accounts", payload)
		e.sb.InjectOnce("CreateServiceAccount", FaultAnswerLost)
		req, _ := http.NewRequest("POST", e.srv.URL+"/auth/service-accounts", bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer "+admin.token)
		req.Header.Set("X-DFNS-USERACTION", ua)
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
			t.Fatalf("got an answer: %d", resp.StatusCode)
		}
		list := e.mustCall(admin, 200, "GET", "/auth/service-accounts", nil)
		found := false
		for _, it := range list["items"].([]any) {
			if it.(map[string]any)["userInfo"].(map[string]any)["name"] == "lost" {
				found = true
			}
		}
		if !found {
			t.Error("the service account was not committed")
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestFaultRateAndCounters(t *testing.T) {
	e := newEnv(t, Options{Seed: 7})
	admin := e.user("admin@example.com", true)
	e.sb.ResetCounters()
	e.sb.SetFaults(Faults{ErrorRate: 1, Kinds: []FaultKind{FaultRateLimited}, Operations: []string{"ListWebhooks"}})
	if st, _ := e.call(admin, "GET", "/webhooks", nil); st != 429 {
		t.Errorf("ListWebhooks: %d, want 429", st)
	}
	if st, _ := e.call(admin, "GET", "/permissions", nil); st != 200 {
		t.Errorf("ListPermissions (not selected): %d", st)
	}
	e.sb.SetFaults(Faults{ErrorRate: 0.5, Kinds: []FaultKind{FaultInternal}})
	fails := 0
	for range 40 {
		if st, _ := e.request("GET", "/permissions", admin.token, "", nil); st == 500 {
			fails++
		}
	}
	if fails < 8 || fails > 32 {
		t.Errorf("%d of 40 calls failed at rate 0.5", fails)
	}
	e.sb.SetFaults(Faults{})
	want := map[string]int{"ListWebhooks": 1, "ListPermissions": 41}
	if got := e.sb.Counters(); !reflect.DeepEqual(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}

	t.Run("same seed, same faults", func(t *testing.T) {
		run := func() []int {
			e2 := newEnv(t, Options{Seed: 99})
			a := e2.user("a@example.com", true)
			e2.sb.SetFaults(Faults{ErrorRate: 0.3, Kinds: []FaultKind{FaultInternal}})
			out := make([]int, 0, 20)
			for range 20 {
				st, _ := e2.request("GET", "/permissions", a.token, "", nil)
				out = append(out, st)
			}
			return out
		}
		if a, b := run(), run(); !reflect.DeepEqual(a, b) {
			t.Errorf("runs differ: %v vs %v", a, b)
		}
	})
	t.Run("latency", func(t *testing.T) {
		e.sb.SetFaults(Faults{Latency: 50 * time.Millisecond})
		defer e.sb.SetFaults(Faults{})
		start := time.Now()
		e.request("GET", "/permissions", admin.token, "", nil)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("call took %v", d)
		}
		start = time.Now()
		e.request("GET", "/sandbox/healthz", "", "", nil)
		if d := time.Since(start); d >= 50*time.Millisecond {
			t.Errorf("control took %v", d)
		}
	})
}

func TestControls(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		reason string
		method string
		path   string
		body   string
		want   int
	}{
		{"healthz", "GET", "/sandbox/healthz", "", 200},
		{"set faults", "PUT", "/sandbox/faults", `{"latency":"1ms","errorRate":0,"kinds":["internal"],"operations":["ListPermissions"]}`, 200},
		{"bad latency", "PUT", "/sandbox/faults", `{"latency":"soon"}`, 400},
		{"bad rate", "PUT", "/sandbox/faults", `{"errorRate":2}`, 400},
		{"bad kind", "PUT", "/sandbox/faults", `{"errorRate":0.1,"kinds":["meteor"]}`, 400},
		{"inject", "POST", "/sandbox/inject", `{"operation":"ListPermissions","kind":"internal"}`, 204},
		{"inject bad kind", "POST", "/sandbox/inject", `{"operation":"ListPermissions","kind":"x"}`, 400},
		{"counters", "GET", "/sandbox/counters", "", 200},
		{"reset counters", "DELETE", "/sandbox/counters", "", 204},
		{"create user", "POST", "/sandbox/users", `{"email":"ops@example.com","admin":true}`, 200},
		{"create user twice", "POST", "/sandbox/users", `{"email":"ops@example.com","admin":true}`, 400},
		{"unknown control", "GET", "/sandbox/nope", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			if st, out := e.request(tc.method, tc.path, "", "", body); st != tc.want {
				t.Errorf("status %d, want %d: %s", st, tc.want, out)
			}
		})
	}
	_, out := e.request("GET", "/sandbox/faults", "", "", nil)
	if !strings.Contains(string(out), `"latency":"1ms"`) {
		t.Errorf("faults: %s", out)
	}
	st, out := e.request("POST", "/sandbox/users", "", "", []byte(`{"email":"ops2@example.com","admin":true}`))
	var creds UserCredentials
	if err := json.Unmarshal(out, &creds); err != nil || st != 200 {
		t.Fatal(st, err)
	}
	a := e.login(&creds, keyFromPEM(t, creds.PrivateKeyPEM), formTS)
	e.sb.SetFaults(Faults{})
	e.mustCall(a, 200, "GET", "/auth/users", nil)
}

func TestStateFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, Options{StateFile: path})
	admin := e.user("admin@example.com", true)
	pm := e.permission(admin, "kept", "Permissions:Read")
	sa, _ := e.serviceAccount(admin, "kept-sa", pm, "ed25519")
	wh := e.mustCall(admin, 200, "POST", "/webhooks", map[string]any{"url": "https://x.example", "events": []string{"*"}})
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".sandbox-state-*"))
	if len(matches) != 0 {
		t.Errorf("temp files left behind: %v", matches)
	}

	e2 := newEnv(t, Options{StateFile: path})
	if e2.sb.OrgID() != e.sb.OrgID() {
		t.Fatalf("org changed: %s vs %s", e2.sb.OrgID(), e.sb.OrgID())
	}
	e2.mustCall(sa, 200, "GET", "/permissions/"+pm, nil)
	e2.mustCall(admin, 200, "GET", "/webhooks/"+wh["id"].(string), nil)
	sa2, _ := e2.serviceAccount(admin, "new-sa", pm, "p256")
	if sa2.userID == sa.userID {
		t.Error("IDs repeat after restart")
	}
	if _, err := New(Options{StateFile: path, OrgID: "or-other"}); err == nil {
		t.Error("a state file of another org was accepted")
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateFile: path}); err == nil {
		t.Error("a corrupt state file was accepted")
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	other := e.user("other@example.com", true)
	e.sb.InjectOnce("ListPermissions", FaultRateLimitedRetry)
	e.mustCall(admin, 429, "GET", "/permissions", nil)
	steps := []struct {
		reason string
		who    *actor
		after  time.Duration // since the previous step
		want   int           // calls counted before Retry-After, in all
	}{
		{"a call already in flight when the 429 left is not counted", admin, 50 * time.Millisecond, 0},
		{"another caller is not limited", other, 400 * time.Millisecond, 0},
		{"the same caller too soon is counted", admin, 0, 1},
		{"the same caller after Retry-After is fine", admin, time.Second, 1},
	}
	for _, s := range steps {
		e.advance(s.after)
		e.mustCall(s.who, 200, "GET", "/permissions", nil)
		if got := e.sb.Counters()[CounterCallsBeforeRetry]; got != s.want {
			t.Errorf("%s: %s = %d, want %d", s.reason, CounterCallsBeforeRetry, got, s.want)
		}
	}
	if got := e.sb.Counters()[CounterRetryAfterSent]; got != 1 {
		t.Errorf("%s = %d, want 1", CounterRetryAfterSent, got)
	}
}
