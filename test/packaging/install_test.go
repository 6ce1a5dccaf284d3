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
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/controller"
)

var (
	crdGVK        = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
	connectionGVK = schema.GroupVersionKind{Group: "access.dfns.io", Version: "v1alpha1", Kind: "ClusterDfnsConnection"}
	deploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
)

// TestHelmInstallUpgradeUninstall runs the chart through helm install, upgrade and uninstall
// against a real API server (envtest's, no nodes): the first install creates the CRDs and
// the manager told to create the default connection (Helm cannot map an object of a CRD it
// has not created yet, nor a hook's); an upgrade brings a change to a CRD, which a chart's crds/
// directory never would, and adopts the manager's connection without recreating it; uninstall leaves
// the CRDs (helm.sh/resource-policy: keep), and with them every resource.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	helm := tool(t, "HELM")
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the control plane into bin/k8s")
	}
	logf.SetLogger(logr.Discard())
	// A loaded machine (make test runs every package at once) can take long to start it.
	env := &envtest.Environment{ControlPlaneStartTimeout: 2 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "kubeconfig"), kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(work, "chart")
	if err := os.CopyFS(chart, os.DirFS(filepath.Join(root, "dist/chart"))); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	helmRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helm, append(args, "--kubeconfig", filepath.Join(work, "kubeconfig"))...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(work, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(work, "config"), "HELM_DATA_HOME="+filepath.Join(work, "data"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	get := func(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)
	}
	const crd = "clusterdfnsconnections.access.dfns.io"
	crdNames := func() []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join(chart, "templates/crds"))
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			_, name, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".yaml"), "_")
			group, _, _ := strings.Cut(e.Name(), "_")
			names = append(names, name+"."+group)
		}
		return names
	}

	// Install.
	helmRun("install", "dfns-operator", chart, "--namespace", "dfns-system", "--create-namespace")
	for _, name := range crdNames() {
		u, err := get(crdGVK, "", name)
		if err != nil {
			t.Fatalf("after install, CRD %s: %v", name, err)
		}
		if u.GetAnnotations()[keepPolicy] != "keep" {
			t.Errorf("CRD %s lacks %s: keep", name, keepPolicy)
		}
	}
	// No manager runs here: do what its --default-connection makes the leader do at start.
	if _, err := get(connectionGVK, "", "default"); !apierrors.IsNotFound(err) {
		t.Fatalf("before the manager starts, ClusterDfnsConnection default: %v, want none (Helm cannot map it yet)", err)
	}
	deployment, err := get(deploymentGVK, "dfns-system", "dfns-operator-controller-manager")
	if err != nil {
		t.Fatalf("after install, the manager's Deployment: %v", err)
	}
	startManagerDefaultConnection(ctx, t, cfg, deployment)
	conn, err := get(connectionGVK, "", "default")
	if err != nil {
		t.Fatalf("after the manager's start, ClusterDfnsConnection default: %v", err)
	}

	// Upgrade with a chart whose CRD has a new printer column.
	template := filepath.Join(chart, "templates/crds", "access.dfns.io_clusterdfnsconnections.yaml")
	text, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "  - additionalPrinterColumns:\n"
	if !bytes.Contains(text, []byte(anchor)) {
		t.Fatalf("%s has no %q to add a column after", template, anchor)
	}
	text = bytes.Replace(text, []byte(anchor),
		[]byte(anchor+"    - jsonPath: .spec.namePrefix\n      name: UpgradeProbe\n      type: string\n"), 1)
	if err := os.WriteFile(template, text, 0o600); err != nil {
		t.Fatal(err)
	}
	helmRun("upgrade", "dfns-operator", chart, "--namespace", "dfns-system")
	u, err := get(crdGVK, "", crd)
	if err != nil {
		t.Fatal(err)
	}
	versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
	columns, _, _ := unstructured.NestedSlice(versions[0].(map[string]any), "additionalPrinterColumns")
	if len(columns) == 0 || columns[0].(map[string]any)["name"] != "UpgradeProbe" {
		t.Errorf("helm upgrade did not upgrade the CRD %s: columns %v", crd, columns)
	}
	after, err := get(connectionGVK, "", "default")
	if err != nil {
		t.Fatalf("after upgrade, ClusterDfnsConnection default: %v", err)
	}
	if after.GetUID() != conn.GetUID() {
		t.Errorf("the upgrade recreated ClusterDfnsConnection default; resources would have lost it for a while")
	}
	manifest := helmRun("get", "manifest", "dfns-operator", "--namespace", "dfns-system")
	if !strings.Contains(manifest, "kind: ClusterDfnsConnection\n") {
		t.Errorf("after the upgrade the default connection is not part of the release")
	}

	// Uninstall.
	helmRun("uninstall", "dfns-operator", "--namespace", "dfns-system")
	for _, name := range crdNames() {
		if _, err := get(crdGVK, "", name); err != nil {
			t.Errorf("after uninstall, CRD %s: %v (want it kept)", name, err)
		}
	}
	if _, err := get(deploymentGVK, "dfns-system", "dfns-operator-controller-manager"); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall, the manager's Deployment: %v, want it gone", err)
	}
}

// startManagerDefaultConnection does what the --default-connection of the manager's Deployment
// makes the leader do at start.
func startManagerDefaultConnection(ctx context.Context, t *testing.T, cfg *rest.Config,
	deployment *unstructured.Unstructured) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	var flag string
	for _, arg := range args {
		if v, ok := strings.CutPrefix(arg, defaultConnectionFlag); ok {
			flag = v
		}
	}
	want, err := controller.ParseDefaultConnection(flag)
	if err != nil {
		t.Fatalf("the manager's %s: %v", defaultConnectionFlag, err)
	}
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	typed, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := (controller.DefaultConnection{Client: typed, Connection: want}).Start(ctx); err != nil {
		t.Fatal(err)
	}
}
