package sandbox

import (
	"crypto/rand"
	"encoding/binary"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"
)

// FaultKind names a failure the sandbox can inject into an API call.
type FaultKind string

// Fault kinds.
const (
	// FaultInternal answers 500.
	FaultInternal FaultKind = "internal"
	// FaultRateLimited answers 429 without Retry-After.
	FaultRateLimited FaultKind = "rate-limited"
	// FaultRateLimitedRetry answers 429 with Retry-After: 1.
	FaultRateLimitedRetry FaultKind = "rate-limited-retry"
	// FaultTimeout stalls the response until the client gives up (request context done) or 30 s.
	FaultTimeout FaultKind = "timeout"
	// FaultAnswerLost commits the change, then drops the connection without an answer.
	FaultAnswerLost FaultKind = "answer-lost"
	// FaultHeld answers 202 with a pending change request, as a policy holding the change for
	// an approval that never comes; the change is not made. Only through InjectOnce: a random
	// fault of this kind would hold what a test expects to converge.
	FaultHeld FaultKind = "held"
)

// allFaultKinds is the choice when Faults.Kinds is empty.
var allFaultKinds = []FaultKind{FaultInternal, FaultRateLimited, FaultRateLimitedRetry, FaultTimeout, FaultAnswerLost}

func validFaultKind(k FaultKind) bool { return slices.Contains(allFaultKinds, k) }

// Faults configures injected failures; the zero value injects nothing.
type Faults struct {
	// Latency is added to every API call (not to /sandbox/ controls).
	Latency time.Duration
	// ErrorRate is the share (0..1) of API calls that get a fault.
	ErrorRate float64
	// Kinds are chosen uniformly; empty means all kinds.
	Kinds []FaultKind
	// Operations limits faults to these operations; empty means all.
	Operations []string
}

// Counter keys that are not operations: how many 429s with Retry-After were sent, and how many
// calls came from the same caller before that Retry-After had passed (a client that does not
// honour it).
const (
	CounterRetryAfterSent   = "sandbox:429-with-retry-after"
	CounterCallsBeforeRetry = "sandbox:calls-before-retry-after"
	retryAfterSeconds       = 1
	// Calls already sent when the 429 left. A loaded machine delays them: at 100 ms, one in
	// about six chaos runs beside a `make test` counted such a call.
	retryAfterInFlightLeeway = 250 * time.Millisecond
	retryAfterClockTolerance = 20 * time.Millisecond
)

// faultState holds the fault configuration, one-shot injections, counters and the RNG.
type faultState struct {
	mu       sync.Mutex
	cfg      Faults
	once     map[string][]FaultKind
	counters map[string]int
	rng      *mrand.Rand
	// limited is, per caller (its Authorization header), when the last 429 with Retry-After
	// was sent.
	limited map[string]time.Time
}

func (f *faultState) init(seed int64) {
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.LittleEndian.Uint64(b[:]))
	}
	f.rng = mrand.New(mrand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	f.once = map[string][]FaultKind{}
	f.counters = map[string]int{}
	f.limited = map[string]time.Time{}
}

// arrive checks a call of caller against the last Retry-After it was sent: a call arriving
// after the calls in flight could have, and before the Retry-After passed, counts as not
// honouring it.
func (f *faultState) arrive(caller string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sent, ok := f.limited[caller]
	if !ok {
		return
	}
	until := sent.Add(retryAfterSeconds*time.Second - retryAfterClockTolerance)
	if now.After(sent.Add(retryAfterInFlightLeeway)) && now.Before(until) {
		f.counters[CounterCallsBeforeRetry]++
	}
}

// sentRetryAfter records a 429 with Retry-After sent to caller.
func (f *faultState) sentRetryAfter(caller string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limited[caller] = now
	f.counters[CounterRetryAfterSent]++
}

// begin counts a call of op and decides which fault, if any, it gets ("" for none).
func (f *faultState) begin(op string) FaultKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters[op]++
	if q := f.once[op]; len(q) > 0 {
		f.once[op] = q[1:]
		return q[0]
	}
	if f.cfg.ErrorRate <= 0 {
		return ""
	}
	if len(f.cfg.Operations) > 0 && !slices.Contains(f.cfg.Operations, op) {
		return ""
	}
	if f.rng.Float64() >= f.cfg.ErrorRate {
		return ""
	}
	kinds := f.cfg.Kinds
	if len(kinds) == 0 {
		kinds = allFaultKinds
	}
	return kinds[f.rng.IntN(len(kinds))]
}

func (f *faultState) latency() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.Latency
}

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	f.Kinds = slices.Clone(f.Kinds)
	f.Operations = slices.Clone(f.Operations)
	s.faults.cfg = f
}

// GetFaults returns the current fault configuration.
func (s *Server) GetFaults() Faults {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	f := s.faults.cfg
	f.Kinds = slices.Clone(f.Kinds)
	f.Operations = slices.Clone(f.Operations)
	return f
}

// InjectOnce makes the next call of operation get the fault (deterministic; for tests).
// Several injections for the same operation are used in order.
func (s *Server) InjectOnce(operation string, kind FaultKind) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.once[operation] = append(s.faults.once[operation], kind)
}

// Counters returns calls per operation (including ones that got a fault).
func (s *Server) Counters() map[string]int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]int, len(s.faults.counters))
	maps.Copy(out, s.faults.counters)
	return out
}

// ResetCounters zeroes the call counters.
func (s *Server) ResetCounters() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.counters = map[string]int{}
}
