// Package sandbox is an in-memory implementation of the Dfns access API (authentication,
// user-action signing, a user's own credentials, service accounts, personal access tokens, users, permissions,
// assignments, policies, approvals and webhooks) for tests, benchmarks and local demos.
//
// It models Dfns independently of the project's client (it imports nothing from
// internal/dfns), so that a wire mismatch in the client is caught by tests instead of being
// hidden by shared types. Both official SDKs (Go v2 and @dfns/sdk with sdk-keysigner) work
// against it unchanged. Test controls live under /sandbox/, outside the Dfns API, without
// authentication: GET healthz; GET and PUT faults; POST inject; GET and DELETE counters; POST
// users (a registered user with a Key credential); POST users/{userId}/register (completes
// an invitation, Server.RegisterUser); GET and PUT strict (a JSON list of strict behaviour
// names, see below).
//
// Behaviour decisions where docs/dfns-api.md is silent or sources disagree:
//   - Bearer tokens are HS256 JWTs signed with a key kept in the state (and state file); the
//     identity and token behind a JWT are checked on every request, so deactivating or
//     deleting a user, service account or PAT revokes its tokens at once (401).
//   - User actions are bound to the caller, method, path without query string and a SHA-256
//     of the exact payload bytes (absent body == ""), valid 5 minutes, single-use; their
//     challenges are single-use too. A failed credential assertion at /auth/action or
//     /auth/login answers 401; an invalid or foreign challengeIdentifier 400.
//   - Every non-GET API call except the auth flow requires a user action, as the TS SDK
//     signs every non-GET call.
//   - A service account or PAT created without permissionId gets no permissions (§11
//     question 2); with permissionId the caller also needs Permissions:Assign, and the
//     assignment is not subject to Permissions:Assign policies.
//   - Deleting a service account, PAT or user removes it (GET 404, not listed) with its
//     credentials and assignments; its name is free again (strict mode: see below).
//   - An archived permission grants nothing and cannot be assigned; DfnsFullAdminAccess and
//     immutable assignments answer 403 to changes.
//   - A change to an entity that has a pending change request answers 409 with
//     details.changeRequestId/approvalId (never a second change request); a pending
//     assignment creation is not listed until it is applied. The force query parameter of
//     revoke and delete is accepted and ignored.
//   - Approvals: the initiator may deny but not approve (unless initiatorCanApprove), a
//     service account may decide only with serviceAccountsCanApprove, one decision per user
//     (409 on a second), any denial rejects, every group's quorum must be reached; an
//     approved change that can no longer be applied ends Failed.
//   - Webhooks: at most 5 per org (400 beyond); events are delivered once (no retries)
//     asynchronously; the ping is delivered synchronously with kind "ping" and not stored.
//   - Faults: "answer-lost" hijacks and closes the connection after the change is
//     committed (HTTP/2: the stream is aborted).
//   - Credentials (/auth/credentials): a user manages its own, logged in (service-account
//     tokens and PATs answer 403); only Key credentials exist. A registration needs a
//     challenge from /auth/credentials/init (single-use, 5 minutes), clientData of type
//     key.create with that challenge, and attestationData {publicKey, signature} whose hex
//     signature by the new key covers {"clientDataHash":<hex SHA-256 of clientData>,
//     "publicKey":<PEM as sent>} written compactly; the credId is the client's, unique in
//     the organisation (409). A new credential is active and usable at once; deactivated, it
//     can neither log in nor sign; the last active one cannot be deactivated (400).
//     credentialName is 1..100 characters. The list shows every credential, active or not.
//   - Keys: ECDSA credentials must be P-256 in every mode. The docs allow any curve Node
//     supports (secp256k1 included), but Go's standard library has no secp256k1.
//
// # Strict mode
//
// Where the Dfns docs and SDKs leave behaviour open, the decisions above are the kind
// reading. Options.Strict (Server.SetStrict, the /sandbox/strict control, dfns-sandbox
// --strict) turns on the less kind one, behaviour by behaviour, so that a client can be
// tested against both (docs/dfns-compatibility.md). By name (ParseStrictness):
//
//   - archive: default, a deleted service account, PAT or user is removed (GET 404, not
//     listed) and its name is free. Strict, it stays listed and readable with isActive false
//     (tokens revoked, assignments removed), its name stays taken (creating another answers
//     409 "... already exists", as any duplicate), it cannot be assigned (404), updated or
//     activated (400); deactivating or deleting it again answers 200, unchanged.
//   - no-approval-id: default, change requests carry approvalId. Strict, they carry none:
//     not in 202 answers, pendingChangeRequest, an approval's activity.changeRequest, nor the
//     409 of a second change (details.changeRequestId only); the approval is found by
//     listing approvals and matching activity.changeRequest.id.
//   - empty-cred-id: default, service-account and PAT create answers carry the credId.
//     Strict, "credId": "" (as in the docs' create examples); GET and list carry the real one.
//   - policy-defaults: default, a policy reads back as sent. Strict, policies (create, get,
//     list, update and archive answers, and a held policy change's body) read back with
//     rule.configuration {} when absent, limit and riskScoreThreshold as strings, for
//     RequestApproval autoRejectTimeout null and per group name null, initiatorCanApprove
//     and serviceAccountsCanApprove false, and filters {} when absent. Such a body is
//     accepted back unchanged.
//   - pending-listed: default, a held assignment creation is not listed until applied.
//     Strict, it is listed under its permission (its id the change request's entityId, with
//     pendingChangeRequest, operationKind Create) and among the identity's
//     permissionAssignments (whose items cannot mark it); revoking it answers 409. In both
//     modes an assignment with a held revoke carries pendingChangeRequest (Delete).
//   - approver-force: default, force is accepted and ignored. Strict, deactivating or
//     deleting a service account or user that an active policy names in
//     approvalGroups[].approvers.userId.in answers 400 (details.policyIds) unless force is
//     true where @dfns/sdk sends it: the body {"force": true} of a deactivate, the query
//     force=true of a delete (the user endpoints document no force; the same places apply).
//   - input: default, rule configurations are only checked to be objects, and both SDKs'
//     webhook event kinds are accepted. Strict, TransactionAmountLimit and
//     TransactionAmountVelocity take currency USD only; ChainalysisTransactionPrescreening
//     needs alerts{alertLevel, categoryIds}, exposures.direct.categoryIds,
//     addresses.categoryIds and the four fallbackBehaviours booleans
//     (ChainalysisTransactionScreening the same without addresses); webhooks take only the
//     event kinds of @dfns/sdk 0.8.21 (no vault.*, no wallet.blockchain_event.transfer.included).
//     Refusals answer 400.
//   - challenge-spent: default, an injected internal, rate-limited or timeout fault answers
//     before the handler runs, so a retry with the same challenge works. Strict, on
//     /auth/login and /auth/action the handler runs first (the challenge is consumed), so the
//     retry answers 400 "Challenge token is not valid." as a reused challenge does.
//   - invitations: default, POST /auth/users with publicKey makes a registered user who
//     logs in at once (without one the user is unregistered). Strict, the user is always
//     invited: isRegistered false, the key kept inactive, /auth/login/init answers 401 "User
//     has not completed registration". In both modes POST /sandbox/users/{id}/register (and
//     Server.RegisterUser) completes the registration, idempotently.
//   - hold-creates: default, policies hold changes of existing entities only. Strict, an
//     active Policies:Modify policy without a policyId filter also holds policy creation,
//     and a Permissions:Modify one without a permissionId filter permission creation: 202, a
//     change request (operationKind Create, entityId the ID the entity will get, body the
//     entity) applied on approval; a Block policy refuses the creation (403). Other creations
//     (webhooks, service accounts, PATs) are never held.
package sandbox
