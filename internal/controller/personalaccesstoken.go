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
)

// newPersonalAccessTokens is the External of DfnsPersonalAccessToken: the minting of
// identity.go with the token endpoints (docs/dfns-api.md §3.2). A PAT belongs to the operator's
// own Dfns user, so only a logged-in operator can create one (login mode; token mode is
// Forbidden), and it is its own identity.
func newPersonalAccessTokens(api dfns.API, c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsPersonalAccessToken] {
	return newMinter(identityCalls[*v1alpha1.DfnsPersonalAccessToken, dfns.AccessToken]{
		noun: "personal access token",
		view: func(t *dfns.AccessToken) identityView {
			return identityView{ID: t.TokenID, Name: t.Name, Active: t.IsActive, TokenID: t.TokenID}
		},
		token: func(t *dfns.AccessToken) *dfns.AccessToken { return t },
		create: func(ctx context.Context, p *v1alpha1.DfnsPersonalAccessToken, req mintRequest) (*dfns.AccessToken, error) {
			r := dfns.CreatePersonalAccessTokenRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
			if p.Spec.DaysValid != nil {
				r.DaysValid = int(*p.Spec.DaysValid)
			}
			if p.Spec.SecondsValid != nil {
				r.SecondsValid = int(*p.Spec.SecondsValid)
			}
			return api.CreatePersonalAccessToken(ctx, r)
		},
		rename: func(ctx context.Context, id, name string) (*dfns.AccessToken, error) {
			return api.UpdatePersonalAccessToken(ctx, id, dfns.UpdatePersonalAccessTokenRequest{Name: name})
		},
		list: api.ListPersonalAccessTokens, get: api.GetPersonalAccessToken,
		activate: api.ActivatePersonalAccessToken, deactivate: api.DeactivatePersonalAccessToken, remove: api.DeletePersonalAccessToken,
	}, kindPersonalAccessToken, api, c, r, syncPeriod)
}
