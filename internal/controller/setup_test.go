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

package controller

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

func TestCacheOptionsSeeOnlyOperatorSecrets(t *testing.T) {
	written := labels.Set{"app.kubernetes.io/managed-by": "dfns-operator", "x": "y"}
	cases := map[string]struct {
		reason    string
		watch     []string
		namespace string
		labels    labels.Set
		want      bool
	}{
		"Operator":        {"a Secret the operator wrote is cached", nil, "team-a", written, true},
		"Other":           {"another manager's Secret is not", nil, "team-a", labels.Set{"app.kubernetes.io/managed-by": "helm"}, false},
		"None":            {"an unlabelled Secret is not", nil, "team-a", nil, false},
		"OwnNamespace":    {"every Secret of the operator's namespace is: connection credentials", nil, "dfns-system", nil, true},
		"Watched":         {"a Secret the operator wrote in a watched namespace is cached", []string{"team-a"}, "team-a", written, true},
		"WatchedOther":    {"an unlabelled Secret in a watched namespace is not", []string{"team-a"}, "team-a", nil, false},
		"Unwatched":       {"a namespace not watched is not cached at all", []string{"team-a"}, "team-b", written, false},
		"WatchedOperator": {"the operator's namespace is cached whole when others are watched", []string{"team-a"}, "dfns-system", nil, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			opts := CacheOptions("dfns-system", tc.watch)
			var by cache.ByObject
			for obj, b := range opts.ByObject {
				if _, ok := obj.(*corev1.Secret); ok {
					by = b
				}
			}
			cfg, ok := by.Namespaces[tc.namespace]
			if !ok {
				cfg, ok = by.Namespaces[cache.AllNamespaces]
			}
			got := ok && (cfg.LabelSelector == nil || cfg.LabelSelector.Matches(tc.labels))
			if got != tc.want {
				t.Errorf("%s\ncached = %t, want %t", tc.reason, got, tc.want)
			}
			if _, watched := opts.DefaultNamespaces[tc.namespace]; len(tc.watch) > 0 && watched != slices.Contains(tc.watch, tc.namespace) {
				t.Errorf("DefaultNamespaces = %v, want %v", opts.DefaultNamespaces, tc.watch)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	cases := map[string]struct {
		reason string
		token  string
		want   time.Time // zero: nil
	}{
		"Exp":       {"the exp claim is read", "h.eyJleHAiOjE4OTM0NTYwMDB9.s", time.Unix(1893456000, 0).UTC()},
		"NoExp":     {"no exp claim gives nil", "h.eyJzdWIiOiJ4In0.s", time.Time{}},
		"NotAJWT":   {"a token that is not a JWT gives nil", "opaque", time.Time{}},
		"BadBase64": {"a payload that is not base64url gives nil", "h.!!!.s", time.Time{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tokenExpiry(tc.token)
			switch {
			case tc.want.IsZero() && got != nil:
				t.Errorf("%s\ntokenExpiry = %v, want nil", tc.reason, got)
			case !tc.want.IsZero() && (got == nil || !got.Time.Equal(tc.want)):
				t.Errorf("%s\ntokenExpiry = %v, want %v", tc.reason, got, tc.want)
			}
		})
	}
}
