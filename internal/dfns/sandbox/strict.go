package sandbox

import (
	"fmt"
	"strings"
)

// Strictness selects, behaviour by behaviour, the less kind reading of the Dfns
// documentation where it leaves behaviour open (issue #16; docs/dfns-compatibility.md). The
// zero value is the sandbox's default, kind reading; StrictAll turns every behaviour on. The
// package documentation lists what each behaviour does in either mode.
type Strictness struct {
	// ArchiveKeepsListed ("archive"): a deleted service account, PAT or user stays listed and
	// readable with isActive false, and its name stays taken.
	ArchiveKeepsListed bool
	// NoApprovalID ("no-approval-id"): change requests carry no approvalId.
	NoApprovalID bool
	// EmptyCredID ("empty-cred-id"): create answers carry "credId": "".
	EmptyCredID bool
	// PolicyDefaults ("policy-defaults"): policies are read back with the defaults the client
	// did not send, and numeric limits as strings.
	PolicyDefaults bool
	// PendingListed ("pending-listed"): a pending assignment creation is listed, with its
	// pendingChangeRequest.
	PendingListed bool
	// ApproverForce ("approver-force"): deactivating or deleting an identity that is a policy
	// approver needs force.
	ApproverForce bool
	// StrictInput ("input"): policy rule configurations and webhook events are checked against
	// @dfns/sdk 0.8.21.
	StrictInput bool
	// ChallengeSpent ("challenge-spent"): a fault on /auth/action or /auth/login comes after
	// the challenge was consumed.
	ChallengeSpent bool
	// Invitations ("invitations"): a user made with POST /auth/users is invited, and can
	// neither log in nor sign until registered.
	Invitations bool
	// HoldCreates ("hold-creates"): Policies:Modify and Permissions:Modify approval policies
	// also hold the creation of policies and permissions.
	HoldCreates bool
}

// StrictAll is every behaviour's less kind reading (dfns-sandbox --strict).
func StrictAll() Strictness {
	var s Strictness
	for _, b := range strictBehaviours {
		*b.field(&s) = true
	}
	return s
}

// StrictAllName selects every behaviour in ParseStrictness.
const StrictAllName = "all"

// strictBehaviour names one Strictness field.
type strictBehaviour struct {
	name  string
	field func(*Strictness) *bool
}

// strictBehaviours lists the behaviours in the order Names reports them.
var strictBehaviours = []strictBehaviour{
	{"archive", func(s *Strictness) *bool { return &s.ArchiveKeepsListed }},
	{"no-approval-id", func(s *Strictness) *bool { return &s.NoApprovalID }},
	{"empty-cred-id", func(s *Strictness) *bool { return &s.EmptyCredID }},
	{"policy-defaults", func(s *Strictness) *bool { return &s.PolicyDefaults }},
	{"pending-listed", func(s *Strictness) *bool { return &s.PendingListed }},
	{"approver-force", func(s *Strictness) *bool { return &s.ApproverForce }},
	{"input", func(s *Strictness) *bool { return &s.StrictInput }},
	{"challenge-spent", func(s *Strictness) *bool { return &s.ChallengeSpent }},
	{"invitations", func(s *Strictness) *bool { return &s.Invitations }},
	{"hold-creates", func(s *Strictness) *bool { return &s.HoldCreates }},
}

// StrictnessNames lists every behaviour name ParseStrictness knows, without "all".
func StrictnessNames() []string {
	names := make([]string, 0, len(strictBehaviours))
	for _, b := range strictBehaviours {
		names = append(names, b.name)
	}
	return names
}

// ParseStrictness turns behaviour names (see StrictnessNames, or "all") into a Strictness.
// Blank names are ignored; an unknown name is an error.
func ParseStrictness(names []string) (Strictness, error) {
	var s Strictness
	for _, raw := range names {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		if name == StrictAllName {
			s = StrictAll()
			continue
		}
		found := false
		for _, b := range strictBehaviours {
			if b.name == name {
				*b.field(&s) = true
				found = true
			}
		}
		if !found {
			return Strictness{}, fmt.Errorf("unknown strict behaviour %q (known: %s, or %s)",
				name, strings.Join(StrictnessNames(), ","), StrictAllName)
		}
	}
	return s, nil
}

// Names lists the behaviours s turns on, in a fixed order; ParseStrictness(s.Names()) == s.
func (s Strictness) Names() []string {
	names := []string{}
	for _, b := range strictBehaviours {
		if *b.field(&s) {
			names = append(names, b.name)
		}
	}
	return names
}

// SetStrict replaces the strict behaviours; it takes effect for the next call. It is
// configuration, never written to the state file.
func (s *Server) SetStrict(st Strictness) {
	s.strict.Store(&st)
}

// Strict returns the strict behaviours in effect.
func (s *Server) Strict() Strictness {
	if p := s.strict.Load(); p != nil {
		return *p
	}
	return Strictness{}
}
