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
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// EventReassigned: the identity was replaced (a service account minted anew), so the permission
// was assigned to the new identity and the old assignment revoked.
const EventReassigned = "Reassigned"

// assignments is the driver.External of DfnsPermissionAssignment. An assignment has no name of its
// own in Dfns: the pair (permission, identity) is its marker, so a lost answer to an assign is
// found again by listing the permission's assignments. One list per permission per sync period
// serves the drift checks of all its assignments (lists).
type assignments struct {
	link
	client client.Reader // DfnsPermissions and identities, from the cache (references)
	lists  *driver.ListCache[dfns.Assignment]
}

var _ driver.External[*v1alpha1.DfnsPermissionAssignment, assignmentView] = (*assignments)(nil)
var _ adapter[*v1alpha1.DfnsPermissionAssignment, assignmentView] = (*assignments)(nil)

// bind returns the kind's calls through one connection.
func (e *assignments) bind(l link) driver.External[*v1alpha1.DfnsPermissionAssignment, assignmentView] {
	cp := *e
	cp.link = l
	return &cp
}

// listKey is the list cache's key of a permission's assignments: permission IDs are unique
// within an organisation, and each connection may reach another one.
func (e *assignments) listKey(permID string) string { return e.key + " " + permID }

// Validate has nothing to add to the CRD's validation.
func (e *assignments) Validate(context.Context, *v1alpha1.DfnsPermissionAssignment) error { return nil }

// Secret: an assignment publishes none.
func (e *assignments) Secret(*v1alpha1.DfnsPermissionAssignment) (string, v1alpha1.SecretTemplate) {
	return "", v1alpha1.SecretTemplate{}
}

// Observe resolves both references, follows a change request waiting for approval, and looks
// for the assignment of the permission to the identity.
func (e *assignments) Observe(ctx context.Context, a *v1alpha1.DfnsPermissionAssignment, rec driver.Recorded) (driver.Observation[assignmentView], error) {
	id := rec.ID
	permID, identityID, err := e.resolve(ctx, a)
	if err != nil {
		return driver.Observation[assignmentView]{}, err
	}
	cur := assignmentView{PermissionID: permID, IdentityID: identityID}
	list := func(ctx context.Context) ([]dfns.Assignment, error) { return e.api.ListAssignments(ctx, permID) }
	found, recorded, fresh, err := e.lookup(ctx, permID, identityID, id, list)
	if err == nil && found == nil && !fresh && (id != "" || rec.Marked != "") {
		// Absence of what the operator may have assigned is concluded from a fresh list only.
		var all []dfns.Assignment
		all, err = e.lists.Fetch(ctx, e.listKey(permID), list)
		found, recorded = findAssignment(all, identityID, id)
	}
	if dfns.IsNotFound(err) {
		return driver.Observation[assignmentView]{}, driver.Waitf(v1alpha1.ReasonPermissionNotReady, "permission %s does not exist in Dfns", permID)
	}
	if err != nil {
		return driver.Observation[assignmentView]{}, fmt.Errorf("listing the assignments of permission %s: %w", permID, err)
	}
	if found != nil && pendingCreation(found.PendingChangeRequest) {
		// Listed while its creation waits for approval (docs/dfns-compatibility.md): not made
		// yet. The driver waits on it, whoever asked.
		return driver.Observation[assignmentView]{Current: cur, Marker: pairMarker(permID, identityID),
			Shown: toChangeRequest(found.PendingChangeRequest)}, nil
	}
	if found != nil {
		cur.Assignment = found
		return driver.Observation[assignmentView]{ID: found.ID, Exists: true, UpToDate: true, Current: cur, Marker: pairMarker(permID, identityID),
			Shown: toChangeRequest(found.PendingChangeRequest)}, nil
	}
	switch {
	case recorded != nil && rec.Proved:
		// Only an assignment this resource proves it made is revoked for the new identity, and
		// only after the grace period: the previous identity (a rotation's) keeps working until
		// it is retired, permissions included.
		return driver.Observation[assignmentView]{Current: cur, Rotate: &driver.Replacement{ID: id, Reason: EventReassigned, Message: fmt.Sprintf(
			"identity %s replaced %s: assigned permission %s to it; %s is revoked after its grace period", identityID, recorded.IdentityID, permID, id)}}, nil
	case id != "":
		return driver.Observation[assignmentView]{Current: cur, Replace: &driver.Replacement{Reason: driver.EventRecreated, Message: fmt.Sprintf(
			"assignment %s was revoked in Dfns; assigned permission %s to %s again", id, permID, identityID)}}, nil
	}
	return driver.Observation[assignmentView]{Current: cur}, nil
}

// assignmentView is the assignment found in Dfns, if any, and the permission and identity the
// references resolved to.
type assignmentView struct {
	*dfns.Assignment
	PermissionID, IdentityID string
}

// Report records the permission and identity the references resolved to.
func (e *assignments) Report(a *v1alpha1.DfnsPermissionAssignment, obs driver.Observation[assignmentView]) {
	if obs.Current.PermissionID != "" {
		a.Status.PermissionID, a.Status.IdentityID = obs.Current.PermissionID, obs.Current.IdentityID
	}
}

// pendingCreation reports whether a listed assignment's change request is its creation, still
// waiting for approval.
func pendingCreation(cr *dfns.ChangeRequest) bool {
	return cr != nil && cr.OperationKind == driver.OperationCreate && cr.Status == crPending
}

// pairMarker is an assignment's marker: its permission and identity.
func pairMarker(permID, identityID string) string { return permID + " " + identityID }

// The fields the kept lists of assignments are searched by.
const (
	byIdentity = iota
	byID
)

// assignmentFields gives an assignment's values of byIdentity and byID.
func assignmentFields(a dfns.Assignment) []string { return []string{a.IdentityID, a.ID} }

// lookup is findAssignment on the permission's kept list, through its index: both searches
// read the one list Get returned. fresh reports whether the list was fetched for this call.
func (e *assignments) lookup(ctx context.Context, permID, identityID, id string,
	list func(context.Context) ([]dfns.Assignment, error)) (found, recorded *dfns.Assignment, fresh bool, err error) {
	key := e.listKey(permID)
	all, fresh, err := e.lists.Get(ctx, key, list)
	if err != nil {
		return nil, nil, fresh, err
	}
	if a, ok := e.lists.Search(key, all, byIdentity, identityID); ok {
		return &a, nil, fresh, nil
	}
	if r, ok := e.lists.Search(key, all, byID, id); ok {
		recorded = &r
	}
	return nil, recorded, fresh, nil
}

// findAssignment returns the assignment to the identity and the one with the recorded ID.
func findAssignment(all []dfns.Assignment, identityID, id string) (found, recorded *dfns.Assignment) {
	for i := range all {
		switch {
		case all[i].IdentityID == identityID:
			return &all[i], nil
		case id != "" && all[i].ID == id:
			recorded = &all[i]
		}
	}
	return nil, recorded
}

// resolve returns the Dfns IDs of the permission and the identity, or a wait while a
// referenced resource is not Ready.
func (e *assignments) resolve(ctx context.Context, a *v1alpha1.DfnsPermissionAssignment) (permID, identityID string, err error) {
	permID, err = resolvePermission(ctx, e.client, a.Namespace, a.Spec.PermissionRef)
	if err != nil {
		return "", "", err
	}
	if a.Spec.IdentityID != "" {
		return permID, a.Spec.IdentityID, nil
	}
	ref := a.Spec.IdentityRef
	if ref == nil {
		return "", "", driver.Stopf(v1alpha1.ReasonInvalidSpec, "set identityRef or identityId")
	}
	identity, err := identityObject(ref.Kind)
	if err != nil {
		return "", "", err
	}
	err = e.client.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: ref.Name}, identity)
	if apierrors.IsNotFound(err) {
		return "", "", driver.Waitf(v1alpha1.ReasonIdentityNotReady, "waiting for %s %s: it does not exist", ref.Kind, ref.Name)
	}
	if err != nil {
		return "", "", fmt.Errorf("reading %s %s: %w", ref.Kind, ref.Name, err)
	}
	identityID = identity.GetStatusID() // status, not the annotation: only the operator writes it
	if !meta.IsStatusConditionTrue(identity.Managed().Conditions, v1alpha1.ConditionReady) || identityID == "" {
		return "", "", waitFor(identity.Managed().Conditions, v1alpha1.ReasonIdentityNotReady, "waiting for %s %s to be Ready", ref.Kind, ref.Name)
	}
	return permID, identityID, nil
}

// identityObject returns an empty resource of an identityRef's kind.
func identityObject(kind string) (driver.Object, error) {
	switch kind {
	case kindServiceAccount:
		return &v1alpha1.DfnsServiceAccount{}, nil
	case kindPersonalAccessToken:
		return &v1alpha1.DfnsPersonalAccessToken{}, nil
	case kindUser:
		return &v1alpha1.DfnsUser{}, nil
	}
	return nil, driver.Stopf(v1alpha1.ReasonInvalidSpec, "identityRef.kind %q is not an identity kind", kind)
}

// identityKey is the identityRefIndex value of an identity in a namespace, of a kind and name.
func identityKey(namespace, kind, name string) string { return namespace + "/" + kind + "/" + name }

// Prepare readies the assign of the permission to the identity, both resolved by Observe. The
// driver records and follows an assign held for approval, so it is never sent twice.
func (e *assignments) Prepare(_ context.Context, _ *v1alpha1.DfnsPermissionAssignment, obs driver.Observation[assignmentView]) (driver.Prepared, error) {
	permID, identityID := obs.Current.PermissionID, obs.Current.IdentityID
	return driver.Prepared{Name: pairMarker(permID, identityID), Create: func(ctx context.Context) (driver.Creation, error) {
		return e.assign(ctx, permID, identityID)
	}}, nil
}

// Remove revokes the assignment of an identity this resource's identity replaced.
func (e *assignments) Remove(ctx context.Context, a *v1alpha1.DfnsPermissionAssignment, obs driver.Observation[assignmentView], id string) error {
	return e.revoke(ctx, obs.Current.PermissionID, id)
}

// assign assigns the permission to the identity with one Dfns call.
func (e *assignments) assign(ctx context.Context, permID, identityID string) (driver.Creation, error) {
	var c driver.Creation
	got, err := e.api.AssignPermission(ctx, permID, identityID)
	if err != nil {
		e.lists.Invalidate(e.listKey(permID)) // it may have been assigned all the same
		if dfns.IsConflict(err) {
			// Assigned already, or held for approval, by another hand or by an answer that was
			// lost. Not a name to change (as a 409 means elsewhere): retry, and the next
			// reconcile lists afresh and adopts the assignment.
			return c, fmt.Errorf("permission %s is already assigned to %s, or waits for approval to be, in Dfns; "+
				"retrying to adopt it: %s", permID, identityID, err.Error())
		}
		return c, fmt.Errorf("assigning permission %s to %s: %w", permID, identityID, err)
	}
	// The kept list learns of the new assignment instead of being listed again: with a
	// thousand assignments on a permission, that saves two pages per create.
	e.lists.Append(e.listKey(permID), *got)
	c.ID, c.UpToDate = got.ID, got.PendingChangeRequest == nil
	return c, nil
}

// Update has nothing to do: an assignment is either there or not.
func (e *assignments) Update(context.Context, *v1alpha1.DfnsPermissionAssignment, driver.Observation[assignmentView]) ([]driver.Note, error) {
	return nil, nil
}

// Delete revokes the assignment. The driver follows a revoke held for approval and never sends
// it again; a permission or identity already gone does not block deletion.
func (e *assignments) Delete(ctx context.Context, a *v1alpha1.DfnsPermissionAssignment, id string) error {
	permID := a.Status.PermissionID
	if permID == "" {
		// Status lost it (a status patch that never landed, a restore): the reference tells,
		// whether or not the permission is Ready now.
		permID = a.Spec.PermissionRef.ID
		if permID == "" {
			var p v1alpha1.DfnsPermission
			err := e.client.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.PermissionRef.Name}, &p)
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("reading DfnsPermission %s: %w", a.Spec.PermissionRef.Name, err)
			}
			permID = p.Status.PermissionID
		}
	}
	if permID == "" {
		return driver.Waitf(v1alpha1.ReasonPermissionNotReady, "cannot revoke assignment %s: the permission it belongs to is unknown; "+
			"set deletionPolicy: Orphan to delete the resource and keep the assignment", id)
	}
	// After an approved revoke this finds the assignment gone, which is success.
	return e.revoke(ctx, permID, id)
}

// revoke revokes one assignment; gone already is success (the client treats 404 so).
func (e *assignments) revoke(ctx context.Context, permID, id string) error {
	if permID == "" {
		return nil
	}
	err := e.api.RevokePermission(ctx, permID, id)
	if err != nil {
		e.lists.Invalidate(e.listKey(permID))
		return err
	}
	e.lists.Amend(e.listKey(permID), func(all []dfns.Assignment) []dfns.Assignment {
		return slices.DeleteFunc(all, func(x dfns.Assignment) bool { return x.ID == id })
	})
	return nil
}

// Retire revokes a superseded assignment (assignments are not rotated; for completeness).
func (e *assignments) Retire(ctx context.Context, a *v1alpha1.DfnsPermissionAssignment, id string) error {
	return e.Delete(ctx, a, id)
}
