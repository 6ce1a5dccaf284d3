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

package packaging

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const keepPolicy = "helm.sh/resource-policy"

// managerPod is the manager's pod template and container of a Helm render.
func managerPod(t *testing.T, r rendered) (corev1.PodTemplateSpec, corev1.Container) {
	t.Helper()
	if len(r["Deployment"]) != 1 {
		t.Fatalf("want one Deployment, got %d", len(r["Deployment"]))
	}
	d := as[appsv1.Deployment](t, r["Deployment"][0])
	return d.Spec.Template, d.Spec.Template.Spec.Containers[0]
}

// TestHelmCRDs: the CRDs are templates (so `helm upgrade` upgrades them), the same as
// config/crd/bases but for the chart's labels and, with crds.keep, helm.sh/resource-policy:
// keep; crds.enabled=false leaves them out.
func TestHelmCRDs(t *testing.T) {
	if entries, err := os.ReadDir(filepath.Join(root, "dist/chart/crds")); err == nil && len(entries) > 0 {
		t.Errorf("dist/chart/crds holds %d files: Helm installs those once and never upgrades them", len(entries))
	}
	bases := byKind(objects(t, run(t, tool(t, "KUBECTL"), "kustomize", "config/crd")))["CustomResourceDefinition"]
	want := map[string]unstructured.Unstructured{}
	for _, b := range bases {
		want[b.GetName()] = b
	}
	for name, tc := range map[string]struct {
		set  string
		keep bool
	}{
		"default":          {"", true},
		"crds.keep=false":  {"crds.keep=false", false},
		"crds.enabled set": {"crds.enabled=true,crds.keep=true", true},
	} {
		t.Run(name, func(t *testing.T) {
			var args []string
			if tc.set != "" {
				args = []string{"--set", tc.set}
			}
			crds := helmTemplate(t, args...)["CustomResourceDefinition"]
			if len(crds) != len(want) {
				t.Fatalf("the chart renders %d CRDs, config/crd/bases has %d", len(crds), len(want))
			}
			for _, c := range crds {
				base, ok := want[c.GetName()]
				if !ok {
					t.Errorf("the chart renders CRD %s, which config/crd/bases lacks", c.GetName())
					continue
				}
				ann := c.GetAnnotations()
				if got := ann[keepPolicy] == "keep"; got != tc.keep {
					t.Errorf("%s: %s=keep is %t, want %t", c.GetName(), keepPolicy, got, tc.keep)
				}
				if c.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s lacks the chart's labels: %v", c.GetName(), c.GetLabels())
				}
				delete(ann, keepPolicy)
				c.SetAnnotations(ann)
				c.SetLabels(nil)
				if !equality.Semantic.DeepEqual(c.Object, base.Object) {
					t.Errorf("%s differs from config/crd/bases: run make manifests", c.GetName())
				}
			}
		})
	}
	off := helmTemplate(t, "--set", "crds.enabled=false")
	if n := len(off["CustomResourceDefinition"]); n != 0 {
		t.Errorf("crds.enabled=false renders %d CRDs", n)
	}
}

// TestHelmDefaultConnectionFirstInstall: where the CRD is not served yet (a first install), Helm
// cannot map the default connection, as an object of the release or as a hook: the chart renders
// no ClusterDfnsConnection and the manager is told to create it. Where the CRD is served, it is an
// ordinary object of the release, the same as the manager's. Both carry the release's ownership
// and no hook annotation, so an upgrade adopts the manager's.
func TestHelmDefaultConnectionFirstInstall(t *testing.T) {
	for name, tc := range map[string]struct {
		args     []string
		rendered int
	}{
		"first install": {nil, 0},
		"CRD served":    {[]string{"--api-versions", "access.dfns.io/v1alpha1/ClusterDfnsConnection"}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			r := helmTemplate(t, tc.args...)
			if n := len(r["ClusterDfnsConnection"]); n != tc.rendered {
				t.Errorf("%d ClusterDfnsConnections rendered, want %d", n, tc.rendered)
			}
			c := defaultConnection(t, r)
			ann := c.GetAnnotations()
			if hook := ann["helm.sh/hook"]; hook != "" {
				t.Errorf("hook annotation %q: Helm cannot map a hook of a CRD it has just created either", hook)
			}
			if ann["meta.helm.sh/release-name"] != "dfns-operator" || ann["meta.helm.sh/release-namespace"] != "dfns-system" ||
				c.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
				t.Errorf("the connection lacks the release's ownership metadata: %v %v", ann, c.GetLabels())
			}
		})
	}
}

// TestHelmPodValues: podAnnotations, podLabels (never the selector's), priorityClassName,
// manager.logLevel and manager.extraArgs reach the manager's pod.
func TestHelmPodValues(t *testing.T) {
	tpl, c := managerPod(t, helmTemplate(t))
	if tpl.Spec.PriorityClassName != "" || !slices.Contains(c.Args, "--zap-log-level=info") {
		t.Errorf("defaults: priorityClassName %q, args %v (want none and --zap-log-level=info)",
			tpl.Spec.PriorityClassName, c.Args)
	}
	r := helmTemplate(t,
		"--set", "podAnnotations.example\\.com/team=payments",
		"--set", "podLabels.team=payments,podLabels.control-plane=other",
		"--set", "priorityClassName=system-cluster-critical",
		"--set", "manager.logLevel=debug",
		"--set", "manager.extraArgs={--dfns-timeout=10s,--zap-encoder=console}")
	tpl, c = managerPod(t, r)
	d := as[appsv1.Deployment](t, r["Deployment"][0])
	if tpl.Annotations["example.com/team"] != "payments" ||
		tpl.Annotations["kubectl.kubernetes.io/default-container"] != "manager" {
		t.Errorf("pod annotations %v, want podAnnotations beside the default container", tpl.Annotations)
	}
	if tpl.Labels["team"] != "payments" {
		t.Errorf("pod labels %v lack podLabels' team=payments", tpl.Labels)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(tpl.Labels)) {
		t.Errorf("podLabels broke the Deployment's selector %v: pod labels %v (%v)", d.Spec.Selector, tpl.Labels, err)
	}
	if tpl.Spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName %q", tpl.Spec.PriorityClassName)
	}
	for _, arg := range []string{"--zap-log-level=debug", "--dfns-timeout=10s", "--zap-encoder=console"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	if slices.Contains(c.Args, "--zap-log-level=info") {
		t.Errorf("args %v keep the default log level beside manager.logLevel", c.Args)
	}
}

// TestHelmPodDisruptionBudget: none by default; with two replicas one that keeps one pod; and
// the chart refuses one that would block every drain, or that sets both bounds, and two
// replicas without leader election.
func TestHelmPodDisruptionBudget(t *testing.T) {
	if n := len(helmTemplate(t)["PodDisruptionBudget"]); n != 0 {
		t.Errorf("a PodDisruptionBudget by default (%d); it is opt-in", n)
	}
	r := helmTemplate(t, "--set", "podDisruptionBudget.enabled=true,replicaCount=2")
	if len(r["PodDisruptionBudget"]) != 1 {
		t.Fatalf("podDisruptionBudget.enabled renders %d PodDisruptionBudgets", len(r["PodDisruptionBudget"]))
	}
	pdb := as[policyv1.PodDisruptionBudget](t, r["PodDisruptionBudget"][0])
	tpl, _ := managerPod(t, r)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("want minAvailable 1 alone: %+v", pdb.Spec)
	}
	if pdb.Spec.Selector == nil || !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(tpl.Labels)) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the manager's pods %v", pdb.Spec.Selector, tpl.Labels)
	}
	if d := as[appsv1.Deployment](t, r["Deployment"][0]); d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicaCount=2 gives %v replicas", d.Spec.Replicas)
	}
	r = helmTemplate(t, "--set",
		"podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=null,podDisruptionBudget.maxUnavailable=1")
	pdb = as[policyv1.PodDisruptionBudget](t, r["PodDisruptionBudget"][0])
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("want maxUnavailable 1 alone: %+v", pdb.Spec)
	}
	helm := tool(t, "HELM")
	for _, tc := range []struct{ set, want string }{
		{"podDisruptionBudget.enabled=true", "would block every node drain"},
		{"podDisruptionBudget.enabled=true,replicaCount=2,podDisruptionBudget.maxUnavailable=1", "only one of minAvailable"},
		{"leaderElection.enabled=false,replicaCount=2", "every replica would reconcile"},
	} {
		if stderr := runFails(t, helm, "template", "x", "dist/chart", "--set", tc.set); !strings.Contains(stderr, tc.want) {
			t.Errorf("--set %s: want a failure saying %q, got %s", tc.set, tc.want, stderr)
		}
	}
}

// TestHelmMetricsTLS: the ServiceMonitor takes serviceMonitor.labels, selects the metrics
// Service, keeps the resources' namespace label and names its job dfns-operator; it verifies
// the metrics certificate whenever there is one (cert-manager's, or a Secret of the user's),
// which the manager then serves; without one it skips verification, and says why.
func TestHelmMetricsTLS(t *testing.T) {
	const certPath = "--metrics-cert-path=/var/run/secrets/metrics-cert"
	type want struct {
		secret     string // the Secret with the certificate; "": none
		issuer     string // the Certificate's issuer; "": no Certificate
		ownIssuer  bool   // the chart makes a self-signed Issuer
		skipVerify bool
		customTLS  bool
	}
	for name, tc := range map[string]struct {
		args []string
		want want
	}{
		"no certificate": {nil, want{skipVerify: true}},
		"cert-manager, self-signed": {[]string{"--set", "metrics.certManager.enabled=true"},
			want{secret: "dfns-operator-metrics-cert", issuer: "dfns-operator-metrics-selfsigned", ownIssuer: true}},
		"cert-manager, own issuer": {[]string{"--set", "metrics.certManager.enabled=true",
			"--set", "metrics.certManager.issuerRef.kind=ClusterIssuer,metrics.certManager.issuerRef.name=internal-ca"},
			want{secret: "dfns-operator-metrics-cert", issuer: "internal-ca"}},
		"own Secret": {[]string{"--set", "metrics.certSecret=my-metrics-tls"}, want{secret: "my-metrics-tls"}},
		"tlsConfig override": {[]string{"--set", "metrics.certSecret=my-metrics-tls",
			"--set", "serviceMonitor.tlsConfig.insecureSkipVerify=true"},
			want{secret: "my-metrics-tls", skipVerify: true, customTLS: true}},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--set", "serviceMonitor.enabled=true",
				"--set", "serviceMonitor.labels.release=kube-prometheus-stack,serviceMonitor.interval=30s"}, tc.args...)
			r := helmTemplate(t, args...)
			tpl, c := managerPod(t, r)

			// The manager serves the certificate from the Secret.
			if got := slices.Contains(c.Args, certPath); got != (tc.want.secret != "") {
				t.Errorf("args %v: %s is there: %t, want %t", c.Args, certPath, got, tc.want.secret != "")
			}
			vol := slices.IndexFunc(tpl.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "metrics-cert" })
			if tc.want.secret == "" {
				if vol >= 0 {
					t.Errorf("a metrics-cert volume without a certificate")
				}
			} else if s := tpl.Spec.Volumes[max(vol, 0)].Secret; vol < 0 || s == nil || s.SecretName != tc.want.secret {
				t.Errorf("want the Secret %s mounted as metrics-cert: %+v", tc.want.secret, tpl.Spec.Volumes)
			}

			// cert-manager's objects.
			certs, issuers := r["Certificate"], r["Issuer"]
			if (len(certs) == 1) != (tc.want.issuer != "") || (len(issuers) == 1) != tc.want.ownIssuer {
				t.Fatalf("%d Certificates and %d Issuers; want a Certificate: %t, an Issuer: %t",
					len(certs), len(issuers), tc.want.issuer != "", tc.want.ownIssuer)
			}
			svc := r["Service"][0]
			serverName := svc.GetName() + ".dfns-system.svc"
			if len(certs) == 1 {
				secret, _, _ := unstructured.NestedString(certs[0].Object, "spec", "secretName")
				issuer, _, _ := unstructured.NestedString(certs[0].Object, "spec", "issuerRef", "name")
				dns, _, _ := unstructured.NestedStringSlice(certs[0].Object, "spec", "dnsNames")
				if secret != tc.want.secret || issuer != tc.want.issuer || !slices.Contains(dns, serverName) {
					t.Errorf("Certificate: secret %s, issuer %s, dnsNames %v; want %s, %s, and %s",
						secret, issuer, dns, tc.want.secret, tc.want.issuer, serverName)
				}
			}

			// The ServiceMonitor.
			sm := r["ServiceMonitor"][0]
			if sm.GetLabels()["release"] != "kube-prometheus-stack" {
				t.Errorf("serviceMonitor.labels do not reach the ServiceMonitor: %v", sm.GetLabels())
			}
			if jl, _, _ := unstructured.NestedString(sm.Object, "spec", "jobLabel"); svc.GetLabels()[jl] != "dfns-operator" {
				t.Errorf("jobLabel %q gives job %q, want dfns-operator (the alerts select it)", jl, svc.GetLabels()[jl])
			}
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.GetLabels())) {
				t.Errorf("the ServiceMonitor's selector %v does not select the metrics Service %v", sel, svc.GetLabels())
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 {
				t.Fatalf("want one endpoint, got %d", len(eps))
			}
			ep := eps[0].(map[string]any)
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			if !slices.ContainsFunc(ports, func(p any) bool { return p.(map[string]any)["name"] == ep["port"] }) {
				t.Errorf("the endpoint's port %v is not a port of the Service: %v", ep["port"], ports)
			}
			if ep["honorLabels"] != true || ep["interval"] != "30s" {
				t.Errorf("endpoint honorLabels %v interval %v, want true and 30s", ep["honorLabels"], ep["interval"])
			}
			tls, _ := ep["tlsConfig"].(map[string]any)
			if got := tls["insecureSkipVerify"] == true; got != tc.want.skipVerify {
				t.Errorf("tlsConfig %v: insecureSkipVerify %t, want %t", tls, got, tc.want.skipVerify)
			}
			if tc.want.secret != "" && !tc.want.customTLS {
				ca, _, _ := unstructured.NestedString(tls, "ca", "secret", "name")
				key, _, _ := unstructured.NestedString(tls, "ca", "secret", "key")
				if ca != tc.want.secret || key != "ca.crt" || tls["serverName"] != serverName {
					t.Errorf("tlsConfig %v, want ca.crt of %s and serverName %s", tls, tc.want.secret, serverName)
				}
			}
		})
	}
}

// TestNetworkPolicyLabelDocumented: the default NetworkPolicy admits metrics scrapes only from
// namespaces with a label, and values.yaml and the README give the command that sets it.
func TestNetworkPolicyLabelDocumented(t *testing.T) {
	for name, r := range renders(t) {
		t.Run(name, func(t *testing.T) {
			if len(r["NetworkPolicy"]) != 1 {
				t.Fatalf("want one NetworkPolicy, got %d", len(r["NetworkPolicy"]))
			}
			np := as[networkingv1.NetworkPolicy](t, r["NetworkPolicy"][0])
			var required map[string]string
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					if peer.NamespaceSelector != nil {
						required = peer.NamespaceSelector.MatchLabels
					}
				}
			}
			if len(required) == 0 {
				t.Fatalf("the NetworkPolicy selects no namespace by label: %+v", np.Spec.Ingress)
			}
			for _, doc := range []string{"README.md", "dist/chart/values.yaml"} {
				text, err := os.ReadFile(filepath.Join(root, doc))
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range slices.Sorted(maps.Keys(required)) {
					cmd := regexp.MustCompile(`kubectl label namespace \S+ ` + regexp.QuoteMeta(k+"="+required[k]))
					if !cmd.Match(text) {
						t.Errorf("%s does not say `kubectl label namespace <namespace> %s=%s`, "+
							"which the NetworkPolicy requires of Prometheus' namespace", doc, k, required[k])
					}
				}
			}
		})
	}
}
