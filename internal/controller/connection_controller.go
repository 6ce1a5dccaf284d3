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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// +kubebuilder:rbac:groups=access.dfns.io,resources=clusterdfnsconnections;dfnsconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.dfns.io,resources=clusterdfnsconnections/status;dfnsconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// connectionRefIndex indexes every managed resource by its connection, as <kind>/<name>.
const connectionRefIndex = ".spec.connectionRef"

// Reasons of a connection's Ready condition.
const (
	reasonConnected = "Connected"
)

// connectionReconciler reports whether a connection's credentials work: Ready, the org and
// identity they act as, and when they were last checked. It checks again every period, which
// also re-reads a DfnsConnection's Secret (the cache holds only the operator's namespace).
type connectionReconciler struct {
	client   client.Client
	conns    *connections
	cluster  bool // ClusterDfnsConnection, else DfnsConnection
	period   time.Duration
	timeout  time.Duration
	recorder driver.EventRecorder
	rotator  *credentialRotator
}

// Reconcile checks one connection.
func (r *connectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var (
		obj     client.Object
		spec    *v1alpha1.ConnectionSpec
		status  *v1alpha1.ConnectionStatus
		limits  *v1alpha1.ConnectionLimits
		ref     = v1alpha1.ConnectionReference{Kind: v1alpha1.KindDfnsConnection, Name: req.Name}
		key     = ref.Kind + "/" + req.Namespace + "/" + req.Name
		secrets = req.Namespace
	)
	if r.cluster {
		c := &v1alpha1.ClusterDfnsConnection{}
		obj, spec, status, limits = c, &c.Spec.ConnectionSpec, &c.Status, c.Spec.Limits
		ref.Kind = v1alpha1.KindClusterDfnsConnection
		key, secrets = ref.String(), r.conns.operatorNamespace
	} else {
		c := &v1alpha1.DfnsConnection{}
		obj, spec, status = c, &c.Spec.ConnectionSpec, &c.Status
	}
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.conns.forget(key)
			connectionReadyGauge.DeleteLabelValues(key)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopyObject().(client.Object)
	acct, cl, err := r.check(ctx, key, ref.String(), obj.GetUID(), *spec, secrets)
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: reasonConnected,
		Message: "the credentials work", ObservedGeneration: obj.GetGeneration()}
	switch {
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonCredentialsUnavailable, err.Error()
	default:
		if msg := invalidLimits(limits); msg != "" {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, msg
		}
		status.OrgID, status.Identity = acct.OrgID, acct.Identity
	}
	status.ObservedGeneration = obj.GetGeneration()
	old := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	changed := old == nil || old.Status != ready.Status || old.Reason != ready.Reason
	meta.SetStatusCondition(&status.Conditions, ready)
	if ready.Status == metav1.ConditionTrue {
		connectionReadyGauge.WithLabelValues(key).Set(1)
	} else {
		connectionReadyGauge.WithLabelValues(key).Set(0)
	}
	if changed {
		if ready.Status == metav1.ConditionTrue {
			r.recorder.Eventf(obj, corev1.EventTypeNormal, reasonConnected, "the credentials work: acting as %s in %s", acct.Identity, acct.OrgID)
		} else {
			r.recorder.Eventf(obj, corev1.EventTypeWarning, ready.Reason, "%s", ready.Message)
		}
	}
	requeue := r.period
	if cl != nil {
		res := r.rotator.reconcile(ctx, &rotationInput{obj: obj, key: key, spec: *spec, secrets: secrets, cl: cl, checkErr: err, old: status.Credential})
		status.Credential = res.status
		r.setRotationCondition(obj, status, res.cond, res.reported)
		if res.requeue > 0 && res.requeue < requeue {
			requeue = res.requeue
		}
	}
	// lastCheckedAt alone is refreshed hourly, not at every check: at rest a connection costs
	// the API server no write per sync period.
	if now := metav1.Now(); status.LastCheckedAt == nil || now.Sub(status.LastCheckedAt.Time) >= lastCheckedRefresh ||
		!equality.Semantic.DeepEqual(before, obj) {
		status.LastCheckedAt = &now
	}
	if !equality.Semantic.DeepEqual(before, obj) {
		if err := r.client.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// lastCheckedRefresh is how old a connection's status.lastCheckedAt may grow while nothing else
// in its status changes.
const lastCheckedRefresh = time.Hour

// setRotationCondition sets the CredentialRotation condition (nil: leave it), with a warning
// event when it turns False or says something new while False, unless one was recorded already.
func (r *connectionReconciler) setRotationCondition(obj client.Object, status *v1alpha1.ConnectionStatus, cond *metav1.Condition,
	reported bool) {
	if cond == nil {
		return
	}
	cond.ObservedGeneration = obj.GetGeneration()
	old := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionCredentialRotation)
	if !reported && cond.Status == metav1.ConditionFalse && cond.Reason != v1alpha1.ReasonNotRotatable &&
		(old == nil || old.Status != cond.Status || old.Message != cond.Message) {
		r.recorder.Eventf(obj, corev1.EventTypeWarning, cond.Reason, "%s", cond.Message)
	}
	meta.SetStatusCondition(&status.Conditions, *cond)
}

// check proves the connection's credentials against Dfns. It returns the connection's client
// whenever there is one, even when the check fails.
func (r *connectionReconciler) check(ctx context.Context, key, name string, uid types.UID, spec v1alpha1.ConnectionSpec,
	secrets string) (acct struct{ OrgID, Identity string }, cl *connectionClient, err error) {
	cl, err = r.conns.client(ctx, key, name, uid, spec, secrets)
	if err != nil {
		return acct, nil, err
	}
	if _, err := cl.source.Credentials(); err != nil {
		return acct, cl, err
	}
	a, err := cl.api.Check(ctx)
	if err != nil {
		return acct, cl, fmt.Errorf("checking the credentials against Dfns: %w", err)
	}
	acct.OrgID, acct.Identity = a.OrgID, a.Identity
	return acct, cl, nil
}

// invalidLimits finds what in limits the API server could not check: the webhook URL
// expressions. "" when all is well.
func invalidLimits(limits *v1alpha1.ConnectionLimits) string {
	if limits == nil {
		return ""
	}
	for _, expr := range limits.WebhookURLs {
		if _, err := regexp.Compile(expr); err != nil {
			return fmt.Sprintf("limits.webhookURLs: %q is not a regular expression", expr)
		}
	}
	return ""
}

// setupConnections registers the controllers of both connection kinds.
func setupConnections(mgr ctrl.Manager, opts Options, conns *connections) error {
	c := mgr.GetClient()
	rotator := &credentialRotator{client: c, reader: mgr.GetAPIReader(), conns: conns, recorder: opts.EventRecorder, now: opts.Now,
		mountedSecret: opts.MountedSecret, confirmTimeout: opts.CredentialConfirmTimeout, retry: min(opts.SyncPeriod, 10*time.Second)}
	for _, cluster := range []bool{true, false} {
		r := &connectionReconciler{client: c, conns: conns, cluster: cluster, period: opts.SyncPeriod,
			timeout: opts.ReconcileTimeout, recorder: opts.EventRecorder, rotator: rotator}
		var obj client.Object = &v1alpha1.DfnsConnection{}
		name := "dfnsconnection"
		if cluster {
			obj, name = &v1alpha1.ClusterDfnsConnection{}, "clusterdfnsconnection"
		}
		bySecret := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, s client.Object) []reconcile.Request {
			return connectionsUsingSecret(ctx, c, cluster, conns.operatorNamespace, opts.MountedSecret, s)
		})
		err := ctrl.NewControllerManagedBy(mgr).For(obj).Named(name).
			Watches(&corev1.Secret{}, bySecret).
			Complete(r)
		if err != nil {
			return fmt.Errorf("setting up the %s controller: %w", name, err)
		}
	}
	return nil
}

// connectionsUsingSecret maps a Secret to the connections whose credentials it holds: by
// secretRef, and, for the manager's mounted Secret (mountedSecret in the operator's
// namespace), every ClusterDfnsConnection with mounted credentials.
func connectionsUsingSecret(ctx context.Context, c client.Reader, cluster bool, operatorNamespace, mountedSecret string,
	s client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	add := func(ns, name string, ref *v1alpha1.SecretReference) {
		if ref != nil && ref.Name == s.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		}
	}
	if cluster {
		var list v1alpha1.ClusterDfnsConnectionList
		if s.GetNamespace() != operatorNamespace || c.List(ctx, &list) != nil {
			return nil
		}
		for _, cc := range list.Items {
			add("", cc.Name, cc.Spec.Credentials.SecretRef)
			if cc.Spec.Credentials.Mounted != nil && mountedSecret != "" && s.GetName() == mountedSecret {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cc.Name}})
			}
		}
		return reqs
	}
	var list v1alpha1.DfnsConnectionList
	if c.List(ctx, &list, client.InNamespace(s.GetNamespace())) != nil {
		return nil
	}
	for _, dc := range list.Items {
		add(dc.Namespace, dc.Name, dc.Spec.Credentials.SecretRef)
	}
	return reqs
}

// connectionChanged passes the changes of a connection its resources must see again: its
// spec (the rules) and whether its credentials work.
var connectionChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() || readyOf(e.ObjectOld) != readyOf(e.ObjectNew)
	},
}

// readyOf is the status of a connection's Ready condition.
func readyOf(o client.Object) metav1.ConditionStatus {
	var conds []metav1.Condition
	switch c := o.(type) {
	case *v1alpha1.ClusterDfnsConnection:
		conds = c.Status.Conditions
	case *v1alpha1.DfnsConnection:
		conds = c.Status.Conditions
	}
	if cond := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); cond != nil {
		return cond.Status
	}
	return metav1.ConditionUnknown
}

// watchConnections makes a kind's resources be reconciled again when their connection changes
// or appears, and when their namespace's labels change (a namespaceSelector may select it no
// longer).
func watchConnections(b *builder.Builder, c client.Reader, newList func() client.ObjectList) *builder.Builder {
	byConnection := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		kind := v1alpha1.KindDfnsConnection
		if o.GetNamespace() == "" {
			kind = v1alpha1.KindClusterDfnsConnection
		}
		return referencing(c, newList(), connectionRefIndex, func(client.Object) string { return kind + "/" + o.GetName() })(ctx, o)
	})
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(list, func(item runtime.Object) error {
			m := item.(client.Object)
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}})
			return nil
		})
		return reqs
	})
	return b.Watches(&v1alpha1.ClusterDfnsConnection{}, byConnection, builder.WithPredicates(connectionChanged)).
		Watches(&v1alpha1.DfnsConnection{}, byConnection, builder.WithPredicates(connectionChanged)).
		Watches(&corev1.Namespace{}, byNamespace, builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{}))
}
