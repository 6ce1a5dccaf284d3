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
	"strings"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// users is the driver.External of DfnsUser: a person of the organisation, invited by e-mail
// (docs/dfns-api.md §3.4). The e-mail is the user's natural key: a lost answer to an invitation
// is found again by it (the create-pending mark names it), and a user who exists already is
// found by it too, which the driver treats as adoption (allowed only where the connection
// allows it, and never of a user another resource manages). No Secret is published: a person
// registers their own credentials through the invitation.
type users struct {
	secretless[*v1alpha1.DfnsUser, *dfns.User]
	link
	// lists shares one list of the connection's users per sync period among the drift checks.
	lists *driver.ListCache[dfns.User]
}

var _ driver.External[*v1alpha1.DfnsUser, *dfns.User] = (*users)(nil)
var _ adapter[*v1alpha1.DfnsUser, *dfns.User] = (*users)(nil)

// bind returns the kind's calls through one connection.
func (e *users) bind(l link) driver.External[*v1alpha1.DfnsUser, *dfns.User] {
	cp := *e
	cp.link = l
	return &cp
}

// emailKey is the natural key of a user: its e-mail, in lower case (e-mail addresses are
// matched without regard to case, as Dfns refuses a second user whose e-mail differs only so).
func emailKey(email string) string { return strings.ToLower(email) }

// Validate refuses the user any of the manager's connections logs in as: a DfnsUser could
// otherwise deactivate or delete the identity the operator acts as, for its own connection or
// for another namespace's.
func (e *users) Validate(_ context.Context, u *v1alpha1.DfnsUser) error {
	if e.isOperator(u.Spec.Email) {
		return driver.Stopf(v1alpha1.ReasonNotPermitted, "%s is a Dfns user the operator logs in as (through connection %s or "+
			"another): the operator never manages its own identities", u.Spec.Email, u.GetConnectionRef())
	}
	return nil
}

// Observe reads the recorded user and compares it with the spec; with no recorded ID it looks
// for the user by e-mail (see find).
func (e *users) Observe(ctx context.Context, u *v1alpha1.DfnsUser, rec driver.Recorded) (driver.Observation[*dfns.User], error) {
	id := rec.ID
	if id == "" {
		return e.find(ctx, u)
	}
	got, err := e.view(ctx, id)
	if dfns.IsNotFound(err) {
		if rec.Marked != "" {
			// An invitation sent again after this one vanished may have been made, its answer lost.
			obs, err := e.find(ctx, u)
			if err != nil || obs.Exists {
				return obs, err
			}
		}
		return driver.Observation[*dfns.User]{Replace: &driver.Replacement{Reason: driver.EventRecreated,
			Message: fmt.Sprintf("user %s was deleted in Dfns; invited %s again", id, u.Spec.Email)}}, nil
	}
	if err != nil {
		return driver.Observation[*dfns.User]{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	return e.compare(u, got)
}

// view reads user id from this sync period's list when it is there, else with a GET: only
// Dfns' answer to the GET says it is gone.
func (e *users) view(ctx context.Context, id string) (*dfns.User, error) {
	if u, found, _, _ := e.lists.Find(ctx, e.key, 0, id, e.list); found {
		return &u, nil
	}
	return e.api.GetUser(ctx, id)
}

// userFields are what the kept list of people is searched by: the user ID.
func userFields(u dfns.User) []string { return []string{u.UserID} }

// list lists the organisation's people.
func (e *users) list(ctx context.Context) ([]dfns.User, error) {
	return e.api.ListUsers(ctx, dfns.UserKindEmployee)
}

// find looks the e-mail up among the organisation's people, in a fresh list: what is missing
// is invited, so absence is never concluded from a kept list. A user found with a
// create-pending mark naming the e-mail is this resource's (an invitation whose answer was
// lost); without one it is someone else's, which the driver adopts only where the connection
// allows adoption and no other resource manages it.
func (e *users) find(ctx context.Context, u *v1alpha1.DfnsUser) (driver.Observation[*dfns.User], error) {
	all, err := e.lists.Fetch(ctx, e.key, e.list)
	if err != nil {
		return driver.Observation[*dfns.User]{}, fmt.Errorf("listing users: %w", err)
	}
	for i := range all {
		if all[i].IsServiceAccount || emailKey(all[i].Email()) != emailKey(u.Spec.Email) {
			continue
		}
		return e.compare(u, &all[i])
	}
	return driver.Observation[*dfns.User]{}, nil
}

// compare reports whether the user is active and requires SSO as the spec says. A user with
// another e-mail or kind (named by a claimed ID) is refused: the resource describes someone else.
func (e *users) compare(u *v1alpha1.DfnsUser, got *dfns.User) (driver.Observation[*dfns.User], error) {
	if emailKey(got.Email()) != emailKey(u.Spec.Email) {
		return driver.Observation[*dfns.User]{}, driver.Stopf(v1alpha1.ReasonInvalidSpec,
			"Dfns user %s has the e-mail %s, not %s: it is not the person this resource describes", got.UserID, got.Email(), u.Spec.Email)
	}
	if got.IsServiceAccount || got.Kind != "" && got.Kind != string(u.UserKind()) {
		return driver.Observation[*dfns.User]{}, driver.Stopf(v1alpha1.ReasonInvalidSpec,
			"Dfns user %s is not a %s user", got.UserID, u.UserKind())
	}
	var diff []string
	if got.IsActive != u.WantActive() {
		diff = append(diff, fmt.Sprintf("active %t, want %t", got.IsActive, u.WantActive()))
	}
	if got.IsSSORequired != u.WantSSORequired() {
		diff = append(diff, fmt.Sprintf("isSSORequired %t, want %t", got.IsSSORequired, u.WantSSORequired()))
	}
	return driver.Observation[*dfns.User]{ID: got.UserID, Exists: true, UpToDate: len(diff) == 0, Diff: strings.Join(diff, ", "),
		Current: got, Marker: emailKey(got.Email())}, nil
}

// Report records whether the user registered and is active, for the user this resource
// records: a user only found by e-mail may yet be refused (someone else's), and nothing of
// it is shown until it is adopted.
func (e *users) Report(u *v1alpha1.DfnsUser, obs driver.Observation[*dfns.User]) {
	if !obs.Exists || obs.Current == nil || obs.ID != u.Status.UserID {
		return
	}
	reportUser(u, obs.Current)
}

// reportUser writes what Dfns shows of the user into status.
func reportUser(u *v1alpha1.DfnsUser, got *dfns.User) {
	registered, active := got.IsRegistered, got.IsActive
	u.Status.Registered, u.Status.Active = &registered, &active
}

// Prepare readies the invitation. Its externalId is the resource's UID; it is found again by
// its e-mail, which the create-pending mark records.
func (e *users) Prepare(_ context.Context, u *v1alpha1.DfnsUser, _ driver.Observation[*dfns.User]) (driver.Prepared, error) {
	req := dfns.CreateUserRequest{Email: u.Spec.Email, Kind: string(u.UserKind()), ExternalID: string(u.UID), IsSSORequired: u.WantSSORequired()}
	return driver.Prepared{Name: emailKey(u.Spec.Email), Create: func(ctx context.Context) (driver.Creation, error) {
		got, err := e.api.CreateUser(ctx, req)
		if err != nil {
			e.lists.Invalidate(e.key)
			if dfns.IsConflict(err) {
				return driver.Creation{}, fmt.Errorf("inviting %s: Dfns has a user with this e-mail already, which this resource did not "+
					"invite: %w", req.Email, err)
			}
			return driver.Creation{}, fmt.Errorf("inviting %s: %w", req.Email, err)
		}
		e.lists.Append(e.key, *got)
		reportUser(u, got)
		// Ready from the answer when it shows the user as the spec asks; else a second look acts.
		return driver.Creation{ID: got.UserID, UpToDate: got.IsActive == u.WantActive() && got.IsSSORequired == u.WantSSORequired() &&
			emailKey(got.Email()) == emailKey(u.Spec.Email)}, nil
	}}, nil
}

// Update sets isSSORequired, then activates or deactivates the user as spec.active says.
func (e *users) Update(ctx context.Context, u *v1alpha1.DfnsUser, obs driver.Observation[*dfns.User]) ([]driver.Note, error) {
	got := obs.Current
	if got == nil {
		return nil, fmt.Errorf("no observed user to update")
	}
	defer e.lists.Invalidate(e.key)
	var notes []driver.Note
	if got.IsSSORequired != u.WantSSORequired() {
		if _, err := e.api.UpdateUser(ctx, obs.ID, dfns.UpdateUserRequest{IsSSORequired: u.WantSSORequired()}); err != nil {
			return notes, fmt.Errorf("setting isSSORequired=%t on user %s: %w", u.WantSSORequired(), obs.ID, err)
		}
		notes = append(notes, driver.Note{Reason: driver.EventUpdated,
			Message: fmt.Sprintf("set isSSORequired=%t on user %s", u.WantSSORequired(), obs.ID)})
	}
	if got.IsActive == u.WantActive() {
		return notes, nil
	}
	if !u.WantActive() {
		set, err := e.api.DeactivateUser(ctx, obs.ID)
		if err != nil {
			return notes, refusedUser("deactivating", obs.ID, err, "")
		}
		reportUser(u, set)
		return append(notes, driver.Note{Reason: driver.EventDeactivated,
			Message: fmt.Sprintf("deactivated user %s (%s) as spec.active asks", obs.ID, u.Spec.Email)}), nil
	}
	set, err := e.api.ActivateUser(ctx, obs.ID)
	if dfns.IsBadRequest(err) {
		// Dfns may keep a deleted user listed, inactive, and refuse to activate it
		// (docs/dfns-api.md §3.4); the e-mail stays taken, so inviting anew cannot help.
		return notes, driver.Stopf(v1alpha1.ReasonInvalidSpec, "Dfns refused to activate user %s (%s): %s; a deleted user cannot "+
			"be brought back: set active: false, or invite another e-mail", obs.ID, u.Spec.Email, err.Error())
	}
	if err != nil {
		return notes, fmt.Errorf("activating user %s: %w", obs.ID, err)
	}
	reportUser(u, set)
	return append(notes, driver.Note{Reason: driver.EventReactivated,
		Message: fmt.Sprintf("user %s (%s) was inactive; activated it as spec.active asks", obs.ID, u.Spec.Email)}), nil
}

// refusedUser words a failed deactivation or deletion. Dfns refuses (400) to let go of a user
// an active policy names as an approver unless the call says force, which bypasses that check
// (docs/dfns-compatibility.md); the operator never forces, as a policy left with approvers who
// cannot act may never be approved again. The refusal waits, saying what to do, and is tried
// again each sync period, so it goes through once the policy no longer names the user. hint
// adds what else can be done.
func refusedUser(doing, id string, err error, hint string) error {
	if dfns.IsBadRequest(err) {
		return driver.Waitf(v1alpha1.ReasonDeletionRefused, "Dfns refused %s user %s: %s. If a policy names the user as approver, "+
			"remove them from the policy's approvers first%s", doing, id, err.Error(), hint)
	}
	return fmt.Errorf("%s user %s: %w", doing, id, err)
}

// orphanHint is what else a deletion Dfns refuses can do.
const orphanHint = ", or set deletionPolicy: Orphan to keep the user in Dfns as it is"

// Delete handles the user per deletionPolicy: Deactivate (the default) keeps the user and
// their history in Dfns, unable to act; Delete archives the user. One already gone is fine.
func (e *users) Delete(ctx context.Context, u *v1alpha1.DfnsUser, id string) error {
	if e.isOperator(u.Spec.Email) {
		// It became one after the resource recorded it (a connection's credentials changed).
		return driver.Waitf(v1alpha1.ReasonDeletionRefused, "%s is now a Dfns user the operator logs in as: it is not "+
			"deactivated or deleted; set deletionPolicy: Orphan to let the resource go", u.Spec.Email)
	}
	defer e.lists.Invalidate(e.key)
	if u.GetDeletionPolicy() == v1alpha1.DeletionPolicyDeactivate {
		if _, err := e.api.DeactivateUser(ctx, id); err != nil && !dfns.IsNotFound(err) {
			return refusedUser("deactivating", id, err, orphanHint)
		}
		return nil
	}
	if err := e.api.DeleteUser(ctx, id); err != nil && !dfns.IsNotFound(err) {
		return refusedUser("deleting", id, err, orphanHint)
	}
	return nil
}

// Retire handles a superseded user per deletionPolicy (users are not rotated; for
// completeness).
func (e *users) Retire(ctx context.Context, u *v1alpha1.DfnsUser, id string) error {
	return e.Delete(ctx, u, id)
}
