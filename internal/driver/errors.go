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
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// Policy is what the driver does after a failure.
type Policy int

const (
	// Retry returns the error so that controller-runtime retries with backoff.
	Retry Policy = iota
	// Wait requeues after a delay without an error: retrying sooner cannot help.
	Wait
	// Stop does not requeue: nothing changes until the spec (or the world) changes.
	Stop
	// Requeue tries again after the delay and reports nothing: the failure is the operator's
	// own pacing (a connection's rate limit), not the resource's state.
	Requeue
)

// Verdict is the classification of an error: the Synced reason and message, and what to do.
type Verdict struct {
	Reason  string
	Message string
	Policy  Policy
	// After is the delay of Wait; 0 means the sync period.
	After time.Duration
	// Quiet, with Wait, waits without a word while the resource has reported nothing yet
	// (Deferf).
	Quiet bool
}

// ChangeRequest is a change Dfns holds for approval (an answer 202).
type ChangeRequest struct {
	ID, ApprovalID, Status string
	// Requester is the Dfns user who asked for the change, when Dfns said.
	Requester string
}

// ErrorClassifier knows the errors of the Dfns client, which the driver does not import.
type ErrorClassifier interface {
	// Classify returns the verdict of an error it knows; ok is false for any other error.
	Classify(err error) (v Verdict, ok bool)
	// Refused reports whether Dfns refused a call, so that the call made nothing.
	Refused(err error) bool
	// Pending returns the change request of a change Dfns holds for approval.
	Pending(err error) (*ChangeRequest, bool)
}

// stopError is a failure that retrying cannot fix (invalid spec, name taken, Secret conflict,
// change rejected): the resource waits for its spec to change.
type stopError struct{ reason, msg string }

func (e *stopError) Error() string { return e.msg }

// waitError is a failure that fixes itself with time (a reference not ready yet).
type waitError struct {
	reason, msg string
	after       time.Duration
	quiet       bool
}

func (e *waitError) Error() string { return e.msg }

// Stopf returns an error that stops the reconcile until the spec changes, with the given
// condition reason.
func Stopf(reason, format string, args ...any) error {
	return &stopError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Waitf returns an error that requeues the resource after the sync period, with the given
// condition reason.
func Waitf(reason, format string, args ...any) error {
	return &waitError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// goneError is Update's finding that the object, though Dfns still shows it, is beyond repair:
// archived (Dfns may keep a deleted object listed, inactive, docs/dfns-compatibility.md).
type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// Gone wraps Update's error when the object cannot be brought back (Dfns keeps it archived):
// the driver replaces it as if it were gone.
func Gone(err error) error { return &goneError{err: err} }

// isGone reports whether err is from Gone.
func isGone(err error) bool {
	var g *goneError
	return errors.As(err, &g)
}

// Deferf returns a wait for a referenced resource that has not been reconciled yet (it has no
// condition at all): a resource that has reported nothing yet waits for it without a word (no
// condition, no event, no status write), and the watch of the reference brings it back. One
// that has reported before reports the wait as Waitf does. A batch applied at once (accounts
// with their assignments) so costs no status write and no event per resource for the wait.
func Deferf(reason, format string, args ...any) error {
	return &waitError{reason: reason, msg: fmt.Sprintf(format, args...), quiet: true}
}

// StopReason returns the reason of a Stopf error.
func StopReason(err error) (string, bool) {
	var se *stopError
	if errors.As(err, &se) {
		return se.reason, true
	}
	return "", false
}

// classify maps an error to a condition reason and what to do next. It is the one place that
// decides between "stop until the spec changes", "wait and requeue" and "retry with backoff".
func Classify(errs ErrorClassifier, err error) Verdict {
	var se *stopError
	var we *waitError
	switch {
	case errors.As(err, &se):
		return Verdict{Reason: se.reason, Message: se.msg, Policy: Stop}
	case errors.As(err, &we):
		return Verdict{Reason: we.reason, Message: we.msg, Policy: Wait, After: we.after, Quiet: we.quiet}
	}
	if errs != nil {
		if v, ok := errs.Classify(err); ok {
			return v
		}
	}
	if apierrors.IsConflict(err) {
		return Verdict{Reason: v1alpha1.ReasonReconcileError, Message: "the resource changed while it was reconciled", Policy: Retry}
	}
	return Verdict{Reason: v1alpha1.ReasonReconcileError, Message: err.Error(), Policy: Retry}
}

// ApprovalMessage tells the user which change request and approval to act on.
func ApprovalMessage(cr *ChangeRequest) string {
	if cr == nil {
		return "a Dfns policy requires approval of the change"
	}
	if cr.ApprovalID == "" {
		return fmt.Sprintf("change request %s waits for approval in Dfns", cr.ID)
	}
	return fmt.Sprintf("change request %s waits for approval %s in Dfns", cr.ID, cr.ApprovalID)
}
