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

package main

import (
	"cmp"
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// changePending is the status of a change request Dfns still holds (internal/driver).
const changePending = "Pending"

// held is a resource whose change a Dfns policy holds for approval.
type held struct {
	obj managedObject
	cr  *v1alpha1.ChangeRequestStatus
}

// approvals lists every resource whose change a Dfns policy holds for approval, with the
// approval IDs to decide on, in the plugin's namespace or, with all, in every namespace.
func (p *plugin) approvals(ctx context.Context, all bool) error {
	namespace := p.namespace
	if all {
		namespace = ""
	}
	w, err := loadWorld(ctx, p.c, namespace)
	if err != nil {
		return err
	}
	var rows []held
	for _, o := range w.objs {
		if cr := o.Managed().PendingChangeRequest; cr != nil && cr.Status == changePending {
			rows = append(rows, held{o, cr})
		}
	}
	if len(rows) == 0 {
		where := "in namespace " + p.namespace
		if all {
			where = "in any namespace"
		}
		p.out.printf("No resource %s waits for a Dfns approval.\n", where)
		return p.out.err
	}
	slices.SortFunc(rows, func(a, b held) int {
		return cmp.Or(cmp.Compare(a.obj.GetNamespace(), b.obj.GetNamespace()),
			cmp.Compare(kindOf(a.obj), kindOf(b.obj)), cmp.Compare(a.obj.GetName(), b.obj.GetName()))
	})
	tw := newTable(p.out)
	tw.println("NAMESPACE\tKIND\tNAME\tOPERATION\tCHANGE REQUEST\tAPPROVAL\tWAITING")
	for _, r := range rows {
		waiting := "-"
		if c := meta.FindStatusCondition(r.obj.Managed().Conditions, v1alpha1.ConditionSynced); c != nil &&
			c.Reason == v1alpha1.ReasonAwaitingApproval {
			waiting = duration.HumanDuration(p.now.Sub(c.LastTransitionTime.Time))
		}
		approval := r.cr.ApprovalID
		if approval == "" {
			approval = "<none: Dfns gave no approval ID>"
		}
		tw.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.obj.GetNamespace(), kindOf(r.obj), r.obj.GetName(),
			orNone(r.cr.Operation), r.cr.ID, approval, waiting)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	p.out.println("\nApprove or deny each in the Dfns dashboard, or with POST /v2/policy-approvals/<APPROVAL>/decisions " +
		"{\"value\": \"Approved\"|\"Denied\"} (Policies:Approvals:Approve); the operator polls and goes on.")
	return p.out.err
}
