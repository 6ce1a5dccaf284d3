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
	controls   *http.Client
	mu         sync.Mutex
	procs      map[string]*exec.Cmd
}

// Start builds the binaries, starts etcd + kube-apiserver with the CRDs and the sandbox, and
// creates namespace dfns-system with the dfns-credentials Secret, as a deployment would.
func Start(opts Options) (*Harness, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	h := &Harness{Options: opts, Kubeconfig: filepath.Join(opts.Work, "kubeconfig"),
		Bootstrap: filepath.Join(opts.Work, "bootstrap"), procs: map[string]*exec.Cmd{}}
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
	bins := map[string]string{"manager": "./cmd", "dfns-sandbox": "./cmd/dfns-sandbox", "envtest-up": "./hack/envtest-up"}
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
	_, err = h.start("envtest", "control plane up", env, filepath.Join(opts.Work, "envtest-up"),
		"--kubeconfig-out", h.Kubeconfig, "--crds", crds)
	if err != nil {
		return h, err
	}
	h.logf("starting the Dfns sandbox over HTTPS %v", opts.SandboxArgs)
	line, err := h.start("sandbox", "dfns-sandbox ready", nil, filepath.Join(opts.Work, "dfns-sandbox"),
		append([]string{"--listen", "127.0.0.1:0", "--bootstrap-dir", h.Bootstrap}, opts.SandboxArgs...)...)
	if err != nil {
		return h, err
	}
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, "url="); ok {
			h.SandboxURL = v
		}
	}
	if err := h.connect(); err != nil {
		return h, err
	}
	h.logf("creating namespace dfns-system with the dfns-credentials Secret")
	if _, err := h.Run("", "create", "namespace", "dfns-system"); err != nil {
		return h, err
	}
	_, err = h.Run("", "apply", "-f", filepath.Join(h.Bootstrap, "dfns-credentials.yaml"))
	return h, err
}

// connect makes the clients of the control plane, the sandbox's controls and its admin.
func (h *Harness) connect() error {
	ca, err := os.ReadFile(filepath.Join(h.Bootstrap, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("no certificate in the sandbox's ca.crt")
	}
	h.controls = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h.Admin, err = dfns.New(dfns.Options{Credentials: dfns.NewFileCredentials(h.Bootstrap), QPS: 1000, Burst: 1000})
	if err != nil {
		return err
	}
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
// mounted credentials, no metrics, a probe port of its own.
func (h *Harness) ManagerArgs(extra ...string) []string {
	return append([]string{"--kubeconfig", h.Kubeconfig, "--dfns-credentials-dir", h.Bootstrap,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:0"}, extra...)
}

// StartManager runs the manager binary with ManagerArgs(extra...) (a later flag wins), its
// output appended to Work/manager.log.
func (h *Harness) StartManager(extra ...string) error {
	logf, err := os.OpenFile(filepath.Join(h.Work, "manager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(h.Work, "manager"), h.ManagerArgs(extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	h.mu.Lock()
	h.procs["manager"] = cmd
	h.mu.Unlock()
	return nil
}

// ManagerPID is the running manager's process ID, 0 when none runs.
func (h *Harness) ManagerPID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cmd := h.procs["manager"]; cmd != nil && cmd.ProcessState == nil {
		return cmd.Process.Pid
	}
	return 0
}

// KillManager stops the manager with SIGKILL: no cleanup, no graceful shutdown.
func (h *Harness) KillManager() error {
	h.mu.Lock()
	cmd := h.procs["manager"]
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

// Stop ends every process the harness started, gracefully first.
func (h *Harness) Stop() {
	for _, name := range []string{"manager", "sandbox", "envtest"} {
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
func (h *Harness) control(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.SandboxURL+path, body)
	if err != nil {
		return err
	}
	resp, err := h.controls.Do(req)
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
func (h *Harness) Counters() (map[string]int, error) {
	var c map[string]int
	return c, h.control(http.MethodGet, "/sandbox/counters", nil, &c)
}

// ResetCounters zeroes the sandbox's counters.
func (h *Harness) ResetCounters() error {
	return h.control(http.MethodDelete, "/sandbox/counters", nil, nil)
}

// SetFaults replaces the sandbox's fault configuration (see internal/dfns/sandbox's Faults:
// latency as a Go duration string, errorRate, kinds, operations).
func (h *Harness) SetFaults(faults map[string]any) error {
	return h.control(http.MethodPut, "/sandbox/faults", faults, nil)
}

// AppClient is what an app builds from a generated Secret: the official variable names only.
func (h *Harness) AppClient(ctx context.Context, ns, name string) (dfns.API, error) {
	var s corev1.Secret
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(h.Bootstrap, "ca.crt"))
	if err != nil {
		return nil, err
	}
	return dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(dfns.Credentials{
		APIURL: string(s.Data["DFNS_API_URL"]), OrgID: string(s.Data["DFNS_ORG_ID"]),
		AuthToken: string(s.Data["DFNS_AUTH_TOKEN"]), CredID: string(s.Data["DFNS_CRED_ID"]),
		PrivateKeyPEM: s.Data["DFNS_PRIVATE_KEY"], CACertPEM: ca})})
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
