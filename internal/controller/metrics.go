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
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Token metrics, so that an alert can fire before a token expires (say, when
// dfns_token_expiration_timestamp_seconds - time() falls under a day while renewal keeps
// failing).
var (
	tokenExpiration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_token_expiration_timestamp_seconds",
		Help: "When the token in a DfnsServiceAccount's or DfnsPersonalAccessToken's Secret expires, as a Unix time.",
	}, []string{"kind", "namespace", "name"})
	connectionReadyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_connection_ready",
		Help: "1 when the connection's credentials work (its Ready condition), else 0.",
	}, []string{"connection"})
	tokenRenewal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_token_renewal_timestamp_seconds",
		Help: "When the operator mints the successor of the token in a DfnsServiceAccount's or DfnsPersonalAccessToken's Secret, as a Unix time.",
	}, []string{"kind", "namespace", "name"})
)

func init() {
	for _, c := range []prometheus.Collector{tokenExpiration, tokenRenewal, connectionReadyGauge} {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}

// observeToken publishes the expiry and renewal times of the resource's token.
func observeToken(kind string, obj mintable) {
	ts := obj.GetTokenStatus()
	if ts.ExpiresAt != nil {
		tokenExpiration.WithLabelValues(kind, obj.GetNamespace(), obj.GetName()).Set(float64(ts.ExpiresAt.Unix()))
	}
	if ts.RenewAt != nil {
		tokenRenewal.WithLabelValues(kind, obj.GetNamespace(), obj.GetName()).Set(float64(ts.RenewAt.Unix()))
	}
}

// forgetToken drops the resource's series: it is being deleted.
func forgetToken(kind string, obj mintable) {
	tokenExpiration.DeleteLabelValues(kind, obj.GetNamespace(), obj.GetName())
	tokenRenewal.DeleteLabelValues(kind, obj.GetNamespace(), obj.GetName())
}
