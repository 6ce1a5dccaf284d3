//go:build bench

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

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/test/harness"
)

// The connections mode (BENCH_CONNECTIONS=K, K >= 2): K ClusterDfnsConnections to the same
// sandbox, connection i (1..K) limited to 5*i requests per second with a burst of 1. Each
// serves two namespaces by spec.namespaces: bench-c<i>-alone and bench-c<i>, each given a
// batch of BENCH_N service accounts with assignments. First each connection's batch runs
// alone, one connection after the other; then the K batches of bench-c<i> are applied at once.
// Each connection has a client and limiter of its own, so each batch should converge at its
// own connection's bound, calls / qps, sending about qps requests per second, alone or not.
// The figures are the manager's dfns_api_requests_total by connection label.

// connectionQPSStep is the rate limit of connection 1; connection i gets i times it.
const connectionQPSStep = 5

// connectionsMode reports whether BENCH_CONNECTIONS asks for the connections mode.
func connectionsMode() bool { return envInt("BENCH_CONNECTIONS", 1) >= 2 }

// Phase is one connection's figures in one phase.
type Phase struct {
	Namespace          string  `json:"namespace"`
	ConvergenceSeconds float64 `json:"convergenceSeconds"`
	// DfnsRequests are the connection's requests from apply to convergence (all codes).
	DfnsRequests int `json:"dfnsRequests"`
	// RequestsPerSecond is DfnsRequests over ConvergenceSeconds.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// RequestsPerSecondAllBusy is the rate while every batch of the phase was converging.
	RequestsPerSecondAllBusy float64 `json:"requestsPerSecondWhileAllConverging"`
	BoundRateSeconds         float64 `json:"lowerBoundRateLimitSeconds"`
	BoundLatencySeconds      float64 `json:"lowerBoundLatencyConcurrencySeconds"`
	RatioToBound             float64 `json:"ratioToBound"`
	// NotOK counts the answers other than 2xx (429, 5xx, no answer).
	NotOK int `json:"dfnsAnswersNot2xx"`
}

// ConnectionResult is one connection's figures.
type ConnectionResult struct {
	Connection string `json:"connection"`
	QPS        int    `json:"qps"`
	Burst      int    `json:"burst"`
	Alone      Phase  `json:"alone"`
	Together   Phase  `json:"together"`
	// Problems are what VerifyBatch found wrong in its namespaces afterwards.
	Problems []string `json:"problems"`
}

// ConnectionResults is what bench/results-connections.json holds.
type ConnectionResults struct {
	Date        string             `json:"date"`
	Settings    map[string]any     `json:"settings"`
	Connections []ConnectionResult `json:"connections"`
	// AllBusySeconds is how long every batch of the together phase was converging at once.
	AllBusySeconds float64 `json:"togetherAllConvergingSeconds"`
	// SandboxCalls counts every API call the sandbox served in the together phase.
	SandboxCalls int `json:"togetherSandboxCalls"`
}

func benchConnections(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	k, n := envInt("BENCH_CONNECTIONS", 2), batchSize()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	h, err := harness.Start(harness.Options{Root: root, Work: t.TempDir(), Log: io.Discard,
		SandboxArgs: []string{"--latency", latency.String()}})
	if h != nil {
		defer h.Stop()
	}
	must(t, err)
	metricsAddr, err := harness.FreeAddr()
	must(t, err)
	// --dfns-qps is only the default of a connection without spec.rateLimit; every one here has one.
	must(t, h.StartManager("--sync-period", syncPeriod.String(), "--max-concurrent-reconciles", strconv.Itoa(concurrency),
		"--dfns-qps", strconv.Itoa(qps), "--dfns-burst", strconv.Itoa(qps),
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false"))

	res := ConnectionResults{Date: time.Now().UTC().Format(time.RFC3339), Settings: map[string]any{
		"connections": k, "serviceAccountsPerConnection": n, "sandboxLatency": latency.String(),
		"syncPeriod": syncPeriod.String(), "maxConcurrentReconciles": concurrency, "cpus": numCPU()}}
	for i := 1; i <= k; i++ {
		name := fmt.Sprintf("bench-c%d", i)
		c := ConnectionResult{Connection: name, QPS: connectionQPSStep * i, Burst: 1,
			Alone: Phase{Namespace: name + "-alone"}, Together: Phase{Namespace: name}}
		res.Connections = append(res.Connections, c)
		kubectl(t, h, fmt.Sprintf(`apiVersion: access.dfns.io/v1alpha1
kind: ClusterDfnsConnection
metadata: {name: %s}
spec:
  credentials: {mounted: {}}
  namespaces: [%s, %s]
  rateLimit: {qps: %d, burst: %d}
`, name, c.Alone.Namespace, c.Together.Namespace, c.QPS, c.Burst), "apply", "-f", "-")
		for _, ns := range []string{c.Alone.Namespace, c.Together.Namespace} {
			// Not labelled access.dfns.io/enabled: the connection serves it by name, the
			// default connection does not.
			kubectl(t, h, "", "create", "namespace", ns)
			kubectl(t, h, harness.WithConnection(harness.PermissionsManifest, name), "apply", "-n", ns, "-f", "-")
		}
	}
	for _, c := range res.Connections {
		kubectl(t, h, "", "wait", "--for=condition=Ready", "clusterdfnsconnection/"+c.Connection, "--timeout=60s")
		for _, ns := range []string{c.Alone.Namespace, c.Together.Namespace} {
			kubectl(t, h, "", "wait", "--for=condition=Ready", "dfnspermissions", "--all", "-n", ns, "--timeout=60s")
		}
	}

	for i := range res.Connections {
		c := &res.Connections[i]
		t.Logf("bench: connection %s (qps %d) alone: %d service accounts with assignments", c.Connection, c.QPS, n)
		converge(t, h, metricsAddr, n, []*ConnectionResult{c}, func(c *ConnectionResult) *Phase { return &c.Alone })
	}

	t.Logf("bench: %d connections (qps %s) together: %d service accounts with assignments each, applied at once",
		k, qpsList(res.Connections), n)
	must(t, h.ResetCounters())
	all := make([]*ConnectionResult, 0, k)
	for i := range res.Connections {
		all = append(all, &res.Connections[i])
	}
	res.AllBusySeconds = converge(t, h, metricsAddr, n, all, func(c *ConnectionResult) *Phase { return &c.Together })
	counters, err := h.Counters()
	must(t, err)
	for op, c := range counters {
		if !strings.HasPrefix(op, "sandbox:") {
			res.SandboxCalls += c
		}
	}

	for i := range res.Connections {
		c := &res.Connections[i]
		for _, ns := range []string{c.Alone.Namespace, c.Together.Namespace} {
			report, err := h.VerifyBatch(context.Background(), ns, n)
			must(t, err)
			for _, p := range report.Problems {
				c.Problems = append(c.Problems, ns+": "+p)
				t.Errorf("%s: %s", ns, p)
			}
		}
	}
	reportConnections(t, root, n, res)
}

// converge applies a batch of n into the phase's namespace of each connection at once and
// waits until each is all Ready, noting, polling every second, when each was and its
// connection's requests by then. It returns how long every batch was converging at once.
func converge(t *testing.T, h *harness.Harness, metricsAddr string, n int, cs []*ConnectionResult,
	phase func(*ConnectionResult) *Phase) float64 {
	t.Helper()
	before := dfnsRequests(t, metricsAddr)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for _, c := range cs {
		wg.Go(func() {
			_, err := h.Run(harness.WithConnection(harness.AppsManifest(0, n), c.Connection), "apply",
				"-n", phase(c).Namespace, "-f", "-")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	done := make([]bool, len(cs))
	var allBusy requestCounts // the requests when the first batch converged
	var allBusySeconds float64
	for remaining := len(cs); remaining > 0; {
		select {
		case <-ctx.Done():
			t.Fatalf("not all Ready after 30 minutes")
		case <-time.After(time.Second):
		}
		now := dfnsRequests(t, metricsAddr)
		for i, c := range cs {
			p := phase(c)
			if done[i] || !allReady(ctx, t, h, p.Namespace, n) {
				continue
			}
			done[i], remaining = true, remaining-1
			p.ConvergenceSeconds = time.Since(start).Seconds()
			name := connectionLabel(c.Connection)
			p.DfnsRequests = now.total[name] - before.total[name]
			p.NotOK = now.notOK[name] - before.notOK[name]
			if allBusy.total == nil {
				allBusy, allBusySeconds = now, p.ConvergenceSeconds
			}
		}
	}
	for _, c := range cs {
		p, name := phase(c), connectionLabel(c.Connection)
		p.RequestsPerSecond = float64(p.DfnsRequests) / p.ConvergenceSeconds
		p.RequestsPerSecondAllBusy = float64(allBusy.total[name]-before.total[name]) / allBusySeconds
		p.BoundRateSeconds = float64(p.DfnsRequests) / float64(c.QPS)
		// The workers of each kind are shared by every connection: the latency bound assumes
		// this batch had them all.
		p.BoundLatencySeconds = float64(p.DfnsRequests) * latency.Seconds() / float64(2*concurrency)
		p.RatioToBound = p.ConvergenceSeconds / max(p.BoundRateSeconds, p.BoundLatencySeconds)
	}
	return allBusySeconds
}

// qpsList is the connections' rate limits, for the log.
func qpsList(cs []ConnectionResult) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, strconv.Itoa(c.QPS))
	}
	return strings.Join(parts, ", ")
}

// connectionLabel is a ClusterDfnsConnection's connection label in the manager's metrics.
func connectionLabel(name string) string { return "ClusterDfnsConnection/" + name }

// requestCounts are the manager's Dfns requests by connection label.
type requestCounts struct {
	total map[string]int // every answer, and attempts that got none
	notOK map[string]int // code other than 2xx
}

// dfnsRequests reads dfns_api_requests_total{connection,operation,code} from the manager's
// metrics and sums it by connection.
func dfnsRequests(t *testing.T, addr string) requestCounts {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer func() { _ = resp.Body.Close() }()
	got := requestCounts{total: map[string]int{}, notOK: map[string]int{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "dfns_api_requests_total{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		l := map[string]string{}
		for kv := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		c, _ := strconv.ParseFloat(value, 64)
		got.total[l["connection"]] += int(c)
		if !strings.HasPrefix(l["code"], "2") {
			got.notOK[l["connection"]] += int(c)
		}
	}
	must(t, sc.Err())
	return got
}

// reportConnections prints the table and writes bench/results-connections.json
// (bench/results-connections-<N>.json for another BENCH_N).
func reportConnections(t *testing.T, root string, n int, r ConnectionResults) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "bench results, connections (%v)\n", r.Settings)
	fmt.Fprintf(&b, "  %-9s %-10s %4s %10s %9s %7s %11s %10s %6s %6s\n", "phase", "connection", "qps",
		"converged", "requests", "req/s", "req/s(all)", "calls/qps", "ratio", "non2xx")
	row := func(phase string, c ConnectionResult, p Phase) {
		fmt.Fprintf(&b, "  %-9s %-10s %4d %9.1fs %9d %7.2f %11.2f %9.1fs %6.2f %6d\n", phase, c.Connection, c.QPS,
			p.ConvergenceSeconds, p.DfnsRequests, p.RequestsPerSecond, p.RequestsPerSecondAllBusy,
			p.BoundRateSeconds, p.RatioToBound, p.NotOK)
	}
	for _, c := range r.Connections {
		row("alone", c, c.Alone)
	}
	for _, c := range r.Connections {
		row("together", c, c.Together)
	}
	for _, c := range r.Connections {
		// Only a figure to read, never a failure: timings vary with the machine.
		if p := c.Together; p.RequestsPerSecondAllBusy < 0.8*float64(c.QPS) {
			fmt.Fprintf(&b, "  note: %s sent %.2f req/s while every batch converged, below 80%% of its qps %d "+
				"(alone: %.2f req/s); another connection held it back\n", c.Connection, p.RequestsPerSecondAllBusy,
				c.QPS, c.Alone.RequestsPerSecond)
		}
	}
	fmt.Fprintf(&b, "  req/s(all): rate while every batch of the phase was converging (together: the first %.1f s)\n",
		r.AllBusySeconds)
	b.WriteString("  ratio: converged / max(calls / qps, calls x latency / (2 kinds x concurrency))\n")
	fmt.Fprintf(&b, "  sandbox calls in the together phase: %d\n", r.SandboxCalls)
	t.Log("\n" + b.String())
	out, err := json.MarshalIndent(r, "", "  ")
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(root, "bench"), 0o755))
	name := "results-connections.json"
	if n != defaultN {
		name = fmt.Sprintf("results-connections-%d.json", n)
	}
	must(t, os.WriteFile(filepath.Join(root, "bench", name), append(out, '\n'), 0o644))
}
