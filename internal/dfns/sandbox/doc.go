// Package sandbox is an in-memory implementation of the Dfns access API (authentication,
// user-action signing, service accounts, personal access tokens, users, permissions,
// assignments, policies, approvals and webhooks) for tests, benchmarks and local demos.
//
// It models Dfns independently of the project's client (it imports nothing from
// internal/dfns), so that a wire mismatch in the client is caught by tests instead of being
// hidden by shared types. Both official SDKs (Go v2 and @dfns/sdk with sdk-keysigner) work
// against it unchanged. Test controls live under /sandbox/, outside the Dfns API.
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
//     credentials and assignments; its name is free again.
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
package sandbox
