// The role and permission catalogues through the real gateway: the built-in roles of
// API.md, custom roles per MSP (no privilege escalation, isolation between MSPs), and a
// custom role granted and honoured by authorization in another service.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';

const s = useStack();
const BUILTIN = ['platform_super_admin', 'super_admin', 'admin', 'monitor', 'recovery', 'msp_super_admin', 'msp_admin', 'msp_monitor',
  'msp_recovery', 'msp_account_admin', 'msp_account_monitor', 'msp_account_recovery', 'tenant_admin', 'tenant_monitor', 'tenant_recovery'];

describe('roles', () => {
  let platform, superA, adminA, superB, mspA, mspB;
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    mspA = (await platform('POST', '/api/v1/tenants', { name: 'Roles A', kind: 'msp' })).json;
    mspB = (await platform('POST', '/api/v1/tenants', { name: 'Roles B', kind: 'msp' })).json;
    superA = jsonApi(s.stack, (await apiClient(s.stack, 'ra-super', 'msp_super_admin', mspA.id)).accessToken);
    adminA = jsonApi(s.stack, (await apiClient(s.stack, 'ra-admin', 'msp_admin', mspA.id)).accessToken);
    superB = jsonApi(s.stack, (await apiClient(s.stack, 'rb-super', 'msp_super_admin', mspB.id)).accessToken);
  }, { timeout: 60000 });

  test('the permission catalogue', async () => {
    const r = await superA('GET', '/api/v1/permissions');
    assert.equal(r.status, 200, r.text);
    const ids = r.json.items.map((p) => p.id);
    for (const p of ['tenants:read', 'tenants:write', 'users:manage', 'branding:manage', 'licensing:manage', 'reports:read', 'restore:run', 'quotas:manage', 'billing:read'])
      assert.ok(ids.includes(p), p);
    assert.equal(r.json.total, ids.length);
    assert.ok(r.json.items.every((p) => p.description.length > 0));
  });

  test('the built-in roles of API.md, each with its permissions', async () => {
    const r = await superA('GET', '/api/v1/roles');
    assert.equal(r.status, 200, r.text);
    const byId = Object.fromEntries(r.json.items.map((x) => [x.id, x]));
    for (const id of BUILTIN) {
      assert.ok(byId[id], id);
      assert.equal(byId[id].builtin, true);
      assert.ok(byId[id].permissions.length > 0);
    }
    assert.deepEqual(byId.platform_super_admin.permissions, ['*']);
    // Admin = everything but users; Super Admin adds users, access, licensing, branding
    for (const p of ['users:manage', 'access:manage', 'branding:manage', 'licensing:manage']) {
      assert.ok(byId.msp_super_admin.permissions.includes(p));
      assert.ok(!byId.msp_admin.permissions.includes(p));
    }
    // Recovery = Monitor + restores
    assert.deepEqual(byId.msp_recovery.permissions.filter((p) => p !== 'restore:run').sort(), [...byId.msp_monitor.permissions].sort());
    const kinds = await superA('GET', '/api/v1/roles?account_kind=customer');
    assert.ok(kinds.json.items.every((x) => x.account_kind === 'customer'));
    assertProblem(await superA('GET', '/api/v1/roles?account_kind=galaxy'), 400, 'invalid_parameter');
  });

  test('custom roles: created by a super admin, visible to its MSP only', async () => {
    const body = { name: 'Billing viewer', account_kind: 'msp', permissions: ['tenants:read', 'billing:read'] };
    const r = await superA('POST', '/api/v1/roles', body);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.builtin, false);
    assert.equal(r.json.msp_id, mspA.id);
    assertProblem(await superA('POST', '/api/v1/roles', { ...body, name: 'BILLING VIEWER' }), 409, 'name_taken');
    const a = await superA('GET', '/api/v1/roles');
    assert.ok(a.json.items.some((x) => x.id === r.json.id));
    const b = await superB('GET', '/api/v1/roles');
    assert.ok(!b.json.items.some((x) => x.id === r.json.id), 'MSP B does not see MSP A roles');
    // the same name in another MSP is fine
    assert.equal((await superB('POST', '/api/v1/roles', body)).status, 201);

    // granted (as an operator would) and honoured by authorization in the tenants service
    const client = await apiClient(s.stack, 'billing-tool', r.json.id, mspA.id);
    const billing = jsonApi(s.stack, client.accessToken);
    assert.equal((await billing('GET', `/api/v1/tenants?parent_id=${mspA.id}`)).status, 200);
    assertProblem(await billing('POST', '/api/v1/tenants', { name: 'nope', kind: 'customer', parent_id: mspA.id }), 403, 'forbidden');
    // a custom role of MSP A cannot be granted on MSP B
    await assert.rejects(s.stack.consolectl('create-api-client', '--name', 'x', '--role', r.json.id, '--tenant', mspB.id));
  });

  test('no privilege escalation, no invented permissions, no foreign accounts', async () => {
    // msp_admin lacks access:manage
    assertProblem(await adminA('POST', '/api/v1/roles', { name: 'x', account_kind: 'msp', permissions: ['tenants:read'] }), 403, 'forbidden');
    // a custom role cannot carry what the platform alone holds, or unknown permissions
    for (const permissions of [['*'], ['tenants:read', 'root:everything'], [], ['tenants:read', 'tenants:read'], 'tenants:read', [5]])
      assertProblem(await superA('POST', '/api/v1/roles', { name: `bad ${JSON.stringify(permissions)}`, account_kind: 'msp', permissions }), 400, 'validation_failed');
    assertProblem(await superA('POST', '/api/v1/roles', { name: 'd', account_kind: 'direct', permissions: ['tenants:read'] }), 400, 'validation_failed');
    assertProblem(await superA('POST', '/api/v1/roles', { name: 'x', account_kind: 'msp', permissions: ['tenants:read'], extra: 1 }), 400, 'unknown_field');
    assertProblem(await superB('POST', '/api/v1/roles', { name: 'x', account_kind: 'msp', permissions: ['tenants:read'], msp_id: mspA.id }), 404, 'not_found');
    // a customer's tenant admin holds users:manage but not access:manage there
    const cust = (await superA('POST', '/api/v1/tenants', { name: 'Roles Customer', kind: 'customer', parent_id: mspA.id })).json;
    const tadmin = jsonApi(s.stack, (await apiClient(s.stack, 'r-tadmin', 'tenant_admin', cust.id)).accessToken);
    assertProblem(await tadmin('POST', '/api/v1/roles', { name: 'x', account_kind: 'customer', permissions: ['reports:read'] }), 403, 'forbidden');
  });
});
