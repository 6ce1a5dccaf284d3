package sandbox

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientDataForm selects how the test signer builds clientData, like one of the SDKs.
type clientDataForm int

const (
	formGo clientDataForm = iota // {"challenge":..,"crossOrigin":false,"type":"key.get"}
	formTS                       // {"type":"key.get","challenge":..}
)

func clientDataFor(form clientDataForm, challenge string) []byte {
	if form == formTS {
		return []byte(`{"type":"key.get","challenge":"` + challenge + `"}`)
	}
	return []byte(`{"challenge":"` + challenge + `","crossOrigin":false,"type":"key.get"}`)
}

// testKey is a private key able to sign as the SDKs do.
type testKey struct {
	priv crypto.Signer
}

func newTestKey(t testing.TB, alg string) *testKey {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{priv: k}
}

func keyFromPEM(t testing.TB, p []byte) *testKey {
	t.Helper()
	block, _ := pem.Decode(p)
	if block == nil {
		t.Fatal("no PEM")
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{priv: k.(crypto.Signer)}
}

func (k *testKey) publicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (k *testKey) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	var (
		sig []byte
		err error
	)
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, msg)
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(msg)
		sig, err = ecdsa.SignASN1(rand.Reader, p, sum[:])
	case *rsa.PrivateKey:
		sum := sha256.Sum256(msg)
		sig, err = rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// actor is an authenticated identity able to sign user actions.
type actor struct {
	token  string
	credID string
	key    *testKey
	form   clientDataForm
	userID string
}

// env is a sandbox behind a real HTTP server.
type env struct {
	t   testing.TB
	sb  *Server
	srv *httptest.Server

	clockMu sync.Mutex
	now     time.Time
}

// advance moves the sandbox clock.
func (e *env) advance(d time.Duration) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) clock() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.now
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = e.clock
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	sb, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.sb = sb
	e.srv = httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		sb.Close()
	})
	return e
}

// request sends one raw request and returns status and body.
func (e *env) request(method, path, token, userAction string, body []byte) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if userAction != "" {
		req.Header.Set("X-DFNS-USERACTION", userAction)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	if s, isStr := v.(string); isStr {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// challenge answers an init call.
type challengeAnswer struct {
	Challenge           string `json:"challenge"`
	ChallengeIdentifier string `json:"challengeIdentifier"`
	AllowCredentials    struct {
		Key []struct {
			ID string `json:"id"`
		} `json:"key"`
	} `json:"allowCredentials"`
}

func (e *env) assertion(a *actor, ch challengeAnswer) []byte {
	cd := clientDataFor(a.form, ch.Challenge)
	return mustJSON(e.t, map[string]any{
		"challengeIdentifier": ch.ChallengeIdentifier,
		"firstFactor": map[string]any{"kind": "Key", "credentialAssertion": map[string]string{
			"credId": a.credID, "clientData": base64.RawURLEncoding.EncodeToString(cd),
			"signature": base64.RawURLEncoding.EncodeToString(a.key.sign(e.t, cd)),
		}},
	})
}

// login logs a user in with its Key credential.
func (e *env) login(creds *UserCredentials, key *testKey, form clientDataForm) *actor {
	e.t.Helper()
	st, body := e.request("POST", "/auth/login/init", "", "", mustJSON(e.t, map[string]string{"username": creds.Username, "orgId": creds.OrgID}))
	if st != 200 {
		e.t.Fatalf("login init: %d %s", st, body)
	}
	var ch challengeAnswer
	_ = json.Unmarshal(body, &ch)
	a := &actor{credID: creds.CredID, key: key, form: form, userID: creds.UserID}
	st, body = e.request("POST", "/auth/login", "", "", e.assertion(a, ch))
	if st != 200 {
		e.t.Fatalf("login: %d %s", st, body)
	}
	a.token = decode(e.t, body)["token"].(string)
	return a
}

// user creates a user in the sandbox and logs it in.
func (e *env) user(email string, admin bool) *actor {
	e.t.Helper()
	creds, err := e.sb.CreateUser(email, admin)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.login(creds, keyFromPEM(e.t, creds.PrivateKeyPEM), formGo)
}

// userAction runs init + sign + action and returns the user-action token, or fails.
func (e *env) userAction(a *actor, method, path string, payload []byte) string {
	e.t.Helper()
	ua, st, body := e.tryUserAction(a, method, path, payload)
	if st != 200 {
		e.t.Fatalf("user action: %d %s", st, body)
	}
	return ua
}

func (e *env) tryUserAction(a *actor, method, path string, payload []byte) (string, int, []byte) {
	e.t.Helper()
	init := mustJSON(e.t, map[string]string{
		"userActionHttpMethod": method, "userActionHttpPath": path, "userActionPayload": string(payload), "userActionServerKind": "Api",
	})
	st, body := e.request("POST", "/auth/action/init", a.token, "", init)
	if st != 200 {
		return "", st, body
	}
	var ch challengeAnswer
	_ = json.Unmarshal(body, &ch)
	st, body = e.request("POST", "/auth/action", a.token, "", e.assertion(a, ch))
	if st != 200 {
		return "", st, body
	}
	return decode(e.t, body)["userAction"].(string), st, body
}

// call sends a Dfns API call as a; non-GET calls are user-action signed over the exact body.
func (e *env) call(a *actor, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var payload []byte
	if body != nil {
		payload = mustJSON(e.t, body)
	}
	ua := ""
	if method != "GET" {
		ua = e.userAction(a, method, strings.SplitN(path, "?", 2)[0], payload)
	}
	return e.request(method, path, a.token, ua, payload)
}

// mustCall is call that expects the status.
func (e *env) mustCall(a *actor, want int, method, path string, body any) map[string]any {
	e.t.Helper()
	st, out := e.call(a, method, path, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, out)
	}
	if len(out) == 0 {
		return nil
	}
	return decode(e.t, out)
}

// serviceAccount creates a SA as admin with the given permission and returns an actor for it.
func (e *env) serviceAccount(admin *actor, name, permissionID, alg string) (*actor, map[string]any) {
	e.t.Helper()
	key := newTestKey(e.t, alg)
	body := map[string]any{"name": name, "publicKey": key.publicPEM(e.t)}
	if permissionID != "" {
		body["permissionId"] = permissionID
	}
	out := e.mustCall(admin, 200, "POST", "/auth/service-accounts", body)
	tok := out["accessTokens"].([]any)[0].(map[string]any)
	info := out["userInfo"].(map[string]any)
	credID := tok["credId"].(string)
	if credID == "" { // strict "empty-cred-id": read it back
		got := e.mustCall(admin, 200, "GET", "/auth/service-accounts/"+info["userId"].(string), nil)
		credID = got["accessTokens"].([]any)[0].(map[string]any)["credId"].(string)
	}
	return &actor{token: tok["accessToken"].(string), credID: credID, key: key, userID: info["userId"].(string)}, out
}

// permission creates a permission and returns its ID.
func (e *env) permission(a *actor, name string, ops ...string) string {
	e.t.Helper()
	out := e.mustCall(a, 200, "POST", "/permissions", map[string]any{"name": name, "operations": ops})
	return out["id"].(string)
}

func errMessage(t testing.TB, body []byte) string {
	t.Helper()
	m := decode(t, body)
	e, isMap := m["error"].(map[string]any)
	if !isMap {
		t.Fatalf("not a Dfns error body: %s", body)
	}
	return e["message"].(string)
}
