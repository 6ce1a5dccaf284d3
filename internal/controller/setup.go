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
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// Options configures the controllers.
type Options struct {
	// API is the Dfns client shared by every controller.
	API dfns.API
	// SyncPeriod is how often a resource is compared with Dfns to catch drift, and how often
	// pending approvals are polled. Default: 5 minutes.
	SyncPeriod time.Duration
	// MaxConcurrentReconciles per controller. Default: 1.
	MaxConcurrentReconciles int
	// ReconcileTimeout bounds one reconcile. Default: 2 minutes.
	ReconcileTimeout time.Duration
	// EventRecorder overrides the manager's event recorder (tests capture events with it).
	EventRecorder EventRecorder
}

// Defaults of Options.
const (
	DefaultSyncPeriod       = 5 * time.Minute
	DefaultReconcileTimeout = 2 * time.Minute
)

// permissionRefIndex indexes DfnsServiceAccounts and DfnsPermissionAssignments by the
// DfnsPermission name they reference.
const permissionRefIndex = ".spec.permissionRef.name"

// identityRefIndex indexes DfnsPermissionAssignments by the DfnsServiceAccount they reference.
const identityRefIndex = ".spec.identityRef.name"

// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts;dfnspermissions;dfnspermissionassignments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts/status;dfnspermissions/status;dfnspermissionassignments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts/finalizers;dfnspermissions/finalizers;dfnspermissionassignments/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers every controller with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.API == nil {
		return errors.New("no Dfns API client")
	}
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = DefaultSyncPeriod
	}
	if opts.ReconcileTimeout <= 0 {
		opts.ReconcileTimeout = DefaultReconcileTimeout
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 1
	}
	if opts.EventRecorder == nil {
		opts.EventRecorder = recorderAdapter{mgr.GetEventRecorder("dfns-operator")}
	}
	if err := setupPermissions(mgr, opts); err != nil {
		return err
	}
	if err := setupServiceAccounts(mgr, opts); err != nil {
		return err
	}
	return setupAssignments(mgr, opts)
}

// CacheOptions limits the manager's Secret informer to the Secrets the operator writes, so
// that it does not cache every Secret of the cluster. Other Secrets are read past the cache.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})},
	}}
}

// newReconciler builds the driver for one kind.
func newReconciler[T Object](mgr ctrl.Manager, opts Options, ext External[T], newObject func() T) *Reconciler[T] {
	return &Reconciler[T]{
		client: mgr.GetClient(), reader: mgr.GetAPIReader(), scheme: mgr.GetScheme(), ext: ext,
		newObject: newObject, recorder: opts.EventRecorder, syncPeriod: opts.SyncPeriod,
		timeout: opts.ReconcileTimeout, secretRetries: 5, secretBackoff: 100 * time.Millisecond, now: time.Now,
	}
}

// setupPermissions registers the DfnsPermission controller.
func setupPermissions(mgr ctrl.Manager, opts Options) error {
	r := newReconciler(mgr, opts, &permissions{api: opts.API}, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} })
	err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.DfnsPermission{}).
		Named("dfnspermission").
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the DfnsPermission controller: %w", err)
	}
	return nil
}

// setupServiceAccounts registers the DfnsServiceAccount controller; it watches its Secrets
// and the DfnsPermissions it references.
func setupServiceAccounts(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.DfnsServiceAccount{}, permissionRefIndex, func(o client.Object) []string {
		if n := o.(*v1alpha1.DfnsServiceAccount).Spec.PermissionRef.Name; n != "" {
			return []string{n}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing DfnsServiceAccounts by permission: %w", err)
	}
	ext := &serviceAccounts{api: opts.API, client: mgr.GetClient(), reader: mgr.GetAPIReader()}
	r := newReconciler(mgr, opts, ext, func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} })
	err = ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.DfnsServiceAccount{}).
		Owns(&corev1.Secret{}).
		Watches(&v1alpha1.DfnsPermission{}, handler.EnqueueRequestsFromMapFunc(serviceAccountsOf(mgr.GetClient()))).
		Named("dfnsserviceaccount").
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the DfnsServiceAccount controller: %w", err)
	}
	return nil
}

// setupAssignments registers the DfnsPermissionAssignment controller; it watches the
// DfnsPermissions and DfnsServiceAccounts its resources reference, so an assignment reacts when
// either becomes Ready or a service account is minted anew.
func setupAssignments(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	err := idx.IndexField(ctx, &v1alpha1.DfnsPermissionAssignment{}, permissionRefIndex, func(o client.Object) []string {
		if n := o.(*v1alpha1.DfnsPermissionAssignment).Spec.PermissionRef.Name; n != "" {
			return []string{n}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing DfnsPermissionAssignments by permission: %w", err)
	}
	err = idx.IndexField(ctx, &v1alpha1.DfnsPermissionAssignment{}, identityRefIndex, func(o client.Object) []string {
		if ref := o.(*v1alpha1.DfnsPermissionAssignment).Spec.IdentityRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing DfnsPermissionAssignments by identity: %w", err)
	}
	ext := &assignments{api: opts.API, client: mgr.GetClient()}
	r := newReconciler(mgr, opts, ext, func() *v1alpha1.DfnsPermissionAssignment { return &v1alpha1.DfnsPermissionAssignment{} })
	c := mgr.GetClient()
	err = ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.DfnsPermissionAssignment{}).
		Watches(&v1alpha1.DfnsPermission{}, handler.EnqueueRequestsFromMapFunc(assignmentsOf(c, permissionRefIndex))).
		Watches(&v1alpha1.DfnsServiceAccount{}, handler.EnqueueRequestsFromMapFunc(assignmentsOf(c, identityRefIndex))).
		Named("dfnspermissionassignment").
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the DfnsPermissionAssignment controller: %w", err)
	}
	return nil
}

// assignmentsOf maps a referenced resource to the DfnsPermissionAssignments that name it
// through the given index.
func assignmentsOf(c client.Reader, index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.DfnsPermissionAssignmentList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, a := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
		}
		return reqs
	}
}

// serviceAccountsOf maps a DfnsPermission to the DfnsServiceAccounts that reference it.
func serviceAccountsOf(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.DfnsServiceAccountList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{permissionRefIndex: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, sa := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sa.Namespace, Name: sa.Name}})
		}
		return reqs
	}
}

// recorderAdapter records events through the events.k8s.io recorder of controller-runtime.
type recorderAdapter struct {
	r interface {
		Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
	}
}

// Eventf records an event; the action is the reason.
func (a recorderAdapter) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	a.r.Eventf(obj, nil, eventtype, reason, reason, messageFmt, args...)
}
