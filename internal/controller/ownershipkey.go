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
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/internal/ownership"
)

// Where the ownership key lives: a Secret in the operator's namespace, which tenants cannot
// read or write.
const (
	// OwnershipKeySecret is the name of the Secret holding the key.
	OwnershipKeySecret = "dfns-operator-ownership-key"
	// ownershipKeyField is the Secret's key holding the key bytes.
	ownershipKeyField = "hmac.key"
	// DefaultOperatorNamespace is the operator's namespace when POD_NAMESPACE is not set.
	DefaultOperatorNamespace = "dfns-system"
)

// LoadOwnershipKey reads the ownership key from Secret OwnershipKeySecret in namespace, and
// makes it, with 32 random bytes, when the Secret does not exist (the first start). Two
// managers starting at once agree: the second one's create fails and it reads the first's.
// c must read past any cache. Losing the Secret makes every proof invalid: resources then keep
// working only through their status records (docs/architecture.md, "Ownership").
func LoadOwnershipKey(ctx context.Context, c client.Client, namespace string) (*ownership.Key, error) {
	for range 2 {
		var s corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: OwnershipKeySecret}, &s)
		if err == nil {
			k, kerr := ownership.NewKey(s.Data[ownershipKeyField])
			if kerr != nil {
				return nil, fmt.Errorf("Secret %s/%s: %w", namespace, OwnershipKeySecret, kerr)
			}
			return k, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, OwnershipKeySecret, err)
		}
		b := make([]byte, ownership.MinKeyLen)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generating the ownership key: %w", err)
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: OwnershipKeySecret,
				Labels: map[string]string{"app.kubernetes.io/name": "dfns-operator", "app.kubernetes.io/component": "ownership-key"}},
			Type:      corev1.SecretTypeOpaque,
			Data:      map[string][]byte{ownershipKeyField: b},
			Immutable: new(true),
		}
		err = c.Create(ctx, &s)
		if err == nil {
			return ownership.NewKey(b)
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating Secret %s/%s: %w", namespace, OwnershipKeySecret, err)
		}
	}
	return nil, fmt.Errorf("Secret %s/%s was created and removed while it was read", namespace, OwnershipKeySecret)
}
