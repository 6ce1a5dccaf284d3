package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Activity kinds whose policies the sandbox enforces, and change-request statuses.
const (
	activityPermissionsModify = "Permissions:Modify"
	activityPermissionsAssign = "Permissions:Assign"
	activityPoliciesModify    = "Policies:Modify"

	crPending  = "Pending"
	crApplied  = "Applied"
	crFailed   = "Failed"
	crRejected = "Rejected"

	policyActive   = "Active"
	policyArchived = "Archived"
)

// inFilter is {"in": [...]}.
type inFilter struct {
	In []string `json:"in"`
}

// tagsFilter is the walletTags filter.
type tagsFilter struct {
	HasAny []string `json:"hasAny,omitempty"`
	HasAll []string `json:"hasAll,omitempty"`
}

// policyFilters holds every filter key of any activity kind; validation allows only the
// activity's own keys.
type policyFilters struct {
	PermissionID *inFilter   `json:"permissionId,omitempty"`
	PolicyID     *inFilter   `json:"policyId,omitempty"`
	WalletID     *inFilter   `json:"walletId,omitempty"`
	WalletTags   *tagsFilter `json:"walletTags,omitempty"`
}

// policyRule is a rule; configuration is kept as sent (only its JSON shape is checked).
type policyRule struct {
	Kind          string          `json:"kind"`
	Configuration json.RawMessage `json:"configuration,omitempty"`
}

// approverSpec is {} (anyone in the org) or {"userId":{"in":[...]}}.
type approverSpec struct {
	UserID *inFilter `json:"userId,omitempty"`
}

// approvalGroup is one group of a RequestApproval action.
type approvalGroup struct {
	Name                      *string      `json:"name,omitempty"`
	Quorum                    int          `json:"quorum"`
	Approvers                 approverSpec `json:"approvers"`
	InitiatorCanApprove       *bool        `json:"initiatorCanApprove,omitempty"`
	ServiceAccountsCanApprove *bool        `json:"serviceAccountsCanApprove,omitempty"`
}

// policyAction is RequestApproval, Block or NoAction.
type policyAction struct {
	Kind              string          `json:"kind"`
	ApprovalGroups    []approvalGroup `json:"approvalGroups,omitempty"`
	AutoRejectTimeout *int            `json:"autoRejectTimeout,omitempty"`
}

// policyBody is the policy as sent on create/update and as shown in change requests.
type policyBody struct {
	ID           string         `json:"id,omitempty"`
	Name         string         `json:"name"`
	ActivityKind string         `json:"activityKind"`
	Rule         policyRule     `json:"rule"`
	Action       policyAction   `json:"action"`
	Filters      *policyFilters `json:"filters,omitempty"`
	Status       string         `json:"status,omitempty"`
}

// policyRec is a stored policy.
type policyRec struct {
	policyBody
	DateCreated time.Time `json:"dateCreated"`
	DateUpdated time.Time `json:"dateUpdated"`
	Seq         int64     `json:"seq"`
	PendingCR   string    `json:"pendingCr,omitempty"`
}

// activitySpec is one row of the activity/rule/action/filter combination table
// (docs/dfns-api.md §3.8).
type activitySpec struct {
	rules   []string
	actions []string
	filters []string
}

var walletSignRules = []string{
	"AlwaysTrigger", "TransactionRecipientWhitelist", "TransactionAmountLimit", "TransactionAmountVelocity",
	"TransactionCountVelocity", "ChainalysisTransactionPrescreening", "GlobalLedgerTransactionPrescreening",
	"TravelRuleTransactionPrescreening",
}

var activitySpecs = map[string]activitySpec{
	"Wallets:Sign":                    {walletSignRules, []string{"RequestApproval", "Block", "NoAction"}, []string{"walletId", "walletTags"}},
	"Wallets:IncomingTransaction":     {[]string{"ChainalysisTransactionScreening"}, []string{"NoAction"}, []string{"walletId", "walletTags"}},
	activityPermissionsAssign:         {[]string{"AlwaysTrigger"}, []string{"RequestApproval", "Block"}, []string{"permissionId"}},
	activityPermissionsModify:         {[]string{"AlwaysTrigger"}, []string{"RequestApproval", "Block"}, []string{"permissionId"}},
	activityPoliciesModify:            {[]string{"AlwaysTrigger"}, []string{"RequestApproval"}, []string{"policyId"}},
	"Registry:Addresses:Modify":       {[]string{"AlwaysTrigger"}, []string{"RequestApproval", "Block"}, nil},
	"Registry:ContractSchemas:Modify": {[]string{"AlwaysTrigger"}, []string{"RequestApproval", "Block"}, nil},
}

// policyRequest is the create/update body; fields are raw so that each can be validated
// with a precise message.
type policyRequest struct {
	Name         *string         `json:"name"`
	ActivityKind *string         `json:"activityKind"`
	Rule         *policyRule     `json:"rule"`
	Action       *policyAction   `json:"action"`
	Filters      json.RawMessage `json:"filters"`
}

// parsePolicy validates a policy body against the combination table; strictInput (strict
// "input" mode) also checks rule configurations against @dfns/sdk 0.8.21.
func parsePolicy(body []byte, strictInput bool) (*policyBody, error) {
	var req policyRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if req.ActivityKind == nil || req.Rule == nil || req.Action == nil {
		return nil, errBadRequest("activityKind, rule and action are required")
	}
	spec, found := activitySpecs[*req.ActivityKind]
	if !found {
		return nil, errBadRequest("activityKind %q is not supported", *req.ActivityKind)
	}
	p := &policyBody{Name: *req.Name, ActivityKind: *req.ActivityKind, Rule: *req.Rule, Action: *req.Action}
	if err := checkRule(p.ActivityKind, spec, &p.Rule); err != nil {
		return nil, err
	}
	if strictInput {
		if err := checkRuleConfiguration(p.Rule); err != nil {
			return nil, err
		}
	}
	if err := checkAction(p.ActivityKind, spec, &p.Action); err != nil {
		return nil, err
	}
	f, err := parseFilters(p.ActivityKind, spec, req.Filters)
	if err != nil {
		return nil, err
	}
	p.Filters = f
	return p, nil
}

func checkRule(activity string, spec activitySpec, r *policyRule) error {
	if !slices.Contains(spec.rules, r.Kind) {
		return errBadRequest("rule kind %q is not allowed for activityKind %s", r.Kind, activity)
	}
	cfg := bytes.TrimSpace(r.Configuration)
	if len(cfg) == 0 || string(cfg) == "null" {
		r.Configuration = nil
		if r.Kind != "AlwaysTrigger" {
			return errBadRequest("rule.configuration is required for rule kind %s", r.Kind)
		}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &obj); err != nil {
		return errBadRequest("rule.configuration must be an object")
	}
	if r.Kind == "AlwaysTrigger" && len(obj) > 0 {
		return errBadRequest("rule.configuration must be empty for AlwaysTrigger")
	}
	return nil
}

// chainalysisConfig is the configuration of the Chainalysis rules (@dfns/sdk 0.8.21:
// ChainalysisTransactionPrescreening, and ChainalysisTransactionScreening without addresses).
type chainalysisConfig struct {
	Alerts *struct {
		AlertLevel  *string `json:"alertLevel"`
		CategoryIDs []int   `json:"categoryIds"`
	} `json:"alerts"`
	Exposures *struct {
		Direct *struct {
			CategoryIDs []int `json:"categoryIds"`
		} `json:"direct"`
	} `json:"exposures"`
	Addresses *struct {
		CategoryIDs []int `json:"categoryIds"`
	} `json:"addresses"`
	FallbackBehaviours *struct {
		SkipUnscreenableTransaction *bool `json:"skipUnscreenableTransaction"`
		SkipUnsupportedNetwork      *bool `json:"skipUnsupportedNetwork"`
		SkipUnsupportedAsset        *bool `json:"skipUnsupportedAsset"`
		SkipChainalysisFailure      *bool `json:"skipChainalysisFailure"`
	} `json:"fallbackBehaviours"`
}

// checkRuleConfiguration is strict "input" mode's check of a rule configuration: the amount
// rules' currency is USD only, and the Chainalysis rules need every field @dfns/sdk 0.8.21
// requires (only userIdTemplate is optional).
func checkRuleConfiguration(r policyRule) error {
	switch r.Kind {
	case "TransactionAmountLimit", "TransactionAmountVelocity":
		var cfg struct {
			Currency *string `json:"currency"`
		}
		if err := json.Unmarshal(r.Configuration, &cfg); err != nil {
			return decodeError(err)
		}
		if cfg.Currency == nil || *cfg.Currency != "USD" {
			return errBadRequest("rule.configuration.currency must be USD")
		}
	case "ChainalysisTransactionPrescreening", "ChainalysisTransactionScreening":
		var cfg chainalysisConfig
		if err := json.Unmarshal(r.Configuration, &cfg); err != nil {
			return decodeError(err)
		}
		missing := ""
		fb := cfg.FallbackBehaviours
		switch {
		case cfg.Alerts == nil || cfg.Alerts.AlertLevel == nil || cfg.Alerts.CategoryIDs == nil:
			missing = "alerts.alertLevel and alerts.categoryIds"
		case cfg.Exposures == nil || cfg.Exposures.Direct == nil || cfg.Exposures.Direct.CategoryIDs == nil:
			missing = "exposures.direct.categoryIds"
		case r.Kind == "ChainalysisTransactionPrescreening" && (cfg.Addresses == nil || cfg.Addresses.CategoryIDs == nil):
			missing = "addresses.categoryIds"
		case fb == nil || fb.SkipUnscreenableTransaction == nil || fb.SkipUnsupportedNetwork == nil ||
			fb.SkipUnsupportedAsset == nil || fb.SkipChainalysisFailure == nil:
			missing = "fallbackBehaviours.skipUnscreenableTransaction, skipUnsupportedNetwork, skipUnsupportedAsset and skipChainalysisFailure"
		}
		if missing != "" {
			return errBadRequest("rule.configuration.%s are required for rule kind %s", missing, r.Kind)
		}
		return checkEnum("rule.configuration.alerts.alertLevel", *cfg.Alerts.AlertLevel, "LOW", "MEDIUM", "HIGH", "SEVERE")
	}
	return nil
}

func checkAction(activity string, spec activitySpec, a *policyAction) error {
	if !slices.Contains(spec.actions, a.Kind) {
		return errBadRequest("action kind %q is not allowed for activityKind %s", a.Kind, activity)
	}
	if a.Kind != "RequestApproval" {
		if len(a.ApprovalGroups) > 0 || a.AutoRejectTimeout != nil {
			return errBadRequest("action kind %s takes no approvalGroups or autoRejectTimeout", a.Kind)
		}
		return nil
	}
	if len(a.ApprovalGroups) == 0 {
		return errBadRequest("action.approvalGroups must contain at least one group")
	}
	for _, g := range a.ApprovalGroups {
		if g.Quorum < 1 {
			return errBadRequest("action.approvalGroups[].quorum must be at least 1")
		}
		if g.Approvers.UserID != nil && len(g.Approvers.UserID.In) == 0 {
			return errBadRequest("action.approvalGroups[].approvers.userId.in must not be empty")
		}
	}
	if a.AutoRejectTimeout != nil && *a.AutoRejectTimeout < 1 {
		return errBadRequest("action.autoRejectTimeout must be at least 1 minute")
	}
	return nil
}

func parseFilters(activity string, spec activitySpec, raw json.RawMessage) (*policyFilters, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, errBadRequest("filters must be an object")
	}
	for k := range keys {
		if !slices.Contains(spec.filters, k) {
			return nil, errBadRequest("filter %q is not allowed for activityKind %s", k, activity)
		}
	}
	var f policyFilters
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, decodeError(err)
	}
	for _, in := range []*inFilter{f.PermissionID, f.PolicyID, f.WalletID} {
		if in != nil && in.In == nil {
			return nil, errBadRequest("filters: \"in\" is required")
		}
	}
	return &f, nil
}

// matches reports whether the policy's filters select the entity.
func (p *policyRec) matches(entityID string) bool {
	f := p.Filters
	if f == nil {
		return true
	}
	switch p.ActivityKind {
	case activityPermissionsAssign, activityPermissionsModify:
		return f.PermissionID == nil || slices.Contains(f.PermissionID.In, entityID)
	case activityPoliciesModify:
		return f.PolicyID == nil || slices.Contains(f.PolicyID.In, entityID)
	}
	return true
}

// evaluatePolicies returns the active RequestApproval policies that cover the activity on
// the entity, or a 403 when a Block policy does.
func (s *Server) evaluatePolicies(activity, entityID string) ([]*policyRec, error) {
	var out []*policyRec
	for _, p := range s.sortedPolicies() {
		if p.Status != policyActive || p.ActivityKind != activity || !p.matches(entityID) {
			continue
		}
		if p.Action.Kind == "Block" {
			return nil, errForbidden("the request was blocked by policy %s (%s)", p.ID, p.Name)
		}
		if p.Action.Kind == "RequestApproval" {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *Server) sortedPolicies() []*policyRec {
	list := make([]*policyRec, 0, len(s.st.Policies))
	for _, p := range s.st.Policies {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b *policyRec) int { return int(a.Seq - b.Seq) })
	return list
}

func (s *Server) policyJSON(p *policyRec) map[string]any {
	m := map[string]any{
		"id": p.ID, "name": p.Name, "activityKind": p.ActivityKind, "rule": p.Rule, "action": p.Action,
		"status": p.Status, "dateCreated": isoTime(p.DateCreated), "dateUpdated": isoTime(p.DateUpdated),
	}
	if p.Filters != nil {
		m["filters"] = p.Filters
	}
	if cr := s.pendingCR(p.PendingCR); cr != nil {
		m["pendingChangeRequest"] = s.changeRequestJSON(cr)
	}
	if s.Strict().PolicyDefaults {
		raw, _ := json.Marshal(m) // maps, strings and policy structs always marshal
		return withPolicyDefaults(raw)
	}
	return m
}

// policyLimitKeys are the rule configuration numbers strict "policy-defaults" mode echoes as
// strings (Dfns amounts are decimal strings).
var policyLimitKeys = []string{"limit", "riskScoreThreshold"}

// withPolicyDefaults decodes a policy (or a policy change request body) and adds what strict
// "policy-defaults" mode echoes although the client did not send it: rule.configuration {}
// when absent, limit and riskScoreThreshold as strings, for RequestApproval an
// autoRejectTimeout null and per approval group name null, initiatorCanApprove and
// serviceAccountsCanApprove false, and filters {} when absent. Other numbers stay as sent.
func withPolicyDefaults(raw []byte) map[string]any {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		return m
	}
	if rule, isObj := m["rule"].(map[string]any); isObj {
		cfg, hasCfg := rule["configuration"].(map[string]any)
		if !hasCfg {
			cfg = map[string]any{}
		}
		for _, k := range policyLimitKeys {
			if n, isNum := cfg[k].(json.Number); isNum {
				cfg[k] = n.String()
			}
		}
		rule["configuration"] = cfg
	}
	if action, isObj := m["action"].(map[string]any); isObj && action["kind"] == "RequestApproval" {
		setDefault(action, "autoRejectTimeout", nil)
		groups, _ := action["approvalGroups"].([]any)
		for _, g := range groups {
			if group, isGroup := g.(map[string]any); isGroup {
				setDefault(group, "name", nil)
				setDefault(group, "initiatorCanApprove", false)
				setDefault(group, "serviceAccountsCanApprove", false)
			}
		}
	}
	if m["filters"] == nil {
		m["filters"] = map[string]any{}
	}
	return m
}

func setDefault(m map[string]any, key string, v any) {
	if _, has := m[key]; !has {
		m[key] = v
	}
}

// createPolicy creates a policy. In strict "hold-creates" mode an active Policies:Modify
// policy that selects the new policy (one without a policyId filter) holds the creation: 202,
// a change request (kind Policy, operationKind Create, entityId the ID the policy will get).
func (s *Server) createPolicy(c *call) (*reply, error) {
	body, err := parsePolicy(c.body, s.Strict().StrictInput)
	if err != nil {
		return nil, err
	}
	id := s.newID("plc")
	if s.Strict().HoldCreates {
		pols, err := s.evaluatePolicies(activityPoliciesModify, id)
		if err != nil {
			return nil, err
		}
		if len(pols) > 0 {
			body.ID, body.Status = id, policyActive
			cr := s.openChangeRequest(c, activityPoliciesModify, "Policy", "Create", id, *body, pols)
			return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
		}
	}
	p := &policyRec{policyBody: *body, DateCreated: c.now, DateUpdated: c.now, Seq: s.nextSeq()}
	p.ID = id
	p.Status = policyActive
	s.st.Policies[p.ID] = p
	return ok(s.policyJSON(p)), nil
}

func (s *Server) findPolicy(id string) (*policyRec, error) {
	p := s.st.Policies[id]
	if p == nil {
		return nil, errNotFound("policy %s not found", id)
	}
	return p, nil
}

func (s *Server) getPolicy(c *call) (*reply, error) {
	p, err := s.findPolicy(c.param("id"))
	if err != nil {
		return nil, err
	}
	return ok(s.policyJSON(p)), nil
}

func (s *Server) listPolicies(c *call) (*reply, error) {
	status := c.r.URL.Query().Get("status")
	if status != "" {
		if err := checkEnum("status", status, policyActive, policyArchived); err != nil {
			return nil, err
		}
	}
	var all []*policyRec
	for _, p := range s.st.Policies {
		if status == "" || p.Status == status {
			all = append(all, p)
		}
	}
	items, next, err := paginate(c, all, func(p *policyRec) int64 { return p.Seq }, 20)
	if err != nil {
		return nil, err
	}
	out := page[map[string]any]{Items: []map[string]any{}, NextPageToken: next}
	for _, p := range items {
		out.Items = append(out.Items, s.policyJSON(p))
	}
	return ok(out), nil
}

func (s *Server) modifiablePolicy(id string) (*policyRec, error) {
	p, err := s.findPolicy(id)
	if err != nil {
		return nil, err
	}
	if cr := s.pendingCR(p.PendingCR); cr != nil {
		return nil, s.pendingConflict(cr)
	}
	return p, nil
}

func (s *Server) updatePolicy(c *call) (*reply, error) {
	body, err := parsePolicy(c.body, s.Strict().StrictInput)
	if err != nil {
		return nil, err
	}
	p, err := s.modifiablePolicy(c.param("id"))
	if err != nil {
		return nil, err
	}
	if p.Status == policyArchived {
		return nil, errBadRequest("policy %s is archived", p.ID)
	}
	body.ID, body.Status = p.ID, p.Status
	return s.changePolicy(c, p, *body, "Update")
}

func (s *Server) archivePolicy(c *call) (*reply, error) {
	if err := decodeOptionalJSON(c.body, &struct{}{}); err != nil {
		return nil, err
	}
	p, err := s.modifiablePolicy(c.param("id"))
	if err != nil {
		return nil, err
	}
	if p.Status == policyArchived {
		return ok(s.policyJSON(p)), nil
	}
	next := p.policyBody
	next.Status = policyArchived
	return s.changePolicy(c, p, next, "Delete")
}

func (s *Server) changePolicy(c *call, p *policyRec, next policyBody, opKind string) (*reply, error) {
	pols, err := s.evaluatePolicies(activityPoliciesModify, p.ID)
	if err != nil {
		return nil, err
	}
	if len(pols) > 0 {
		cr := s.openChangeRequest(c, activityPoliciesModify, "Policy", opKind, p.ID, next, pols)
		p.PendingCR = cr.ID
		return &reply{status: http.StatusAccepted, body: s.changeRequestJSON(cr)}, nil
	}
	p.policyBody = next
	p.DateUpdated = c.now
	return ok(s.policyJSON(p)), nil
}
