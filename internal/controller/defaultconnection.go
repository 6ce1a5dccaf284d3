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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=access.dfns.io,resources=clusterdfnsconnections,verbs=create

// DefaultConnection creates a ClusterDfnsConnection when the manager starts, unless one of
// its name exists; it never changes nor deletes one. The Helm chart needs it on a first
// install: the chart's CRDs are templates, and Helm maps every object of a release (and of its
// hooks, with a discovery it does not refresh) before the CRDs are served, so the chart cannot
// create the default connection itself until its next upgrade, which then adopts the object
// created here (it carries the release's ownership labels). See docs/architecture.md, "The
// default connection".
type DefaultConnection struct {
	Client     client.Client
	Connection *v1alpha1.ClusterDfnsConnection
	// Backoff between failed creates; default 1 s doubling up to a minute.
	Backoff wait.Backoff
}

// ParseDefaultConnection reads the value of --default-connection: a ClusterDfnsConnection as
// JSON. Unknown fields are refused, so that a typo does not make a connection wider than meant.
func ParseDefaultConnection(text string) (*v1alpha1.ClusterDfnsConnection, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	var c v1alpha1.ClusterDfnsConnection
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("--default-connection is not a ClusterDfnsConnection in JSON: %w", err)
	}
	if want := v1alpha1.GroupVersion.String(); c.APIVersion != want || c.Kind != v1alpha1.KindClusterDfnsConnection {
		return nil, fmt.Errorf("--default-connection: want apiVersion %s, kind %s; got %q, %q",
			want, v1alpha1.KindClusterDfnsConnection, c.APIVersion, c.Kind)
	}
	if c.Name == "" {
		c.Name = v1alpha1.DefaultConnectionName
	}
	return &c, nil
}

// Start creates the connection, trying again with backoff until it exists or ctx ends.
func (d DefaultConnection) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("clusterDfnsConnection", d.Connection.Name)
	b := d.Backoff
	if b.Steps == 0 {
		b = wait.Backoff{Duration: time.Second, Factor: 2, Cap: time.Minute, Steps: 1 << 30}
	}
	for {
		err := d.Client.Create(ctx, d.Connection.DeepCopy())
		switch {
		case err == nil:
			log.Info("Created the default connection")
			return nil
		case apierrors.IsAlreadyExists(err):
			return nil
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			// The object itself is wrong: trying again would not help, and the manager runs on.
			log.Error(err, "Cannot create the default connection")
			return nil
		}
		log.Error(err, "Creating the default connection failed; trying again")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(b.Step()):
		}
	}
}

// NeedLeaderElection makes only the leader create it.
func (DefaultConnection) NeedLeaderElection() bool { return true }
