package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// fullAdminPermission is the Dfns-managed, immutable permission holding every operation.
const fullAdminPermission = "DfnsFullAdminAccess"

// permRec is a permission.
type permRec struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Operations  []string  `json:"operations"`
	IsImmutable bool      `json:"isImmutable"`
	IsArchived  bool      `json:"isArchived"`
	DateCreated time.Time `json:"dateCreated"`
	DateUpdated time.Time `json:"dateUpdated"`
	Seq         int64     `json:"seq"`
	PendingCR   string    `json:"pendingCr,omitempty"`
}

// assignRec is a permission assignment.
type assignRec struct {
	ID           string    `json:"id"`
	PermissionID string    `json:"permissionId"`
	IdentityID   string    `json:"identityId"`
	IsImmutable  bool      `json:"isImmutable"`
	DateCreated  time.Time `json:"dateCreated"`
	DateUpdated  time.Time `json:"dateUpdated"`
	Seq          int64     `json:"seq"`
	PendingCR    string    `json:"pendingCr,omitempty"`
}

// permissionBody is the permission as it appears in a change request body.
type permissionBody struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	Operations  []string `json:"operations"`
	IsImmutable bool     `json:"isImmutable"`
	IsArchived  bool     `json:"isArchived"`
}

// assignmentBody is the assignment as it appears in a change request body.
type assignmentBody struct {
	ID           string `json:"id"`
	PermissionID string `json:"permissionId"`
	IdentityID   string `json:"identityId"`
	IsImmutable  bool   `json:"isImmutable"`
}

func (s *Server) seedPermissionsLocked(now time.Time) {
	p := &permRec{
		ID: s.newID("pm"), Name: fullAdminPermission, Operations: slices.Clone(allOperations),
		IsImmutable: true, DateCreated: now, DateUpdated: now, Seq: s.nextSeq(),
	}
	s.st.Permissions[p.ID] = p
}

func (s *Server) permissionByName(name string) *permRec {
	for _, p := range s.st.Permissions {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// operationsOf returns the operations granted to an identity by its assignments of
// non-archived permissions.
func (s *Server) operationsOf(identityID string) map[string]bool {
	ops := map[string]bool{}
	for _, a := range s.assignmentsOf(identityID) {
		p := s.st.Permissions[a.PermissionID]
		if p == nil || p.IsArchived {
			continue
		}
		for _, op := range p.Operations {
			ops[op] = true
		}
	}
	return ops
}

// allowed reports whether the caller holds op. A PAT holds an operation only if both the PAT
// and its owning user do (a PAT never exceeds its user).
func (s *Server) allowed(c *caller, op string) bool {
	if !s.operationsOf(c.identityID())[op] {
		return false
	}
	if c.token != nil && c.token.Kind == tokenKindPat {
		return s.operationsOf(c.user.ID)[op]
	}
	return true
}

// assign records a (mutable) assignment of a permission to an identity.
func (s *Server) assign(permissionID, identityID string, now time.Time) *assignRec {
	a := &assignRec{
		ID: s.newID("as"), PermissionID: permissionID, IdentityID: identityID,
		DateCreated: now, DateUpdated: now, Seq: s.nextSeq(),
	}
	s.st.Assignments[a.ID] = a
	if s.asgIdx != nil {
		s.asgIdx[identityID] = append(s.asgIdx[identityID], a)
	}
	return a
}

// assignmentsOf returns the identity's applied assignments, oldest first. The caller holds s.mu.
func (s *Server) assignmentsOf(identityID string) []*assignRec {
	if s.asgIdx == nil {
		s.asgIdx = byOwner(s.st.Assignments, func(a *assignRec) string { return a.IdentityID },
			func(a, b *assignRec) int { return int(a.Seq - b.Seq) })
	}
	return s.asgIdx[identityID]
}

// unassign removes an applied assignment.
func (s *Server) unassign(id string) {
	delete(s.st.Assignments, id)
	s.asgIdx = nil
}

func (s *Server) permissionJSON(p *permRec) map[string]any {
	m := map[string]any{
		"id": p.ID, "name": p.Name, "operations": p.Operations, "status": "Active",
		"isImmutable": p.IsImmutable, "isArchived": p.IsArchived,
		"dateCreated": isoTime(p.DateCreated), "dateUpdated": isoTime(p.DateUpdated),
	}
	if cr := s.pendingCR(p.PendingCR); cr != nil {
		m["pendingChangeRequest"] = s.changeRequestJSON(cr)
	}
	return m
}

func (s *Server) assignmentJSON(a *assignRec) map[string]any {
	m := map[string]any{
		"id": a.ID, "permissionId": a.PermissionID, "identityId": a.IdentityID, "isImmutable": a.IsImmutable,
		"dateCreated": isoTime(a.DateCreated), "dateUpdated": isoTime(a.DateUpdated),
	}
	if cr := s.pendingCR(a.PendingCR); cr != nil {
		m["pendingChangeRequest"] = s.changeRequestJSON(cr)
	}
	return m
}

// pendingAssignments are, in strict "pending-listed" mode, the assignments that pending
// creation change requests will make, for listing: their ID is the change request's entityId
// and their pendingChangeRequest that change request; nil otherwise.
func (s *Server) pendingAssignments() []*assignRec {
	if !s.Strict().PendingListed {
		return nil
	}
	var out []*assignRec
	for _, cr := range s.st.ChangeRequests {
		if cr.Status != crPending || cr.Kind != "Assignment" || cr.OperationKind != "Create" {
			continue
		}
		var seq int64
		if ap := s.st.Approvals[cr.ApprovalID]; ap != nil {
			seq = ap.Seq
		}
		out = append(out, &assignRec{
			ID: cr.EntityID, PermissionID: cr.PermissionID, IdentityID: cr.IdentityID,
			DateCreated: cr.DateCreated, DateUpdated: cr.DateCreated, Seq: seq, PendingCR: cr.ID,
		})
	}
	return out
}

// permissionAssignments is the permissionAssignments[] of a user, SA or PAT; in strict
// "pending-listed" mode it includes pending creations, which its item shape cannot mark.
func (s *Server) permissionAssignments(identityID string) []map[string]any {
	list := slices.Clone(s.assignmentsOf(identityID))
	if s.memo != nil {
		list = append(list, s.memo.pending[identityID]...)
	} else {
		for _, a := range s.pendingAssignments() {
			if a.IdentityID == identityID {
				list = append(list, a)
			}
		}
	}
	slices.SortFunc(list, func(a, b *assignRec) int { return int(a.Seq - b.Seq) })
	out := make([]map[string]any, 0, len(list))
	for _, a := range list {
		name := ""
		if p := s.st.Permissions[a.PermissionID]; p != nil {
			name = p.Name
		}
		out = append(out, map[string]any{"permissionName": name, "permissionId": a.PermissionID, "assignmentId": a.ID})
	}
	return out
}

// checkOperations validates an operations list against the enum of docs/dfns-api.md §5.
func checkOperations(ops []string) error {
	if len(ops) == 0 {
		return errBadRequest("operations must contain at least one operation")
	}
	for _, op := range ops {
		if !operationSet[op] {
			return errBadRequest("operations contains an unknown operation %q", op)
		}
	}
	return nil
}

type createPermissionRequest struct {
	Name       *string  `json:"name"`
	Operations []string `json:"operations"`
}

func (s *Server) createPermission(c *call) (*reply, error) {
	var req createPermissionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if err := checkOperations(req.Operations); err != nil {
		return nil, err
	}
	if s.permissionByName(*req.Name) != nil {
		return nil, errConflict("a permission named %q already exists (names stay taken after archiving)", *req.Name)
	}
	if cr := s.pendingPermissionCreate(*req.Name); cr != nil {
		return nil, s.pendingConflict(cr)
	}
	id := s.newID("pm")
	if s.Strict().HoldCreates {
		pols, err := s.evaluatePolicies(activityPermissionsModify, id)
		if err != nil {
			return nil, err
		}
		if len(pols) > 0 {
			next := permissionBody{ID: id, Name: *req.Name, Status: "Active", Operations: dedupe(req.Operations)}
			cr := s.openChangeRequest(c, activityPermissionsModify, "Permission", "Create", id, next, pols)
			return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
		}
	}
	p := &permRec{
		ID: id, Name: *req.Name, Operations: dedupe(req.Operations),
		DateCreated: c.now, DateUpdated: c.now, Seq: s.nextSeq(),
	}
	s.st.Permissions[p.ID] = p
	return ok(s.permissionJSON(p)), nil
}

// pendingPermissionCreate returns the pending change request creating a permission named
// name (strict "hold-creates"), or nil.
func (s *Server) pendingPermissionCreate(name string) *changeRec {
	for _, cr := range s.st.ChangeRequests {
		if cr.Status != crPending || cr.Kind != "Permission" || cr.OperationKind != "Create" {
			continue
		}
		var b permissionBody
		if json.Unmarshal(cr.Body, &b) == nil && b.Name == name {
			return cr
		}
	}
	return nil
}

func dedupe(in []string) []string {
	out := []string{}
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) findPermission(id string) (*permRec, error) {
	p := s.st.Permissions[id]
	if p == nil {
		return nil, errNotFound("permission %s not found", id)
	}
	return p, nil
}

func (s *Server) getPermission(c *call) (*reply, error) {
	p, err := s.findPermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(s.permissionJSON(p)), nil
}

func (s *Server) listPermissions(c *call) (*reply, error) {
	all := make([]*permRec, 0, len(s.st.Permissions))
	for _, p := range s.st.Permissions {
		all = append(all, p)
	}
	items, next, err := paginate(c, all, func(p *permRec) int64 { return p.Seq }, 50)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, p := range items {
		out.Items = append(out.Items, s.permissionJSON(p))
	}
	return ok(out), nil
}

// modifiablePermission checks a permission can be changed now.
func (s *Server) modifiablePermission(id string) (*permRec, error) {
	p, err := s.findPermission(id)
	if err != nil {
		return nil, err
	}
	if p.IsImmutable {
		return nil, errForbidden("permission %s is immutable", p.ID)
	}
	if cr := s.pendingCR(p.PendingCR); cr != nil {
		return nil, s.pendingConflict(cr)
	}
	return p, nil
}

type updatePermissionRequest struct {
	Name       *string  `json:"name"`
	Operations []string `json:"operations"`
}

func (s *Server) updatePermission(c *call) (*reply, error) {
	var req updatePermissionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	p, err := s.modifiablePermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	next := permissionBody{ID: p.ID, Name: p.Name, Status: "Active", Operations: p.Operations, IsArchived: p.IsArchived}
	if req.Name != nil {
		if err := checkName(req.Name); err != nil {
			return nil, err
		}
		if other := s.permissionByName(*req.Name); other != nil && other.ID != p.ID {
			return nil, errConflict("a permission named %q already exists (names stay taken after archiving)", *req.Name)
		}
		next.Name = *req.Name
	}
	if req.Operations != nil {
		if err := checkOperations(req.Operations); err != nil {
			return nil, err
		}
		next.Operations = dedupe(req.Operations)
	}
	return s.changePermission(c, p, next)
}

type archivePermissionRequest struct {
	IsArchived *bool `json:"isArchived"`
}

func (s *Server) archivePermission(c *call) (*reply, error) {
	var req archivePermissionRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.IsArchived == nil {
		return nil, errBadRequest("isArchived is required")
	}
	p, err := s.modifiablePermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	next := permissionBody{ID: p.ID, Name: p.Name, Status: "Active", Operations: p.Operations, IsArchived: *req.IsArchived}
	return s.changePermission(c, p, next)
}

// changePermission applies an update/archive now, or opens a change request when a
// Permissions:Modify policy requires approval.
func (s *Server) changePermission(c *call, p *permRec, next permissionBody) (*reply, error) {
	pols, err := s.evaluatePolicies(activityPermissionsModify, p.ID)
	if err != nil {
		return nil, err
	}
	if len(pols) > 0 {
		cr := s.openChangeRequest(c, activityPermissionsModify, "Permission", "Update", p.ID, next, pols)
		p.PendingCR = cr.ID
		return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
	}
	s.applyPermission(p, next, c.now)
	return ok(s.permissionJSON(p)), nil
}

func (s *Server) applyPermission(p *permRec, next permissionBody, now time.Time) {
	p.Name, p.Operations, p.IsArchived, p.DateUpdated = next.Name, next.Operations, next.IsArchived, now
}

type assignRequest struct {
	IdentityID *string `json:"identityId"`
}

// identityExists reports whether id names a live (not archived) user, service account or PAT.
func (s *Server) identityExists(id string) bool {
	if u := s.st.Users[id]; u != nil {
		return !u.IsArchived
	}
	t := s.st.Tokens[id]
	return t != nil && t.Kind == tokenKindPat && !t.IsArchived
}

func (s *Server) assignPermission(c *call) (*reply, error) {
	var req assignRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return nil, err
	}
	if req.IdentityID == nil || *req.IdentityID == "" {
		return nil, errBadRequest("identityId is required")
	}
	p, err := s.findPermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	if p.IsArchived {
		return nil, errBadRequest("permission %s is archived and cannot be assigned", p.ID)
	}
	if !s.identityExists(*req.IdentityID) {
		return nil, errNotFound("identity %s not found", *req.IdentityID)
	}
	for _, a := range s.st.Assignments {
		if a.PermissionID == p.ID && a.IdentityID == *req.IdentityID {
			return nil, errConflict("permission %s is already assigned to %s (assignment %s)", p.ID, a.IdentityID, a.ID)
		}
	}
	for _, cr := range s.st.ChangeRequests {
		if cr.Status == crPending && cr.Kind == "Assignment" && cr.OperationKind == "Create" &&
			cr.PermissionID == p.ID && cr.IdentityID == *req.IdentityID {
			return nil, s.pendingConflict(cr)
		}
	}
	pols, err := s.evaluatePolicies(activityPermissionsAssign, p.ID)
	if err != nil {
		return nil, err
	}
	if len(pols) > 0 {
		body := assignmentBody{ID: s.newID("as"), PermissionID: p.ID, IdentityID: *req.IdentityID}
		cr := s.openChangeRequest(c, activityPermissionsAssign, "Assignment", "Create", body.ID, body, pols)
		return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
	}
	a := s.assign(p.ID, *req.IdentityID, c.now)
	return ok(s.assignmentJSON(a)), nil
}

func (s *Server) listAssignments(c *call) (*reply, error) {
	p, err := s.findPermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	var all []*assignRec
	for _, a := range s.st.Assignments {
		if a.PermissionID == p.ID {
			all = append(all, a)
		}
	}
	for _, a := range s.pendingAssignments() {
		if a.PermissionID == p.ID {
			all = append(all, a)
		}
	}
	items, next, err := paginate(c, all, func(a *assignRec) int64 { return a.Seq }, 50)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, a := range items {
		out.Items = append(out.Items, s.assignmentJSON(a))
	}
	return ok(out), nil
}

// revokePermission deletes an assignment. The force query parameter is accepted and ignored:
// policies still apply.
func (s *Server) revokePermission(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	p, err := s.findPermission(c.param("id"))
	if err != nil {
		return nil, err
	}
	a := s.st.Assignments[c.param("aid")]
	if a == nil {
		for _, pa := range s.pendingAssignments() { // listed in strict "pending-listed" mode
			if pa.ID == c.param("aid") && pa.PermissionID == p.ID {
				return nil, s.pendingConflict(s.st.ChangeRequests[pa.PendingCR])
			}
		}
	}
	if a == nil || a.PermissionID != p.ID {
		return nil, errNotFound("assignment %s not found", c.param("aid"))
	}
	if a.IsImmutable {
		return nil, errForbidden("assignment %s is immutable", a.ID)
	}
	if cr := s.pendingCR(a.PendingCR); cr != nil {
		return nil, s.pendingConflict(cr)
	}
	pols, err := s.evaluatePolicies(activityPermissionsAssign, p.ID)
	if err != nil {
		return nil, err
	}
	if len(pols) > 0 {
		body := assignmentBody{ID: a.ID, PermissionID: a.PermissionID, IdentityID: a.IdentityID, IsImmutable: a.IsImmutable}
		cr := s.openChangeRequest(c, activityPermissionsAssign, "Assignment", "Delete", a.ID, body, pols)
		a.PendingCR = cr.ID
		return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
	}
	s.unassign(a.ID)
	return &reply{status: http.StatusNoContent}, nil
}

// deleteAssignmentsOf removes every assignment of a deleted identity.
func (s *Server) deleteAssignmentsOf(identityID string) {
	for id, a := range s.st.Assignments {
		if a.IdentityID == identityID {
			s.unassign(id)
		}
	}
}

// listMemo indexes, for one list answer, every identity's pending assignments (listed in strict
// "pending-listed" mode), which are read from the change requests.
type listMemo struct {
	pending map[string][]*assignRec
}

// memoize sets s.memo for the list answer being built; the caller holds s.mu and calls the
// function it returns when the answer is built.
func (s *Server) memoize() (done func()) {
	m := &listMemo{pending: map[string][]*assignRec{}}
	for _, a := range s.pendingAssignments() {
		m.pending[a.IdentityID] = append(m.pending[a.IdentityID], a)
	}
	s.memo = m
	return func() { s.memo = nil }
}
