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

package main

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	cases := map[string]struct {
		reason string
		args   []string
		want   flags
	}{
		"Defaults": {
			reason: "without arguments the manager reads the mounted Secret's directory " +
				"(docs/architecture.md, \"The operator's credentials\"), elects a leader as a Deployment " +
				"needs (README, \"Two replicas\") and takes every flag's default",
			want: flags{
				metricsAddr: "0", probeAddr: ":8081", secureMetrics: true, leaderElect: true,
				credentialsDir: "/var/run/secrets/dfns", qps: 10, burst: 20, timeout: 30 * time.Second,
				syncPeriod: 10 * time.Minute, maxConcurrentReconciles: 4, connectionAPIURLs: "https://api.dfns.io",
			},
		},
		"Everything": {
			reason: "every flag reaches the value run uses",
			args: []string{
				"--metrics-bind-address=:8443", "--health-probe-bind-address=127.0.0.1:0", "--metrics-secure=false",
				"--pprof-bind-address=127.0.0.1:6060",
				"--metrics-cert-path=/certs", "--enable-http2", "--leader-elect=false",
				"--dfns-credentials-dir=/tmp/creds", "--dfns-credentials-secret=creds", "--dfns-api-url=https://dfns.test",
				"--dfns-qps=2.5", "--dfns-burst=3", "--dfns-timeout=5s", "--sync-period=30s", "--max-concurrent-reconciles=8",
				"--watch-namespaces=team-a, team-b", "--dfns-connection-api-urls=https://api.dfns.io,https://api.uae.dfns.io/",
			},
			want: flags{
				metricsAddr: ":8443", probeAddr: "127.0.0.1:0", pprofAddr: "127.0.0.1:6060", metricsCertPath: "/certs",
				enableHTTP2: true, leaderElect: false,
				credentialsDir: "/tmp/creds", credentialsSecret: "creds", apiURL: "https://dfns.test",
				qps: 2.5, burst: 3, timeout: 5 * time.Second,
				syncPeriod: 30 * time.Second, maxConcurrentReconciles: 8,
				watchNamespaces: "team-a, team-b", connectionAPIURLs: "https://api.dfns.io,https://api.uae.dfns.io/",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			var got flags
			registerFlags(fs, &got)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatalf("%s: parse: %v", tc.reason, err)
			}
			if got != tc.want {
				t.Errorf("%s:\n got %+v\nwant %+v", tc.reason, got, tc.want)
			}
		})
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" team-a, ,team-b ,https://api.dfns.io/")
	want := []string{"team-a", "team-b", "https://api.dfns.io"}
	if !slices.Equal(got, want) {
		t.Errorf("splitList = %q, want %q", got, want)
	}
}

// TestMetricsCertPathMissing: a certificate directory without the certificate stops the manager
// rather than let it serve a self-signed certificate that every verifying scraper refuses.
func TestMetricsCertPathMissing(t *testing.T) {
	dir := t.TempDir()
	err := run(flags{metricsAddr: "0", secureMetrics: true, metricsCertPath: dir, credentialsDir: t.TempDir(),
		qps: 1, burst: 1})
	if err == nil || !strings.Contains(err.Error(), "--metrics-cert-path") || !strings.Contains(err.Error(), "tls.crt") {
		t.Fatalf("run with no tls.crt in --metrics-cert-path = %v, want an error naming the flag and the file", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	files := func(content map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := content[name]; ok {
				return []byte(v), nil
			}
			return nil, errors.New("no such file")
		}
	}
	none := func(string) string { return "" }
	v2, v1 := cgroupMemoryFiles[0], cgroupMemoryFiles[1]
	cases := map[string]struct {
		getenv func(string) string
		files  map[string]string
		want   int64
	}{
		"CgroupV2":   {none, map[string]string{v2: "134217728\n"}, 134217728 / 10 * 9},
		"CgroupV1":   {none, map[string]string{v1: "1000"}, 900},
		"NoLimit":    {none, map[string]string{v2: "max\n"}, 0},
		"V1NoLimit":  {none, map[string]string{v1: "9223372036854771712"}, 0},
		"NoCgroup":   {none, nil, 0},
		"GOMEMLIMIT": {func(string) string { return "100MiB" }, map[string]string{v2: "1000"}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := memoryLimit(tc.getenv, files(tc.files)); got != tc.want {
				t.Errorf("memoryLimit = %d, want %d", got, tc.want)
			}
		})
	}
}
