// Lost factors through the gateway: one-time recovery codes (ten, shown once, stored as
// keyed hashes, each usable once, a new set replaces the old) used instead of a factor at
// sign-in, and an administrator's reset of a user's factors (users:manage on the user's
// account; audited; sessions and refresh tokens revoked; the next sign-in enrols again).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { apiClient, assertProblem, jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, activateWithTotp, postJson, sql, stageUser, userTokens } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;

async function mfaRequired(account) {
  const r = await postJson(st(), '/api/v1/authn', { username: account.username, password: account.password });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
const useCode = (state, code) => postJson(st(), '/api/v1/authn/recovery-codes/verify', { state_token: state, recovery_code: code });

describe('one-time recovery codes', () => {
  test('ten codes shown once, hashed, each usable once, replaced by a new set', async () => {
    const account = await activateWithTotp(st(), await stageUser(st()));
    const me = jsonApi(st(), (await userTokens(st(), account)).access_token);
    const none = (await me('GET', '/api/v1/me/recovery-codes')).json;
    assert.equal(none.remaining, 0);
    assert.equal(none.total, 0);
    const r = await me('POST', '/api/v1/me/recovery-codes');
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const codes = r.json.codes;
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[a-hjkmnp-z2-9]{5}-[a-hjkmnp-z2-9]{5}$/);
    const stored = await sql(st(), `SELECT string_agg(code_hash, ',') FROM identity.recovery_codes WHERE user_id = :'p1'`, [account.id]);
    for (const c of codes) assert.ok(!stored.includes(c.replace('-', '')), 'only hashes are stored');
    const st1 = await me('GET', '/api/v1/me/recovery-codes');
    assert.equal(st1.json.remaining, 10);
    assert.ok(!('codes' in st1.json), 'codes are never shown again');

    // a code instead of the second factor
    let tx = await mfaRequired(account);
    const ok = await useCode(tx.state_token, codes[0]);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'SUCCESS');
    assert.ok(ok.json.session_token);
    // used once only
    tx = await mfaRequired(account);
    assertProblem(await useCode(tx.state_token, codes[0]), 403, 'invalid_pass_code');
    // typed in capitals with spaces instead of the dash
    const ok2 = await useCode(tx.state_token, codes[1].toUpperCase().replace('-', ' '));
    assert.equal(ok2.status, 200, ok2.text);
    assert.equal((await me('GET', '/api/v1/me/recovery-codes')).json.remaining, 8);
    const audit = await sql(st(), `SELECT details->>'recovery_codes_left' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' AND details->>'factor_type' = 'recovery_code' ORDER BY at DESC LIMIT 1`, [account.id]);
    assert.equal(audit, '8');

    // a new set replaces the old one
    const again = await me('POST', '/api/v1/me/recovery-codes');
    assert.equal(again.status, 201);
    tx = await mfaRequired(account);
    assertProblem(await useCode(tx.state_token, codes[2]), 403, 'invalid_pass_code');
    const ok3 = await useCode(tx.state_token, again.json.codes[9]);
    assert.equal(ok3.status, 200, ok3.text);
  });

  test('bad input and the wrong step', async () => {
    const account = await activateWithTotp(st(), await stageUser(st()));
    const me = jsonApi(st(), (await userTokens(st(), account)).access_token);
    assertProblem(await me('POST', '/api/v1/me/recovery-codes', { count: 20 }), 400, 'unknown_field');
    assertProblem(await me('POST', '/api/v1/me/recovery-codes', '{"a":'), 400, 'malformed_json');
    const codes = (await me('POST', '/api/v1/me/recovery-codes')).json.codes;
    const tx = await mfaRequired(account);
    assertProblem(await postJson(st(), '/api/v1/authn/recovery-codes/verify', { state_token: tx.state_token }), 400, 'validation_failed');
    assertProblem(await postJson(st(), '/api/v1/authn/recovery-codes/verify', { state_token: tx.state_token, recovery_code: 7 }), 400, 'validation_failed');
    assertProblem(await postJson(st(), '/api/v1/authn/recovery-codes/verify', { state_token: tx.state_token, recovery_code: codes[0], x: 1 }), 400, 'unknown_field');
    assertProblem(await useCode(tx.state_token, "' OR 1=1 --"), 403, 'invalid_pass_code');
    assertProblem(await useCode('not-a-state', codes[0]), 401, 'state_token_invalid');
    // another user's code does not open this account
    const other = await activateWithTotp(st(), await stageUser(st()));
    const otherMe = jsonApi(st(), (await userTokens(st(), other)).access_token);
    const otherCodes = (await otherMe('POST', '/api/v1/me/recovery-codes')).json.codes;
    assertProblem(await useCode(tx.state_token, otherCodes[0]), 403, 'invalid_pass_code');
    // a sign-in still enrolling (no factor yet) cannot use codes
    const staged = await stageUser(st());
    const a = await postJson(st(), '/api/v1/authn/activate', { activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer' });
    assertProblem(await useCode(a.json.state_token, codes[1]), 401, 'state_token_invalid');
    // five wrong codes end the transaction
    const tx2 = await mfaRequired(account);
    for (let i = 0; i < 4; i++) assertProblem(await useCode(tx2.state_token, 'aaaaa-aaaaa'), 403, 'invalid_pass_code');
    assertProblem(await useCode(tx2.state_token, 'aaaaa-aaaaa'), 429, 'too_many_attempts');
    assertProblem(await useCode(tx2.state_token, codes[1]), 429, 'too_many_attempts');
  });
});

describe("an administrator resets a user's factors", () => {
  let platform, msp, other;
  before(async () => {
    platform = jsonApi(st(), await st().token());
    msp = (await platform('POST', '/api/v1/tenants', { name: 'Reset MSP', kind: 'msp' })).json;
    other = (await platform('POST', '/api/v1/tenants', { name: 'Reset Other', kind: 'msp' })).json;
  });

  test('reset: factors and codes gone, sessions revoked, audited, next sign-in enrols', async () => {
    const account = await activateWithTotp(st(), await stageUser(st(), { tenantId: msp.id }));
    const tokens = await userTokens(st(), account, 'openid offline_access');
    const me = jsonApi(st(), tokens.access_token);
    assert.equal((await me('POST', '/api/v1/me/recovery-codes')).status, 201);
    const admin = await apiClient(st(), 'reset-admin', 'msp_super_admin', msp.id);
    const r = await jsonApi(st(), admin.accessToken)('POST', `/api/v1/users/${account.id}/factors/reset`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.factor_types, ['totp']);
    assert.equal(r.json.recovery_codes, 10);
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.factors WHERE user_id = :'p1'`, [account.id]), '0');
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.recovery_codes WHERE user_id = :'p1'`, [account.id]), '0');
    const audit = JSON.parse(await sql(st(), `SELECT json_build_object('actor', actor_id, 'tenant', tenant_id)::text FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.factors_reset'`, [account.id]));
    assert.equal(audit.tenant, msp.id);
    assert.ok(audit.actor);
    // the user's grant is revoked: their token no longer works at identity, the refresh token neither
    assertProblem(await me('GET', '/api/v1/me/factors'), 401, 'unauthorized');
    const refresh = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: tokens.refresh_token }).toString() });
    assert.equal(refresh.status, 400, refresh.text);
    // the next sign-in enrols a factor again
    const again = await mfaRequired(account);
    assert.equal(again.status, 'MFA_ENROLL');
    assert.deepEqual(again.factors, []);
  });

  test('who may reset: users:manage on the account; others 403 or 404; never oneself', async () => {
    const account = await activateWithTotp(st(), await stageUser(st(), { tenantId: msp.id }));
    for (const role of ['msp_monitor', 'msp_admin']) {
      const c = await apiClient(st(), `reset-${role}`, role, msp.id);
      assertProblem(await jsonApi(st(), c.accessToken)('POST', `/api/v1/users/${account.id}/factors/reset`), 403, 'forbidden');
    }
    const stranger = await apiClient(st(), 'reset-stranger', 'msp_super_admin', other.id);
    assertProblem(await jsonApi(st(), stranger.accessToken)('POST', `/api/v1/users/${account.id}/factors/reset`), 404, 'not_found');
    const admin = jsonApi(st(), (await apiClient(st(), 'reset-admin-2', 'msp_super_admin', msp.id)).accessToken);
    assertProblem(await admin('POST', '/api/v1/users/00000000-0000-0000-0000-000000000000/factors/reset'), 404, 'not_found');
    assertProblem(await admin('POST', '/api/v1/users/not-a-uuid/factors/reset'), 404, 'not_found');
    assertProblem(await admin('POST', `/api/v1/users/${account.id}/factors/reset`, { reason: 'x' }), 400, 'unknown_field');
    assertProblem(await admin('POST', `/api/v1/users/${account.id}/factors/reset?force=1`), 400, 'invalid_parameter');
    // nothing changed by the refused calls
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.factors WHERE user_id = :'p1' AND status = 'active'`, [account.id]), '1');
    // a user with users:manage cannot reset their own factors
    const self = await activateWithTotp(st(), await stageUser(st(), { tenantId: msp.id }));
    await sql(st(), `INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id, created_by) VALUES (gen_random_uuid(), :'p1', 'user', 'msp_super_admin', :'p2', :'p2', 'e2e')`, [self.id, msp.id]);
    const selfApi = jsonApi(st(), (await userTokens(st(), self)).access_token);
    assertProblem(await selfApi('POST', `/api/v1/users/${self.id}/factors/reset`), 403, 'forbidden');
    const ok = await selfApi('POST', `/api/v1/users/${account.id}/factors/reset`);
    assert.equal(ok.status, 200, ok.text);
  });
});
