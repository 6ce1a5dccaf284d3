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
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
			"--namespace", "dfns-system", "--include-crds"))),
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
		t.Errorf("the credentials volume must be the Secret dfns-credentials: %+v", pod.Volumes)
	}
}

// managerResources are all the manager's ClusterRole may name: its own kinds (with status and
// finalizers), the Secrets it writes, and events.
var managerResources = map[string][]string{
	"access.dfns.io": {"dfnsserviceaccounts", "dfnspersonalaccesstokens", "dfnspermissions", "dfnspermissionassignments",
		"dfnswebhooks", "dfnspolicies"},
	"":              {"secrets", "events"},
	"events.k8s.io": {"events"},
}

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
	d := as[appsv1.Deployment](t, off["Deployment"][0])
	if slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-elect") {
		t.Errorf("leaderElection.enabled=false still passes --leader-elect")
	}

	t.Run("InSyncWithControllerGen", func(t *testing.T) {
		bases, err := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
		if err != nil || len(bases) == 0 {
			t.Fatalf("no CRDs in config/crd/bases: %v", err)
		}
		pairs := map[string]string{
			filepath.Join(root, "config/rbac/role.yaml"): filepath.Join(root, "dist/chart/files/role.yaml"),
		}
		for _, b := range bases {
			pairs[b] = filepath.Join(root, "dist/chart/crds", filepath.Base(b))
		}
		copies, _ := filepath.Glob(filepath.Join(root, "dist/chart/crds/*.yaml"))
		if len(copies) != len(bases) {
			t.Errorf("dist/chart/crds has %d CRDs, config/crd/bases %d: run make manifests", len(copies), len(bases))
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
