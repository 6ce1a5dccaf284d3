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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestCacheOptionsSeeOnlyOperatorSecrets(t *testing.T) {
	cases := map[string]struct {
		reason string
		labels labels.Set
		want   bool
	}{
		"Operator": {"a Secret the operator wrote is cached", labels.Set{"app.kubernetes.io/managed-by": "dfns-operator", "x": "y"}, true},
		"Other":    {"another manager's Secret is not", labels.Set{"app.kubernetes.io/managed-by": "helm"}, false},
		"None":     {"an unlabelled Secret is not", nil, false},
	}
	var sel labels.Selector
	for obj, by := range CacheOptions().ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			sel = by.Label
		}
	}
	if sel == nil {
		t.Fatal("CacheOptions has no Secret selector")
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := sel.Matches(tc.labels); got != tc.want {
				t.Errorf("%s\nMatches = %t, want %t", tc.reason, got, tc.want)
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
