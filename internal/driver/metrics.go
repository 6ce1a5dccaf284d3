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
	"sync"

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

// ResourceKey names a resource in the per-resource metrics.
type ResourceKey struct{ Kind, Namespace, Name string }

// ResourceGauges publishes gauges with one series per resource each, labelled kind, namespace
// and name, and for some a label of their own whose value is kept with the resource's value
// (a condition's reason). A GaugeVec would keep a metric object per series, about 1 KB each,
// and find a resource's series by scanning all of them; this keeps a few words per resource
// and makes the series when the metrics are read.
type ResourceGauges struct {
	descs    []*prometheus.Desc
	labelled []bool // whether gauge i has a label of its own
	mu       sync.Mutex
	vals     map[ResourceKey][]gaugeValue
}

// gaugeValue is one gauge's value for one resource; label is the value of the gauge's own
// label, if it has one.
type gaugeValue struct {
	set   bool
	v     float64
	label string
}

// GaugeOpts describes one gauge of a ResourceGauges: Label is its own label ("" for none).
type GaugeOpts struct {
	Name, Help, Label string
}

// NewResourceGauges makes the gauges; Set and Unset name them by their index in opts.
func NewResourceGauges(opts ...GaugeOpts) *ResourceGauges {
	g := &ResourceGauges{vals: map[ResourceKey][]gaugeValue{}}
	for _, o := range opts {
		labels := []string{labelKind, labelNamespace, labelName}
		if o.Label != "" {
			labels = append(labels, o.Label)
		}
		g.descs = append(g.descs, prometheus.NewDesc(o.Name, o.Help, labels, nil))
		g.labelled = append(g.labelled, o.Label != "")
	}
	return g
}

// Set gives the resource's series of gauge i the value v, and label as the gauge's own label.
func (g *ResourceGauges) Set(k ResourceKey, i int, v float64, label string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vals := g.vals[k]
	if vals == nil {
		vals = make([]gaugeValue, len(g.descs))
		g.vals[k] = vals
	}
	vals[i] = gaugeValue{set: true, v: v, label: label}
}

// Unset drops the resource's series of gauge i.
func (g *ResourceGauges) Unset(k ResourceKey, i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vals := g.vals[k]
	if vals == nil {
		return
	}
	vals[i] = gaugeValue{}
	for _, v := range vals {
		if v.set {
			return
		}
	}
	delete(g.vals, k)
}

// Forget drops every series of the resource.
func (g *ResourceGauges) Forget(k ResourceKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.vals, k)
}

// Describe implements prometheus.Collector.
func (g *ResourceGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. The values are copied under the lock and the series
// made after, so that a scrape does not hold up the reconciles.
func (g *ResourceGauges) Collect(ch chan<- prometheus.Metric) {
	type entry struct {
		k    ResourceKey
		vals []gaugeValue
	}
	g.mu.Lock()
	all := make([]entry, 0, len(g.vals))
	for k, v := range g.vals {
		all = append(all, entry{k, append([]gaugeValue(nil), v...)})
	}
	g.mu.Unlock()
	for _, e := range all {
		for i, v := range e.vals {
			if !v.set {
				continue
			}
			labels := []string{e.k.Kind, e.k.Namespace, e.k.Name}
			if g.labelled[i] {
				labels = append(labels, v.label)
			}
			ch <- prometheus.MustNewConstMetric(g.descs[i], prometheus.GaugeValue, v.v, labels...)
		}
	}
}

// MustRegister registers collectors with controller-runtime's registry; one registered already
// (a test's second manager) is fine.
func MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
}

// Per-resource state, so that an alert can say what is broken: one series per resource, with
// the condition's reason as a label; a resource's series go with it.
const (
	gaugeReady = iota
	gaugeSynced
	gaugePending
)

var resourceGauges = NewResourceGauges(
	GaugeOpts{Name: "dfns_resource_ready", Label: "reason",
		Help: "1 when the resource's Ready condition is True, else 0; reason is the condition's reason."},
	GaugeOpts{Name: "dfns_resource_synced", Label: "reason",
		Help: "1 when the resource's Synced condition is True, else 0; reason is the condition's reason."},
	GaugeOpts{Name: "dfns_pending_approvals", Help: "1 while a change of the resource is held for approval in Dfns."},
)

func init() { MustRegister(resourceGauges) }

// observe publishes the resource's state as its status now says.
func observe(kind string, obj Object) {
	k := ResourceKey{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	conds := obj.Managed().Conditions
	for i, typ := range map[int]string{gaugeReady: v1alpha1.ConditionReady, gaugeSynced: v1alpha1.ConditionSynced} {
		c := meta.FindStatusCondition(conds, typ)
		if c == nil {
			resourceGauges.Unset(k, i)
			continue
		}
		v := 0.0
		if c.Status == metav1.ConditionTrue {
			v = 1
		}
		resourceGauges.Set(k, i, v, c.Reason)
	}
	if cr := obj.Managed().PendingChangeRequest; cr != nil && cr.Status == StatusPending {
		resourceGauges.Set(k, gaugePending, 1, "")
	} else {
		resourceGauges.Unset(k, gaugePending)
	}
}

// forget drops the series of a resource that is gone.
func forget(kind, namespace, name string) {
	resourceGauges.Forget(ResourceKey{Kind: kind, Namespace: namespace, Name: name})
}
