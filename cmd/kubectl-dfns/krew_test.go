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
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewManifest is the part of a krew plugin manifest the checks read.
type krewManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifest checks hack/krew/dfns.yaml as krew reads it: named after its file, a
// semantic version, and for each platform an archive of that version and platform (the name
// hack/krew/release.sh builds and hashes), a sha256 and the binary kubectl runs as `kubectl dfns`.
func TestKrewManifest(t *testing.T) {
	path := filepath.Join("..", "..", "hack", "krew", "dfns.yaml")
	raw, err := os.ReadFile(path)
	must(t, err)
	var m krewManifest
	must(t, yaml.UnmarshalStrict(raw, &m, yaml.DisallowUnknownFields))
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" {
		t.Errorf("apiVersion %q kind %q: not a krew plugin manifest", m.APIVersion, m.Kind)
	}
	if m.Metadata.Name+".yaml" != filepath.Base(path) {
		t.Errorf("krew wants the manifest named after the plugin: %s in %s", m.Metadata.Name, path)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(m.Spec.Version) {
		t.Errorf("version %q is not a semantic version with a leading v", m.Spec.Version)
	}
	if m.Spec.Homepage == "" || m.Spec.ShortDescription == "" || m.Spec.Description == "" {
		t.Errorf("homepage, shortDescription and description are required")
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		goos, goarch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		platform := goos + "_" + goarch
		if seen[platform] || goos == "" || goarch == "" {
			t.Errorf("platform %q is missing or repeated", platform)
		}
		seen[platform] = true
		want := "/releases/download/" + m.Spec.Version + "/kubectl-dfns_" + platform + ".tar.gz"
		if !strings.HasPrefix(p.URI, m.Spec.Homepage) || !strings.HasSuffix(p.URI, want) {
			t.Errorf("%s: uri %q, want %s…%s", platform, p.URI, m.Spec.Homepage, want)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) {
			t.Errorf("%s: sha256 %q is not 64 hex digits", platform, p.SHA256)
		}
		bin := "kubectl-dfns"
		if goos == "windows" {
			bin += ".exe"
		}
		if p.Bin != bin {
			t.Errorf("%s: bin %q, want %q", platform, p.Bin, bin)
		}
	}
	for _, p := range []string{"linux_amd64", "darwin_arm64"} {
		if !seen[p] {
			t.Errorf("no %s archive", p)
		}
	}
}
