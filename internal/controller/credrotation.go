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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/driver"
)

// This file replaces the operator's own Key credential without downtime (docs/architecture.md,
// "Rotating the operator's credential"). The credentials Secret is the record of a rotation:
//
//	idle     DFNS_CRED_ID/DFNS_PRIVATE_KEY = c0
//	Staged   + DFNS_NEXT_CRED_ID/DFNS_NEXT_PRIVATE_KEY = c1       (c1 may be registered in Dfns)
//	Written  DFNS_CRED_ID/DFNS_PRIVATE_KEY = c1, DFNS_PREVIOUS_* = c0  (both active in Dfns)
//	idle     DFNS_CRED_ID/DFNS_PRIVATE_KEY = c1                   (c0 deactivated)
//
// Every step is written into the Secret before the step that depends on it, so the private
// key of a credential registered in Dfns is always in the Secret, and a rotation resumes from
// the Secret after a crash. The annotation access.dfns.io/credential-rotation beside the keys
// holds the times and names that the keys alone do not.

// Keys a rotation adds to a credentials Secret beside those of the credentials directory.
const (
	keyNextCredID         = "DFNS_NEXT_CRED_ID"
	keyNextPrivateKey     = "DFNS_NEXT_PRIVATE_KEY"
	keyPreviousCredID     = "DFNS_PREVIOUS_CRED_ID"
	keyPreviousPrivateKey = "DFNS_PREVIOUS_PRIVATE_KEY"
)

// Phases of the rotation record beyond the status phases: Confirmed is Written with the new
// credential proved; Done and RolledBack describe the last rotation.
const (
	recordConfirmed  = "Confirmed"
	recordDone       = "Done"
	recordRolledBack = "RolledBack"
)

// Event reasons of a rotation.
const (
	eventRotationStarted    = "CredentialRotationStarted"
	eventCredentialCreated  = "CredentialCreated"
	eventCredentialWritten  = "CredentialWritten"
	eventCredentialConfirm  = "CredentialConfirmed"
	eventCredentialRotated  = "CredentialRotated"
	eventRotationRolledBack = "CredentialRotationRolledBack"
	eventRotationFailed     = "CredentialRotationFailed"
	eventOrphanDeactivated  = "OrphanCredentialDeactivated"
)

// Defaults of the rotation's timing.
const (
	// DefaultCredentialConfirmTimeout is how long the manager may take to read the new
	// credential after it was written (a mounted Secret: the kubelet's sync, a minute or so)
	// before the rotation is rolled back.
	DefaultCredentialConfirmTimeout = 10 * time.Minute
	// rotationRetryAfterFailure delays the next scheduled rotation after one that failed.
	rotationRetryAfterFailure = time.Hour
	// rotationPoll is how soon a rotation waiting for the manager to read its Secret looks again.
	rotationPoll = 2 * time.Second
)

// credentialNamePrefix starts the Dfns name of every credential a rotation makes.
const credentialNamePrefix = "dfns-operator "

// maxCredentialName bounds the Dfns name of a credential (the sandbox's limit; Dfns documents none).
const maxCredentialName = 100

// rotationRecord is the annotation access.dfns.io/credential-rotation on a credentials Secret.
type rotationRecord struct {
	Phase          string    `json:"phase"`
	NewCredID      string    `json:"newCredId,omitempty"`
	PreviousCredID string    `json:"previousCredId,omitempty"`
	Name           string    `json:"name,omitempty"`
	Request        string    `json:"request,omitempty"`
	By             string    `json:"by,omitempty"`
	StartedAt      time.Time `json:"startedAt,omitzero"`
	WrittenAt      time.Time `json:"writtenAt,omitzero"`
	FinishedAt     time.Time `json:"finishedAt,omitzero"`
	Reason         string    `json:"reason,omitempty"`
	// Held is the change request of a step Dfns holds for approval (202): it is never sent
	// again while the step waits for it.
	Held string `json:"held,omitempty"`
	// DeactivationsHeld are the credentials whose deactivation Dfns holds for approval: it is
	// never asked again, by this rotation or a later one. One leaves the list once Dfns shows it
	// inactive or gone.
	DeactivationsHeld []string `json:"deactivationsHeld,omitempty"`
}

// deactivate deactivates credential cr unless Dfns already holds its deactivation for approval.
// A deactivation Dfns holds now (202) is recorded in rec, with an AwaitingApproval event, and
// is not an error: held reports it, for the caller to save rec.
func (r *rotation) deactivate(ctx context.Context, rec *rotationRecord, cr *dfns.Credential, why string) (held bool, err error) {
	if slices.Contains(rec.DeactivationsHeld, cr.CredentialID) {
		return false, nil
	}
	err = r.in.cl.api.DeactivateCredential(ctx, cr.CredentialUUID)
	if change, ok := dfns.IsPendingApproval(err); ok {
		rec.DeactivationsHeld = append(rec.DeactivationsHeld, cr.CredentialID)
		r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval,
			"the deactivation of %s %s is held for approval in Dfns (change request %s, approval %s); it is not asked again, "+
				"and the credential stays active until it is approved", why, cr.CredentialID, change.ID, change.ApprovalID)
		return true, nil
	}
	if err != nil && !dfns.IsNotFound(err) {
		return false, err
	}
	return false, nil
}

// stillHeld keeps, of the deactivations Dfns held, those of credentials it still shows active.
func stillHeld(held []string, list []dfns.Credential) []string {
	var out []string
	for _, id := range held {
		if c := findCredential(list, id); c != nil && c.IsActive {
			out = append(out, id)
		}
	}
	return out
}

// readRecord reads a Secret's rotation record; an unreadable one reads as none.
func readRecord(s *corev1.Secret) rotationRecord {
	var rec rotationRecord
	if v := s.Annotations[v1alpha1.AnnotationCredentialRotation]; v != "" {
		_ = json.Unmarshal([]byte(v), &rec)
	}
	return rec
}

// writeRecord puts rec into the Secret's annotation.
func writeRecord(s *corev1.Secret, rec rotationRecord) {
	b, _ := json.Marshal(rec) // plain fields always marshal
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[v1alpha1.AnnotationCredentialRotation] = string(b)
}

// credentialRotator runs the rotation of a connection's credential, one step or a few per
// reconcile of the connection.
type credentialRotator struct {
	client   client.Client // writes the Secret
	reader   client.Reader // reads it past the cache
	conns    *connections
	recorder driver.EventRecorder
	now      func() time.Time
	// mountedSecret is the Secret, in the operator's namespace, mounted as the manager's
	// credentials directory ("" when the manager was not told).
	mountedSecret  string
	confirmTimeout time.Duration
	// retry is how soon a failed step is tried again.
	retry time.Duration
}

// rotationInput is one connection, as a reconcile of it found it.
type rotationInput struct {
	obj     client.Object
	key     string // the connection's client key
	spec    v1alpha1.ConnectionSpec
	secrets string // the namespace of its secretRef
	cl      *connectionClient
	// checkErr is why the credentials in use failed the check, nil when they work.
	checkErr error
	// old is the credential status before this reconcile.
	old *v1alpha1.ConnectionCredentialStatus
}

// rotationResult is what a connection's status and requeue take from a rotation step.
type rotationResult struct {
	status *v1alpha1.ConnectionCredentialStatus
	// cond is the CredentialRotation condition; nil leaves it as it was.
	cond    *metav1.Condition
	requeue time.Duration
	// reported: an event already says why cond is False.
	reported bool
}

// secretRef locates the connection's credentials Secret, or says why there is none the
// operator may write.
type secretLocation struct {
	types.NamespacedName
	mounted bool
}

func (l secretLocation) String() string { return l.Namespace + "/" + l.Name }

// rotation carries one reconcile's rotation step.
type rotation struct {
	*credentialRotator
	in     *rotationInput
	loc    secretLocation
	creds  *dfns.Credentials
	status *v1alpha1.ConnectionCredentialStatus
	now    time.Time
}

// reconcile advances the connection's credential rotation as far as it can now.
func (r *credentialRotator) reconcile(ctx context.Context, in *rotationInput) rotationResult {
	creds, err := in.cl.source.Credentials()
	if err != nil {
		return rotationResult{status: in.old} // Ready says why
	}
	if creds.Mode() == dfns.ModeToken {
		return rotationResult{cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonNotRotatable,
			"token mode: nothing to rotate (the operator uses DFNS_AUTH_TOKEN as it is and holds no Key credential of its own)")}
	}
	st := &v1alpha1.ConnectionCredentialStatus{CredID: creds.CredID}
	if in.old != nil {
		st.RotateRequest = in.old.RotateRequest
	}
	loc, why := r.secretOf(in)
	if why != "" {
		return rotationResult{status: st, cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonNotRotatable, why)}
	}
	var s corev1.Secret
	if err := r.reader.Get(ctx, loc.NamespacedName, &s); err != nil {
		msg := fmt.Sprintf("reading Secret %s: %v", loc, err)
		if apierrors.IsNotFound(err) {
			msg = fmt.Sprintf("Secret %s does not exist", loc)
		}
		return rotationResult{status: st, cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonNotRotatable, msg), requeue: r.retry}
	}
	rot := &rotation{credentialRotator: r, in: in, loc: loc, creds: creds, status: st, now: r.now()}
	res, err := rot.advance(ctx, &s)
	res.status = st
	if err != nil {
		res.cond = rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonRotationFailed, err.Error())
		res.requeue = r.retry
	}
	return res
}

// secretOf finds the Secret that holds the connection's credentials and that the operator
// may write: its secretRef, or the Secret mounted as the manager's credentials directory.
func (r *credentialRotator) secretOf(in *rotationInput) (secretLocation, string) {
	if ref := in.spec.Credentials.SecretRef; ref != nil {
		return secretLocation{NamespacedName: types.NamespacedName{Namespace: in.secrets, Name: ref.Name}}, ""
	}
	if r.mountedSecret == "" {
		return secretLocation{}, "the manager's mounted credentials: it was not told which Secret holds them " +
			"(--dfns-credentials-secret), so it cannot write a new credential into it"
	}
	return secretLocation{NamespacedName: types.NamespacedName{Namespace: r.conns.operatorNamespace, Name: r.mountedSecret}, mounted: true}, ""
}

// advance runs the step the Secret is at.
func (r *rotation) advance(ctx context.Context, s *corev1.Secret) (rotationResult, error) {
	rec := readRecord(s)
	switch {
	case value(s, keyPreviousCredID) != "":
		return r.written(ctx, s, rec)
	case value(s, keyNextCredID) != "":
		return r.staged(ctx, s, rec)
	default:
		return r.idle(ctx, s, rec)
	}
}

// value is a Secret key's text.
func value(s *corev1.Secret, key string) string { return strings.TrimSpace(string(s.Data[key])) }

// wanted reports whether rotation is scheduled or asked for.
func (r *rotation) wanted() bool {
	return r.in.spec.CredentialRotation != nil || r.in.obj.GetAnnotations()[v1alpha1.AnnotationRotateCredential] != ""
}

// idle: no rotation under way. It deactivates what a rotation left behind, reports when the
// next one is due, and starts one when it is.
func (r *rotation) idle(ctx context.Context, s *corev1.Secret, rec rotationRecord) (rotationResult, error) {
	if inSecret := value(s, dfns.FileCredID); inSecret != r.creds.CredID {
		if !rec.FinishedAt.IsZero() && r.now.Sub(rec.FinishedAt) < r.confirmTimeout {
			return r.waiting(fmt.Sprintf("waiting for the manager to read credential %s from Secret %s", inSecret, r.loc)), nil
		}
		return rotationResult{cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonNotRotatable,
			fmt.Sprintf("Secret %s holds credential %s, but the manager signs with %s: is it the Secret the manager reads?",
				r.loc, inSecret, r.creds.CredID))}, nil
	}
	if rec.By == r.in.key && rec.Request != "" && rec.Request == r.annotation() && (rec.Phase == recordDone || rec.Phase == recordRolledBack) {
		r.status.RotateRequest = rec.Request
	}
	if rec.Phase == recordDone && rec.NewCredID == r.creds.CredID {
		r.status.PreviousCredID = rec.PreviousCredID
		r.status.LastRotatedAt = timePtr(rec.FinishedAt)
	}
	if rec.Phase == recordRolledBack {
		r.status.LastRotatedAt = timePtr(rec.FinishedAt)
	}
	if r.in.checkErr != nil {
		return rotationResult{}, nil // Ready says why; nothing is rotated with credentials that fail
	}
	if !r.wanted() && rec.Phase == "" {
		return rotationResult{cond: rotationCondition(metav1.ConditionTrue, v1alpha1.ReasonRotationScheduled,
			"no credentialRotation: the credential is replaced when the access.dfns.io/rotate-credential annotation changes")}, nil
	}
	list, err := r.in.cl.api.ListCredentials(ctx)
	if err != nil {
		return rotationResult{}, fmt.Errorf("listing the operator's credentials: %w", err)
	}
	current := findCredential(list, r.creds.CredID)
	if current == nil || !current.IsActive {
		return rotationResult{}, fmt.Errorf("credential %s is not among the operator user's active credentials in Dfns", r.creds.CredID)
	}
	r.status.CreatedAt = dfnsTime(current.DateCreated)
	if err := r.deactivateOrphans(ctx, s, &rec, list); err != nil {
		return rotationResult{}, err
	}
	request := r.annotation()
	manual := request != "" && request != r.status.RotateRequest
	var due time.Time
	if every := r.in.spec.CredentialRotation; every != nil {
		due = r.dueAfter(rec, every.Every.Duration)
		if rec.Phase == recordRolledBack && rec.FinishedAt.Add(rotationRetryAfterFailure).After(due) {
			due = rec.FinishedAt.Add(rotationRetryAfterFailure)
		}
		r.status.NextRotationAt = timePtr(due)
	}
	if !manual && (due.IsZero() || r.now.Before(due)) {
		res := rotationResult{cond: r.scheduledCondition(rec), reported: rec.Phase == recordRolledBack}
		if !due.IsZero() {
			res.requeue = due.Sub(r.now)
		}
		return res, nil
	}
	if !manual {
		request = ""
	}
	return r.stage(ctx, s, request)
}

// dueAfter is when a scheduled rotation is due: every after the later of the credential's
// creation, by Dfns' clock, and the end of the last rotation that made it, by the manager's. The
// latter keeps a manager whose clock runs ahead of Dfns' by more than every from replacing each
// new credential at once, forever.
func (r *rotation) dueAfter(rec rotationRecord, every time.Duration) time.Time {
	from := r.now
	if r.status.CreatedAt != nil {
		from = r.status.CreatedAt.Time
	}
	if rec.Phase == recordDone && rec.NewCredID == r.creds.CredID && rec.FinishedAt.After(from) {
		from = rec.FinishedAt
	}
	return from.Add(every)
}

// scheduledCondition is the condition of an idle connection.
func (r *rotation) scheduledCondition(rec rotationRecord) *metav1.Condition {
	if rec.Phase == recordRolledBack {
		msg := "the last rotation did not complete: " + rec.Reason
		if r.status.NextRotationAt != nil {
			msg += fmt.Sprintf("; next attempt at %s", r.status.NextRotationAt.UTC().Format(time.RFC3339))
		}
		return rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonRotationFailed, msg)
	}
	if r.status.NextRotationAt == nil {
		return rotationCondition(metav1.ConditionTrue, v1alpha1.ReasonRotationScheduled,
			fmt.Sprintf("credential %s in use; no credentialRotation: it is replaced when the access.dfns.io/rotate-credential annotation changes", r.creds.CredID))
	}
	return rotationCondition(metav1.ConditionTrue, v1alpha1.ReasonRotationScheduled, fmt.Sprintf("credential %s in use; next rotation due at %s",
		r.creds.CredID, r.status.NextRotationAt.UTC().Format(time.RFC3339)))
}

// annotation is the connection's access.dfns.io/rotate-credential.
func (r *rotation) annotation() string {
	return r.in.obj.GetAnnotations()[v1alpha1.AnnotationRotateCredential]
}

// deactivateOrphans deactivates the active credentials that a rotation for this Secret made
// and that the Secret no longer holds: one registered before its rotation was abandoned or
// rolled back. The credential in use is never one of them.
func (r *rotation) deactivateOrphans(ctx context.Context, s *corev1.Secret, rec *rotationRecord, list []dfns.Credential) error {
	prefix := credentialNameBase(r.loc)
	before := rec.DeactivationsHeld
	rec.DeactivationsHeld = stillHeld(before, list)
	for _, cr := range list {
		if !cr.IsActive || cr.CredentialID == r.creds.CredID || cr.CredentialID == value(s, dfns.FileCredID) ||
			!strings.HasPrefix(cr.Name, prefix) || slices.Contains(rec.DeactivationsHeld, cr.CredentialID) {
			continue
		}
		held, err := r.deactivate(ctx, rec, &cr, "credential")
		if err != nil {
			return fmt.Errorf("deactivating credential %s, which a rotation made and no Secret holds: %w", cr.CredentialID, err)
		}
		if !held {
			r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventOrphanDeactivated,
				"deactivated credential %s: a rotation made it for Secret %s, which no longer holds it", cr.CredentialID, r.loc)
		}
	}
	if slices.Equal(rec.DeactivationsHeld, before) {
		return nil
	}
	writeRecord(s, *rec)
	if err := r.client.Update(ctx, s); err != nil {
		return fmt.Errorf("recording in Secret %s the credential deactivations Dfns holds for approval: %w", r.loc, err)
	}
	return nil
}

// stage starts a rotation: a new key and credId, saved in the Secret (DFNS_NEXT_*) before
// anything is sent to Dfns.
func (r *rotation) stage(ctx context.Context, s *corev1.Secret, request string) (rotationResult, error) {
	alg, err := dfns.KeyAlgorithmOf(r.creds.PrivateKeyPEM)
	if err != nil {
		alg = dfns.KeyECDSAP256
	}
	key, _, err := dfns.GenerateKey(alg)
	if err != nil {
		return rotationResult{}, err
	}
	credID, err := dfns.GenerateCredID()
	if err != nil {
		return rotationResult{}, err
	}
	rec := rotationRecord{Phase: v1alpha1.CredentialPhaseStaged, NewCredID: credID, PreviousCredID: r.creds.CredID,
		Name: credentialName(r.loc, r.now), Request: request, By: r.in.key, StartedAt: r.now,
		DeactivationsHeld: readRecord(s).DeactivationsHeld}
	s.Data[keyNextCredID] = []byte(credID)
	s.Data[keyNextPrivateKey] = key
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("saving the new key in Secret %s, before anything is sent to Dfns: %w", r.loc, err)
	}
	why := "scheduled"
	if request != "" {
		why = "asked for with access.dfns.io/rotate-credential"
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventRotationStarted,
		"rotation %s: new credential %s saved in Secret %s; %s stays in use", why, credID, r.loc, r.creds.CredID)
	return r.staged(ctx, s, rec)
}

// staged: the new key is in the Secret. It is registered in Dfns (signed with the credential
// in use) unless it is already, then written in place of the credential in use, which moves
// to DFNS_PREVIOUS_*.
func (r *rotation) staged(ctx context.Context, s *corev1.Secret, rec rotationRecord) (rotationResult, error) {
	next, current := value(s, keyNextCredID), value(s, dfns.FileCredID)
	r.status.Phase, r.status.NewCredID, r.status.PreviousCredID = v1alpha1.CredentialPhaseStaged, next, current
	if r.creds.CredID != current {
		return r.waiting(fmt.Sprintf("waiting for the manager to read credential %s from Secret %s before registering %s", current, r.loc, next)), nil
	}
	if r.in.checkErr != nil {
		return rotationResult{}, fmt.Errorf("credential %s, which registers the new one, fails: %w", current, r.in.checkErr)
	}
	list, err := r.in.cl.api.ListCredentials(ctx)
	if err != nil {
		return rotationResult{}, fmt.Errorf("listing the operator's credentials: %w", err)
	}
	made := findCredential(list, next)
	if made == nil && rec.Held != "" && rec.NewCredID == next {
		return r.waiting(fmt.Sprintf("the registration of credential %s is held for approval in Dfns (change request %s); "+
			"it goes on once approved", next, rec.Held)), nil
	}
	if made == nil {
		name := rec.Name
		if name == "" || rec.NewCredID != next {
			name = credentialName(r.loc, r.now)
		}
		cr, err := r.in.cl.api.CreateKeyCredential(ctx, dfns.NewKeyCredential{Name: name, CredID: next, PrivateKeyPEM: s.Data[keyNextPrivateKey]})
		switch {
		case err == nil:
			made = cr
		case refusesRegistration(err):
			return r.abandon(ctx, s, rec, fmt.Sprintf("Dfns refused the new credential: %v", err))
		default:
			if cr, held := dfns.IsPendingApproval(err); held {
				return r.hold(ctx, s, rec, next, cr)
			}
			// Unknown outcome, a 409, a 202 or a failure to reach Dfns: the next try lists first.
			return rotationResult{}, fmt.Errorf("registering credential %s in Dfns: %w", next, err)
		}
		r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventCredentialCreated,
			"credential %s registered in Dfns, signed with %s", next, current)
	}
	if !made.IsActive {
		return r.abandon(ctx, s, rec, fmt.Sprintf("credential %s was deactivated in Dfns before it was used", next))
	}
	s.Data[keyPreviousCredID], s.Data[keyPreviousPrivateKey] = s.Data[dfns.FileCredID], s.Data[dfns.FilePrivateKey]
	s.Data[dfns.FileCredID], s.Data[dfns.FilePrivateKey] = s.Data[keyNextCredID], s.Data[keyNextPrivateKey]
	delete(s.Data, keyNextCredID)
	delete(s.Data, keyNextPrivateKey)
	rec.Phase, rec.NewCredID, rec.PreviousCredID, rec.WrittenAt = v1alpha1.CredentialPhaseWritten, next, current, r.now
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("writing credential %s into Secret %s (both credentials are active; %s stays in use): %w",
			next, r.loc, current, err)
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventCredentialWritten,
		"credential %s written into Secret %s; %s kept beside it until the manager logs in and signs with %s", next, r.loc, current, next)
	r.conns.readAgain(r.in.key)
	r.status.Phase = v1alpha1.CredentialPhaseWritten
	return r.waiting(fmt.Sprintf("waiting for the manager to read credential %s from Secret %s", next, r.loc)), nil
}

// hold records that Dfns holds the registration of credential next for approval: a 202 is
// never answered by sending the change again.
func (r *rotation) hold(ctx context.Context, s *corev1.Secret, rec rotationRecord, next string, cr *dfns.ChangeRequest) (rotationResult, error) {
	rec.NewCredID, rec.Held = next, cr.ID
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("recording in Secret %s that the registration of credential %s is held for approval "+
			"(change request %s): %w", r.loc, next, cr.ID, err)
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval,
		"the registration of credential %s is held for approval in Dfns (change request %s, approval %s)", next, cr.ID, cr.ApprovalID)
	return r.waiting(fmt.Sprintf("the registration of credential %s is held for approval in Dfns (change request %s); "+
		"it goes on once approved", next, cr.ID)), nil
}

// written: the new credential is in the Secret, the previous one beside it. Once the manager
// reads the new one, logs in and signs with it, the previous one is deactivated and removed
// from the Secret. If the manager never reads it, or Dfns refuses it, the Secret goes back.
func (r *rotation) written(ctx context.Context, s *corev1.Secret, rec rotationRecord) (rotationResult, error) {
	next, previous := value(s, dfns.FileCredID), value(s, keyPreviousCredID)
	r.status.Phase, r.status.NewCredID, r.status.PreviousCredID = v1alpha1.CredentialPhaseWritten, next, previous
	switch r.creds.CredID {
	case previous:
		if !rec.WrittenAt.IsZero() && r.now.Sub(rec.WrittenAt) >= r.confirmTimeout {
			return r.rollback(ctx, s, rec, fmt.Sprintf("the manager still signs with %s %s after %s was written into Secret %s: "+
				"is it the Secret the manager reads?", previous, r.confirmTimeout, next, r.loc))
		}
		return r.waiting(fmt.Sprintf("waiting for the manager to read credential %s from Secret %s (a mounted Secret can take the kubelet a minute or more)",
			next, r.loc)), nil
	case next:
	default:
		return rotationResult{}, fmt.Errorf("the manager signs with credential %s, neither the new %s nor the previous %s in Secret %s",
			r.creds.CredID, next, previous, r.loc)
	}
	if r.in.checkErr != nil {
		if errors.Is(r.in.checkErr, dfns.ErrCredentials) {
			return r.rollback(ctx, s, rec, fmt.Sprintf("credential %s does not log in: %v", next, r.in.checkErr))
		}
		return rotationResult{}, fmt.Errorf("checking credential %s: %w", next, r.in.checkErr)
	}
	list, err := r.in.cl.api.ListCredentials(ctx)
	if err != nil {
		return rotationResult{}, fmt.Errorf("listing the operator's credentials: %w", err)
	}
	made := findCredential(list, next)
	if made == nil {
		return r.rollback(ctx, s, rec, fmt.Sprintf("credential %s is not among the operator user's credentials", next))
	}
	if rec.Phase != recordConfirmed {
		if err := r.in.cl.api.ConfirmSigning(ctx, made.CredentialUUID); err != nil {
			if errors.Is(err, dfns.ErrCredentials) {
				return r.rollback(ctx, s, rec, fmt.Sprintf("credential %s does not sign: %v", next, err))
			}
			return rotationResult{}, fmt.Errorf("confirming that credential %s signs: %w", next, err)
		}
		rec.Phase = recordConfirmed
		writeRecord(s, rec)
		if err := r.client.Update(ctx, s); err != nil {
			return rotationResult{}, fmt.Errorf("recording in Secret %s that credential %s works: %w", r.loc, next, err)
		}
		r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventCredentialConfirm, "the manager logs in and signs with credential %s", next)
	}
	if old := findCredential(list, previous); old != nil && old.IsActive {
		// Held for approval, the deactivation is a human's to decide: the rotation is done.
		if _, err := r.deactivate(ctx, &rec, old, "the previous credential"); err != nil {
			return rotationResult{}, fmt.Errorf("deactivating the previous credential %s: %w", previous, err)
		}
	}
	delete(s.Data, keyPreviousCredID)
	delete(s.Data, keyPreviousPrivateKey)
	rec.Phase, rec.FinishedAt, rec.Reason = recordDone, r.now, ""
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("removing the deactivated credential %s from Secret %s: %w", previous, r.loc, err)
	}
	state := "is deactivated"
	if slices.Contains(rec.DeactivationsHeld, previous) {
		state = "stays active until its deactivation, held for approval in Dfns, is approved"
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeNormal, eventCredentialRotated,
		"rotation done in %s: signing with credential %s; the previous credential %s %s", r.now.Sub(rec.StartedAt).Round(time.Second), next, previous, state)
	r.finish(rec)
	r.status.Phase, r.status.NewCredID, r.status.PreviousCredID = "", "", previous
	r.status.CreatedAt = dfnsTime(made.DateCreated)
	if every := r.in.spec.CredentialRotation; every != nil {
		r.status.NextRotationAt = timePtr(r.dueAfter(rec, every.Every.Duration))
	}
	return rotationResult{cond: r.scheduledCondition(rec)}, nil
}

// finish records the end of a rotation in status.
func (r *rotation) finish(rec rotationRecord) {
	r.status.LastRotatedAt = timePtr(rec.FinishedAt)
	if rec.By == r.in.key && rec.Request != "" {
		r.status.RotateRequest = rec.Request
	}
}

// rollback puts the previous credential back in the Secret; the new one, still active in
// Dfns, is deactivated as an orphan once the manager signs with the previous one again. It
// never goes back once the new credential was confirmed (the previous one may be deactivated
// already, by this step or by an earlier attempt whose answer or Secret write was lost), nor
// when Dfns lists the previous credential as inactive: going back to a credential that
// does not work would throw away the only one that does. The rotation then stays where it is
// and the reason is reported until the new credential can be finished with.
func (r *rotation) rollback(ctx context.Context, s *corev1.Secret, rec rotationRecord, reason string) (rotationResult, error) {
	next, previous := value(s, dfns.FileCredID), value(s, keyPreviousCredID)
	if rec.Phase == recordConfirmed {
		return rotationResult{}, fmt.Errorf("%s; credential %s was confirmed, so the rotation is not rolled back: it is finished "+
			"once the manager signs with %s again", reason, next, next)
	}
	// Unconfirmed, this rotation never deactivated the previous credential (that step follows
	// the recorded confirmation). Someone else may have: look, where the credential in use can
	// still list (it cannot when the new one does not log in, the usual reason to go back).
	if list, err := r.in.cl.api.ListCredentials(ctx); err == nil {
		if old := findCredential(list, previous); old == nil || !old.IsActive {
			return rotationResult{}, fmt.Errorf("%s; the previous credential %s is not active in Dfns, so the rotation is not "+
				"rolled back to it", reason, previous)
		}
	}
	s.Data[dfns.FileCredID], s.Data[dfns.FilePrivateKey] = s.Data[keyPreviousCredID], s.Data[keyPreviousPrivateKey]
	for _, k := range []string{keyPreviousCredID, keyPreviousPrivateKey, keyNextCredID, keyNextPrivateKey} {
		delete(s.Data, k)
	}
	rec.Phase, rec.FinishedAt, rec.Reason = recordRolledBack, r.now, reason
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("rolling Secret %s back to credential %s (%s): %w", r.loc, previous, reason, err)
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeWarning, eventRotationRolledBack,
		"rolled back to credential %s: %s; %s is deactivated once the manager signs with %s again", previous, reason, next, previous)
	r.conns.readAgain(r.in.key)
	r.finish(rec)
	r.status.Phase, r.status.NewCredID, r.status.PreviousCredID = "", "", ""
	return rotationResult{cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonRotationFailed, "rolled back: "+reason),
		requeue: rotationPoll, reported: true}, nil
}

// abandon drops a staged key whose credential Dfns refused or deactivated: the credential in
// use never changed. A registered one is deactivated as an orphan.
func (r *rotation) abandon(ctx context.Context, s *corev1.Secret, rec rotationRecord, reason string) (rotationResult, error) {
	delete(s.Data, keyNextCredID)
	delete(s.Data, keyNextPrivateKey)
	rec.Phase, rec.FinishedAt, rec.Reason = recordRolledBack, r.now, reason
	writeRecord(s, rec)
	if err := r.client.Update(ctx, s); err != nil {
		return rotationResult{}, fmt.Errorf("dropping the new key from Secret %s (%s): %w", r.loc, reason, err)
	}
	r.recorder.Eventf(r.in.obj, corev1.EventTypeWarning, eventRotationFailed, "rotation abandoned: %s; credential %s stays in use", reason, r.creds.CredID)
	r.finish(rec)
	r.status.Phase, r.status.NewCredID, r.status.PreviousCredID = "", "", ""
	return rotationResult{cond: rotationCondition(metav1.ConditionFalse, v1alpha1.ReasonRotationFailed, "abandoned: "+reason),
		requeue: rotationPoll, reported: true}, nil
}

// refusesRegistration reports whether Dfns refused a registration for good: a 4xx other than
// a conflict (the next try lists first), a rate limit or a login that failed.
func refusesRegistration(err error) bool {
	if _, limited := dfns.IsRateLimited(err); limited {
		return false
	}
	if _, throttled := dfns.IsThrottled(err); throttled {
		return false
	}
	return dfns.IsRefused(err) && !dfns.IsConflict(err) && !dfns.IsUnauthorized(err) && !errors.Is(err, dfns.ErrCredentials)
}

// waiting is a rotation waiting for the manager to read its Secret.
func (r *rotation) waiting(msg string) rotationResult {
	return rotationResult{cond: rotationCondition(metav1.ConditionTrue, v1alpha1.ReasonRotating, msg), requeue: rotationPoll}
}

// credentialNameBase starts the Dfns name of the credentials rotations make for a Secret:
// "dfns-operator <namespace>/<name> ", or a hash of them when that is too long.
func credentialNameBase(loc secretLocation) string {
	base := credentialNamePrefix + loc.String() + " "
	if len(base)+len("20060102T150405Z") > maxCredentialName {
		sum := sha256.Sum256([]byte(loc.String()))
		base = credentialNamePrefix + hex.EncodeToString(sum[:8]) + " "
	}
	return base
}

// credentialName is the Dfns name of a credential a rotation for loc makes at t.
func credentialName(loc secretLocation, t time.Time) string {
	return credentialNameBase(loc) + t.UTC().Format("20060102T150405Z")
}

// findCredential finds a credential by its credId.
func findCredential(list []dfns.Credential, credID string) *dfns.Credential {
	for i := range list {
		if list[i].CredentialID == credID {
			return &list[i]
		}
	}
	return nil
}

// dfnsTime reads a Dfns date; nil when it cannot.
func dfnsTime(s string) *metav1.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return timePtr(t)
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// rotationCondition is a CredentialRotation condition.
func rotationCondition(status metav1.ConditionStatus, reason, msg string) *metav1.Condition {
	return &metav1.Condition{Type: v1alpha1.ConditionCredentialRotation, Status: status, Reason: reason, Message: msg}
}
