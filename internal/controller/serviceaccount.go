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

// newServiceAccounts is the External of DfnsServiceAccount: the minting of identity.go with the
// service-account endpoints (docs/dfns-api.md §3.1). A service account is a user whose first
// access token is its token.
func newServiceAccounts(api dfns.API, c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsServiceAccount] {
	return newMinter(identityCalls[*v1alpha1.DfnsServiceAccount, dfns.ServiceAccount]{
		noun: "service account",
		view: func(sa *dfns.ServiceAccount) identityView {
			v := identityView{ID: sa.UserInfo.UserID, Name: sa.UserInfo.Name, Active: sa.UserInfo.IsActive}
			if len(sa.AccessTokens) > 0 {
				v.TokenID = sa.AccessTokens[0].TokenID
			}
			return v
		},
		token: func(sa *dfns.ServiceAccount) *dfns.AccessToken {
			for i := range sa.AccessTokens {
				if sa.AccessTokens[i].Token != "" {
					return &sa.AccessTokens[i]
				}
			}
			return nil
		},
		create: func(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, req mintRequest) (*dfns.ServiceAccount, error) {
			r := dfns.CreateServiceAccountRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
			if sa.Spec.DaysValid != nil {
				r.DaysValid = int(*sa.Spec.DaysValid)
			}
			return api.CreateServiceAccount(ctx, r)
		},
		rename: func(ctx context.Context, id, name string) (*dfns.ServiceAccount, error) {
			return api.UpdateServiceAccount(ctx, id, dfns.UpdateServiceAccountRequest{Name: name})
		},
		list: api.ListServiceAccounts, get: api.GetServiceAccount,
		activate: api.ActivateServiceAccount, deactivate: api.DeactivateServiceAccount, remove: api.DeleteServiceAccount,
	}, kindServiceAccount, api, c, r, syncPeriod)
}
