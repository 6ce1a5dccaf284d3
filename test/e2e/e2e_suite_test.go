//go:build e2e

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

// Package e2e runs the operator the way a user does, with real processes and no container
// engine: etcd + kube-apiserver (hack/envtest-up), the dfns-sandbox binary serving HTTPS, the
// manager binary reading the sandbox's bootstrap credentials, and the kubectl built by
// hack/setup-envtest.sh applying config/samples.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

var (
	root       string // the repository
	work       string // binaries, kubeconfig, bootstrap dir and logs of this run
	kubectlBin string
	kubeconfig string
	bootstrap  string
	sandboxURL string
	k8s        client.Client
	admin      dfns.API
	controls   *http.Client // the sandbox's test controls, over its TLS
	procs      = map[string]*exec.Cmd{}
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dfns-operator e2e suite")
}

var _ = BeforeSuite(func() {
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	work = GinkgoT().TempDir()
	kubeconfig = filepath.Join(work, "kubeconfig")
	bootstrap = filepath.Join(work, "bootstrap")

	By("building the control plane and kubectl from the module proxy (cached after the first run)")
	setup := exec.Command(filepath.Join(root, "hack", "setup-envtest.sh"))
	setup.Env = append(os.Environ(), "WITH_KUBECTL=1")
	setup.Stderr = GinkgoWriter
	out, err := setup.Output()
	Expect(err).NotTo(HaveOccurred())
	assets := strings.TrimSpace(string(out))
	kubectlBin = filepath.Join(assets, "kubectl")

	By("building the manager, dfns-sandbox and envtest-up")
	bins := map[string]string{"manager": "./cmd", "dfns-sandbox": "./cmd/dfns-sandbox", "envtest-up": "./hack/envtest-up"}
	for name, pkg := range bins {
		build := exec.Command("go", "build", "-o", filepath.Join(work, name), pkg)
		build.Dir = root
		b, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go build %s: %s", pkg, b)
	}

	By("starting etcd + kube-apiserver with the CRDs")
	start("envtest", "control plane up", []string{"KUBEBUILDER_ASSETS=" + assets}, filepath.Join(work, "envtest-up"),
		"--kubeconfig-out", kubeconfig, "--crds", filepath.Join(root, "config", "crd", "bases"))

	By("starting the Dfns sandbox over HTTPS")
	line := start("sandbox", "dfns-sandbox ready", nil,
		filepath.Join(work, "dfns-sandbox"), "--listen", "127.0.0.1:0", "--bootstrap-dir", bootstrap,
		// Latency widens the window in which the manager is killed with a create in flight.
		"--latency", "40ms")
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, "url="); ok {
			sandboxURL = v
		}
	}
	Expect(sandboxURL).To(HavePrefix("https://"))
	ca, err := os.ReadFile(filepath.Join(bootstrap, "ca.crt"))
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(ca)).To(BeTrue())
	controls = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	admin, err = dfns.New(dfns.Options{Credentials: dfns.NewFileCredentials(bootstrap)})
	Expect(err).NotTo(HaveOccurred())

	By("creating namespace dfns-system with the dfns-credentials Secret, as a deployment would")
	kubectl("create", "namespace", "dfns-system")
	kubectl("apply", "-f", filepath.Join(bootstrap, "dfns-credentials.yaml"))

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	startManager()
})

var _ = AfterSuite(func() {
	for _, name := range []string{"manager", "sandbox", "envtest"} {
		if cmd := procs[name]; cmd != nil && cmd.ProcessState == nil {
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
})

// On failure, show what the manager said and the state of every resource.
var _ = ReportAfterEach(func(r SpecReport) {
	if !r.Failed() {
		return
	}
	if b, err := os.ReadFile(filepath.Join(work, "manager.log")); err == nil {
		lines := strings.Split(string(b), "\n")
		tail := strings.Join(lines[max(0, len(lines)-60):], "\n")
		_, _ = fmt.Fprintf(GinkgoWriter, "--- manager log (last 60 lines)\n%s\n", tail)
	}
	dumps := [][]string{{"get", "dfns", "-A", "-o", "wide"}, {"get", "events", "-A", "--sort-by=.lastTimestamp"}}
	for _, args := range dumps {
		cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		out, _ := cmd.CombinedOutput()
		_, _ = fmt.Fprintf(GinkgoWriter, "--- kubectl %s\n%s\n", strings.Join(args, " "), out)
	}
})

// start runs a process with its output in work/NAME.log and waits for a line containing
// ready; it returns that line.
func start(name, ready string, env []string, bin string, args ...string) string {
	GinkgoHelper()
	logf, err := os.Create(filepath.Join(work, name+".log"))
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logf, pw), logf
	Expect(cmd.Start()).To(Succeed())
	procs[name] = cmd
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				lines <- sc.Text()
			}
		}
	}()
	var line string
	Eventually(lines).WithTimeout(90*time.Second).Should(Receive(&line),
		"%s did not print %q; see %s.log", name, ready, name)
	return line
}

// startManager runs the manager binary with the sandbox's bootstrap directory as its mounted
// credentials.
func startManager() {
	GinkgoHelper()
	logf, err := os.OpenFile(filepath.Join(work, "manager.log"),
		os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(filepath.Join(work, "manager"), "--kubeconfig", kubeconfig, "--dfns-credentials-dir", bootstrap,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:0",
		"--sync-period", "5s", "--max-concurrent-reconciles", "4")
	cmd.Stdout, cmd.Stderr = logf, logf
	Expect(cmd.Start()).To(Succeed())
	procs["manager"] = cmd
}

// killManager stops the manager with SIGKILL: no cleanup, no graceful shutdown.
func killManager() {
	GinkgoHelper()
	cmd := procs["manager"]
	Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	_ = cmd.Wait()
}

// kubectl runs the kubectl built by hack/ against the suite's control plane.
func kubectl(args ...string) string {
	GinkgoHelper()
	return kubectlIn("", args...)
}

// kubectlIn runs kubectl with stdin.
func kubectlIn(stdin string, args ...string) string {
	GinkgoHelper()
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Dir = root
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

// counters reads the sandbox's calls per operation.
func counters() map[string]int {
	GinkgoHelper()
	resp, err := controls.Get(sandboxURL + "/sandbox/counters")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	var c map[string]int
	Expect(json.NewDecoder(resp.Body).Decode(&c)).To(Succeed())
	return c
}

// appClient is what an app builds from a generated Secret: the official variable names only.
func appClient(ns, name string) dfns.API {
	GinkgoHelper()
	var s corev1.Secret
	Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s)).To(Succeed())
	ca, err := os.ReadFile(filepath.Join(bootstrap, "ca.crt"))
	Expect(err).NotTo(HaveOccurred())
	c, err := dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(dfns.Credentials{
		APIURL: string(s.Data["DFNS_API_URL"]), OrgID: string(s.Data["DFNS_ORG_ID"]),
		AuthToken: string(s.Data["DFNS_AUTH_TOKEN"]), CredID: string(s.Data["DFNS_CRED_ID"]),
		PrivateKeyPEM: s.Data["DFNS_PRIVATE_KEY"], CACertPEM: ca})})
	Expect(err).NotTo(HaveOccurred())
	return c
}
