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

package v1alpha1

// Condition types. Both have positive polarity.
const (
	// ConditionReady is True when the Dfns object exists, matches the spec, and the Secret, if
	// any, is written.
	ConditionReady = "Ready"
	// ConditionSynced is True when the last reconcile reached Dfns and converged.
	ConditionSynced = "Synced"
	// ConditionCredentialRotation (connections) is True when the operator can replace its own
	// Key credential and nothing is failing; it says when the next rotation is due, or which
	// step one is at.
	ConditionCredentialRotation = "CredentialRotation"
)

// Reasons of a connection's CredentialRotation condition.
const (
	// ReasonRotationScheduled (True): no rotation under way; the message says when the next
	// one is due, or that only the access.dfns.io/rotate-credential annotation starts one.
	ReasonRotationScheduled = "Scheduled"
	// ReasonRotating (True): a rotation is under way; the message names the step.
	ReasonRotating = "Rotating"
	// ReasonRotationFailed (False): the last rotation step failed or the rotation was rolled
	// back; the credential in use still works. The message says why.
	ReasonRotationFailed = "RotationFailed"
	// ReasonNotRotatable (False): there is nothing the operator can rotate: token mode, or
	// credentials in a Secret it does not know or may not write.
	ReasonNotRotatable = "NotRotatable"
)

// Condition reasons. They are API: tools and users match on them.
const (
	// ReasonAvailable (Ready=True): the Dfns object exists and matches the spec.
	ReasonAvailable = "Available"
	// ReasonCreating (Ready=False): the Dfns object does not exist yet or is being created.
	ReasonCreating = "Creating"
	// ReasonDeleting (Ready=False): the resource is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonUnavailable (Ready=False): the Dfns object cannot be used (deactivated, archived,
	// or not converged yet).
	ReasonUnavailable = "Unavailable"

	// ReasonReconcileSuccess (Synced=True): the last reconcile converged.
	ReasonReconcileSuccess = "ReconcileSuccess"
	// ReasonReconcileError (Synced=False): a transient failure, retried with backoff.
	ReasonReconcileError = "ReconcileError"
	// ReasonAwaitingApproval (Synced=False): a Dfns change request waits for approval.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonChangeRejected (Synced=False): a Dfns change request was rejected; nothing is sent
	// again until the spec changes.
	ReasonChangeRejected = "ChangeRejected"
	// ReasonInvalidSpec (Synced=False): the spec cannot be applied; fix the spec.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNameConflict (Synced=False): the Dfns name is taken by an object this resource does
	// not own; change the name or adopt the object.
	ReasonNameConflict = "NameConflict"
	// ReasonNotPermitted (Synced=False): the resource asks for what it may not have, such as a
	// Dfns object it cannot prove is its own and may not adopt; nothing was sent to Dfns.
	ReasonNotPermitted = "NotPermitted"
	// ReasonSecretConflict (Synced=False): a Secret of that name exists and is not owned by this
	// resource; it is never overwritten.
	ReasonSecretConflict = "SecretConflict"
	// ReasonPermissionNotReady (Synced=False): the referenced DfnsPermission is missing or not
	// Ready yet.
	ReasonPermissionNotReady = "PermissionNotReady"
	// ReasonIdentityNotReady (Synced=False): the referenced identity (a DfnsServiceAccount,
	// DfnsPersonalAccessToken or DfnsUser, or a DfnsUser a policy names as an approver) is
	// missing or not Ready yet.
	ReasonIdentityNotReady = "IdentityNotReady"
	// ReasonWebhookLimitReached (Synced=False): Dfns refused a new webhook because the
	// organisation has as many as it allows; delete one or ask Dfns to raise the limit.
	ReasonWebhookLimitReached = "WebhookLimitReached"
	// ReasonForbidden (Synced=False): the operator's Dfns identity may not do this.
	ReasonForbidden = "Forbidden"
	// ReasonRateLimited (Synced=False): Dfns asked the operator to slow down.
	ReasonRateLimited = "RateLimited"
	// ReasonCredentialsUnavailable (Synced=False): the operator's Dfns credentials are missing
	// or rejected.
	ReasonCredentialsUnavailable = "CredentialsUnavailable"
	// ReasonConnectionNotFound (Synced=False): the connection the resource names does not
	// exist; nothing is done in Dfns until it does.
	ReasonConnectionNotFound = "ConnectionNotFound"
	// ReasonExpired (Ready=False): the token in the Secret has expired, and minting its
	// successor has been failing since before then.
	ReasonExpired = "Expired"
	// ReasonDeletionRefused: Dfns refused to delete or deactivate the object (a service account
	// or user that a policy names as approver, for one); the operator does not bypass the
	// refusal.
	ReasonDeletionRefused = "DeletionRefused"
)
