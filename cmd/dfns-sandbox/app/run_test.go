package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// anyPort makes the sandbox listen on a free loopback port.
const anyPort = "127.0.0.1:0"

// logBuffer collects what the sandbox logs, safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startSandbox starts a sandbox on a free loopback port and stops it when the test ends.
func startSandbox(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = anyPort
	}
	if cfg.BootstrapDir == "" {
		cfg.BootstrapDir = filepath.Join(t.TempDir(), "bootstrap")
	}
	logs := &logBuffer{}
	sb, err := Start(cfg, log.New(logs, "", 0))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		assertNoSecret(t, "the sandbox's log", logs.String(), sb.Bootstrap)
	})
	return sb
}

// assertNoSecret fails when text shows the admin user's private key.
func assertNoSecret(t *testing.T, what, text string, b *Bootstrap) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(b.PrivateKeyPEM)), "\n")
	if len(lines) < 2 {
		t.Fatalf("bootstrap private key is not PEM")
	}
	if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, lines[1]) {
		t.Errorf("%s shows the private key: %s", what, text)
	}
}

// loginClient is the project's own client over the bootstrap directory, as the operator uses it.
func loginClient(t *testing.T, dir string) *dfns.Client {
	t.Helper()
	c, err := dfns.New(dfns.Options{Credentials: dfns.NewFileCredentials(dir), MaxAttempts: 1})
	if err != nil {
		t.Fatalf("dfns.New: %v", err)
	}
	return c
}

// assertAdminLogin logs in with the bootstrap credentials through the project's client (the
// Go-SDK clientData form) and checks the user holds DfnsFullAdminAccess.
func assertAdminLogin(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := loginClient(t, dir)
	perms, err := c.ListPermissions(ctx)
	if err != nil {
		t.Fatalf("ListPermissions as the bootstrap admin: %v", err)
	}
	names := make([]string, len(perms))
	for i, p := range perms {
		names[i] = p.Name
	}
	if !slices.Contains(names, "DfnsFullAdminAccess") {
		t.Errorf("permissions = %q, want DfnsFullAdminAccess among them", names)
	}
	if _, err := c.ListServiceAccounts(ctx); err != nil {
		t.Errorf("ListServiceAccounts as the bootstrap admin: %v", err)
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestStartServesHTTPSWithBootstrap(t *testing.T) {
	sb := startSandbox(t, Config{})
	dir := sb.cfg.BootstrapDir

	if !regexp.MustCompile(`^https://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(sb.URL) {
		t.Errorf("URL = %q, want https://127.0.0.1:<real port>", sb.URL)
	}
	assertMode(t, dir, 0o700|os.ModeDir)
	want := map[string]string{
		FileAPIURL:   sb.URL,
		FileOrgID:    sb.Server.OrgID(),
		FileUsername: AdminEmail,
		FileCredID:   sb.Bootstrap.CredID,
	}
	for name, value := range want {
		if got := readFile(t, dir, name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
		assertMode(t, filepath.Join(dir, name), 0o600)
	}
	if sb.Bootstrap.CredID == "" || !strings.HasPrefix(sb.Server.OrgID(), "or-") {
		t.Errorf("bootstrap = %v, want a credential ID and an or- org", sb.Bootstrap)
	}
	if _, err := parseSigner([]byte(readFile(t, dir, FilePrivateKey))); err != nil {
		t.Errorf("DFNS_PRIVATE_KEY: %v", err)
	}
	caPEM := readFile(t, dir, FileCACert)
	assertMode(t, filepath.Join(dir, FileCACert), 0o600)

	m := parseManifest(t, []byte(readFile(t, dir, FileManifest)))
	for _, name := range []string{FileAPIURL, FileOrgID, FileUsername, FileCredID, FilePrivateKey, FileCACert} {
		if m.StringData[name] != readFile(t, dir, name) {
			t.Errorf("manifest stringData[%s] differs from the file", name)
		}
	}
	if len(m.StringData) != 6 {
		t.Errorf("manifest keys = %d, want 6", len(m.StringData))
	}

	t.Run("TLSVerifiesWithCA", func(t *testing.T) {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(caPEM)) {
			t.Fatal("ca.crt holds no certificate")
		}
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(sb.URL, "https://"))
		for _, name := range []string{loopbackIPv4, localhost} {
			conn, err := tls.Dial("tcp", net.JoinHostPort(loopbackIPv4, port), &tls.Config{RootCAs: roots, ServerName: name})
			if err != nil {
				t.Errorf("TLS to %s with ca.crt: %v", name, err)
				continue
			}
			_ = conn.Close()
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := client.Get(sb.URL + "/sandbox/healthz")
		if err != nil {
			t.Fatalf("GET /sandbox/healthz: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /sandbox/healthz = %d, want 200", resp.StatusCode)
		}
	})
	t.Run("TLSFailsWithoutCA", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		resp, err := client.Get(sb.URL + "/sandbox/healthz")
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("GET without trusting ca.crt succeeded, want a certificate error")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("error = %v, want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("LoginWithProjectClient", func(t *testing.T) {
		assertAdminLogin(t, dir)
	})
	t.Run("LoginWithTypeScriptClientData", func(t *testing.T) {
		if err := canLogIn(sb.Server.Handler(), sb.Bootstrap); err != nil {
			t.Errorf("login with the TypeScript clientData form: %v", err)
		}
	})
}

func TestStartInsecureHTTP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileCACert), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, Config{BootstrapDir: dir, InsecureHTTP: true})
	if !strings.HasPrefix(sb.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:<port>", sb.URL)
	}
	if _, err := os.Stat(filepath.Join(dir, FileCACert)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ca.crt after an --insecure-http start: %v, want it removed", err)
	}
	if _, ok := parseManifest(t, []byte(readFile(t, dir, FileManifest))).StringData[FileCACert]; ok {
		t.Error("manifest has ca.crt with --insecure-http")
	}
	assertAdminLogin(t, dir)
}

func TestStartAppliesFaults(t *testing.T) {
	sb := startSandbox(t, Config{InsecureHTTP: true, Seed: 7, Faults: sandbox.Faults{
		Latency: time.Millisecond, ErrorRate: 1, Kinds: []sandbox.FaultKind{sandbox.FaultInternal},
		Operations: []string{"CreateLoginChallenge"},
	}})
	resp, err := http.Get(sb.URL + "/sandbox/faults")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	err = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got["errorRate"] != 1.0 || got["latency"] != "1ms" {
		t.Errorf("GET /sandbox/faults = %v, want errorRate 1 and latency 1ms", got)
	}
	resp, err = http.Post(sb.URL+"/auth/login/init", "application/json",
		strings.NewReader(`{"username":"`+AdminEmail+`","orgId":"`+sb.Server.OrgID()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("login init with error rate 1 = %d, want 500", resp.StatusCode)
	}
	if n := sb.Server.Counters()["CreateLoginChallenge"]; n != 1 {
		t.Errorf("CreateLoginChallenge counter = %d, want 1 (start-up calls are not counted)", n)
	}
}

// TestStartAppliesStrict: --strict reaches the sandbox (GET /sandbox/strict lists every
// behaviour) and the bootstrap admin still logs in.
func TestStartAppliesStrict(t *testing.T) {
	sb := startSandbox(t, Config{InsecureHTTP: true, Strict: sandbox.StrictAll()})
	resp, err := http.Get(sb.URL + "/sandbox/strict")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, sandbox.StrictnessNames()) {
		t.Errorf("GET /sandbox/strict = %v, want every behaviour %v", got, sandbox.StrictnessNames())
	}
	assertAdminLogin(t, sb.BootstrapDir())
}

func TestStateFileKeepsAdmin(t *testing.T) {
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state.json")
	dir := filepath.Join(tmp, "bootstrap")
	first, err := Start(Config{Listen: anyPort, BootstrapDir: dir, StateFile: state}, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	firstCA := readFile(t, dir, FileCACert)
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	second := startSandbox(t, Config{BootstrapDir: dir, StateFile: state})
	if !second.ReusedAdmin {
		t.Error("ReusedAdmin = false after a restart with the same state file and bootstrap directory")
	}
	if second.Server.OrgID() != first.Server.OrgID() {
		t.Errorf("org after restart = %s, want %s", second.Server.OrgID(), first.Server.OrgID())
	}
	if !reflect.DeepEqual(
		[]string{second.Bootstrap.Username, second.Bootstrap.CredID, string(second.Bootstrap.PrivateKeyPEM)},
		[]string{first.Bootstrap.Username, first.Bootstrap.CredID, string(first.Bootstrap.PrivateKeyPEM)}) {
		t.Error("the restarted sandbox published other admin credentials")
	}
	if readFile(t, dir, FileCACert) == firstCA {
		t.Error("ca.crt was not rewritten for the new CA")
	}
	if n := len(second.Server.Counters()); n != 0 {
		t.Errorf("counters after start = %v, want none (the reuse check is not counted)", second.Server.Counters())
	}
	assertAdminLogin(t, dir)

	t.Run("LostBootstrapMakesNewAdmin", func(t *testing.T) {
		if err := second.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		otherDir := filepath.Join(tmp, "other")
		third := startSandbox(t, Config{BootstrapDir: otherDir, StateFile: state})
		if third.ReusedAdmin || third.Bootstrap.Username != "operator+2@dfns-sandbox.local" {
			t.Errorf("admin = %s (reused %v), want a new operator+2@dfns-sandbox.local",
				third.Bootstrap.Username, third.ReusedAdmin)
		}
		assertAdminLogin(t, otherDir)
	})
}

func TestRunPrintsReadyLineAndStopsOnCancel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bootstrap")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listen: anyPort, BootstrapDir: dir}, pw, log.New(logs, "", 0))
		_ = pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no ready line; Run returned %v", <-done)
	}
	line := lines.Text()
	readyRE := regexp.MustCompile(
		`^dfns-sandbox ready url=(https://127\.0\.0\.1:[0-9]+) org=(or-[a-z0-9-]+) bootstrap=(.+)$`)
	m := readyRE.FindStringSubmatch(line)
	if m == nil || m[3] != dir {
		t.Fatalf("ready line = %q, want url, org and bootstrap=%s", line, dir)
	}
	b, err := ReadBootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != b.APIURL || m[2] != b.OrgID {
		t.Errorf("ready line %q disagrees with the bootstrap %v", line, b)
	}
	assertNoSecret(t, "the ready line", line, b)
	assertAdminLogin(t, dir)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil (exit 0)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if lines.Scan() {
		t.Errorf("Run printed more than one line: %q", lines.Text())
	}
	host := strings.TrimPrefix(m[1], "https://")
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("%s still accepts connections after shutdown", host)
	}
	assertNoSecret(t, "the sandbox's log", logs.String(), b)
}

func TestRunFailsWhenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", anyPort)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	dir := filepath.Join(t.TempDir(), "bootstrap")
	cfg := Config{Listen: ln.Addr().String(), BootstrapDir: dir}
	err = Run(context.Background(), cfg, io.Discard, log.New(io.Discard, "", 0))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a taken port = %v, want a listen error", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bootstrap directory written although the sandbox could not listen")
	}
}
