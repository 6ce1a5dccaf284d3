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
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
	"github.com/dfns-operator/dfns-operator/internal/ownership"
)

// Options configures the controllers.
type Options struct {
	// Mounted supplies the credentials of the connections with credentials.mounted: the
	// manager's credentials directory.
	Mounted dfns.CredentialsSource
	// NewClient builds the Dfns client of one connection.
	NewClient NewClientFunc
	// OperatorNamespace holds the Secrets of ClusterDfnsConnections. Default:
	// DefaultOperatorNamespace.
	OperatorNamespace string
	// ConnectionAPIURLs are the API URLs a DfnsConnection's credentials may name. Default:
	// Dfns' production API only.
	ConnectionAPIURLs []string
	// SyncPeriod is how often a resource is compared with Dfns to catch drift, and how often
	// pending approvals are polled. Default: 5 minutes.
	SyncPeriod time.Duration
	// MaxConcurrentReconciles per controller. Default: 1.
	MaxConcurrentReconciles int
	// ReconcileTimeout bounds one reconcile. Default: 2 minutes.
	ReconcileTimeout time.Duration
	// EventRecorder overrides the manager's event recorder (tests capture events with it).
	EventRecorder driver.EventRecorder
	// OwnershipKey signs and checks the proofs that a resource owns its Dfns object
	// (LoadOwnershipKey reads or makes it).
	OwnershipKey *ownership.Key
	// Now tells the time (default time.Now): token renewals and grace periods follow it. Tests
	// move it with the sandbox's clock.
	Now func() time.Time
	// MountedSecret names the Secret, in OperatorNamespace, that is mounted as the Mounted
	// credentials directory: the Secret a rotation of the mounted credentials writes. Empty:
	// mounted credentials are not rotated.
	MountedSecret string
	// CredentialConfirmTimeout is how long the manager may take to read a rotated credential
	// before the rotation is rolled back. Default: DefaultCredentialConfirmTimeout.
	CredentialConfirmTimeout time.Duration

	conns *connections
	// owners looks up each kind's resources by the Dfns IDs they prove are their own
	// (driver.OwnedIDIndex), by kind.
	owners map[string]driver.Lookup
}

// Defaults of Options.
const (
	DefaultSyncPeriod       = 5 * time.Minute
	DefaultReconcileTimeout = 2 * time.Minute
)

// permissionRefIndex indexes DfnsServiceAccounts and DfnsPermissionAssignments by the
// DfnsPermission name they reference.
const permissionRefIndex = ".spec.permissionRef.name"

// identityRefIndex indexes DfnsPermissionAssignments by the identity they reference, as
// "<namespace>/<kind>/<name>" (identityKey).
const identityRefIndex = ".spec.identityRef"

// Kinds an identityRef names.
const (
	kindServiceAccount      = "DfnsServiceAccount"
	kindPersonalAccessToken = "DfnsPersonalAccessToken"
	kindPermission          = "DfnsPermission"
	kindAssignment          = "DfnsPermissionAssignment"
	kindWebhook             = "DfnsWebhook"
	kindPolicy              = "DfnsPolicy"
	kindUser                = "DfnsUser"
)

// userRefIndex indexes DfnsPolicies by the DfnsUser names their approval groups reference.
const userRefIndex = ".spec.action.approvalGroups.approvers.userRefs"

// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts;dfnspersonalaccesstokens;dfnspermissions;dfnspermissionassignments;dfnswebhooks;dfnspolicies;dfnsusers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts/status;dfnspersonalaccesstokens/status;dfnspermissions/status;dfnspermissionassignments/status;dfnswebhooks/status;dfnspolicies/status;dfnsusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=access.dfns.io,resources=dfnsserviceaccounts/finalizers;dfnspersonalaccesstokens/finalizers;dfnspermissions/finalizers;dfnspermissionassignments/finalizers;dfnswebhooks/finalizers;dfnspolicies/finalizers;dfnsusers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers every controller with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Mounted == nil || opts.NewClient == nil {
		return errors.New("no Dfns credentials or client factory")
	}
	if opts.OperatorNamespace == "" {
		opts.OperatorNamespace = DefaultOperatorNamespace
	}
	if len(opts.ConnectionAPIURLs) == 0 {
		opts.ConnectionAPIURLs = []string{dfns.DefaultAPIURL}
	}
	if opts.OwnershipKey == nil {
		return errors.New("no ownership key")
	}
	if opts.Now == nil {
		opts.Now = time.Now
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
	if opts.CredentialConfirmTimeout <= 0 {
		opts.CredentialConfirmTimeout = DefaultCredentialConfirmTimeout
	}
	if opts.EventRecorder == nil {
		opts.EventRecorder = recorderAdapter{mgr.GetEventRecorder("dfns-operator")}
	}
	conns := &connections{cache: mgr.GetClient(), direct: mgr.GetAPIReader(), operatorNamespace: opts.OperatorNamespace,
		mounted: opts.Mounted, newClient: opts.NewClient, reread: opts.SyncPeriod, now: time.Now, tenantURLs: opts.ConnectionAPIURLs}
	if err := setupConnections(mgr, opts, conns); err != nil {
		return err
	}
	opts.conns = conns
	opts.owners = map[string]driver.Lookup{}
	if err := setupPermissions(mgr, opts); err != nil {
		return err
	}
	if err := setupServiceAccounts(mgr, opts); err != nil {
		return err
	}
	if err := setupPersonalAccessTokens(mgr, opts); err != nil {
		return err
	}
	if err := setupWebhooks(mgr, opts); err != nil {
		return err
	}
	if err := setupUsers(mgr, opts); err != nil {
		return err
	}
	if err := setupPolicies(mgr, opts); err != nil {
		return err
	}
	return setupAssignments(mgr, opts)
}

// CacheOptions limits the manager's Secret informer to the Secrets the operator writes, and
// to every Secret of the operator's own namespace (the credentials of ClusterDfnsConnections),
// so that it does not cache every Secret of the cluster. Other Secrets are read past the
// cache. With watchNamespaces, the manager caches (so reconciles) only those namespaces.
// Every cached object is trimmed of what no reconcile reads (trimForCache).
func CacheOptions(operatorNamespace string, watchNamespaces []string) cache.Options {
	written := cache.Config{LabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})}
	secrets := map[string]cache.Config{}
	opts := cache.Options{DefaultTransform: trimForCache}
	if len(watchNamespaces) == 0 {
		secrets[cache.AllNamespaces] = written
	} else {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range watchNamespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
			secrets[ns] = written
		}
	}
	secrets[operatorNamespace] = cache.Config{}
	opts.ByObject = map[client.Object]cache.ByObject{&corev1.Secret{}: {Namespaces: secrets}}
	return opts
}

// lastApplied is the annotation in which kubectl apply (client-side) keeps the whole object as
// last applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimForCache drops from an object, before the cache keeps it, what no reconcile reads: its
// managed fields and kubectl's copy of the last applied object. Together they were more than
// half of a cached resource. Patches are computed against the cached copy and name only what
// they change, so the fields dropped here are never written back.
func trimForCache(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil // a tombstone: nothing to trim
	}
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	if a := obj.GetAnnotations(); a != nil {
		if _, ok := a[lastApplied]; ok {
			delete(a, lastApplied)
			if len(a) == 0 {
				obj.SetAnnotations(nil)
			}
		}
	}
	return in, nil
}

// setupKind registers the controller of one kind: the driver with the kind's External, the
// index of the Dfns IDs its resources prove they own, and what else it watches.
func setupKind[T driver.Object, O any](mgr ctrl.Manager, opts Options, kind string, ext adapter[T, O], newObject func() T,
	newList func() client.ObjectList, watches func(*builder.Builder) *builder.Builder) error {
	name := strings.ToLower(kind)
	owners, err := driver.NewIndex(context.Background(), mgr.GetCache(), newObject(), driver.OwnedIDIndex, driver.OwnedIDs[T](kind, opts.OwnershipKey))
	if err != nil {
		return fmt.Errorf("indexing %s by Dfns ID: %w", kind, err)
	}
	opts.owners[kind] = owners
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), newObject(), connectionRefIndex, func(o client.Object) []string {
		return []string{o.(T).GetConnectionRef().String()}
	}); err != nil {
		return fmt.Errorf("indexing %s by connection: %w", kind, err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(newObject()).
		Named(name).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles})
	b = watchConnections(b, mgr.GetClient(), newList)
	conn := &connector[T, O]{conns: opts.conns, owners: opts.owners, kind: kind, adapter: ext,
		cache: references{cache: mgr.GetClient(), direct: mgr.GetAPIReader()}}
	r := driver.New(driver.Config[T, O]{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Kind: kind, Connector: conn,
		NewObject: newObject, NewList: newList, Owners: owners, Key: opts.OwnershipKey, Errors: dfnsErrors{},
		Recorder: opts.EventRecorder, SyncPeriod: opts.SyncPeriod, Timeout: opts.ReconcileTimeout, Now: opts.Now,
	})
	if err := watches(b).Complete(r); err != nil {
		return fmt.Errorf("setting up the %s controller: %w", name, err)
	}
	return nil
}

// none adds no watch.
func none(b *builder.Builder) *builder.Builder { return b }

// ownsSecrets watches the Secrets the kind writes.
func ownsSecrets(b *builder.Builder) *builder.Builder { return b.Owns(&corev1.Secret{}) }

// setupPermissions registers the DfnsPermission controller.
func setupPermissions(mgr ctrl.Manager, opts Options) error {
	return setupKind(mgr, opts, kindPermission, &permissions{}, func() *v1alpha1.DfnsPermission { return &v1alpha1.DfnsPermission{} },
		func() client.ObjectList { return &v1alpha1.DfnsPermissionList{} }, none)
}

// setupPolicies registers the DfnsPolicy controller; it watches the DfnsUsers its approval
// groups reference, so a policy reacts when one becomes Ready or is invited anew.
func setupPolicies(mgr ctrl.Manager, opts Options) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.DfnsPolicy{}, userRefIndex, func(o client.Object) []string {
		return approverNames(o.(*v1alpha1.DfnsPolicy))
	})
	if err != nil {
		return fmt.Errorf("indexing DfnsPolicies by user: %w", err)
	}
	byUser := handler.EnqueueRequestsFromMapFunc(referencing(mgr.GetClient(), &v1alpha1.DfnsPolicyList{}, userRefIndex, objectName))
	return setupKind(mgr, opts, kindPolicy, &policies{client: references{cache: mgr.GetClient(), direct: mgr.GetAPIReader()}}, func() *v1alpha1.DfnsPolicy { return &v1alpha1.DfnsPolicy{} },
		func() client.ObjectList { return &v1alpha1.DfnsPolicyList{} },
		func(b *builder.Builder) *builder.Builder { return b.Watches(&v1alpha1.DfnsUser{}, byUser) })
}

// setupUsers registers the DfnsUser controller.
func setupUsers(mgr ctrl.Manager, opts Options) error {
	ext := &users{lists: driver.NewListCache(opts.SyncPeriod, userFields)}
	return setupKind(mgr, opts, kindUser, ext, func() *v1alpha1.DfnsUser { return &v1alpha1.DfnsUser{} },
		func() client.ObjectList { return &v1alpha1.DfnsUserList{} }, none)
}

// setupWebhooks registers the DfnsWebhook controller; it watches its Secrets.
func setupWebhooks(mgr ctrl.Manager, opts Options) error {
	ext := &webhooks{secrets: driver.NewSecretReader(mgr.GetClient(), mgr.GetAPIReader())}
	return setupKind(mgr, opts, kindWebhook, ext, func() *v1alpha1.DfnsWebhook { return &v1alpha1.DfnsWebhook{} },
		func() client.ObjectList { return &v1alpha1.DfnsWebhookList{} }, ownsSecrets)
}

// setupServiceAccounts registers the DfnsServiceAccount controller.
func setupServiceAccounts(mgr ctrl.Manager, opts Options) error {
	ext := newServiceAccounts(mgr.GetClient(), mgr.GetAPIReader(), opts.SyncPeriod)
	ext.now = opts.Now
	return setupMinter(mgr, opts, ext, kindServiceAccount, func() *v1alpha1.DfnsServiceAccount { return &v1alpha1.DfnsServiceAccount{} },
		func() client.ObjectList { return &v1alpha1.DfnsServiceAccountList{} })
}

// setupPersonalAccessTokens registers the DfnsPersonalAccessToken controller.
func setupPersonalAccessTokens(mgr ctrl.Manager, opts Options) error {
	ext := newPersonalAccessTokens(mgr.GetClient(), mgr.GetAPIReader(), opts.SyncPeriod)
	ext.now = opts.Now
	return setupMinter(mgr, opts, ext, kindPersonalAccessToken, func() *v1alpha1.DfnsPersonalAccessToken { return &v1alpha1.DfnsPersonalAccessToken{} },
		func() client.ObjectList { return &v1alpha1.DfnsPersonalAccessTokenList{} })
}

// setupMinter registers the controller of a kind that mints a token; it watches its Secrets
// and the DfnsPermissions it references.
func setupMinter[T mintable](mgr ctrl.Manager, opts Options, ext adapter[T, identityView], kind string, newObject func() T, newList func() client.ObjectList) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), newObject(), permissionRefIndex, func(o client.Object) []string {
		if n := o.(T).GetPermissionRef().Name; n != "" {
			return []string{n}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing %s by permission: %w", kind, err)
	}
	byPermission := handler.EnqueueRequestsFromMapFunc(referencing(mgr.GetClient(), newList(), permissionRefIndex, objectName))
	return setupKind(mgr, opts, kind, ext, newObject, newList, func(b *builder.Builder) *builder.Builder {
		return ownsSecrets(b).Watches(&v1alpha1.DfnsPermission{}, byPermission)
	})
}

// setupAssignments registers the DfnsPermissionAssignment controller; it watches the
// DfnsPermissions and identities (service accounts, tokens, users) its resources reference, so
// an assignment reacts when either becomes Ready or an identity is minted anew.
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
	byIdentity, err := driver.NewIndex(ctx, mgr.GetCache(), &v1alpha1.DfnsPermissionAssignment{}, identityRefIndex, func(o client.Object) []string {
		if ref := o.(*v1alpha1.DfnsPermissionAssignment).Spec.IdentityRef; ref != nil {
			return []string{identityKey(o.GetNamespace(), ref.Kind, ref.Name)}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing DfnsPermissionAssignments by identity: %w", err)
	}
	ext := &assignments{client: references{cache: mgr.GetClient(), direct: mgr.GetAPIReader()}, lists: driver.NewListCache(opts.SyncPeriod, assignmentFields)}
	c, list := mgr.GetClient(), &v1alpha1.DfnsPermissionAssignmentList{}
	on := func(index string, key func(client.Object) string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(referencing(c, list, index, key))
	}
	return setupKind(mgr, opts, kindAssignment, ext, func() *v1alpha1.DfnsPermissionAssignment { return &v1alpha1.DfnsPermissionAssignment{} },
		func() client.ObjectList { return &v1alpha1.DfnsPermissionAssignmentList{} },
		func(b *builder.Builder) *builder.Builder {
			return b.Watches(&v1alpha1.DfnsPermission{}, on(permissionRefIndex, objectName)).
				Watches(&v1alpha1.DfnsServiceAccount{}, referencedBy(byIdentity, identityKeyOf(kindServiceAccount))).
				Watches(&v1alpha1.DfnsPersonalAccessToken{}, referencedBy(byIdentity, identityKeyOf(kindPersonalAccessToken))).
				Watches(&v1alpha1.DfnsUser{}, referencedBy(byIdentity, identityKeyOf(kindUser)))
		})
}

// referencing maps a referenced resource to the resources of list's kind in its namespace
// whose index holds key(resource).
func referencing(c client.Reader, list client.ObjectList, index string, key func(client.Object) string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: key(o)}); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(l, func(item runtime.Object) error {
			if m, ok := item.(client.Object); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}})
			}
			return nil
		})
		return reqs
	}
}

// referencedBy maps a referenced resource to the resources lookup files under key(resource).
func referencedBy(lookup driver.Lookup, key func(client.Object) string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		found, err := lookup(ctx, key(o))
		if err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(found))
		for _, m := range found {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}})
		}
		return reqs
	})
}

// objectName is the index key of a resource referenced by name.
func objectName(o client.Object) string { return o.GetName() }

// identityKeyOf is the identityRefIndex value of an identity resource of the given kind.
func identityKeyOf(kind string) func(client.Object) string {
	return func(o client.Object) string { return identityKey(o.GetNamespace(), kind, o.GetName()) }
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
