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
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// This file keeps one Dfns client per connection (docs/architecture.md, "Connections and
// tenancy"): its own session, login refresh, credentials reload and rate limiter. The rules a
// connection sets are checked in tenancy.go.

// NewClientFunc builds the Dfns client of one connection: name labels its metrics, creds
// supplies its credentials, and rate its limiter (zero fields: the manager's defaults).
type NewClientFunc func(name string, creds dfns.CredentialsSource, rate v1alpha1.RateLimit) (dfns.API, error)

// connection is a resolved connection, for one reconcile.
type connection struct {
	// name is how messages and proofs name it: <kind>/<name>.
	name string
	spec v1alpha1.ConnectionSpec
	// cluster is the spec of a ClusterDfnsConnection, nil for a DfnsConnection.
	cluster *v1alpha1.ClusterDfnsConnectionSpec
	api     dfns.API
	creds   dfns.CredentialsSource
	// key tells the connection's caches apart (a DfnsConnection's name is per namespace).
	key string
	// self is the Dfns user the connection logs in as (login mode; "" in token mode).
	self string
}

// link is what an adapter bound to a connection uses: its client and naming.
type link struct {
	api    dfns.API
	prefix string
	// key tells apart the connection's entries in caches shared by every connection.
	key string
	// self is the username of the Dfns user the connection logs in as ("" in token mode): no
	// resource may manage it, or a DfnsUser could deactivate the operator.
	self string
	// operators lists the usernames every connection the manager knows logs in as: a DfnsUser
	// of one connection must not manage the identity of another either.
	operators func() map[string]bool
}

// isOperator reports whether email is the Dfns user this or another connection acts as.
func (l link) isOperator(email string) bool {
	if l.self != "" && emailKey(email) == emailKey(l.self) {
		return true
	}
	return l.operators != nil && l.operators()[emailKey(email)]
}

// dfnsName is base, a resource's <namespace>/<name>, as the connection names it in Dfns:
// <namePrefix>:<namespace>/<name>. The ':' cannot occur in a namespace, so two prefixes, or
// a prefix and none, never give the same name.
func (l link) dfnsName(base string) string {
	if l.prefix == "" {
		return base
	}
	return l.prefix + ":" + base
}

// connectionClient is one connection's client and what it was built from.
type connectionClient struct {
	uid  types.UID
	spec v1alpha1.ConnectionSpec
	api  dfns.API
	// creds is the source read from a Secret; nil for mounted credentials.
	creds  *dfns.SettableCredentials
	source dfns.CredentialsSource
	// readAt is when a DfnsConnection's Secret, which the cache does not hold, was last read.
	readAt time.Time
}

// connections resolves connections and keeps their clients.
type connections struct {
	cache  client.Reader // the manager's cache: connections, namespaces, the operator's Secrets
	direct client.Reader // past the cache: a DfnsConnection's Secret
	// operatorNamespace holds the Secrets of ClusterDfnsConnections.
	operatorNamespace string
	mounted           dfns.CredentialsSource
	newClient         NewClientFunc
	// reread is how often a DfnsConnection's Secret is read again at most.
	reread time.Duration
	// tenantURLs are the API URLs a DfnsConnection's credentials may name: its Secret is a
	// tenant's, and the manager sends requests wherever it points.
	tenantURLs []string
	now        func() time.Time

	mu      sync.Mutex
	clients map[string]*connectionClient
}

// operatorIdentities returns the usernames, in lower case, of the Dfns users the manager's
// connections log in as: the mounted credentials' and those of every connection whose client
// is built (the connection controller builds each one at its first check).
func (c *connections) operatorIdentities() map[string]bool {
	out := map[string]bool{}
	add := func(src dfns.CredentialsSource) {
		if src == nil {
			return
		}
		if creds, err := src.Credentials(); err == nil && creds != nil && creds.Username != "" {
			out[emailKey(creds.Username)] = true
		}
	}
	add(c.mounted)
	c.mu.Lock()
	sources := make([]dfns.CredentialsSource, 0, len(c.clients))
	for _, cl := range c.clients {
		sources = append(sources, cl.source)
	}
	c.mu.Unlock()
	for _, src := range sources {
		add(src)
	}
	return out
}

// resolve finds the connection obj names, and its client. A missing connection is a
// ConnectionNotFound wait; credentials that cannot be read are CredentialsUnavailable. Neither
// makes a Dfns call.
func (c *connections) resolve(ctx context.Context, obj driver.Object, deleting bool) (*connection, error) {
	ref := obj.GetConnectionRef()
	var (
		spec    v1alpha1.ConnectionSpec
		cluster *v1alpha1.ClusterDfnsConnectionSpec
		uid     types.UID
		key     string
		err     error
		ns      = c.operatorNamespace
	)
	switch ref.Kind {
	case v1alpha1.KindClusterDfnsConnection:
		var cc v1alpha1.ClusterDfnsConnection
		err = c.cache.Get(ctx, types.NamespacedName{Name: ref.Name}, &cc)
		spec, cluster, uid, key = cc.Spec.ConnectionSpec, &cc.Spec, cc.UID, ref.String()
	default:
		var dc v1alpha1.DfnsConnection
		err = c.cache.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: ref.Name}, &dc)
		spec, uid, key, ns = dc.Spec.ConnectionSpec, dc.UID, ref.Kind+"/"+obj.GetNamespace()+"/"+ref.Name, obj.GetNamespace()
	}
	if apierrors.IsNotFound(err) {
		hint := "nothing is done in Dfns until it exists"
		if deleting {
			hint = "the Dfns object is kept until it exists again; set deletionPolicy: Orphan to delete the resource and keep the Dfns object"
		}
		return nil, driver.Waitf(v1alpha1.ReasonConnectionNotFound, "connection %s does not exist: %s", ref, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading connection %s: %w", ref, err)
	}
	cl, err := c.client(ctx, key, ref.String(), uid, spec, ns)
	if err != nil {
		return nil, err
	}
	creds, err := cl.source.Credentials()
	if err != nil {
		return nil, driver.Waitf(v1alpha1.ReasonCredentialsUnavailable, "connection %s: %s", ref, err.Error())
	}
	conn := &connection{name: ref.String(), spec: spec, cluster: cluster, api: cl.api, creds: cl.source, key: key}
	if creds != nil {
		conn.self = creds.Username
	}
	return conn, nil
}

// client returns the connection's client, built anew when the connection was replaced or its
// credentials or rate limit changed, with its Secret read when due.
func (c *connections) client(ctx context.Context, key, name string, uid types.UID, spec v1alpha1.ConnectionSpec,
	secretNamespace string) (*connectionClient, error) {
	c.mu.Lock()
	cl := c.clients[key]
	if cl == nil || cl.uid != uid || !reflect.DeepEqual(cl.spec.Credentials, spec.Credentials) || !reflect.DeepEqual(cl.spec.RateLimit, spec.RateLimit) {
		cl = &connectionClient{uid: uid, spec: spec, source: c.mounted}
		if spec.Credentials.SecretRef == nil && secretNamespace != c.operatorNamespace {
			c.mu.Unlock()
			return nil, driver.Stopf(v1alpha1.ReasonInvalidSpec, "connection %s: a DfnsConnection needs credentials.secretRef", name)
		}
		if spec.Credentials.SecretRef != nil {
			cl.creds = &dfns.SettableCredentials{}
			cl.source = cl.creds
		}
		var rate v1alpha1.RateLimit
		if spec.RateLimit != nil {
			rate = *spec.RateLimit
		}
		api, err := c.newClient(key, cl.source, rate)
		if err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("connection %s: building its Dfns client: %w", name, err)
		}
		cl.api = api
		if c.clients == nil {
			c.clients = map[string]*connectionClient{}
		}
		c.clients[key] = cl
	}
	due := cl.creds != nil && (secretNamespace == c.operatorNamespace || cl.readAt.IsZero() || c.now().Sub(cl.readAt) >= c.reread)
	if due {
		cl.readAt = c.now()
	}
	c.mu.Unlock()
	if due {
		c.readSecret(ctx, cl, secretNamespace)
	}
	return cl, nil
}

// readSecret loads the credentials Secret of cl: through the cache in the operator's
// namespace, past it elsewhere. A Secret that cannot be read makes the credentials
// unavailable, with the reason; its content never appears in a message.
func (c *connections) readSecret(ctx context.Context, cl *connectionClient, namespace string) {
	reader := c.direct
	if namespace == c.operatorNamespace {
		reader = c.cache
	}
	name := cl.spec.Credentials.SecretRef.Name
	var s corev1.Secret
	err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		cl.creds.Fail(fmt.Errorf("Secret %s/%s does not exist", namespace, name))
	case err != nil:
		cl.creds.Fail(fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err))
	case namespace != c.operatorNamespace && !c.tenantURLAllowed(s.Data):
		cl.creds.Fail(fmt.Errorf("Secret %s/%s: %s is not one of the API URLs the manager allows a DfnsConnection "+
			"(--dfns-connection-api-urls)", namespace, name, dfns.FileAPIURL))
	default:
		cl.creds.Set(s.Data)
	}
}

// tenantURLAllowed reports whether a DfnsConnection's credentials name an API URL the manager
// allows (none named: the default, Dfns' production API).
func (c *connections) tenantURLAllowed(data map[string][]byte) bool {
	url := strings.TrimRight(strings.TrimSpace(string(data[dfns.FileAPIURL])), "/")
	if url == "" {
		url = dfns.DefaultAPIURL
	}
	return slices.Contains(c.tenantURLs, url)
}

// readAgain makes the next use of a connection's client read its Secret again (a DfnsConnection's
// is otherwise read once per sync period): a rotation just wrote it.
func (c *connections) readAgain(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[key]; cl != nil {
		cl.readAt = time.Time{}
	}
}

// forget drops the client of a connection that was deleted, and its metric series.
func (c *connections) forget(key string) {
	c.mu.Lock()
	cl := c.clients[key]
	delete(c.clients, key)
	c.mu.Unlock()
	if closer, ok := cl.apiCloser(); ok {
		closer.Close()
	}
}

// apiCloser is the client's Close, when it has one (a fake in tests may not).
func (cl *connectionClient) apiCloser() (interface{ Close() }, bool) {
	if cl == nil {
		return nil, false
	}
	closer, ok := cl.api.(interface{ Close() })
	return closer, ok
}
