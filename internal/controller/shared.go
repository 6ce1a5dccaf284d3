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
	"fmt"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// Change request and approval statuses the controllers act on.
const (
	crPending  = driver.StatusPending
	apApproved = "Approved"
)

// dfnsApprovals tells the driver what became of a change held for approval, from its approval.
type dfnsApprovals struct{ api dfns.PoliciesAPI }

var _ driver.Approvals = dfnsApprovals{}

// Outcome reads the change request's approval and maps its status to the change request's.
// Dfns may answer a held change without an approvalId (docs/dfns-compatibility.md): the
// approval is then found by the change request ID its activity holds, among the pending ones
// of the requester first, then among all of the requester's.
func (a dfnsApprovals) Outcome(ctx context.Context, cr driver.ChangeRequest) (driver.ChangeRequest, error) {
	if cr.ApprovalID == "" {
		ap, err := a.find(ctx, cr)
		if err != nil || ap == nil {
			return cr, err
		}
		cr.ApprovalID, cr.Status = ap.ID, approvalOutcome(ap.Status)
		return cr, nil
	}
	ap, err := a.api.GetApproval(ctx, cr.ApprovalID)
	if err != nil {
		return cr, err
	}
	cr.Status = approvalOutcome(ap.Status)
	return cr, nil
}

// find returns the approval holding change request cr, nil when none does.
func (a dfnsApprovals) find(ctx context.Context, cr driver.ChangeRequest) (*dfns.Approval, error) {
	filters := []dfns.ApprovalFilter{{Status: crPending, InitiatorID: cr.Requester}}
	if cr.Requester != "" {
		// Decided already: only the requester's own, so as not to read every approval of
		// the organisation (each transaction signed under a policy makes one).
		filters = append(filters, dfns.ApprovalFilter{InitiatorID: cr.Requester})
	}
	for _, f := range filters {
		all, err := a.api.ListApprovals(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("listing approvals: %w", err)
		}
		for i := range all {
			if all[i].ChangeRequestID() == cr.ID {
				return &all[i], nil
			}
		}
	}
	return nil, nil
}

// approvalOutcome maps an approval's status to its change request's.
func approvalOutcome(status string) string {
	switch status {
	case crPending:
		return driver.StatusPending
	case apApproved:
		return driver.StatusApplied
	}
	return driver.StatusRejected
}

// archive archives a Dfns object; one archived or gone already is success. A change of ours
// held for approval was followed by the driver before it called Delete; a 202 from do reaches
// the driver, which records it. read tells whether the object is archived.
func archive(ctx context.Context, what string, read func(context.Context) (bool, error), do func(context.Context) error) error {
	archived, err := read(ctx)
	if dfns.IsNotFound(err) || err == nil && archived {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	if err := do(ctx); err != nil && !dfns.IsNotFound(err) {
		return fmt.Errorf("archiving %s: %w", what, err)
	}
	return nil
}

// secretless is the part of an External shared by kinds without a one-time secret whose
// objects are replaced only once they are gone: permissions and policies. Status holds only
// the ID, which the driver records.
type secretless[T driver.Object, O any] struct{}

// Secret: the kind publishes none.
func (secretless[T, O]) Secret(T) (string, v1alpha1.SecretTemplate) {
	return "", v1alpha1.SecretTemplate{}
}

// Remove has nothing to do: the object is replaced only once it is gone.
func (secretless[T, O]) Remove(context.Context, T, driver.Observation[O], string) error { return nil }

// Report has nothing to record.
func (secretless[T, O]) Report(T, driver.Observation[O]) {}

// validName refuses a Dfns name longer than Dfns takes, which the API server cannot check.
func validName(name string) error {
	if len(name) > maxDfnsNameLen {
		return driver.Stopf(v1alpha1.ReasonInvalidSpec, "the Dfns name %q is longer than %d characters; set a shorter spec.name", name, maxDfnsNameLen)
	}
	return nil
}

// findNamed returns the object of all named name: ours when the create-pending mark names it
// (a lost create answer), a NameConflict otherwise; nil when there is none.
func findNamed[D any](all []D, nameOf func(*D) string, name, marked, noun string) (*D, error) {
	for i := range all {
		if nameOf(&all[i]) != name {
			continue
		}
		if marked != name {
			return nil, driver.Stopf(v1alpha1.ReasonNameConflict,
				"a Dfns %s named %q exists and was not made by this resource; set another spec.name", noun, name)
		}
		return &all[i], nil
	}
	return nil, nil
}
