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
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// maxSuperseded is how many superseded identities may be in their grace period before a
// rotation asked for by hand waits (docs/architecture.md, "Rotation").
const maxSuperseded = 3

// rotate asks the operator to rotate a resource's token or secret once, by setting the
// access.dfns.io/rotate annotation to a new value: the time of the request.
func (p *plugin) rotate(ctx context.Context, k kindInfo, name string) error {
	if !k.rotates {
		var kinds []string
		for _, mk := range managedKinds {
			if mk.rotates {
				kinds = append(kinds, mk.kind)
			}
		}
		return fmt.Errorf("a %s has no token or secret to rotate; %s rotate", k.kind, strings.Join(kinds, ", "))
	}
	obj := k.newObj()
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: name}, obj); err != nil {
		return err
	}
	m := obj.(managedObject)
	before := obj.GetAnnotations()[v1alpha1.AnnotationRotate]
	value := p.now.UTC().Format(time.RFC3339Nano)
	if value == before {
		value += "-again"
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationRotate] = value
	obj.SetAnnotations(annotations)
	if err := p.c.Patch(ctx, obj, patch); err != nil {
		return err
	}
	p.out.printf("%s.%s/%s: rotation requested (%s=%s)\n", k.plural, v1alpha1.GroupVersion.Group, name,
		v1alpha1.AnnotationRotate, value)
	st := m.Managed()
	if before != "" && before != st.RotateRequest {
		p.out.printf("  the earlier request %q had not been acted on yet: this one stands for both\n", before)
	}
	if n := len(st.Previous); n >= maxSuperseded {
		p.out.printf("  %d superseded identities are still in their grace period: the rotation waits until one "+
			"is retired (status.previous)\n", n)
	}
	p.out.printf("  follow it with: kubectl dfns status %s/%s -n %s\n", k.short, name, p.namespace)
	return p.out.err
}
