// schemas/openapi.yaml against the running stack: every documented operation is routed,
// answers one of its documented statuses, carries the documented content type and the
// required members of the documented schema; a secured operation refuses a missing token
// with a documented 401.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { useStack, SOURCE_DIR } from './lib/stack.mjs';

const s = useStack();
const spec = parse(readFileSync(join(SOURCE_DIR, 'schemas/openapi.yaml'), 'utf8'));
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

function resolve(node) {
  while (node && node.$ref) {
    const parts = node.$ref.replace(/^#\//, '').split('/');
    node = parts.reduce((o, k) => o[k], spec);
  }
  return node;
}

/** The schema's required members, following allOf. */
function required(schema) {
  schema = resolve(schema);
  if (!schema) return [];
  const own = schema.required || [];
  return own.concat(...(schema.allOf || []).map(required));
}

let seq = 0;
/** A fresh MSP to act on (tenants paths with {id}); deleted first when deleted is set. */
async function freshTenant({ deleted = false } = {}) {
  const name = `openapi ${process.pid} ${++seq}`;
  const json = { 'content-type': 'application/json' };
  const r = await s.stack.request('/api/v1/tenants', { method: 'POST', auth: true, headers: json, body: JSON.stringify({ name, kind: 'msp' }) });
  assert.equal(r.status, 201, r.text);
  if (deleted) {
    const d = await s.stack.request(`/api/v1/tenants/${r.json.id}?confirm=${encodeURIComponent(name)}`, { method: 'DELETE', auth: true });
    assert.equal(d.status, 202, d.text);
  }
  return r.json;
}

/** A complete user profile (API.md, Users) in account tenantId. */
function userBody(tenantId) {
  return {
    tenant_id: tenantId, first_name: 'Open', last_name: 'Api', preferred_currency: 'JPY', language: 'ja',
    primary_email: `openapi-${process.pid}-${++seq}@example.com`, phone: '+81 3 1234 5678', street: '1-1',
    city: 'Chiyoda', state: 'Tokyo', postal_code: '100-0001', time_zone: 'Asia/Tokyo',
  };
}

async function freshUser(tenantId) {
  const r = await s.stack.request('/api/v1/users', { method: 'POST', auth: true, headers: { 'content-type': 'application/json' }, body: JSON.stringify(userBody(tenantId)) });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

/** The concrete path and body of a request that should succeed for each operation. */
async function requestFor(path, method) {
  const json = { 'content-type': 'application/json' };
  if (path === '/api/v1/tenants' && method === 'post')
    return { path, headers: json, body: JSON.stringify({ name: `openapi ${process.pid} ${++seq}`, kind: 'msp' }) };
  if (path === '/api/v1/api-clients' && method === 'post') {
    const t = await freshTenant();
    return { path, headers: json, body: JSON.stringify({ name: 'openapi client', tenant_id: t.id, role: 'msp_monitor' }) };
  }
  if (path === '/api/v1/roles' && method === 'post') {
    const t = await freshTenant();
    return { path, headers: json, body: JSON.stringify({ name: 'openapi role', account_kind: 'msp', permissions: ['tenants:read'], msp_id: t.id }) };
  }
  if (path === '/api/v1/users' && method === 'post') {
    const t = await freshTenant();
    return { path, headers: json, body: JSON.stringify(userBody(t.id)) };
  }
  if (path.startsWith('/api/v1/users/{id}')) {
    const t = await freshTenant();
    const u = await freshUser(t.id);
    const concrete = path.replace('{id}', u.id);
    if (method === 'patch') return { path: concrete, headers: json, body: JSON.stringify({ city: 'Osaka' }) };
    if (method === 'put') return { path: concrete, headers: json, body: JSON.stringify([{ role: 'msp_monitor', tenant_ids: [t.id] }]) };
    if (method === 'delete') return { path: `${concrete}?confirm=${encodeURIComponent(u.username)}` };
    return { path: concrete };
  }
  if (path.startsWith('/api/v1/tenants/{id}/account-admins')) {
    const msp = await freshTenant();
    const r = await s.stack.request('/api/v1/tenants', { method: 'POST', auth: true, headers: json, body: JSON.stringify({ name: `openapi customer ${++seq}`, kind: 'customer', parent_id: msp.id }) });
    assert.equal(r.status, 201, r.text);
    const u = await freshUser(msp.id);
    const base = `/api/v1/tenants/${r.json.id}/account-admins`;
    if (method === 'post') return { path: base, headers: json, body: JSON.stringify({ user_id: u.id }) };
    if (method === 'delete') {
      const a = await s.stack.request(base, { method: 'POST', auth: true, headers: json, body: JSON.stringify({ user_id: u.id }) });
      assert.equal(a.status, 201, a.text);
      return { path: `${base}/${u.id}` };
    }
    return { path: base };
  }
  if (!path.includes('{id}')) return { path, ...bodyFor(path, method) };
  if (!path.startsWith('/api/v1/tenants/')) return { path: path.replace('{id}', '01900000-0000-7000-8000-0000000000ff'), ...bodyFor(path, method) };
  const t = await freshTenant({ deleted: path.endsWith('/restore') });
  const concrete = path.replace('{id}', t.id);
  if (method === 'delete') return { path: `${concrete}?confirm=${encodeURIComponent(t.name)}` };
  if (method === 'patch') return { path: concrete, headers: json, body: JSON.stringify({ name: `${t.name} renamed` }) };
  return { path: concrete };
}

/** A request that should succeed for each operation that takes a body. */
function bodyFor(path, method) {
  if (path === '/oauth2/token' && method === 'post') {
    return {
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`${s.stack.clientId}:${s.stack.clientSecret}`).toString('base64'),
      },
      body: 'grant_type=client_credentials',
    };
  }
  return {};
}

function check(op, r, what) {
  const documented = Object.keys(op.responses);
  assert.ok(documented.includes(String(r.status)), `${what}: status ${r.status} is not documented (${documented}); ${r.text}`);
  const response = resolve(op.responses[String(r.status)]);
  const content = response.content || {};
  const ctype = (r.headers.get('content-type') || '').split(';')[0].trim();
  if (Object.keys(content).length === 0) return;
  assert.ok(ctype in content, `${what}: content type ${ctype} not documented (${Object.keys(content)})`);
  if (ctype.endsWith('json')) {
    const body = JSON.parse(r.text);
    for (const member of required(content[ctype].schema))
      assert.ok(member in body, `${what}: required member ${member} missing in ${r.text}`);
  }
}

describe('schemas/openapi.yaml matches the running stack', () => {
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const secured = (op.security ?? spec.security ?? []).length > 0;
      test(`${method.toUpperCase()} ${path}`, async () => {
        const { path: concrete, ...extra } = await requestFor(path, method);
        const r = await s.stack.request(concrete, { method: method.toUpperCase(), auth: secured, ...extra });
        assert.notEqual(r.json?.code, 'route_not_found', `${path} is not routed`);
        // x-e2e-probe: error marks operations that cannot succeed without an earlier flow
        // (state tokens, codes, a user's token); their error answer is checked instead.
        if (op['x-e2e-probe'] !== 'error')
          assert.ok(r.status < 300, `${method} ${path} should succeed: ${r.status} ${r.text}`);
        check(op, r, `${method} ${path}`);
        if (secured) {
          const anon = await s.stack.request(concrete, { method: method.toUpperCase() });
          assert.equal(anon.status, 401, `${path} without a token`);
          check(op, anon, `${method} ${path} without a token`);
        }
      });
    }
  }
});
