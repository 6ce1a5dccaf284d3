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

// Command manager runs the dfns-operator controllers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	accessv1alpha1 "github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/controller"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// The file names of the metrics certificate in --metrics-cert-path (a kubernetes.io/tls Secret's keys).
const (
	metricsCertName = "tls.crt"
	metricsKeyName  = "tls.key"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(accessv1alpha1.AddToScheme(scheme))
	// +kubebuilder:scaffold:scheme
}

// flags holds the manager's command line.
type flags struct {
	metricsAddr, probeAddr string
	pprofAddr              string
	secureMetrics          bool
	metricsCertPath        string
	enableHTTP2            bool
	leaderElect            bool

	credentialsDir          string
	credentialsSecret       string
	apiURL                  string
	qps                     float64
	burst                   int
	timeout                 time.Duration
	syncPeriod              time.Duration
	maxConcurrentReconciles int
	watchNamespaces         string
	connectionAPIURLs       string
	defaultConnection       string
}

// registerFlags binds the manager's flags to f; fs.Parse fills it.
func registerFlags(fs *flag.FlagSet, f *flags) {
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to: :8443 for HTTPS, :8080 for HTTP, 0 to disable it.")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "",
		"The address Go's profiling endpoints (/debug/pprof) bind to, over plain HTTP without authentication; "+
			"empty disables them.")
	fs.BoolVar(&f.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization; false serves plain HTTP.")
	fs.StringVar(&f.metricsCertPath, "metrics-cert-path", "",
		"Directory with the metrics endpoint's serving certificate, tls.crt and tls.key (re-read when they "+
			"change); empty: a self-signed certificate made at each start, which a scraper cannot verify.")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server.")
	fs.BoolVar(&f.leaderElect, "leader-elect", true,
		"Leader election (a Lease in the manager's namespace): only one replica reconciles at a time, the others "+
			"wait to take over. Turn it off only where one manager runs alone (a local run, tests).")
	fs.StringVar(&f.credentialsDir, "dfns-credentials-dir", "/var/run/secrets/dfns",
		"Directory with the operator's Dfns credentials, one file per key (DFNS_API_URL, DFNS_ORG_ID, "+
			"DFNS_USERNAME or DFNS_AUTH_TOKEN, DFNS_CRED_ID, DFNS_PRIVATE_KEY, optional ca.crt). Re-read when it changes.")
	fs.StringVar(&f.credentialsSecret, "dfns-credentials-secret", "",
		"Name of the Secret, in the manager's namespace, mounted at --dfns-credentials-dir: a rotation of the mounted "+
			"credentials (spec.credentialRotation, or the access.dfns.io/rotate-credential annotation) writes the new "+
			"credential into it. Empty: the mounted credentials are not rotated.")
	fs.StringVar(&f.apiURL, "dfns-api-url", "", "Dfns API base URL; overrides DFNS_API_URL from the credentials.")
	fs.Float64Var(&f.qps, "dfns-qps", 10,
		"Requests per second to Dfns per connection, unless its spec.rateLimit says otherwise.")
	fs.IntVar(&f.burst, "dfns-burst", 20, "Burst of requests to Dfns above --dfns-qps, per connection.")
	fs.DurationVar(&f.timeout, "dfns-timeout", dfns.DefaultTimeout, "Time limit of one HTTP request to Dfns.")
	fs.DurationVar(&f.syncPeriod, "sync-period", 10*time.Minute,
		"How often every resource is compared with Dfns to detect drift.")
	fs.IntVar(&f.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Concurrent reconciles per kind.")
	fs.StringVar(&f.connectionAPIURLs, "dfns-connection-api-urls", dfns.DefaultAPIURL,
		"Comma-separated Dfns API base URLs a DfnsConnection's credentials Secret may name in DFNS_API_URL: "+
			"the Secret is a tenant's, and the manager sends requests wherever it points.")
	fs.StringVar(&f.defaultConnection, "default-connection", "",
		"A ClusterDfnsConnection, as JSON, that the manager creates when it starts unless one of its name "+
			"exists (the Helm chart's default connection on a first install); it is never changed or deleted.")
	fs.StringVar(&f.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose resources the manager reconciles; empty: every namespace.")
}

// namespaces splits --watch-namespaces.
func (f flags) namespaces() []string { return splitList(f.watchNamespaces) }

// splitList splits a comma-separated flag, dropping empty entries and trailing slashes.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimRight(strings.TrimSpace(v), "/"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func main() {
	var f flags
	registerFlags(flag.CommandLine, &f)
	// Reconcile errors are expected (Dfns down, approvals pending): no stack traces for them.
	zapOpts := zap.Options{StacktraceLevel: zapcore.PanicLevel}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(f); err != nil {
		setupLog.Error(err, "Manager stopped")
		os.Exit(1)
	}
}

// operatorNamespace is the namespace the manager runs in: POD_NAMESPACE, set through the
// downward API, or dfns-system.
func operatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return controller.DefaultOperatorNamespace
}

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memoryLimit is the soft memory limit the Go runtime gets: nine tenths of the container's
// (cgroup) limit read through read, 0 when there is none or GOMEMLIMIT is set. Near it the
// collector works harder instead of letting the heap grow to twice what is live before it
// collects, which would have the pod OOM-killed with much less live memory than its limit.
func memoryLimit(getenv func(string) string, read func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	for _, f := range cgroupMemoryFiles {
		b, err := read(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= 1<<50 { // "max", or v1's "no limit"
			return 0
		}
		return v / 10 * 9
	}
	return 0
}

func run(f flags) error {
	if limit := memoryLimit(os.Getenv, os.ReadFile); limit > 0 {
		debug.SetMemoryLimit(limit)
		setupLog.Info("Go memory limit set from the container's", "bytes", limit)
	}
	// A bad credentials directory must not crash-loop the pod: the manager starts, reports
	// not-ready with the reason, and every resource says CredentialsUnavailable until the
	// mounted Secret is fixed (the files are re-read when they change).
	creds := dfns.NewFileCredentials(f.credentialsDir)
	if err := creds.Check(); err != nil {
		setupLog.Error(err, "Dfns credentials unavailable; readiness fails until they are fixed",
			"dir", f.credentialsDir)
	}
	// Each connection gets a client of its own; the flags are the defaults of its limiter.
	newClient := func(name string, src dfns.CredentialsSource, rate accessv1alpha1.RateLimit) (dfns.API, error) {
		o := dfns.Options{Credentials: src, BaseURL: f.apiURL, QPS: f.qps, Burst: f.burst, Timeout: f.timeout,
			Registerer: metrics.Registry, Connection: name}
		if rate.QPS > 0 {
			o.QPS = float64(rate.QPS)
		}
		if rate.Burst > 0 {
			o.Burst = int(rate.Burst)
		}
		// A reconcile starts only while its connection's limiter is booked less than a quarter
		// slot ahead; otherwise it is requeued, so that a slow connection does not hold the
		// workers every connection shares (bench, two connections at qps 5 and 10 together:
		// 4.9 req/s for the faster with no gate, 7.6 with a one-slot gate, 8.4 with this one).
		o.MaxWait = time.Duration(float64(time.Second) / o.QPS / 4)
		return dfns.New(o)
	}
	ns := operatorNamespace()

	var tlsOpts []func(*tls.Config)
	if !f.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.secureMetrics, TLSOpts: tlsOpts}
	if f.metricsCertPath != "" {
		// controller-runtime quietly falls back to a self-signed certificate when the files are
		// missing, which every scraper that verifies would then refuse: fail instead.
		for _, name := range []string{metricsCertName, metricsKeyName} {
			if _, err := os.Stat(filepath.Join(f.metricsCertPath, name)); err != nil {
				return fmt.Errorf("--metrics-cert-path: %w", err)
			}
		}
		metricsOpts.CertDir, metricsOpts.CertName, metricsOpts.KeyName = f.metricsCertPath, metricsCertName, metricsKeyName
	}
	if f.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: f.probeAddr,
		PprofBindAddress:       f.pprofAddr,
		LeaderElection:         f.leaderElect,
		LeaderElectionID:       "dfns-operator.access.dfns.io",
		// The Lease lives beside the ownership key, in the operator's namespace, also when the
		// manager runs outside the cluster.
		LeaderElectionNamespace: ns,
		// main returns as soon as the manager stops, so the leader can hand over at once on
		// SIGTERM (a rollout) instead of the standby waiting for the Lease to expire.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controller.CacheOptions(ns, f.namespaces()),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	// The ownership key is read (or made, at first start) past the cache, before the controllers
	// start: every reconcile checks proofs with it.
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	keyCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	key, err := controller.LoadOwnershipKey(keyCtx, direct, ns)
	cancel()
	if err != nil {
		return fmt.Errorf("loading the ownership key: %w", err)
	}
	if err := controller.Setup(mgr, controller.Options{
		Mounted:                 creds,
		NewClient:               newClient,
		OperatorNamespace:       ns,
		ConnectionAPIURLs:       splitList(f.connectionAPIURLs),
		OwnershipKey:            key,
		MountedSecret:           f.credentialsSecret,
		SyncPeriod:              f.syncPeriod,
		MaxConcurrentReconciles: f.maxConcurrentReconciles,
	}); err != nil {
		return fmt.Errorf("setting up the controllers: %w", err)
	}
	if f.defaultConnection != "" {
		conn, err := controller.ParseDefaultConnection(f.defaultConnection)
		if err != nil {
			return err
		}
		if err := mgr.Add(controller.DefaultConnection{Client: direct, Connection: conn}); err != nil {
			return fmt.Errorf("adding the default connection: %w", err)
		}
	}
	// +kubebuilder:scaffold:builder

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("dfns-credentials", func(*http.Request) error { return creds.Check() }); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}

	setupLog.Info("Starting manager", "dfnsCredentialsDir", f.credentialsDir, "dfnsCredentialsSecret", f.credentialsSecret,
		"syncPeriod", f.syncPeriod,
		"namespace", ns, "watchNamespaces", f.namespaces())
	return mgr.Start(ctrl.SetupSignalHandler())
}
