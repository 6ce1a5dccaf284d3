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

// Outcome reads the approval and maps its status to the change request's.
func (a dfnsApprovals) Outcome(ctx context.Context, approvalID string) (string, error) {
	ap, err := a.api.GetApproval(ctx, approvalID)
	if err != nil {
		return "", err
	}
	return approvalOutcome(ap.Status), nil
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
