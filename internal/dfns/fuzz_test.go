//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeError feeds arbitrary error answers to the decoder: it must not panic, must keep
// the message short and printable, and must never quote a body that is not a Dfns error.
func FuzzDecodeError(f *testing.F) {
	seeds := []string{
		`{"error":{"id":"e","status":409,"message":"duplicate","details":{"a":1}}}`,
		`{"error":{"message":"CustomerEmployee us-1 is not authorized to perform operation (Auth:Apps:Update)"}}`,
		`{"message":"top level"}`,
		`{"error":"plain"}`,
		`{"error":null}`,
		`{"error":[1,2]}`,
		`<html>gateway</html>`,
		``,
		`{"error":{"message":"\u0000\u001b[31m"}}`,
	}
	for i, s := range seeds {
		f.Add(400+i, s)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		e, hasBody := decodeError("Op", status, http.Header{}, []byte(body))
		if len(e.Message) > maxMessageLen+len("…") {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		if !utf8.ValidString(e.Message) && utf8.ValidString(body) {
			t.Fatalf("message became invalid UTF-8")
		}
		if strings.ContainsFunc(e.Message, func(r rune) bool { return r < 0x20 }) {
			t.Fatalf("message keeps control characters: %q", e.Message)
		}
		if !hasBody && len(body) > 20 && strings.Contains(e.Error(), body) {
			t.Fatalf("error quotes a non-Dfns body")
		}
		_ = MissingOperation(e)
	})
}

// FuzzDecodeClaims feeds arbitrary tokens to the JWT claim decoder.
func FuzzDecodeClaims(f *testing.F) {
	f.Add(fakeJWT(map[string]any{"exp": 1700000000, orgClaim: map[string]any{"orgId": "or-1"}}))
	f.Add(paddedJWT(map[string]any{"exp": 1.5}))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("x.eyJleHAiOiJub3cifQ.y")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := decodeClaims(token)
		if err != nil {
			if len(token) > 8 && strings.Contains(err.Error(), token) {
				t.Fatalf("error quotes the token")
			}
			return
		}
		if exp, ok := c.expiry(); ok && (exp.Unix() <= 0 || exp.Year() > 5000) {
			t.Fatalf("insane expiry %v accepted", exp)
		}
		_ = c.orgID()
	})
}

// FuzzListPage feeds arbitrary list answers to the page decoder used by every list call.
func FuzzListPage(f *testing.F) {
	f.Add(`{"items":[{"id":"pm-1","name":"p","operations":["A:B"]}],"nextPageToken":"t"}`)
	f.Add(`{"items":null}`)
	f.Add(`{"items":[{"id":7}]}`)
	f.Add(`{"nextPageToken":null}`)
	f.Add(`[]`)
	f.Add(`{"items":[`)
	f.Fuzz(func(t *testing.T, body string) {
		var p page[Permission]
		err := finish("ListPermissions", &response{status: 200, header: http.Header{}, body: []byte(body)}, nil, &p, callRead)
		if err != nil && len(err.Error()) > 200 {
			t.Fatalf("error of %d bytes: it quotes the answer", len(err.Error()))
		}
		var sa page[ServiceAccount]
		_ = finish("ListServiceAccounts", &response{status: 200, header: http.Header{}, body: []byte(body)}, nil, &sa, callRead)
		var pol page[Policy]
		_ = finish("ListPolicies", &response{status: 200, header: http.Header{}, body: []byte(body)}, nil, &pol, callRead)
	})
}
