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
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// kubeconfig writes a kubeconfig file for the test API server whose context's namespace is
// namespace, and returns its path.
func kubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	user, err := testEnv.AddUser(envtest.User{Name: "plugin-user", Groups: []string{"system:masters"}}, nil)
	must(t, err)
	raw, err := user.KubeConfig()
	must(t, err)
	kc, err := clientcmd.Load(raw)
	must(t, err)
	kc.Contexts[kc.CurrentContext].Namespace = namespace
	path := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// runCLI runs `kubectl dfns ARGS` and returns what it wrote to stdout and stderr.
func runCLI(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestCommandLine runs the commands as kubectl runs the plugin: with kubectl's flags, the
// namespace from the kubeconfig's context or from -n.
func TestCommandLine(t *testing.T) {
	f := newFixture(t)
	other := newNamespace(t, "elsewhere")
	kc := kubeconfig(t, f.ns)

	out, _, err := runCLI("--kubeconfig", kc, "status", "dfnssa/payments-api")
	must(t, err)
	if !strings.Contains(out, "DfnsServiceAccount "+f.ns+"/payments-api") {
		t.Errorf("status without -n does not use the context's namespace:\n%s", out)
	}
	noSecretValues(t, out)

	_, errOut, err := runCLI("--kubeconfig", kc, "-n", other, "status", "dfnssa", "payments-api")
	if err == nil || !strings.Contains(errOut, `error: DfnsServiceAccount "payments-api" not found in namespace `+other) {
		t.Errorf("status -n %s: got %v, stderr %q; want not found there", other, err, errOut)
	}

	out, _, err = runCLI("--kubeconfig", kc, "--namespace", f.ns, "rotate", "DfnsServiceAccount/payments-api")
	must(t, err)
	var sa v1alpha1.DfnsServiceAccount
	must(t, testClient(t).Get(ctx, client.ObjectKeyFromObject(f.sa), &sa))
	if sa.Annotations[v1alpha1.AnnotationRotate] == "" {
		t.Errorf("rotate through the command line set no annotation; output:\n%s", out)
	}

	out, _, err = runCLI("--kubeconfig", kc, "-n", other, "approvals", "-A")
	must(t, err)
	if lineWith(out, f.ns, "by-id", "ap-assign1") == "" {
		t.Errorf("approvals -A lacks the held assignment:\n%s", out)
	}

	_, errOut, err = runCLI("--kubeconfig", kc, "status", "pods/x")
	if err == nil || !strings.Contains(errOut, `error: "pods" is not a kind of dfns-operator`) {
		t.Errorf("status of another kind: got %v, stderr %q", err, errOut)
	}
	_, errOut, err = runCLI("--kubeconfig", kc, "--context", "nope", "approvals")
	if err == nil || !strings.Contains(errOut, "nope") {
		t.Errorf("an unknown --context: got %v, stderr %q", err, errOut)
	}
}

// TestStatusWithLessRights runs status as a user who may read the operator's kinds and
// Secrets in one namespace but not events, nor list anything in other namespaces: what it may
// not read is said, and the rest is shown.
func TestStatusWithLessRights(t *testing.T) {
	f := newFixture(t)
	c := testClient(t)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "dfns-reader", Namespace: f.ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		}}
	must(t, c.Create(ctx, role))
	must(t, c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dfns-reader", Namespace: f.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "reader"}}}))
	user, err := testEnv.AddUser(envtest.User{Name: "reader"}, nil)
	must(t, err)

	var out bytes.Buffer
	p, err := newPlugin(user.Config(), f.ns, &out)
	must(t, err)
	must(t, p.status(ctx, managedKinds[0], "payments-api"))
	for _, want := range [][]string{
		{"Dfns ID:", "us-payapi"},
		{"Keys:", "DFNS_AUTH_TOKEN"},
		{"Connection ClusterDfnsConnection/default:"}, {"cannot read it: Forbidden"},
		{"DfnsPermissionAssignment/payments-api-audit", "← identityRef"},
		{"Events:"}, {"cannot list them:", "forbidden"},
	} {
		if lineWith(out.String(), want...) == "" {
			t.Errorf("no line holds %q:\n%s", want, out.String())
		}
	}

	// Without the right to read the resource itself, status fails, saying why.
	if err := p.status(ctx, connectionKinds[1], v1alpha1.DefaultConnectionName); !apierrors.IsForbidden(err) {
		t.Errorf("status of a resource the user may not get: got %v, want Forbidden", err)
	}
}
