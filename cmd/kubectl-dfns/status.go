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
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// maxEvents is how many of the latest events status shows.
const maxEvents = 10

// Labels and words status repeats.
const (
	labelCreated    = "Created"
	labelDfnsName   = "Dfns name"
	labelPermission = "Permission"
	labelActive     = "Active"
	roleWritten     = "written by it"
	roleCredentials = "its credentials"
	statusNotFound  = "not found"
)

// status writes what `kubectl dfns status` shows of one resource: the resource, its
// conditions, its Secret's keys (never the values), its connection, the tree of related
// resources and its recent events.
func (p *plugin) status(ctx context.Context, k kindInfo, name string) error {
	obj := k.newObj()
	key := client.ObjectKey{Name: name}
	if k.namespaced {
		key.Namespace = p.namespace
	}
	if err := p.c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			where := ""
			if k.namespaced {
				where = " in namespace " + p.namespace
			}
			return fmt.Errorf("%s %q not found%s", k.kind, name, where)
		}
		return err
	}

	p.section("%s %s", k.kind, displayName(obj))
	if err := p.fields(p.header(obj)); err != nil {
		return err
	}
	if err := p.conditions(conditionsOf(obj)); err != nil {
		return err
	}
	if err := p.secretOf(ctx, obj); err != nil {
		return err
	}
	if m, ok := obj.(managedObject); ok {
		if err := p.connectionOf(ctx, m); err != nil {
			return err
		}
	}
	if err := p.related(ctx, obj); err != nil {
		return err
	}
	if err := p.events(ctx, obj); err != nil {
		return err
	}
	return p.out.err
}

// displayName is namespace/name, or name for a cluster-scoped object.
func displayName(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// section starts a titled part of the output.
func (p *plugin) section(format string, args ...any) {
	p.out.printf("\n"+format+"\n", args...)
}

// field is one "Label: value" line.
type field struct{ label, value string }

// fields writes aligned "Label: value" lines, skipping empty values.
func (p *plugin) fields(fs []field) error {
	tw := newTable(p.out)
	for _, f := range fs {
		if f.value != "" {
			tw.printf("  %s:\t%s\n", f.label, f.value)
		}
	}
	return tw.flush()
}

// when is a time and how far it is from now.
func (p *plugin) when(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339) + " (" + p.relative(t.Time) + ")"
}

// relative is "in 3d" or "5m ago".
func (p *plugin) relative(t time.Time) string {
	if d := t.Sub(p.now); d > 0 {
		return "in " + duration.HumanDuration(d)
	}
	return duration.HumanDuration(p.now.Sub(t)) + " ago"
}

// header lists what the resource is and what it says in Dfns.
func (p *plugin) header(obj client.Object) []field {
	fs := []field{{labelCreated, p.when(ptrTime(obj.GetCreationTimestamp()))}}
	if m, ok := obj.(managedObject); ok {
		st := m.Managed()
		fs = append(fs,
			field{"Dfns ID", orNone(m.GetStatusID())},
			field{"Connection", m.GetConnectionRef().String()},
			field{"Deletion policy", string(m.GetDeletionPolicy())},
			field{"Generation", generation(obj.GetGeneration(), st.ObservedGeneration)})
	}
	fs = append(fs, kindFields(obj)...)
	if m, ok := obj.(managedObject); ok {
		fs = append(fs, p.managedFields(obj, m.Managed())...)
	}
	if ts := obj.GetDeletionTimestamp(); ts != nil {
		fs = append(fs, field{"Deleting", fmt.Sprintf("since %s, finalizers %s", p.when(ts),
			strings.Join(obj.GetFinalizers(), ", "))})
	}
	return fs
}

// managedFields are the token, rotation and approval lines of a managed resource.
func (p *plugin) managedFields(obj client.Object, st *v1alpha1.ManagedStatus) []field {
	var fs []field
	var ts *v1alpha1.TokenStatus
	switch o := obj.(type) {
	case *v1alpha1.DfnsServiceAccount:
		ts = &o.Status.TokenStatus
	case *v1alpha1.DfnsPersonalAccessToken:
		ts = &o.Status.TokenStatus
	}
	if ts != nil {
		fs = append(fs, field{labelDfnsName, ts.DfnsName}, field{"Token ID", ts.TokenID},
			field{"Token expires", p.when(ts.ExpiresAt)}, field{"Token renews", p.when(ts.RenewAt)})
	}
	if want := obj.GetAnnotations()[v1alpha1.AnnotationRotate]; want != "" {
		state := "done"
		if want != st.RotateRequest {
			state = "not acted on yet"
		}
		fs = append(fs, field{"Rotation requested", fmt.Sprintf("%s=%q (%s)", v1alpha1.AnnotationRotate, want, state)})
	}
	for _, prev := range st.Previous {
		fs = append(fs, field{"Superseded", fmt.Sprintf("%s, retired %s", prev.ID, p.when(&prev.RetireAt))})
	}
	if cr := st.PendingChangeRequest; cr != nil {
		fs = append(fs, field{"Change request", fmt.Sprintf("%s, approval %s, %s %s (generation %d)",
			cr.ID, orNone(cr.ApprovalID), cr.Operation, cr.Status, cr.Generation)})
	}
	return fs
}

// kindFields are the few spec and status lines that say what a resource of each kind is.
func kindFields(obj client.Object) []field {
	switch o := obj.(type) {
	case *v1alpha1.DfnsServiceAccount:
		return []field{{labelPermission, permissionRef(o.Spec.PermissionRef)}, {labelActive, fmt.Sprint(o.WantActive())}}
	case *v1alpha1.DfnsPersonalAccessToken:
		return []field{{labelPermission, permissionRef(o.Spec.PermissionRef)}, {labelActive, fmt.Sprint(o.WantActive())}}
	case *v1alpha1.DfnsPermission:
		ops := make([]string, len(o.Spec.Operations))
		for i, op := range o.Spec.Operations {
			ops[i] = string(op)
		}
		return []field{{labelDfnsName, o.DfnsName()}, {"Operations", strings.Join(ops, ", ")}}
	case *v1alpha1.DfnsPermissionAssignment:
		identity := o.Spec.IdentityID
		if r := o.Spec.IdentityRef; r != nil {
			identity = r.Kind + "/" + r.Name
		}
		return []field{{labelPermission, permissionRef(o.Spec.PermissionRef) + idSuffix(o.Status.PermissionID)},
			{"Identity", identity + idSuffix(o.Status.IdentityID)}}
	case *v1alpha1.DfnsWebhook:
		return []field{{"URL", o.Spec.URL}, {"Event kinds", joinEvents(o.Spec.Events)},
			{"Enabled", fmt.Sprint(o.WantEnabled())}}
	case *v1alpha1.DfnsPolicy:
		return []field{{labelDfnsName, o.DfnsName()}, {"Activity", string(o.Spec.ActivityKind)},
			{"Rule", string(o.Spec.Rule.Kind)}, {"Action", string(o.Spec.Action.Kind)}}
	case *v1alpha1.DfnsUser:
		registered := "unknown"
		if r := o.Status.Registered; r != nil {
			registered = fmt.Sprint(*r)
		}
		return []field{{"Email", o.Spec.Email}, {"Registered", registered}, {labelActive, fmt.Sprint(o.WantActive())}}
	case *v1alpha1.DfnsConnection:
		return connectionFields(&o.Spec.ConnectionSpec, &o.Status)
	case *v1alpha1.ClusterDfnsConnection:
		fs := connectionFields(&o.Spec.ConnectionSpec, &o.Status)
		served := strings.Join(o.Spec.Namespaces, ", ")
		if sel := o.Spec.NamespaceSelector; sel != nil {
			served = strings.TrimPrefix(served+"; selector "+metav1.FormatLabelSelector(sel), "; ")
		}
		fs = append(fs, field{"Serves", orNone(served)})
		if l := o.Spec.Limits; l != nil {
			fs = append(fs, field{"Limits", limits(l)})
		}
		return fs
	}
	return nil
}

func connectionFields(spec *v1alpha1.ConnectionSpec, st *v1alpha1.ConnectionStatus) []field {
	creds := "mounted (the manager's --dfns-credentials-dir)"
	if r := spec.Credentials.SecretRef; r != nil {
		creds = "Secret " + r.Name
	}
	return []field{{"Credentials", creds}, {"Name prefix", spec.NamePrefix}, {"Org", st.OrgID},
		{"Acts as", st.Identity}}
}

// limits summarises a ClusterDfnsConnection's limits.
func limits(l *v1alpha1.ConnectionLimits) string {
	var parts []string
	if len(l.Kinds) > 0 {
		kinds := make([]string, len(l.Kinds))
		for i, k := range l.Kinds {
			kinds[i] = string(k)
		}
		parts = append(parts, "kinds "+strings.Join(kinds, ","))
	}
	if len(l.Operations) > 0 {
		parts = append(parts, "operations "+strings.Join(l.Operations, ","))
	}
	if len(l.PermissionIDs) > 0 {
		parts = append(parts, "permissionIds "+strings.Join(l.PermissionIDs, ","))
	}
	if len(l.IdentityIDs) > 0 {
		parts = append(parts, "identityIds "+strings.Join(l.IdentityIDs, ","))
	}
	if len(l.WebhookURLs) > 0 {
		parts = append(parts, "webhookURLs "+strings.Join(l.WebhookURLs, ","))
	}
	if l.Adoption != "" {
		parts = append(parts, "adoption "+string(l.Adoption))
	}
	return strings.Join(parts, "; ")
}

func permissionRef(r v1alpha1.PermissionRef) string {
	if r.Name != "" {
		return kindPermission + "/" + r.Name
	}
	return r.ID
}

func idSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " (" + id + ")"
}

func joinEvents(evs []v1alpha1.WebhookEvent) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

func generation(gen, observed int64) string {
	s := fmt.Sprintf("%d, observed %d", gen, observed)
	if observed < gen {
		s += " (the operator has not seen the latest spec yet)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// conditionsOf returns an object's conditions.
func conditionsOf(obj client.Object) []metav1.Condition {
	switch o := obj.(type) {
	case managedObject:
		return o.Managed().Conditions
	case *v1alpha1.DfnsConnection:
		return o.Status.Conditions
	case *v1alpha1.ClusterDfnsConnection:
		return o.Status.Conditions
	}
	return nil
}

// conditions writes each condition with its reason and whole message.
func (p *plugin) conditions(conds []metav1.Condition) error {
	p.section("Conditions:")
	if len(conds) == 0 {
		p.out.println("  none yet: the operator has not reconciled it")
		return nil
	}
	tw := newTable(p.out)
	tw.println("  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
	for _, c := range conds {
		tw.printf("  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, p.relative(c.LastTransitionTime.Time),
			oneLine(c.Message))
	}
	return tw.flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// secretOf writes the keys of the Secret a resource writes (or a connection reads): never
// the values.
func (p *plugin) secretOf(ctx context.Context, obj client.Object) error {
	var name, role string
	namespace := obj.GetNamespace()
	switch o := obj.(type) {
	case *v1alpha1.DfnsServiceAccount:
		name, role = o.SecretName(), roleWritten
	case *v1alpha1.DfnsPersonalAccessToken:
		name, role = o.SecretName(), roleWritten
	case *v1alpha1.DfnsWebhook:
		name, role = o.SecretName(), roleWritten
	case *v1alpha1.DfnsConnection:
		name, role = o.Spec.Credentials.SecretRef.Name, roleCredentials
	case *v1alpha1.ClusterDfnsConnection:
		if r := o.Spec.Credentials.SecretRef; r != nil {
			name, role, namespace = r.Name, roleCredentials, p.operatorNamespace
		}
	}
	if name == "" {
		return nil
	}
	p.section("Secret %s/%s (%s):", namespace, name, role)
	var s corev1.Secret
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			p.out.println("  " + statusNotFound)
			return nil
		}
		p.out.printf("  cannot read it: %s\n", readError(err))
		return nil
	}
	keys := secretKeys(&s)
	owned := "no"
	for _, ref := range s.OwnerReferences {
		if ref.UID == obj.GetUID() && ref.Controller != nil && *ref.Controller {
			owned = "yes"
		}
	}
	return p.fields([]field{
		{"Keys", orNone(strings.Join(keys, ", ")) + " (values not shown)"},
		{"Type", string(s.Type)},
		{"Owned by it", owned},
		{labelCreated, p.when(&s.CreationTimestamp)},
	})
}

// secretKeys returns a Secret's keys, sorted. It is the only place the plugin looks at a
// Secret's data, and it takes only the keys.
func secretKeys(s *corev1.Secret) []string {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// connectionOf writes the state of the connection a resource acts through.
func (p *plugin) connectionOf(ctx context.Context, m managedObject) error {
	ref := m.GetConnectionRef()
	p.section("Connection %s:", ref)
	var obj client.Object = &v1alpha1.ClusterDfnsConnection{}
	key := client.ObjectKey{Name: ref.Name}
	if ref.Kind == v1alpha1.KindDfnsConnection {
		obj, key.Namespace = &v1alpha1.DfnsConnection{}, m.GetNamespace()
	}
	if err := p.c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			p.out.println("  not found: nothing is done in Dfns until it exists (ConnectionNotFound)")
			return nil
		}
		p.out.printf("  cannot read it: %s\n", readError(err))
		return nil
	}
	var st *v1alpha1.ConnectionStatus
	switch o := obj.(type) {
	case *v1alpha1.DfnsConnection:
		st = &o.Status
	case *v1alpha1.ClusterDfnsConnection:
		st = &o.Status
	}
	ready := "unknown (not checked yet)"
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			ready = fmt.Sprintf("%s, %s", c.Status, c.Reason)
			if c.Message != "" {
				ready += ": " + oneLine(c.Message)
			}
		}
	}
	return p.fields([]field{{"Ready", ready}, {"Org", st.OrgID}, {"Acts as", st.Identity},
		{"Checked", p.when(st.LastCheckedAt)}})
}

// related writes the tree of what the resource references and what references it.
func (p *plugin) related(ctx context.Context, obj client.Object) error {
	// A ClusterDfnsConnection (namespace "") is used from every namespace.
	p.section("Related resources (→ references, ← referenced by):")
	w, err := loadWorld(ctx, p.c, obj.GetNamespace())
	if err != nil {
		// What one may not read is said, and the rest still shown.
		p.out.printf("  cannot list them: %s\n", oneLine(err.Error()))
		return nil
	}
	t := &tree{c: p.c, w: w, operatorNamespace: p.operatorNamespace}
	return printTree(p.out, t.build(ctx, obj))
}

// events writes the latest events about the resource.
func (p *plugin) events(ctx context.Context, obj client.Object) error {
	var list corev1.EventList
	opts := []client.ListOption{client.MatchingFields{"involvedObject.uid": string(obj.GetUID())}}
	if ns := obj.GetNamespace(); ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	p.section("Events:")
	if err := p.c.List(ctx, &list, opts...); err != nil {
		p.out.printf("  cannot list them: %s\n", oneLine(err.Error()))
		return nil
	}
	if len(list.Items) == 0 {
		p.out.println("  none (events are kept for an hour by default)")
		return nil
	}
	evs := list.Items
	slices.SortFunc(evs, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(evs) > maxEvents {
		evs = evs[len(evs)-maxEvents:]
	}
	tw := newTable(p.out)
	tw.println("  LAST SEEN\tTYPE\tREASON\tCOUNT\tMESSAGE")
	for _, e := range evs {
		tw.printf("  %s\t%s\t%s\t%d\t%s\n", p.relative(eventTime(e)), e.Type, e.Reason, eventCount(e), oneLine(e.Message))
	}
	return tw.flush()
}

// eventTime is when an event last happened, whichever API recorded it: events.k8s.io/v1
// sets eventTime and a series, core/v1 the first and last timestamps.
func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > 0 {
		return e.Series.Count
	}
	return max(e.Count, 1)
}
