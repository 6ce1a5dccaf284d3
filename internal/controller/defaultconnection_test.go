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
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

const defaultConnectionJSON = `{"apiVersion":"access.dfns.io/v1alpha1","kind":"ClusterDfnsConnection",` +
	`"metadata":{"name":"default","labels":{"app.kubernetes.io/managed-by":"Helm"}},` +
	`"spec":{"credentials":{"mounted":{}},"namespaceSelector":{"matchLabels":{"access.dfns.io/enabled":"true"}}}}`

func TestParseDefaultConnection(t *testing.T) {
	c, err := ParseDefaultConnection(defaultConnectionJSON)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.Spec.Credentials.Mounted == nil || c.Labels["app.kubernetes.io/managed-by"] != "Helm" ||
		c.Spec.NamespaceSelector.MatchLabels["access.dfns.io/enabled"] != "true" {
		t.Errorf("parsed %+v", c)
	}
	for name, text := range map[string]string{
		// A misspelt field would otherwise be dropped, e.g. a namespaceSelector that selects all.
		"unknown field": strings.Replace(defaultConnectionJSON, `"namespaceSelector"`, `"namespaceSelecter"`, 1),
		"wrong kind":    strings.Replace(defaultConnectionJSON, `"ClusterDfnsConnection"`, `"DfnsConnection"`, 1),
		"wrong version": strings.Replace(defaultConnectionJSON, "v1alpha1", "v1", 1),
		"not JSON":      "kind: ClusterDfnsConnection",
	} {
		if _, err := ParseDefaultConnection(text); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestDefaultConnectionCreatesOnlyWhenAbsent(t *testing.T) {
	want, err := ParseDefaultConnection(defaultConnectionJSON)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fast := wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 100}

	t.Run("absent: created, after a failure", func(t *testing.T) {
		failures := 2
		c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if failures > 0 {
					failures--
					return apierrors.NewServiceUnavailable("starting")
				}
				return c.Create(ctx, obj, opts...)
			}}).Build()
		if err := (DefaultConnection{Client: c, Connection: want, Backoff: fast}).Start(ctx); err != nil {
			t.Fatal(err)
		}
		var got v1alpha1.ClusterDfnsConnection
		if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &got); err != nil {
			t.Fatalf("not created: %v", err)
		}
		if got.Spec.NamespaceSelector == nil || got.Labels["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("created %+v", got)
		}
	})

	t.Run("present: left as it is", func(t *testing.T) {
		mine := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: v1alpha1.ClusterDfnsConnectionSpec{Namespaces: []string{"team-a"}}}
		c := fake.NewClientBuilder().WithScheme(testSchemeUnit(t)).WithObjects(mine).Build()
		if err := (DefaultConnection{Client: c, Connection: want, Backoff: fast}).Start(ctx); err != nil {
			t.Fatal(err)
		}
		var got v1alpha1.ClusterDfnsConnection
		if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.NamespaceSelector != nil || len(got.Spec.Namespaces) != 1 || len(got.Labels) != 0 {
			t.Errorf("an existing default connection was changed: %+v", got)
		}
	})
}
