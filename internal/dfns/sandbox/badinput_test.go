package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var garbageBodies = []string{
	"", "null", "[]", "{", `"text"`, "42", `{"name":5}`, `{"name":null}`, `{"operations":{}}`,
	`{"name":"` + strings.Repeat("x", 5000) + `"}`, `{"identityId":["a"]}`, `{"isArchived":"yes"}`,
	`{"value":"Maybe"}`, `{"url":123}`, `{"events":"*"}`, `{"rule":[],"action":1}`, `{"publicKey":{"a":1}}`,
	`{} trailing`, `{"daysValid":1e400}`, `{"email":"a@b","kind":"EndUser"}`,
}

// TestBadInputsNeverFail500 sends malformed bodies, correctly user-action signed, to every
// route, and checks the answers are 4xx in the Dfns error shape.
func TestBadInputsNeverFail500(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.user("admin@example.com", true)
	for _, rt := range e.sb.routes {
		path := "/" + strings.Join(rt.segs, "/")
		path = strings.NewReplacer("{id}", "xx-unknown", "{aid}", "as-unknown", "{eid}", "whe-unknown").Replace(path)
		t.Run(rt.op, func(t *testing.T) {
			for _, body := range garbageBodies {
				ua := ""
				if rt.auth == authSigned {
					ua = e.userAction(admin, rt.method, path, []byte(body))
				}
				token := admin.token
				if rt.auth == authNone {
					token = ""
				}
				st, out := e.request(rt.method, path, token, ua, []byte(body))
				if st >= 500 {
					t.Fatalf("body %.40q: status %d: %s", body, st, out)
				}
				if st >= 400 {
					var m struct {
						Error struct {
							ID      string         `json:"id"`
							Status  int            `json:"status"`
							Message string         `json:"message"`
							Details map[string]any `json:"details"`
						} `json:"error"`
					}
					if err := json.Unmarshal(out, &m); err != nil || m.Error.Status != st || m.Error.Message == "" || m.Error.ID == "" {
						t.Fatalf("body %.40q: not a Dfns error: %d %s", body, st, out)
					}
				}
			}
		})
	}
	t.Run("unknown routes", func(t *testing.T) {
		for _, p := range []string{"/nope", "/permissions/a/b/c/d", "/auth", "/v2/policies/x/y"} {
			if st, out := e.request("GET", p, admin.token, "", nil); st != 404 {
				t.Errorf("%s: %d %s", p, st, out)
			}
		}
		if st, _ := e.request("PATCH", "/permissions", admin.token, "", nil); st != 404 {
			t.Errorf("PATCH: %d", st)
		}
	})
	t.Run("oversize body", func(t *testing.T) {
		big := []byte(`{"name":"` + strings.Repeat("x", maxBodyBytes) + `"}`)
		if st, _ := e.request("POST", "/permissions", admin.token, "x", big); st != 400 {
			t.Errorf("status %d", st)
		}
	})
}

// TestPanicsBecome500 shows the recovery net works (no test above triggers it).
func TestPanicsBecome500(t *testing.T) {
	e := newEnv(t, Options{})
	e.sb.routes = append([]*route{{method: "GET", segs: split("/boom"), op: "Boom", auth: authNone,
		handle: func(*call) (*reply, error) { panic("boom") }}}, e.sb.routes...)
	rec := httptest.NewRecorder()
	e.sb.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"status":500`) {
		t.Errorf("got %d %s", rec.Code, rec.Body.String())
	}
}

// FuzzRequestDecoders feeds arbitrary bytes to every request decoder: errors must be 400
// apiErrors and nothing may panic.
func FuzzRequestDecoders(f *testing.F) {
	for _, b := range garbageBodies {
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"name":"p","activityKind":"Permissions:Modify","rule":{"kind":"AlwaysTrigger"},"action":{"kind":"RequestApproval","approvalGroups":[{"quorum":1,"approvers":{}}]},"filters":{"permissionId":{"in":["pm-1"]}}}`))
	f.Add([]byte(`{"url":"https://x","events":["*"],"status":"Enabled","description":"d"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("decoder error %v is not a 400", err)
			}
		}
		targets := []any{
			&createPermissionRequest{}, &updatePermissionRequest{}, &archivePermissionRequest{}, &assignRequest{},
			&tokenRequest{}, &updateIdentityRequest{}, &createUserRequest{}, &decisionRequest{},
			&actionInitRequest{}, &assertionRequest{}, &loginInitRequest{}, &webhookRequest{},
		}
		for _, v := range targets {
			check(decodeJSON(body, v))
		}
		for _, strict := range []bool{false, true} {
			_, err := parsePolicy(body, strict)
			check(err)
			var w webhookRequest
			if decodeJSON(body, &w) == nil {
				check(w.validate(true, strict))
			}
		}
		var p createPermissionRequest
		if decodeJSON(body, &p) == nil {
			check(checkOperations(p.Operations))
		}
	})
}

// FuzzVerifyClientData checks that arbitrary clientData and signatures never panic the
// verifier and never verify against the key of docs/dfns-api.md §2.6 except for the known
// valid pairs.
func FuzzVerifyClientData(f *testing.F) {
	const goCD = "eyJjaGFsbGVuZ2UiOiJkR1Z6ZEMxamFHRnNiR1Z1WjJVIiwiY3Jvc3NPcmlnaW4iOmZhbHNlLCJ0eXBlIjoia2V5LmdldCJ9"
	const goSig = "c42rWFzJc75wxVrspSDQesOR4ZTLhmRQY1rOwlwZmzbAR4OoBKHW1RzqXL2Z35AshTrMj7Mtniok1xvpIQRpBQ"
	const tsCD = "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ"
	const tsSig = "ffrxy6PlCQ-oEGtvoxVVKwen9uTj50eragUBH6ef-7HeHXbBOGqZhdNTNveLZ2Je9g3LfxWUP5AkGqTRkImNCA"
	f.Add(goCD, goSig, "dGVzdC1jaGFsbGVuZ2U")
	f.Add(tsCD, tsSig, "dGVzdC1jaGFsbGVuZ2U")
	f.Add("", "", "")
	f.Add("e30", "AAAA", "x")
	key, err := parsePublicKeyPEM("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cd, sig, challenge string) {
		if verifyClientData(key, cd, sig, challenge) != nil {
			return
		}
		rawCD, _ := decodeB64URL(cd)
		goRaw, _ := decodeB64URL(goCD)
		tsRaw, _ := decodeB64URL(tsCD)
		if string(rawCD) != string(goRaw) && string(rawCD) != string(tsRaw) {
			t.Fatalf("unexpected clientData verified: %q", rawCD)
		}
	})
}

// FuzzParsePublicKeyPEM checks the key parser never panics on arbitrary text.
func FuzzParsePublicKeyPEM(f *testing.F) {
	f.Add("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----")
	f.Add("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		if _, _, err := normalizePublicKeyPEM(s); err == nil {
			if _, err := parsePublicKeyPEM(s); err != nil {
				t.Fatalf("normalize accepted what parse rejects: %v", err)
			}
		}
	})
}
