package sandbox

import (
	"encoding/json"
	"slices"
	"time"
)

// Approval statuses.
const (
	approvalPending  = "Pending"
	approvalApproved = "Approved"
	approvalDenied   = "Denied"
	approvalExpired  = "Expired"
)

// requester is who asked for a change.
type requester struct {
	UserID  string `json:"userId"`
	TokenID string `json:"tokenId,omitempty"`
}

// changeRec is a change request waiting for (or resolved by) an approval.
type changeRec struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`          // Permission, Assignment, Policy
	OperationKind string          `json:"operationKind"` // Create, Update, Delete
	Status        string          `json:"status"`
	EntityID      string          `json:"entityId"`
	ApprovalID    string          `json:"approvalId"`
	Requester     requester       `json:"requester"`
	DateCreated   time.Time       `json:"dateCreated"`
	DateResolved  *time.Time      `json:"dateResolved,omitempty"`
	Body          json.RawMessage `json:"body"`
	PermissionID  string          `json:"permissionId,omitempty"` // assignment creates: for duplicate detection
	IdentityID    string          `json:"identityId,omitempty"`
}

// groupRef is an approval group with the policy it comes from.
type groupRef struct {
	PolicyID string        `json:"policyId"`
	Group    approvalGroup `json:"group"`
}

// decision is one user's vote.
type decision struct {
	UserID string    `json:"userId"`
	Date   time.Time `json:"date"`
	Reason *string   `json:"reason"`
	Value  string    `json:"value"`
}

// approvalRec is a policy approval.
type approvalRec struct {
	ID             string     `json:"id"`
	InitiatorID    string     `json:"initiatorId"`
	ActivityKind   string     `json:"activityKind"`
	ChangeRequest  string     `json:"changeRequestId"`
	Status         string     `json:"status"`
	ExpirationDate *time.Time `json:"expirationDate,omitempty"`
	DateCreated    time.Time  `json:"dateCreated"`
	DateUpdated    time.Time  `json:"dateUpdated"`
	DateResolved   *time.Time `json:"dateResolved,omitempty"`
	PolicyIDs      []string   `json:"policyIds"`
	Groups         []groupRef `json:"groups"`
	Decisions      []decision `json:"decisions"`
	Seq            int64      `json:"seq"`
}

// pendingCR returns the change request with id if it is still pending.
func (s *Server) pendingCR(id string) *changeRec {
	if id == "" {
		return nil
	}
	cr := s.st.ChangeRequests[id]
	if cr == nil || cr.Status != crPending {
		return nil
	}
	return cr
}

// pendingConflict is the answer to a change of an entity that already has a pending change
// request: 409, naming the change request and approval (the sandbox never queues a second
// change behind a pending one). In strict "no-approval-id" mode it names the change request
// only.
func (s *Server) pendingConflict(cr *changeRec) error {
	if s.Strict().NoApprovalID {
		e := errConflict("entity %s already has a pending change request %s", cr.EntityID, cr.ID)
		e.Details = map[string]any{"changeRequestId": cr.ID}
		return e
	}
	e := errConflict("entity %s already has a pending change request %s awaiting approval %s", cr.EntityID, cr.ID, cr.ApprovalID)
	e.Details = map[string]any{"changeRequestId": cr.ID, "approvalId": cr.ApprovalID}
	return e
}

// openChangeRequest records a change that needs approval by the given policies, creates the
// approval and emits policy.approval.pending.
func (s *Server) openChangeRequest(c *call, activity, kind, opKind, entityID string, body any, pols []*policyRec) *changeRec {
	raw, _ := json.Marshal(body)
	cr := &changeRec{
		ID: s.newID("cr"), Kind: kind, OperationKind: opKind, Status: crPending, EntityID: entityID,
		Requester: requester{UserID: c.caller.user.ID}, DateCreated: c.now, Body: raw,
	}
	if c.caller.token != nil {
		cr.Requester.TokenID = c.caller.token.ID
	}
	if ab, isAssign := body.(assignmentBody); isAssign {
		cr.PermissionID, cr.IdentityID = ab.PermissionID, ab.IdentityID
	}
	ap := &approvalRec{
		ID: s.newID("ap"), InitiatorID: c.caller.user.ID, ActivityKind: activity, ChangeRequest: cr.ID,
		Status: approvalPending, DateCreated: c.now, DateUpdated: c.now, Decisions: []decision{}, Seq: s.nextSeq(),
	}
	for _, p := range pols {
		ap.PolicyIDs = append(ap.PolicyIDs, p.ID)
		for _, g := range p.Action.ApprovalGroups {
			ap.Groups = append(ap.Groups, groupRef{PolicyID: p.ID, Group: g})
		}
		if t := p.Action.AutoRejectTimeout; t != nil {
			exp := c.now.Add(time.Duration(*t) * time.Minute)
			if ap.ExpirationDate == nil || exp.Before(*ap.ExpirationDate) {
				ap.ExpirationDate = &exp
			}
		}
	}
	cr.ApprovalID = ap.ID
	s.st.ChangeRequests[cr.ID] = cr
	s.st.Approvals[ap.ID] = ap
	s.emitEvent("policy.approval.pending", map[string]any{"approval": s.approvalJSON(ap)}, c.now)
	return cr
}

// changeRequestJSON renders a change request (a 202 answer, a pendingChangeRequest, an
// approval's activity.changeRequest); in strict "no-approval-id" mode without approvalId.
func (s *Server) changeRequestJSON(cr *changeRec) map[string]any {
	m := map[string]any{
		"id": cr.ID, "kind": cr.Kind, "operationKind": cr.OperationKind, "status": cr.Status,
		"entityId": cr.EntityID, "approvalId": cr.ApprovalID, "requester": cr.Requester,
		"dateCreated": isoTime(cr.DateCreated), "body": cr.Body,
	}
	if s.Strict().NoApprovalID {
		delete(m, "approvalId")
	}
	if cr.Kind == "Policy" && s.Strict().PolicyDefaults {
		m["body"] = withPolicyDefaults(cr.Body)
	}
	if cr.DateResolved != nil {
		m["dateResolved"] = isoTime(*cr.DateResolved)
	}
	return m
}

func (s *Server) approvalJSON(ap *approvalRec) map[string]any {
	evals := make([]map[string]any, 0, len(ap.PolicyIDs))
	for _, id := range ap.PolicyIDs {
		evals = append(evals, map[string]any{"policyId": id, "triggered": true, "reason": "the policy rule triggered"})
	}
	decisions := make([]map[string]any, 0, len(ap.Decisions))
	for _, d := range ap.Decisions {
		decisions = append(decisions, map[string]any{"userId": d.UserID, "date": isoTime(d.Date), "reason": d.Reason, "value": d.Value})
	}
	activity := map[string]any{"kind": ap.ActivityKind}
	if cr := s.st.ChangeRequests[ap.ChangeRequest]; cr != nil {
		activity["changeRequest"] = s.changeRequestJSON(cr)
	}
	m := map[string]any{
		"id": ap.ID, "initiatorId": ap.InitiatorID, "activity": activity, "status": ap.Status,
		"dateCreated": isoTime(ap.DateCreated), "dateUpdated": isoTime(ap.DateUpdated),
		"policyEvaluations": evals, "decisions": decisions,
	}
	if ap.ExpirationDate != nil {
		m["expirationDate"] = isoTime(*ap.ExpirationDate)
	}
	if ap.DateResolved != nil {
		m["dateResolved"] = isoTime(*ap.DateResolved)
	}
	return m
}

func (s *Server) findApproval(id string) (*approvalRec, error) {
	ap := s.st.Approvals[id]
	if ap == nil {
		return nil, errNotFound("approval %s not found", id)
	}
	return ap, nil
}

func (s *Server) getApproval(c *call) (*reply, error) {
	ap, err := s.findApproval(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(s.approvalJSON(ap)), nil
}

func (s *Server) listApprovals(c *call) (*reply, error) {
	q := c.r.URL.Query()
	status, initiator, approver := q.Get("status"), q.Get("initiatorId"), q.Get("approverId")
	if status != "" {
		if err := checkEnum("status", status, approvalPending, approvalApproved, approvalDenied, approvalExpired); err != nil {
			return nil, err
		}
	}
	var all []*approvalRec
	for _, ap := range s.st.Approvals {
		if (status == "" || ap.Status == status) && (initiator == "" || ap.InitiatorID == initiator) &&
			(approver == "" || s.isApprover(ap, approver)) {
			all = append(all, ap)
		}
	}
	items, next, err := paginate(c, all, func(a *approvalRec) int64 { return a.Seq }, 20)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, ap := range items {
		out.Items = append(out.Items, s.approvalJSON(ap))
	}
	return ok(out), nil
}

// isApprover reports whether the user decided on, or may approve, the approval.
func (s *Server) isApprover(ap *approvalRec, userID string) bool {
	for _, d := range ap.Decisions {
		if d.UserID == userID {
			return true
		}
	}
	u := s.st.Users[userID]
	if u == nil {
		return false
	}
	for _, g := range ap.Groups {
		if canApprove(g.Group, u, ap.InitiatorID) {
			return true
		}
	}
	return false
}

// canApprove reports whether u counts towards group g's quorum.
func canApprove(g approvalGroup, u *userRec, initiatorID string) bool {
	if g.Approvers.UserID != nil && !slices.Contains(g.Approvers.UserID.In, u.ID) {
		return false
	}
	if u.ID == initiatorID && (g.InitiatorCanApprove == nil || !*g.InitiatorCanApprove) {
		return false
	}
	if u.IsServiceAccount && (g.ServiceAccountsCanApprove == nil || !*g.ServiceAccountsCanApprove) {
		return false
	}
	return true
}

// mayDeny reports whether u may deny: any member of a group's approver list, the initiator included.
func mayDeny(g approvalGroup, u *userRec) bool {
	if g.Approvers.UserID != nil && !slices.Contains(g.Approvers.UserID.In, u.ID) {
		return false
	}
	return !u.IsServiceAccount || (g.ServiceAccountsCanApprove != nil && *g.ServiceAccountsCanApprove)
}

type decisionRequest struct {
	Value  *string `json:"value"`
	Reason *string `json:"reason"`
}

// decideApproval records a decision: any denial rejects the change; the change is applied
// once every approval group has reached its quorum.
func (s *Server) decideApproval(c *call) (*reply, error) {
	var req decisionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, errBadRequest("value is required")
	}
	if err := checkEnum("value", *req.Value, approvalApproved, approvalDenied); err != nil {
		return nil, err
	}
	ap, err := s.findApproval(c.param("id"))
	if err != nil {
		return nil, err
	}
	if ap.Status != approvalPending {
		return nil, errBadRequest("approval %s is not pending (status %s)", ap.ID, ap.Status)
	}
	u := c.caller.user
	for _, d := range ap.Decisions {
		if d.UserID == u.ID {
			return nil, errConflict("user %s has already decided on approval %s", u.ID, ap.ID)
		}
	}
	if !s.mayDecide(ap, u, *req.Value) {
		return nil, errForbidden("%s is not allowed to %s approval %s", c.caller.describe(), verb(*req.Value), ap.ID)
	}
	ap.Decisions = append(ap.Decisions, decision{UserID: u.ID, Date: c.now, Reason: req.Reason, Value: *req.Value})
	ap.DateUpdated = c.now
	switch {
	case *req.Value == approvalDenied:
		s.resolveApproval(ap, approvalDenied, c.now)
	case s.quorumReached(ap):
		s.resolveApproval(ap, approvalApproved, c.now)
	}
	return ok(s.approvalJSON(ap)), nil
}

func verb(value string) string {
	if value == approvalDenied {
		return "deny"
	}
	return "approve"
}

func (s *Server) mayDecide(ap *approvalRec, u *userRec, value string) bool {
	for _, g := range ap.Groups {
		if value == approvalApproved && canApprove(g.Group, u, ap.InitiatorID) {
			return true
		}
		if value == approvalDenied && mayDeny(g.Group, u) {
			return true
		}
	}
	return false
}

func (s *Server) quorumReached(ap *approvalRec) bool {
	for _, g := range ap.Groups {
		n := 0
		for _, d := range ap.Decisions {
			u := s.st.Users[d.UserID]
			if d.Value == approvalApproved && u != nil && canApprove(g.Group, u, ap.InitiatorID) {
				n++
			}
		}
		if n < g.Group.Quorum {
			return false
		}
	}
	return true
}

// resolveApproval closes the approval, applies or rejects its change request, and emits
// policy.approval.resolved.
func (s *Server) resolveApproval(ap *approvalRec, status string, now time.Time) {
	ap.Status, ap.DateUpdated = status, now
	ap.DateResolved = &now
	if cr := s.st.ChangeRequests[ap.ChangeRequest]; cr != nil && cr.Status == crPending {
		cr.Status = crRejected
		if status == approvalApproved {
			cr.Status = s.applyChange(cr, now)
		}
		cr.DateResolved = &now
		s.clearPending(cr)
	}
	s.emitEvent("policy.approval.resolved", map[string]any{"approval": s.approvalJSON(ap)}, now)
}

func (s *Server) clearPending(cr *changeRec) {
	if p := s.st.Permissions[cr.EntityID]; p != nil && p.PendingCR == cr.ID {
		p.PendingCR = ""
	}
	if a := s.st.Assignments[cr.EntityID]; a != nil && a.PendingCR == cr.ID {
		a.PendingCR = ""
	}
	if p := s.st.Policies[cr.EntityID]; p != nil && p.PendingCR == cr.ID {
		p.PendingCR = ""
	}
}

// applyChange carries out an approved change; it answers Applied, or Failed when the change
// is no longer possible (entity gone, name taken meanwhile, ...).
func (s *Server) applyChange(cr *changeRec, now time.Time) string {
	var ok bool
	switch cr.Kind {
	case "Permission":
		ok = s.applyPermissionChange(cr, now)
	case "Assignment":
		ok = s.applyAssignmentChange(cr, now)
	case "Policy":
		ok = s.applyPolicyChange(cr, now)
	}
	if !ok {
		return crFailed
	}
	return crApplied
}

func (s *Server) applyPermissionChange(cr *changeRec, now time.Time) bool {
	var b permissionBody
	if json.Unmarshal(cr.Body, &b) != nil {
		return false
	}
	p := s.st.Permissions[cr.EntityID]
	if cr.OperationKind == "Create" { // held by strict "hold-creates"
		if p != nil || s.permissionByName(b.Name) != nil {
			return false
		}
		p = &permRec{ID: cr.EntityID, DateCreated: now, Seq: s.nextSeq()}
		s.st.Permissions[p.ID] = p
		s.applyPermission(p, b, now)
		return true
	}
	if p == nil {
		return false
	}
	if other := s.permissionByName(b.Name); other != nil && other.ID != p.ID {
		return false
	}
	s.applyPermission(p, b, now)
	return true
}

func (s *Server) applyAssignmentChange(cr *changeRec, now time.Time) bool {
	var b assignmentBody
	if json.Unmarshal(cr.Body, &b) != nil {
		return false
	}
	if cr.OperationKind == "Delete" {
		if s.st.Assignments[b.ID] == nil {
			return false
		}
		s.unassign(b.ID)
		return true
	}
	p := s.st.Permissions[b.PermissionID]
	if p == nil || p.IsArchived || !s.identityExists(b.IdentityID) {
		return false
	}
	for _, a := range s.st.Assignments {
		if a.PermissionID == b.PermissionID && a.IdentityID == b.IdentityID {
			return false
		}
	}
	a := s.assign(b.PermissionID, b.IdentityID, now)
	delete(s.st.Assignments, a.ID) // the same record under the ID the change request named
	a.ID = b.ID
	s.st.Assignments[a.ID] = a
	return true
}

func (s *Server) applyPolicyChange(cr *changeRec, now time.Time) bool {
	var b policyBody
	if json.Unmarshal(cr.Body, &b) != nil {
		return false
	}
	p := s.st.Policies[cr.EntityID]
	if cr.OperationKind == "Create" { // held by strict "hold-creates"
		if p != nil {
			return false
		}
		b.ID, b.Status = cr.EntityID, policyActive
		s.st.Policies[b.ID] = &policyRec{policyBody: b, DateCreated: now, DateUpdated: now, Seq: s.nextSeq()}
		return true
	}
	if p == nil {
		return false
	}
	p.policyBody = b
	p.DateUpdated = now
	return true
}

// sweepExpiredApprovals expires pending approvals past their autoRejectTimeout; it reports
// whether any expired.
func (s *Server) sweepExpiredApprovals(now time.Time) bool {
	expired := false
	for _, ap := range s.st.Approvals {
		if ap.Status == approvalPending && ap.ExpirationDate != nil && now.After(*ap.ExpirationDate) {
			s.resolveApproval(ap, approvalExpired, now)
			expired = true
		}
	}
	return expired
}
