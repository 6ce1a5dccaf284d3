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

// Package packaging checks the manifests users deploy the operator with: the kustomize
// overlay config/default and the Helm chart dist/chart, rendered by the kubectl and helm that
// `make test` builds (KUBECTL, HELM). Both must carry the same security settings.
package packaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// root is the repository root, from this package's directory.
const root = "../.."

// tool returns the path in the environment variable, or fails: `make test` sets both.
func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which builds kubectl and helm into bin/", env)
	}
	return p
}

// run runs a command in the repository root and returns its standard output.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// objects splits a multi-document manifest into objects.
func objects(t *testing.T, manifest []byte) []unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding the manifest: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// rendered is what a renderer produced, by kind.
type rendered map[string][]unstructured.Unstructured

func byKind(objs []unstructured.Unstructured) rendered {
	r := rendered{}
	for _, o := range objs {
		r[o.GetKind()] = append(r[o.GetKind()], o)
	}
	return r
}

// as converts an object to a typed one.
func as[T any](t *testing.T, u unstructured.Unstructured) *T {
	t.Helper()
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// renders are the two ways to deploy: kustomize and the Helm chart with its default values.
func renders(t *testing.T) map[string]rendered {
	t.Helper()
	kubectl, helm := tool(t, "KUBECTL"), tool(t, "HELM")
	return map[string]rendered{
		"kustomize": byKind(objects(t, run(t, kubectl, "kustomize", "config/default"))),
		"helm": byKind(objects(t, run(t, helm, "template", "dfns-operator", "dist/chart",
			"--namespace", "dfns-system"))),
	}
}

func TestManagerDeployment(t *testing.T) {
	for name, r := range renders(t) {
		t.Run(name, func(t *testing.T) {
			if len(r["Deployment"]) != 1 {
				t.Fatalf("want one Deployment, got %d", len(r["Deployment"]))
			}
			d := as[appsv1.Deployment](t, r["Deployment"][0])
			if d.Namespace != "dfns-system" {
				t.Errorf("namespace %q, want dfns-system", d.Namespace)
			}
			pod := d.Spec.Template.Spec
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("the pod must run as non-root with the RuntimeDefault seccomp profile: %+v", psc)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(pod.Containers))
			}
			checkContainer(t, pod.Containers[0])
			checkCredentials(t, pod)
		})
	}
}

// checkContainer checks the manager container's security context, probes, resources and args.
func checkContainer(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("want a read-only root filesystem, no privilege escalation, all capabilities dropped: %+v", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("want liveness /healthz and readiness /readyz probes")
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	for _, arg := range []string{"--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("manager args %v lack %s", c.Args, arg)
		}
	}
}

// checkCredentials checks that the Secret dfns-credentials is mounted read-only where the
// manager reads its credentials.
func checkCredentials(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/var/run/secrets/dfns"
	})
	if mount < 0 || !c.VolumeMounts[mount].ReadOnly {
		t.Fatalf("the Dfns credentials must be mounted read-only at /var/run/secrets/dfns: %+v", c.VolumeMounts)
	}
	vol := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
	if vol < 0 || pod.Volumes[vol].Secret == nil || pod.Volumes[vol].Secret.SecretName != "dfns-credentials" {
		t.Fatalf("the credentials volume must be the Secret dfns-credentials: %+v", pod.Volumes)
	}
	// A rotation of the operator's credential writes the Secret the flag names; it must be the
	// one mounted, or the manager never reads the new credential (and the rotation rolls back).
	if want := "--dfns-credentials-secret=" + pod.Volumes[vol].Secret.SecretName; !slices.Contains(c.Args, want) {
		t.Errorf("manager args %v lack %s", c.Args, want)
	}
}

// managerResources are all the manager's ClusterRole may name: its own kinds (with status and
// finalizers), the connections, the Secrets it writes, namespaces (whose labels select a
// connection's namespaces), events, and the workloads a rotation restarts.
var managerResources = map[string][]string{
	"access.dfns.io": {"dfnsserviceaccounts", "dfnspersonalaccesstokens", "dfnspermissions", "dfnspermissionassignments",
		"dfnswebhooks", "dfnspolicies", "dfnsusers", "clusterdfnsconnections", "dfnsconnections"},
	"":              {"secrets", "namespaces", "events"},
	"events.k8s.io": {"events"},
	"apps":          {"deployments", "statefulsets", "daemonsets"},
}

// workloadVerbs are all the manager may do to a workload: read it, and patch its pod template
// to restart it after a rotation.
var workloadVerbs = []string{"get", "patch"}

func TestLeastPrivilege(t *testing.T) {
	for name, r := range renders(t) {
		t.Run(name, func(t *testing.T) {
			// The roles bound to the operator; the admin/editor/viewer roles are for people.
			bound := map[string]bool{}
			for _, u := range r["ClusterRoleBinding"] {
				bound[as[rbacv1.ClusterRoleBinding](t, u).RoleRef.Name] = true
			}
			var manager *rbacv1.ClusterRole
			for _, u := range r["ClusterRole"] {
				cr := as[rbacv1.ClusterRole](t, u)
				if !bound[cr.Name] {
					continue
				}
				for _, rule := range cr.Rules {
					for _, v := range slices.Concat(rule.Verbs, rule.Resources, rule.APIGroups) {
						if v == "*" {
							t.Errorf("ClusterRole %s has a wildcard: %+v", cr.Name, rule)
						}
					}
				}
				if strings.HasSuffix(cr.Name, "manager-role") {
					manager = cr
				}
			}
			if manager == nil {
				t.Fatal("no manager ClusterRole")
			}
			for _, rule := range manager.Rules {
				for _, g := range rule.APIGroups {
					for _, res := range rule.Resources {
						base, _, _ := strings.Cut(res, "/")
						if !slices.Contains(managerResources[g], base) {
							t.Errorf("the manager may touch %q in group %q, which it does not use", res, g)
						}
						if base == "secrets" && slices.Contains(rule.Verbs, "delete") {
							t.Errorf("the manager must not delete Secrets (their owner references do)")
						}
						for _, v := range rule.Verbs {
							if g == "apps" && !slices.Contains(workloadVerbs, v) {
								t.Errorf("the manager may %s %s; it only gets and patches workloads", v, res)
							}
						}
					}
				}
			}
			roles := r["Role"]
			if len(roles) != 1 {
				t.Fatalf("want one namespaced Role (leader election), got %d", len(roles))
			}
			for _, rule := range as[rbacv1.Role](t, roles[0]).Rules {
				for _, res := range rule.Resources {
					if res != "leases" && res != "events" {
						t.Errorf("the leader-election Role names %q; it needs leases (and events) only", res)
					}
				}
			}
			if len(r["Service"]) != 1 || len(r["NetworkPolicy"]) != 1 {
				t.Errorf("want a metrics Service and a NetworkPolicy, got %d and %d", len(r["Service"]), len(r["NetworkPolicy"]))
			}
		})
	}
}

func TestHelmChart(t *testing.T) {
	helm := tool(t, "HELM")
	run(t, helm, "lint", "--strict", "dist/chart")
	monitor := byKind(objects(t, run(t, helm, "template", "x", "dist/chart", "--set", "serviceMonitor.enabled=true")))
	if len(monitor["ServiceMonitor"]) != 1 {
		t.Errorf("serviceMonitor.enabled=true renders %d ServiceMonitors, want 1", len(monitor["ServiceMonitor"]))
	}
	off := byKind(objects(t, run(t, helm, "template", "x", "dist/chart",
		"--set", "networkPolicy.enabled=false,leaderElection.enabled=false")))
	if n, r := len(off["NetworkPolicy"]), len(off["Role"]); n != 0 || r != 0 {
		t.Errorf("networkPolicy and leaderElection can be turned off: %d NetworkPolicies, %d Roles", n, r)
	}
	// The binary elects a leader unless told not to: turning it off must say so.
	args := as[appsv1.Deployment](t, off["Deployment"][0]).Spec.Template.Spec.Containers[0].Args
	if slices.Contains(args, "--leader-elect") || !slices.Contains(args, "--leader-elect=false") {
		t.Errorf("leaderElection.enabled=false must pass --leader-elect=false: %v", args)
	}

	t.Run("InSyncWithControllerGen", func(t *testing.T) {
		pairs := map[string]string{
			filepath.Join(root, "config/rbac/role.yaml"):             filepath.Join(root, "dist/chart/files/role.yaml"),
			filepath.Join(root, "config/prometheus/alerts.yaml"):     filepath.Join(root, "dist/chart/files/alerts.yaml"),
			filepath.Join(root, "config/grafana/dfns-operator.json"): filepath.Join(root, "dist/chart/files/dfns-operator.json"),
		}
		// The CRD templates are what hack/chart-crds.sh makes of config/crd/bases, byte for byte.
		generated := t.TempDir()
		run(t, "hack/chart-crds.sh", "config/crd/bases", generated)
		bases, err := filepath.Glob(filepath.Join(generated, "*.yaml"))
		if err != nil || len(bases) == 0 {
			t.Fatalf("hack/chart-crds.sh made no CRD template: %v", err)
		}
		for _, b := range bases {
			pairs[b] = filepath.Join(root, "dist/chart/templates/crds", filepath.Base(b))
		}
		copies, _ := filepath.Glob(filepath.Join(root, "dist/chart/templates/crds/*.yaml"))
		if len(copies) != len(bases) {
			t.Errorf("dist/chart/templates/crds has %d CRDs, config/crd/bases %d: run make manifests", len(copies), len(bases))
		}
		for src, dst := range pairs {
			a, errA := os.ReadFile(src)
			b, errB := os.ReadFile(dst)
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs from %s: run make manifests", dst, src)
			}
		}
	})
}

// runFails runs a command in the repository root that must fail, and returns its standard error.
func runFails(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("%s %s succeeded; want a failure", filepath.Base(name), strings.Join(args, " "))
	}
	return stderr.String()
}

// helmTemplate renders the chart as release dfns-operator in dfns-system with extra arguments.
func helmTemplate(t *testing.T, args ...string) rendered {
	t.Helper()
	all := append([]string{"template", "dfns-operator", "dist/chart", "--namespace", "dfns-system"}, args...)
	return byKind(objects(t, run(t, tool(t, "HELM"), all...)))
}

// optInSelector is the default connection's namespaceSelector: namespaces opt in with a label.
var optInSelector = map[string]any{"matchLabels": map[string]any{"access.dfns.io/enabled": "true"}}

// defaultConnectionFlag is the manager's flag that carries the connection it creates at start.
const defaultConnectionFlag = "--default-connection="

// defaultConnection returns the render's ClusterDfnsConnection "default": the object the
// manifests create, or (the Helm chart on a first install, when the CRD is not served yet) the
// one the manager's --default-connection tells it to create. Where both are rendered they must
// be the same object.
func defaultConnection(t *testing.T, r rendered) unstructured.Unstructured {
	t.Helper()
	var fromFlag *unstructured.Unstructured
	if len(r["Deployment"]) == 1 {
		_, manager := managerPod(t, r)
		for _, arg := range manager.Args {
			if text, ok := strings.CutPrefix(arg, defaultConnectionFlag); ok {
				fromFlag = &unstructured.Unstructured{}
				if err := json.Unmarshal([]byte(text), &fromFlag.Object); err != nil {
					t.Fatalf("%s is not JSON: %v", defaultConnectionFlag, err)
				}
			}
		}
	}
	conns := r["ClusterDfnsConnection"]
	var c unstructured.Unstructured
	switch {
	case len(conns) > 1:
		t.Fatalf("want one ClusterDfnsConnection, got %d", len(conns))
	case len(conns) == 1:
		c = conns[0]
		if fromFlag != nil && mustJSON(t, fromFlag.Object) != mustJSON(t, c.Object) {
			t.Errorf("the rendered default connection and the manager's %s differ:\n%s\n%s",
				defaultConnectionFlag, mustJSON(t, c.Object), mustJSON(t, fromFlag.Object))
		}
	case fromFlag != nil:
		c = *fromFlag
	default:
		t.Fatalf("no ClusterDfnsConnection rendered and no %s", defaultConnectionFlag)
	}
	if c.GetAPIVersion() != "access.dfns.io/v1alpha1" || c.GetKind() != "ClusterDfnsConnection" ||
		c.GetName() != "default" || c.GetNamespace() != "" {
		t.Errorf("want the cluster-scoped access.dfns.io/v1alpha1 ClusterDfnsConnection default, got %s %s %s/%s",
			c.GetAPIVersion(), c.GetKind(), c.GetNamespace(), c.GetName())
	}
	return c
}

// TestDefaultConnection: both renders create ClusterDfnsConnection/default, with the manager's
// mounted credentials, serving the namespaces labelled access.dfns.io/enabled=true, and its CRD.
func TestDefaultConnection(t *testing.T) {
	specs := map[string]map[string]any{}
	for name, r := range renders(t) {
		t.Run(name, func(t *testing.T) {
			c := defaultConnection(t, r)
			spec, _, _ := unstructured.NestedMap(c.Object, "spec")
			mounted, found, err := unstructured.NestedMap(spec, "credentials", "mounted")
			if err != nil || !found || len(mounted) != 0 {
				t.Errorf("want credentials.mounted: {}, got %v", spec["credentials"])
			}
			if _, found, _ := unstructured.NestedFieldNoCopy(spec, "credentials", "secretRef"); found {
				t.Errorf("the default connection must not name a Secret: %v", spec["credentials"])
			}
			sel, _, _ := unstructured.NestedMap(spec, "namespaceSelector")
			if !equality.Semantic.DeepEqual(sel, optInSelector) {
				t.Errorf("namespaceSelector %v, want %v", sel, optInSelector)
			}
			for _, field := range []string{"namespaces", "limits", "namePrefix", "rateLimit"} {
				if _, ok := spec[field]; ok {
					t.Errorf("the default connection sets %s: %v", field, spec[field])
				}
			}
			crds := map[string]bool{}
			for _, crd := range r["CustomResourceDefinition"] {
				crds[crd.GetName()] = true
			}
			for _, crd := range []string{"clusterdfnsconnections.access.dfns.io", "dfnsconnections.access.dfns.io"} {
				if !crds[crd] {
					t.Errorf("the CRD %s is not rendered", crd)
				}
			}
			specs[name] = spec
		})
	}
	if !equality.Semantic.DeepEqual(specs["kustomize"], specs["helm"]) {
		t.Errorf("kustomize and Helm render different default connections:\n%v\n%v", specs["kustomize"], specs["helm"])
	}
}

// TestHelmDefaultConnectionValues: the chart's defaultConnection values reach the connection;
// only the limits set are rendered, and a misspelt limit is an error, not a silent no-limit.
func TestHelmDefaultConnectionValues(t *testing.T) {
	for _, served := range [][]string{nil, {"--api-versions", "access.dfns.io/v1alpha1/ClusterDfnsConnection"}} {
		off := helmTemplate(t, append([]string{"--set", "defaultConnection.enabled=false"}, served...)...)
		if n := len(off["ClusterDfnsConnection"]); n != 0 {
			t.Errorf("defaultConnection.enabled=false still renders %d ClusterDfnsConnections", n)
		}
		if _, manager := managerPod(t, off); slices.ContainsFunc(manager.Args, func(a string) bool {
			return strings.HasPrefix(a, defaultConnectionFlag)
		}) {
			t.Errorf("defaultConnection.enabled=false still passes the manager %s", defaultConnectionFlag)
		}
	}
	r := helmTemplate(t,
		"--set-json", `defaultConnection.namespaceSelector=null`,
		"--set-json", `defaultConnection.namespaces=["team-a","team-b"]`,
		"--set", "defaultConnection.namePrefix=prod,defaultConnection.rateLimit.qps=5,defaultConnection.rateLimit.burst=10",
		"--set-json", `defaultConnection.limits={"kinds":["DfnsServiceAccount","DfnsPermission"],`+
			`"operations":["Wallets:*"],"permissionIds":[],"adoption":"Denied"}`)
	spec, _, _ := unstructured.NestedMap(defaultConnection(t, r).Object, "spec")
	want := map[string]any{
		"credentials": map[string]any{"mounted": map[string]any{}},
		"namespaces":  []any{"team-a", "team-b"},
		"namePrefix":  "prod",
		"rateLimit":   map[string]any{"qps": int64(5), "burst": int64(10)},
		"limits": map[string]any{
			"kinds":      []any{"DfnsServiceAccount", "DfnsPermission"},
			"operations": []any{"Wallets:*"},
			"adoption":   "Denied",
		},
	}
	// Compared as JSON: the decoder's numbers are float64.
	if got, wanted := mustJSON(t, spec), mustJSON(t, want); got != wanted {
		t.Errorf("spec\n%s\nwant\n%s", got, wanted)
	}
	stderr := runFails(t, tool(t, "HELM"), "template", "x", "dist/chart",
		"--set", "defaultConnection.limits.kind={DfnsPolicy}")
	if !strings.Contains(stderr, "defaultConnection.limits.kind is not a limit") {
		t.Errorf("a misspelt limit must fail the render, got: %s", stderr)
	}
}

// TestHelmWatchNamespaces: with watchNamespaces the manager gets --watch-namespaces, and its
// Secret rights move from the ClusterRole to a Role in each watched namespace and its own.
func TestHelmWatchNamespaces(t *testing.T) {
	all := helmTemplate(t)
	args := as[appsv1.Deployment](t, all["Deployment"][0]).Spec.Template.Spec.Containers[0].Args
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--watch-namespaces") }) {
		t.Errorf("without watchNamespaces the manager must watch every namespace: %v", args)
	}
	if !grantsSecrets(managerRole(t, all).Rules) {
		t.Errorf("without watchNamespaces the manager's ClusterRole must grant Secrets")
	}

	for name, tc := range map[string]struct {
		set  string
		arg  string
		want []string // namespaces with a Secret Role
	}{
		"two": {"watchNamespaces={a,b}", "--watch-namespaces=a,b", []string{"a", "b", "dfns-system"}},
		"with own namespace": {"watchNamespaces={a,dfns-system}", "--watch-namespaces=a,dfns-system",
			[]string{"a", "dfns-system"}},
		"without leader role": {"watchNamespaces={a},leaderElection.enabled=false", "--watch-namespaces=a",
			[]string{"a", "dfns-system"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := helmTemplate(t, "--set", tc.set)
			args := as[appsv1.Deployment](t, r["Deployment"][0]).Spec.Template.Spec.Containers[0].Args
			if !slices.Contains(args, tc.arg) {
				t.Errorf("manager args %v lack %s", args, tc.arg)
			}
			if grantsSecrets(managerRole(t, r).Rules) {
				t.Errorf("with watchNamespaces the ClusterRole must not grant Secrets: %+v", managerRole(t, r).Rules)
			}
			secretRoles := map[string]*rbacv1.Role{}
			for _, u := range r["Role"] {
				role := as[rbacv1.Role](t, u)
				if !grantsSecrets(role.Rules) {
					continue
				}
				if secretRoles[role.Namespace] != nil {
					t.Errorf("two Secret Roles in %s", role.Namespace)
				}
				secretRoles[role.Namespace] = role
				for _, rule := range role.Rules {
					if !slices.Equal(rule.APIGroups, []string{""}) || !slices.Equal(rule.Resources, []string{"secrets"}) {
						t.Errorf("Role %s/%s grants more than Secrets: %+v", role.Namespace, role.Name, rule)
					}
					for _, verb := range []string{"get", "list", "watch", "create", "update"} {
						if !slices.Contains(rule.Verbs, verb) {
							t.Errorf("Role %s/%s lacks %s on Secrets", role.Namespace, role.Name, verb)
						}
					}
					if slices.Contains(rule.Verbs, "delete") || slices.Contains(rule.Verbs, "*") {
						t.Errorf("the manager must not delete Secrets: %+v", rule)
					}
				}
			}
			if got := slices.Sorted(maps.Keys(secretRoles)); !slices.Equal(got, tc.want) {
				t.Fatalf("Secret Roles in %v, want %v", got, tc.want)
			}
			bound := map[string]bool{}
			for _, u := range r["RoleBinding"] {
				rb := as[rbacv1.RoleBinding](t, u)
				role := secretRoles[rb.Namespace]
				if role == nil || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name {
					continue
				}
				if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" ||
					rb.Subjects[0].Name != "dfns-operator-controller-manager" || rb.Subjects[0].Namespace != "dfns-system" {
					t.Errorf("RoleBinding %s/%s binds %+v, want the manager's ServiceAccount", rb.Namespace, rb.Name, rb.Subjects)
				}
				bound[rb.Namespace] = true
			}
			for _, ns := range tc.want {
				if !bound[ns] {
					t.Errorf("the Secret Role in %s is not bound to the manager", ns)
				}
			}
		})
	}
}

// mustJSON is v as JSON, with sorted keys.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// managerRole is the manager's ClusterRole of a Helm render.
func managerRole(t *testing.T, r rendered) *rbacv1.ClusterRole {
	t.Helper()
	for _, u := range r["ClusterRole"] {
		if cr := as[rbacv1.ClusterRole](t, u); strings.HasSuffix(cr.Name, "-manager-role") {
			return cr
		}
	}
	t.Fatal("no manager ClusterRole")
	return nil
}

// grantsSecrets reports whether any rule names Secrets in the core group.
func grantsSecrets(rules []rbacv1.PolicyRule) bool {
	return slices.ContainsFunc(rules, func(rule rbacv1.PolicyRule) bool {
		return slices.Contains(rule.APIGroups, "") &&
			(slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, "*"))
	})
}

// TestSampleConnections: every ClusterDfnsConnection in config/samples serves some namespace
// (one with neither namespaceSelector nor namespaces serves none) and uses mounted credentials
// or a Secret, exactly one of them.
func TestSampleConnections(t *testing.T) {
	r := byKind(objects(t, run(t, tool(t, "KUBECTL"), "kustomize", "config/samples")))
	if len(r["ClusterDfnsConnection"]) == 0 {
		t.Fatal("config/samples has no ClusterDfnsConnection")
	}
	for _, c := range r["ClusterDfnsConnection"] {
		spec, _, _ := unstructured.NestedMap(c.Object, "spec")
		if spec["namespaceSelector"] == nil && spec["namespaces"] == nil {
			t.Errorf("ClusterDfnsConnection %s serves no namespace", c.GetName())
		}
		creds, _, _ := unstructured.NestedMap(spec, "credentials")
		if _, m := creds["mounted"]; m == (creds["secretRef"] != nil) {
			t.Errorf("ClusterDfnsConnection %s: set exactly one of credentials.mounted and secretRef: %v", c.GetName(), creds)
		}
		if c.GetName() == "default" {
			t.Errorf("config/samples must not carry the connection default, which config/default and the chart create")
		}
	}
}
