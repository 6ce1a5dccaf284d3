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
	crPending  = "Pending"
	crApplied  = "Applied"
	crRejected = "Rejected"
	crFailed   = "Failed"
	apApproved = "Approved"
)

// approvable is a resource whose Dfns object shows the change request held for it.
type approvable interface {
	driver.Object
}

// followChange polls the change request recorded in status: still pending → returned (nothing
// is sent while it is); applied → cleared; rejected → ChangeRejected until the spec changes
// past the generation it carried. shown is the change request the Dfns object shows pending.
func followChange(ctx context.Context, api dfns.PoliciesAPI, obj approvable, shown *dfns.ChangeRequest) (*driver.ChangeRequest, error) {
	cr := obj.Managed().PendingChangeRequest
	if cr == nil {
		return nil, nil
	}
	if cr.Status == crPending {
		status, err := changeStatus(ctx, api, cr, shown)
		if err != nil {
			return nil, err
		}
		cr.Status = status
	}
	switch cr.Status {
	case crPending:
		return &driver.ChangeRequest{ID: cr.ID, ApprovalID: cr.ApprovalID, Status: crPending}, nil
	case crRejected, crFailed:
		if cr.Generation == obj.GetGeneration() {
			return nil, driver.Stopf(v1alpha1.ReasonChangeRejected,
				"change request %s (approval %s) was rejected in Dfns; change the spec to try again", cr.ID, cr.ApprovalID)
		}
	}
	obj.Managed().PendingChangeRequest = nil
	return nil, nil
}

// changeStatus finds out what became of a pending change request: pending while the object
// still shows it, else from its approval when it has one, else applied.
func changeStatus(ctx context.Context, api dfns.PoliciesAPI, cr *v1alpha1.ChangeRequestStatus, shown *dfns.ChangeRequest) (string, error) {
	if shown != nil && shown.ID == cr.ID {
		return crPending, nil
	}
	if cr.ApprovalID == "" {
		return crApplied, nil
	}
	ap, err := api.GetApproval(ctx, cr.ApprovalID)
	if err != nil {
		return "", fmt.Errorf("reading approval %s: %w", cr.ApprovalID, err)
	}
	return approvalOutcome(ap.Status), nil
}

// approvalOutcome maps an approval's status to its change request's.
func approvalOutcome(status string) string {
	switch status {
	case crPending:
		return crPending
	case apApproved:
		return crApplied
	}
	return crRejected
}

// archive archives a Dfns object whose changes a policy may hold for approval: an archive
// already waiting is followed, never sent again; an object archived or gone already is
// success. read returns the change request the object shows pending and whether it is
// archived; a 202 from do reaches the driver, which records it.
func archive(ctx context.Context, api dfns.PoliciesAPI, obj approvable, what string,
	read func(context.Context) (*dfns.ChangeRequest, bool, error), do func(context.Context) error) error {
	shown, archived, err := read(ctx)
	if dfns.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	pending, err := followChange(ctx, api, obj, shown)
	if err != nil {
		return err
	}
	if pending != nil {
		return driver.Waitf(v1alpha1.ReasonAwaitingApproval, "%s", driver.ApprovalMessage(pending))
	}
	if archived {
		return nil
	}
	if err := do(ctx); err != nil && !dfns.IsNotFound(err) {
		return fmt.Errorf("archiving %s: %w", what, err)
	}
	return nil
}
