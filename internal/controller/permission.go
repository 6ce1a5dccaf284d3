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
	"strings"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// permissions is the driver.External of DfnsPermission.
type permissions struct {
	secretless[*v1alpha1.DfnsPermission, *dfns.Permission]
	link
}

var _ driver.External[*v1alpha1.DfnsPermission, *dfns.Permission] = (*permissions)(nil)
var _ adapter[*v1alpha1.DfnsPermission, *dfns.Permission] = (*permissions)(nil)

// bind returns the kind's calls through one connection.
func (e *permissions) bind(l link) driver.External[*v1alpha1.DfnsPermission, *dfns.Permission] {
	cp := *e
	cp.link = l
	return &cp
}

// Validate checks the name's length, which the API server cannot.
func (e *permissions) Validate(_ context.Context, p *v1alpha1.DfnsPermission) error {
	return validName(e.dfnsName(p.DfnsName()))
}

// Observe reads the recorded permission, follows a pending change request, and compares.
// With no recorded ID it looks the name up: ours after a lost create answer (create-pending
// set) is adopted, anyone else's is a NameConflict.
func (e *permissions) Observe(ctx context.Context, p *v1alpha1.DfnsPermission, rec driver.Recorded) (driver.Observation[*dfns.Permission], error) {
	id := rec.ID
	if id == "" {
		return e.find(ctx, p, rec.Marked)
	}
	got, err := e.api.GetPermission(ctx, id)
	if dfns.IsNotFound(err) {
		return driver.Observation[*dfns.Permission]{Replace: &driver.Replacement{Reason: driver.EventRecreated,
			Message: fmt.Sprintf("permission %s is gone from Dfns; created a new one", id)}}, nil
	}
	if err != nil {
		return driver.Observation[*dfns.Permission]{}, fmt.Errorf("reading permission %s: %w", id, err)
	}
	obs := e.compare(p, got)
	obs.Shown = toChangeRequest(got.PendingChangeRequest)
	return obs, nil
}

// find looks the permission up by name: with a create-pending mark for that name it is ours
// (a lost create answer); without, someone else's.
func (e *permissions) find(ctx context.Context, p *v1alpha1.DfnsPermission, marked string) (driver.Observation[*dfns.Permission], error) {
	all, err := e.api.ListPermissions(ctx)
	if err != nil {
		return driver.Observation[*dfns.Permission]{}, fmt.Errorf("listing permissions: %w", err)
	}
	got, err := findNamed(all, func(x *dfns.Permission) string { return x.Name }, e.dfnsName(p.DfnsName()), marked, "permission")
	if err != nil || got == nil {
		return driver.Observation[*dfns.Permission]{}, err
	}
	return e.compare(p, got), nil
}

// compare reports whether the permission is active with the spec's name and operations.
func (e *permissions) compare(p *v1alpha1.DfnsPermission, got *dfns.Permission) driver.Observation[*dfns.Permission] {
	var diff []string
	if got.IsArchived {
		diff = append(diff, "archived")
	}
	if got.Name != e.dfnsName(p.DfnsName()) {
		diff = append(diff, fmt.Sprintf("name %q, want %q", got.Name, e.dfnsName(p.DfnsName())))
	}
	want := wantOperations(p)
	have := slices.Sorted(slices.Values(got.Operations))
	if !slices.Equal(want, have) {
		diff = append(diff, fmt.Sprintf("operations [%s], want [%s]", strings.Join(have, " "), strings.Join(want, " ")))
	}
	return driver.Observation[*dfns.Permission]{ID: got.ID, Exists: true, UpToDate: len(diff) == 0, Diff: strings.Join(diff, ", "), Current: got,
		Marker: got.Name}
}

// wantOperations is spec.operations, sorted.
func wantOperations(p *v1alpha1.DfnsPermission) []string {
	out := make([]string, 0, len(p.Spec.Operations))
	for _, op := range p.Spec.Operations {
		out = append(out, string(op))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Prepare readies the create of the permission under its name.
func (e *permissions) Prepare(_ context.Context, p *v1alpha1.DfnsPermission, _ driver.Observation[*dfns.Permission]) (driver.Prepared, error) {
	req := dfns.CreatePermissionRequest{Name: e.dfnsName(p.DfnsName()), Operations: wantOperations(p)}
	return driver.Prepared{Name: req.Name, Create: func(ctx context.Context) (driver.Creation, error) {
		got, err := e.api.CreatePermission(ctx, req)
		if err != nil {
			return driver.Creation{}, fmt.Errorf("creating permission %q: %w", req.Name, err)
		}
		return driver.Creation{ID: got.ID}, nil
	}}, nil
}

// Update unarchives the permission and sets its name and operations; either call may answer
// with a change request to approve.
func (e *permissions) Update(ctx context.Context, p *v1alpha1.DfnsPermission, obs driver.Observation[*dfns.Permission]) ([]driver.Note, error) {
	got := obs.Current
	if got == nil {
		return nil, fmt.Errorf("no observed permission to update")
	}
	var notes []driver.Note
	if got.IsArchived {
		if _, err := e.api.ArchivePermission(ctx, obs.ID, false); err != nil {
			return notes, fmt.Errorf("unarchiving permission %s: %w", obs.ID, err)
		}
		notes = append(notes, driver.Note{Reason: driver.EventUnarchived, Message: fmt.Sprintf("permission %s was archived; unarchived it", obs.ID)})
	}
	if cmp := e.compare(p, &dfns.Permission{ID: got.ID, Name: got.Name, Operations: got.Operations}); cmp.UpToDate {
		return notes, nil
	}
	req := dfns.UpdatePermissionRequest{Operations: wantOperations(p)}
	if got.Name != e.dfnsName(p.DfnsName()) {
		req.Name = e.dfnsName(p.DfnsName())
	}
	if _, err := e.api.UpdatePermission(ctx, obs.ID, req); err != nil {
		return notes, fmt.Errorf("updating permission %s: %w", obs.ID, err)
	}
	return append(notes, driver.Note{Reason: driver.EventUpdated, Message: fmt.Sprintf("updated permission %s: %s", obs.ID, obs.Diff)}), nil
}

// Delete archives the permission. An archive already waiting for approval is followed, never
// sent again.
func (e *permissions) Delete(ctx context.Context, p *v1alpha1.DfnsPermission, id string) error {
	return archive(ctx, "permission "+id,
		func(ctx context.Context) (bool, error) {
			got, err := e.api.GetPermission(ctx, id)
			if err != nil {
				return false, err
			}
			return got.IsArchived, nil
		},
		func(ctx context.Context) error { _, err := e.api.ArchivePermission(ctx, id, true); return err })
}

// Retire archives a superseded permission (permissions are not rotated; for completeness).
func (e *permissions) Retire(ctx context.Context, p *v1alpha1.DfnsPermission, id string) error {
	return e.Delete(ctx, p, id)
}
