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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// Token metrics, so that an alert can fire before a token expires (say, when
// dfns_token_expiration_timestamp_seconds - time() falls under a day while renewal keeps
// failing): one series per resource, kept as driver.ResourceGauges keeps them.
const (
	gaugeTokenExpiration = iota
	gaugeTokenRenewal
)

var (
	tokenGauges = driver.NewResourceGauges(
		driver.GaugeOpts{Name: "dfns_token_expiration_timestamp_seconds",
			Help: "When the token in a DfnsServiceAccount's or DfnsPersonalAccessToken's Secret expires, as a Unix time."},
		driver.GaugeOpts{Name: "dfns_token_renewal_timestamp_seconds",
			Help: "When the operator mints the successor of the token in a DfnsServiceAccount's or DfnsPersonalAccessToken's Secret, as a Unix time."},
	)
	connectionReadyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_connection_ready",
		Help: "1 when the connection's credentials work (its Ready condition), else 0.",
	}, []string{"connection"})
)

func init() { driver.MustRegister(tokenGauges, connectionReadyGauge) }

// tokenKey names the resource's token series.
func tokenKey(kind string, obj mintable) driver.ResourceKey {
	return driver.ResourceKey{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// observeToken publishes the expiry and renewal times of the resource's token.
func observeToken(kind string, obj mintable) {
	ts := obj.GetTokenStatus()
	if ts.ExpiresAt != nil {
		tokenGauges.Set(tokenKey(kind, obj), gaugeTokenExpiration, float64(ts.ExpiresAt.Unix()), "")
	}
	if ts.RenewAt != nil {
		tokenGauges.Set(tokenKey(kind, obj), gaugeTokenRenewal, float64(ts.RenewAt.Unix()), "")
	}
}

// forgetToken drops the resource's series: it is being deleted.
func forgetToken(kind string, obj mintable) {
	tokenGauges.Forget(tokenKey(kind, obj))
}
