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
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// Policy statuses in Dfns.
const policyArchived = "Archived"

// ruleChainalysisPrescreening is the rule kind whose configuration.addresses is {categoryIds}.
const ruleChainalysisPrescreening = "ChainalysisTransactionPrescreening"

// partRule names the rule in a policy's diff.
const partRule = "rule"

// policies is the driver.External of DfnsPolicy. Updates and archives may answer 202 when a
// Policies:Modify policy holds them for approval: the change request is recorded in status and
// followed by the driver, never sent again. A create held for approval is followed the same way.
// Approvers named by DfnsUser (approvers.userRefs) are resolved to their Dfns user IDs from the
// users' status; the policy waits until each is Ready.
type policies struct {
	secretless[*v1alpha1.DfnsPolicy, *dfns.Policy]
	link
	client client.Reader // the DfnsUsers approval groups name, from the cache (references)
}

var _ driver.External[*v1alpha1.DfnsPolicy, *dfns.Policy] = (*policies)(nil)
var _ adapter[*v1alpha1.DfnsPolicy, *dfns.Policy] = (*policies)(nil)

// bind returns the kind's calls through one connection.
func (e *policies) bind(l link) driver.External[*v1alpha1.DfnsPolicy, *dfns.Policy] {
	cp := *e
	cp.link = l
	return &cp
}

// Validate checks the default name's length and the shape of rule.configuration.addresses,
// which the API server cannot (its shape depends on the rule kind: a list of addresses for a
// whitelist, {categoryIds} for Chainalysis prescreening).
func (e *policies) Validate(_ context.Context, p *v1alpha1.DfnsPolicy) error {
	if err := validName(e.dfnsName(p.DfnsName())); err != nil {
		return err
	}
	cfg := p.Spec.Rule.Configuration
	switch p.Spec.Rule.Kind {
	case "TransactionRecipientWhitelist":
		var addresses []string
		if cfg == nil || cfg.Addresses == nil || json.Unmarshal(cfg.Addresses.Raw, &addresses) != nil {
			return driver.Stopf(v1alpha1.ReasonInvalidSpec, "rule kind TransactionRecipientWhitelist needs configuration.addresses, a list of addresses")
		}
	case ruleChainalysisPrescreening:
		var addresses struct {
			CategoryIDs *[]int32 `json:"categoryIds"`
		}
		if cfg == nil || cfg.Addresses == nil || json.Unmarshal(cfg.Addresses.Raw, &addresses) != nil || addresses.CategoryIDs == nil {
			return driver.Stopf(v1alpha1.ReasonInvalidSpec, "rule kind ChainalysisTransactionPrescreening needs configuration.addresses "+
				"as {categoryIds: [...]}")
		}
	}
	return nil
}

// Observe reads the recorded policy and compares; it shows the driver the change request the
// policy waits on. A policy gone or archived in Dfns is created anew: Dfns cannot unarchive a
// policy.
func (e *policies) Observe(ctx context.Context, p *v1alpha1.DfnsPolicy, rec driver.Recorded) (driver.Observation[*dfns.Policy], error) {
	want, err := e.body(ctx, p)
	if err != nil && p.DeletionTimestamp.IsZero() {
		// A policy being deleted is only looked at for the change it shows held: an approver
		// gone meanwhile must not keep it.
		return driver.Observation[*dfns.Policy]{}, err
	}
	id := rec.ID
	if id == "" {
		return e.find(ctx, p, want, rec.Marked)
	}
	got, err := e.api.GetPolicy(ctx, id)
	if dfns.IsNotFound(err) {
		return driver.Observation[*dfns.Policy]{Replace: &driver.Replacement{Reason: driver.EventRecreated,
			Message: fmt.Sprintf("policy %s is gone from Dfns; created a new one", id)}}, nil
	}
	if err != nil {
		return driver.Observation[*dfns.Policy]{}, fmt.Errorf("reading policy %s: %w", id, err)
	}
	shown := toChangeRequest(got.PendingChangeRequest)
	if got.Status == policyArchived {
		return driver.Observation[*dfns.Policy]{Shown: shown, Replace: &driver.Replacement{Reason: driver.EventRecreated,
			Message: fmt.Sprintf("policy %s was archived in Dfns, which cannot be undone; created a new one", id)}}, nil
	}
	obs := comparePolicy(want, got)
	obs.Shown = shown
	return obs, nil
}

// find looks the name up among active policies: ours after a lost create answer (a
// create-pending mark for this name) is adopted, anyone else's is a NameConflict. Dfns does
// not require policy names to be unique; the operator does, to find its own.
func (e *policies) find(ctx context.Context, p *v1alpha1.DfnsPolicy, want dfns.PolicyBody, marked string) (driver.Observation[*dfns.Policy], error) {
	all, err := e.api.ListPolicies(ctx, "Active")
	if err != nil {
		return driver.Observation[*dfns.Policy]{}, fmt.Errorf("listing policies: %w", err)
	}
	got, err := findNamed(all, func(x *dfns.Policy) string { return x.Name }, e.dfnsName(p.DfnsName()), marked, "policy")
	if err != nil || got == nil {
		return driver.Observation[*dfns.Policy]{}, err
	}
	return comparePolicy(want, got), nil
}

// comparePolicy reports whether the policy in Dfns has the name, activity, rule, action and filters
// the spec asks for (want). The parts are compared as normalised JSON, so absent and empty are
// the same.
func comparePolicy(want dfns.PolicyBody, got *dfns.Policy) driver.Observation[*dfns.Policy] {
	var diff []string
	if got.Name != want.Name {
		diff = append(diff, fmt.Sprintf("name %q, want %q", got.Name, want.Name))
	}
	if got.ActivityKind != want.ActivityKind {
		diff = append(diff, fmt.Sprintf("activityKind %s, want %s", got.ActivityKind, want.ActivityKind))
	}
	for _, part := range []struct {
		name       string
		have, want any
	}{{partRule, got.Rule, want.Rule}, {"action", got.Action, want.Action}, {"filters", got.Filters, want.Filters}} {
		if canonical(part.have) != canonical(part.want) {
			diff = append(diff, part.name)
		}
	}
	return driver.Observation[*dfns.Policy]{ID: got.ID, Exists: true, UpToDate: len(diff) == 0, Diff: strings.Join(diff, ", "), Current: got,
		Marker: got.Name}
}

// body is the policy body the spec asks for, its approvers by DfnsUser resolved; a wait while
// one of them is missing or not Ready.
func (e *policies) body(ctx context.Context, p *v1alpha1.DfnsPolicy) (dfns.PolicyBody, error) {
	users := map[string]string{}
	for _, name := range approverNames(p) {
		var u v1alpha1.DfnsUser
		err := e.client.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: name}, &u)
		if apierrors.IsNotFound(err) {
			return dfns.PolicyBody{}, driver.Waitf(v1alpha1.ReasonIdentityNotReady, "waiting for DfnsUser %s, an approver: it does not exist", name)
		}
		if err != nil {
			return dfns.PolicyBody{}, fmt.Errorf("reading DfnsUser %s: %w", name, err)
		}
		// The ID comes from status, which only the operator writes.
		if !meta.IsStatusConditionTrue(u.Status.Conditions, v1alpha1.ConditionReady) || u.Status.UserID == "" || !u.DeletionTimestamp.IsZero() {
			return dfns.PolicyBody{}, waitFor(u.Status.Conditions, v1alpha1.ReasonIdentityNotReady, "waiting for DfnsUser %s, an approver, to be Ready", name)
		}
		users[name] = u.Status.UserID
	}
	return e.want(p, users), nil
}

// approverNames are the DfnsUsers the policy's approval groups name, each once.
func approverNames(p *v1alpha1.DfnsPolicy) []string {
	var names []string
	for _, g := range p.Spec.Action.ApprovalGroups {
		for _, ref := range g.Approvers.UserRefs {
			if !slices.Contains(names, ref.Name) {
				names = append(names, ref.Name)
			}
		}
	}
	return names
}

// want is the policy body the spec asks for, with users the Dfns user IDs of the DfnsUsers
// its approval groups name: each group's userId.in, then its userRefs, each ID once.
func (e *policies) want(p *v1alpha1.DfnsPolicy, users map[string]string) dfns.PolicyBody {
	s := p.Spec
	body := dfns.PolicyBody{Name: e.dfnsName(p.DfnsName()), ActivityKind: string(s.ActivityKind),
		Rule:   dfns.PolicyRule{Kind: string(s.Rule.Kind), Configuration: asMap(s.Rule.Configuration)},
		Action: dfns.PolicyAction{Kind: string(s.Action.Kind)}, Filters: asMap(s.Filters)}
	if t := s.Action.AutoRejectTimeout; t != nil {
		minutes := int(*t)
		body.Action.AutoRejectTimeout = &minutes
	}
	for _, g := range s.Action.ApprovalGroups {
		approvers := map[string]any{}
		var ids []string
		if g.Approvers.UserID != nil {
			ids = append(ids, g.Approvers.UserID.In...)
		}
		for _, ref := range g.Approvers.UserRefs {
			if id := users[ref.Name]; id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			approvers["userId"] = map[string]any{"in": ids}
		}
		body.Action.ApprovalGroups = append(body.Action.ApprovalGroups, dfns.ApprovalGroup{Name: g.Name, Quorum: int(g.Quorum),
			Approvers: approvers, InitiatorCanApprove: g.InitiatorCanApprove, ServiceAccountsCanApprove: g.ServiceAccountsCanApprove})
	}
	return body
}

// asMap turns a typed part of the spec into the JSON object Dfns takes; nil stays nil.
func asMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || len(m) == 0 {
		return nil
	}
	return m
}

// canonical is v as JSON with sorted keys, in the form that makes what Dfns echoes equal to
// what the spec sent (see prune).
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return string(b)
	}
	out, _ := json.Marshal(prune(generic))
	return string(out)
}

// prune drops, recursively, what reads the same as absent: null, false, "", and objects left
// empty; and it reads a numeric string as the number. Dfns may echo a policy with its defaults
// filled in (initiatorCanApprove: false, autoRejectTimeout: null, filters: {}) and a limit as
// "1000" (docs/dfns-compatibility.md): compared strictly, every sync would send an update, each
// signed and perhaps held for approval. Arrays keep their elements: an empty address list is
// not an absent one.
func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e = prune(e); e == nil {
				delete(t, k)
				continue
			}
			t[k] = e
		}
		if len(t) == 0 {
			return nil
		}
		return t
	case []any:
		for i := range t {
			t[i] = prune(t[i])
		}
		return t
	case bool:
		if !t {
			return nil
		}
	case string:
		if t == "" {
			return nil
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return v
}

// Prepare readies the create of the policy; the driver records and follows a create held for
// approval.
func (e *policies) Prepare(ctx context.Context, p *v1alpha1.DfnsPolicy, _ driver.Observation[*dfns.Policy]) (driver.Prepared, error) {
	body, err := e.body(ctx, p)
	if err != nil {
		return driver.Prepared{}, err
	}
	return driver.Prepared{Name: body.Name, Create: func(ctx context.Context) (driver.Creation, error) {
		got, err := e.api.CreatePolicy(ctx, body)
		if err != nil {
			return driver.Creation{}, fmt.Errorf("creating policy %q: %w", body.Name, err)
		}
		return driver.Creation{ID: got.ID}, nil
	}}, nil
}

// Update sends the whole policy as the spec has it; Dfns may hold it for approval (202).
func (e *policies) Update(ctx context.Context, p *v1alpha1.DfnsPolicy, obs driver.Observation[*dfns.Policy]) ([]driver.Note, error) {
	body, err := e.body(ctx, p)
	if err != nil {
		return nil, err
	}
	if _, err := e.api.UpdatePolicy(ctx, obs.ID, body); err != nil {
		return nil, fmt.Errorf("updating policy %s: %w", obs.ID, err)
	}
	return []driver.Note{{Reason: driver.EventUpdated, Message: fmt.Sprintf("updated policy %s: %s", obs.ID, obs.Diff)}}, nil
}

// Delete archives the policy. An archive already waiting for approval is followed, never sent
// again; a policy already archived or gone is fine.
func (e *policies) Delete(ctx context.Context, p *v1alpha1.DfnsPolicy, id string) error {
	return archive(ctx, "policy "+id,
		func(ctx context.Context) (bool, error) {
			got, err := e.api.GetPolicy(ctx, id)
			if err != nil {
				return false, err
			}
			return got.Status == policyArchived, nil
		},
		func(ctx context.Context) error { _, err := e.api.ArchivePolicy(ctx, id); return err })
}

// Retire archives a superseded policy (policies are not rotated; for completeness).
func (e *policies) Retire(ctx context.Context, p *v1alpha1.DfnsPolicy, id string) error {
	return e.Delete(ctx, p, id)
}
