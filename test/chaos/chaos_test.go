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
// A share of the service accounts, with a 10 s grace period, is rotated through
// access.dfns.io/rotate: some while the batch is made, then every one of them (some twice) in
// a second round of kills once it is Ready. At the end each account has exactly one identity,
// a new one for each rotated account, and its Secret works.
// CHAOS_N (service accounts, each with an assignment; default 100), CHAOS_KILLS (kills while
// the batch is made; default 10), CHAOS_ROTATION_KILLS (kills while it rotates; default 4),
// CHAOS_ERROR_RATE (default 0.2), CHAOS_ROTATE (percent of the accounts rotated; default 20)
// and CHAOS_SEED (default: random, printed) size and replay it.
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
	rotationKills := envInt("CHAOS_ROTATION_KILLS", 4)
	rate := 0.2
	if v, err := strconv.ParseFloat(os.Getenv("CHAOS_ERROR_RATE"), 64); err == nil {
		rate = v
	}
	share := 20
	if v, err := strconv.Atoi(os.Getenv("CHAOS_ROTATE")); err == nil && v >= 0 && v <= 100 {
		share = v
	}
	seed := int64(envInt("CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos: %d service accounts with assignments, %d+%d kills, fault rate %.2f, %d%% rotated, seed %d "+
		"(replay: CHAOS_SEED=%d)", n, kills, rotationKills, rate, share, seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	plan := planRotations(rng, n, kills, rotationKills, share)
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
	manifest := harness.RotatingAppsManifest(0, n, plan.rotating, rotationGrace.String())
	_, err = h.Run(harness.PermissionsManifest+manifest, "apply", "-n", ns, "-f", "-")
	must(t, err)

	// Phase 1: the batch is made while the manager is killed; half the rotated accounts are
	// asked to rotate in its second half, some before they have an identity.
	rounds := func(from, to int) {
		for k := from; k < to; k++ {
			// A random moment, with this round's rotation requests somewhere in it: the kill may
			// come in the middle of a rotation.
			pause := time.Duration(500+rng.IntN(2500)) * time.Millisecond
			before := time.Duration(rng.Int64N(int64(pause)))
			time.Sleep(before)
			must(t, plan.request(ctx, h, ns, k))
			time.Sleep(pause - before)
			must(t, h.KillManager())
			t.Logf("chaos: kill %d/%d at %s", k+1, kills+rotationKills, time.Since(start).Round(time.Millisecond))
			must(t, h.StartManager(managerArgs...))
		}
	}
	rounds(0, kills)
	waitReady(t, h, ns)
	converged := time.Since(start)

	// Phase 2: every rotated account holds an identity now; each is asked to rotate, some
	// twice, while the manager is killed again.
	rounds(kills, kills+rotationKills)
	waitReady(t, h, ns)
	// Ready says nothing of a rotation under way: wait, faults still on, for every request to be
	// acted on and every superseded identity to be retired after its grace period.
	must(t, plan.settle(ctx, t, h, ns, 5*time.Minute))
	settled := time.Since(start)

	must(t, h.SetFaults(map[string]any{"latency": "5ms", "errorRate": 0}))
	counters, err := h.Counters()
	must(t, err)
	report, err := h.VerifyBatch(ctx, ns, n)
	must(t, err)
	rotated, notRotated, err := plan.rotated(ctx, h, ns)
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
		"  manager SIGKILLs                   %d while creating + %d while rotating\n"+
		"  all Ready after                    %s (before the rotation kills)\n"+
		"  rotations requested                %d on %d accounts (%d asked more than once), grace period %s\n"+
		"  rotated (new identity and token)   %d of %d; %d asked to rotate before they had an identity\n"+
		"  rotations settled after            %s (superseded identities retired)\n"+
		"  active Dfns service accounts       %d (want %d)\n"+
		"  problems                           %d\n"+
		"  service accounts created           %d (calls, faulted ones included)\n"+
		"  orphans/duplicates/retired deleted %d (DeleteServiceAccount calls)\n"+
		"  Dfns calls spent                   %d (%.1f per service account); most: %s\n"+
		"  429s with Retry-After sent         %d\n"+
		"  calls before Retry-After passed    %d",
		seed, n, n, kills, rotationKills, converged.Round(time.Millisecond),
		plan.requests(), len(plan.accounts), plan.twice(), rotationGrace,
		rotated, rotated+len(notRotated), plan.withoutID, settled.Round(time.Millisecond),
		report.Accounts, n, len(report.Problems),
		counters["CreateServiceAccount"], counters["DeleteServiceAccount"], calls, float64(calls)/float64(n),
		strings.Join(top, ", "), counters[sandbox.CounterRetryAfterSent], counters[sandbox.CounterCallsBeforeRetry])
	for _, p := range report.Problems {
		t.Error(p)
	}
	for _, line := range notRotated {
		t.Errorf("access.dfns.io/rotate was acted on, yet %s", line)
	}
	if report.Accounts != n {
		t.Errorf("%d active Dfns service accounts for %d resources", report.Accounts, n)
	}
	if v := counters[sandbox.CounterCallsBeforeRetry]; v != 0 {
		t.Errorf("%d calls went out before Dfns' Retry-After had passed", v)
	}
}

// waitReady waits for every resource of the batch to be Ready; on timeout it says which are
// stuck and why, so that a failure can be read without a rerun.
func waitReady(t *testing.T, h *harness.Harness, ns string) {
	t.Helper()
	_, err := h.Run("", "wait", "--for=condition=Ready", "dfnspermissions,dfnsserviceaccounts,dfnspermissionassignments",
		"--all", "-n", ns, "--timeout=10m")
	if err == nil {
		return
	}
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
