// Package sdk_test proves that dfns-sandbox is faithful enough for the official Dfns SDKs: the
// TypeScript SDK (@dfns/sdk with @dfns/sdk-keysigner, run by node on conformance.mjs) and the
// Go SDK's wire forms (the project's client signs with the Go SDK's clientData).
package sdk_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dfns-operator/dfns-operator/cmd/dfns-sandbox/app"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// nodeTimeout bounds one run of conformance.mjs.
const nodeTimeout = 2 * time.Minute

// startSandbox runs dfns-sandbox in-process over HTTPS on a free port, as the binary does
// (with strict, as dfns-sandbox --strict-behaviours).
func startSandbox(t *testing.T, strict sandbox.Strictness) *app.Sandbox {
	t.Helper()
	cfg := app.Config{Listen: "127.0.0.1:0", BootstrapDir: filepath.Join(t.TempDir(), "bootstrap"), Strict: strict}
	sb, err := app.Start(cfg, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatalf("start dfns-sandbox: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Shutdown(context.Background()); err != nil {
			t.Errorf("shut down dfns-sandbox: %v", err)
		}
	})
	return sb
}

// ensureNodeModules installs the locked SDK packages when they are missing. A missing npm or
// a failing install fails the test: the conformance run is not optional.
func ensureNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("node_modules", "@dfns", "sdk-keysigner", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in test/sdk: %v\n%s", err, out)
	}
}

// TestTypeScriptSDKConformance runs conformance.mjs against the default sandbox and against
// a strict one (dfns-sandbox --strict): the script reads the strict behaviours and checks
// their readings.
func TestTypeScriptSDKConformance(t *testing.T) {
	ensureNodeModules(t)
	t.Run("Default", func(t *testing.T) { runConformance(t, sandbox.Strictness{}) })
	t.Run("Strict", func(t *testing.T) { runConformance(t, sandbox.StrictAll()) })
}

func runConformance(t *testing.T, strict sandbox.Strictness) {
	sb := startSandbox(t, strict)
	bootDir := sb.BootstrapDir()

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "conformance.mjs")
	cmd.Env = append(os.Environ(),
		"DFNS_BOOTSTRAP_DIR="+bootDir,
		"NODE_EXTRA_CA_CERTS="+filepath.Join(bootDir, app.FileCACert),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node conformance.mjs against %s failed: %v\n%s", sb.URL, err, out)
	}
	t.Logf("node conformance.mjs:\n%s", out)
	if !regexp.MustCompile(`(?m)^dfns sdk conformance: all [0-9]+ steps passed$`).Match(out) {
		t.Errorf("the script exited 0 without its final line:\n%s", out)
	}
	if want := "strict=[" + strings.Join(strict.Names(), ",") + "]"; !strings.Contains(string(out), want) {
		t.Errorf("the script did not read the strict behaviours %s:\n%s", want, out)
	}
	assertNoSecret(t, string(out), sb.Bootstrap.PrivateKeyPEM)

	// The SDK really went through the sandbox: every flow it claims left its calls.
	counters := sb.Server.Counters()
	for _, op := range []string{
		"CreateLoginChallenge", "Login", "CreateUserActionChallenge", "CreateUserActionSignature",
		"CreatePermission", "CreateServiceAccount", "CreatePersonalAccessToken", "CreatePolicy",
		"UpdatePermission", "CreateApprovalDecision", "RevokePermission", "DeleteServiceAccount",
		"DeletePersonalAccessToken", "CreateWebhook", "DeleteWebhook", "PingWebhook", "ListWebhookEvents",
		"CreateUser", "DeleteUser", "DeactivateServiceAccount", "UpdatePolicy", "ArchivePolicy",
	} {
		if counters[op] == 0 {
			t.Errorf("the SDK run made no %s call (counters %v)", op, counters)
		}
	}
}

func assertNoSecret(t *testing.T, text string, privateKeyPEM []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(privateKeyPEM)), "\n")
	if strings.Contains(text, "PRIVATE KEY") || (len(lines) > 1 && strings.Contains(text, lines[1])) {
		t.Errorf("the output shows a private key")
	}
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`).MatchString(text) {
		t.Errorf("the output shows a JWT")
	}
}

// TestGoSDKClientDataLogin logs in with the Go SDK's clientData form
// {"challenge":…,"crossOrigin":false,"type":"key.get"}: once through the project's client,
// which signs that way, and once by hand, so the form is pinned even if the client changes.
func TestGoSDKClientDataLogin(t *testing.T) {
	sb := startSandbox(t, sandbox.Strictness{})
	bootDir := sb.BootstrapDir()

	t.Run("ProjectClient", func(t *testing.T) {
		c, err := dfns.New(dfns.Options{Credentials: dfns.NewFileCredentials(bootDir), MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.ListServiceAccounts(ctx); err != nil {
			t.Fatalf("ListServiceAccounts after logging in with the bootstrap credentials: %v", err)
		}
		if n := sb.Server.Counters()["Login"]; n != 1 {
			t.Errorf("Login calls = %d, want 1", n)
		}
	})

	t.Run("ExactGoSDKBytes", func(t *testing.T) {
		b := sb.Bootstrap
		client := httpsClient(t, b.CACertPEM)
		var challenge struct {
			Challenge           string `json:"challenge"`
			ChallengeIdentifier string `json:"challengeIdentifier"`
		}
		initBody := map[string]string{"username": b.Username, "orgId": b.OrgID}
		postJSON(t, client, sb.URL+"/auth/login/init", initBody, &challenge)
		clientData := []byte(`{"challenge":"` + challenge.Challenge + `","crossOrigin":false,"type":"key.get"}`)
		assertion := map[string]any{
			"kind": "Key",
			"credentialAssertion": map[string]string{
				"credId":     b.CredID,
				"clientData": base64.RawURLEncoding.EncodeToString(clientData),
				"signature":  base64.RawURLEncoding.EncodeToString(signECDSA(t, b.PrivateKeyPEM, clientData)),
			},
		}
		var token struct {
			Token string `json:"token"`
		}
		postJSON(t, client, sb.URL+"/auth/login", map[string]any{
			"challengeIdentifier": challenge.ChallengeIdentifier, "firstFactor": assertion,
		}, &token)
		if strings.Count(token.Token, ".") != 2 {
			t.Errorf("login answered no JWT")
		}
	})
}

func httpsClient(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	return &http.Client{Timeout: 10 * time.Second, Transport: transport}
}

func postJSON(t *testing.T, c *http.Client, url string, body, out any) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %d: %s", url, resp.StatusCode, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		t.Fatalf("POST %s: decode answer: %v", url, err)
	}
}

// signECDSA signs SHA-256(msg) with the PKCS#8 key as ASN.1 DER, as the Go SDK does.
func signECDSA(t *testing.T, keyPEM, msg []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("the bootstrap private key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(errors.New("the bootstrap private key is not PKCS#8"))
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatal("the bootstrap private key cannot sign")
	}
	sum := sha256.Sum256(msg)
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
