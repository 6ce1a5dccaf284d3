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

// newPersonalAccessTokens is the driver.External of DfnsPersonalAccessToken: the minting of
// identity.go with the calls below. A PAT belongs to the operator's own Dfns user, so only a
// logged-in operator can create one (login mode; token mode is Forbidden).
func newPersonalAccessTokens(api dfns.API, c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsPersonalAccessToken] {
	return &minter[*v1alpha1.DfnsPersonalAccessToken]{kind: kindPersonalAccessToken, api: api, calls: patCalls{api}, client: c,
		secrets: driver.NewSecretReader(c, r), lists: driver.NewListCache[identityView](syncPeriod)}
}

// patCalls are the Dfns calls of a personal access token (docs/dfns-api.md §3.2).
type patCalls struct{ api dfns.API }

func (patCalls) noun() string { return "personal access token" }

func (c patCalls) list(ctx context.Context) ([]identityView, error) {
	all, err := c.api.ListPersonalAccessTokens(ctx)
	out := make([]identityView, 0, len(all))
	for i := range all {
		out = append(out, patView(&all[i]))
	}
	return out, err
}

func (c patCalls) get(ctx context.Context, id string) (identityView, error) {
	got, err := c.api.GetPersonalAccessToken(ctx, id)
	if err != nil {
		return identityView{}, err
	}
	return patView(got), nil
}

// patView reads a token: it is its own identity.
func patView(t *dfns.AccessToken) identityView {
	return identityView{ID: t.TokenID, Name: t.Name, Active: t.IsActive, TokenID: t.TokenID}
}

func (c patCalls) create(ctx context.Context, p *v1alpha1.DfnsPersonalAccessToken, req mintRequest) (identityView, *dfns.AccessToken, error) {
	r := dfns.CreatePersonalAccessTokenRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
	if p.Spec.DaysValid != nil {
		r.DaysValid = int(*p.Spec.DaysValid)
	}
	if p.Spec.SecondsValid != nil {
		r.SecondsValid = int(*p.Spec.SecondsValid)
	}
	got, err := c.api.CreatePersonalAccessToken(ctx, r)
	if err != nil {
		return identityView{}, nil, err
	}
	return patView(got), got, nil
}

func (c patCalls) rename(ctx context.Context, id, name string) error {
	_, err := c.api.UpdatePersonalAccessToken(ctx, id, dfns.UpdatePersonalAccessTokenRequest{Name: name})
	return err
}

func (c patCalls) setActive(ctx context.Context, id string, active bool) error {
	var err error
	if active {
		_, err = c.api.ActivatePersonalAccessToken(ctx, id)
	} else {
		_, err = c.api.DeactivatePersonalAccessToken(ctx, id)
	}
	return err
}

func (c patCalls) remove(ctx context.Context, id string) error {
	return c.api.DeletePersonalAccessToken(ctx, id)
}
