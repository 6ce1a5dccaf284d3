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
	"io"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// The tree of related resources: what a resource references (→) and what references it (←),
// in the manner of `crossplane beta trace`. References are by name in the same namespace, or by
// Dfns ID, which is matched against the IDs the namespace's resources record in status.

// maxDepth bounds the tree; maxReferrers bounds the resources listed as referencing one.
const (
	maxDepth     = 3
	maxReferrers = 20
)

// edge is one reference a resource makes: to a resource by name, or to a Dfns object by ID.
type edge struct {
	relation  string // the field that holds the reference
	kind      string // the kind referred to; for an ID, the kind that would record it
	namespace string // "" for a ClusterDfnsConnection
	name      string
	id        string
	// leaf is true for what the tree does not follow from a resource other than the root: its
	// connection, Secret and restart targets.
	leaf bool
}

// edgesOf lists the references obj makes.
func edgesOf(obj client.Object) []edge {
	ns := obj.GetNamespace()
	var out []edge
	if m, ok := obj.(managedObject); ok {
		ref := m.GetConnectionRef()
		cns := ns
		if ref.Kind == v1alpha1.KindClusterDfnsConnection {
			cns = ""
		}
		out = append(out, edge{relation: "connectionRef", kind: ref.Kind, namespace: cns, name: ref.Name, leaf: true})
	}
	permission := func(relation string, p v1alpha1.PermissionRef) edge {
		return edge{relation: relation, kind: kindPermission, namespace: ns, name: p.Name, id: p.ID}
	}
	secret := func(name string) edge {
		return edge{relation: "secret", kind: kindSecret, namespace: ns, name: name, leaf: true}
	}
	restarts := func(targets []v1alpha1.RestartTarget) {
		for _, t := range targets {
			out = append(out, edge{relation: "rolloutRestartTargets", kind: t.Kind, namespace: ns, name: t.Name, leaf: true})
		}
	}
	switch o := obj.(type) {
	case *v1alpha1.DfnsServiceAccount:
		out = append(out, permission("permissionRef", o.Spec.PermissionRef), secret(o.SecretName()))
		restarts(o.Spec.RolloutRestartTargets)
	case *v1alpha1.DfnsPersonalAccessToken:
		out = append(out, permission("permissionRef", o.Spec.PermissionRef), secret(o.SecretName()))
		restarts(o.Spec.RolloutRestartTargets)
	case *v1alpha1.DfnsWebhook:
		out = append(out, secret(o.SecretName()))
		restarts(o.Spec.RolloutRestartTargets)
	case *v1alpha1.DfnsPermissionAssignment:
		out = append(out, permission("permissionRef", o.Spec.PermissionRef))
		switch {
		case o.Spec.IdentityRef != nil:
			out = append(out, edge{relation: "identityRef", kind: o.Spec.IdentityRef.Kind, namespace: ns,
				name: o.Spec.IdentityRef.Name})
		case o.Spec.IdentityID != "":
			out = append(out, edge{relation: "identityId", kind: identityKindOf(o.Spec.IdentityID), namespace: ns,
				id: o.Spec.IdentityID})
		}
	case *v1alpha1.DfnsPolicy:
		out = append(out, policyEdges(o)...)
	case *v1alpha1.DfnsConnection:
		if r := o.Spec.Credentials.SecretRef; r != nil {
			out = append(out, edge{relation: "credentials", kind: kindSecret, namespace: ns, name: r.Name, leaf: true})
		}
	case *v1alpha1.ClusterDfnsConnection:
		if r := o.Spec.Credentials.SecretRef; r != nil { // in the operator's namespace (resolve)
			out = append(out, edge{relation: "credentials", kind: kindSecret, name: r.Name, leaf: true})
		}
	}
	return out
}

// policyEdges lists what a policy names by Dfns ID: the permissions and policies its filters
// select and the identities that may approve.
func policyEdges(p *v1alpha1.DfnsPolicy) []edge {
	var out []edge
	ids := func(relation, kind string, f *v1alpha1.IDFilter) {
		if f == nil {
			return
		}
		for _, id := range f.In {
			out = append(out, edge{relation: relation, kind: kind, namespace: p.Namespace, id: id})
		}
	}
	if f := p.Spec.Filters; f != nil {
		ids("filters.permissionId", kindPermission, f.PermissionID)
		ids("filters.policyId", kindPolicy, f.PolicyID)
	}
	for _, g := range p.Spec.Action.ApprovalGroups {
		ids("approver", kindServiceAccount, g.Approvers.UserID)
		for _, ref := range g.Approvers.UserRefs {
			out = append(out, edge{relation: "approver", kind: kindUser, namespace: p.Namespace, name: ref.Name})
		}
	}
	return out
}

// identityKindOf is the kind that records a Dfns identity ID: a token (to-…) is a personal
// access token; a user (us-…) may be a service account, or a person (DfnsUser: see
// idKinds).
func identityKindOf(id string) string {
	if strings.HasPrefix(id, "to-") {
		return kindPAT
	}
	return kindServiceAccount
}

// objKey identifies an object by kind, namespace and name.
type objKey struct{ kind, namespace, name string }

func keyOf(obj client.Object) objKey {
	return objKey{kindOf(obj), obj.GetNamespace(), obj.GetName()}
}

// world is every resource of the operator's kinds in the namespaces a tree looks at.
type world struct {
	objs  []managedObject
	byKey map[objKey]managedObject
	byID  map[objKey]managedObject // name holds the Dfns ID
}

// loadWorld lists the operator's resources in namespace ("" for all namespaces).
func loadWorld(ctx context.Context, c client.Client, namespace string) (*world, error) {
	w := &world{byKey: map[objKey]managedObject{}, byID: map[objKey]managedObject{}}
	for _, k := range managedKinds {
		list := k.newList()
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, fmt.Errorf("listing %s: %w", k.plural, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			m := item.(managedObject)
			w.objs = append(w.objs, m)
			w.byKey[keyOf(m)] = m
			if id := m.GetStatusID(); id != "" {
				w.byID[objKey{k.kind, m.GetNamespace(), id}] = m
			}
		}
	}
	return w, nil
}

// lookup finds the resource an edge names in the world, if it is there.
func (w *world) lookup(e edge) managedObject {
	if e.name != "" {
		return w.byKey[objKey{e.kind, e.namespace, e.name}]
	}
	for _, kind := range idKinds(e.kind) {
		if m := w.byID[objKey{kind, e.namespace, e.id}]; m != nil {
			return m
		}
	}
	return nil
}

// idKinds are the kinds that may record an ID an edge of kind names: a user ID (us-…) that
// no service account records may be a DfnsUser's.
func idKinds(kind string) []string {
	if kind == kindServiceAccount {
		return []string{kindServiceAccount, kindUser}
	}
	return []string{kind}
}

// pointsTo reports whether e refers to obj.
func pointsTo(e edge, obj client.Object) bool {
	if e.namespace != obj.GetNamespace() {
		return false
	}
	if e.name != "" {
		return e.kind == kindOf(obj) && e.name == obj.GetName()
	}
	if !slices.Contains(idKinds(e.kind), kindOf(obj)) {
		return false
	}
	m, ok := obj.(managedObject)
	return ok && e.id != "" && e.id == m.GetStatusID()
}

// treeNode is a line of the tree.
type treeNode struct {
	name, relation, ready, synced, status string
	children                              []*treeNode
}

// tree builds the tree of obj's references and referrers.
type tree struct {
	c client.Client
	w *world
	// operatorNamespace is where a ClusterDfnsConnection's Secret is.
	operatorNamespace string
}

// build returns the root node: obj, what it references (followed to maxDepth) and what
// references it.
func (t *tree) build(ctx context.Context, obj client.Object) *treeNode {
	root := describeNode(obj)
	path := []objKey{keyOf(obj)}
	root.children = t.references(ctx, obj, path, true)
	var referrers []*treeNode
	for _, o := range t.w.objs {
		if keyOf(o) == keyOf(obj) {
			continue
		}
		for _, e := range edgesOf(o) {
			if !pointsTo(e, obj) {
				continue
			}
			n := describeNode(o)
			n.relation = "← " + e.relation
			if obj.GetNamespace() == "" {
				n.name += " (in " + o.GetNamespace() + ")" // a ClusterDfnsConnection serves many
			}
			// What uses a connection is listed, not followed: that would be the whole namespace.
			if _, ok := obj.(managedObject); ok {
				n.children = t.references(ctx, o, append(slices.Clone(path), keyOf(o)), false)
			}
			referrers = append(referrers, n)
			break
		}
	}
	if len(referrers) > maxReferrers {
		more := len(referrers) - maxReferrers
		referrers = append(referrers[:maxReferrers], &treeNode{name: fmt.Sprintf("… and %d more", more)})
	}
	root.children = append(root.children, referrers...)
	return root
}

// references returns the nodes of what obj references. Only the root shows its connection,
// Secret and restart targets; a resource on path (the root and the way to obj) is left out.
func (t *tree) references(ctx context.Context, obj client.Object, path []objKey, isRoot bool) []*treeNode {
	var out []*treeNode
	for _, e := range edgesOf(obj) {
		if e.leaf && !isRoot {
			continue
		}
		target := t.w.lookup(e)
		if target != nil && slices.Contains(path, keyOf(target)) {
			continue // the way here: a referrer's reference to the root, or a cycle
		}
		n := t.resolve(ctx, obj, e)
		n.relation = "→ " + e.relation
		if target != nil && len(path) < maxDepth {
			n.children = t.references(ctx, target, append(slices.Clone(path), keyOf(target)), false)
		}
		out = append(out, n)
	}
	return out
}

// resolve describes what an edge refers to: a resource of the world, or an object read now.
func (t *tree) resolve(ctx context.Context, from client.Object, e edge) *treeNode {
	if target := t.w.lookup(e); target != nil {
		return describeNode(target)
	}
	if e.name == "" {
		return &treeNode{name: "Dfns " + e.id, status: "no " + e.kind + " in " + from.GetNamespace() + " records this ID"}
	}
	label := e.kind + "/" + e.name
	var obj client.Object
	key := client.ObjectKey{Namespace: e.namespace, Name: e.name}
	switch e.kind {
	case kindSecret:
		if _, ok := from.(*v1alpha1.ClusterDfnsConnection); ok {
			key.Namespace = t.operatorNamespace
			label = fmt.Sprintf("Secret/%s (namespace %s)", e.name, key.Namespace)
		}
		obj = &corev1.Secret{}
	case v1alpha1.KindDfnsConnection:
		obj = &v1alpha1.DfnsConnection{}
	case v1alpha1.KindClusterDfnsConnection:
		obj = &v1alpha1.ClusterDfnsConnection{}
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	default:
		// A resource of the operator's kinds that the world does not hold: it does not exist.
		return &treeNode{name: label, status: statusNotFound}
	}
	if err := t.c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return &treeNode{name: label, status: statusNotFound}
		}
		return &treeNode{name: label, status: "cannot read: " + readError(err)}
	}
	n := describeNode(obj)
	n.name = label
	return n
}

// describeNode is the line of an object: its name and, for the operator's kinds, its
// conditions.
func describeNode(obj client.Object) *treeNode {
	n := &treeNode{name: kindOf(obj) + "/" + obj.GetName(), ready: "-", synced: "-"}
	var conds []metav1.Condition
	switch o := obj.(type) {
	case managedObject:
		conds = o.Managed().Conditions
	case *v1alpha1.DfnsConnection:
		conds = o.Status.Conditions
	case *v1alpha1.ClusterDfnsConnection:
		conds = o.Status.Conditions
	case *corev1.Secret:
		n.name = kindSecret + "/" + o.Name
		n.status = fmt.Sprintf("%d keys", len(o.Data))
		if len(o.Data) == 1 {
			n.status = "1 key"
		}
		return n
	default:
		n.status = "found"
		return n
	}
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	synced := meta.FindStatusCondition(conds, v1alpha1.ConditionSynced)
	if ready != nil {
		n.ready = string(ready.Status)
	}
	if _, ok := obj.(managedObject); ok && synced != nil {
		n.synced = string(synced.Status)
	}
	switch {
	case obj.GetDeletionTimestamp() != nil:
		n.status = "Deleting"
	case synced != nil && synced.Status != metav1.ConditionTrue:
		n.status = summary(synced)
	case ready != nil && ready.Status != metav1.ConditionTrue:
		n.status = summary(ready)
	case ready != nil:
		n.status = ready.Reason
	default:
		n.status = "no status yet"
	}
	return n
}

// summary is a condition's reason and the start of its message.
func summary(c *metav1.Condition) string {
	const maxMessage = 70
	msg := c.Message
	if r := []rune(msg); len(r) > maxMessage {
		msg = string(r[:maxMessage-1]) + "…"
	}
	if msg == "" {
		return c.Reason
	}
	return c.Reason + ": " + msg
}

// printTree writes the tree as a table, one line per node.
func printTree(out io.Writer, root *treeNode) error {
	tw := newTable(out)
	tw.println("  NAME\tRELATION\tREADY\tSYNCED\tSTATUS")
	var walk func(n *treeNode, prefix, childPrefix string)
	walk = func(n *treeNode, prefix, childPrefix string) {
		tw.printf("  %s%s\t%s\t%s\t%s\t%s\n", prefix, n.name, n.relation, orDash(n.ready), orDash(n.synced), n.status)
		for i, c := range n.children {
			if i == len(n.children)-1 {
				walk(c, childPrefix+"└─ ", childPrefix+"   ")
			} else {
				walk(c, childPrefix+"├─ ", childPrefix+"│  ")
			}
		}
	}
	walk(root, "", "")
	return tw.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readError is why an object could not be read: the API server's reason (Forbidden, …), or
// the error.
func readError(err error) string {
	if r := apierrors.ReasonForError(err); r != "" {
		return string(r)
	}
	return err.Error()
}
