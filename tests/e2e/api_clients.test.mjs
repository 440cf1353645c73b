// API clients through the real gateway: created by an account's administrator with a
// role on one tenant (no privilege escalation), the secret shown once and never again,
// usable at once with client_credentials, honoured by authorization, and revoked for good.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, apiClient, basic, jsonApi } from './lib/api.mjs';

const s = useStack();

function clientToken(id, secret) {
  return s.stack.request('/oauth2/token', {
    method: 'POST',
    headers: { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
}

describe('api clients', () => {
  let platform, msp, other, cust, superA, adminA;
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    msp = (await platform('POST', '/api/v1/tenants', { name: 'AC MSP', kind: 'msp' })).json;
    other = (await platform('POST', '/api/v1/tenants', { name: 'AC Other', kind: 'msp' })).json;
    cust = (await platform('POST', '/api/v1/tenants', { name: 'AC Customer', kind: 'customer', parent_id: msp.id })).json;
    superA = jsonApi(s.stack, (await apiClient(s.stack, 'ac-super', 'msp_super_admin', msp.id)).accessToken);
    adminA = jsonApi(s.stack, (await apiClient(s.stack, 'ac-admin', 'msp_admin', msp.id)).accessToken);
  }, { timeout: 60000 });

  test('create, use, list without the secret, delete', async () => {
    const r = await superA('POST', '/api/v1/api-clients', { name: 'Billing export', tenant_id: cust.id, role: 'tenant_monitor', scopes: ['reports:read'] });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.client_id, /^cli_/);
    assert.ok(r.json.client_secret.length >= 40);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const t = await clientToken(r.json.client_id, r.json.client_secret);
    assert.equal(t.status, 200, t.text);
    const as = jsonApi(s.stack, t.json.access_token);
    // the grant is written by the roles service from identity's event: milliseconds
    await waitFor(async () => (await as('GET', `/api/v1/tenants/${cust.id}`)).status === 200, { what: 'the grant of the new client' });
    assertProblem(await as('PATCH', `/api/v1/tenants/${cust.id}`, { name: 'x' }), 403, 'forbidden');
    const list = await superA('GET', `/api/v1/api-clients?tenant_id=${cust.id}`);
    assert.equal(list.status, 200, list.text);
    const item = list.json.items.find((x) => x.id === r.json.id);
    assert.ok(item);
    assert.equal(item.role, 'tenant_monitor');
    assert.ok(!list.text.includes(r.json.client_secret), 'the secret is shown once');
    const d = await superA('DELETE', `/api/v1/api-clients/${r.json.id}`);
    assert.equal(d.status, 204, d.text);
    assertProblem(await clientToken(r.json.client_id, r.json.client_secret), 401, 'invalid_client');
    await waitFor(async () => (await as('GET', `/api/v1/tenants/${cust.id}`)).status === 404, { what: 'the grant to go' });
    assertProblem(await superA('DELETE', `/api/v1/api-clients/${r.json.id}`), 404, 'not_found');
  });

  test('a replayed create returns the client without its secret', async () => {
    const key = `ac-${Date.now()}`;
    const body = { name: 'Agent', tenant_id: cust.id, role: 'tenant_recovery' };
    const a = await superA('POST', '/api/v1/api-clients', body, { 'idempotency-key': key });
    assert.equal(a.status, 201, a.text);
    const b = await superA('POST', '/api/v1/api-clients', body, { 'idempotency-key': key });
    assert.equal(b.status, 201);
    assert.equal(b.json.id, a.json.id);
    assert.equal(b.json.client_secret, undefined);
    assert.equal(b.json.client_secret_shown, 'once');
  });

  test('who may create what: access:manage, fitting roles, no escalation, no foreign tenants', async () => {
    assertProblem(await adminA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: cust.id, role: 'tenant_monitor' }), 403, 'forbidden');
    assertProblem(await superA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: msp.id, role: 'tenant_admin' }), 400, 'validation_failed');
    assertProblem(await superA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: cust.id, role: 'no_such_role' }), 400, 'validation_failed');
    assertProblem(await superA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: other.id, role: 'msp_monitor' }), 404, 'not_found');
    assertProblem(await superA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: cust.id, role: 'tenant_monitor', scopes: ['DROP TABLE'] }), 400, 'validation_failed');
    assertProblem(await superA('POST', '/api/v1/api-clients', { name: 'x', tenant_id: cust.id, role: 'tenant_monitor', secret: 'mine' }), 400, 'unknown_field');
    // a custom role with access:manage but little else cannot hand out more than it has
    const role = await superA('POST', '/api/v1/roles', { name: 'Key keeper', account_kind: 'msp', permissions: ['tenants:read', 'access:manage'] });
    assert.equal(role.status, 201, role.text);
    const keeper = jsonApi(s.stack, (await apiClient(s.stack, 'keeper', role.json.id, msp.id)).accessToken);
    assertProblem(await keeper('POST', '/api/v1/api-clients', { name: 'x', tenant_id: msp.id, role: 'msp_admin' }), 403, 'privilege_escalation');
    const ok = await keeper('POST', '/api/v1/api-clients', { name: 'reader', tenant_id: msp.id, role: role.json.id });
    assert.equal(ok.status, 201, ok.text);
  });
});
