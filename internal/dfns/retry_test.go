//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recordSleeps replaces the client's sleep with one that records the waits and returns at once,
// moving the client's clock on by the wait.
func recordSleeps(c *Client) *[]time.Duration {
	var mu sync.Mutex
	var slept time.Duration
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		slept += d
		return ctx.Err()
	}
	c.opts.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(slept)
	}
	return waits
}

// failFirst answers the first n calls with fail, then with ok.
func failFirst(n int, fail, ok http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	calls := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		if c <= n {
			fail(w, r)
			return
		}
		ok(w, r)
	}
}

func permissionOK(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"id": "pm-1", "name": "p", "operations": []string{"Auth:Logs:Read"}, "status": "Active"})
}

func rateLimited(retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		dfnsError(w, http.StatusTooManyRequests, "rate limit exceeded")
	}
}

func badGateway(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }

// dropConnection closes the connection without an answer, after reading the request.
func dropConnection(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		reason     string
		route      string
		handler    http.HandlerFunc
		call       func(*Client) error
		wantHits   int
		wantInits  int
		wantWaits  []time.Duration // exact waits; nil = don't check
		wantErr    func(error) bool
		wantErrStr string
	}{{
		reason:  "a read is retried on 429 and honours Retry-After",
		route:   "GET /permissions/pm-1",
		handler: failFirst(1, rateLimited("1"), permissionOK),
		call: func(c *Client) error {
			_, err := c.GetPermission(context.Background(), "pm-1")
			return err
		},
		wantHits: 2, wantWaits: []time.Duration{time.Second},
		wantErr: func(err error) bool { return err == nil },
	}, {
		reason:   "a read is retried on 5xx up to MaxAttempts",
		route:    "GET /permissions/pm-1",
		handler:  badGateway,
		call:     func(c *Client) error { _, err := c.GetPermission(context.Background(), "pm-1"); return err },
		wantHits: 4,
		wantErr: func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.StatusCode == 502 && !errors.Is(err, ErrOutcomeUnknown)
		},
	}, {
		reason:   "a read is retried after a dropped connection (hits not counted: net/http may resend a GET itself)",
		route:    "GET /permissions/pm-1",
		handler:  failFirst(1, dropConnection, permissionOK),
		call:     func(c *Client) error { _, err := c.GetPermission(context.Background(), "pm-1"); return err },
		wantHits: -1,
		wantErr:  func(err error) bool { return err == nil },
	}, {
		reason:   "a Retry-After longer than MaxBackoff is returned to the caller",
		route:    "GET /permissions/pm-1",
		handler:  rateLimited("120"),
		call:     func(c *Client) error { _, err := c.GetPermission(context.Background(), "pm-1"); return err },
		wantHits: 1, wantWaits: []time.Duration{},
		wantErr: func(err error) bool { ra, ok := IsRateLimited(err); return ok && ra == 2*time.Minute },
	}, {
		reason:  "a change answered 429 is sent again with a fresh user action",
		route:   "POST /permissions",
		handler: failFirst(1, rateLimited("1"), permissionOK),
		call: func(c *Client) error {
			_, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"})
			return err
		},
		wantHits: 2, wantInits: 2, wantWaits: []time.Duration{time.Second},
		wantErr: func(err error) bool { return err == nil },
	}, {
		reason:  "a change answered 429 too often returns the 429",
		route:   "POST /permissions",
		handler: rateLimited(""),
		call: func(c *Client) error {
			_, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"})
			return err
		},
		wantHits:  4,
		wantInits: 4,
		wantErr:   func(err error) bool { ra, ok := IsRateLimited(err); return ok && ra == 0 },
	}, {
		reason:  "a change answered 502 without a Dfns body is not retried: outcome unknown",
		route:   "POST /permissions",
		handler: badGateway,
		call: func(c *Client) error {
			_, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"})
			return err
		},
		wantHits:  1,
		wantInits: 1,
		wantErr: func(err error) bool {
			var e *Error
			return errors.Is(err, ErrOutcomeUnknown) && errors.As(err, &e) && e.StatusCode == 502
		},
		wantErrStr: "may have been applied",
	}, {
		reason:  "a change answered 500 with a Dfns body is not retried and is no unknown outcome",
		route:   "POST /permissions",
		handler: func(w http.ResponseWriter, _ *http.Request) { dfnsError(w, 500, "Internal Server Error") },
		call: func(c *Client) error {
			_, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"})
			return err
		},
		wantHits: 1, wantInits: 1,
		wantErr: func(err error) bool { return err != nil && !errors.Is(err, ErrOutcomeUnknown) },
	}, {
		reason:  "a change whose connection drops after sending is not retried: outcome unknown",
		route:   "POST /auth/service-accounts",
		handler: dropConnection,
		call: func(c *Client) error {
			_, err := c.CreateServiceAccount(context.Background(), CreateServiceAccountRequest{Name: "n"})
			return err
		},
		wantHits:  1,
		wantInits: 1,
		wantErr:   func(err error) bool { return errors.Is(err, ErrOutcomeUnknown) },
	}, {
		reason: "a create that times out after sending is not retried: outcome unknown",
		route:  "POST /auth/service-accounts",
		handler: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // stall until the client gives up
		},
		call: func(c *Client) error {
			_, err := c.CreateServiceAccount(context.Background(), CreateServiceAccountRequest{Name: "n"})
			return err
		},
		wantHits: 1, wantInits: 1,
		wantErr: func(err error) bool {
			return errors.Is(err, ErrOutcomeUnknown) && errors.Is(err, context.DeadlineExceeded)
		},
		wantErrStr: "outcome of the dfns call unknown",
	}}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			key := newTestKey(t, KeyEd25519)
			f := newFakeDfns(t, key.signer.Public(), false)
			f.route(tc.route, tc.handler)
			c := tokenClient(t, f, key, func(o *Options) { o.Timeout = 300 * time.Millisecond; o.MaxBackoff = 5 * time.Second })
			waits := recordSleeps(c)
			err := tc.call(c)
			if !tc.wantErr(err) {
				t.Errorf("unexpected error: %v", err)
			}
			if tc.wantErrStr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrStr)) {
				t.Errorf("error %v does not say %q", err, tc.wantErrStr)
			}
			if got := f.hitCount(tc.route); tc.wantHits >= 0 && got != tc.wantHits {
				t.Errorf("%s hit %d times, want %d", tc.route, got, tc.wantHits)
			}
			if got := f.hitCount("POST /auth/action/init"); got != tc.wantInits {
				t.Errorf("user-action init hit %d times, want %d", got, tc.wantInits)
			}
			if tc.wantWaits != nil && !equalDurations(*waits, tc.wantWaits) {
				t.Errorf("waits = %v, want %v", *waits, tc.wantWaits)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInitStepRetried(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("POST /permissions", permissionOK)
	inner := f.srv.Config.Handler
	f.srv.Config.Handler = failFirst(2, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/action/init" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	}, inner.ServeHTTP)
	c := tokenClient(t, f, key)
	waits := recordSleeps(c)
	if _, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"}); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	if len(*waits) != 2 {
		t.Errorf("waits = %v, want two backoffs", *waits)
	}
	for _, w := range *waits {
		if w <= 0 || w > 5*time.Millisecond {
			t.Errorf("backoff %v outside (0, MaxBackoff]", w)
		}
	}
}

func TestConnectionRefusedBeforeSending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: every dial fails before a byte is written
	key := newTestKey(t, KeyEd25519)
	creds := Credentials{APIURL: "http://" + addr, AuthToken: fakeJWT(map[string]any{orgClaim: map[string]any{"orgId": "or-1"}}), CredID: "c", PrivateKeyPEM: key.pem}
	reg := prometheus.NewRegistry()
	c := newTestClient(t, NewStaticCredentials(creds), func(o *Options) { o.Registerer = reg })
	recordSleeps(c)
	_, err = c.CreateWebhook(context.Background(), CreateWebhookRequest{URL: "https://x"})
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want a plain network error (nothing was sent)", err)
	}
	if got := testutil.ToFloat64(c.metrics.Requests.WithLabelValues("", "CreateUserActionChallenge", "error")); got != 4 {
		t.Errorf("network errors counted %v, want 4 attempts", got)
	}
}

func TestMutationRetriedWhenNothingWasSent(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("POST /permissions", permissionOK)
	c := tokenClient(t, f, key)
	recordSleeps(c)
	// The first real call fails to connect (nothing written); the next one goes through.
	s, err := c.session()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fails := 1
	s.http.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		fail := r.URL.Path == "/permissions" && fails > 0
		if fail {
			fails--
		}
		mu.Unlock()
		if fail {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	if _, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"}); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	if got := f.hitCount("POST /auth/action/init"); got != 2 {
		t.Errorf("init hit %d times, want 2 (a fresh user action for the resend)", got)
	}
	if got := f.hitCount("POST /permissions"); got != 1 {
		t.Errorf("create reached Dfns %d times, want 1", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCallerCancellation(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /webhooks/wh-1", badGateway)
	c := tokenClient(t, f, key)
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err := c.GetWebhook(ctx, "wh-1")
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 502 {
		t.Fatalf("err = %v, want the last answer (502)", err)
	}
	if got := f.hitCount("GET /webhooks/wh-1"); got != 1 {
		t.Errorf("hits = %d, want 1 after cancellation", got)
	}
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepContext on a cancelled context = %v", err)
	}
	if err := sleepContext(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepContext = %v", err)
	}
}

func TestRateLimiterShared(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /webhooks/wh-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"id": "wh-1"}) })
	c := tokenClient(t, f, key, func(o *Options) { o.QPS = 20; o.Burst = 1 })
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := c.GetWebhook(context.Background(), "wh-1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 5 calls at 20/s with a burst of 1 need at least 4 × 50 ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("5 calls took %v, want ≥ 200ms under the shared limiter", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetWebhook(ctx, "wh-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a cancelled context: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("POST /auth/service-accounts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	f.route("GET /auth/service-accounts/us-1", failFirst(1, badGateway, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) }))
	reg := prometheus.NewRegistry()
	c := tokenClient(t, f, key, func(o *Options) { o.Registerer = reg; o.Connection = "ClusterDfnsConnection/a" })
	ctx := context.Background()
	if _, err := c.CreateServiceAccount(ctx, CreateServiceAccountRequest{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetServiceAccount(ctx, "us-1"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		op, code string
		want     float64
	}{
		{"CreateServiceAccount", "200", 1},
		{"CreateUserActionChallenge", "200", 1},
		{"CreateUserActionSignature", "200", 1},
		{"GetServiceAccount", "502", 1},
		{"GetServiceAccount", "200", 1},
	}
	for _, tc := range cases {
		if got := testutil.ToFloat64(c.metrics.Requests.WithLabelValues("ClusterDfnsConnection/a", tc.op, tc.code)); got != tc.want {
			t.Errorf("dfns_api_requests_total{operation=%s,code=%s} = %v, want %v", tc.op, tc.code, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(c.metrics.Duration, "dfns_api_request_duration_seconds"); n != 4 {
		t.Errorf("duration series = %d, want 4 operations", n)
	}
	// A second client on the same registry shares the metrics instead of failing.
	c2 := tokenClient(t, f, key, func(o *Options) { o.Registerer = reg })
	if c2.metrics.Requests != c.metrics.Requests {
		t.Error("second client did not reuse the registered metrics")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP dfns_api_requests_total Requests sent to the Dfns API, by operation (official SDK method name) and HTTP status code ("error" when no answer came).
# TYPE dfns_api_requests_total counter
dfns_api_requests_total{code="200",connection="ClusterDfnsConnection/a",operation="CreateServiceAccount"} 1
dfns_api_requests_total{code="200",connection="ClusterDfnsConnection/a",operation="CreateUserActionChallenge"} 1
dfns_api_requests_total{code="200",connection="ClusterDfnsConnection/a",operation="CreateUserActionSignature"} 1
dfns_api_requests_total{code="200",connection="ClusterDfnsConnection/a",operation="GetServiceAccount"} 1
dfns_api_requests_total{code="502",connection="ClusterDfnsConnection/a",operation="GetServiceAccount"} 1
`), "dfns_api_requests_total"); err != nil {
		t.Error(err)
	}
	// A clashing collector of the same name leaves the client's metrics unregistered.
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "dfns_api_requests_total", Help: "other"}))
	if m := NewMetrics(clash); m.Requests == nil {
		t.Error("NewMetrics on a clashing registry returned no metrics")
	}
	(*Metrics)(nil).observe("", "X", 200, 0) // nil metrics are a no-op
}

func TestRetryAfterPausesEveryCall(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /permissions/pm-1", rateLimited("120"))
	f.route("GET /permissions/pm-2", permissionOK)
	reg := prometheus.NewRegistry()
	c := tokenClient(t, f, key, func(o *Options) { o.MaxBackoff = 5 * time.Second; o.Registerer = reg; o.Connection = "c" })
	waits := recordSleeps(c)
	_, err := c.GetPermission(context.Background(), "pm-1")
	if ra, ok := IsRateLimited(err); !ok || ra != 2*time.Minute {
		t.Fatalf("the long Retry-After is returned to the caller: %v", err)
	}
	if got := testutil.ToFloat64(c.metrics.Paused.WithLabelValues("c")); got < 119 || got > 120 {
		t.Errorf("dfns_api_paused_seconds_total = %v, want the 120 s Dfns asked for", got)
	}
	if _, err := c.GetPermission(context.Background(), "pm-2"); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] < 119*time.Second || (*waits)[0] > 2*time.Minute {
		t.Errorf("another call must wait out Dfns' Retry-After first: waits = %v", *waits)
	}
	if _, err := c.GetPermission(context.Background(), "pm-2"); err != nil || len(*waits) != 1 {
		t.Errorf("once it has passed, calls go at once: waits = %v, err %v", *waits, err)
	}
	// The first pause has passed: a new one of 2 min, then 1 min within it (nothing added), then
	// 3 min (1 min past the running one): 120 + 120 + 0 + 60 s in all.
	c.pause(2 * time.Minute)
	c.pause(time.Minute)
	c.pause(3 * time.Minute)
	if got := testutil.ToFloat64(c.metrics.Paused.WithLabelValues("c")); got < 299 || got > 301 {
		t.Errorf("dfns_api_paused_seconds_total = %v, want 300 s: the time calls were held, overlaps counted once", got)
	}
}

func TestCloseDropsTheConnectionsSeries(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /auth/service-accounts/us-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	reg := prometheus.NewRegistry()
	a := tokenClient(t, f, key, func(o *Options) { o.Registerer = reg; o.Connection = "DfnsConnection/team-a/x" })
	b := tokenClient(t, f, key, func(o *Options) { o.Registerer = reg; o.Connection = "DfnsConnection/team-b/x" })
	for _, c := range []*Client{a, b} {
		if _, err := c.GetServiceAccount(context.Background(), "us-1"); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if n := testutil.CollectAndCount(a.metrics.Requests, "dfns_api_requests_total"); n != 1 {
		t.Errorf("request series after closing one of two clients = %d, want 1 (the other's)", n)
	}
	if got := testutil.ToFloat64(b.metrics.Requests.WithLabelValues("DfnsConnection/team-b/x", "GetServiceAccount", "200")); got != 1 {
		t.Errorf("the other connection's count = %v, want 1", got)
	}
}

func TestAdmitWhenTheLimiterIsBookedAhead(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	f := newFakeDfns(t, key.signer.Public(), false)
	f.route("GET /auth/service-accounts/us-1", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, saJSON()) })
	c := tokenClient(t, f, key, func(o *Options) { o.QPS, o.Burst, o.MaxWait = 2, 1, 100*time.Millisecond })
	if err := c.Admit(); err != nil {
		t.Fatalf("Admit on an idle limiter = %v", err)
	}
	if _, err := c.GetServiceAccount(context.Background(), "us-1"); err != nil {
		t.Fatal(err)
	}
	err := c.Admit()
	after, throttled := IsThrottled(err)
	if !throttled || after < 300*time.Millisecond || after > 500*time.Millisecond {
		t.Fatalf("Admit right after a call at 2 qps = %v; want a ThrottledError asking for about 500ms", err)
	}
	if !IsRefused(err) {
		t.Error("a throttled start must count as refused: nothing was sent")
	}
	start := time.Now()
	if _, err := c.GetServiceAccount(context.Background(), "us-1"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("a call once work has started waited %s; want its turn (about 500ms)", waited)
	}
	if n := f.hitCount("GET /auth/service-accounts/us-1"); n != 2 {
		t.Errorf("reads sent = %d, want 2", n)
	}
}

// spendThenFail lets the first call of path reach Dfns, which spends its challenge, and then
// answers it with status: as a Dfns that failed after consuming the challenge would.
func spendThenFail(inner http.Handler, path string, status int) http.HandlerFunc {
	var mu sync.Mutex
	failed := false
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := r.URL.Path == path && !failed
		if first {
			failed = true
		}
		mu.Unlock()
		if !first {
			inner.ServeHTTP(w, r)
			return
		}
		inner.ServeHTTP(httptest.NewRecorder(), r)
		dfnsError(w, status, "failed after spending the challenge")
	}
}

// A challenge is single-use: an answer step that failed (5xx, 429) is retried from a new
// challenge, never with the one Dfns may have spent.
func TestChallengeFlowsRetryWithAFreshChallenge(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"user action after 503", "/auth/action", http.StatusServiceUnavailable},
		{"user action after 429", "/auth/action", http.StatusTooManyRequests},
		{"login after 502", "/auth/login", http.StatusBadGateway},
		{"login after 429", "/auth/login", http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newTestKey(t, KeyECDSAP256)
			f := newFakeDfns(t, key.signer.Public(), false)
			f.route("POST /permissions", permissionOK)
			f.srv.Config.Handler = spendThenFail(f.srv.Config.Handler, tc.path, tc.status)
			c := loginClient(t, f, key)
			waits := recordSleeps(c)
			if _, err := c.CreatePermission(context.Background(), CreatePermissionRequest{Name: "p"}); err != nil {
				t.Fatalf("CreatePermission: %v", err)
			}
			if got := f.hitCount("POST " + tc.path + "/init"); got != 2 {
				t.Errorf("%s/init calls = %d, want 2 (a fresh challenge for the retry)", tc.path, got)
			}
			if len(*waits) != 1 {
				t.Errorf("waits = %v, want one backoff before the new flow", *waits)
			}
		})
	}
}
