// Conformance run of the official Dfns TypeScript SDK (@dfns/sdk + @dfns/sdk-keysigner)
// against dfns-sandbox.
//
// Input: DFNS_BOOTSTRAP_DIR, the sandbox's bootstrap directory (DFNS_API_URL, DFNS_ORG_ID,
// DFNS_USERNAME, DFNS_CRED_ID, DFNS_PRIVATE_KEY). For HTTPS the caller sets
// NODE_EXTRA_CA_CERTS to its ca.crt. Prints one line per step, never a token or key; exits 1
// with the failing step, HTTP status, URL and Dfns error body on the first failure.
//
// The sandbox's strict behaviours (GET /sandbox/strict) are read first: where a strict
// reading changes what the SDK sees (an empty credId in create answers, no approvalId,
// archived identities still listed, policy defaults echoed), the script checks that reading
// and does what a client of the real service must (read the credId back, find the approval
// by its change request).
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import sdk from '@dfns/sdk';
import keysigner from '@dfns/sdk-keysigner';

const { DfnsApiClient, DfnsAuthenticator, DfnsError, PolicyPendingError } = sdk;
const { AsymmetricKeySigner } = keysigner;

class StepFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new StepFailure(message);
}

let stepCount = 0;
async function step(name, fn) {
  try {
    const result = await fn();
    stepCount++;
    console.log(`ok   ${name}`);
    return result;
  } catch (err) {
    console.log(`FAIL ${name}`);
    console.log(describe(err));
    process.exit(1);
  }
}

// describe explains a failure without secrets: Dfns error bodies and URLs carry none.
function describe(err) {
  if (err instanceof DfnsError) {
    const ctx = err.context ?? {};
    const lines = [`  DfnsError httpStatus=${err.httpStatus} message=${JSON.stringify(err.message)}`];
    if (ctx.url) lines.push(`  url=${ctx.url}`);
    if (ctx.body !== undefined) lines.push(`  body=${JSON.stringify(ctx.body)}`);
    else if (err.httpStatus === 202) lines.push(`  changeRequest=${JSON.stringify(ctx)}`);
    return lines.join('\n');
  }
  if (err instanceof StepFailure) return `  ${err.message}`;
  return `  ${err?.stack ?? err}`;
}

// expectDfnsError runs fn and requires a DfnsError with the given HTTP status.
async function expectDfnsError(status, fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof DfnsError && err.httpStatus === status) return err;
    throw err;
  }
  throw new StepFailure(`expected a DfnsError with HTTP status ${status}, the call succeeded`);
}

function readBootstrap(dir) {
  const read = (name) => readFileSync(join(dir, name), 'utf8');
  return {
    baseUrl: read('DFNS_API_URL').trim(),
    orgId: read('DFNS_ORG_ID').trim(),
    username: read('DFNS_USERNAME').trim(),
    credId: read('DFNS_CRED_ID').trim(),
    privateKey: read('DFNS_PRIVATE_KEY'),
  };
}

// keyPair generates a Key credential the way the Dfns docs do with Node (SPKI / PKCS#8 PEM).
function keyPair(kind) {
  const options = {
    ec: ['ec', { namedCurve: 'prime256v1' }],
    ed25519: ['ed25519', {}],
    rsa: ['rsa', { modulusLength: 2048 }],
  }[kind];
  const { publicKey, privateKey } = crypto.generateKeyPairSync(options[0], {
    ...options[1],
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey, privateKey };
}

function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

async function login(baseUrl, orgId, username, credId, privateKey) {
  const signer = new AsymmetricKeySigner({ credId, privateKey });
  const { token } = await new DfnsAuthenticator({ baseUrl, orgId, signer }).login({ username, orgId });
  check(typeof token === 'string' && token.split('.').length === 3, 'login answered no JWT');
  check(jwtClaims(token)['https://custom/app_metadata']?.orgId === orgId, 'login token lacks the org claim');
  return new DfnsApiClient({ baseUrl, orgId, authToken: token, signer });
}

function tokenClient(baseUrl, orgId, authToken, credId, privateKey) {
  return new DfnsApiClient({ baseUrl, orgId, authToken, signer: new AsymmetricKeySigner({ credId, privateKey }) });
}

async function listAllPermissions(client) {
  const items = [];
  let paginationToken;
  let pages = 0;
  do {
    const page = await client.permissions.listPermissions({ query: { limit: 1, paginationToken } });
    items.push(...page.items);
    paginationToken = page.nextPageToken;
    pages++;
    check(pages < 1000, 'pagination does not end');
  } while (paginationToken);
  return { items, pages };
}

// startReceiver serves webhook deliveries on a loopback port and keeps them with their raw body.
async function startReceiver() {
  const deliveries = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ signature: req.headers['x-dfns-webhook-signature'], raw: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/dfns`, deliveries, close: () => server.close() };
}

// checkDelivery verifies a delivery as the Dfns docs do: HMAC-SHA256 of the body with the
// webhook secret, and a compact body (the docs' verifier re-serialises the parsed JSON).
function checkDelivery(d, secret) {
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(d.raw).digest('hex');
  check(d.signature === want, 'X-DFNS-WEBHOOK-SIGNATURE does not match the HMAC of the body');
  const event = JSON.parse(d.raw);
  check(JSON.stringify(event) === d.raw, 'the delivery body is not compact JSON');
  return event;
}

// strictBehaviours reads the sandbox's strict behaviours (a JSON list of names).
async function strictBehaviours(baseUrl) {
  const res = await fetch(`${baseUrl}/sandbox/strict`);
  check(res.status === 200, `GET /sandbox/strict answered ${res.status}`);
  return new Set(await res.json());
}

// approvalIdOf follows a change request to its approval: by its approvalId, or, when it has
// none (strict no-approval-id), by listing the approvals whose activity holds it.
async function approvalIdOf(client, cr, strict) {
  if (!strict.has('no-approval-id')) {
    check(typeof cr.approvalId === 'string' && cr.approvalId, `change request without approvalId ${JSON.stringify(cr)}`);
    return cr.approvalId;
  }
  check(cr.approvalId === undefined, `strict no-approval-id, yet approvalId ${cr.approvalId}`);
  const { items } = await client.policies.listApprovals({ query: { limit: 100 } });
  const ap = items.find((a) => a.activity?.changeRequest?.id === cr.id);
  check(ap, `no approval lists change request ${cr.id}`);
  return ap.id;
}

// createdCredId is the credId of a create answer: the one it carries, or, when it is empty
// (strict empty-cred-id), the one read back with readBack.
async function createdCredId(credId, strict, readBack) {
  if (!strict.has('empty-cred-id')) {
    check(typeof credId === 'string' && credId.length > 0, 'the create answer has no credId');
    return credId;
  }
  check(credId === '', `strict empty-cred-id, yet credId ${JSON.stringify(credId)}`);
  const real = await readBack();
  check(typeof real === 'string' && real.length > 0, 'no credId read back');
  return real;
}

async function waitFor(what, cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const dir = process.env.DFNS_BOOTSTRAP_DIR;
  if (!dir) {
    console.log('FAIL DFNS_BOOTSTRAP_DIR is not set');
    process.exit(2);
  }
  const boot = readBootstrap(dir);
  const { baseUrl, orgId } = boot;
  const run = crypto.randomBytes(4).toString('hex');
  const strict = await strictBehaviours(baseUrl);
  console.log(`dfns sdk conformance: ${baseUrl} org=${orgId} run=${run} strict=[${[...strict].join(',')}]`);

  const admin = await step('login as the bootstrap admin (DfnsAuthenticator, ECDSA key)', () =>
    login(baseUrl, orgId, boot.username, boot.credId, boot.privateKey),
  );

  const perm = await step('create a permission', async () => {
    const p = await admin.permissions.createPermission({
      body: { name: `sdk-${run}`, operations: ['Permissions:Read', 'Permissions:Create', 'Permissions:Archive'] },
    });
    check(/^pm-/.test(p.id) && p.name === `sdk-${run}` && p.isArchived === false, `unexpected permission ${JSON.stringify(p)}`);
    check(p.operations.length === 3, `operations = ${JSON.stringify(p.operations)}`);
    return p;
  });

  await step('get the permission and find it by paging through the list (limit=1)', async () => {
    const p = await admin.permissions.getPermission({ permissionId: perm.id });
    check(p.id === perm.id && p.name === perm.name, `get returned ${JSON.stringify(p)}`);
    const { items, pages } = await listAllPermissions(admin);
    check(items.some((i) => i.id === perm.id), 'the new permission is not listed');
    check(items.some((i) => i.name === 'DfnsFullAdminAccess'), 'DfnsFullAdminAccess is not listed');
    check(pages >= 2, `expected several pages with limit=1, got ${pages}`);
  });

  await step('a duplicate permission name is a 409', () =>
    expectDfnsError(409, () =>
      admin.permissions.createPermission({ body: { name: perm.name, operations: ['Permissions:Read'] } }),
    ),
  );

  const saKeys = keyPair('ec');
  const sa = await step('create a service account with its own key pair and the permission', async () => {
    const res = await admin.auth.createServiceAccount({
      body: { name: `sdk-sa-${run}`, publicKey: saKeys.publicKey, permissionId: perm.id, daysValid: 1 },
    });
    const token = res.accessTokens?.[0];
    check(/^us-/.test(res.userInfo?.userId) && res.userInfo.isServiceAccount === true, 'userInfo is not a service account');
    check(typeof token?.accessToken === 'string' && /^to-/.test(token.tokenId), 'no access token or tokenId');
    check(
      res.userInfo.permissionAssignments.some((a) => a.permissionId === perm.id),
      'the permission is not among the service account permissionAssignments',
    );
    const credId = await createdCredId(token.credId, strict, async () => {
      const got = await admin.auth.getServiceAccount({ serviceAccountId: res.userInfo.userId });
      return got.accessTokens[0].credId;
    });
    return { id: res.userInfo.userId, token: token.accessToken, credId };
  });

  const saClient = tokenClient(baseUrl, orgId, sa.token, sa.credId, saKeys.privateKey);
  await step('service account: read a permission with its token', async () => {
    const p = await saClient.permissions.getPermission({ permissionId: perm.id });
    check(p.id === perm.id, `got ${p.id}`);
  });
  const saPerm = await step('service account: signed create of a permission (AsymmetricKeySigner, ECDSA)', async () => {
    const p = await saClient.permissions.createPermission({
      body: { name: `sdk-sa-made-${run}`, operations: ['Permissions:Read'] },
    });
    check(/^pm-/.test(p.id), `unexpected ${JSON.stringify(p)}`);
    return p;
  });
  await step('service account: signed archive of that permission', async () => {
    const p = await saClient.permissions.archivePermission({ permissionId: saPerm.id, body: { isArchived: true } });
    check(p.isArchived === true, `isArchived = ${p.isArchived}`);
  });
  await step('service account: an operation outside its permission is a 403 naming it', async () => {
    const err = await expectDfnsError(403, () => saClient.auth.listServiceAccounts());
    check(err.message.includes('Auth:ServiceAccounts:Read'), `message ${JSON.stringify(err.message)} does not name the operation`);
  });

  await step('list, get and rename the service account; its token is never shown again', async () => {
    const { items } = await admin.auth.listServiceAccounts();
    const listed = items.find((i) => i.userInfo.userId === sa.id);
    check(listed, 'the service account is not listed');
    check(listed.accessTokens.every((t) => t.accessToken === undefined), 'list shows an accessToken');
    const got = await admin.auth.getServiceAccount({ serviceAccountId: sa.id });
    check(got.userInfo.name === `sdk-sa-${run}`, `name = ${got.userInfo.name}`);
    const renamed = await admin.auth.updateServiceAccount({ serviceAccountId: sa.id, body: { name: `sdk-sa-${run}-renamed` } });
    check(renamed.userInfo.name === `sdk-sa-${run}-renamed`, `name after update = ${renamed.userInfo.name}`);
  });

  await step('list the permission assignments: the service account holds the permission', async () => {
    const { items } = await admin.permissions.listAssignments({ permissionId: perm.id, query: { limit: 50 } });
    check(items.some((a) => a.identityId === sa.id && /^as-/.test(a.id)), `assignments ${JSON.stringify(items)}`);
  });

  await step('deactivate the service account (no body): its token stops working; activate it: it works again', async () => {
    const off = await admin.auth.deactivateServiceAccount({ serviceAccountId: sa.id });
    check(off.userInfo.isActive === false, 'still active');
    await expectDfnsError(401, () => saClient.permissions.getPermission({ permissionId: perm.id }));
    const on = await admin.auth.activateServiceAccount({ serviceAccountId: sa.id });
    check(on.userInfo.isActive === true, 'not active again');
    await saClient.permissions.getPermission({ permissionId: perm.id });
  });

  const user = await step('invite a user; get it and find it in the paged list', async () => {
    const u = await admin.auth.createUser({ body: { email: `invitee-${run}@example.com`, kind: 'CustomerEmployee' } });
    check(/^us-/.test(u.userId) && u.kind === 'CustomerEmployee' && u.isServiceAccount === false, `unexpected ${JSON.stringify(u)}`);
    check(u.isRegistered === false, 'an invited user is registered');
    const got = await admin.auth.getUser({ userId: u.userId });
    check(got.username === `invitee-${run}@example.com`, `username ${got.username}`);
    const seen = [];
    let paginationToken;
    do {
      const page = await admin.auth.listUsers({ query: { limit: 1, paginationToken, kind: 'CustomerEmployee' } });
      seen.push(...page.items.map((i) => i.userId));
      paginationToken = page.nextPageToken;
    } while (paginationToken && seen.length < 1000);
    check(seen.includes(u.userId), 'the invited user is not listed');
    return u;
  });
  await step('the invited user registers (/sandbox/users/{id}/register): isRegistered', async () => {
    const res = await fetch(`${baseUrl}/sandbox/users/${user.userId}/register`, { method: 'POST' });
    check(res.status === 200, `POST /sandbox/users/{id}/register answered ${res.status}`);
    const got = await admin.auth.getUser({ userId: user.userId });
    check(got.isRegistered === true, 'not registered after registration');
  });
  await step(`update, deactivate, activate and archive the user (${strict.has('archive') ? 'still listed, inactive' : 'gone'})`, async () => {
    const upd = await admin.auth.updateUser({ userId: user.userId, body: { isSSORequired: false } });
    check(upd.userId === user.userId, 'update answered another user');
    check((await admin.auth.deactivateUser({ userId: user.userId })).isActive === false, 'still active');
    check((await admin.auth.activateUser({ userId: user.userId })).isActive === true, 'not active again');
    await admin.auth.archiveUser({ userId: user.userId });
    if (strict.has('archive')) {
      const got = await admin.auth.getUser({ userId: user.userId });
      check(got.isActive === false, 'the archived user is active');
      await expectDfnsError(409, () =>
        admin.auth.createUser({ body: { email: `invitee-${run}@example.com`, kind: 'CustomerEmployee' } }),
      );
    } else {
      await expectDfnsError(404, () => admin.auth.getUser({ userId: user.userId }));
    }
  });

  const patKeys = keyPair('ed25519');
  const pat = await step('create a personal access token (Ed25519 key, the permission)', async () => {
    const t = await admin.auth.createPersonalAccessToken({
      body: { name: `sdk-pat-${run}`, publicKey: patKeys.publicKey, permissionId: perm.id, secondsValid: 3600 },
    });
    check(/^to-/.test(t.tokenId) && typeof t.accessToken === 'string', 'no tokenId or accessToken');
    check(t.isActive === true && t.kind === 'Pat', `isActive=${t.isActive} kind=${t.kind}`);
    const credId = await createdCredId(t.credId, strict, async () => {
      const got = await admin.auth.getPersonalAccessToken({ tokenId: t.tokenId });
      return got.credId;
    });
    return { id: t.tokenId, token: t.accessToken, credId };
  });
  const patClient = tokenClient(baseUrl, orgId, pat.token, pat.credId, patKeys.privateKey);
  await step('PAT: read and a signed create (AsymmetricKeySigner, Ed25519)', async () => {
    const { items } = await patClient.permissions.listPermissions({ query: { limit: 500 } });
    check(items.some((i) => i.id === perm.id), 'the PAT does not see the permission');
    const p = await patClient.permissions.createPermission({ body: { name: `sdk-pat-made-${run}`, operations: ['Permissions:Read'] } });
    check(/^pm-/.test(p.id), `unexpected ${JSON.stringify(p)}`);
  });
  await step('list, get and rename the PAT', async () => {
    const { items } = await admin.auth.listPersonalAccessTokens();
    check(items.some((t) => t.tokenId === pat.id && t.accessToken === undefined), 'the PAT is not listed, or shows its token');
    const got = await admin.auth.getPersonalAccessToken({ tokenId: pat.id });
    check(got.name === `sdk-pat-${run}`, `name = ${got.name}`);
    const renamed = await admin.auth.updatePersonalAccessToken({ tokenId: pat.id, body: { name: `sdk-pat-${run}-renamed` } });
    check(renamed.name === `sdk-pat-${run}-renamed`, `name after update = ${renamed.name}`);
  });
  await step('deactivate the PAT: its token stops working; activate it: it works again', async () => {
    const off = await admin.auth.deactivatePersonalAccessToken({ tokenId: pat.id });
    check(off.isActive === false, 'still active');
    await expectDfnsError(401, () => patClient.permissions.getPermission({ permissionId: perm.id }));
    const on = await admin.auth.activatePersonalAccessToken({ tokenId: pat.id });
    check(on.isActive === true, 'not active again');
    await patClient.permissions.getPermission({ permissionId: perm.id });
  });

  const receiver = await startReceiver();
  const webhook = await step('create a webhook for the approval events: the secret is shown once', async () => {
    const w = await admin.webhooks.createWebhook({
      body: { url: receiver.url, events: ['policy.approval.pending', 'policy.approval.resolved'], description: `sdk-${run}` },
    });
    check(/^wh-/.test(w.id) && typeof w.secret === 'string' && w.secret.length > 0, 'no webhook id or secret');
    check(w.status === 'Enabled', `status ${w.status}`);
    const got = await admin.webhooks.getWebhook({ webhookId: w.id });
    check(got.secret === undefined && got.url === receiver.url, 'get shows the secret or another url');
    const { items } = await admin.webhooks.listWebhooks({ query: { limit: 100 } });
    check(items.some((i) => i.id === w.id && i.secret === undefined), 'not listed, or listed with its secret');
    return w;
  });
  await step('ping the webhook: a signed delivery reaches the receiver', async () => {
    const res = await admin.webhooks.pingWebhook({ webhookId: webhook.id });
    check(res.status === '200', `ping answered ${JSON.stringify(res)}`);
    await waitFor('the ping delivery', () => receiver.deliveries.length >= 1);
    checkDelivery(receiver.deliveries[0], webhook.secret);
  });

  const policy = await step('create a policy: Permissions:Modify on the permission requests approval', async () => {
    const p = await admin.policies.createPolicy({
      body: {
        name: `sdk-policy-${run}`,
        activityKind: 'Permissions:Modify',
        rule: { kind: 'AlwaysTrigger' },
        action: { kind: 'RequestApproval', approvalGroups: [{ name: 'anyone', quorum: 1, approvers: {} }] },
        filters: { permissionId: { in: [perm.id] } },
      },
    });
    check(/^plc-/.test(p.id) && p.status === 'Active', `unexpected ${JSON.stringify(p)}`);
    return p;
  });

  const renamedPerm = `sdk-${run}-renamed`;
  const pending = await step('update the permission: 202, the SDK throws PolicyPendingError', async () => {
    try {
      await admin.permissions.updatePermission({ permissionId: perm.id, body: { name: renamedPerm } });
    } catch (err) {
      if (!(err instanceof PolicyPendingError)) throw err;
      const cr = err.context;
      check(/^cr-/.test(cr?.id) && cr.status === 'Pending', `change request ${JSON.stringify(cr)}`);
      const p = await admin.permissions.getPermission({ permissionId: perm.id });
      check(p.pendingChangeRequest?.id === cr.id, 'the permission does not show the pending change request');
      check(p.name === perm.name, 'the change was applied before approval');
      return { ...cr, approvalId: await approvalIdOf(admin, cr, strict) };
    }
    throw new StepFailure('the update was applied at once; want a 202 change request');
  });

  const approverKeys = keyPair('rsa');
  const approver = await step('a second user (RSA key, made via /sandbox/users) logs in with the SDK', async () => {
    const res = await fetch(`${baseUrl}/sandbox/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `approver-${run}@dfns-sandbox.local`, admin: true, publicKey: approverKeys.publicKey }),
    });
    check(res.status === 200, `POST /sandbox/users answered ${res.status}`);
    const user = await res.json();
    const client = await login(baseUrl, orgId, user.username, user.credId, approverKeys.privateKey);
    return { id: user.userId, client };
  });
  await step('the second user approves: the change is applied', async () => {
    const { items } = await approver.client.policies.listApprovals({ query: { status: 'Pending' } });
    check(items.some((a) => a.id === pending.approvalId), 'the approval is not listed as Pending');
    const decided = await approver.client.policies.createApprovalDecision({
      approvalId: pending.approvalId,
      body: { value: 'Approved', reason: 'sdk conformance' },
    });
    check(decided.status === 'Approved', `approval status ${decided.status}`);
    const p = await admin.permissions.getPermission({ permissionId: perm.id });
    check(p.name === renamedPerm && !p.pendingChangeRequest, `after approval: ${JSON.stringify(p)}`);
  });
  await step('another update is denied by its initiator: nothing changes', async () => {
    const err = await expectDfnsError(202, () =>
      admin.permissions.updatePermission({ permissionId: perm.id, body: { name: `${renamedPerm}-2` } }),
    );
    const approvalId = await approvalIdOf(admin, err.context, strict);
    const decided = await admin.policies.createApprovalDecision({ approvalId, body: { value: 'Denied' } });
    check(decided.status === 'Denied', `approval status ${decided.status}`);
    const got = await admin.policies.getApproval({ approvalId });
    check(got.decisions?.some((d) => d.value === 'Denied'), 'the denial is not among the decisions');
    const p = await admin.permissions.getPermission({ permissionId: perm.id });
    check(p.name === renamedPerm && !p.pendingChangeRequest, `after denial: ${JSON.stringify(p)}`);
  });
  await step('the approval events were delivered, signed, and are listed', async () => {
    const kinds = () => receiver.deliveries.slice(1).map((d) => JSON.parse(d.raw).kind);
    await waitFor('policy.approval.pending and policy.approval.resolved deliveries', () =>
      kinds().filter((k) => k === 'policy.approval.pending').length >= 2 &&
      kinds().filter((k) => k === 'policy.approval.resolved').length >= 2,
    );
    for (const d of receiver.deliveries.slice(1)) checkDelivery(d, webhook.secret);
    const { items } = await admin.webhooks.listWebhookEvents({ webhookId: webhook.id, query: { limit: 100 } });
    check(items.length >= 4, `listed ${items.length} events, want the 4 delivered ones`);
    const ev = await admin.webhooks.getWebhookEvent({ webhookId: webhook.id, webhookEventId: items[0].id });
    check(ev.id === items[0].id && /^whe-/.test(ev.id), `event ${JSON.stringify(ev.id)}`);
  });
  await step('disable, then delete the webhook', async () => {
    const w = await admin.webhooks.updateWebhook({ webhookId: webhook.id, body: { status: 'Disabled' } });
    check(w.status === 'Disabled' && w.secret === undefined, `update answered ${JSON.stringify(w.status)}`);
    const res = await admin.webhooks.deleteWebhook({ webhookId: webhook.id });
    check(res.deleted === true, `answer ${JSON.stringify(res)}`);
    await expectDfnsError(404, () => admin.webhooks.getWebhook({ webhookId: webhook.id }));
    receiver.close();
  });
  await step('get, list and rename the policy', async () => {
    const got = await admin.policies.getPolicy({ policyId: policy.id });
    check(got.id === policy.id && got.activityKind === 'Permissions:Modify', `got ${JSON.stringify(got.id)}`);
    const { items } = await admin.policies.listPolicies({ query: { status: 'Active' } });
    check(items.some((p) => p.id === policy.id), 'the policy is not listed as Active');
    const group = got.action.approvalGroups[0];
    if (strict.has('policy-defaults')) {
      check(
        group.initiatorCanApprove === false && group.serviceAccountsCanApprove === false &&
          got.action.autoRejectTimeout === null && JSON.stringify(got.rule.configuration) === '{}',
        `strict policy-defaults, yet ${JSON.stringify(got)}`,
      );
    } else {
      check(!('initiatorCanApprove' in group) && !('autoRejectTimeout' in got.action), `defaults echoed: ${JSON.stringify(got)}`);
    }
    // What was read back, defaults included, is a valid update body.
    const { id, status, dateCreated, dateUpdated, pendingChangeRequest, ...body } = got;
    const upd = await admin.policies.updatePolicy({ policyId: policy.id, body: { ...body, name: `${body.name}-renamed` } });
    check(upd.name === `sdk-policy-${run}-renamed`, `name ${upd.name}`);
  });
  await step('archive the policy', async () => {
    const p = await admin.policies.archivePolicy({ policyId: policy.id });
    check(p.status === 'Archived', `status ${p.status}`);
  });

  await step('assign the permission to the second user, then revoke it (204)', async () => {
    const a = await admin.permissions.createAssignment({ permissionId: perm.id, body: { identityId: approver.id } });
    check(/^as-/.test(a.id) && a.identityId === approver.id, `assignment ${JSON.stringify(a)}`);
    const before = await admin.permissions.listAssignments({ permissionId: perm.id, query: {} });
    check(before.items.some((i) => i.id === a.id), 'the assignment is not listed');
    await admin.permissions.deleteAssignment({ permissionId: perm.id, assignmentId: a.id });
    const after = await admin.permissions.listAssignments({ permissionId: perm.id, query: {} });
    check(!after.items.some((i) => i.id === a.id), 'the revoked assignment is still listed');
  });

  const archived = strict.has('archive') ? 'listed as inactive' : 'gone from the list';
  await step(`archive the PAT: ${archived}, its token stops working`, async () => {
    await admin.auth.archivePersonalAccessToken({ tokenId: pat.id });
    const { items } = await admin.auth.listPersonalAccessTokens();
    const listed = items.find((t) => t.tokenId === pat.id);
    check(strict.has('archive') ? listed?.isActive === false : !listed, `the archived PAT in the list: ${JSON.stringify(listed)}`);
    await expectDfnsError(401, () => patClient.permissions.getPermission({ permissionId: perm.id }));
  });
  await step(`archive the service account (?force=true): ${archived}, its token stops working`, async () => {
    // ?force=true: the SDK signs the path without its query string.
    await admin.auth.archiveServiceAccount({ serviceAccountId: sa.id, query: { force: true } });
    const { items } = await admin.auth.listServiceAccounts();
    const listed = items.find((i) => i.userInfo.userId === sa.id);
    check(
      strict.has('archive') ? listed?.userInfo.isActive === false : !listed,
      `the archived service account in the list: ${JSON.stringify(listed?.userInfo)}`,
    );
    await expectDfnsError(401, () => saClient.permissions.getPermission({ permissionId: perm.id }));
  });
  await step('archive the permission; its name stays taken', async () => {
    const p = await admin.permissions.archivePermission({ permissionId: perm.id, body: { isArchived: true } });
    check(p.isArchived === true, `isArchived = ${p.isArchived}`);
    await expectDfnsError(409, () =>
      admin.permissions.createPermission({ body: { name: renamedPerm, operations: ['Permissions:Read'] } }),
    );
  });

  console.log(`dfns sdk conformance: all ${stepCount} steps passed`);
}

main().catch((err) => {
  console.log('FAIL unexpected error');
  console.log(describe(err));
  process.exit(1);
});
