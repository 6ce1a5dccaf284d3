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

// Package bench measures the operator against its physical limits (make bench): convergence
// of a batch against the bound set by Dfns latency, concurrency and the client rate limit;
// Dfns calls per created object and at rest; API-server writes per created resource; latency
// from apply to Secret; manager memory with 10,000 unrelated Secrets in the cluster. It prints
// a table and writes bench/results.json. BENCH_N sizes the batch (default 200).
//
// BENCH_CONNECTIONS=2 (or more) measures connections instead (benchConnections, in
// connections_test.go): a batch of BENCH_N in each of that many namespaces, each served by a
// ClusterDfnsConnection with a rate limit of its own, all at once.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// Settings of the run; printed with the results.
const (
	latency      = 20 * time.Millisecond
	syncPeriod   = 20 * time.Second
	concurrency  = 4 // --max-concurrent-reconciles, per kind
	qps          = 50
	noiseSecrets = 10000
	latencyN     = 50
)

// Results is what bench/results.json holds.
type Results struct {
	Date     string         `json:"date"`
	Settings map[string]any `json:"settings"`

	ConvergenceSeconds      float64            `json:"convergenceSeconds"`
	BoundLatencySeconds     float64            `json:"lowerBoundLatencyConcurrencySeconds"`
	BoundRateSeconds        float64            `json:"lowerBoundRateLimitSeconds"`
	RatioToBound            float64            `json:"ratioToBound"`
	CallsPerServiceAccount  map[string]float64 `json:"dfnsCallsPerServiceAccount"`
	CallsPerAssignment      map[string]float64 `json:"dfnsCallsPerAssignment"`
	CallsAtRest             map[string]int     `json:"dfnsCallsAtRestIn3SyncPeriods"`
	ReadsPerObjectPerPeriod float64            `json:"dfnsReadsPerObjectPerSyncPeriod"`
	WritesAtRest            int                `json:"dfnsWritesAtRest"`
	APIWritesPerResource    map[string]float64 `json:"apiServerWritesPerServiceAccountWithItsAssignment"`
	APIWritesAtRest         map[string]int     `json:"apiServerWritesAtRest"`
	APIReadsAtRest          map[string]int     `json:"apiServerReadsAtRest"`
	SecretLatencyP50Ms      float64            `json:"applyToSecretP50Ms"`
	SecretLatencyP99Ms      float64            `json:"applyToSecretP99Ms"`
	HeapBeforeMiB           float64            `json:"heapInUseBeforeMiB"`
	HeapAfterMiB            float64            `json:"heapInUseAfterMiB"`
	RSSBeforeMiB            float64            `json:"rssBeforeMiB"`
	RSSAfterMiB             float64            `json:"rssAfterMiB"`
}

// defaultN is the batch size without BENCH_N.
const defaultN = 200

// envInt reads a positive integer from the environment, def when unset or invalid.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// batchSize is BENCH_N, or defaultN.
func batchSize() int { return envInt("BENCH_N", defaultN) }

// TestBench measures one batch through the default connection or, with BENCH_CONNECTIONS of 2
// or more, several connections alone and together (benchConnections).
func TestBench(t *testing.T) {
	if connectionsMode() {
		benchConnections(t)
		return
	}
	ctrllog.SetLogger(logr.Discard()) // the benchmark's own clients log nothing
	n := batchSize()
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
	must(t, h.StartManager("--sync-period", syncPeriod.String(), "--max-concurrent-reconciles", strconv.Itoa(concurrency),
		"--dfns-qps", strconv.Itoa(qps), "--dfns-burst", strconv.Itoa(qps),
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false"))
	r := Results{Date: time.Now().UTC().Format(time.RFC3339), Settings: map[string]any{
		"serviceAccounts": n, "sandboxLatency": latency.String(), "syncPeriod": syncPeriod.String(),
		"maxConcurrentReconciles": concurrency, "dfnsQPS": qps, "cpus": numCPU()}}

	ns := "bench"
	must(t, h.CreateNamespace(ns)) // labelled: ClusterDfnsConnection/default serves it
	kubectl(t, h, harness.PermissionsManifest, "apply", "-n", ns, "-f", "-")
	kubectl(t, h, "", "wait", "--for=condition=Ready", "dfnspermissions", "--all", "-n", ns, "--timeout=60s")

	t.Logf("bench: convergence of %d service accounts with assignments at %s Dfns latency", n, latency)
	must(t, h.ResetCounters())
	before := apiRequests(t, h)
	start := time.Now()
	kubectl(t, h, harness.AppsManifest(0, n), "apply", "-n", ns, "-f", "-")
	waitAllReady(t, h, ns, n)
	r.ConvergenceSeconds = time.Since(start).Seconds()
	counters, err := h.Counters()
	must(t, err)
	writes := apiRequests(t, h).minus(before)
	// The benchmark's own creates are not the operator's.
	writes[key("POST", "dfnsserviceaccounts")] -= n
	writes[key("POST", "dfnspermissionassignments")] -= n
	r.APIWritesPerResource = perResource(writes.writes(), n)
	calls := 0
	r.CallsPerServiceAccount, r.CallsPerAssignment = map[string]float64{}, map[string]float64{}
	for op, c := range counters {
		if strings.HasPrefix(op, "sandbox:") {
			continue
		}
		calls += c
		target := r.CallsPerServiceAccount
		if strings.Contains(op, "Assign") || op == "ListPermissionAssignments" {
			target = r.CallsPerAssignment
		}
		target[op] = float64(c) / float64(n)
	}
	// Every call takes the latency; at most `concurrency` reconciles per kind (two kinds here)
	// run at once, each making one call at a time; the client sends at most qps per second.
	r.BoundLatencySeconds = float64(calls) * latency.Seconds() / float64(2*concurrency)
	r.BoundRateSeconds = float64(calls) / qps
	r.RatioToBound = r.ConvergenceSeconds / max(r.BoundLatencySeconds, r.BoundRateSeconds)

	t.Logf("bench: at rest for 3 sync periods (%s)", 3*syncPeriod)
	must(t, h.ResetCounters())
	before = apiRequests(t, h)
	time.Sleep(3 * syncPeriod) // the quantity measured is what happens during this time
	rest, err := h.Counters()
	must(t, err)
	atRest := apiRequests(t, h).minus(before)
	r.APIWritesAtRest, r.APIReadsAtRest = atRest.writes(), atRest.reads()
	r.CallsAtRest = map[string]int{}
	reads := 0
	for op, c := range rest {
		if strings.HasPrefix(op, "sandbox:") || c == 0 {
			continue
		}
		r.CallsAtRest[op] = c
		if strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
			reads += c
		} else if !strings.HasPrefix(op, "Login") && !strings.Contains(op, "Action") {
			r.WritesAtRest += c
		}
	}
	r.ReadsPerObjectPerPeriod = float64(reads) / float64(2*n+2) / 3

	t.Logf("bench: latency from apply to Secret at 0 ms Dfns latency, %d service accounts one by one", latencyN)
	must(t, h.SetFaults(map[string]any{"latency": "0s"}))
	r.SecretLatencyP50Ms, r.SecretLatencyP99Ms = secretLatency(t, h, ns)

	t.Logf("bench: manager memory before and after %d unrelated Secrets", noiseSecrets)
	r.HeapBeforeMiB, r.RSSBeforeMiB = memory(t, metricsAddr)
	addNoise(t, h)
	time.Sleep(10 * time.Second) // let any informer that would hold them catch up
	r.HeapAfterMiB, r.RSSAfterMiB = memory(t, metricsAddr)

	report(t, root, n, r)
}

// waitAllReady polls, every second, until the n service accounts and n assignments in ns are
// all Ready. (`kubectl wait --all` walks the objects one by one, two requests each under its
// client rate limit: it added 25 s to 200 objects' convergence.)
func waitAllReady(t *testing.T, h *harness.Harness, ns string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for !allReady(ctx, t, h, ns, n) {
		select {
		case <-ctx.Done():
			t.Fatalf("not all Ready after 30 minutes")
		case <-time.After(time.Second):
		}
	}
}

// allReady reports whether the n service accounts and n assignments in ns are all Ready.
func allReady(ctx context.Context, t *testing.T, h *harness.Harness, ns string, n int) bool {
	t.Helper()
	ready := func(list client.ObjectList) int {
		must(t, h.K8s.List(ctx, list, client.InNamespace(ns)))
		count := 0
		must(t, apimeta.EachListItem(list, func(o runtime.Object) error {
			conditions := o.(interface {
				Managed() *v1alpha1.ManagedStatus
			}).Managed().Conditions
			if apimeta.IsStatusConditionTrue(conditions, v1alpha1.ConditionReady) {
				count++
			}
			return nil
		}))
		return count
	}
	return ready(&v1alpha1.DfnsServiceAccountList{}) >= n && ready(&v1alpha1.DfnsPermissionAssignmentList{}) >= n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func kubectl(t *testing.T, h *harness.Harness, stdin string, args ...string) {
	t.Helper()
	_, err := h.Run(stdin, args...)
	must(t, err)
}

// requests counts API-server requests by "VERB resource[/subresource]".
type requests map[string]int

func key(verb, resource string) string { return verb + " " + resource }

// apiRequests reads apiserver_request_total from the API server's /metrics.
func apiRequests(t *testing.T, h *harness.Harness) requests {
	t.Helper()
	out, err := h.Run("", "get", "--raw", "/metrics")
	must(t, err)
	got := requests{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimPrefix(line, "apiserver_request_total{"), "} ")
		l := map[string]string{}
		for kv := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		c, _ := strconv.ParseFloat(value, 64)
		got[key(l["verb"], res)] += int(c)
	}
	return got
}

func (r requests) minus(before requests) requests {
	out := requests{}
	for k, v := range r {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (r requests) filter(verbs ...string) map[string]int {
	out := map[string]int{}
	for k, v := range r {
		verb, _, _ := strings.Cut(k, " ")
		if slices.Contains(verbs, verb) && v > 0 {
			out[k] = v
		}
	}
	return out
}

func (r requests) writes() map[string]int { return r.filter("POST", "PUT", "PATCH", "DELETE", "APPLY") }
func (r requests) reads() map[string]int  { return r.filter("GET", "LIST") }

func perResource(m map[string]int, n int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(v) / float64(n)
	}
	return out
}

// secretLatency creates service accounts one at a time and times each until its Secret appears.
func secretLatency(t *testing.T, h *harness.Harness, ns string) (p50, p99 float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wc, err := client.NewWithWatch(h.Config, client.Options{Scheme: h.K8s.Scheme()})
	must(t, err)
	w, err := wc.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns))
	must(t, err)
	defer w.Stop()
	var mu sync.Mutex
	seen := map[string]time.Time{}
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[s.Name] = time.Now()
				mu.Unlock()
			}
		}
	}()
	var ms []float64
	for i := range latencyN {
		name := fmt.Sprintf("lat-%03d", i)
		sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{Name: "base"}}}
		created := time.Now()
		must(t, h.K8s.Create(ctx, sa))
		for {
			mu.Lock()
			at, ok := seen[name]
			mu.Unlock()
			if ok {
				ms = append(ms, float64(at.Sub(created).Microseconds())/1000)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no Secret for %s", name)
			}
			time.Sleep(2 * time.Millisecond) // polling the watch's record, not the cluster
		}
	}
	slices.Sort(ms)
	return ms[len(ms)/2], ms[(len(ms)*99)/100]
}

// memory reads the manager's heap in use and resident set from its metrics.
func memory(t *testing.T, addr string) (heapMiB, rssMiB float64) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heapMiB = v / (1 << 20)
		case "process_resident_memory_bytes":
			rssMiB = v / (1 << 20)
		}
	}
	return heapMiB, rssMiB
}

// addNoise creates unrelated Secrets (without the operator's label) in their own namespace.
func addNoise(t *testing.T, h *harness.Harness) {
	t.Helper()
	ctx := context.Background()
	kubectl(t, h, "", "create", "namespace", "noise")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < noiseSecrets; i += 16 {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "noise", Name: fmt.Sprintf("noise-%05d", i)},
					Data: map[string][]byte{"k": []byte(strings.Repeat("x", 512))}}
				if err := h.K8s.Create(ctx, s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// report prints the table and writes bench/results.json (bench/results-<N>.json for another BENCH_N).
func report(t *testing.T, root string, n int, r Results) {
	t.Helper()
	var b strings.Builder
	row := func(k, v string, args ...any) { fmt.Fprintf(&b, "  %-52s %s\n", k, fmt.Sprintf(v, args...)) }
	fmt.Fprintf(&b, "bench results (%v)\n", r.Settings)
	row("convergence: all Ready after", "%.1f s", r.ConvergenceSeconds)
	row("  bound: calls x latency / concurrency", "%.1f s", r.BoundLatencySeconds)
	row("  bound: calls / client rate limit", "%.1f s", r.BoundRateSeconds)
	row("  measured / max(bounds)", "%.2f", r.RatioToBound)
	row("Dfns calls per service account", "%s", fmtF(r.CallsPerServiceAccount))
	row("Dfns calls per assignment", "%s", fmtF(r.CallsPerAssignment))
	row("Dfns calls at rest in 3 sync periods", "%s", fmtI(r.CallsAtRest))
	row("  reads per object per sync period", "%.2f", r.ReadsPerObjectPerPeriod)
	row("  writes", "%d", r.WritesAtRest)
	row("API-server writes per service account + assignment", "%s", fmtF(r.APIWritesPerResource))
	row("API-server writes at rest", "%s", fmtI(r.APIWritesAtRest))
	row("API-server reads at rest", "%s", fmtI(r.APIReadsAtRest))
	row("apply to Secret at 0 ms Dfns latency", "p50 %.0f ms, p99 %.0f ms", r.SecretLatencyP50Ms, r.SecretLatencyP99Ms)
	row("manager heap in use before/after 10k Secrets", "%.1f / %.1f MiB", r.HeapBeforeMiB, r.HeapAfterMiB)
	row("manager RSS before/after 10k Secrets", "%.1f / %.1f MiB", r.RSSBeforeMiB, r.RSSAfterMiB)
	t.Log("\n" + b.String())
	out, err := json.MarshalIndent(r, "", "  ")
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(root, "bench"), 0o755))
	name := "results.json"
	if n != defaultN {
		name = fmt.Sprintf("results-%d.json", n) // the default run's file stays put
	}
	must(t, os.WriteFile(filepath.Join(root, "bench", name), append(out, '\n'), 0o644))
}

func fmtF(m map[string]float64) string {
	keys := sortedKeys(m)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func fmtI(m map[string]int) string {
	keys := sortedKeys(m)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
