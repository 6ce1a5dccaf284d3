package dfns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	DefaultQPS         = 10
	DefaultBurst       = 20
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 4
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	// DefaultMaxAnswerSize bounds an answer read from Dfns. The lists Dfns does not paginate
	// grow with the organisation: about 1 KB per service account with one permission in the
	// shape Dfns documents, so this reads the list of more than 100,000
	// (docs/dfns-api.md, "Pagination"). The former 10 MiB failed at about 9,000.
	DefaultMaxAnswerSize = 128 << 20
)

// errAnswerTooLarge: Dfns answered more than Options.MaxAnswerSize; trying again would not help.
var errAnswerTooLarge = errors.New("the answer is larger than the client reads (Options.MaxAnswerSize)")

// Options configure a Client. Zero values take the defaults above.
type Options struct {
	// Credentials supplies the operator's identity; it is asked before every call, so
	// rotated credentials take effect without a restart. Required.
	Credentials CredentialsSource
	// BaseURL overrides the credentials' DFNS_API_URL (the manager's --dfns-api-url).
	BaseURL string
	// QPS and Burst size the rate limiter shared by every call of this client, including
	// retries and the login and user-action steps.
	QPS   float64
	Burst int
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
	// Registerer receives the client's metrics (nil: none).
	Registerer prometheus.Registerer
	// Connection names the connection the client serves, in the metrics' connection label.
	Connection string
	// MaxWait is how far ahead the rate limiter may be booked for Admit to let new work start;
	// 0: Admit always does.
	MaxWait time.Duration
	// Now tells the time, for token expiry and Retry-After pauses (default time.Now).
	Now func() time.Time
	// MaxAttempts bounds the attempts of one request, first one included.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff between attempts. A 429 whose
	// Retry-After is longer than MaxBackoff is returned at once for the caller to requeue.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxAnswerSize bounds an answer read from Dfns, in bytes; a larger one fails the call.
	MaxAnswerSize int64
}

// Client is the Dfns API client. It is safe for concurrent use; build one per process.
type Client struct {
	opts    Options
	limiter *rate.Limiter
	metrics *Metrics
	sleep   func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	sess *session

	// pausedUntil holds every call after Dfns answered 429 with Retry-After: the limit is
	// Dfns', not one request's, so no call goes out before the time it asked for.
	pauseMu     sync.Mutex
	pausedUntil time.Time
}

var _ API = (*Client)(nil)

// New builds a client; it reaches Dfns only when first used.
func New(opts Options) (*Client, error) {
	if opts.Credentials == nil {
		return nil, errors.New("dfns client: no credentials source")
	}
	if opts.BaseURL != "" {
		if err := (&Credentials{APIURL: opts.BaseURL}).validateURL(); err != nil {
			return nil, fmt.Errorf("dfns client: base URL: not an absolute http(s) URL")
		}
	}
	setDefaults(&opts)
	return &Client{
		opts:    opts,
		limiter: rate.NewLimiter(rate.Limit(opts.QPS), opts.Burst),
		metrics: NewMetrics(opts.Registerer),
		sleep:   sleepContext,
	}, nil
}

func setDefaults(o *Options) {
	if o.QPS <= 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxAnswerSize <= 0 {
		o.MaxAnswerSize = DefaultMaxAnswerSize
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Endpoint returns the base URL and org ID the client talks to.
func (c *Client) Endpoint(_ context.Context) (apiURL, orgID string, err error) {
	s, err := c.session()
	if err != nil {
		return "", "", err
	}
	return s.baseURL, s.creds.OrgID, nil
}

// CanCreateIdentities is true in login mode: only a user logged in with a Key credential may
// create service accounts and PATs; a service-account token or a PAT may not.
func (c *Client) CanCreateIdentities(_ context.Context) (bool, error) {
	s, err := c.session()
	if err != nil {
		return false, err
	}
	return s.creds.Mode() == ModeLogin, nil
}

// session is what the client derives from one set of credentials: base URL, signer, HTTP
// client with the CA, and the login token.
type session struct {
	creds   *Credentials
	baseURL string
	signer  *keySigner
	http    *http.Client

	mu        sync.Mutex // guards token and refreshAt; held while logging in
	token     string
	refreshAt time.Time
}

// session returns the session for the current credentials, building a new one when they
// changed.
func (c *Client) session() (*session, error) {
	creds, err := c.opts.Credentials.Credentials()
	if err == nil && creds == nil {
		err = errors.New("no credentials")
	}
	if err != nil {
		if errors.Is(err, ErrCredentials) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.creds == creds {
		return c.sess, nil
	}
	s, err := c.newSession(creds, c.sess)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	c.sess = s
	return s, nil
}

func (c *Client) newSession(creds *Credentials, old *session) (*session, error) {
	s := &session{creds: creds, baseURL: c.opts.BaseURL}
	if s.baseURL == "" {
		s.baseURL = strings.TrimRight(creds.APIURL, "/")
	}
	if s.baseURL == "" {
		s.baseURL = DefaultAPIURL
	}
	if creds.CanSign() {
		signer, err := newKeySigner(creds.CredID, creds.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		s.signer = signer
	}
	if creds.Mode() == ModeLogin && s.signer == nil {
		return nil, fmt.Errorf("login mode needs %s and %s", FileCredID, FilePrivateKey)
	}
	if old != nil && bytes.Equal(old.creds.CACertPEM, creds.CACertPEM) {
		s.http = old.http
		return s, nil
	}
	hc, err := newHTTPClient(creds.CACertPEM)
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.http.CloseIdleConnections()
	}
	s.http = hc
	return s, nil
}

// newHTTPClient trusts the system roots plus caPEM. It never follows redirects, so that the
// bearer and user-action tokens only ever go to the configured API.
func newHTTPClient(caPEM []byte) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%s: no PEM certificate found", FileCACert)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// request is one HTTP exchange with Dfns.
type request struct {
	op         string // official Go SDK method name, the metric label
	method     string
	path       string // with the query string
	body       []byte // nil: no body
	userAction string // X-DFNS-USERACTION
	anonymous  bool   // no bearer token (login steps)
	// stream, when set, reads a 200 answer as it arrives instead of the answer being kept
	// whole first: a list Dfns does not paginate is megabytes, and its items are what is kept.
	// It is called once per attempt, and must keep nothing of a failed one.
	stream func(io.Reader) error
}

// response is a complete answer, or the status of one read by request.stream.
type response struct {
	status int
	header http.Header
	body   []byte
	// streamed: the answer was read by request.stream, which said streamErr of it (of the
	// answer, not of the connection).
	streamed  bool
	streamErr error
}

// readErrors remembers the first error of reading an answer, to tell a broken connection from
// an answer that is not what was expected.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// transportError is an exchange that got no complete answer.
type transportError struct {
	op      string
	written bool // the whole request went out: Dfns may have acted on it
	err     error
}

func (e *transportError) Error() string { return fmt.Sprintf("dfns %s: %v", e.op, e.err) }

func (e *transportError) Unwrap() error { return e.err }

// attempt sends one request, after any pause Dfns asked for and the rate limiter.
func (c *Client) attempt(ctx context.Context, s *session, bearer string, r request) (*response, error) {
	if err := c.waitPause(ctx); err != nil {
		return nil, &transportError{op: r.op, err: fmt.Errorf("waiting for Dfns' Retry-After: %w", err)}
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, &transportError{op: r.op, err: fmt.Errorf("rate limiter: %w", err)}
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var written atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
	})
	req, err := c.newRequest(actx, s, bearer, r)
	if err != nil {
		return nil, &transportError{op: r.op, err: err}
	}
	start := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		c.metrics.observe(c.opts.Connection, r.op, 0, time.Since(start))
		return nil, &transportError{op: r.op, written: written.Load(), err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusTooManyRequests {
		c.pause(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	if r.stream != nil && resp.StatusCode == http.StatusOK {
		return c.readStream(r, resp, start)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxAnswerSize+1))
	c.metrics.observe(c.opts.Connection, r.op, resp.StatusCode, time.Since(start))
	if err != nil {
		return nil, &transportError{op: r.op, written: true, err: fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err)}
	}
	if int64(len(body)) > c.opts.MaxAnswerSize {
		// Cut short, it would fail as invalid JSON, which says nothing of the cause.
		return nil, &transportError{op: r.op, written: true, err: fmt.Errorf("status %d: %w: %d bytes",
			resp.StatusCode, errAnswerTooLarge, c.opts.MaxAnswerSize)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// readStream reads a 200 answer with r.stream; only a broken connection is worth another
// attempt.
func (c *Client) readStream(r request, resp *http.Response, start time.Time) (*response, error) {
	limited := &io.LimitedReader{R: resp.Body, N: c.opts.MaxAnswerSize + 1}
	body := &readErrors{r: limited}
	err := r.stream(body)
	c.metrics.observe(c.opts.Connection, r.op, resp.StatusCode, time.Since(start))
	switch {
	case limited.N <= 0:
		return nil, &transportError{op: r.op, written: true, err: fmt.Errorf("status %d: %w: %d bytes",
			resp.StatusCode, errAnswerTooLarge, c.opts.MaxAnswerSize)}
	case body.err != nil:
		return nil, &transportError{op: r.op, written: true, err: fmt.Errorf("read answer (status %d): %w", resp.StatusCode, body.err)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, streamed: true, streamErr: err}, nil
}

// Admit lets a unit of work (one reconcile) start, or fails with a *ThrottledError when the
// rate limiter is booked further ahead than MaxWait: the caller then requeues rather than hold
// a worker that other connections share. It sends nothing and books nothing; once work has
// started, each of its calls waits its turn, so that no call sequence is left half done.
func (c *Client) Admit() error {
	if c.opts.MaxWait <= 0 {
		return nil
	}
	tokens := c.limiter.TokensAt(time.Now())
	if tokens >= 1 {
		return nil
	}
	wait := time.Duration((1 - tokens) / float64(c.limiter.Limit()) * float64(time.Second))
	if wait <= c.opts.MaxWait {
		return nil
	}
	return &ThrottledError{Op: "Admit", After: wait}
}

// pause holds every call for d (a Retry-After); a shorter pause never cuts a longer one.
func (c *Client) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	now := c.opts.Now()
	if until := now.Add(d); until.After(c.pausedUntil) {
		// Only the time this pause adds to one already running is counted.
		from := now
		if c.pausedUntil.After(now) {
			from = c.pausedUntil
		}
		c.metrics.paused(c.opts.Connection, until.Sub(from))
		c.pausedUntil = until
	}
}

// waitPause waits until the pause Dfns asked for has passed.
func (c *Client) waitPause(ctx context.Context) error {
	c.pauseMu.Lock()
	d := c.pausedUntil.Sub(c.opts.Now())
	c.pauseMu.Unlock()
	if d <= 0 {
		return nil
	}
	return c.sleep(ctx, d)
}

func (c *Client) newRequest(ctx context.Context, s *session, bearer string, r request) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, s.baseURL+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dfns-operator")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if r.userAction != "" {
		req.Header.Set("X-DFNS-USERACTION", r.userAction)
	}
	return req, nil
}

// retryable reports whether an answer (or its absence) is worth another try of a request
// that is safe to repeat.
func retryable(resp *response, err error) bool {
	if _, throttled := IsThrottled(err); throttled || errors.Is(err, errAnswerTooLarge) {
		return false
	}
	if err != nil {
		return true
	}
	return resp.status == http.StatusTooManyRequests || resp.status >= 500
}

// backoff returns the wait before attempt n+1, or false when Dfns asked for a longer pause
// than the client is willing to wait.
func (c *Client) backoff(n int, resp *response) (time.Duration, bool) {
	var retryAfter time.Duration
	if resp != nil {
		retryAfter = parseRetryAfter(resp.header.Get("Retry-After"), time.Now())
	}
	return c.backoffAfter(n, retryAfter)
}

// backoffAfter is backoff with the Retry-After Dfns gave (0: none).
func (c *Client) backoffAfter(n int, retryAfter time.Duration) (time.Duration, bool) {
	if retryAfter > 0 {
		return retryAfter, retryAfter <= c.opts.MaxBackoff
	}
	d := c.opts.MinBackoff << min(n-1, 16)
	if d <= 0 || d > c.opts.MaxBackoff {
		d = c.opts.MaxBackoff
	}
	// Jitter: a random point in the upper half of the window.
	return d/2 + rand.N(d/2+1), true
}

// exchange sends a request that is safe to repeat (a read, or a step of the login and
// user-action flows), retrying on 429, 5xx and network errors, and logging in again once on
// a 401.
func (c *Client) exchange(ctx context.Context, s *session, r request) (*response, error) {
	relogged := false
	for n := 1; ; n++ {
		bearer, err := c.bearer(ctx, s, r.anonymous)
		if err != nil {
			return nil, err
		}
		resp, err := c.attempt(ctx, s, bearer, r)
		if err == nil && resp.status == http.StatusUnauthorized && c.canRelogin(s, r, relogged) {
			s.invalidate(bearer)
			relogged = true
			continue
		}
		if !retryable(resp, err) || n >= c.opts.MaxAttempts || ctx.Err() != nil {
			return resp, err
		}
		wait, ok := c.backoff(n, resp)
		if !ok {
			return resp, err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return resp, err
		}
	}
}

func (c *Client) canRelogin(s *session, r request, relogged bool) bool {
	return !relogged && !r.anonymous && s.creds.Mode() == ModeLogin
}

// mutate sends a signed change: a fresh user-action token per attempt, and a new attempt
// only when Dfns certainly did not apply the previous one (429, 401 before a new login, or a
// connection that failed before the request was written).
func (c *Client) mutate(ctx context.Context, s *session, r request) (*response, error) {
	relogged := false
	for n := 1; ; n++ {
		ua, err := c.userAction(ctx, s, r)
		if err != nil {
			return nil, err
		}
		bearer, err := c.bearer(ctx, s, false)
		if err != nil {
			return nil, err
		}
		r.userAction = ua
		resp, err := c.attempt(ctx, s, bearer, r)
		if err != nil {
			if !c.retryMutation(ctx, n, err) {
				return nil, outcomeError(err)
			}
			continue
		}
		if resp.status == http.StatusUnauthorized && c.canRelogin(s, r, relogged) {
			s.invalidate(bearer)
			relogged = true
			continue
		}
		if resp.status != http.StatusTooManyRequests || n >= c.opts.MaxAttempts {
			return resp, nil
		}
		wait, ok := c.backoff(n, resp)
		if !ok || c.sleep(ctx, wait) != nil {
			return resp, nil
		}
	}
}

// retryMutation waits and reports true when a failed mutation attempt never left the client.
func (c *Client) retryMutation(ctx context.Context, n int, err error) bool {
	var te *transportError
	if !errors.As(err, &te) || te.written || n >= c.opts.MaxAttempts || ctx.Err() != nil {
		return false
	}
	wait, _ := c.backoff(n, nil)
	return c.sleep(ctx, wait) == nil
}

// outcomeError marks a failed mutation whose request was written as of unknown outcome.
func outcomeError(err error) error {
	var te *transportError
	if errors.As(err, &te) && te.written {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// userActionInit is the body of POST /auth/action/init, fields in the order the Go SDK sends
// them (it marshals a map, so the keys are sorted).
type userActionInit struct {
	Method     string `json:"userActionHttpMethod"`
	Path       string `json:"userActionHttpPath"`
	Payload    string `json:"userActionPayload"`
	ServerKind string `json:"userActionServerKind"`
}

// signedChallenge is the body of POST /auth/action and POST /auth/login.
type signedChallenge struct {
	ChallengeIdentifier string               `json:"challengeIdentifier"`
	FirstFactor         *credentialAssertion `json:"firstFactor"`
}

// userAction runs init → sign → /auth/action for r and returns the single-use token, with a
// fresh challenge for each try (see freshChallenges).
func (c *Client) userAction(ctx context.Context, s *session, r request) (string, error) {
	return freshChallenges(ctx, c, func() (string, bool, error) { return c.userActionOnce(ctx, s, r) })
}

// userActionOnce is one user-action flow.
func (c *Client) userActionOnce(ctx context.Context, s *session, r request) (string, bool, error) {
	if s.signer == nil {
		return "", false, fmt.Errorf("%w: dfns %s needs a user-action signature, but %s and %s are not set",
			ErrCredentials, r.op, FileCredID, FilePrivateKey)
	}
	initBody, err := json.Marshal(userActionInit{
		Method: r.method, Path: r.path, Payload: string(r.body), ServerKind: "Api",
	})
	if err != nil {
		return "", false, fmt.Errorf("encode user-action challenge request: %w", err)
	}
	var ch challenge
	const initOp = "CreateUserActionChallenge"
	resp, err := c.exchange(ctx, s, request{op: initOp, method: http.MethodPost, path: "/auth/action/init", body: initBody})
	if err := finish(initOp, resp, err, &ch, callRead); err != nil {
		return "", false, err
	}
	assertion, err := s.signer.sign(&ch)
	if err != nil {
		return "", false, fmt.Errorf("%w: dfns %s: %w", ErrCredentials, initOp, err)
	}
	body, err := json.Marshal(signedChallenge{ChallengeIdentifier: ch.ChallengeIdentifier, FirstFactor: assertion})
	if err != nil {
		return "", false, fmt.Errorf("encode user-action signature: %w", err)
	}
	var out struct {
		UserAction string `json:"userAction"`
	}
	const actionOp = "CreateUserActionSignature"
	again, err := c.answerChallenge(ctx, s, request{op: actionOp, method: http.MethodPost, path: pathUserAction, body: body}, &out)
	if err != nil {
		return "", again, err
	}
	if out.UserAction == "" {
		return "", false, fmt.Errorf("dfns %s: answer carries no userAction token", actionOp)
	}
	return out.UserAction, false, nil
}

// bearer returns the token for the Authorization header ("" for anonymous requests).
func (c *Client) bearer(ctx context.Context, s *session, anonymous bool) (string, error) {
	if anonymous {
		return "", nil
	}
	if s.creds.Mode() == ModeToken {
		return s.creds.AuthToken, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && (s.refreshAt.IsZero() || c.opts.Now().Before(s.refreshAt)) {
		return s.token, nil
	}
	token, err := c.login(ctx, s)
	if err != nil {
		return "", err
	}
	s.token, s.refreshAt = token, c.refreshTime(token)
	return token, nil
}

// refreshTime is when a login token should be replaced: a minute before it expires, or
// earlier for short-lived tokens (a quarter of the lifetime). Zero: no exp claim.
func (c *Client) refreshTime(token string) time.Time {
	claims, err := decodeClaims(token)
	if err != nil {
		return time.Time{}
	}
	exp, ok := claims.expiry()
	if !ok {
		return time.Time{}
	}
	life := exp.Sub(c.opts.Now())
	return exp.Add(-min(time.Minute, max(life/4, 0)))
}

// invalidate drops the login token if it is still token, so that the next call logs in.
func (s *session) invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == token {
		s.token = ""
	}
}

// loginInit is the body of POST /auth/login/init.
type loginInit struct {
	Username string `json:"username"`
	OrgID    string `json:"orgId"`
}

// login runs /auth/login/init → sign → /auth/login and returns the token, with a fresh
// challenge for each try (see freshChallenges).
func (c *Client) login(ctx context.Context, s *session) (string, error) {
	return freshChallenges(ctx, c, func() (string, bool, error) { return c.loginOnce(ctx, s) })
}

// freshChallenges runs a challenge flow (init → sign → answer) until it succeeds or fails in a
// way another try cannot fix. A challenge is single-use, and Dfns may have spent it on an
// answer that then failed (429, 5xx, a lost connection), so a retry starts from a new
// challenge; neither official SDK sends a challenge twice. The flow reports again when its
// answer step failed in a way worth another try (its init step has its own retries).
func freshChallenges(ctx context.Context, c *Client, flow func() (string, bool, error)) (string, error) {
	for n := 1; ; n++ {
		out, again, err := flow()
		if err == nil || !again || n >= c.opts.MaxAttempts || ctx.Err() != nil {
			return out, err
		}
		retryAfter, _ := IsRateLimited(err)
		wait, ok := c.backoffAfter(n, retryAfter)
		if !ok || c.sleep(ctx, wait) != nil {
			return out, err
		}
	}
}

// answerChallenge sends the answer step of a challenge flow once, and reports whether a new
// flow is worth a try.
func (c *Client) answerChallenge(ctx context.Context, s *session, r request, out any) (bool, error) {
	bearer, err := c.bearer(ctx, s, r.anonymous)
	if err != nil {
		return false, err
	}
	resp, err := c.attempt(ctx, s, bearer, r)
	if err == nil && resp.status == http.StatusUnauthorized && !r.anonymous && s.creds.Mode() == ModeLogin {
		// The login token expired meanwhile: the next flow logs in first.
		s.invalidate(bearer)
		return true, finish(r.op, resp, nil, out, callRead)
	}
	return retryable(resp, err), finish(r.op, resp, err, out, callRead)
}

// loginOnce is one login flow.
func (c *Client) loginOnce(ctx context.Context, s *session) (string, bool, error) {
	body, err := json.Marshal(loginInit{Username: s.creds.Username, OrgID: s.creds.OrgID})
	if err != nil {
		return "", false, fmt.Errorf("encode login request: %w", err)
	}
	var ch challenge
	const initOp = "CreateLoginChallenge"
	resp, err := c.exchange(ctx, s, request{op: initOp, method: http.MethodPost, path: "/auth/login/init", body: body, anonymous: true})
	if err := finish(initOp, resp, err, &ch, callRead); err != nil {
		return "", false, loginError(err)
	}
	assertion, err := s.signer.sign(&ch)
	if err != nil {
		return "", false, fmt.Errorf("%w: dfns %s: %w", ErrCredentials, initOp, err)
	}
	body, err = json.Marshal(signedChallenge{ChallengeIdentifier: ch.ChallengeIdentifier, FirstFactor: assertion})
	if err != nil {
		return "", false, fmt.Errorf("encode login: %w", err)
	}
	var out struct {
		Token string `json:"token"`
	}
	const loginOp = "Login"
	again, err := c.answerChallenge(ctx, s, request{op: loginOp, method: http.MethodPost, path: pathLogin, body: body, anonymous: true}, &out)
	if err != nil {
		if again {
			return "", true, fmt.Errorf("login: %w", err)
		}
		return "", false, loginError(err)
	}
	if out.Token == "" {
		return "", false, fmt.Errorf("%w: dfns %s: answer carries no token (is %s an SSO user?)", ErrCredentials, loginOp, FileUsername)
	}
	return out.Token, false, nil
}

// loginError marks a login refused by Dfns (4xx) as a credentials problem.
func loginError(err error) error {
	if e, ok := asError(err); ok && e.StatusCode >= 400 && e.StatusCode < 500 {
		return fmt.Errorf("%w: login failed: %w", ErrCredentials, err)
	}
	return fmt.Errorf("login: %w", err)
}

// The paths of the two challenge flows' answer steps.
const (
	pathUserAction = "/auth/action"
	pathLogin      = "/auth/login"
)

// callKind tells finish how to treat an answer.
type callKind int

const (
	callRead     callKind = iota // a read or a flow step
	callMutation                 // a signed change, which Dfns may hold for approval (202)
)

// finish turns an answer into out or an error.
func finish(op string, resp *response, err error, out any, kind callKind) error {
	if err != nil {
		return err
	}
	// Any change may answer 202: the official TypeScript SDK treats every 202 as held for
	// approval, whatever the endpoint (docs/dfns-compatibility.md).
	if resp.status == http.StatusAccepted && kind != callRead {
		return pendingError(op, resp)
	}
	if resp.status < 200 || resp.status > 299 {
		e, hasBody := decodeError(op, resp.status, resp.header, resp.body)
		gateway := resp.status == http.StatusBadGateway || resp.status == http.StatusServiceUnavailable ||
			resp.status == http.StatusGatewayTimeout
		e.outcomeUnknown = kind != callRead && gateway && !hasBody
		return e
	}
	if resp.streamed {
		if resp.streamErr != nil {
			return fmt.Errorf("dfns %s: decode answer: %s", op, describeJSONError(resp.streamErr))
		}
		return nil
	}
	if out == nil || resp.status == http.StatusNoContent || len(bytes.TrimSpace(resp.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		derr := fmt.Errorf("dfns %s: decode answer: %s", op, describeJSONError(err))
		if kind != callRead {
			return fmt.Errorf("%w: %w", ErrOutcomeUnknown, derr)
		}
		return derr
	}
	return nil
}

// pendingError decodes the change request of a 202.
func pendingError(op string, resp *response) error {
	var cr ChangeRequest
	if err := json.Unmarshal(resp.body, &cr); err != nil || cr.ID == "" {
		return fmt.Errorf("%w: dfns %s: status 202 without a readable change request", ErrOutcomeUnknown, op)
	}
	return &Error{StatusCode: http.StatusAccepted, Operation: op, Message: "pending approval", ChangeRequest: &cr}
}

// describeJSONError says what is wrong with an answer without quoting it.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type (want %s)", te.Field, te.Type)
	default:
		return "not the expected JSON"
	}
}

// get reads path into out, with retries.
func (c *Client) get(ctx context.Context, op, path string, out any) error {
	return c.getStream(ctx, op, path, out, nil)
}

// getStream is get with a 200 answer read by stream (nil: into out).
func (c *Client) getStream(ctx context.Context, op, path string, out any, stream func(io.Reader) error) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	resp, err := c.exchange(ctx, s, request{op: op, method: http.MethodGet, path: path, stream: stream})
	return finish(op, resp, err, out, callRead)
}

// change sends a signed change; body nil sends no body (payload "").
func (c *Client) change(ctx context.Context, op, method, path string, body, out any) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	var b []byte
	if body != nil {
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("dfns %s: encode request: %w", op, err)
		}
	}
	resp, err := c.mutate(ctx, s, request{op: op, method: method, path: path, body: b})
	return finish(op, resp, err, out, callMutation)
}

// Close drops the client's metric series: its connection is gone. The client must not be
// used afterwards (its calls would record series again).
func (c *Client) Close() {
	c.metrics.forget(c.opts.Connection)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil {
		c.sess.http.CloseIdleConnections()
	}
}

// Account is who the client acts as, as Check found it.
type Account struct {
	// OrgID is the organisation the credentials act in.
	OrgID string
	// Identity is the user logged in as (login mode), or "token" for a service-account token
	// or personal access token used as is.
	Identity string
}

// Check proves the credentials work: in login mode it logs in (or keeps a token still valid);
// in token mode it makes one read, and a token refused with 401 is a credentials error. A 403
// proves the token was accepted: it only lacks the right to that read.
func (c *Client) Check(ctx context.Context) (Account, error) {
	s, err := c.session()
	if err != nil {
		return Account{}, err
	}
	acct := Account{OrgID: s.creds.OrgID, Identity: s.creds.Username}
	if s.creds.Mode() == ModeLogin {
		if _, err := c.bearer(ctx, s, false); err != nil {
			return Account{}, err
		}
		return acct, nil
	}
	acct.Identity = "token"
	if acct.OrgID == "" {
		if claims, err := decodeClaims(s.creds.AuthToken); err == nil {
			acct.OrgID = claims.orgID()
		}
	}
	_, err = c.ListPersonalAccessTokens(ctx)
	if e, ok := asError(err); ok {
		switch e.StatusCode {
		case http.StatusForbidden:
			return acct, nil
		case http.StatusUnauthorized:
			return Account{}, fmt.Errorf("%w: the token was refused: %w", ErrCredentials, err)
		}
	}
	if err != nil {
		return Account{}, err
	}
	return acct, nil
}
