/*
Copyright 2026 The dfns-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package harness runs the operator the way a user does, with real processes and no container
// engine: etcd + kube-apiserver (hack/envtest-up), the dfns-sandbox binary serving HTTPS, and
// the manager binary reading the sandbox's bootstrap credentials, driven by the kubectl that
// hack/setup-envtest.sh builds. test/e2e, test/chaos and test/bench use it.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// Options configures a Harness.
type Options struct {
	// Root is the repository; Work receives binaries, kubeconfig, bootstrap dir and logs.
	Root, Work string
	// SandboxArgs are added to the dfns-sandbox command line (e.g. --latency 20ms).
	SandboxArgs []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// EnabledLabel opts a namespace into ClusterDfnsConnection/default, as config/connection
// selects namespaces: access.dfns.io/enabled=true.
const EnabledLabel = "access.dfns.io/enabled"

// Names of the harness's own processes (and of their logs in Work).
const (
	procManager = "manager"
	procSandbox = "sandbox"
	procEnvtest = "envtest"
)

// Harness is a running control plane and Dfns sandbox, and the manager when started.
type Harness struct {
	Options
	Kubectl    string // path of the kubectl binary
	Kubeconfig string
	Bootstrap  string // the sandbox's bootstrap directory: the operator's credentials
	SandboxURL string
	Config     *rest.Config
	K8s        client.Client
	Admin      dfns.API // the sandbox's admin user, logged in
	// Sandbox is the first sandbox (organisation) as a Sandbox; Bootstrap, SandboxURL and Admin
	// are its fields, kept for brevity.
	Sandbox *Sandbox
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	order   []string // process names in the order they started
	extra   []*Sandbox
}

// Sandbox is one dfns-sandbox process: one Dfns organisation with its admin user.
type Sandbox struct {
	// Name is the process's name in the harness; its log is Work/<Name>.log.
	Name string
	// URL is the base URL it serves (HTTPS) and OrgID its organisation.
	URL, OrgID string
	// Bootstrap is its bootstrap directory: one file per credential (DFNS_API_URL,
	// DFNS_ORG_ID, DFNS_USERNAME, DFNS_CRED_ID, DFNS_PRIVATE_KEY, ca.crt) and the same as the
	// Secret manifest dfns-credentials.yaml.
	Bootstrap string
	// CACertPEM is the CA of its TLS (Bootstrap/ca.crt).
	CACertPEM []byte
	// Admin is its admin user, logged in.
	Admin    dfns.API
	controls *http.Client
}

// CredentialKeys are the files of a bootstrap directory that make a credentials Secret: the
// keys of dfns-credentials, which a connection's secretRef reads.
var CredentialKeys = []string{
	"DFNS_API_URL", "DFNS_ORG_ID", "DFNS_USERNAME", "DFNS_CRED_ID", "DFNS_PRIVATE_KEY", "ca.crt",
}

// Start builds the binaries, starts etcd + kube-apiserver with the CRDs and the sandbox,
// creates namespace dfns-system with the dfns-credentials Secret, as a deployment would, and
// ClusterDfnsConnection/default (config/connection), which serves the namespaces labelled
// EnabledLabel=true (see CreateNamespace).
func Start(opts Options) (*Harness, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	h := &Harness{Options: opts, Kubeconfig: filepath.Join(opts.Work, "kubeconfig"), procs: map[string]*exec.Cmd{}}
	h.logf("building the control plane and kubectl from the module proxy (cached after the first run)")
	setup := exec.Command(filepath.Join(opts.Root, "hack", "setup-envtest.sh"))
	setup.Env = append(os.Environ(), "WITH_KUBECTL=1")
	setup.Stderr = opts.Log
	out, err := setup.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/setup-envtest.sh: %w", err)
	}
	assets := strings.TrimSpace(string(out))
	h.Kubectl = filepath.Join(assets, "kubectl")

	h.logf("building the manager, dfns-sandbox and envtest-up")
	bins := map[string]string{procManager: "./cmd", "dfns-sandbox": "./cmd/dfns-sandbox",
		"envtest-up": "./hack/envtest-up"}
	for name, pkg := range bins {
		build := exec.Command("go", "build", "-o", filepath.Join(opts.Work, name), pkg)
		build.Dir = opts.Root
		if b, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
	}

	h.logf("starting etcd + kube-apiserver with the CRDs")
	env := []string{"KUBEBUILDER_ASSETS=" + assets}
	crds := filepath.Join(opts.Root, "config", "crd", "bases")
	_, err = h.start(procEnvtest, "control plane up", env, filepath.Join(opts.Work, "envtest-up"),
		"--kubeconfig-out", h.Kubeconfig, "--crds", crds)
	if err != nil {
		return h, err
	}
	h.logf("starting the Dfns sandbox over HTTPS %v", opts.SandboxArgs)
	sb, err := h.startSandbox(procSandbox, filepath.Join(opts.Work, "bootstrap"), opts.SandboxArgs)
	if err != nil {
		return h, err
	}
	h.Sandbox, h.Bootstrap, h.SandboxURL, h.Admin = sb, sb.Bootstrap, sb.URL, sb.Admin
	if err := h.connect(); err != nil {
		return h, err
	}
	h.logf("creating namespace dfns-system with the dfns-credentials Secret")
	if _, err := h.Run("", "create", "namespace", "dfns-system"); err != nil {
		return h, err
	}
	if _, err := h.Run("", "apply", "-f", filepath.Join(h.Bootstrap, "dfns-credentials.yaml")); err != nil {
		return h, err
	}
	h.logf("creating ClusterDfnsConnection/default (kubectl apply -k config/connection)")
	_, err = h.Run("", "apply", "-k", filepath.Join(opts.Root, "config", "connection"))
	return h, err
}

// StartSandbox starts another dfns-sandbox process, a second Dfns organisation with an
// organisation ID, signing keys, CA and admin user of its own, named name (its log is
// Work/<name>.log, its bootstrap directory Work/<name>/bootstrap). args are added to its
// command line. Stop ends it with the rest. A manager started afterwards allows its URL in a
// DfnsConnection's credentials (ManagerArgs); one already running must be restarted for that.
func (h *Harness) StartSandbox(name string, args ...string) (*Sandbox, error) {
	h.mu.Lock()
	_, taken := h.procs[name]
	h.mu.Unlock()
	if taken || name == "" || name == procSandbox || name == procManager || name == procEnvtest {
		return nil, fmt.Errorf("sandbox name %q is taken", name)
	}
	h.logf("starting a second Dfns sandbox %q over HTTPS %v", name, args)
	sb, err := h.startSandbox(name, filepath.Join(h.Work, name, "bootstrap"), args)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.extra = append(h.extra, sb)
	h.mu.Unlock()
	return sb, nil
}

// startSandbox runs the dfns-sandbox binary as process name, writing its admin user's
// credentials into bootstrap, and connects to it.
// SANDBOX_FLAGS adds flags to every sandbox (make test-e2e SANDBOX_FLAGS=--strict).
func (h *Harness) startSandbox(name, bootstrap string, args []string) (*Sandbox, error) {
	argv := append([]string{"--listen", "127.0.0.1:0", "--bootstrap-dir", bootstrap}, args...)
	argv = append(argv, strings.Fields(os.Getenv("SANDBOX_FLAGS"))...)
	line, err := h.start(name, "dfns-sandbox ready", nil, filepath.Join(h.Work, "dfns-sandbox"), argv...)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{Name: name, Bootstrap: bootstrap}
	// The ready line: dfns-sandbox ready url=<URL> org=<org ID> bootstrap=<dir>
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, "url="); ok {
			sb.URL = v
		}
		if v, ok := strings.CutPrefix(f, "org="); ok {
			sb.OrgID = v
		}
	}
	if sb.URL == "" || sb.OrgID == "" {
		return nil, fmt.Errorf("%s: no url= or org= in its ready line %q", name, line)
	}
	if sb.CACertPEM, err = os.ReadFile(filepath.Join(bootstrap, "ca.crt")); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sb.CACertPEM) {
		return nil, fmt.Errorf("no certificate in %s", filepath.Join(bootstrap, "ca.crt"))
	}
	sb.controls = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	sb.Admin, err = dfns.New(dfns.Options{Credentials: dfns.NewFileCredentials(bootstrap), QPS: 1000, Burst: 1000})
	if err != nil {
		return nil, err
	}
	return sb, nil
}

// Credentials reads the sandbox's bootstrap credentials: CredentialKeys to their contents.
func (s *Sandbox) Credentials() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, k := range CredentialKeys {
		b, err := os.ReadFile(filepath.Join(s.Bootstrap, k))
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

// CreateCredentialsSecret makes, with kubectl, a Secret ns/name holding the sandbox's
// bootstrap credentials under the keys of dfns-credentials, for a connection's secretRef.
func (h *Harness) CreateCredentialsSecret(s *Sandbox, ns, name string) error {
	args := make([]string, 0, 6+len(CredentialKeys))
	args = append(args, "create", "secret", "generic", name, "-n", ns)
	for _, k := range CredentialKeys {
		args = append(args, "--from-file="+k+"="+filepath.Join(s.Bootstrap, k))
	}
	_, err := h.Run("", args...)
	return err
}

// CreateNamespace creates namespace name labelled EnabledLabel=true, so that
// ClusterDfnsConnection/default serves its resources.
func (h *Harness) CreateNamespace(name string) error {
	_, err := h.Run(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels: {%s: "true"}
`, name, EnabledLabel), "create", "-f", "-")
	return err
}

// connect makes the client of the control plane.
func (h *Harness) connect() error {
	var err error
	if h.Config, err = clientcmd.BuildConfigFromFlags("", h.Kubeconfig); err != nil {
		return err
	}
	h.Config.QPS, h.Config.Burst = 500, 1000
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	h.K8s, err = client.New(h.Config, client.Options{Scheme: scheme})
	return err
}

func (h *Harness) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(h.Log, "harness: "+format+"\n", args...)
}

// start runs a process with its output in Work/NAME.log and waits for a line containing
// ready; it returns that line.
func (h *Harness) start(name, ready string, env []string, bin string, args ...string) (string, error) {
	logf, err := os.Create(filepath.Join(h.Work, name+".log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logf, pw), logf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	h.mu.Lock()
	h.procs[name] = cmd
	h.order = append(h.order, name)
	h.mu.Unlock()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
	}()
	select {
	case line := <-lines:
		return line, nil
	case <-time.After(90 * time.Second):
		return "", fmt.Errorf("%s did not print %q within 90s; see %s", name, ready, filepath.Join(h.Work, name+".log"))
	}
}

// ManagerArgs are the manager's flags in the harness: the sandbox's bootstrap directory as its
// mounted credentials, the URLs of every sandbox started so far as the API URLs a
// DfnsConnection may name, no metrics, a probe port of its own, and no leader election: one
// manager runs, and one started right after a SIGKILL must not wait for the dead one's Lease.
func (h *Harness) ManagerArgs(extra ...string) []string {
	return append([]string{"--kubeconfig", h.Kubeconfig, "--dfns-credentials-dir", h.Bootstrap,
		"--dfns-connection-api-urls", strings.Join(h.sandboxURLs(), ","),
		"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:0", "--leader-elect=false"}, extra...)
}

// sandboxURLs are the URLs of the sandboxes started so far, the first one first.
func (h *Harness) sandboxURLs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	urls := make([]string, 0, 1+len(h.extra))
	urls = append(urls, h.SandboxURL)
	for _, s := range h.extra {
		urls = append(urls, s.URL)
	}
	return urls
}

// StartManager runs the manager binary with ManagerArgs(extra...) (a later flag wins), its
// output appended to Work/manager.log.
func (h *Harness) StartManager(extra ...string) error {
	logf, err := os.OpenFile(filepath.Join(h.Work, "manager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(h.Work, procManager), h.ManagerArgs(extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	h.mu.Lock()
	h.procs[procManager] = cmd
	h.mu.Unlock()
	return nil
}

// ManagerPID is the running manager's process ID, 0 when none runs.
func (h *Harness) ManagerPID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cmd := h.procs[procManager]; cmd != nil && cmd.ProcessState == nil {
		return cmd.Process.Pid
	}
	return 0
}

// KillManager stops the manager with SIGKILL: no cleanup, no graceful shutdown.
func (h *Harness) KillManager() error {
	h.mu.Lock()
	cmd := h.procs[procManager]
	h.mu.Unlock()
	if cmd == nil || cmd.ProcessState != nil {
		return errors.New("no manager is running")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = cmd.Wait()
	return nil
}

// Stop ends every process the harness started, gracefully first: the manager, then the
// others in the reverse order of their start.
func (h *Harness) Stop() {
	h.mu.Lock()
	names := []string{procManager}
	for _, name := range slices.Backward(h.order) {
		names = append(names, name)
	}
	h.mu.Unlock()
	for _, name := range names {
		h.mu.Lock()
		cmd := h.procs[name]
		h.mu.Unlock()
		if cmd == nil || cmd.ProcessState != nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// Run runs kubectl against the control plane, in the repository, with stdin; it returns
// standard output.
func (h *Harness) Run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(h.Kubectl, append([]string{"--kubeconfig", h.Kubeconfig}, args...)...)
	cmd.Dir = h.Root
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// control calls a sandbox test control (/sandbox/...) and decodes its JSON answer into out.
func (s *Sandbox) control(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		return err
	}
	resp, err := s.controls.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Counters reads the sandbox's calls per operation.
func (s *Sandbox) Counters() (map[string]int, error) {
	var c map[string]int
	return c, s.control(http.MethodGet, "/sandbox/counters", nil, &c)
}

// ResetCounters zeroes the sandbox's counters.
func (s *Sandbox) ResetCounters() error {
	return s.control(http.MethodDelete, "/sandbox/counters", nil, nil)
}

// SetFaults replaces the sandbox's fault configuration (see internal/dfns/sandbox's Faults:
// latency as a Go duration string, errorRate, kinds, operations).
func (s *Sandbox) SetFaults(faults map[string]any) error {
	return s.control(http.MethodPut, "/sandbox/faults", faults, nil)
}

// Counters reads the first sandbox's calls per operation.
func (h *Harness) Counters() (map[string]int, error) { return h.Sandbox.Counters() }

// ResetCounters zeroes the first sandbox's counters.
func (h *Harness) ResetCounters() error { return h.Sandbox.ResetCounters() }

// SetFaults replaces the first sandbox's fault configuration.
func (h *Harness) SetFaults(faults map[string]any) error { return h.Sandbox.SetFaults(faults) }

// sandboxAt is the sandbox serving url, nil when none does.
func (h *Harness) sandboxAt(url string) *Sandbox {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range append([]*Sandbox{h.Sandbox}, h.extra...) {
		if s != nil && strings.TrimRight(s.URL, "/") == strings.TrimRight(url, "/") {
			return s
		}
	}
	return nil
}

// AppClient is what an app builds from a generated Secret: the official variable names only,
// trusting the CA of the sandbox its DFNS_API_URL names.
func (h *Harness) AppClient(ctx context.Context, ns, name string) (dfns.API, error) {
	var s corev1.Secret
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return nil, err
	}
	url := string(s.Data["DFNS_API_URL"])
	sb := h.sandboxAt(url)
	if sb == nil {
		return nil, fmt.Errorf("secret %s/%s: no sandbox of the harness serves DFNS_API_URL %q", ns, name, url)
	}
	return dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(SecretCredentials(s.Data, sb))})
}

// SecretCredentials are the credentials of a generated Secret's data sent to sandbox sb
// instead of the DFNS_API_URL it names, trusting sb's CA: what an app would get if it pointed
// the Secret at another organisation.
func SecretCredentials(data map[string][]byte, sb *Sandbox) dfns.Credentials {
	return dfns.Credentials{APIURL: sb.URL, OrgID: string(data["DFNS_ORG_ID"]),
		AuthToken: string(data["DFNS_AUTH_TOKEN"]), CredID: string(data["DFNS_CRED_ID"]),
		PrivateKeyPEM: data["DFNS_PRIVATE_KEY"], CACertPEM: sb.CACertPEM}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
