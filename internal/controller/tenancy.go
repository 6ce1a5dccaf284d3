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
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// This file holds every rule a ClusterDfnsConnection sets (docs/architecture.md, "Connections
// and tenancy"), in the order admit checks them. A resource that breaks one gets NotPermitted,
// with a message naming the connection and the rule, before any call that changes Dfns; the
// only Dfns call made here reads a permission referenced by ID, to check its operations.
//
// A DfnsConnection sets no limits: its credentials are its namespace's own, so the namespace
// can do nothing through it that it could not do with them directly.

// connector is the driver.Connector of one kind: it resolves a resource's connection, checks
// the connection's rules, and binds the kind's adapter to the connection's client.
type connector[T driver.Object, O any] struct {
	conns *connections
	// owners looks up each kind's resources by the Dfns IDs they own.
	owners map[string]driver.Lookup
	// cache reads the resources a spec references and the namespace (references: past the
	// cache when it does not have one).
	cache   client.Reader
	kind    string
	adapter adapter[T, O]
}

// adapter is a kind's External before it is bound to a connection.
type adapter[T driver.Object, O any] interface {
	bind(l link) driver.External[T, O]
	Secret(obj T) (string, v1alpha1.SecretTemplate)
}

// Connect implements driver.Connector.
func (c *connector[T, O]) Connect(ctx context.Context, obj T, deleting bool) (driver.Session[T, O], error) {
	conn, err := c.conns.resolve(ctx, obj, deleting)
	if err != nil {
		return driver.Session[T, O]{}, err
	}
	// A connection whose limiter is booked ahead waits without a worker: its resources
	// requeue, and the workers every connection shares serve the others meanwhile.
	if err := conn.api.Admit(); err != nil {
		return driver.Session[T, O]{}, err
	}
	if !deleting {
		if err := c.admit(ctx, conn, obj); err != nil {
			return driver.Session[T, O]{}, err
		}
	}
	return driver.Session[T, O]{
		External: c.adapter.bind(link{api: conn.api, prefix: conn.spec.NamePrefix, key: conn.key, self: conn.self,
			operators: c.conns.operatorIdentities}),
		Approvals: dfnsApprovals{api: conn.api},
		Adoption:  conn.cluster == nil || conn.cluster.Limits != nil && conn.cluster.Limits.Adoption == v1alpha1.AdoptionAllowed,
	}, nil
}

// Secret implements driver.Connector.
func (c *connector[T, O]) Secret(obj T) (string, v1alpha1.SecretTemplate) {
	return c.adapter.Secret(obj)
}

// notPermitted is the refusal of a rule.
func notPermitted(conn *connection, format string, args ...any) error {
	return driver.Stopf(v1alpha1.ReasonNotPermitted, "connection %s %s", conn.name, fmt.Sprintf(format, args...))
}

// admit checks the connection's rules for obj.
func (c *connector[T, O]) admit(ctx context.Context, conn *connection, obj T) error {
	if conn.cluster == nil {
		return c.sameConnection(ctx, conn, obj)
	}
	if err := c.servesNamespace(ctx, conn, obj.GetNamespace()); err != nil {
		return err
	}
	limits := conn.cluster.Limits
	if limits == nil {
		limits = &v1alpha1.ConnectionLimits{}
	}
	if len(limits.Kinds) > 0 && !slices.Contains(limits.Kinds, v1alpha1.ManagedKind(c.kind)) {
		return notPermitted(conn, "does not allow kind %s (limits.kinds)", c.kind)
	}
	if err := c.sameConnection(ctx, conn, obj); err != nil {
		return err
	}
	switch o := any(obj).(type) {
	case *v1alpha1.DfnsPermission:
		return allowedOperations(conn, limits, o.Spec.Operations, "")
	case *v1alpha1.DfnsServiceAccount:
		return c.permissionAllowed(ctx, conn, limits, o.Namespace, o.Spec.PermissionRef)
	case *v1alpha1.DfnsPersonalAccessToken:
		return c.permissionAllowed(ctx, conn, limits, o.Namespace, o.Spec.PermissionRef)
	case *v1alpha1.DfnsPermissionAssignment:
		if err := c.permissionAllowed(ctx, conn, limits, o.Namespace, o.Spec.PermissionRef); err != nil {
			return err
		}
		return c.identityAllowed(ctx, conn, limits, o)
	case *v1alpha1.DfnsWebhook:
		return webhookURLAllowed(conn, limits, o.Spec.URL)
	}
	return nil
}

// servesNamespace: a ClusterDfnsConnection serves the namespaces it lists and those its
// selector matches; with neither set, none.
func (c *connector[T, O]) servesNamespace(ctx context.Context, conn *connection, namespace string) error {
	spec := conn.cluster
	if slices.Contains(spec.Namespaces, namespace) {
		return nil
	}
	if spec.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(spec.NamespaceSelector)
		if err != nil {
			return notPermitted(conn, "has an invalid namespaceSelector: %s", err.Error())
		}
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := c.cache.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
			return fmt.Errorf("reading namespace %s: %w", namespace, err)
		}
		if sel.Matches(labels.Set(ns.GetLabels())) {
			return nil
		}
	}
	return notPermitted(conn, "does not serve namespace %s (namespaceSelector, namespaces)", namespace)
}

// sameConnection: a resource referenced by name must reach Dfns through the same connection,
// or an object made through one connection (perhaps another organisation) would be used
// through another.
func (c *connector[T, O]) sameConnection(ctx context.Context, conn *connection, obj T) error {
	var refs []client.Object
	switch o := any(obj).(type) {
	case *v1alpha1.DfnsServiceAccount:
		refs = permissionByName(o.Namespace, o.Spec.PermissionRef)
	case *v1alpha1.DfnsPersonalAccessToken:
		refs = permissionByName(o.Namespace, o.Spec.PermissionRef)
	case *v1alpha1.DfnsPermissionAssignment:
		refs = permissionByName(o.Namespace, o.Spec.PermissionRef)
		if ref := o.Spec.IdentityRef; ref != nil {
			if identity, err := identityObject(ref.Kind); err == nil {
				identity.SetNamespace(o.Namespace)
				identity.SetName(ref.Name)
				refs = append(refs, identity)
			}
		}
	case *v1alpha1.DfnsPolicy:
		for _, name := range approverNames(o) {
			refs = append(refs, &v1alpha1.DfnsUser{ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: name}})
		}
	}
	for _, ref := range refs {
		if err := c.cache.Get(ctx, client.ObjectKeyFromObject(ref), ref); err != nil {
			reason := v1alpha1.ReasonIdentityNotReady
			if kindOf(ref) == kindPermission {
				reason = v1alpha1.ReasonPermissionNotReady
			}
			return driver.Waitf(reason, "waiting for %s %s: %s", kindOf(ref), ref.GetName(), readFailure(err))
		}
		if other := ref.(driver.Object).GetConnectionRef(); other != obj.GetConnectionRef() {
			return notPermitted(conn, "cannot use %s %s, which uses connection %s", kindOf(ref), ref.GetName(), other)
		}
	}
	return nil
}

// permissionByName is the DfnsPermission a permissionRef names, if it names one.
func permissionByName(namespace string, ref v1alpha1.PermissionRef) []client.Object {
	if ref.Name == "" {
		return nil
	}
	return []client.Object{&v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ref.Name}}}
}

// kindOf names a resource's kind in messages.
func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *v1alpha1.DfnsPermission:
		return kindPermission
	case *v1alpha1.DfnsServiceAccount:
		return kindServiceAccount
	case *v1alpha1.DfnsPersonalAccessToken:
		return kindPersonalAccessToken
	case *v1alpha1.DfnsUser:
		return kindUser
	}
	return "resource"
}

// allowedOperations: with limits.operations set, every operation must match an entry, either
// exactly or, for an entry ending in "*", by the prefix before it. of names the permission
// in messages when it is referenced ("" for the resource's own).
func allowedOperations[S ~string](conn *connection, limits *v1alpha1.ConnectionLimits, ops []S, of string) error {
	if len(limits.Operations) == 0 {
		return nil
	}
	for _, op := range ops {
		if !operationAllowed(limits.Operations, string(op)) {
			return notPermitted(conn, "does not allow operation %q%s (limits.operations)", string(op), of)
		}
	}
	return nil
}

// operationAllowed matches one operation against the entries of limits.operations.
func operationAllowed(allowed []string, op string) bool {
	for _, a := range allowed {
		if prefix, wild := strings.CutSuffix(a, "*"); wild && strings.HasPrefix(op, prefix) || a == op {
			return true
		}
	}
	return false
}

// permissionAllowed checks the permission a resource references. By name: the DfnsPermission's
// operations (the Dfns object was made from them, through this connection). By ID: the ID
// must be one limits.permissionIds allows or one the namespace's own DfnsPermissions made,
// and, with limits.operations set, the permission's operations are read from Dfns.
func (c *connector[T, O]) permissionAllowed(ctx context.Context, conn *connection, limits *v1alpha1.ConnectionLimits,
	namespace string, ref v1alpha1.PermissionRef) error {
	if ref.Name != "" {
		var p v1alpha1.DfnsPermission
		if err := c.cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, &p); err != nil {
			return driver.Waitf(v1alpha1.ReasonPermissionNotReady, "waiting for DfnsPermission %s: %s", ref.Name, readFailure(err))
		}
		if err := allowedOperations(conn, limits, p.Spec.Operations, " held by DfnsPermission "+ref.Name); err != nil {
			return err
		}
		// What Dfns holds may be more than the spec says (an update not applied yet, held
		// for approval, or an adopted object): that is what would be granted.
		if id := p.Status.PermissionID; id != "" && len(limits.Operations) > 0 {
			return c.dfnsOperationsAllowed(ctx, conn, limits, id, " held by DfnsPermission "+ref.Name+" in Dfns")
		}
		return nil
	}
	if ref.ID == "" {
		return nil
	}
	if !idListed(limits.PermissionIDs, ref.ID) {
		own, err := c.madeHere(ctx, namespace, conn, ref.ID, kindPermission)
		if err != nil {
			return err
		}
		if !own {
			return notPermitted(conn, "does not allow referencing permission %s by ID: it is not in limits.permissionIds "+
				"and no DfnsPermission of this namespace made it", ref.ID)
		}
	}
	if len(limits.Operations) == 0 {
		return nil
	}
	return c.dfnsOperationsAllowed(ctx, conn, limits, ref.ID, " held by permission "+ref.ID)
}

// dfnsOperationsAllowed checks the operations Dfns shows for permission id.
func (c *connector[T, O]) dfnsOperationsAllowed(ctx context.Context, conn *connection, limits *v1alpha1.ConnectionLimits,
	id, of string) error {
	p, err := conn.api.GetPermission(ctx, id)
	if err != nil {
		return fmt.Errorf("reading permission %s to check its operations: %w", id, err)
	}
	return allowedOperations(conn, limits, p.Operations, of)
}

// readFailure words a failed read of a referenced resource.
func readFailure(err error) string {
	if apierrors.IsNotFound(err) {
		return "it does not exist"
	}
	return err.Error()
}

// identityAllowed: an identity referenced by ID must be one limits.identityIds allows or one
// the namespace's own service accounts, tokens or users made.
func (c *connector[T, O]) identityAllowed(ctx context.Context, conn *connection, limits *v1alpha1.ConnectionLimits,
	a *v1alpha1.DfnsPermissionAssignment) error {
	id := a.Spec.IdentityID
	if id == "" || idListed(limits.IdentityIDs, id) {
		return nil
	}
	for _, kind := range []string{kindServiceAccount, kindPersonalAccessToken, kindUser} {
		own, err := c.madeHere(ctx, a.Namespace, conn, id, kind)
		if err != nil || own {
			return err
		}
	}
	return notPermitted(conn, "does not allow referencing identity %s by ID: it is not in limits.identityIds "+
		"and no resource of this namespace made it", id)
}

// idListed reports whether a limits list allows id ("*" allows any).
func idListed(list []string, id string) bool {
	return slices.Contains(list, id) || slices.Contains(list, "*")
}

// madeHere reports whether a resource of kind in namespace, using the same connection, records
// id in its status: only the operator writes status, so a tenant cannot forge it.
func (c *connector[T, O]) madeHere(ctx context.Context, namespace string, conn *connection, id string, kind string) (bool, error) {
	lookup, ok := c.owners[kind]
	if !ok {
		return false, fmt.Errorf("looking for the resource that made %s: no index of %s", id, kind)
	}
	owners, err := lookup(ctx, id)
	if err != nil {
		return false, fmt.Errorf("looking for the resource that made %s: %w", id, err)
	}
	for _, item := range owners {
		if o, ok := item.(driver.Object); ok && o.GetNamespace() == namespace && o.GetStatusID() == id &&
			o.GetConnectionRef().String() == conn.name {
			return true, nil
		}
	}
	return false, nil
}

// webhookURLAllowed: with limits.webhookURLs set, the URL must match one of the expressions
// whole.
func webhookURLAllowed(conn *connection, limits *v1alpha1.ConnectionLimits, url string) error {
	if len(limits.WebhookURLs) == 0 {
		return nil
	}
	for _, expr := range limits.WebhookURLs {
		re, err := regexp.Compile(`^(?:` + expr + `)$`)
		if err != nil {
			return notPermitted(conn, "has an invalid limits.webhookURLs entry %q", expr)
		}
		if re.MatchString(url) {
			return nil
		}
	}
	return notPermitted(conn, "does not allow webhook URL %q (limits.webhookURLs)", url)
}
