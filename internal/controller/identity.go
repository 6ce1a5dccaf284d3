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
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// This file mints Dfns identities whose token Dfns shows only once: service accounts and
// personal access tokens. Finding a lost create, minting, replacing an orphan or a lost token,
// and drift in name and activation are shared here; each kind brings only its Dfns calls
// (identityCalls: the two tables at the end of this file).

// Keys of the Secret written for a service account or personal access token (docs/architecture.md, "Secrets written for apps").
const (
	KeyAPIURL     = "DFNS_API_URL"
	KeyOrgID      = "DFNS_ORG_ID"
	KeyAuthToken  = "DFNS_AUTH_TOKEN"
	KeyCredID     = "DFNS_CRED_ID"
	KeyPrivateKey = "DFNS_PRIVATE_KEY"
)

// tokenKeys are the Secret keys whose values identify a minted token: its fingerprint.
var tokenKeys = []string{KeyAuthToken, KeyPrivateKey}

// maxDfnsNameLen is the longest service-account, token or permission name the operator sends.
const maxDfnsNameLen = 100

// nameSuffixLen is the length of the suffix that makes each minted identity's name new
// (".xxxxxx"): rotation keeps two identities side by side, and Dfns may keep the name of a
// deleted one taken.
const nameSuffixLen = 7

// freshName is the resource's base Dfns name with a random suffix.
func freshName(base string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, nameSuffixLen-1)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return base + "." + string(b)
}

// mintable is a resource whose Dfns identity comes with a one-time token.
type mintable interface {
	driver.Object
	DfnsName() string
	SecretName() string
	WantActive() bool
	GetTokenStatus() *v1alpha1.TokenStatus
	GetPermissionRef() v1alpha1.PermissionRef
	GetKeyAlgorithm() v1alpha1.KeyAlgorithm
	GetSecretTemplate() v1alpha1.SecretTemplate
	GetRotation() *v1alpha1.Rotation
}

// identityView is what the minting logic reads of a Dfns identity, and what Observe adds to it.
type identityView struct {
	ID, Name, TokenID string
	Active            bool
	// WantName is the name the identity should have (set by Observe).
	WantName string
	// Fingerprint is the Secret's fingerprint recovered for a status that lost it (set by
	// Observe).
	Fingerprint string
	// Expires is when the token in the Secret expires, recovered for a status that lost it
	// (set by Observe).
	Expires *metav1.Time
}

// mintRequest is the create of a Dfns identity.
type mintRequest struct {
	Name, PublicKey, PermissionID, ExternalID string
}

// identityCalls are the Dfns calls of one identity kind, D being how the Dfns client returns
// that kind. newServiceAccounts and newPersonalAccessTokens fill one in each.
type identityCalls[T mintable, D any] struct {
	// noun names the kind in messages ("service account").
	noun string
	// view reads what the minting logic needs of one.
	view func(*D) identityView
	// token returns the one-time token in a create answer, nil when there is none.
	token func(*D) *dfns.AccessToken
	// credOf returns the credential ID of token tokenID in an answer ("" when it has none).
	credOf func(d *D, tokenID string) string
	// create sends the create of the kind, made from req and the spec.
	create                    func(ctx context.Context, obj T, req mintRequest) (*D, error)
	list                      func(ctx context.Context) ([]D, error)
	get, activate, deactivate func(ctx context.Context, id string) (*D, error)
	rename                    func(ctx context.Context, id, name string) (*D, error)
	remove                    func(ctx context.Context, id string) error
}

// identities is identityCalls with their answers read as identityViews: what the minter uses.
type identities[T mintable] interface {
	nounOf() string
	listViews(ctx context.Context) ([]identityView, error)
	getView(ctx context.Context, id string) (identityView, error)
	// mint makes the identity and returns it as Dfns answered, with the answer's token.
	mint(ctx context.Context, obj T, req mintRequest) (identityView, *dfns.AccessToken, error)
	// credID reads back the credential ID of identity id's token tokenID.
	credID(ctx context.Context, id, tokenID string) (string, error)
	setName(ctx context.Context, id, name string) error
	setActive(ctx context.Context, id string, active bool) error
	delete(ctx context.Context, id string) error
}

func (c identityCalls[T, D]) nounOf() string { return c.noun }

func (c identityCalls[T, D]) listViews(ctx context.Context) ([]identityView, error) {
	all, err := c.list(ctx)
	out := make([]identityView, 0, len(all))
	for i := range all {
		out = append(out, c.view(&all[i]))
	}
	return out, err
}

func (c identityCalls[T, D]) getView(ctx context.Context, id string) (identityView, error) {
	got, err := c.get(ctx, id)
	if err != nil {
		return identityView{}, err
	}
	return c.view(got), nil
}

func (c identityCalls[T, D]) mint(ctx context.Context, obj T, req mintRequest) (identityView, *dfns.AccessToken, error) {
	got, err := c.create(ctx, obj, req)
	if err != nil {
		return identityView{}, nil, err
	}
	return c.view(got), c.token(got), nil
}

func (c identityCalls[T, D]) credID(ctx context.Context, id, tokenID string) (string, error) {
	got, err := c.get(ctx, id)
	if err != nil {
		return "", err
	}
	return c.credOf(got, tokenID), nil
}

func (c identityCalls[T, D]) setName(ctx context.Context, id, name string) error {
	_, err := c.rename(ctx, id, name)
	return err
}

func (c identityCalls[T, D]) setActive(ctx context.Context, id string, active bool) error {
	call := c.deactivate
	if active {
		call = c.activate
	}
	_, err := call(ctx, id)
	return err
}

func (c identityCalls[T, D]) delete(ctx context.Context, id string) error { return c.remove(ctx, id) }

// minter is the driver.External of the kinds that mint a token.
type minter[T mintable] struct {
	kind string
	link
	// calls are the kind's endpoints through the bound connection; callsOf makes them.
	calls   identities[T]
	callsOf func(api dfns.API) identities[T]
	client  client.Client // cached: DfnsPermissions
	refs    client.Reader // the permission a spec references (references)
	secrets driver.SecretReader
	// lists shares one list of the kind per sync period among the drift checks.
	lists *driver.ListCache[identityView]
	// now tells the time: renewals follow it.
	now func() time.Time
}

// newMinter is the External of an identity kind with its endpoints.
func newMinter[T mintable, D any](calls func(api dfns.API) identityCalls[T, D], kind string, c client.Client, r client.Reader,
	syncPeriod time.Duration) *minter[T] {
	return &minter[T]{kind: kind, callsOf: func(api dfns.API) identities[T] { return calls(api) }, client: c,
		refs: references{cache: c, direct: r}, secrets: driver.NewSecretReader(c, r), lists: driver.NewListCache(syncPeriod, identityFields), now: time.Now}
}

// bind returns the kind's calls through one connection.
func (m *minter[T]) bind(l link) driver.External[T, identityView] {
	cp := *m
	cp.link = l
	cp.calls = m.callsOf(l.api)
	return &cp
}

// Validate checks the name's length, which the API server cannot.
func (m *minter[T]) Validate(_ context.Context, obj T) error {
	if n := m.dfnsName(obj.DfnsName()); len(n)+nameSuffixLen > maxDfnsNameLen {
		return driver.Stopf(v1alpha1.ReasonInvalidSpec, "the Dfns name %q with its suffix is longer than %d characters; set a shorter spec.name",
			n, maxDfnsNameLen)
	}
	return nil
}

// Secret names the Secret the token and key go to.
func (m *minter[T]) Secret(obj T) (string, v1alpha1.SecretTemplate) {
	return obj.SecretName(), obj.GetSecretTemplate()
}

// secretOf describes the resource's Secret for the checks of secret.go.
func (m *minter[T]) secretOf(obj T) driver.OneTimeSecret {
	return driver.OneTimeSecret{Owner: obj, Kind: m.kind, Name: obj.SecretName(), Fingerprint: obj.GetTokenStatus().SecretFingerprint,
		StatusID: obj.GetStatusID(), Keys: tokenKeys}
}

// Observe reads the recorded identity and checks both it and the Secret holding its token;
// with no recorded ID it looks for one this resource made (see find). The driver passes a
// recorded ID only when it is proved this resource's: a kind with a one-time secret adopts
// nothing.
func (m *minter[T]) Observe(ctx context.Context, obj T, rec driver.Recorded) (driver.Observation[identityView], error) {
	id := rec.ID
	if id == "" {
		return m.find(ctx, obj, rec.Marked)
	}
	got, err := m.view(ctx, id)
	if dfns.IsNotFound(err) {
		return m.recreate(ctx, obj, id, rec.Marked)
	}
	if err != nil {
		return driver.Observation[identityView]{}, fmt.Errorf("reading %s %s: %w", m.calls.nounOf(), id, err)
	}
	if rec.Marked != "" && rec.Marked != got.Name {
		// A rotation was sent and its ID never recorded: its identity holds the Secret (only
		// the record was lost), or is an orphan to remove before minting again.
		obs, err := m.find(ctx, obj, rec.Marked)
		switch {
		case err != nil:
			return obs, err
		case obs.Exists:
			obs.Superseded = id
			return obs, nil
		case obs.Replace != nil:
			obs.Rotate = m.rotation(obj, id, "a rotation was interrupted")
			return obs, nil
		}
	}
	intact, fp, err := m.secrets.Intact(ctx, m.secretOf(obj), id)
	if err != nil {
		return driver.Observation[identityView]{}, err
	}
	if !intact {
		// The old token may still run in pods: mint, write, and retire it after the grace period.
		return driver.Observation[identityView]{Rotate: &driver.Replacement{ID: id, Reason: driver.EventReminted,
			Message: fmt.Sprintf("Secret %s was deleted or changed: minted a new %s; %s stays usable until its grace period ends",
				obj.SecretName(), m.calls.nounOf(), id)}}, nil
	}
	if fp != "" || obj.GetTokenStatus().ExpiresAt == nil {
		got.Expires = m.secretExpiry(ctx, obj)
	}
	obs := m.compare(obj, got, fp)
	ts := obj.GetTokenStatus()
	expires, renew := got.Expires, (*metav1.Time)(nil)
	if got.ID == obj.GetStatusID() && ts.ExpiresAt != nil {
		expires, renew = ts.ExpiresAt, ts.RenewAt
	}
	if expires == nil {
		return obs, nil
	}
	if renew == nil {
		renew = renewTime(obj.GetRotation(), obj.GetCreationTimestamp().Time, expires.Time)
	}
	if now := m.now(); !now.Before(renew.Time) {
		obs.Exists, obs.Expired = false, !now.Before(expires.Time)
		obs.Rotate = m.rotation(obj, id, fmt.Sprintf("the token expires at %s", expires.UTC().Format(time.RFC3339)))
	}
	return obs, nil
}

// rotation asks the driver for a new identity while id stays usable.
func (m *minter[T]) rotation(obj T, id, why string) *driver.Replacement {
	return &driver.Replacement{ID: id, Reason: driver.EventRotated, Message: fmt.Sprintf("%s: minted a new %s for %s; %s stays usable for %s",
		why, m.calls.nounOf(), obj.GetName(), id, gracePeriodText(obj))}
}

// gracePeriodText words a resource's grace period.
func gracePeriodText(obj any) string {
	if g, ok := obj.(interface{ GetGracePeriod() time.Duration }); ok {
		return g.GetGracePeriod().String()
	}
	return v1alpha1.DefaultGracePeriod.String()
}

// secretExpiry reads when the token in the resource's Secret expires; nil when unknown.
func (m *minter[T]) secretExpiry(ctx context.Context, obj T) *metav1.Time {
	var s corev1.Secret
	if err := m.client.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.SecretName()}, &s); err != nil {
		return nil
	}
	return tokenExpiry(string(s.Data[KeyAuthToken]))
}

// renewTime is when a token minted at minted and expiring at expires is renewed: renewBefore
// ahead of expiry (default a third of the lifetime, as cert-manager does), never earlier than
// a third of the way through the lifetime, so that a renewBefore longer than the lifetime cannot make
// every reconcile rotate.
func renewTime(r *v1alpha1.Rotation, minted, expires time.Time) *metav1.Time {
	life := expires.Sub(minted)
	if life <= 0 {
		// Dfns' clock and ours disagree by more than the lifetime: renewing at once would mint
		// at every reconcile. Renew a minute after the mint, at most once a minute.
		t := metav1.NewTime(minted.Add(time.Minute).UTC().Truncate(time.Second))
		return &t
	}
	before := life / 3
	if r != nil && r.RenewBefore != nil {
		before = min(r.RenewBefore.Duration, life*2/3)
	}
	t := metav1.NewTime(expires.Add(-before).UTC().Truncate(time.Second))
	return &t
}

// identityFields are what the kept list of identities is searched by: the ID.
func identityFields(v identityView) []string { return []string{v.ID} }

// view reads identity id from this sync period's list of the kind when it is there, else with
// a GET: only Dfns' answer to the GET says it is gone.
func (m *minter[T]) view(ctx context.Context, id string) (identityView, error) {
	v, found, fetched, err := m.lists.Find(ctx, m.key, 0, id, m.calls.listViews)
	if found {
		return v, nil
	}
	if err != nil && fetched {
		// Said once per failed list (those who waited for it say nothing): every check then
		// reads its identity alone, a call each, until a list succeeds.
		logf.FromContext(ctx).Info("could not list the "+m.calls.nounOf()+"s; each is read alone", "error", err.Error())
	}
	return m.calls.getView(ctx, id)
}

// recreate handles a recorded identity that is gone from Dfns. A replacement whose create
// answer was lost may carry our name already, so the name is looked up first.
func (m *minter[T]) recreate(ctx context.Context, obj T, id, marked string) (driver.Observation[identityView], error) {
	obs, err := m.find(ctx, obj, marked)
	if err != nil || obs.Exists || obs.Replace != nil {
		return obs, err
	}
	obs.Replace = &driver.Replacement{Reason: driver.EventRecreated,
		Message: fmt.Sprintf("%s %s was deleted in Dfns; created a new one", m.calls.nounOf(), id)}
	return obs, nil
}

// find looks for an identity this resource made whose ID was never recorded: the one named in
// its create-pending mark (marked), whose proof the driver checked. Ours with its token in the
// Secret is adopted (only the ID patch was lost); ours without it is an orphan, replaced. With
// no mark, nothing can exist: the ID is recorded in the same write that clears the mark.
func (m *minter[T]) find(ctx context.Context, obj T, marked string) (driver.Observation[identityView], error) {
	if marked == "" {
		return driver.Observation[identityView]{}, nil
	}
	all, err := m.lists.Fetch(ctx, m.key, m.calls.listViews)
	if err != nil {
		return driver.Observation[identityView]{}, fmt.Errorf("listing %ss: %w", m.calls.nounOf(), err)
	}
	for _, got := range all {
		if got.Name != marked {
			continue
		}
		holds, fp, err := m.secrets.Holds(ctx, m.secretOf(obj), got.ID)
		if err != nil {
			return driver.Observation[identityView]{}, err
		}
		if holds {
			return m.compare(obj, got, fp), nil
		}
		return driver.Observation[identityView]{Replace: &driver.Replacement{ID: got.ID, Reason: driver.EventOrphanDeleted,
			Message: fmt.Sprintf("deleted %s %s whose token was never saved, and created a new one", m.calls.nounOf(), got.ID)}}, nil
	}
	return driver.Observation[identityView]{}, nil
}

// compare reports whether the name and activation match the spec. The name wanted is the one
// minted (status.dfnsName); a status lost in a restore takes the name Dfns shows when it is in
// the resource's naming. fp is the Secret's fingerprint recovered for a status that lost it.
func (m *minter[T]) compare(obj T, got identityView, fp string) driver.Observation[identityView] {
	var diff []string
	got.WantName = obj.GetTokenStatus().DfnsName
	if got.WantName == "" || got.ID != obj.GetStatusID() {
		// Status describes no identity, or another one (a replacement whose ID was never
		// recorded): this one keeps the name it was made with.
		got.WantName = got.Name
		if !strings.HasPrefix(got.Name, m.dfnsName(obj.DfnsName())+".") {
			got.WantName = freshName(m.dfnsName(obj.DfnsName()))
		}
	}
	if got.Name != got.WantName {
		diff = append(diff, fmt.Sprintf("name %q, want %q", got.Name, got.WantName))
	}
	if got.Active != obj.WantActive() {
		diff = append(diff, fmt.Sprintf("active %t, want %t", got.Active, obj.WantActive()))
	}
	got.Fingerprint = fp
	return driver.Observation[identityView]{ID: got.ID, Exists: true, UpToDate: len(diff) == 0, Diff: strings.Join(diff, ", "), Current: got}
}

// Report records what Observe found: the name in use, the token ID, the Secret's name, and a
// fingerprint recovered from the Secret.
func (m *minter[T]) Report(obj T, obs driver.Observation[identityView]) {
	if !obs.Exists {
		return
	}
	ts, got := obj.GetTokenStatus(), obs.Current
	ts.SecretName = obj.SecretName()
	if obs.ID != obj.GetStatusID() {
		// Another identity than status describes (a replacement found by its mark): nothing
		// of the old one's status holds for it.
		ts.DfnsName, ts.TokenID, ts.ExpiresAt, ts.RenewAt = got.WantName, got.TokenID, nil, nil
	}
	if ts.ExpiresAt == nil && got.Expires != nil {
		ts.ExpiresAt = got.Expires
		ts.RenewAt = renewTime(obj.GetRotation(), obj.GetCreationTimestamp().Time, got.Expires.Time)
	}
	observeToken(m.kind, obj)
	if ts.DfnsName == "" {
		ts.DfnsName = got.WantName
	}
	if ts.TokenID == "" {
		ts.TokenID = got.TokenID
	}
	if got.Fingerprint != "" {
		ts.SecretFingerprint = got.Fingerprint
	}
}

// Prepare checks that the operator may mint, resolves the permission, generates the key pair
// and names the identity; the create it returns mints it and returns the Secret contents.
func (m *minter[T]) Prepare(ctx context.Context, obj T, obs driver.Observation[identityView]) (driver.Prepared, error) {
	var p driver.Prepared
	can, err := m.api.CanCreateIdentities(ctx)
	if err != nil {
		return p, fmt.Errorf("checking the operator's Dfns identity: %w", err)
	}
	if !can {
		return p, driver.Waitf(v1alpha1.ReasonForbidden,
			"the operator runs in token mode and Dfns lets only users create %ss: give it login mode (DFNS_USERNAME with a Key credential)", m.calls.nounOf())
	}
	permID, err := resolvePermission(ctx, m.refs, obj.GetNamespace(), obj.GetPermissionRef())
	if err != nil {
		return p, err
	}
	apiURL, orgID, err := m.api.Endpoint(ctx)
	if err != nil {
		return p, fmt.Errorf("reading the Dfns endpoint: %w", err)
	}
	alg := obj.GetKeyAlgorithm()
	keyPEM, pubPEM, err := dfns.GenerateKey(dfns.KeyAlgorithm(alg))
	if err != nil {
		return p, fmt.Errorf("generating a %s key: %w", alg, err)
	}
	// A create sent again after a lost answer keeps its name, so that Dfns refuses a second
	// identity; anything else gets a new name.
	name := obs.Marked
	if name == "" || obs.Replace != nil {
		name = freshName(m.dfnsName(obj.DfnsName()))
	}
	req := mintRequest{Name: name, PublicKey: pubPEM, PermissionID: permID, ExternalID: string(obj.GetUID())}
	return driver.Prepared{Name: name, Create: func(ctx context.Context) (driver.Creation, error) {
		return m.mint(ctx, obj, req, keyPEM, apiURL, orgID)
	}}, nil
}

// mint makes the identity with one Dfns call and returns its token, key and endpoint as the
// Secret's contents.
func (m *minter[T]) mint(ctx context.Context, obj T, req mintRequest, keyPEM []byte, apiURL, orgID string) (driver.Creation, error) {
	var c driver.Creation
	made, tok, err := m.calls.mint(ctx, obj, req)
	id := made.ID
	if err != nil {
		m.lists.Invalidate(m.key)
		return c, fmt.Errorf("creating %s %q: %w", m.calls.nounOf(), req.Name, err)
	}
	c.ID = id
	if tok == nil || tok.Token == "" {
		m.lists.Invalidate(m.key)
		return c, fmt.Errorf("dfns answered the create of %s %s without a token", m.calls.nounOf(), id)
	}
	// The kept list learns of the new identity instead of being listed again for the second look.
	m.lists.Append(m.key, made)
	credID := tok.CredID
	if credID == "" {
		// Dfns may answer a create with an empty credId (docs/dfns-compatibility.md); a Secret
		// without it cannot sign, so it is read back, and nothing is published without it. On
		// failure the create-pending mark finds the identity as an orphan to replace.
		credID, err = m.calls.credID(ctx, id, tok.TokenID)
		if err == nil && credID == "" {
			err = errors.New("its read carries none either")
		}
		if err != nil {
			return c, fmt.Errorf("dfns answered the create of %s %s without a credential ID, and reading it back failed: %w",
				m.calls.nounOf(), id, err)
		}
	}
	data := map[string][]byte{
		KeyAPIURL: []byte(apiURL), KeyOrgID: []byte(orgID), KeyAuthToken: []byte(tok.Token),
		KeyCredID: []byte(credID), KeyPrivateKey: keyPEM,
	}
	c.Secret = &driver.SecretContent{Data: data, Annotations: map[string]string{v1alpha1.AnnotationExternalID: id}}
	c.UpToDate = made.Name == req.Name && made.Active == obj.WantActive() // else a second look acts
	ts := v1alpha1.TokenStatus{TokenID: tok.TokenID, ExpiresAt: tokenExpiry(tok.Token),
		SecretName: obj.SecretName(), DfnsName: req.Name, SecretFingerprint: driver.FingerprintOf(data, tokenKeys)}
	if ts.ExpiresAt != nil {
		ts.RenewAt = renewTime(obj.GetRotation(), m.now(), ts.ExpiresAt.Time)
	}
	*obj.GetTokenStatus() = ts
	observeToken(m.kind, obj)
	return c, nil
}

// Remove deletes an identity this resource replaces.
func (m *minter[T]) Remove(ctx context.Context, _ T, _ driver.Observation[identityView], id string) error {
	return m.remove(ctx, id)
}

// Update renames the identity back and (re)activates or deactivates it.
func (m *minter[T]) Update(ctx context.Context, obj T, obs driver.Observation[identityView]) ([]driver.Note, error) {
	got := obs.Current
	var notes []driver.Note
	noun := m.calls.nounOf()
	defer m.lists.Invalidate(m.key)
	if want := got.WantName; got.Name != want {
		if err := m.calls.setName(ctx, obs.ID, want); err != nil {
			return notes, fmt.Errorf("renaming %s %s: %w", noun, obs.ID, err)
		}
		notes = append(notes, driver.Note{Reason: driver.EventUpdated, Message: fmt.Sprintf("renamed %s %s from %q back to %q", noun, obs.ID, got.Name, want)})
	}
	if got.Active == obj.WantActive() {
		return notes, nil
	}
	if err := m.calls.setActive(ctx, obs.ID, obj.WantActive()); err != nil {
		err = fmt.Errorf("setting %s %s active=%t: %w", noun, obs.ID, obj.WantActive(), err)
		if obj.WantActive() && (dfns.IsBadRequest(err) || dfns.IsNotFound(err) || dfns.IsGone(err)) {
			// Dfns may keep a deleted identity listed, inactive, and refuse to activate it
			// (docs/dfns-compatibility.md): its token no longer works, so it is replaced.
			return notes, driver.Gone(err)
		}
		return notes, err
	}
	if obj.WantActive() {
		return append(notes, driver.Note{Reason: driver.EventReactivated, Message: fmt.Sprintf("%s %s was deactivated; activated it", noun, obs.ID)}), nil
	}
	return append(notes, driver.Note{Reason: driver.EventDeactivated, Message: fmt.Sprintf("deactivated %s %s as spec.active asks", noun, obs.ID)}), nil
}

// Delete deletes or deactivates the identity per deletionPolicy; one already gone is fine.
func (m *minter[T]) Delete(ctx context.Context, obj T, id string) error {
	forgetToken(m.kind, obj)
	if obj.GetDeletionPolicy() != v1alpha1.DeletionPolicyDeactivate {
		return m.remove(ctx, id)
	}
	return m.deactivate(ctx, id)
}

// remove deletes an identity; empty or already gone is fine.
func (m *minter[T]) remove(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := m.calls.delete(ctx, id)
	m.lists.Invalidate(m.key)
	if err != nil && !dfns.IsNotFound(err) {
		return m.refused("deleting", id, err)
	}
	return nil
}

// deactivate deactivates an identity being let go (deletionPolicy Deactivate, or a retired
// one); already gone is fine.
func (m *minter[T]) deactivate(ctx context.Context, id string) error {
	err := m.calls.setActive(ctx, id, false)
	m.lists.Invalidate(m.key)
	if err != nil && !dfns.IsNotFound(err) {
		return m.refused("deactivating", id, err)
	}
	return nil
}

// refused words a failed delete or deactivate. Dfns refuses (400) to let go of an identity
// that a policy names as approver unless the call says force, which bypasses that check
// (docs/dfns-compatibility.md). The operator never bypasses it: a tenant deleting its account
// would otherwise leave a platform policy short of approvers. The resource waits, saying what
// to do.
func (m *minter[T]) refused(doing, id string, err error) error {
	if dfns.IsBadRequest(err) {
		return driver.Waitf(v1alpha1.ReasonDeletionRefused, "Dfns refused %s %s %s: %s. If a policy names it as approver, "+
			"remove it from the policy's approvers first, or set deletionPolicy: Orphan to keep it in Dfns", doing, m.calls.nounOf(), id, err.Error())
	}
	return fmt.Errorf("%s %s %s: %w", doing, m.calls.nounOf(), id, err)
}

// resolvePermission returns the Dfns ID a permissionRef names, or a waitError while the
// DfnsPermission it names is missing or not Ready.
func resolvePermission(ctx context.Context, c client.Reader, namespace string, ref v1alpha1.PermissionRef) (string, error) {
	if ref.ID != "" {
		return ref.ID, nil
	}
	var p v1alpha1.DfnsPermission
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, &p)
	if apierrors.IsNotFound(err) {
		return "", driver.Waitf(v1alpha1.ReasonPermissionNotReady, "waiting for DfnsPermission %s: it does not exist", ref.Name)
	}
	if err != nil {
		return "", fmt.Errorf("reading DfnsPermission %s: %w", ref.Name, err)
	}
	// The ID comes from status, which only the operator writes: an annotation edited since the
	// permission was last reconciled is a claim.
	if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) || p.Status.PermissionID == "" {
		return "", waitFor(p.Status.Conditions, v1alpha1.ReasonPermissionNotReady, "waiting for DfnsPermission %s to be Ready", ref.Name)
	}
	return p.Status.PermissionID, nil
}

// references reads the resources a spec references: from the cache, and past it when the cache
// does not have one. A resource applied in the same batch as the one referencing it may not be
// in the cache yet when the referencing one is first reconciled (itself read from the cache),
// and reporting the reference missing then cost a status write and an event for nothing (128
// of 10,000 assignments in a benchmark). Only a miss costs a read; a reference still missing
// past the cache is reported.
type references struct{ cache, direct client.Reader }

func (r references) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := r.cache.Get(ctx, key, obj, opts...)
	if apierrors.IsNotFound(err) {
		return r.direct.Get(ctx, key, obj, opts...)
	}
	return err
}

func (r references) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.cache.List(ctx, list, opts...)
}

// waitFor is the wait for a referenced resource that is not Ready, whose conditions are given:
// quiet while it has not been reconciled yet (driver.Deferf), reported once it has.
func waitFor(conditions []metav1.Condition, reason, format string, args ...any) error {
	if meta.FindStatusCondition(conditions, v1alpha1.ConditionReady) == nil {
		return driver.Deferf(reason, format, args...)
	}
	return driver.Waitf(reason, format, args...)
}

// tokenExpiry reads the exp claim of a JWT without verifying it; nil when there is none.
func tokenExpiry(token string) *metav1.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return nil
	}
	t := metav1.NewTime(time.Unix(claims.Exp, 0).UTC())
	return &t
}

// newServiceAccounts is the External of DfnsServiceAccount: the minting of identity.go with the
// service-account endpoints (docs/dfns-api.md §3.1). A service account is a user whose first
// access token is its token.
func newServiceAccounts(c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsServiceAccount] {
	return newMinter(serviceAccountCalls, kindServiceAccount, c, r, syncPeriod)
}

// serviceAccountCalls are the service-account endpoints of api.
func serviceAccountCalls(api dfns.API) identityCalls[*v1alpha1.DfnsServiceAccount, dfns.ServiceAccount] {
	return identityCalls[*v1alpha1.DfnsServiceAccount, dfns.ServiceAccount]{
		noun: "service account",
		view: func(sa *dfns.ServiceAccount) identityView {
			// An answer may carry the name as username only (docs/dfns-api.md §3.1); read either,
			// or the comparison would rename the account at every sync.
			name := sa.UserInfo.Name
			if name == "" {
				name = sa.UserInfo.Username
			}
			v := identityView{ID: sa.UserInfo.UserID, Name: name, Active: sa.UserInfo.IsActive}
			if len(sa.AccessTokens) > 0 {
				v.TokenID = sa.AccessTokens[0].TokenID
			}
			return v
		},
		credOf: func(sa *dfns.ServiceAccount, tokenID string) string {
			for _, t := range sa.AccessTokens {
				if t.TokenID == tokenID {
					return t.CredID
				}
			}
			return ""
		},
		token: func(sa *dfns.ServiceAccount) *dfns.AccessToken {
			for i := range sa.AccessTokens {
				if sa.AccessTokens[i].Token != "" {
					return &sa.AccessTokens[i]
				}
			}
			return nil
		},
		create: func(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, req mintRequest) (*dfns.ServiceAccount, error) {
			r := dfns.CreateServiceAccountRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
			if sa.Spec.DaysValid != nil {
				r.DaysValid = int(*sa.Spec.DaysValid)
			}
			return api.CreateServiceAccount(ctx, r)
		},
		rename: func(ctx context.Context, id, name string) (*dfns.ServiceAccount, error) {
			return api.UpdateServiceAccount(ctx, id, dfns.UpdateServiceAccountRequest{Name: name})
		},
		list: api.ListServiceAccounts, get: api.GetServiceAccount,
		activate: api.ActivateServiceAccount, deactivate: api.DeactivateServiceAccount, remove: api.DeleteServiceAccount,
	}
}

// newPersonalAccessTokens is the External of DfnsPersonalAccessToken: the minting of
// identity.go with the token endpoints (docs/dfns-api.md §3.2). A PAT belongs to the operator's
// own Dfns user, so only a logged-in operator can create one (login mode; token mode is
// Forbidden), and it is its own identity.
func newPersonalAccessTokens(c client.Client, r client.Reader, syncPeriod time.Duration) *minter[*v1alpha1.DfnsPersonalAccessToken] {
	return newMinter(personalAccessTokenCalls, kindPersonalAccessToken, c, r, syncPeriod)
}

// personalAccessTokenCalls are the personal-access-token endpoints of api.
func personalAccessTokenCalls(api dfns.API) identityCalls[*v1alpha1.DfnsPersonalAccessToken, dfns.AccessToken] {
	return identityCalls[*v1alpha1.DfnsPersonalAccessToken, dfns.AccessToken]{
		noun: "personal access token",
		view: func(t *dfns.AccessToken) identityView {
			return identityView{ID: t.TokenID, Name: t.Name, Active: t.IsActive, TokenID: t.TokenID}
		},
		token:  func(t *dfns.AccessToken) *dfns.AccessToken { return t },
		credOf: func(t *dfns.AccessToken, _ string) string { return t.CredID },
		create: func(ctx context.Context, p *v1alpha1.DfnsPersonalAccessToken, req mintRequest) (*dfns.AccessToken, error) {
			r := dfns.CreatePersonalAccessTokenRequest{Name: req.Name, PublicKey: req.PublicKey, PermissionID: req.PermissionID, ExternalID: req.ExternalID}
			if p.Spec.DaysValid != nil {
				r.DaysValid = int(*p.Spec.DaysValid)
			}
			if p.Spec.SecondsValid != nil {
				r.SecondsValid = int(*p.Spec.SecondsValid)
			}
			return api.CreatePersonalAccessToken(ctx, r)
		},
		rename: func(ctx context.Context, id, name string) (*dfns.AccessToken, error) {
			return api.UpdatePersonalAccessToken(ctx, id, dfns.UpdatePersonalAccessTokenRequest{Name: name})
		},
		list: api.ListPersonalAccessTokens, get: api.GetPersonalAccessToken,
		activate: api.ActivatePersonalAccessToken, deactivate: api.DeactivatePersonalAccessToken, remove: api.DeletePersonalAccessToken,
	}
}

// Retire deletes an identity a rotation superseded, after its grace period, or deactivates it
// under deletionPolicy: Deactivate.
func (m *minter[T]) Retire(ctx context.Context, obj T, id string) error {
	if obj.GetDeletionPolicy() != v1alpha1.DeletionPolicyDeactivate {
		return m.remove(ctx, id)
	}
	return m.deactivate(ctx, id)
}
