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
