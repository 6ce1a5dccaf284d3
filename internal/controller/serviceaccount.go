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
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// newServiceAccounts is the driver.External of DfnsServiceAccount: the minting of identity.go with
// the service-account calls below.
func newServiceAccounts(api dfns.API, c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsServiceAccount] {
	return &minter[*v1alpha1.DfnsServiceAccount]{kind: kindServiceAccount, api: api, calls: serviceAccountCalls{api}, client: c,
		secrets: driver.NewSecretReader(c, r), lists: driver.NewListCache[identityView](syncPeriod)}
}

// serviceAccountCalls are the Dfns calls of a service account (docs/dfns-api.md §3.1).
type serviceAccountCalls struct{ api dfns.API }

func (serviceAccountCalls) noun() string { return "service account" }

func (c serviceAccountCalls) list(ctx context.Context) ([]identityView, error) {
	all, err := c.api.ListServiceAccounts(ctx)
	out := make([]identityView, 0, len(all))
	for i := range all {
		out = append(out, serviceAccountView(&all[i]))
	}
	return out, err
}

func (c serviceAccountCalls) get(ctx context.Context, id string) (identityView, error) {
	got, err := c.api.GetServiceAccount(ctx, id)
	if err != nil {
		return identityView{}, err
	}
	return serviceAccountView(got), nil
}

// serviceAccountView reads a service account; its token is the first access token.
func serviceAccountView(sa *dfns.ServiceAccount) identityView {
	v := identityView{ID: sa.UserInfo.UserID, Name: sa.UserInfo.Name, Active: sa.UserInfo.IsActive}
	if len(sa.AccessTokens) > 0 {
		v.TokenID = sa.AccessTokens[0].TokenID
	}
	return v
}

func (c serviceAccountCalls) create(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, req mintRequest) (identityView, *dfns.AccessToken, error) {
	r := dfns.CreateServiceAccountRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
	if sa.Spec.DaysValid != nil {
		r.DaysValid = int(*sa.Spec.DaysValid)
	}
	got, err := c.api.CreateServiceAccount(ctx, r)
	if err != nil {
		return identityView{}, nil, err
	}
	for i := range got.AccessTokens {
		if got.AccessTokens[i].Token != "" {
			return serviceAccountView(got), &got.AccessTokens[i], nil
		}
	}
	return serviceAccountView(got), nil, nil
}

func (c serviceAccountCalls) rename(ctx context.Context, id, name string) error {
	_, err := c.api.UpdateServiceAccount(ctx, id, dfns.UpdateServiceAccountRequest{Name: name})
	return err
}

func (c serviceAccountCalls) setActive(ctx context.Context, id string, active bool) error {
	var err error
	if active {
		_, err = c.api.ActivateServiceAccount(ctx, id)
	} else {
		_, err = c.api.DeactivateServiceAccount(ctx, id)
	}
	return err
}

func (c serviceAccountCalls) remove(ctx context.Context, id string) error {
	return c.api.DeleteServiceAccount(ctx, id)
}
