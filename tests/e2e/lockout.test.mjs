// Lockout after ten failed sign-ins, and an administrator's unlock through the real
// gateway (users:manage on the user's account; invisible users are 404).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { activateWithTotp, postJson, signIn, stageUser } from './lib/identity.mjs';

const s = useStack();

describe('lockout and unlock', () => {
  test('ten failures lock the account; its administrator unlocks it', { timeout: 120000 }, async () => {
    const platform = jsonApi(s.stack, await s.stack.token());
    const msp = (await platform('POST', '/api/v1/tenants', { name: 'Lock MSP', kind: 'msp' })).json;
    const other = (await platform('POST', '/api/v1/tenants', { name: 'Lock Other', kind: 'msp' })).json;
    const cust = (await platform('POST', '/api/v1/tenants', { name: 'Lock Customer', kind: 'customer', parent_id: msp.id })).json;
    const account = await activateWithTotp(s.stack, await stageUser(s.stack, { tenantId: cust.id }));
    for (let i = 0; i < 10; i++) await postJson(s.stack, '/api/v1/authn', { username: account.username, password: 'Wrong-Password-1' });
    const locked = await postJson(s.stack, '/api/v1/authn', { username: account.username, password: account.password });
    assert.equal(locked.json?.status, 'LOCKED_OUT', locked.text);

    const monitor = jsonApi(s.stack, (await apiClient(s.stack, 'lock-monitor', 'msp_monitor', msp.id)).accessToken);
    assertProblem(await monitor('POST', `/api/v1/users/${account.id}/unlock`), 403, 'forbidden');
    const stranger = jsonApi(s.stack, (await apiClient(s.stack, 'lock-stranger', 'msp_super_admin', other.id)).accessToken);
    assertProblem(await stranger('POST', `/api/v1/users/${account.id}/unlock`), 404, 'not_found');
    assertProblem(await stranger('POST', '/api/v1/users/not-a-user/unlock'), 404, 'not_found');
    const admin = jsonApi(s.stack, (await apiClient(s.stack, 'lock-admin', 'tenant_admin', cust.id)).accessToken);
    const r = await admin('POST', `/api/v1/users/${account.id}/unlock`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.was_locked, true);
    assert.ok(await signIn(s.stack, account), 'signs in again');
  });
});
