//go:build chaos

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

// Package chaos kills the manager with SIGKILL at random moments while the sandbox injects
// every kind of fault, then checks that nothing was lost or duplicated (make test-chaos).
// CHAOS_N (service accounts, each with an assignment; default 100), CHAOS_KILLS (default 10),
// CHAOS_ERROR_RATE (default 0.2) and CHAOS_SEED (default: random, printed) size and replay it.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestChaos(t *testing.T) {
	n, kills := envInt("CHAOS_N", 100), envInt("CHAOS_KILLS", 10)
	rate := 0.2
	if v, err := strconv.ParseFloat(os.Getenv("CHAOS_ERROR_RATE"), 64); err == nil {
		rate = v
	}
	seed := int64(envInt("CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos: %d service accounts with assignments, %d kills, fault rate %.2f, seed %d (replay: CHAOS_SEED=%d)",
		n, kills, rate, seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	h, err := harness.Start(harness.Options{Root: root, Work: work, Log: testWriter{t},
		SandboxArgs: []string{"--seed", strconv.FormatInt(seed, 10), "--latency", "5ms"}})
	if h != nil {
		defer h.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			dump(t, h)
		}
	}()
	// A short Dfns timeout: injected timeouts stall until the client gives up.
	managerArgs := []string{"--sync-period", "30s", "--max-concurrent-reconciles", "4", "--dfns-timeout", "2s",
		"--dfns-qps", "200", "--dfns-burst", "200"}
	must(t, h.StartManager(managerArgs...))
	ctx := context.Background()
	ns := "chaos"
	must(t, h.CreateNamespace(ns)) // labelled: ClusterDfnsConnection/default serves it

	start := time.Now()
	must(t, h.SetFaults(map[string]any{"latency": "5ms", "errorRate": rate}))
	_, err = h.Run(harness.PermissionsManifest+harness.AppsManifest(0, n), "apply", "-n", ns, "-f", "-")
	must(t, err)

	for k := range kills {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond) // a random moment
		must(t, h.KillManager())
		t.Logf("chaos: kill %d/%d at %s", k+1, kills, time.Since(start).Round(time.Millisecond))
		must(t, h.StartManager(managerArgs...))
	}
	_, err = h.Run("", "wait", "--for=condition=Ready", "dfnspermissions,dfnsserviceaccounts,dfnspermissionassignments",
		"--all", "-n", ns, "--timeout=10m")
	if err != nil {
		// Say which resources are stuck and why, so that a failure can be read without a rerun.
		out, _ := h.Run("", "get", "dfnsserviceaccounts,dfnspermissionassignments", "-n", ns, "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.annotations}{range .status.conditions[*]}`+
				` {.type}={.status}/{.reason}: {.message}{end}{"\n"}{end}`)
		for line := range strings.SplitSeq(out, "\n") {
			if strings.Contains(line, "Ready=False") {
				t.Log(line)
			}
		}
		t.Fatal(err)
	}
	converged := time.Since(start)

	must(t, h.SetFaults(map[string]any{"latency": "5ms", "errorRate": 0}))
	counters, err := h.Counters()
	must(t, err)
	report, err := h.VerifyBatch(ctx, ns, n)
	must(t, err)

	calls, ops := 0, make([]string, 0, len(counters))
	for op, c := range counters {
		if !strings.HasPrefix(op, "sandbox:") {
			calls += c
			ops = append(ops, op)
		}
	}
	slices.SortFunc(ops, func(a, b string) int { return counters[b] - counters[a] })
	top := make([]string, 0, 8)
	for _, op := range ops[:min(8, len(ops))] {
		top = append(top, fmt.Sprintf("%s %d", op, counters[op]))
	}
	t.Logf("chaos: result\n"+
		"  seed                               %d\n"+
		"  resources                          %d service accounts + %d assignments + 2 permissions\n"+
		"  manager SIGKILLs                   %d\n"+
		"  all Ready after                    %s\n"+
		"  active Dfns service accounts       %d (want %d)\n"+
		"  problems                           %d\n"+
		"  service accounts created           %d (calls, faulted ones included)\n"+
		"  orphans/duplicates deleted         %d (DeleteServiceAccount calls)\n"+
		"  Dfns calls spent                   %d (%.1f per service account); most: %s\n"+
		"  429s with Retry-After sent         %d\n"+
		"  calls before Retry-After passed    %d",
		seed, n, n, kills, converged.Round(time.Millisecond), report.Accounts, n, len(report.Problems),
		counters["CreateServiceAccount"], counters["DeleteServiceAccount"], calls, float64(calls)/float64(n),
		strings.Join(top, ", "), counters[sandbox.CounterRetryAfterSent], counters[sandbox.CounterCallsBeforeRetry])
	for _, p := range report.Problems {
		t.Error(p)
	}
	if report.Accounts != n {
		t.Errorf("%d active Dfns service accounts for %d resources", report.Accounts, n)
	}
	if v := counters[sandbox.CounterCallsBeforeRetry]; v != 0 {
		t.Errorf("%d calls went out before Dfns' Retry-After had passed", v)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dump shows the manager's last log lines and the resources that are not Ready.
func dump(t *testing.T, h *harness.Harness) {
	if b, err := os.ReadFile(filepath.Join(h.Work, "manager.log")); err == nil {
		lines := strings.Split(string(b), "\n")
		t.Logf("manager log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
	}
	out, _ := h.Run("", "get", "dfns", "-A", "-o", "wide")
	t.Logf("kubectl get dfns -A:\n%s", out)
}

// testWriter sends the harness's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
