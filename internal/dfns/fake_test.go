//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testOrg      = "or-tests-tests-00000000000000"
	testCredID   = "Y2ktdGVzdC1jcmVk"
	testUsername = "bot@example.com"
)

// fakeDfns is a small Dfns for wire-format tests: it verifies bearer tokens, login and
// user-action signatures, single-use user-action tokens bound to method, path and payload,
// and records what it saw. API routes are added per test.
type fakeDfns struct {
	t      *testing.T
	srv    *httptest.Server
	pub    crypto.PublicKey
	credID string
	now    func() time.Time
	ttl    time.Duration

	mu         sync.Mutex
	hits       map[string]int            // "METHOD /path" without query
	challenges map[string]string         // challengeIdentifier → challenge
	userAct    map[string]userActionSeen // user-action token → what it allows
	tokens     map[string]bool           // valid bearer tokens
	initBodies [][]byte                  // raw /auth/action/init bodies
	loginInits [][]byte                  // raw /auth/login/init bodies
	signatures []string                  // every signature received
	seenUA     []string                  // user-action tokens the API routes received
	seenBodies [][]byte                  // bodies the API routes received
	allowCreds []string                  // allowCredentials.key ids to announce (nil: the real one)
	routes     map[string]http.HandlerFunc
	logins     int
	serial     int
}

type userActionSeen struct {
	method, path, payload string
}

func newFakeDfns(t *testing.T, pub crypto.PublicKey, tlsServer bool) *fakeDfns {
	t.Helper()
	f := &fakeDfns{
		t: t, pub: pub, credID: testCredID, now: time.Now, ttl: time.Hour,
		hits: map[string]int{}, challenges: map[string]string{}, userAct: map[string]userActionSeen{},
		tokens: map[string]bool{}, routes: map[string]http.HandlerFunc{},
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsServer {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

// route adds an API handler for "METHOD /path".
func (f *fakeDfns) route(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

func (f *fakeDfns) hitCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

// issueToken makes a JWT-shaped bearer token valid for ttl (0: no exp claim).
func (f *fakeDfns) issueToken(ttl time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial++
	claims := map[string]any{"n": f.serial, orgClaim: map[string]any{"orgId": testOrg}}
	if ttl > 0 {
		claims["exp"] = f.now().Add(ttl).Unix()
	}
	tok := fakeJWT(claims)
	f.tokens[tok] = true
	return tok
}

func (f *fakeDfns) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]bool{}
}

func fakeJWT(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(payload) + "." + enc([]byte("sig"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func dfnsError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"id": "err-1", "status": status, "message": msg}})
}

func (f *fakeDfns) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.hits[key]++
	f.mu.Unlock()
	switch key {
	case "POST /auth/login/init":
		f.loginInit(w, body)
		return
	case "POST /auth/login":
		f.login(w, body)
		return
	}
	if !f.authorized(r) {
		dfnsError(w, http.StatusUnauthorized, "user token is missing or invalid")
		return
	}
	switch key {
	case "POST /auth/action/init":
		f.actionInit(w, body)
	case "POST /auth/action":
		f.action(w, body)
	default:
		f.api(w, r, key, body)
	}
}

func (f *fakeDfns) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	return ok && f.tokens[tok]
}

func (f *fakeDfns) newChallenge() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial++
	id := fmt.Sprintf("chid-%d", f.serial)
	ch := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "ch-%d-<&>", f.serial))
	f.challenges[id] = ch
	allowed := f.allowCreds
	if allowed == nil {
		allowed = []string{f.credID}
	}
	keys := make([]map[string]string, 0, len(allowed))
	for _, id := range allowed {
		keys = append(keys, map[string]string{"type": "public-key", "id": id})
	}
	return map[string]any{"challenge": ch, "challengeIdentifier": id, "allowCredentials": map[string]any{"key": keys}}
}

func (f *fakeDfns) loginInit(w http.ResponseWriter, body []byte) {
	f.mu.Lock()
	f.loginInits = append(f.loginInits, body)
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.newChallenge())
}

func (f *fakeDfns) login(w http.ResponseWriter, body []byte) {
	if err := f.verifyAssertion(body); err != nil {
		dfnsError(w, http.StatusUnauthorized, err.Error())
		return
	}
	f.mu.Lock()
	f.logins++
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"token": f.issueToken(f.ttl)})
}

func (f *fakeDfns) actionInit(w http.ResponseWriter, body []byte) {
	var in userActionInit
	if err := json.Unmarshal(body, &in); err != nil {
		dfnsError(w, http.StatusBadRequest, "bad init")
		return
	}
	ch := f.newChallenge()
	f.mu.Lock()
	f.initBodies = append(f.initBodies, body)
	f.userAct["pending:"+ch["challengeIdentifier"].(string)] = userActionSeen{in.Method, in.Path, in.Payload}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, ch)
}

func (f *fakeDfns) action(w http.ResponseWriter, body []byte) {
	if err := f.verifyAssertion(body); err != nil {
		dfnsError(w, http.StatusForbidden, err.Error())
		return
	}
	var in signedChallenge
	_ = json.Unmarshal(body, &in)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial++
	tok := fmt.Sprintf("ua-%d", f.serial)
	f.userAct[tok] = f.userAct["pending:"+in.ChallengeIdentifier]
	delete(f.userAct, "pending:"+in.ChallengeIdentifier)
	writeJSON(w, http.StatusOK, map[string]string{"userAction": tok})
}

// verifyAssertion checks a signed challenge the way Dfns does: known challenge (single use),
// allowed credId, signature over the exact clientData bytes, type and challenge inside.
func (f *fakeDfns) verifyAssertion(body []byte) error {
	var in struct {
		ChallengeIdentifier string `json:"challengeIdentifier"`
		FirstFactor         struct {
			Kind                string `json:"kind"`
			CredentialAssertion struct {
				CredID, ClientData, Signature string
			} `json:"credentialAssertion"`
		} `json:"firstFactor"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("bad body")
	}
	a := in.FirstFactor.CredentialAssertion
	f.mu.Lock()
	want, ok := f.challenges[in.ChallengeIdentifier]
	delete(f.challenges, in.ChallengeIdentifier)
	f.signatures = append(f.signatures, a.Signature)
	f.mu.Unlock()
	if !ok || in.FirstFactor.Kind != "Key" || a.CredID != f.credID {
		return fmt.Errorf("unknown challenge or credential")
	}
	cd, err1 := base64.RawURLEncoding.DecodeString(a.ClientData)
	sig, err2 := base64.RawURLEncoding.DecodeString(a.Signature)
	if err1 != nil || err2 != nil || !verifyMessage(f.pub, cd, sig) {
		return fmt.Errorf("signature invalid")
	}
	var data struct{ Type, Challenge string }
	if json.Unmarshal(cd, &data) != nil || data.Type != "key.get" || data.Challenge != want {
		return fmt.Errorf("clientData invalid")
	}
	return nil
}

// unsignedRoutes are the API calls other than GETs that Dfns takes without a user action.
var unsignedRoutes = map[string]bool{"POST /auth/credentials/init": true}

// api checks the user action of a change and calls the route.
func (f *fakeDfns) api(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	if r.Method != http.MethodGet && !unsignedRoutes[key] {
		tok := r.Header.Get("X-DFNS-USERACTION")
		f.mu.Lock()
		seen, ok := f.userAct[tok]
		delete(f.userAct, tok)
		f.seenUA = append(f.seenUA, tok)
		f.seenBodies = append(f.seenBodies, body)
		f.mu.Unlock()
		if !ok || seen.method != r.Method || seen.path != r.URL.RequestURI() || seen.payload != string(body) {
			dfnsError(w, http.StatusForbidden, "user action signature is missing or invalid")
			return
		}
		if len(body) > 0 && r.Header.Get("Content-Type") != "application/json" {
			dfnsError(w, http.StatusBadRequest, "content type")
			return
		}
	}
	f.mu.Lock()
	h := f.routes[key]
	f.mu.Unlock()
	if h == nil {
		dfnsError(w, http.StatusNotFound, "route not found")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

// testKey is a parsed key with its PEM forms.
type testKey struct {
	signer crypto.Signer
	pem    []byte
}

func newTestKey(t *testing.T, alg KeyAlgorithm) testKey {
	t.Helper()
	priv, _, err := GenerateKey(alg)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	k, err := parsePrivateKey(priv)
	if err != nil {
		t.Fatalf("parse generated key: %v", err)
	}
	return testKey{signer: k, pem: priv}
}

// tokenClient builds a client in token mode against f, with fast retries.
func tokenClient(t *testing.T, f *fakeDfns, key testKey, mutate ...func(*Options)) *Client {
	t.Helper()
	creds := Credentials{APIURL: f.srv.URL, AuthToken: f.issueToken(time.Hour), CredID: testCredID, PrivateKeyPEM: key.pem}
	if f.srv.TLS != nil {
		creds.CACertPEM = serverCA(f.srv)
	}
	return newTestClient(t, NewStaticCredentials(creds), mutate...)
}

// loginClient builds a client in login mode against f.
func loginClient(t *testing.T, f *fakeDfns, key testKey, mutate ...func(*Options)) *Client {
	t.Helper()
	creds := Credentials{APIURL: f.srv.URL, OrgID: testOrg, Username: testUsername, CredID: testCredID, PrivateKeyPEM: key.pem}
	return newTestClient(t, NewStaticCredentials(creds), mutate...)
}

func newTestClient(t *testing.T, src CredentialsSource, mutate ...func(*Options)) *Client {
	t.Helper()
	opts := Options{Credentials: src, QPS: 1000, Burst: 1000, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func serverCA(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// pkcs8 re-encodes a key as PKCS#8 PEM.
func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
