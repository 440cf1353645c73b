// The isolation matrix: every built-in role × every authenticated endpoint of the OpenAPI
// document × the caller's own account, a sibling account and an account of another MSP,
// through the real gateway. The answers are compared with isolation.expect.tsv, kept next
// to this file; an endpoint added to schemas/openapi.yaml without a row there fails the
// test, so the table grows with the API.
//
// Cells are three characters, one answer per target (own, sibling, other):
//   2 = 2xx   0 = 400   3 = 403   4 = 404   9 = 409   u = 422   ? = anything else
// and a row whose first cell starts with "n/a:" exempts an endpoint with the reason (the
// caller's own data, a global catalogue: nothing of another account is addressable). A
// row "pending: <reason>" marks an endpoint whose case is not written yet: reported by
// the test as a diagnostic and in the closing notes, never silently passed.
//
// Independently of the table, two rules are asserted for every cell: no role but the
// platform's gets a 2xx from another MSP's account, and no customer-level or
// direct-account role gets a 2xx from a sibling account (custom roles excepted: they
// belong to the MSP, so every account of the MSP sees them).
//
// After reviewing a deliberate change: ISOLATION_WRITE=1 node --test isolation.test.mjs
// rewrites the table from what the stack answered (then read the diff); with
// ISOLATION_ONLY=<part of "METHOD /path"> only the matching operations are tried.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { SOURCE_DIR, useStack } from './lib/stack.mjs';
import { apiClient, jsonApi } from './lib/api.mjs';
import { activateWithTotp, grant, sessionTokens, stageUser } from './lib/identity.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TABLE = join(here, 'isolation.expect.tsv');
const s = useStack({ env: { CONSOLE_RATE_LIMIT_RPS: '0', CONSOLE_AUTHZ_CACHE_MS: '0' } });
const tag = () => randomBytes(3).toString('hex');
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32" fill="#00aa55"/></svg>';

// Each role, where its grant sits, and the accounts it is tried against.
const ROLES = [
  ['platform_super_admin', 'platform', 'customers'],
  ['msp_super_admin', 'mspA', 'customers'],
  ['msp_admin', 'mspA', 'customers'],
  ['msp_monitor', 'mspA', 'customers'],
  ['msp_recovery', 'mspA', 'customers'],
  ['msp_account_admin', 'a1', 'customers'],
  ['msp_account_monitor', 'a1', 'customers'],
  ['msp_account_recovery', 'a1', 'customers'],
  ['tenant_admin', 'a1', 'customers'],
  ['tenant_monitor', 'a1', 'customers'],
  ['tenant_recovery', 'a1', 'customers'],
  ['super_admin', 'd1', 'directs'],
  ['admin', 'd1', 'directs'],
  ['monitor', 'd1', 'directs'],
  ['recovery', 'd1', 'directs'],
  ['client', 'a1', 'customers'], // an API client holding tenant_admin on A1
];
const TARGETS = { customers: ['a1', 'a2', 'b1'], directs: ['d1', 'd2', 'a1'] };

/** A minimal upstream OpenID Provider: its discovery document and key set (saving a
 * provider checks both). */
async function startDiscovery() {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const server = createServer((req, res) => {
    const issuer = `http://127.0.0.1:${server.address().port}`;
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ keys: [{ ...key, kid: 'iso-1', use: 'sig', alg: 'ES256' }] }));
    }
    if (req.url !== '/.well-known/openid-configuration') { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`,
      userinfo_endpoint: `${issuer}/userinfo`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'],
    }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${server.address().port}`;
}

/**
 * The authenticated operations of the OpenAPI document: "METHOD /path", in document order.
 * Read with a YAML parser, so no layout of the document hides an operation: an operation is
 * public only when its own (else its path's, else the document's) security is exactly [];
 * optional authentication ([{}, {bearer: []}]) still counts as authenticated.
 */
function operations() {
  const doc = parse(readFileSync(join(SOURCE_DIR, 'schemas/openapi.yaml'), 'utf8'));
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {}))
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'put', 'post', 'patch', 'delete', 'head', 'options', 'trace'].includes(method)) continue;
      const security = op.security ?? item.security ?? doc.security;
      if (Array.isArray(security) && security.length === 0) continue;
      ops.push(`${method.toUpperCase()} ${path}`);
    }
  return ops;
}

function readTable() {
  const rows = new Map();
  for (const line of readFileSync(TABLE, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [key, ...cells] = line.split('\t');
    rows.set(key, cells);
  }
  return rows;
}

const code = (status) =>
  status >= 200 && status < 300 ? '2' : { 400: '0', 403: '3', 404: '4', 409: '9', 422: 'u' }[status] || '?';

describe('isolation matrix', () => {
  let platform;
  const acct = {}; // name -> tenant
  const users = {}; // account key -> an active user of that account
  const mspUsers = {}; // msp name -> a user of the MSP (candidate account admin)
  const callers = {}; // role -> api(method, path, body)

  const profile = (tenantId) => {
    const t = tag();
    return {
      tenant_id: tenantId, title: 'Ms', first_name: 'Iso', last_name: `Lation ${t}`, preferred_currency: 'EUR',
      language: 'en', primary_email: `iso.${t}@example.com`, phone: '+44 20 7946 0000', street: '1 Main St',
      city: 'London', state: 'London', country: 'GB', postal_code: 'SW1A 1AA', time_zone: 'Europe/London',
    };
  };
  const roleFor = (t, customerRole, directRole) => (t.kind === 'direct' ? directRole : customerRole);
  const ok = (r, what) => assert.ok(r.status < 300, `${what}: ${r.status} ${r.text}`);
  let upstreamIssuer;
  /** An upstream provider configuration with an e-mail domain of its own. */
  const idpBody = () => ({ issuer: upstreamIssuer, client_id: 'iso-rp', client_secret: 'iso-secret', email_domains: [`iso-${tag()}.example`] });
  const orderBody = (t) => ({
    order_id: `ISO-${tag()}`, fulfillment_number: `FN-${tag()}`, end_user_email: 'buyer@example.com', tenant_id: t.id,
    lines: [{ product: 'Arcserve UDP', edition: 'Advanced', quantity: 3, license_type: 'perpetual', unit: 'server' }],
  });
  /** An order of account t, added by the platform. */
  const newOrder = async (t) => {
    const r = await platform('POST', '/api/v1/licensing/orders', orderBody(t));
    ok(r, 'order');
    return r.json;
  };
  /** A server activated online on a new order of account t (the product's call, no token). */
  const newActivation = async (t) => {
    const o = await newOrder(t);
    const r = await s.stack.request('/api/v1/licensing/activations', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        order_id: o.order_id, fulfillment_number: o.fulfillment_number, email: 'buyer@example.com', computer_name: 'ISO-01',
        fingerprint: { bios_serial: `VMware-${tag()}`, cpu_id: 'BFEBFBFF000906EA', machine_guid: randomUUID() },
      }),
    });
    ok(r, 'activation');
    return r.json;
  };
  /** A request file of the product for a server on order o (FAQ 1.18), keyed with its fulfillment number. */
  const signedFile = (format, o, req) => {
    const request = Buffer.from(JSON.stringify(req)).toString('base64url');
    return { format, request, mac: createHmac('sha256', o.fulfillment_number).update(request).digest('base64url') };
  };
  const isoFingerprint = () => ({ bios_serial: `VMware-${tag()}`, cpu_id: 'BFEBFBFF000906EA', machine_guid: randomUUID() });
  const requestFile = (o, fingerprint = isoFingerprint()) => signedFile('console-license-request/1', o, {
    order_id: o.order_id, fulfillment_number: o.fulfillment_number, email: 'buyer@example.com', computer_name: 'ISO-OFF', fingerprint,
  });
  /** A server of account t activated offline, and the product's deactivation request file for it (FAQ 3.11). */
  const newOfflineServer = async (t) => {
    const o = await newOrder(t);
    const fingerprint = isoFingerprint();
    const r = await platform('POST', '/api/v1/licensing/offline-requests', requestFile(o, fingerprint));
    ok(r, 'offline activation');
    return signedFile('console-license-deactivation/1', o, { activation_id: r.json.id, order_id: o.order_id, fingerprint });
  };
  /** A product key generated by the platform on a new order of account t. */
  const newKey = async (t) => {
    const o = await newOrder(t);
    const r = await platform('POST', '/api/v1/licensing/keys', { order_id: o.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 1 });
    ok(r, 'key');
    return { order: o, key: r.json.keys[0] };
  };
  /** A list's answer, or 599 (a breach: "?") when a 2xx list lacks the item the case put there. */
  const listing = async (r, has) => (r.status === 200 && !r.json.items.some(has) ? { status: 599, text: `item missing: ${r.text}` } : r);
  /** A pool of one license on a new order of account t. */
  const newPool = async (t) => {
    const o = await newOrder(t);
    const r = await platform('POST', '/api/v1/licensing/pools', { order_id: o.order_id, name: `Iso ${tag()}`, quantity: 1 });
    ok(r, 'pool');
    return r.json;
  };
  /** Ends the MSP user's assignment to customer t, if the call under test made one. */
  const unassign = async (t) => {
    if (t.kind !== 'customer') return;
    const r = await platform('DELETE', `/api/v1/tenants/${t.id}/account-admins/${mspUsers[t.msp_name].id}`);
    assert.ok(r.status === 204 || r.status === 404, r.text);
  };

  // How each operation is aimed at an account T, with the platform's set-up and clean-up
  // around it so that every call starts from the same state.
  const CASES = {
    'POST /api/v1/api-clients': {
      run: (api, t) => api('POST', '/api/v1/api-clients', { name: `iso-${tag()}`, tenant_id: t.id, role: roleFor(t, 'tenant_monitor', 'monitor') }),
    },
    'GET /api/v1/api-clients': { run: (api, t) => api('GET', `/api/v1/api-clients?tenant_id=${t.id}`) },
    'DELETE /api/v1/api-clients/{id}': {
      before: async (t) => {
        const r = await platform('POST', '/api/v1/api-clients', { name: `iso-${tag()}`, tenant_id: t.id, role: roleFor(t, 'tenant_monitor', 'monitor') });
        ok(r, 'api client');
        return r.json.id;
      },
      run: (api, t, id) => api('DELETE', `/api/v1/api-clients/${id}`),
    },
    'POST /api/v1/users/{id}/unlock': { run: (api, t) => api('POST', `/api/v1/users/${users[t.key].id}/unlock`) },
    // the second-factor policy (the default's own values, so no sign-in of the matrix changes)
    'GET /api/v1/tenants/{id}/mfa-policy': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/mfa-policy`) },
    'PUT /api/v1/tenants/{id}/mfa-policy': {
      run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/mfa-policy`, { allowed_factors: ['totp', 'email', 'webauthn', 'sms', 'voice'], mfa_required: true }),
      after: async (t) => {
        const r = await platform('DELETE', `/api/v1/tenants/${t.id}/mfa-policy`);
        assert.ok(r.status === 204 || r.status === 404, r.text);
      },
    },
    'DELETE /api/v1/tenants/{id}/mfa-policy': {
      before: async (t) => ok(await platform('PUT', `/api/v1/tenants/${t.id}/mfa-policy`, { allowed_factors: ['totp', 'email', 'webauthn', 'sms', 'voice'], mfa_required: true }), 'policy'),
      run: (api, t) => api('DELETE', `/api/v1/tenants/${t.id}/mfa-policy`),
      after: async (t) => {
        const r = await platform('DELETE', `/api/v1/tenants/${t.id}/mfa-policy`);
        assert.ok(r.status === 204 || r.status === 404, r.text);
      },
    },
    'GET /api/v1/tenants/{id}/mfa-enrollment': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/mfa-enrollment`) },
    'POST /api/v1/tenants': {
      run: (api, t) => api('POST', '/api/v1/tenants', { name: `Iso ${tag()}`, kind: t.kind, ...(t.kind === 'customer' ? { parent_id: t.parent_id } : {}) }),
    },
    'GET /api/v1/tenants': { run: (api, t) => api('GET', `/api/v1/tenants?parent_id=${t.id}`) },
    'GET /api/v1/tenants/summary': { run: (api, t) => api('GET', `/api/v1/tenants/summary?parent_id=${t.id}`) },
    'GET /api/v1/tenants/export': { run: (api, t) => api('GET', `/api/v1/tenants/export?parent_id=${t.id}`) },
    'GET /api/v1/tenants/{id}': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}`) },
    'PATCH /api/v1/tenants/{id}': { run: (api, t) => api('PATCH', `/api/v1/tenants/${t.id}`, { name: t.name }) },
    'DELETE /api/v1/tenants/{id}': {
      run: (api, t) => api('DELETE', `/api/v1/tenants/${t.id}?confirm=${encodeURIComponent(t.name)}`),
      after: async (t) => {
        const r = await platform('GET', `/api/v1/tenants/${t.id}`);
        if (r.json?.deleted_at) ok(await platform('POST', `/api/v1/tenants/${t.id}/restore`), 'restore');
      },
    },
    'POST /api/v1/tenants/{id}/impersonate': { run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/impersonate`, { reason: 'TICKET-1 matrix' }) },
    'POST /api/v1/tenants/{id}/suspend': {
      run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/suspend`),
      after: async (t) => ok(await platform('POST', `/api/v1/tenants/${t.id}/resume`), 'resume'),
    },
    'POST /api/v1/tenants/{id}/resume': {
      before: async (t) => ok(await platform('POST', `/api/v1/tenants/${t.id}/suspend`), 'suspend'),
      run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/resume`),
      after: async (t) => ok(await platform('POST', `/api/v1/tenants/${t.id}/resume`), 'resume'),
    },
    'POST /api/v1/tenants/{id}/restore': {
      before: async (t) => ok(await platform('DELETE', `/api/v1/tenants/${t.id}?confirm=${encodeURIComponent(t.name)}`), 'delete'),
      run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/restore`),
      after: async (t) => {
        const r = await platform('GET', `/api/v1/tenants/${t.id}`);
        if (r.json?.deleted_at) ok(await platform('POST', `/api/v1/tenants/${t.id}/restore`), 'restore');
      },
    },
    'GET /api/v1/roles': {
      // the list is the caller's; the matrix asks whether T's MSP's custom role shows
      run: async (api, t) => {
        const r = await api('GET', '/api/v1/roles');
        const leaked = r.status === 200 && r.json.items.some((x) => x.id === t.customRole);
        return { status: leaked ? 200 : r.status === 200 ? 404 : r.status, text: r.text };
      },
    },
    'POST /api/v1/roles': {
      run: (api, t) => api('POST', '/api/v1/roles', { name: `Iso ${tag()}`, account_kind: t.kind, permissions: ['tenants:read'], msp_id: t.kind === 'customer' ? t.parent_id : t.id }),
    },
    'POST /api/v1/users': { run: (api, t) => api('POST', '/api/v1/users', profile(t.id)) },
    'GET /api/v1/users': { run: (api, t) => api('GET', `/api/v1/users?tenant_id=${t.id}`) },
    'GET /api/v1/users/{id}': { run: (api, t) => api('GET', `/api/v1/users/${users[t.key].id}`) },
    'DELETE /api/v1/users/{id}': {
      before: async (t) => stageUser(s.stack, { tenantId: t.id }),
      run: (api, t, u) => api('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(u.username)}`),
    },
    'PATCH /api/v1/users/{id}': { run: (api, t) => api('PATCH', `/api/v1/users/${users[t.key].id}`, { city: `City ${tag()}` }) },
    'POST /api/v1/users/{id}/resend-activation': {
      before: async (t) => {
        const st = await stageUser(s.stack, { tenantId: t.id });
        return st.id;
      },
      run: (api, t, id) => api('POST', `/api/v1/users/${id}/resend-activation`),
    },
    'POST /api/v1/users/{id}/deactivate': {
      run: (api, t) => api('POST', `/api/v1/users/${users[t.key].id}/deactivate`),
      after: async (t) => ok(await platform('POST', `/api/v1/users/${users[t.key].id}/reactivate`), 'reactivate'),
    },
    'POST /api/v1/users/{id}/reactivate': {
      before: async (t) => ok(await platform('POST', `/api/v1/users/${users[t.key].id}/deactivate`), 'deactivate'),
      run: (api, t) => api('POST', `/api/v1/users/${users[t.key].id}/reactivate`),
      after: async (t) => ok(await platform('POST', `/api/v1/users/${users[t.key].id}/reactivate`), 'reactivate'),
    },
    'GET /api/v1/users/{id}/grants': { run: (api, t) => api('GET', `/api/v1/users/${users[t.key].id}/grants`) },
    'PUT /api/v1/users/{id}/grants': {
      run: (api, t) => api('PUT', `/api/v1/users/${users[t.key].id}/grants`, [{ role: roleFor(t, 'tenant_monitor', 'monitor'), tenant_ids: [t.id] }]),
    },
    'GET /api/v1/tenants/{id}/account-admins': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/account-admins`) },
    'POST /api/v1/tenants/{id}/account-admins': {
      run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/account-admins`, { user_id: mspUsers[t.msp_name]?.id ?? users[t.key].id, role: 'msp_account_monitor' }),
      after: (t) => unassign(t),
    },
    'DELETE /api/v1/tenants/{id}/account-admins/{user_id}': {
      before: async (t) => {
        if (t.kind === 'customer')
          ok(await platform('POST', `/api/v1/tenants/${t.id}/account-admins`, { user_id: mspUsers[t.msp_name].id, role: 'msp_account_monitor' }), 'assign');
      },
      run: (api, t) => api('DELETE', `/api/v1/tenants/${t.id}/account-admins/${mspUsers[t.msp_name]?.id ?? users[t.key].id}`),
      after: (t) => unassign(t),
    },
    // ---- quotas, usage, reports, billing ----
    'GET /api/v1/tenants/{id}/quotas': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/quotas`) },
    'PUT /api/v1/tenants/{id}/quotas/{resource}': {
      run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/quotas/cloud_storage`, { limit_bytes: 10 ** 12, enforcement: 'track', alert_thresholds_pct: [80, 95] }),
    },
    'POST /api/v1/usage/samples': {
      // data-plane API clients only (usage:write): people are refused whatever the account
      run: (api, t) => api('POST', '/api/v1/usage/samples', [{ tenant_id: t.id, resource: 'cloud_storage', source_id: 'iso-src', used_bytes: 1, at: new Date().toISOString() }]),
    },
    'POST /api/v1/usage/job-events': {
      run: (api, t) => api('POST', '/api/v1/usage/job-events', [{
        tenant_id: t.id, source_id: 'iso-src', source_type: 'agent', job_id: `iso-${tag()}`, status: 'completed',
        started_at: new Date(Date.now() - 60000).toISOString(), finished_at: new Date().toISOString(), bytes_transferred: 1,
      }]),
    },
    ...Object.fromEntries(['account-details', 'jobs-24h', 'sources', 'protection', 'data-transfer', 'stored-data'].map((r) => [
      `GET /api/v1/reports/${r}`, { run: (api, t) => api('GET', `/api/v1/reports/${r}?parent_id=${t.id}`) },
    ])),
    'GET /api/v1/tenants/{id}/billing-plan': {
      before: async (t) => ok(await platform('PUT', `/api/v1/tenants/${t.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD' }), 'plan'),
      run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/billing-plan`),
    },
    'PUT /api/v1/tenants/{id}/billing-plan': {
      run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD' }),
    },
    'GET /api/v1/billing/export': { run: (api, t) => api('GET', `/api/v1/billing/export?period=2026-10&parent_id=${t.id}&format=json`) },
    // ---- licensing (orders are the platform's to add; an account's pools, keys, servers) ----
    'POST /api/v1/licensing/orders': { run: (api, t) => api('POST', '/api/v1/licensing/orders', orderBody(t)) },
    'GET /api/v1/licensing/orders': {
      before: (t) => newOrder(t),
      run: async (api, t, o) => listing(await api('GET', `/api/v1/licensing/orders?tenant_id=${t.id}`), (x) => x.id === o.id),
    },
    'GET /api/v1/licensing/orders/{id}': { before: (t) => newOrder(t), run: (api, t, o) => api('GET', `/api/v1/licensing/orders/${o.id}`) },
    'GET /api/v1/licensing/activations': {
      before: (t) => newActivation(t),
      run: async (api, t, a) => listing(await api('GET', `/api/v1/licensing/activations?tenant_id=${t.id}&order_id=${encodeURIComponent(a.order_id)}`), (x) => x.id === a.id),
    },
    'POST /api/v1/licensing/offline-requests': {
      before: (t) => newOrder(t),
      run: (api, t, o) => api('POST', '/api/v1/licensing/offline-requests', requestFile(o)),
    },
    'GET /api/v1/licensing/activations/{id}/nodes': { before: (t) => newActivation(t), run: (api, t, a) => api('GET', `/api/v1/licensing/activations/${a.id}/nodes`) },
    'POST /api/v1/licensing/activations/{id}/nodes/release': {
      before: (t) => newActivation(t),
      run: (api, t, a) => api('POST', `/api/v1/licensing/activations/${a.id}/nodes/release`, { nodes: ['iso-node'] }),
    },
    'POST /api/v1/licensing/activations/{id}/orders': {
      before: async (t) => ({ a: await newActivation(t), o: await newOrder(t) }),
      run: (api, t, x) => api('POST', `/api/v1/licensing/activations/${x.a.id}/orders`, { order_id: x.o.order_id, fulfillment_number: x.o.fulfillment_number }),
    },
    'POST /api/v1/licensing/offline-deactivations': {
      before: (t) => newOfflineServer(t),
      run: (api, t, file) => api('POST', '/api/v1/licensing/offline-deactivations', file),
    },
    'GET /api/v1/licensing/pools': {
      before: (t) => newPool(t),
      run: async (api, t, p) => listing(await api('GET', `/api/v1/licensing/pools?tenant_id=${t.id}&order_id=${encodeURIComponent(p.order_id)}`), (x) => x.id === p.id),
    },
    'POST /api/v1/licensing/pools': {
      before: (t) => newOrder(t),
      run: (api, t, o) => api('POST', '/api/v1/licensing/pools', { order_id: o.order_id, name: `Iso ${tag()}`, quantity: 1 }),
    },
    'PATCH /api/v1/licensing/pools': { before: (t) => newPool(t), run: (api, t, p) => api('PATCH', '/api/v1/licensing/pools', { id: p.id, name: `Iso ${tag()}` }) },
    'PATCH /api/v1/licensing/pools/{id}': { before: (t) => newPool(t), run: (api, t, p) => api('PATCH', `/api/v1/licensing/pools/${p.id}`, { name: `Iso ${tag()}` }) },
    'POST /api/v1/licensing/pools/{id}/release': { before: (t) => newPool(t), run: (api, t, p) => api('POST', `/api/v1/licensing/pools/${p.id}/release`) },
    'GET /api/v1/licensing/usage': {
      before: (t) => newPool(t),
      run: async (api, t) => listing(await api('GET', `/api/v1/licensing/usage?parent_id=${t.id}`), (x) => x.tenant_id === t.id),
    },
    'POST /api/v1/licensing/keys': {
      before: (t) => newOrder(t),
      run: (api, t, o) => api('POST', '/api/v1/licensing/keys', { order_id: o.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 1 }),
    },
    'GET /api/v1/licensing/keys': {
      before: (t) => newKey(t),
      run: async (api, t, k) => listing(await api('GET', `/api/v1/licensing/keys?tenant_id=${t.id}&order_id=${encodeURIComponent(k.order.order_id)}`), (x) => x.key === k.key),
    },
    'POST /api/v1/licensing/keys/verify': {
      before: (t) => newKey(t),
      run: async (api, t, k) => {
        const r = await api('POST', '/api/v1/licensing/keys/verify', { key: k.key });
        return r.status === 200 && r.json.valid !== true ? { status: 599, text: r.text } : r;
      },
    },
    // ---- federation ----
    'GET /api/v1/tenants/{id}/identity-provider': {
      before: async (t) => ok(await platform('PUT', `/api/v1/tenants/${t.id}/identity-provider`, idpBody()), 'identity provider'),
      run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/identity-provider`),
    },
    'PUT /api/v1/tenants/{id}/identity-provider': { run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/identity-provider`, idpBody()) },
    // ---- branding ----
    'GET /api/v1/tenants/{id}/branding': { run: (api, t) => api('GET', `/api/v1/tenants/${t.id}/branding`) },
    'PUT /api/v1/tenants/{id}/branding': { run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/branding`, { product_name: `Iso ${tag()}` }) },
    'DELETE /api/v1/tenants/{id}/branding': {
      before: async (t) => ok(await platform('PUT', `/api/v1/tenants/${t.id}/branding`, { product_name: 'Iso' }), 'brand'),
      run: (api, t) => api('DELETE', `/api/v1/tenants/${t.id}/branding`),
    },
    ...Object.fromEntries(['logo', 'favicon'].flatMap((a) => [
      [`PUT /api/v1/tenants/{id}/branding/${a}`, { run: (api, t) => api('PUT', `/api/v1/tenants/${t.id}/branding/${a}`, SVG, { 'content-type': 'application/octet-stream' }) }],
      [`DELETE /api/v1/tenants/{id}/branding/${a}`, {
        before: async (t) => ok(await platform('PUT', `/api/v1/tenants/${t.id}/branding/${a}`, SVG, { 'content-type': 'application/octet-stream' }), a),
        run: (api, t) => api('DELETE', `/api/v1/tenants/${t.id}/branding/${a}`),
      }],
    ])),
    'POST /api/v1/tenants/{id}/branding/preview': { run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/branding/preview`, { product_name: 'Preview' }) },
    'POST /api/v1/tenants/{id}/branding/test-mail': { run: (api, t) => api('POST', `/api/v1/tenants/${t.id}/branding/test-mail`) },
    'POST /api/v1/users/{id}/factors/reset': { run: (api, t) => api('POST', `/api/v1/users/${users[t.key].id}/factors/reset`) },
    'GET /api/v1/audit-events': { run: (api, t) => api('GET', `/api/v1/audit-events?tenant_id=${t.id}`) },
    'GET /api/v1/audit-events/export': { run: (api, t) => api('GET', `/api/v1/audit-events/export?tenant_id=${t.id}`) },
  };

  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    upstreamIssuer = await startDiscovery();
    const make = async (name, body) => {
      const r = await platform('POST', '/api/v1/tenants', body);
      ok(r, `tenant ${name}`);
      acct[name] = { ...r.json, name: r.json.name, key: name };
      return r.json;
    };
    const mspA = await make('mspA', { name: `Iso MSP A ${tag()}`, kind: 'msp' });
    const mspB = await make('mspB', { name: `Iso MSP B ${tag()}`, kind: 'msp' });
    await make('a1', { name: `Iso A1 ${tag()}`, kind: 'customer', parent_id: mspA.id });
    await make('a2', { name: `Iso A2 ${tag()}`, kind: 'customer', parent_id: mspA.id });
    await make('b1', { name: `Iso B1 ${tag()}`, kind: 'customer', parent_id: mspB.id });
    await make('d1', { name: `Iso D1 ${tag()}`, kind: 'direct' });
    await make('d2', { name: `Iso D2 ${tag()}`, kind: 'direct' });
    acct.platform = { id: (await platform('GET', '/api/v1/me')).json.tenant_id };
    for (const k of ['a1', 'a2', 'b1']) acct[k].msp_name = acct[k].parent_id === mspA.id ? 'mspA' : 'mspB';
    for (const k of ['a1', 'a2', 'b1', 'd1', 'd2']) {
      const t = acct[k];
      const staged = await stageUser(s.stack, { tenantId: t.id });
      users[t.key] = await activateWithTotp(s.stack, staged);
      // a custom role in each root account, to see who can list it
      const root = t.kind === 'customer' ? t.parent_id : t.id;
      const r = await platform('POST', '/api/v1/roles', { name: `Iso role ${tag()}`, account_kind: t.kind, permissions: ['tenants:read'], msp_id: root });
      ok(r, 'custom role');
      t.customRole = r.json.id;
    }
    for (const m of ['mspA', 'mspB']) mspUsers[m] = await stageUser(s.stack, { tenantId: acct[m].id });
    // the callers are signed-in users (impersonation is a person's act), one per role
    for (const [role, home] of ROLES.filter(([r]) => r !== 'client')) {
      const account = await activateWithTotp(s.stack, await stageUser(s.stack, { tenantId: acct[home].id }));
      await grant(s.stack, account.id, role, acct[home].id);
      // the activation's own session token: no second sign-in, no wait for the next TOTP step
      callers[role] = jsonApi(s.stack, (await sessionTokens(s.stack, account.sessionToken)).access_token);
    }
    // and an API client of a tenant admin, which acts like the user for everything else
    callers.client = jsonApi(s.stack, (await apiClient(s.stack, 'iso-client', 'tenant_admin', acct.a1.id)).accessToken);
  }, { timeout: 240000 });

  test('every role × every endpoint × own / sibling / other MSP answers as the table says', { timeout: 900000 }, async (t) => {
    const table = readTable();
    const only = process.env.ISOLATION_ONLY;
    const ops = operations();
    const missing = ops.filter((op) => !table.has(op));
    const observed = new Map();
    const breaches = [];
    for (const op of ops) {
      const row = table.get(op);
      if (only && !op.includes(only)) { // ISOLATION_ONLY=<part of "METHOD /path">: a subset
        observed.set(op, row ?? ['pending: no case yet']);
        continue;
      }
      if (row && /^(n\/a|pending):/.test(row[0])) {
        if (row[0].startsWith('pending:')) t.diagnostic(`not yet in the matrix: ${op} (${row[0]})`);
        observed.set(op, row);
        continue;
      }
      const c = CASES[op];
      if (!c) {
        breaches.push(`${op}: no case in isolation.test.mjs says how to aim it at an account`);
        continue;
      }
      const cells = [];
      for (const [role, , family] of ROLES) {
        let cell = '';
        for (const [i, key] of TARGETS[family].entries()) {
          const t = acct[key];
          const prep = c.before ? await c.before(t) : undefined;
          const r = await c.run(callers[role], t, prep);
          if (c.after) await c.after(t);
          const ch = code(r.status);
          cell += ch;
          if (r.status >= 500 || ch === '?') breaches.push(`${op} as ${role} on ${key}: ${r.status} ${r.text}`);
          if (ch === '2' && i === 2 && role !== 'platform_super_admin')
            breaches.push(`${op} as ${role} reached another MSP's account ${key}: ${r.status}`);
          if (ch === '2' && i === 1 && op !== 'GET /api/v1/roles' && !/^(platform_super_admin|msp_(super_admin|admin|monitor|recovery))$/.test(role))
            breaches.push(`${op} as ${role} reached the sibling account ${key}: ${r.status}`);
        }
        cells.push(cell);
      }
      observed.set(op, cells);
    }
    if (process.env.ISOLATION_WRITE) {
      const head = readFileSync(TABLE, 'utf8').split('\n').filter((l) => l.startsWith('#'));
      const body = ops.map((op) => [op, ...observed.get(op)].join('\t'));
      writeFileSync(TABLE, [...head, ...body, ''].join('\n'));
    }
    assert.deepEqual(breaches, [], 'isolation rules');
    assert.deepEqual(missing, [], 'endpoints of openapi.yaml without a row in isolation.expect.tsv');
    const diffs = [];
    for (const op of ops) {
      const want = table.get(op);
      const got = observed.get(op);
      if (!want || !got) continue; /* missing rows and cases are reported above */
      ROLES.forEach(([role], i) => {
        if (want[i] !== got[i]) diffs.push(`${op} as ${role}: expected ${want[i]}, got ${got[i]}`);
      });
    }
    const stale = [...table.keys()].filter((k) => !ops.includes(k));
    assert.deepEqual(stale, [], 'rows of isolation.expect.tsv for endpoints that no longer exist');
    assert.deepEqual(diffs, [], 'answers differing from isolation.expect.tsv');
  });
});
