package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBodyBytes bounds every request body; Dfns access objects are small.
const maxBodyBytes = 1 << 20

// Options configures a sandbox Server.
type Options struct {
	// OrgID is the organisation ID; default: a generated "or-xxxxx-xxxxx-xxxxxxxxxxxxxxxx".
	OrgID string
	// Seed seeds the fault RNG and ID generation (deterministic when set).
	Seed int64
	// StateFile, when set, is loaded at New and written atomically after each change.
	StateFile string
	// TokenTTL is the lifetime of login tokens (default 1h).
	TokenTTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// HTTPClient sends webhook deliveries (default: a client with a 5 s timeout).
	HTTPClient *http.Client
	// Strict selects the less kind reading of the Dfns docs, behaviour by behaviour (zero:
	// the kind reading); Server.SetStrict changes it later. It is not kept in StateFile.
	Strict Strictness
}

// Server is one sandboxed Dfns organisation. It is safe for concurrent use.
type Server struct {
	opts   Options
	now    func() time.Time
	client *http.Client
	routes []*route

	mu sync.Mutex // guards st and its indexes
	st *state
	// The indexes of st by owner, oldest first: credentials by user ID (credIdx), applied
	// assignments by identity ID (asgIdx), tokens by user ID (tokIdx). Each is built at its
	// first read, takes additions in place, and is dropped (nil) when one of its records is
	// removed or st is replaced. Without them, every answer about one identity read every
	// record (n² at 10,000 service accounts: seconds under the state lock, and 14 ms a create).
	credIdx map[string][]*credRec
	asgIdx  map[string][]*assignRec
	tokIdx  map[string][]*tokenRec
	// memo, set while one list answer is built (under mu), holds every identity's pending
	// assignments, read once for the whole list instead of once per item.
	memo *listMemo

	faults     faultState // has its own lock so that the state lock stays off the latency sleep
	strict     atomic.Pointer[Strictness]
	deliveries sync.WaitGroup
}

// New creates a sandbox, loading Options.StateFile when it exists.
func New(opts Options) (*Server, error) {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	s := &Server{opts: opts, now: func() time.Time { return now().UTC() }, client: client}
	s.faults.init(opts.Seed)
	s.SetStrict(opts.Strict)
	st, err := s.loadOrInitState()
	if err != nil {
		return nil, err
	}
	s.replaceState(st)
	s.routes = s.buildRoutes()
	return s, nil
}

// OrgID returns the sandbox organisation's ID.
func (s *Server) OrgID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.OrgID
}

// Close waits for in-flight webhook deliveries to finish.
func (s *Server) Close() {
	s.deliveries.Wait()
}

// Handler returns the Dfns API plus the test controls under /sandbox/.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(rec)
			}
			writeError(w, errInternal("internal error"))
		}()
		if strings.HasPrefix(r.URL.Path, "/sandbox/") {
			s.serveControls(w, r)
			return
		}
		s.serveAPI(w, r)
	})
}

// apiError is an error answered in the Dfns shape {"error":{id,status,message,details}}.
type apiError struct {
	Status  int
	Message string
	Details map[string]any
}

// Error returns the message.
func (e *apiError) Error() string { return e.Message }

func newErr(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

func errBadRequest(format string, args ...any) *apiError {
	return newErr(http.StatusBadRequest, format, args...)
}
func errNotFound(format string, args ...any) *apiError {
	return newErr(http.StatusNotFound, format, args...)
}
func errForbidden(format string, args ...any) *apiError {
	return newErr(http.StatusForbidden, format, args...)
}
func errConflict(format string, args ...any) *apiError {
	return newErr(http.StatusConflict, format, args...)
}
func errUnauthorized(format string, args ...any) *apiError {
	return newErr(http.StatusUnauthorized, format, args...)
}
func errInternal(msg string) *apiError { return newErr(http.StatusInternalServerError, "%s", msg) }

func errorID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errInternal("internal error")
	}
	details := ae.Details
	if details == nil {
		details = map[string]any{}
	}
	writeJSON(w, ae.Status, map[string]any{"error": map[string]any{
		"id": errorID(), "status": ae.Status, "message": ae.Message, "details": details,
	}})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusNoContent || body == nil {
		w.WriteHeader(status)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// reply is a handler's successful answer.
type reply struct {
	status int
	body   any
}

func ok(body any) *reply { return &reply{status: http.StatusOK, body: body} }

// call carries one API request through its handler.
type call struct {
	r      *http.Request
	params map[string]string
	body   []byte
	caller *caller
	now    time.Time
}

func (c *call) param(name string) string { return c.params[name] }

// serveAPI runs one Dfns API call: routing, counters, latency, faults, then the handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt, params := s.match(r.Method, r.URL.Path)
	if rt == nil {
		writeError(w, errNotFound("route not found: %s %s", r.Method, r.URL.Path))
		return
	}
	caller := r.Header.Get("Authorization")
	if caller == "" {
		// An unauthenticated call (a login) names no one: told apart by connection, a
		// restarted client's login is not counted against the Retry-After its previous
		// process was sent.
		caller = "anonymous " + r.RemoteAddr
	}
	s.faults.arrive(caller, s.now())
	kind := s.faults.begin(rt.op)
	if !sleepCtx(r, s.faults.latency()) {
		return
	}
	if s.spendsChallenge(rt, kind) {
		_, _ = s.execute(rt, params, r) // the server fails after consuming the challenge
	}
	switch kind {
	case FaultInternal:
		writeError(w, errInternal("Internal Server Error"))
		return
	case FaultRateLimited:
		writeError(w, newErr(http.StatusTooManyRequests, "rate limit exceeded"))
		return
	case FaultRateLimitedRetry:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		s.faults.sentRetryAfter(caller, s.now())
		writeError(w, newErr(http.StatusTooManyRequests, "rate limit exceeded"))
		return
	case FaultTimeout:
		if sleepCtx(r, 30*time.Second) {
			writeError(w, newErr(http.StatusGatewayTimeout, "gateway timeout"))
		}
		return
	case FaultHeld:
		s.mu.Lock()
		cr, ap := s.newID("cr"), s.newID("ap")
		s.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]any{"id": cr, "kind": rt.op, "operationKind": "Create",
			"status": crPending, "approvalId": ap, "dateCreated": isoTime(s.now())})
		return
	}
	rep, err := s.execute(rt, params, r)
	if kind == FaultAnswerLost {
		dropAnswer(w)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

// spendsChallenge reports whether, in strict "challenge-spent" mode, a fault that answers
// without running the handler hits a call that consumes a challenge (/auth/login,
// /auth/action): the handler runs first, so that a retry with the same challenge is refused
// as a reused one. The init calls hand out challenges and consume none.
func (s *Server) spendsChallenge(rt *route, kind FaultKind) bool {
	if kind == "" || kind == FaultAnswerLost || !s.Strict().ChallengeSpent {
		return false
	}
	return rt.op == "Login" || rt.op == "CreateUserActionSignature"
}

// sleepCtx waits d or until the request is cancelled; it reports whether d elapsed.
func sleepCtx(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// dropAnswer closes the connection without an answer (HTTP/1.1) or aborts the stream.
func dropAnswer(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// execute authenticates the caller, checks the user action and permission, and runs the
// handler under the state lock; state is persisted after every non-GET call.
func (s *Server) execute(rt *route, params map[string]string, r *http.Request) (*reply, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return nil, errBadRequest("request body is too large or unreadable")
	}
	s.mu.Lock()
	c := &call{r: r, params: params, body: body, now: s.now()}
	expired := s.sweepExpiredApprovals(c.now)
	rep, herr := s.runLocked(rt, c)
	if r.Method != http.MethodGet || expired {
		if perr := s.persistLocked(); perr != nil {
			s.mu.Unlock()
			return nil, errInternal("state could not be saved")
		}
	}
	s.mu.Unlock()
	if herr == nil && rt.unlocked {
		return rt.handle(c)
	}
	return rep, herr
}

func (s *Server) runLocked(rt *route, c *call) (*reply, error) {
	if rt.auth == authNone {
		return rt.handle(c)
	}
	cl, err := s.authenticate(c.r, c.now)
	if err != nil {
		return nil, err
	}
	c.caller = cl
	if rt.auth == authSigned {
		if err := s.consumeUserAction(c); err != nil {
			return nil, err
		}
	}
	if rt.perm != "" && !s.allowed(cl, rt.perm) {
		return nil, errForbidden("%s is not authorized to perform operation (%s)", cl.describe(), rt.perm)
	}
	if rt.unlocked {
		return nil, nil
	}
	return rt.handle(c)
}
