package dfns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ErrCredentials is wrapped by errors that come from the operator's own credentials: they
// cannot be loaded, login failed, or Dfns rejected the token (401).
var ErrCredentials = errors.New("dfns credentials unusable")

// ErrOutcomeUnknown is wrapped by errors of a mutation whose request may have reached Dfns
// although no clear answer came back (a timeout or broken connection after sending, a
// 502/503/504 without a Dfns error body, an unreadable success answer). The change may or may
// not have been applied; the caller must look before trying again.
var ErrOutcomeUnknown = errors.New("outcome of the dfns call unknown")

// maxMessageLen bounds the Dfns error message kept in an Error.
const maxMessageLen = 512

// Error is an answer of Dfns that is not a success: an HTTP status of 400 or more, or 202
// when a policy holds the change for approval (then ChangeRequest is set).
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// ID is Dfns' error id, when it sent one.
	ID string
	// Message is Dfns' error message (trimmed, control characters removed).
	Message string
	// Operation is the official Go SDK's name of the call, e.g. CreateServiceAccount.
	Operation string
	// Details are Dfns' error details, when it sent any. They are not part of Error().
	Details map[string]any
	// MissingOperation is the Dfns operation named by a 403, e.g. Auth:ServiceAccounts:Create.
	MissingOperation string
	// RetryAfter is the delay Dfns asked for with a Retry-After header (429, 503).
	RetryAfter time.Duration
	// ChangeRequest is the change request of a 202 answer.
	ChangeRequest *ChangeRequest

	outcomeUnknown bool
}

// Error describes the failure without any token, key, signature or body beyond Dfns' message.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dfns %s: ", e.Operation)
	if e.StatusCode == http.StatusAccepted && e.ChangeRequest != nil {
		fmt.Fprintf(&b, "pending approval: change request %s", e.ChangeRequest.ID)
		if e.ChangeRequest.ApprovalID != "" {
			fmt.Fprintf(&b, ", approval %s", e.ChangeRequest.ApprovalID)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "status %d", e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		fmt.Fprintf(&b, " %s", text)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.ID != "" {
		fmt.Fprintf(&b, " (error id %s)", e.ID)
	}
	if e.outcomeUnknown {
		b.WriteString(" (the change may have been applied)")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrOutcomeUnknown) true for a gateway error on a mutation and
// errors.Is(err, ErrCredentials) true for a 401.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOutcomeUnknown:
		return e.outcomeUnknown
	case ErrCredentials:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// errorBody covers the shapes Dfns uses for errors: {"error":{"id","status","message",
// "details"}}, the older {"error":{"message"}}, and a top-level {"message"}.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
}

type errorObject struct {
	ID      string         `json:"id"`
	Status  int            `json:"status"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// decodeError builds the Error for a failed answer. hasBody reports whether the body was a
// recognisable Dfns error (which tells a Dfns answer from a gateway's).
func decodeError(op string, status int, header http.Header, body []byte) (e *Error, hasBody bool) {
	e = &Error{StatusCode: status, Operation: op, RetryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return e, false
	}
	var obj errorObject
	switch {
	case len(eb.Error) > 0 && json.Unmarshal(eb.Error, &obj) == nil && (obj.Message != "" || obj.ID != ""):
		e.ID, e.Message, e.Details = cleanText(obj.ID), cleanText(obj.Message), obj.Details
		hasBody = true
	case len(eb.Error) > 0 && eb.Error[0] == '"':
		var s string
		_ = json.Unmarshal(eb.Error, &s)
		e.Message, hasBody = cleanText(s), s != ""
	case eb.Message != "":
		e.Message, hasBody = cleanText(eb.Message), true
	}
	if status == http.StatusForbidden {
		e.MissingOperation = parseMissingOperation(e.Message)
	}
	return e, hasBody
}

// missingOperationRE finds the operation in Dfns' "... is not authorized to perform
// operation (Auth:Apps:Update)".
var missingOperationRE = regexp.MustCompile(`not authorized to perform operation \(?([A-Za-z0-9]+(?::[A-Za-z0-9]+)+)\)?`)

func parseMissingOperation(msg string) string {
	m := missingOperationRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return m[1]
}

// cleanText keeps a message printable and short.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// maxRetryAfter bounds a Retry-After the client will believe.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), maxRetryAfter)
}

func asError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

func hasStatus(err error, status int) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == status
}

// IsNotFound reports whether Dfns answered 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether Dfns answered 409 (for example a name already taken).
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// ThrottledError is work the client did not start (Admit) because its rate limiter is booked
// further ahead than Options.MaxWait: nothing reached Dfns. Try again After.
type ThrottledError struct {
	Op    string
	After time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("dfns %s: not started, the connection's rate limit frees a slot in %s", e.Op, e.After.Round(time.Millisecond))
}

// IsThrottled reports whether a call was held back by the client's own rate limiter, and when
// to try again.
func IsThrottled(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.After, true
	}
	return 0, false
}

// IsRefused reports whether Dfns answered with a 4xx status other than 408: it refused the
// request, so a create made nothing. Any other failure (5xx, 408, a lost answer) may hide a
// request that was carried out.
func IsRefused(err error) bool {
	if _, throttled := IsThrottled(err); throttled {
		return true // never sent
	}
	e, ok := asError(err)
	return ok && e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusRequestTimeout
}

// IsBadRequest reports whether Dfns answered 400: it refused the call as invalid.
func IsBadRequest(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsGone reports whether Dfns answered 410.
func IsGone(err error) bool { return hasStatus(err, http.StatusGone) }

// IsForbidden reports whether Dfns answered 403: the identity lacks a permission (see
// MissingOperation) or the user-action signature was refused.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsUnauthorized reports whether Dfns answered 401 (bad or expired token, even after a new login).
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// MissingOperation returns the Dfns operation a 403 says the identity may not perform, or "".
func MissingOperation(err error) string {
	e, ok := asError(err)
	if !ok || e.StatusCode != http.StatusForbidden {
		return ""
	}
	return e.MissingOperation
}

// IsRateLimited reports whether Dfns answered 429, and the Retry-After it gave (0 if none).
func IsRateLimited(err error) (retryAfter time.Duration, ok bool) {
	e, found := asError(err)
	if !found || e.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	return e.RetryAfter, true
}

// IsPendingApproval reports whether Dfns answered 202 because a policy holds the change for
// approval, and returns the change request (with its approval ID). The change must not be
// sent again while it is pending.
func IsPendingApproval(err error) (*ChangeRequest, bool) {
	e, ok := asError(err)
	if !ok || e.StatusCode != http.StatusAccepted || e.ChangeRequest == nil {
		return nil, false
	}
	return e.ChangeRequest, true
}
