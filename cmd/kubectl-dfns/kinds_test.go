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
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestKindsMatchCRDs checks the plugin's table of kinds against the CRDs: every name kubectl
// accepts for a kind (kind, plural, singular, short names, with or without the group) is
// accepted, and the plugin knows every kind and its scope.
func TestKindsMatchCRDs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "crd", "bases", "*.yaml"))
	must(t, err)
	if len(files) != len(allKinds()) {
		t.Errorf("%d CRDs, the plugin knows %d kinds", len(files), len(allKinds()))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		must(t, err)
		var crd apiextensionsv1.CustomResourceDefinition
		must(t, yaml.Unmarshal(raw, &crd))
		n := crd.Spec.Names
		names := append([]string{n.Kind, n.Plural, n.Singular, strings.ToUpper(n.Plural),
			n.Plural + "." + crd.Spec.Group, n.Singular + ".v1alpha1." + crd.Spec.Group}, n.ShortNames...)
		for _, name := range names {
			k, err := resolveKind(name)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if k.kind != n.Kind {
				t.Errorf("%s resolves to %s, want %s", name, k.kind, n.Kind)
			}
			if k.namespaced != (crd.Spec.Scope == apiextensionsv1.NamespaceScoped) {
				t.Errorf("%s: the plugin has namespaced=%v, the CRD scope %s", n.Kind, k.namespaced, crd.Spec.Scope)
			}
			if len(n.ShortNames) > 0 && k.short != n.ShortNames[0] {
				t.Errorf("%s: the plugin's short name %q, the CRD's %q", n.Kind, k.short, n.ShortNames[0])
			}
		}
	}
}

func TestParseRef(t *testing.T) {
	cases := map[string]struct {
		reason string
		args   []string
		kind   string
		name   string
		err    string
	}{
		"Slash": {reason: "KIND/NAME as kubectl takes it",
			args: []string{"dfnssa/payments-api"}, kind: kindServiceAccount, name: "payments-api"},
		"TwoArgs": {reason: "KIND NAME as kubectl takes it",
			args: []string{"DfnsWebhook", "hooks"}, kind: kindWebhook, name: "hooks"},
		"Group": {reason: "a kind qualified by its group",
			args: []string{"dfnspolicies.access.dfns.io/p"}, kind: kindPolicy, name: "p"},
		"NoName":     {reason: "a kind alone names nothing", args: []string{"dfnssa"}, err: "expected KIND/NAME"},
		"EmptyName":  {reason: "an empty name", args: []string{"dfnssa/"}, err: "expected KIND/NAME"},
		"TwoSlashes": {reason: "a name holds no slash", args: []string{"dfnssa/a/b"}, err: "expected KIND/NAME"},
		"UnknownKind": {reason: "other kinds are refused, naming the known ones",
			args: []string{"pods/x"}, err: "dfnsserviceaccounts (dfnssa)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			k, got, err := parseRef(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s: got error %v, want one holding %q", tc.reason, err, tc.err)
				}
				return
			}
			if err != nil || k.kind != tc.kind || got != tc.name {
				t.Errorf("%s: got %s %q %v, want %s %q", tc.reason, k.kind, got, err, tc.kind, tc.name)
			}
		})
	}
}
