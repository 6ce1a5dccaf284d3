// Package dfns is the operator's client for the Dfns API, and the only package that speaks
// HTTP to Dfns. It imports nothing from Kubernetes.
//
// A Client gets the operator's identity from a CredentialsSource (normally FileCredentials
// over a mounted Secret, docs/architecture.md, "The operator's credentials"): in login mode
// it logs in as a user with a Key credential and refreshes the token before it expires; in
// token mode it uses a service-account token or PAT as is. Every change is signed as a user
// action (docs/dfns-api.md §2): the body is serialised once, its bytes are both the
// userActionPayload of /auth/action/init and the body of the real call, and the challenge is
// signed with the Key credential (Ed25519, ECDSA P-256 or RSA).
//
// Every call shares one rate limiter. Reads and the login and user-action steps are retried
// with backoff on 429, 5xx and network errors; a change is sent again only when Dfns certainly
// did not apply it, otherwise the error wraps ErrOutcomeUnknown and the caller decides.
// Failures are *Error values, classified by IsNotFound, IsConflict, IsForbidden,
// IsUnauthorized, IsRateLimited and IsPendingApproval. No error string carries a token, key,
// signature or request body.
package dfns
