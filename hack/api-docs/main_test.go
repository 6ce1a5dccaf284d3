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
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIReferenceIsCurrent fails when docs/api.md is not what the CRDs give: run
// `make manifests` (or `make api-docs`) and commit the result.
func TestAPIReferenceIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	want, err := Render(filepath.Join(root, "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("docs/api.md is not current: run make api-docs")
	}
	for _, kind := range []string{"DfnsServiceAccount", "ClusterDfnsConnection", "spec.rotation.gracePeriod", "spec.connectionRef"} {
		if !strings.Contains(string(want), kind) {
			t.Errorf("the reference does not mention %s", kind)
		}
	}
}
