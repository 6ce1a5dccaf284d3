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
// from apply to Secret; manager memory per managed resource and with 10,000 unrelated Secrets
// and ConfigMaps in the cluster; a restart at rest. It prints each figure beside its goal and
// writes bench/results.json. BENCH_N sizes the batch (default 200); BENCH_QPS (Dfns requests
// per second, default 50), BENCH_SYNC_PERIOD (default 20s) and BENCH_CONCURRENCY (default 4)
// change the settings for a large batch; BENCH_PROFILES names a directory that receives the
// manager's heap profiles and CPU profiles of the convergence, the latency phase and the restart.
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
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// Settings of the run; printed with the results. BENCH_SYNC_PERIOD, BENCH_CONCURRENCY and
// BENCH_QPS change the last three for a large batch, so that it takes minutes, not an hour.
var (
	latency     = 20 * time.Millisecond
	syncPeriod  = envDuration("BENCH_SYNC_PERIOD", 20*time.Second)
	concurrency = envInt("BENCH_CONCURRENCY", 4) // --max-concurrent-reconciles, per kind
	qps         = envInt("BENCH_QPS", 50)
)

const (
	// noiseObjects is the number of unrelated Secrets, and of unrelated ConfigMaps, added.
	noiseObjects = 10000
	latencyN     = 50
	// assignmentsPageSize is the page size of the client's list of a permission's assignments.
	assignmentsPageSize = 500
)

// Goals of issue #19; each figure is printed beside its goal.
const (
	goalRatio           = 1.10
	goalHeapPer1000MiB  = 6.0
	goalWritesPerPair   = 9.0
	goalRestartSeconds  = 60.0
	goalSecretP99Ms     = 100.0
	goalNoiseGrowthMiB  = 5.0
	leasesKey           = "PUT leases"
	restartPollInterval = time.Second
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
	// SecretLatencySlowestMs are the five slowest, with the second each began after the first
	// and how long the API server took to answer its create: one outlier or a tail, whether
	// they come at the sync period's beat, and whether the wait was the API server's.
	SecretLatencySlowestMs []string `json:"applyToSecretSlowestMs"`
	HeapBeforeMiB          float64  `json:"heapInUseBeforeMiB"`
	HeapAfterMiB           float64  `json:"heapInUseAfterMiB"`
	RSSBeforeMiB           float64  `json:"rssBeforeMiB"`
	RSSAfterMiB            float64  `json:"rssAfterMiB"`

	// APIWritesPerPair is the sum of APIWritesPerResource but leases and dry runs (which
	// store nothing; they are listed there as "(dry run)").
	APIWritesPerPair float64 `json:"apiServerWritesPerServiceAccountWithItsAssignmentTotal"`
	// EventsPerPair are the events recorded per service account with its assignment, by reason.
	EventsPerPair map[string]float64 `json:"eventsPerServiceAccountWithItsAssignment"`
	// ListPagesPerPeriod is what one sync period's drift checks need: one list of service
	// accounts, the pages of the permission's assignments, one read per DfnsPermission.
	ListPagesPerPeriod   int     `json:"listPagesPerSyncPeriod"`
	CallsPerPeriodAtRest float64 `json:"dfnsCallsPerSyncPeriodAtRest"`

	// Memory: the manager's live heap, heap in use and resident set after a garbage
	// collection, with no service account (the empty manager: two permissions) and with the
	// batch at rest. heapMiBPer1000Resources is of the live heap, as is the growth with noise.
	Resources           int            `json:"managedResources"`
	LiveEmptyMiB        float64        `json:"heapLiveEmptyManagerMiB"`
	LiveFullMiB         float64        `json:"heapLiveWithResourcesMiB"`
	HeapInUsePer1000MiB float64        `json:"heapInUseMiBPer1000Resources"`
	HeapEmptyMiB        float64        `json:"heapInUseEmptyManagerMiB"`
	HeapFullMiB         float64        `json:"heapInUseWithResourcesMiB"`
	RSSEmptyMiB         float64        `json:"rssEmptyManagerMiB"`
	RSSFullMiB          float64        `json:"rssWithResourcesMiB"`
	HeapPer1000MiB      float64        `json:"heapMiBPer1000Resources"`
	RSSPer1000MiB       float64        `json:"rssMiBPer1000Resources"`
	NoiseHeapGrowthMiB  float64        `json:"heapGrowthWithNoiseMiB"`
	NoiseRSSGrowthMiB   float64        `json:"rssGrowthWithNoiseMiB"`
	RestartSeconds      float64        `json:"restartReverifySeconds"`
	RestartCalls        int            `json:"restartDfnsCalls"`
	RestartCallsByOp    map[string]int `json:"restartDfnsCallsByOperation"`
	RestartWrites       int            `json:"restartWrites"`
	RestartAPIWrites    map[string]int `json:"restartAPIServerWrites"`
	RestartAPIReads     map[string]int `json:"restartAPIServerReads"`
	RestartRSSMiB       float64        `json:"restartRSSMiB"`
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

// envDuration reads a positive duration from the environment, def when unset or invalid.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// batchSize is BENCH_N, or defaultN.
func batchSize() int { return envInt("BENCH_N", defaultN) }

// manager is the manager's addresses in the benchmark.
type manager struct{ metrics, pprof string }

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
	var m manager
	m.metrics, err = harness.FreeAddr()
	must(t, err)
	m.pprof, err = harness.FreeAddr()
	must(t, err)
	args := []string{"--sync-period", syncPeriod.String(), "--max-concurrent-reconciles", strconv.Itoa(concurrency),
		"--dfns-qps", strconv.Itoa(qps), "--dfns-burst", strconv.Itoa(qps),
		"--metrics-bind-address", m.metrics, "--metrics-secure=false", "--pprof-bind-address", m.pprof}
	must(t, h.StartManager(args...))
	r := Results{Date: time.Now().UTC().Format(time.RFC3339), Settings: map[string]any{
		"serviceAccounts": n, "sandboxLatency": latency.String(), "syncPeriod": syncPeriod.String(),
		"maxConcurrentReconciles": concurrency, "dfnsQPS": qps, "cpus": numCPU(), "noiseObjects": noiseObjects}}

	ns := "bench"
	must(t, h.CreateNamespace(ns)) // labelled: ClusterDfnsConnection/default serves it
	kubectl(t, h, harness.PermissionsManifest, "apply", "-n", ns, "-f", "-")
	kubectl(t, h, "", "wait", "--for=condition=Ready", "dfnspermissions", "--all", "-n", ns, "--timeout=60s")
	r.HeapEmptyMiB, r.LiveEmptyMiB, r.RSSEmptyMiB = memory(t, m, "empty")

	t.Logf("bench: convergence of %d service accounts with assignments at %s Dfns latency", n, latency)
	must(t, h.ResetCounters())
	before := apiRequests(t, h)
	start := time.Now()
	createBatch(t, h, ns, n)
	t.Logf("bench: %d service accounts and %d assignments applied in %.0f s", n, n, time.Since(start).Seconds())
	converging := profileCPU(t, m, "convergence", 30*time.Second)
	waitAllReady(t, h, ns, n)
	<-converging
	r.ConvergenceSeconds = time.Since(start).Seconds()
	counters, err := h.Counters()
	must(t, err)
	writes := apiRequests(t, h).minus(before)
	// The benchmark's own creates are not the operator's.
	writes[key("POST", "dfnsserviceaccounts")] -= n
	writes[key("POST", "dfnspermissionassignments")] -= n
	r.APIWritesPerResource = perResource(writes.writes(), n)
	for k, v := range r.APIWritesPerResource {
		if k != leasesKey && !strings.HasSuffix(k, dryRunSuffix) {
			r.APIWritesPerPair += v
		}
	}
	r.EventsPerPair = eventsPerPair(t, h, ns, n)
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
	r.BoundRateSeconds = float64(calls) / float64(qps)
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
	reads, total := 0, 0
	for op, c := range dfnsCalls(rest) {
		r.CallsAtRest[op] = c
		total += c
		if strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
			reads += c
		} else if !strings.HasPrefix(op, "Login") && !strings.Contains(op, "Action") {
			r.WritesAtRest += c
		}
	}
	r.ReadsPerObjectPerPeriod = float64(reads) / float64(2*n+2) / 3
	r.CallsPerPeriodAtRest = float64(total) / 3
	r.ListPagesPerPeriod = listPages(n)
	r.Resources = 2 * n
	r.HeapFullMiB, r.LiveFullMiB, r.RSSFullMiB = memory(t, m, "full")
	r.HeapPer1000MiB = (r.LiveFullMiB - r.LiveEmptyMiB) / float64(r.Resources) * 1000
	r.HeapInUsePer1000MiB = (r.HeapFullMiB - r.HeapEmptyMiB) / float64(r.Resources) * 1000
	r.RSSPer1000MiB = (r.RSSFullMiB - r.RSSEmptyMiB) / float64(r.Resources) * 1000

	t.Logf("bench: latency from apply to Secret at 0 ms Dfns latency, %d service accounts one by one", latencyN)
	must(t, h.SetFaults(map[string]any{"latency": "0s"}))
	latencyProfile := profileCPU(t, m, "latency", 10*time.Second)
	r.SecretLatencyP50Ms, r.SecretLatencyP99Ms, r.SecretLatencySlowestMs = secretLatency(t, h, ns)
	<-latencyProfile

	t.Logf("bench: manager memory before and after %d unrelated Secrets and %d unrelated ConfigMaps",
		noiseObjects, noiseObjects)
	var liveBefore, liveAfter float64
	r.HeapBeforeMiB, liveBefore, r.RSSBeforeMiB = memory(t, m, "before-noise")
	addNoise(t, h)
	time.Sleep(10 * time.Second) // let any informer that would hold them catch up
	r.HeapAfterMiB, liveAfter, r.RSSAfterMiB = memory(t, m, "after-noise")
	r.NoiseHeapGrowthMiB, r.NoiseRSSGrowthMiB = liveAfter-liveBefore, r.RSSAfterMiB-r.RSSBeforeMiB

	t.Logf("bench: restart of the manager at rest (sync period %s)", restartSyncPeriod)
	restart(t, h, m, withSyncPeriod(args, restartSyncPeriod), n+latencyN, n, &r)

	report(t, root, n, r)
}

// dryRunSuffix marks the requests of a server-side dry run, which store nothing.
const dryRunSuffix = " (dry run)"

// listPages is what one sync period's drift checks of the batch need from Dfns: the list of
// service accounts (one page), the pages of permission extra's n assignments, and one read of
// each of the two DfnsPermissions.
func listPages(n int) int {
	return 1 + (n+assignmentsPageSize-1)/assignmentsPageSize + 2
}

// dfnsCalls drops the sandbox's own counters (its controls) and the zeros.
func dfnsCalls(counters map[string]int) map[string]int {
	out := map[string]int{}
	for op, c := range counters {
		if !strings.HasPrefix(op, "sandbox:") && c > 0 {
			out[op] = c
		}
	}
	return out
}

// restartSyncPeriod is the restarted manager's sync period: the manager's default. The
// restart measures what a restart costs: with the run's short sync period, the drift checks
// every resource is due for during the measurement (at 10,000 pairs and 20 s, 1,000 a second)
// would keep the work queue from ever being empty and add a list per period to its calls.
const restartSyncPeriod = 10 * time.Minute

// withSyncPeriod is args with --sync-period set to d.
func withSyncPeriod(args []string, d time.Duration) []string {
	out := slices.Clone(args)
	if i := slices.Index(out, "--sync-period"); i >= 0 && i+1 < len(out) {
		out[i+1] = d.String()
		return out
	}
	return append(out, "--sync-period", d.String())
}

// restart stops the manager at rest and starts it again on the same control plane and sandbox,
// then measures how long it takes to check every resource again (each Ready in the new
// process's metrics, each kind's workers idle after as many reconciles as it has resources),
// with the Dfns calls and API-server requests of that time.
func restart(t *testing.T, h *harness.Harness, m manager, args []string, accounts, assignments int, r *Results) {
	t.Helper()
	r.Settings["restartSyncPeriod"] = restartSyncPeriod.String()
	must(t, h.KillManager())
	must(t, h.ResetCounters())
	before := apiRequests(t, h)
	start := time.Now()
	must(t, h.StartManager(args...))
	profile := profileCPU(t, m, "restart", 20*time.Second)
	want := map[string]int{"dfnsserviceaccount": accounts, "dfnspermissionassignment": assignments}
	deadline := time.Now().Add(10 * time.Minute)
	lastLog := time.Now()
	for !reverified(m, want, accounts+assignments+2) {
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			t.Logf("bench: restart after %3.0f s: %s", time.Since(start).Seconds(), restartProgress(m))
		}
		if time.Now().After(deadline) {
			// Reported as -1 with the other figures, which a Fatalf here would lose.
			t.Errorf("the restarted manager did not check every resource within 10 minutes")
			r.RestartSeconds = -1
			break
		}
		time.Sleep(restartPollInterval)
	}
	if r.RestartSeconds == 0 {
		r.RestartSeconds = time.Since(start).Seconds()
	}
	counters, err := h.Counters()
	must(t, err)
	r.RestartCallsByOp = dfnsCalls(counters)
	for _, c := range r.RestartCallsByOp {
		r.RestartCalls += c
	}
	requests := apiRequests(t, h).minus(before)
	r.RestartAPIWrites, r.RestartAPIReads = requests.writes(), requests.reads()
	for k, v := range r.RestartAPIWrites {
		if k != leasesKey {
			r.RestartWrites += v
		}
	}
	r.RestartRSSMiB = rss(t, m)
	<-profile
}

// reverified reports whether the manager at m has reconciled every resource since it started:
// ready Ready series (one per resource, published at the end of its reconcile), each
// controller in want with at least that many reconciles, and no work queued or running.
func reverified(m manager, want map[string]int, ready int) bool {
	samples, err := scrape(m.metrics)
	if err != nil {
		return false
	}
	got := 0
	reconciles := map[string]float64{}
	busy := 0.0
	for _, s := range samples {
		switch s.name {
		case "dfns_resource_ready":
			got += int(s.value)
		case "controller_runtime_reconcile_total":
			reconciles[s.labels["controller"]] += s.value
		case "workqueue_depth", "controller_runtime_active_workers":
			busy += s.value
		}
	}
	for c, n := range want {
		if reconciles[c] < float64(n) {
			return false
		}
	}
	return got >= ready && busy == 0
}

// restartProgress tells, for the log, where a restart stands: Ready series, reconciles per
// controller and result, work queued and running.
func restartProgress(m manager) string {
	samples, err := scrape(m.metrics)
	if err != nil {
		return err.Error()
	}
	ready, busy := 0.0, 0.0
	reconciles := map[string]int{}
	for _, s := range samples {
		switch s.name {
		case "dfns_resource_ready":
			ready += s.value
		case "controller_runtime_reconcile_total":
			if s.value > 0 {
				reconciles[s.labels["controller"]+"/"+s.labels["result"]] += int(s.value)
			}
		case "workqueue_depth", "controller_runtime_active_workers":
			busy += s.value
		}
	}
	return fmt.Sprintf("%.0f Ready, queued or running %.0f, reconciles %s", ready, busy, fmtI(reconciles))
}

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the metrics at addr.
func scrape(addr string) ([]sample, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		head, value, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '}'); i >= 0 {
			head, value, ok = line[:i+1], strings.TrimSpace(line[i+1:]), true
		}
		if !ok {
			continue
		}
		s := sample{labels: map[string]string{}}
		s.value, _ = strconv.ParseFloat(value, 64)
		name, labels, _ := strings.Cut(head, "{")
		s.name = name
		for kv := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// eventsPerPair counts the events recorded in ns, by reason, per service account with its
// assignment.
func eventsPerPair(t *testing.T, h *harness.Harness, ns string, n int) map[string]float64 {
	t.Helper()
	var list eventsv1.EventList
	must(t, h.K8s.List(context.Background(), &list, client.InNamespace(ns)))
	out := map[string]float64{}
	for _, e := range list.Items {
		count := 1
		if e.Series != nil {
			count = int(e.Series.Count)
		}
		out[e.Regarding.Kind+" "+e.Reason] += float64(count) / float64(n)
	}
	return out
}

// createBatch creates the batch's n service accounts, each with its assignment of "extra" (as
// harness.AppsManifest has them), 16 at a time: kubectl apply sends them one after the other,
// two requests each, under its client rate limit, slower than 20,000 objects converge.
func createBatch(t *testing.T, h *harness.Harness, ns string, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				name := harness.AppName(i)
				sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
					Spec: v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{Name: "base"}}}
				a := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-extra"},
					Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "extra"},
						IdentityRef: &v1alpha1.IdentityRef{Kind: "DfnsServiceAccount", Name: name}}}
				for _, o := range []client.Object{sa, a} {
					if err := h.K8s.Create(ctx, o); err != nil {
						errs <- err
						return
					}
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

// waitAllReady polls, every second (every 20 s for 10,000), until the n service accounts and n assignments in ns are
// all Ready. (`kubectl wait --all` walks the objects one by one, two requests each under its
// client rate limit: it added 25 s to 200 objects' convergence.)
func waitAllReady(t *testing.T, h *harness.Harness, ns string, n int) {
	t.Helper()
	limit := 30*time.Minute + time.Duration(n)*180*time.Millisecond // 60 minutes for 10,000
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	every := max(time.Second, time.Duration(n)*time.Second/500) // a list of 20,000 objects is no light read
	for {
		accounts, assignments := readyCounts(ctx, t, h, ns)
		if accounts >= n && assignments >= n {
			return
		}
		if n >= 1000 {
			calls := -1
			if c, err := h.Counters(); err == nil {
				calls = 0
				for op, v := range c {
					if !strings.HasPrefix(op, "sandbox:") {
						calls += v
					}
				}
			}
			t.Logf("bench: after %3.0f s, Ready: %d service accounts, %d assignments; %d Dfns calls",
				time.Since(start).Seconds(), accounts, assignments, calls)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not all Ready after %s", limit)
		case <-time.After(every):
		}
	}
}

// allReady reports whether the n service accounts and n assignments in ns are all Ready.
func allReady(ctx context.Context, t *testing.T, h *harness.Harness, ns string, n int) bool {
	t.Helper()
	accounts, assignments := readyCounts(ctx, t, h, ns)
	return accounts >= n && assignments >= n
}

// readyCounts counts the Ready service accounts and assignments in ns. It lists by pages of 500
// (one answer of 20,000 objects failed under load); a failed list counts -1, tried again at the
// next poll.
func readyCounts(ctx context.Context, t *testing.T, h *harness.Harness, ns string) (accounts, assignments int) {
	t.Helper()
	ready := func(list client.ObjectList) int {
		count, cont := 0, ""
		for {
			if err := h.K8s.List(ctx, list, client.InNamespace(ns), client.Limit(500), client.Continue(cont)); err != nil {
				t.Logf("listing to count Ready: %v", err)
				return -1
			}
			must(t, apimeta.EachListItem(list, func(o runtime.Object) error {
				conditions := o.(interface {
					Managed() *v1alpha1.ManagedStatus
				}).Managed().Conditions
				if apimeta.IsStatusConditionTrue(conditions, v1alpha1.ConditionReady) {
					count++
				}
				return nil
			}))
			if cont = list.(metav1.ListInterface).GetContinue(); cont == "" {
				return count
			}
		}
	}
	return ready(&v1alpha1.DfnsServiceAccountList{}), ready(&v1alpha1.DfnsPermissionAssignmentList{})
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

// apiRequests reads apiserver_request_total from the API server's /metrics. A server-side dry
// run is counted under its own key, with dryRunSuffix.
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
		if l["dry_run"] != "" {
			res += dryRunSuffix
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
func secretLatency(t *testing.T, h *harness.Harness, ns string) (p50, p99 float64, slowest []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wc, err := client.NewWithWatch(h.Config, client.Options{Scheme: h.K8s.Scheme()})
	must(t, err)
	// From the current version: a watch without one first replays every existing Secret as
	// ADDED (10,000 here), which made the first sample wait for the replay (652 ms at 10,000,
	// 166 ms at 2,000) and was counted as the operator's.
	var existing metav1.PartialObjectMetadataList
	existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	must(t, wc.List(ctx, &existing, client.InNamespace(ns), client.Limit(1)))
	w, err := wc.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: existing.ResourceVersion}})
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
	type timed struct{ ms, at, create float64 }
	var ms []float64
	var samples []timed
	first := time.Now()
	for i := range latencyN {
		name := fmt.Sprintf("lat-%03d", i)
		sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{Name: "base"}}}
		created := time.Now()
		must(t, h.K8s.Create(ctx, sa))
		createMs := float64(time.Since(created).Microseconds()) / 1000
		for {
			mu.Lock()
			at, ok := seen[name]
			mu.Unlock()
			if ok {
				ms = append(ms, float64(at.Sub(created).Microseconds())/1000)
				samples = append(samples, timed{ms[len(ms)-1], created.Sub(first).Seconds(), createMs})
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no Secret for %s", name)
			}
			time.Sleep(2 * time.Millisecond) // polling the watch's record, not the cluster
		}
	}
	slices.Sort(ms)
	slices.SortFunc(samples, func(a, b timed) int { return int(b.ms*1000 - a.ms*1000) })
	for _, s := range samples[:min(5, len(samples))] {
		slowest = append(slowest, fmt.Sprintf("%.0f ms at %.1f s (create %.0f ms)", s.ms, s.at, s.create))
	}
	return ms[len(ms)/2], ms[(len(ms)*99)/100], slowest
}

// memory collects the manager's garbage (its pprof endpoint does, for a heap profile) and reads
// its heap in use and live heap (HeapAlloc) right after, from the profile's memory statistics,
// and its resident set; with BENCH_PROFILES, the heap profile is kept there as
// heap-<phase>.pb.gz. The figures are those of the reading with the least live heap of
// memoryReadings, memoryGap apart: a single reading also counts whatever the drift checks hold
// at that moment (a Dfns list being replaced), which made one run read 8.8 MiB of growth where
// the heap profiles differed by 1 MB.
func memory(t *testing.T, m manager, phase string) (heapMiB, liveMiB, rssMiB float64) {
	t.Helper()
	for i := range memoryReadings {
		if i > 0 {
			time.Sleep(memoryGap) // readings spread over time is what is measured
		}
		heap, live, rss := memoryOnce(t, m, phase)
		if i == 0 || live < liveMiB {
			heapMiB, liveMiB, rssMiB = heap, live, rss
		}
	}
	return heapMiB, liveMiB, rssMiB
}

// memoryReadings and memoryGap: see memory.
const (
	memoryReadings = 3
	memoryGap      = 3 * time.Second
)

// memoryOnce is one reading of memory.
func memoryOnce(t *testing.T, m manager, phase string) (heapMiB, liveMiB, rssMiB float64) {
	t.Helper()
	get := func(query string) []byte {
		resp, err := http.Get("http://" + m.pprof + "/debug/pprof/heap?" + query)
		must(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		must(t, err)
		return b
	}
	if dir := os.Getenv("BENCH_PROFILES"); dir != "" {
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "heap-"+phase+".pb.gz"), get("gc=1"), 0o644))
	}
	for line := range strings.SplitSeq(string(get("gc=1&debug=1")), "\n") {
		for prefix, into := range map[string]*float64{"# HeapInuse = ": &heapMiB, "# HeapAlloc = ": &liveMiB} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				b, err := strconv.ParseFloat(v, 64)
				must(t, err)
				*into = b / (1 << 20)
			}
		}
	}
	rssMiB = rss(t, m)
	return heapMiB, liveMiB, rssMiB
}

// rss reads the manager's resident set from its metrics.
func rss(t *testing.T, m manager) (rssMiB float64) {
	t.Helper()
	samples, err := scrape(m.metrics)
	must(t, err)
	for _, s := range samples {
		if s.name == "process_resident_memory_bytes" {
			rssMiB = s.value / (1 << 20)
		}
	}
	return rssMiB
}

// profileCPU records, with BENCH_PROFILES, a CPU profile of the manager for d as
// cpu-<phase>.pb.gz; the channel is closed when it is done (at once without BENCH_PROFILES).
func profileCPU(t *testing.T, m manager, phase string, d time.Duration) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	dir := os.Getenv("BENCH_PROFILES")
	if dir == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", m.pprof, int(d.Seconds()))
		var resp *http.Response
		var err error
		for range 50 { // the manager is starting: its endpoint may not listen yet
			if resp, err = http.Get(url); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Logf("no CPU profile: %v", err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu-"+phase+".pb.gz"), b, 0o644)
		}
		if err != nil {
			t.Logf("no CPU profile: %v", err)
		}
	}()
	return done
}

// addNoise creates unrelated Secrets and ConfigMaps (without the operator's label) in their own
// namespace.
func addNoise(t *testing.T, h *harness.Harness) {
	t.Helper()
	ctx := context.Background()
	kubectl(t, h, "", "create", "namespace", "noise")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	value := strings.Repeat("x", 512)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < noiseObjects; i += 16 {
				meta := metav1.ObjectMeta{Namespace: "noise", Name: fmt.Sprintf("noise-%05d", i)}
				s := &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"k": []byte(value)}}
				cm := &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"k": value}}
				for _, o := range []client.Object{s, cm} {
					if err := h.K8s.Create(ctx, o); err != nil {
						errs <- err
						return
					}
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

// report prints the table, each figure beside its goal, and writes bench/results.json
// (bench/results-<N>.json for another BENCH_N).
func report(t *testing.T, root string, n int, r Results) {
	t.Helper()
	var b strings.Builder
	row := func(k, goal, v string, args ...any) {
		fmt.Fprintf(&b, "  %-52s %-28s %s\n", k, goal, fmt.Sprintf(v, args...))
	}
	fmt.Fprintf(&b, "bench results (%v)\n", r.Settings)
	row("figure", "goal", "measured")
	row("convergence: all Ready after", "", "%.1f s", r.ConvergenceSeconds)
	row("  bound: calls x latency / concurrency", "", "%.1f s", r.BoundLatencySeconds)
	row("  bound: calls / client rate limit", "", "%.1f s", r.BoundRateSeconds)
	row("  measured / max(bounds)", fmt.Sprintf("<= %.2f", goalRatio), "%.2f", r.RatioToBound)
	row("Dfns calls per service account", "", "%s", fmtF(r.CallsPerServiceAccount))
	row("Dfns calls per assignment", "", "%s", fmtF(r.CallsPerAssignment))
	row("Dfns calls at rest in 3 sync periods", "", "%s", fmtI(r.CallsAtRest))
	row("  per sync period", fmt.Sprintf("= %d list pages", r.ListPagesPerPeriod), "%.1f", r.CallsPerPeriodAtRest)
	row("  reads per object per sync period", "", "%.4f", r.ReadsPerObjectPerPeriod)
	row("  writes", "0", "%d", r.WritesAtRest)
	row("API-server writes per service account + assignment", "", "%s", fmtF(r.APIWritesPerResource))
	row("  total, leases and dry runs apart", fmt.Sprintf("<= %.0f", goalWritesPerPair), "%.2f", r.APIWritesPerPair)
	row("  events among them", "", "%s", fmtF(r.EventsPerPair))
	row("API-server writes at rest", "leases only", "%s", fmtI(r.APIWritesAtRest))
	row("API-server reads at rest", "", "%s", fmtI(r.APIReadsAtRest))
	row("apply to Secret at 0 ms Dfns latency", fmt.Sprintf("p99 < %.0f ms", goalSecretP99Ms),
		"p50 %.0f ms, p99 %.0f ms", r.SecretLatencyP50Ms, r.SecretLatencyP99Ms)
	row("  slowest (started after the first)", "", "%s", strings.Join(r.SecretLatencySlowestMs, ", "))
	row("manager live heap, empty / with resources", "", "%.1f / %.1f MiB (%d resources)",
		r.LiveEmptyMiB, r.LiveFullMiB, r.Resources)
	row("  live heap per 1,000 resources", fmt.Sprintf("<= %.0f MiB", goalHeapPer1000MiB), "%.2f MiB",
		r.HeapPer1000MiB)
	row("manager heap in use, empty / with resources", "", "%.1f / %.1f MiB", r.HeapEmptyMiB, r.HeapFullMiB)
	row("  heap in use per 1,000 resources", "", "%.2f MiB", r.HeapInUsePer1000MiB)
	row("manager RSS, empty / with resources", "", "%.1f / %.1f MiB", r.RSSEmptyMiB, r.RSSFullMiB)
	row("  RSS per 1,000 resources", "", "%.2f MiB", r.RSSPer1000MiB)
	row("manager heap in use before/after 10k Secrets+ConfigMaps", "", "%.1f / %.1f MiB",
		r.HeapBeforeMiB, r.HeapAfterMiB)
	row("  growth", fmt.Sprintf("< %.0f MiB", goalNoiseGrowthMiB), "%.1f MiB live heap, %.1f MiB RSS",
		r.NoiseHeapGrowthMiB, r.NoiseRSSGrowthMiB)
	row("manager RSS before/after 10k Secrets+ConfigMaps", "", "%.1f / %.1f MiB", r.RSSBeforeMiB, r.RSSAfterMiB)
	row("restart at rest: every resource checked after", fmt.Sprintf("<= %.0f s", goalRestartSeconds), "%.1f s",
		r.RestartSeconds)
	row("  Dfns calls", fmt.Sprintf("<= %d list pages + login", r.ListPagesPerPeriod), "%d: %s",
		r.RestartCalls, fmtI(r.RestartCallsByOp))
	row("  API-server writes, leases apart", "0", "%d: %s", r.RestartWrites, fmtI(r.RestartAPIWrites))
	row("  API-server reads", "", "%s", fmtI(r.RestartAPIReads))
	row("  RSS after", "", "%.1f MiB", r.RestartRSSMiB)
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
