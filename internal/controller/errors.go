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

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// rateLimitDefault is the wait after a 429 without Retry-After.
const rateLimitDefault = 10 * time.Second

// dfnsErrors tells the driver what the Dfns client's errors mean.
type dfnsErrors struct{}

var _ driver.ErrorClassifier = dfnsErrors{}

// Classify maps the Dfns client's errors to conditions: a held change waits for approval, a
// 429 waits for Retry-After, unusable credentials are retried, a missing Dfns permission waits,
// a 409 is a name taken.
func (dfnsErrors) Classify(err error) (driver.Verdict, bool) {
	if cr, ok := (dfnsErrors{}).Pending(err); ok {
		return driver.Verdict{Reason: v1alpha1.ReasonAwaitingApproval, Message: driver.ApprovalMessage(cr), Policy: driver.Wait}, true
	}
	if after, ok := dfns.IsThrottled(err); ok {
		// The connection's own limiter: a requeue, not a condition. Reporting it would write
		// status for every resource of a busy connection.
		return driver.Verdict{Reason: v1alpha1.ReasonRateLimited, Message: err.Error(), Policy: driver.Requeue, After: after}, true
	}
	if after, ok := dfns.IsRateLimited(err); ok {
		if after <= 0 {
			after = rateLimitDefault
		}
		return driver.Verdict{Reason: v1alpha1.ReasonRateLimited, Message: "Dfns rate limit reached; retrying later",
			Policy: driver.Wait, After: after}, true
	}
	switch {
	case errors.Is(err, dfns.ErrCredentials), dfns.IsUnauthorized(err):
		return driver.Verdict{Reason: v1alpha1.ReasonCredentialsUnavailable,
			Message: "the operator's Dfns credentials are unusable: " + err.Error(), Policy: driver.Retry}, true
	case dfns.IsForbidden(err):
		return driver.Verdict{Reason: v1alpha1.ReasonForbidden, Message: forbiddenMessage(err), Policy: driver.Wait}, true
	case dfns.IsConflict(err):
		return driver.Verdict{Reason: v1alpha1.ReasonNameConflict,
			Message: "Dfns refused the name as taken; choose another name: " + err.Error(), Policy: driver.Stop}, true
	}
	return driver.Verdict{}, false
}

// Refused reports whether Dfns refused the call (a 4xx other than 408), so that it made nothing.
func (dfnsErrors) Refused(err error) bool { return dfns.IsRefused(err) }

// Pending returns the change request of an answer 202.
func (dfnsErrors) Pending(err error) (*driver.ChangeRequest, bool) {
	cr, ok := dfns.IsPendingApproval(err)
	if !ok {
		return nil, false
	}
	return toChangeRequest(cr), true
}

// toChangeRequest converts the client's change request for the driver; nil stays nil.
func toChangeRequest(cr *dfns.ChangeRequest) *driver.ChangeRequest {
	if cr == nil {
		return nil
	}
	return &driver.ChangeRequest{ID: cr.ID, ApprovalID: cr.ApprovalID, Status: cr.Status, Requester: cr.Requester.UserID}
}

// classify is the driver's classification with the Dfns client's errors.
func classify(err error) driver.Verdict { return driver.Classify(dfnsErrors{}, err) }

// forbiddenMessage names the Dfns operation the operator's identity lacks, when Dfns said it.
func forbiddenMessage(err error) string {
	if op := dfns.MissingOperation(err); op != "" {
		return fmt.Sprintf("the operator's Dfns identity lacks the permission for operation %s; grant it in Dfns", op)
	}
	return "the operator's Dfns identity is not allowed to do this: " + err.Error()
}
