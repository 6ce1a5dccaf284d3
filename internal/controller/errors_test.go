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
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// Values shared by the unit tests.
const (
	opGetPermission = "GetPermission"
	tPermID         = "pm-1"
	tSAID           = "us-1"
	tOpRead         = "Wallets:Read"
	tOpKeys         = "Keys:Read"
	tUID            = "uid-sa"
	tSAName         = "api"
	tDenied         = "Denied"
	tApproval       = "ap-1"
	tChange         = "cr-1"
	tPendingSince   = "2026-01-01T00:00:00Z"
)

// testSchemeUnit holds the types of the unit tests.
func testSchemeUnit(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	pendingErr = &dfns.Error{StatusCode: http.StatusAccepted, Operation: "UpdatePermission",
		ChangeRequest: &dfns.ChangeRequest{ID: tChange, ApprovalID: tApproval, Status: crPending}}
	rateErr      = &dfns.Error{StatusCode: http.StatusTooManyRequests, RetryAfter: 7 * time.Second, Operation: opGetPermission}
	forbiddenErr = &dfns.Error{StatusCode: http.StatusForbidden, MissingOperation: "Permissions:Read", Operation: opGetPermission}
)

func TestClassify(t *testing.T) {
	cases := map[string]struct {
		reason string
		err    error
		want   string // reason/policy
	}{
		"Stop":        {"terminal errors stop", driver.Stopf(v1alpha1.ReasonNameConflict, "x"), "NameConflict/stop"},
		"Wait":        {"waiting errors wait", driver.Waitf(v1alpha1.ReasonPermissionNotReady, "x"), "PermissionNotReady/wait"},
		"Pending":     {"202 waits for approval", pendingErr, "AwaitingApproval/wait"},
		"RateLimited": {"429 waits", rateErr, "RateLimited/wait"},
		"Forbidden":   {"403 waits", forbiddenErr, "Forbidden/wait"},
		"Conflict":    {"409 from Dfns is a name conflict", &dfns.Error{StatusCode: http.StatusConflict}, "NameConflict/stop"},
		"Unauthorized": {"401 is a credentials problem, retried", &dfns.Error{StatusCode: http.StatusUnauthorized},
			"CredentialsUnavailable/retry"},
		"Credentials": {"unusable credentials are retried", dfns.ErrCredentials, "CredentialsUnavailable/retry"},
		"Unknown":     {"an unknown outcome is retried", dfns.ErrOutcomeUnknown, "ReconcileError/retry"},
		"Wrapped":     {"wrapping keeps the class", errors.Join(errors.New("ctx"), rateErr), "RateLimited/wait"},
	}
	names := map[driver.Policy]string{driver.Retry: "retry", driver.Wait: "wait", driver.Stop: "stop"}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := classify(tc.err)
			if got := v.Reason + "/" + names[v.Policy]; got != tc.want {
				t.Errorf("%s\nclassify = %s, want %s", tc.reason, got, tc.want)
			}
			if v.Message == "" {
				t.Errorf("%s\nempty message", tc.reason)
			}
		})
	}
	if v := classify(forbiddenErr); !strings.Contains(v.Message, "Permissions:Read") {
		t.Errorf("the Forbidden message does not name the missing operation: %s", v.Message)
	}
	if v := classify(pendingErr); !strings.Contains(v.Message, tChange) || !strings.Contains(v.Message, tApproval) {
		t.Errorf("the AwaitingApproval message does not name the change request and approval: %s", v.Message)
	}
}

// createAsDriver runs a kind's create in the driver's order, with mark standing in for the
// create-pending patch: Prepare, Remove what is replaced, mark, the one create call.
func createAsDriver[T driver.Object, O any](ctx context.Context, ext driver.External[T, O], obj T, obs driver.Observation[O],
	mark func()) (driver.Creation, error) {
	prep, err := ext.Prepare(ctx, obj, obs)
	if err != nil {
		return driver.Creation{}, err
	}
	if obs.Replace != nil && obs.Replace.ID != "" {
		if err := ext.Remove(ctx, obj, obs, obs.Replace.ID); err != nil {
			return driver.Creation{}, err
		}
	}
	mark()
	return prep.Create(ctx)
}
