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

package driver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// Labels that name a resource.
const (
	labelKind      = "kind"
	labelNamespace = "namespace"
	labelName      = "name"
)

// Per-resource state, so that an alert can say what is broken: one series per resource, with
// the condition's reason as a label; a resource's series go when it does.
var (
	resourceReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_resource_ready",
		Help: "1 when the resource's Ready condition is True, else 0; reason is the condition's reason.",
	}, []string{labelKind, labelNamespace, labelName, "reason"})
	resourceSynced = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_resource_synced",
		Help: "1 when the resource's Synced condition is True, else 0; reason is the condition's reason.",
	}, []string{labelKind, labelNamespace, labelName, "reason"})
	pendingApprovals = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dfns_pending_approvals",
		Help: "1 while a change of the resource is held for approval in Dfns.",
	}, []string{labelKind, labelNamespace, labelName})
)

func init() {
	for _, c := range []prometheus.Collector{resourceReady, resourceSynced, pendingApprovals} {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}

// observe publishes the resource's state as its status now says.
func observe(kind string, obj Object) {
	ns, name := obj.GetNamespace(), obj.GetName()
	conds := obj.Managed().Conditions
	for _, g := range []struct {
		vec *prometheus.GaugeVec
		typ string
	}{{resourceReady, v1alpha1.ConditionReady}, {resourceSynced, v1alpha1.ConditionSynced}} {
		g.vec.DeletePartialMatch(prometheus.Labels{labelKind: kind, labelNamespace: ns, labelName: name})
		c := meta.FindStatusCondition(conds, g.typ)
		if c == nil {
			continue
		}
		v := 0.0
		if c.Status == metav1.ConditionTrue {
			v = 1
		}
		g.vec.WithLabelValues(kind, ns, name, c.Reason).Set(v)
	}
	if cr := obj.Managed().PendingChangeRequest; cr != nil && cr.Status == StatusPending {
		pendingApprovals.WithLabelValues(kind, ns, name).Set(1)
	} else {
		pendingApprovals.DeleteLabelValues(kind, ns, name)
	}
}

// forget drops the series of a resource that is gone.
func forget(kind, namespace, name string) {
	labels := prometheus.Labels{labelKind: kind, labelNamespace: namespace, labelName: name}
	resourceReady.DeletePartialMatch(labels)
	resourceSynced.DeletePartialMatch(labels)
	pendingApprovals.DeletePartialMatch(labels)
}
