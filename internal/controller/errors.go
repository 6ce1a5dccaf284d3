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
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// policy is what the driver does after a failure.
type policy int

const (
	// retry returns the error so that controller-runtime retries with backoff.
	retry policy = iota
	// wait requeues after a delay without an error: retrying sooner cannot help.
	wait
	// stop does not requeue: nothing changes until the spec (or the world) changes.
	stop
)

// verdict is the classification of an error.
type verdict struct {
	reason  string
	message string
	policy  policy
	after   time.Duration // for wait; 0 means the sync period
}

// stopError is a failure that retrying cannot fix (invalid spec, name taken, Secret conflict,
// change rejected): the resource waits for its spec to change.
type stopError struct{ reason, msg string }

func (e *stopError) Error() string { return e.msg }

// waitError is a failure that fixes itself with time (a reference not ready yet).
type waitError struct {
	reason, msg string
	after       time.Duration
}

func (e *waitError) Error() string { return e.msg }

// stopf returns a stopError with the given condition reason.
func stopf(reason, format string, args ...any) error {
	return &stopError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// waitf returns a waitError with the given condition reason, requeued after the sync period.
func waitf(reason, format string, args ...any) error {
	return &waitError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// rateLimitDefault is the wait after a 429 without Retry-After.
const rateLimitDefault = 10 * time.Second

// classify maps an error to a condition reason and what to do next. It is the one place that
// decides between "stop until the spec changes", "wait and requeue" and "retry with backoff".
func classify(err error) verdict {
	var se *stopError
	var we *waitError
	switch {
	case errors.As(err, &se):
		return verdict{reason: se.reason, message: se.msg, policy: stop}
	case errors.As(err, &we):
		return verdict{reason: we.reason, message: we.msg, policy: wait, after: we.after}
	}
	if cr, ok := dfns.IsPendingApproval(err); ok {
		return verdict{reason: v1alpha1.ReasonAwaitingApproval, message: approvalMessage(cr), policy: wait}
	}
	if after, ok := dfns.IsRateLimited(err); ok {
		if after <= 0 {
			after = rateLimitDefault
		}
		return verdict{reason: v1alpha1.ReasonRateLimited, message: "Dfns rate limit reached; retrying later", policy: wait, after: after}
	}
	switch {
	case errors.Is(err, dfns.ErrCredentials), dfns.IsUnauthorized(err):
		return verdict{reason: v1alpha1.ReasonCredentialsUnavailable,
			message: "the operator's Dfns credentials are unusable: " + err.Error(), policy: retry}
	case dfns.IsForbidden(err):
		return verdict{reason: v1alpha1.ReasonForbidden, message: forbiddenMessage(err), policy: wait}
	case dfns.IsConflict(err):
		return verdict{reason: v1alpha1.ReasonNameConflict,
			message: "Dfns refused the name as taken; choose another name: " + err.Error(), policy: stop}
	case apierrors.IsConflict(err):
		return verdict{reason: v1alpha1.ReasonReconcileError, message: "the resource changed while it was reconciled", policy: retry}
	}
	return verdict{reason: v1alpha1.ReasonReconcileError, message: err.Error(), policy: retry}
}

// approvalMessage tells the user which change request and approval to act on.
func approvalMessage(cr *dfns.ChangeRequest) string {
	if cr == nil {
		return "a Dfns policy requires approval of the change"
	}
	if cr.ApprovalID == "" {
		return fmt.Sprintf("change request %s waits for approval in Dfns", cr.ID)
	}
	return fmt.Sprintf("change request %s waits for approval %s in Dfns", cr.ID, cr.ApprovalID)
}

// forbiddenMessage names the Dfns operation the operator's identity lacks, when Dfns said it.
func forbiddenMessage(err error) string {
	if op := dfns.MissingOperation(err); op != "" {
		return fmt.Sprintf("the operator's Dfns identity lacks the permission for operation %s; grant it in Dfns", op)
	}
	return "the operator's Dfns identity is not allowed to do this: " + err.Error()
}
