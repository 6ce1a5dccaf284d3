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
// engine (test/harness): etcd + kube-apiserver, the dfns-sandbox binary serving HTTPS, the
// manager binary reading the sandbox's bootstrap credentials, and kubectl applying
// config/samples.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

var (
	h     *harness.Harness
	admin dfns.API // the sandbox's admin user
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dfns-operator e2e suite")
}

var _ = BeforeSuite(func() {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	// Latency widens the window in which the manager is killed with a create in flight.
	h, err = harness.Start(harness.Options{Root: root, Work: GinkgoT().TempDir(), Log: GinkgoWriter,
		SandboxArgs: []string{"--latency", "40ms"}})
	if h != nil {
		DeferCleanup(h.Stop)
	}
	Expect(err).NotTo(HaveOccurred())
	admin = h.Admin
	startManager()
})

// On failure, show what the manager said and the state of every resource.
var _ = ReportAfterEach(func(r SpecReport) {
	if !r.Failed() || h == nil {
		return
	}
	if b, err := os.ReadFile(filepath.Join(h.Work, "manager.log")); err == nil {
		lines := strings.Split(string(b), "\n")
		tail := strings.Join(lines[max(0, len(lines)-60):], "\n")
		_, _ = fmt.Fprintf(GinkgoWriter, "--- manager log (last 60 lines)\n%s\n", tail)
	}
	dumps := [][]string{{"get", "dfns", "-A", "-o", "wide"}, {"get", "events", "-A", "--sort-by=.lastTimestamp"}}
	for _, args := range dumps {
		out, err := h.Run("", args...)
		_, _ = fmt.Fprintf(GinkgoWriter, "--- kubectl %s\n%s%v\n", strings.Join(args, " "), out, err)
	}
})

// startManager runs the manager binary as the e2e specs expect it.
func startManager() {
	GinkgoHelper()
	Expect(h.StartManager("--sync-period", "5s", "--max-concurrent-reconciles", "4",
		"--dfns-credentials-secret", credentialsSecret)).To(Succeed())
}

// killManager stops the manager with SIGKILL.
func killManager() {
	GinkgoHelper()
	Expect(h.KillManager()).To(Succeed())
}

// managerCommand is the manager binary with the given flags, not started.
func managerCommand(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(h.Work, "manager"), args...)
}

// kubectl runs kubectl against the suite's control plane.
func kubectl(args ...string) string {
	GinkgoHelper()
	return kubectlIn("", args...)
}

// kubectlIn runs kubectl with stdin.
func kubectlIn(stdin string, args ...string) string {
	GinkgoHelper()
	out, err := h.Run(stdin, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// createNamespace creates a namespace that ClusterDfnsConnection/default serves (labelled
// access.dfns.io/enabled=true).
func createNamespace(name string) {
	GinkgoHelper()
	Expect(h.CreateNamespace(name)).To(Succeed())
}

// counters reads the sandbox's calls per operation.
func counters() map[string]int {
	GinkgoHelper()
	c, err := h.Counters()
	Expect(err).NotTo(HaveOccurred())
	return c
}

// appClient is what an app builds from a generated Secret: the official variable names only.
func appClient(ns, name string) dfns.API {
	GinkgoHelper()
	c, err := h.AppClient(context.Background(), ns, name)
	Expect(err).NotTo(HaveOccurred())
	return c
}
