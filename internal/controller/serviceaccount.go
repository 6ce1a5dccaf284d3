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
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

// Keys of the Secret written for a service account (design.md §4).
const (
	KeyAPIURL     = "DFNS_API_URL"
	KeyOrgID      = "DFNS_ORG_ID"
	KeyAuthToken  = "DFNS_AUTH_TOKEN"
	KeyCredID     = "DFNS_CRED_ID"
	KeyPrivateKey = "DFNS_PRIVATE_KEY"
)

// maxDfnsNameLen is the longest service-account or permission name the operator sends.
const maxDfnsNameLen = 100

// serviceAccounts is the External of DfnsServiceAccount.
type serviceAccounts struct {
	api    dfns.API
	client client.Client // cached: DfnsPermissions and the operator's Secrets
	reader client.Reader // uncached: confirms a Secret the cache may not have seen yet
}

var _ External[*v1alpha1.DfnsServiceAccount] = (*serviceAccounts)(nil)

// Validate checks the default name's length, which the API server cannot.
func (e *serviceAccounts) Validate(_ context.Context, sa *v1alpha1.DfnsServiceAccount) error {
	if n := sa.DfnsName(); len(n) > maxDfnsNameLen {
		return stopf(v1alpha1.ReasonInvalidSpec, "the Dfns name %q is longer than %d characters; set spec.name", n, maxDfnsNameLen)
	}
	return nil
}

// Secret names the Secret the token and key go to.
func (e *serviceAccounts) Secret(sa *v1alpha1.DfnsServiceAccount) (string, v1alpha1.SecretTemplate) {
	return sa.SecretName(), sa.Spec.SecretTemplate
}

// Observe reads the recorded service account and checks both it and the Secret holding its
// token; with no recorded ID it looks for one this resource made (see find).
func (e *serviceAccounts) Observe(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, id string) (Observation, error) {
	if id == "" {
		return e.find(ctx, sa)
	}
	got, err := e.api.GetServiceAccount(ctx, id)
	if dfns.IsNotFound(err) {
		return e.recreate(ctx, sa, id)
	}
	if err != nil {
		return Observation{}, fmt.Errorf("reading service account %s: %w", id, err)
	}
	intact, err := e.secretIntact(ctx, sa, id)
	if err != nil {
		return Observation{}, err
	}
	if !intact {
		if !mintedHere(sa, id) {
			return Observation{}, stopf(v1alpha1.ReasonInvalidSpec, "service account %s was not created by this resource "+
				"and Dfns never shows its token again, so it cannot be adopted; remove the %s annotation to create a new one",
				id, v1alpha1.AnnotationExternalID)
		}
		return Observation{Replace: &Replacement{ID: id, Reason: EventReminted,
			Message: fmt.Sprintf("Secret %s was deleted or changed; deleted service account %s and minted a new one", sa.SecretName(), id)}}, nil
	}
	return compareServiceAccount(sa, got), nil
}

// mintedHere reports whether this resource ever published a token (of id or an earlier account):
// only then may an account whose token is not in the Secret be replaced. An external-id
// annotation put on a new resource names someone else's account: it is never deleted.
func mintedHere(sa *v1alpha1.DfnsServiceAccount, id string) bool {
	return sa.Status.ServiceAccountID == id || sa.Status.SecretFingerprint != ""
}

// recreate handles a recorded account that is gone from Dfns. A replacement whose create
// answer was lost may carry our name already, so the name is looked up first.
func (e *serviceAccounts) recreate(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, id string) (Observation, error) {
	obs, err := e.find(ctx, sa)
	if err != nil || obs.Exists || obs.Replace != nil {
		return obs, err
	}
	obs.Replace = &Replacement{Reason: EventRecreated,
		Message: fmt.Sprintf("service account %s was deleted in Dfns; created a new one", id)}
	return obs, nil
}

// find looks for a service account this resource made whose ID was never recorded. Dfns does
// not return externalId, so the marker is the unique name plus the create-pending annotation
// (or our Secret naming the account, when only the ID patch was lost). Ours with its token in
// the Secret is adopted; ours without it is an orphan, replaced; anyone else's is a conflict.
func (e *serviceAccounts) find(ctx context.Context, sa *v1alpha1.DfnsServiceAccount) (Observation, error) {
	all, err := e.api.ListServiceAccounts(ctx)
	if err != nil {
		return Observation{}, fmt.Errorf("listing service accounts: %w", err)
	}
	name := sa.DfnsName()
	for i := range all {
		got := &all[i]
		if got.UserInfo.Name != name {
			continue
		}
		id := got.UserInfo.UserID
		holds, err := e.secretHolds(ctx, sa, id)
		if err != nil {
			return Observation{}, err
		}
		if holds {
			return compareServiceAccount(sa, got), nil
		}
		if _, pending := sa.Annotations[v1alpha1.AnnotationCreatePending]; !pending {
			return Observation{}, stopf(v1alpha1.ReasonNameConflict,
				"a Dfns service account named %q (%s) exists and was not made by this resource; set another spec.name", name, id)
		}
		return Observation{Replace: &Replacement{ID: id, Reason: EventOrphanDeleted,
			Message: fmt.Sprintf("deleted service account %s whose token was never saved, and created a new one", id)}}, nil
	}
	return Observation{}, nil
}

// compareServiceAccount reports whether the name and activation match the spec.
func compareServiceAccount(sa *v1alpha1.DfnsServiceAccount, got *dfns.ServiceAccount) Observation {
	var diff []string
	if got.UserInfo.Name != sa.DfnsName() {
		diff = append(diff, fmt.Sprintf("name %q, want %q", got.UserInfo.Name, sa.DfnsName()))
	}
	if got.UserInfo.IsActive != sa.WantActive() {
		diff = append(diff, fmt.Sprintf("active %t, want %t", got.UserInfo.IsActive, sa.WantActive()))
	}
	if len(got.AccessTokens) > 0 && sa.Status.TokenID == "" {
		sa.Status.TokenID = got.AccessTokens[0].TokenID
	}
	sa.Status.SecretName = sa.SecretName()
	return Observation{ID: got.UserInfo.UserID, Exists: true, UpToDate: len(diff) == 0,
		Diff: strings.Join(diff, ", "), Current: got}
}

// secretIntact reports whether the Secret still holds the token and key written for the
// service account id, by their fingerprint. A status that lost the fingerprint takes it from
// a Secret that names the account.
func (e *serviceAccounts) secretIntact(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, id string) (bool, error) {
	s, err := e.readSecret(ctx, sa, func(s *corev1.Secret) bool {
		fp := secretFingerprint(s)
		return fp == sa.Status.SecretFingerprint || (sa.Status.SecretFingerprint == "" && s.Annotations[v1alpha1.AnnotationExternalID] == id)
	})
	if err != nil || s == nil {
		return false, err
	}
	if !metav1.IsControlledBy(s, sa) {
		return false, nil
	}
	fp := secretFingerprint(s)
	if sa.Status.SecretFingerprint == "" && s.Annotations[v1alpha1.AnnotationExternalID] == id {
		sa.Status.SecretFingerprint = fp
	}
	return fp == sa.Status.SecretFingerprint, nil
}

// secretHolds reports whether our Secret holds the token of service account id.
func (e *serviceAccounts) secretHolds(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, id string) (bool, error) {
	s, err := e.readSecret(ctx, sa, func(s *corev1.Secret) bool {
		return s.Annotations[v1alpha1.AnnotationExternalID] == id
	})
	if err != nil || s == nil {
		return false, err
	}
	ok := metav1.IsControlledBy(s, sa) && s.Annotations[v1alpha1.AnnotationExternalID] == id && len(s.Data[KeyAuthToken]) > 0
	if ok && sa.Status.SecretFingerprint == "" {
		sa.Status.SecretFingerprint = secretFingerprint(s)
	}
	return ok, nil
}

// readSecret reads the resource's Secret from the cache and, when it is missing there or
// fails good, past the cache: the cache may not have caught up with a write just made.
func (e *serviceAccounts) readSecret(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, good func(*corev1.Secret) bool) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: sa.Namespace, Name: sa.SecretName()}
	var s corev1.Secret
	err := e.client.Get(ctx, key, &s)
	if err == nil && good(&s) {
		return &s, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	err = e.reader.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	return &s, nil
}

// secretFingerprint identifies the token and key held by a Secret.
func secretFingerprint(s *corev1.Secret) string {
	return fingerprint(s.Data[KeyAuthToken], s.Data[KeyPrivateKey])
}

// Create mints a service account: it replaces an orphan or lost one first, generates the key
// pair, creates the account with the resolved permission, and returns the Secret contents.
func (e *serviceAccounts) Create(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, obs Observation, mark func(context.Context) error) (Creation, error) {
	var c Creation
	req, apiURL, orgID, err := e.prepareCreate(ctx, sa)
	if err != nil {
		return c, err
	}
	if obs.Replace != nil {
		if err := e.deleteAccount(ctx, obs.Replace.ID); err != nil {
			return c, err
		}
		c.Notes = append(c.Notes, Note{Reason: obs.Replace.Reason, Message: obs.Replace.Message})
	}
	keyPEM, pubPEM, err := dfns.GenerateKey(dfns.KeyAlgorithm(keyAlgorithm(sa)))
	if err != nil {
		return c, fmt.Errorf("generating a %s key: %w", keyAlgorithm(sa), err)
	}
	req.PublicKey = pubPEM
	if err := mark(ctx); err != nil {
		return c, fmt.Errorf("marking the create as pending: %w", err)
	}
	got, err := e.api.CreateServiceAccount(ctx, req)
	if err != nil {
		return c, fmt.Errorf("creating service account %q: %w", req.Name, err)
	}
	return e.creation(sa, c, got, apiURL, orgID, keyPEM)
}

// prepareCreate checks the operator can create service accounts and resolves everything the
// create needs before any change is made in Dfns.
func (e *serviceAccounts) prepareCreate(ctx context.Context, sa *v1alpha1.DfnsServiceAccount) (req dfns.CreateServiceAccountRequest, apiURL, orgID string, err error) {
	can, err := e.api.CanCreateIdentities(ctx)
	if err != nil {
		return req, "", "", fmt.Errorf("checking the operator's Dfns identity: %w", err)
	}
	if !can {
		return req, "", "", waitf(v1alpha1.ReasonForbidden,
			"the operator runs in token mode and Dfns lets only users create service accounts: give it login mode (DFNS_USERNAME with a Key credential)")
	}
	permID, err := resolvePermission(ctx, e.client, sa.Namespace, sa.Spec.PermissionRef)
	if err != nil {
		return req, "", "", err
	}
	apiURL, orgID, err = e.api.Endpoint(ctx)
	if err != nil {
		return req, "", "", fmt.Errorf("reading the Dfns endpoint: %w", err)
	}
	req = dfns.CreateServiceAccountRequest{Name: sa.DfnsName(), PermissionID: permID, ExternalID: string(sa.UID)}
	if sa.Spec.DaysValid != nil {
		req.DaysValid = int(*sa.Spec.DaysValid)
	}
	return req, apiURL, orgID, nil
}

// creation turns the create answer into the Secret contents and the status.
func (e *serviceAccounts) creation(sa *v1alpha1.DfnsServiceAccount, c Creation, got *dfns.ServiceAccount, apiURL, orgID string, keyPEM []byte) (Creation, error) {
	c.ID = got.UserInfo.UserID
	var tok *dfns.AccessToken
	for i := range got.AccessTokens {
		if got.AccessTokens[i].Token != "" {
			tok = &got.AccessTokens[i]
			break
		}
	}
	if tok == nil {
		return c, fmt.Errorf("dfns answered the create of service account %s without a token", c.ID)
	}
	data := map[string][]byte{
		KeyAPIURL: []byte(apiURL), KeyOrgID: []byte(orgID), KeyAuthToken: []byte(tok.Token),
		KeyCredID: []byte(tok.CredID), KeyPrivateKey: keyPEM,
	}
	c.Secret = &SecretContent{Data: data, Annotations: map[string]string{v1alpha1.AnnotationExternalID: c.ID}}
	sa.Status.TokenID = tok.TokenID
	sa.Status.ExpiresAt = tokenExpiry(tok.Token)
	sa.Status.SecretName = sa.SecretName()
	sa.Status.SecretFingerprint = fingerprint(data[KeyAuthToken], data[KeyPrivateKey])
	return c, nil
}

// Update renames the account back and (re)activates or deactivates it.
func (e *serviceAccounts) Update(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, obs Observation) ([]Note, error) {
	got, _ := obs.Current.(*dfns.ServiceAccount)
	if got == nil {
		return nil, fmt.Errorf("no observed service account to update")
	}
	var notes []Note
	if got.UserInfo.Name != sa.DfnsName() {
		if _, err := e.api.UpdateServiceAccount(ctx, obs.ID, dfns.UpdateServiceAccountRequest{Name: sa.DfnsName()}); err != nil {
			return notes, fmt.Errorf("renaming service account %s: %w", obs.ID, err)
		}
		notes = append(notes, Note{EventUpdated, fmt.Sprintf("renamed service account %s from %q back to %q", obs.ID, got.UserInfo.Name, sa.DfnsName())})
	}
	switch {
	case got.UserInfo.IsActive == sa.WantActive():
	case sa.WantActive():
		if _, err := e.api.ActivateServiceAccount(ctx, obs.ID); err != nil {
			return notes, fmt.Errorf("activating service account %s: %w", obs.ID, err)
		}
		notes = append(notes, Note{EventReactivated, fmt.Sprintf("service account %s was deactivated; activated it", obs.ID)})
	default:
		if _, err := e.api.DeactivateServiceAccount(ctx, obs.ID); err != nil {
			return notes, fmt.Errorf("deactivating service account %s: %w", obs.ID, err)
		}
		notes = append(notes, Note{EventDeactivated, fmt.Sprintf("deactivated service account %s as spec.active asks", obs.ID)})
	}
	return notes, nil
}

// Delete deletes or deactivates the account per deletionPolicy; one already gone is fine.
func (e *serviceAccounts) Delete(ctx context.Context, sa *v1alpha1.DfnsServiceAccount, id string) error {
	if sa.GetDeletionPolicy() != v1alpha1.DeletionPolicyDeactivate {
		return e.deleteAccount(ctx, id)
	}
	_, err := e.api.DeactivateServiceAccount(ctx, id)
	if err != nil && !dfns.IsNotFound(err) {
		return fmt.Errorf("deactivating service account %s: %w", id, err)
	}
	return nil
}

// deleteAccount deletes a service account; empty or already gone is fine.
func (e *serviceAccounts) deleteAccount(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if err := e.api.DeleteServiceAccount(ctx, id); err != nil && !dfns.IsNotFound(err) {
		return fmt.Errorf("deleting service account %s: %w", id, err)
	}
	return nil
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
		return "", waitf(v1alpha1.ReasonPermissionNotReady, "waiting for DfnsPermission %s: it does not exist", ref.Name)
	}
	if err != nil {
		return "", fmt.Errorf("reading DfnsPermission %s: %w", ref.Name, err)
	}
	if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) || externalID(&p) == "" {
		return "", waitf(v1alpha1.ReasonPermissionNotReady, "waiting for DfnsPermission %s to be Ready", ref.Name)
	}
	return externalID(&p), nil
}

// keyAlgorithm is spec.keyAlgorithm or the default.
func keyAlgorithm(sa *v1alpha1.DfnsServiceAccount) string {
	if sa.Spec.KeyAlgorithm == "" {
		return string(dfns.KeyECDSAP256)
	}
	return string(sa.Spec.KeyAlgorithm)
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
