//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDecodeError(t *testing.T) {
	long := strings.Repeat("é", 400)
	cases := []struct {
		reason      string
		status      int
		retryAfter  string
		body        string
		want        Error
		wantHasBody bool
		wantText    string
	}{{
		reason: "newest shape with id, status, message and details",
		status: 409,
		body:   `{"error":{"id":"e-1","status":409,"message":"duplicate","details":{"duplicate":{"id":"x"}}}}`,
		want:   Error{StatusCode: 409, ID: "e-1", Message: "duplicate"}, wantHasBody: true,
		wantText: "dfns Op: status 409 Conflict: duplicate (error id e-1)",
	}, {
		reason: "older shape with only a message",
		status: 404,
		body:   `{"error":{"message":"wallet not found"}}`,
		want:   Error{StatusCode: 404, Message: "wallet not found"}, wantHasBody: true,
		wantText: "dfns Op: status 404 Not Found: wallet not found",
	}, {
		reason: "top-level message",
		status: 400,
		body:   `{"message":"user action has already been used"}`,
		want:   Error{StatusCode: 400, Message: "user action has already been used"}, wantHasBody: true,
	}, {
		reason: "error as a plain string",
		status: 400,
		body:   `{"error":"bad request"}`,
		want:   Error{StatusCode: 400, Message: "bad request"}, wantHasBody: true,
	}, {
		reason: "403 names the missing operation",
		status: 403,
		body:   `{"error":{"message":"CustomerEmployee us-1 is not authorized to perform operation (Auth:ServiceAccounts:Create)"}}`,
		want: Error{StatusCode: 403, Message: "CustomerEmployee us-1 is not authorized to perform operation (Auth:ServiceAccounts:Create)",
			MissingOperation: "Auth:ServiceAccounts:Create"}, wantHasBody: true,
	}, {
		reason: "gateway HTML is no Dfns body and is not quoted",
		status: 502,
		body:   `<html>bad gateway SECRET</html>`,
		want:   Error{StatusCode: 502}, wantHasBody: false,
		wantText: "dfns Op: status 502 Bad Gateway",
	}, {
		reason: "empty error object",
		status: 500,
		body:   `{"error":{}}`,
		want:   Error{StatusCode: 500},
	}, {
		reason:     "429 with Retry-After seconds",
		status:     429,
		retryAfter: "7",
		body:       `{"error":{"message":"rate limit exceeded"}}`,
		want:       Error{StatusCode: 429, Message: "rate limit exceeded", RetryAfter: 7 * time.Second}, wantHasBody: true,
	}, {
		reason: "control characters removed, long messages cut on a rune boundary",
		status: 400,
		body:   `{"message":"line1\nline2\u0000` + long + `"}`,
		want:   Error{StatusCode: 400, Message: cleanText("line1 line2 " + long)}, wantHasBody: true,
	}}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			h := http.Header{}
			if tc.retryAfter != "" {
				h.Set("Retry-After", tc.retryAfter)
			}
			e, hasBody := decodeError("Op", tc.status, h, []byte(tc.body))
			if e.StatusCode != tc.want.StatusCode || e.ID != tc.want.ID || e.Message != tc.want.Message ||
				e.MissingOperation != tc.want.MissingOperation || e.RetryAfter != tc.want.RetryAfter || e.Operation != "Op" {
				t.Errorf("got %+v, want %+v", *e, tc.want)
			}
			if hasBody != tc.wantHasBody {
				t.Errorf("hasBody = %t, want %t", hasBody, tc.wantHasBody)
			}
			if tc.wantText != "" && e.Error() != tc.wantText {
				t.Errorf("Error() = %q, want %q", e.Error(), tc.wantText)
			}
			if strings.Contains(e.Error(), "SECRET") {
				t.Errorf("Error() quotes the body: %s", e)
			}
		})
	}
	if m := cleanText("x" + long); len(m) > maxMessageLen+len("…") || !strings.HasSuffix(m, "…") {
		t.Errorf("long message not cut: %d bytes", len(m))
	}
}

func TestErrorHelpers(t *testing.T) {
	wrap := func(e *Error) error { return fmt.Errorf("reconcile: %w", e) }
	cr := &ChangeRequest{ID: "cr-1", ApprovalID: "ap-1"}
	cases := []struct {
		reason                                      string
		err                                         error
		notFound, conflict, forbidden, unauthorized bool
		rateLimited                                 bool
		retryAfter                                  time.Duration
		pending                                     bool
		missingOp                                   string
		isCredentials, isOutcomeUnknown             bool
		refused                                     bool
	}{
		{reason: "404", err: wrap(&Error{StatusCode: 404}), notFound: true, refused: true},
		{reason: "409", err: wrap(&Error{StatusCode: 409}), conflict: true, refused: true},
		{reason: "403 with operation", err: wrap(&Error{StatusCode: 403, MissingOperation: "Permissions:Assign"}), forbidden: true, missingOp: "Permissions:Assign", refused: true},
		{reason: "401 is a credentials problem", err: wrap(&Error{StatusCode: 401}), unauthorized: true, isCredentials: true, refused: true},
		{reason: "429 with Retry-After", err: wrap(&Error{StatusCode: 429, RetryAfter: time.Second}), rateLimited: true, retryAfter: time.Second, refused: true},
		{reason: "408 may hide a request carried out", err: wrap(&Error{StatusCode: 408})},
		{reason: "500 may hide a request carried out", err: wrap(&Error{StatusCode: 500})},
		{reason: "202 with change request", err: wrap(&Error{StatusCode: 202, ChangeRequest: cr}), pending: true},
		{reason: "202 without change request is not pending", err: wrap(&Error{StatusCode: 202})},
		{reason: "gateway error on a change", err: wrap(&Error{StatusCode: 504, outcomeUnknown: true}), isOutcomeUnknown: true},
		{reason: "not a Dfns error", err: errors.New("boom")},
		{reason: "nil", err: nil},
		{reason: "MissingOperation only for 403", err: wrap(&Error{StatusCode: 400, MissingOperation: "X:Y"}), refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			ra, rl := IsRateLimited(tc.err)
			got, pending := IsPendingApproval(tc.err)
			checks := []struct {
				name      string
				got, want any
			}{
				{"IsNotFound", IsNotFound(tc.err), tc.notFound},
				{"IsConflict", IsConflict(tc.err), tc.conflict},
				{"IsForbidden", IsForbidden(tc.err), tc.forbidden},
				{"IsUnauthorized", IsUnauthorized(tc.err), tc.unauthorized},
				{"IsRateLimited", rl, tc.rateLimited},
				{"RetryAfter", ra, tc.retryAfter},
				{"IsPendingApproval", pending, tc.pending},
				{"MissingOperation", MissingOperation(tc.err), tc.missingOp},
				{"Is ErrCredentials", errors.Is(tc.err, ErrCredentials), tc.isCredentials},
				{"Is ErrOutcomeUnknown", errors.Is(tc.err, ErrOutcomeUnknown), tc.isOutcomeUnknown},
				{"IsRefused", IsRefused(tc.err), tc.refused},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if pending && got != cr {
				t.Errorf("change request = %+v", got)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		reason string
		value  string
		want   time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"zero", "0", 0},
		{"negative", "-4", 0},
		{"absurdly large is capped", "99999999999", maxRetryAfter},
		{"HTTP date in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"HTTP date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if got := parseRetryAfter(tc.value, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestDecodeClaims(t *testing.T) {
	cases := []struct {
		reason  string
		token   string
		wantOrg string
		wantExp time.Time
		wantErr bool
	}{
		{"org and exp", fakeJWT(map[string]any{"exp": 1700000000, orgClaim: map[string]any{"orgId": "or-1"}}), "or-1", time.Unix(1700000000, 0), false},
		{"fractional exp", fakeJWT(map[string]any{"exp": 1700000000.5}), "", time.Unix(1700000000, 5e8), false},
		{"no claims", fakeJWT(map[string]any{}), "", time.Time{}, false},
		{"absurd exp ignored", fakeJWT(map[string]any{"exp": 1e15}), "", time.Time{}, false},
		{"padded payload tolerated", paddedJWT(map[string]any{"exp": 5}), "", time.Unix(5, 0), false},
		{"two parts", "a.b", "", time.Time{}, true},
		{"payload not base64", "a.!!!.c", "", time.Time{}, true},
		{"payload not JSON", "a.bm90LWpzb24.c", "", time.Time{}, true},
		{"claim of the wrong type", fakeJWT(map[string]any{orgClaim: "or-1"}), "", time.Time{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			c, err := decodeClaims(tc.token)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), tc.token) {
					t.Errorf("error quotes the token: %v", err)
				}
				return
			}
			exp, _ := c.expiry()
			if c.orgID() != tc.wantOrg || !exp.Equal(tc.wantExp) {
				t.Errorf("org %q exp %v, want %q %v", c.orgID(), exp, tc.wantOrg, tc.wantExp)
			}
		})
	}
}

// paddedJWT is fakeJWT with "=" padding on the payload, as some encoders write it.
func paddedJWT(claims map[string]any) string {
	p := strings.Split(fakeJWT(claims), ".")
	return p[0] + "." + p[1] + "==." + p[2]
}
