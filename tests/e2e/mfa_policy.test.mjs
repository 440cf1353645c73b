// The second-factor policy per MSP and per customer through the gateway: the built-in
// default, an MSP's policy inherited by its customers, a customer's own override (and its
// removal), enforcement at enrolment and at sign-in (a type the policy does not allow is
// refused; mfa_required false lets a user without a factor in with the password;
// remember_device and its days validated), the
// list of users not yet enrolled, validation, audit, and isolation (another MSP's admin
// gets 404, an MSP admin without access:manage 403).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { apiClient, assertProblem, jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, activateWithTotp, nextTotp, postJson, sessionTokens, sql, stageUser } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;

async function activate(staged) {
  const a = await postJson(st(), '/api/v1/authn/activate', {
    activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'First pet?', recovery_answer: 'A cat named Tama',
  });
  assert.equal(a.status, 200, a.text);
  return a.json;
}
const authn = (account) => postJson(st(), '/api/v1/authn', { username: account.username, password: account.password || GOOD_PASSWORD });
const policyAudits = (tenant) => sql(st(), `SELECT count(*) FROM identity.audit_events WHERE action LIKE 'tenant.mfa_policy_%' AND tenant_id = :'p1'`, [tenant]);

describe('second-factor policy per MSP and per customer', () => {
  let platform, mspA, mspB, custA1, custA2, adminA, adminB, mspAdminA;
  before(async () => {
    platform = jsonApi(st(), await st().token());
    mspA = (await platform('POST', '/api/v1/tenants', { name: 'Policy MSP A', kind: 'msp' })).json;
    mspB = (await platform('POST', '/api/v1/tenants', { name: 'Policy MSP B', kind: 'msp' })).json;
    custA1 = (await platform('POST', '/api/v1/tenants', { name: 'Policy Customer A1', kind: 'customer', parent_id: mspA.id })).json;
    custA2 = (await platform('POST', '/api/v1/tenants', { name: 'Policy Customer A2', kind: 'customer', parent_id: mspA.id })).json;
    adminA = jsonApi(st(), (await apiClient(st(), 'pol-a', 'msp_super_admin', mspA.id)).accessToken);
    adminB = jsonApi(st(), (await apiClient(st(), 'pol-b', 'msp_super_admin', mspB.id)).accessToken);
    mspAdminA = jsonApi(st(), (await apiClient(st(), 'pol-a-admin', 'msp_admin', mspA.id)).accessToken);
  });

  test('default, MSP policy inherited by customers, customer override, removal; audited', async () => {
    const d = await adminA('GET', `/api/v1/tenants/${custA1.id}/mfa-policy`);
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.json.allowed_factors, ['totp', 'email', 'webauthn', 'sms', 'voice']);
    assert.equal(d.json.mfa_required, true);
    assert.equal(d.json.remember_device, false);
    assert.equal(d.json.remember_device_days, 30);
    assert.equal(d.json.source, 'default');
    assert.equal(d.headers.get('etag'), '"0"');

    const put = await adminA('PUT', `/api/v1/tenants/${mspA.id}/mfa-policy`, { allowed_factors: ['totp', 'webauthn'], mfa_required: true });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.source, 'tenant');
    assert.equal(put.headers.get('etag'), '"1"');
    const inh = (await adminA('GET', `/api/v1/tenants/${custA1.id}/mfa-policy`)).json;
    assert.deepEqual(inh.allowed_factors, ['totp', 'webauthn']);
    assert.equal(inh.source, 'msp');
    assert.equal(inh.inherited_from, mspA.id);

    const own = await adminA('PUT', `/api/v1/tenants/${custA2.id}/mfa-policy`, { allowed_factors: ['email'], mfa_required: false, remember_device: false });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.source, 'tenant');
    assert.deepEqual((await adminA('GET', `/api/v1/tenants/${custA1.id}/mfa-policy`)).json.allowed_factors, ['totp', 'webauthn'], 'a sibling keeps the MSP policy');
    // optimistic concurrency
    assertProblem(await adminA('PUT', `/api/v1/tenants/${custA2.id}/mfa-policy`, { allowed_factors: ['email'], mfa_required: true }, { 'if-match': '"7"' }), 412, 'precondition_failed');
    assert.equal((await adminA('PUT', `/api/v1/tenants/${custA2.id}/mfa-policy`, { allowed_factors: ['email', 'totp'], mfa_required: false }, { 'if-match': '"1"' })).status, 200);
    assert.equal(await policyAudits(custA2.id), '2');
    const detail = await sql(st(), `SELECT details::text FROM identity.audit_events WHERE action = 'tenant.mfa_policy_updated' AND tenant_id = :'p1' ORDER BY at DESC LIMIT 1`, [custA2.id]);
    assert.deepEqual(JSON.parse(detail).previous, { allowed_factors: ['email'], mfa_required: false, remember_device: false, remember_device_days: 30 });

    // removal: back to the MSP's
    const tmp = (await platform('POST', '/api/v1/tenants', { name: 'Policy Customer A3', kind: 'customer', parent_id: mspA.id })).json;
    assert.equal((await adminA('PUT', `/api/v1/tenants/${tmp.id}/mfa-policy`, { allowed_factors: ['sms'], mfa_required: true })).status, 200);
    const del = await adminA('DELETE', `/api/v1/tenants/${tmp.id}/mfa-policy`);
    assert.equal(del.status, 204, del.text);
    assert.equal((await adminA('GET', `/api/v1/tenants/${tmp.id}/mfa-policy`)).json.source, 'msp');
    assertProblem(await adminA('DELETE', `/api/v1/tenants/${tmp.id}/mfa-policy`), 404, 'not_found');
    assert.equal(await policyAudits(tmp.id), '2');
  });

  test('bad bodies are refused field by field', async () => {
    const put = (body) => adminA('PUT', `/api/v1/tenants/${custA1.id}/mfa-policy`, body);
    assertProblem(await put({ allowed_factors: ['totp'], mfa_required: true, extra: 1 }), 400, 'unknown_field');
    for (const body of [
      { mfa_required: true },
      { allowed_factors: [], mfa_required: true },
      { allowed_factors: ['totp', 'push'], mfa_required: true },
      { allowed_factors: ['totp', 'totp'], mfa_required: true },
      { allowed_factors: 'totp', mfa_required: true },
      { allowed_factors: ['totp'] },
      { allowed_factors: ['totp'], mfa_required: 'yes' },
      { allowed_factors: ['totp'], mfa_required: true, remember_device: 'yes' },
      { allowed_factors: ['totp'], mfa_required: true, remember_device: true, remember_device_days: 0 },
      { allowed_factors: ['totp'], mfa_required: true, remember_device: true, remember_device_days: 91 },
      { allowed_factors: ['totp'], mfa_required: true, remember_device: true, remember_device_days: 1.5 },
    ]) assertProblem(await put(body), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${custA1.id}/mfa-policy`, '{"allowed_factors":'), 400, 'malformed_json');
    assert.equal((await adminA('GET', `/api/v1/tenants/${custA1.id}/mfa-policy`)).json.source, 'msp', 'nothing was stored');
  });

  test('isolation: another MSP gets 404, an MSP admin without access:manage 403', async () => {
    for (const [m, body] of [['GET'], ['PUT', { allowed_factors: ['totp'], mfa_required: false }], ['DELETE']]) {
      assertProblem(await adminB(m, `/api/v1/tenants/${mspA.id}/mfa-policy`, body), 404, 'not_found');
      assertProblem(await adminB(m, `/api/v1/tenants/${custA2.id}/mfa-policy`, body), 404, 'not_found');
    }
    assertProblem(await adminB('GET', `/api/v1/tenants/${custA1.id}/mfa-enrollment`), 404, 'not_found');
    assertProblem(await mspAdminA('PUT', `/api/v1/tenants/${custA1.id}/mfa-policy`, { allowed_factors: ['totp'], mfa_required: true }), 403, 'forbidden');
    assertProblem(await adminA('GET', '/api/v1/tenants/not-a-uuid/mfa-policy'), 404, 'not_found');
    assert.deepEqual((await adminA('GET', `/api/v1/tenants/${mspA.id}/mfa-policy`)).json.allowed_factors, ['totp', 'webauthn'], 'unchanged');
  });

  test('enforcement at enrolment and at sign-in', async () => {
    // custA1 inherits totp + webauthn
    const staged = await stageUser(st(), { tenantId: custA1.id });
    const act = await activate(staged);
    assert.deepEqual(act.enroll.map((e) => e.type), ['totp', 'webauthn']);
    const refused = await postJson(st(), '/api/v1/authn/factors', { state_token: act.state_token, type: 'email' });
    assertProblem(refused, 403, 'factor_not_allowed');
    assert.deepEqual(refused.json.allowed_factors, ['totp', 'webauthn']);
    const account = await activateWithTotp(st(), await stageUser(st(), { tenantId: custA1.id }));
    // a sign-in under way when the MSP stops allowing TOTP: the code is refused ...
    const r = await authn(account);
    assert.equal(r.json.status, 'MFA_REQUIRED');
    assert.equal((await adminA('PUT', `/api/v1/tenants/${mspA.id}/mfa-policy`, { allowed_factors: ['webauthn', 'email'], mfa_required: true })).status, 200);
    const v = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: r.json.state_token, pass_code: await nextTotp(account) });
    assertProblem(v, 403, 'factor_not_allowed');
    // ... and the next sign-in asks for a factor the policy allows
    const r2 = await authn(account);
    assert.equal(r2.json.status, 'MFA_ENROLL', r2.text);
    assert.deepEqual(r2.json.factors, []);
    assert.deepEqual(r2.json.enroll.map((e) => e.type), ['email', 'webauthn']);
    const e = await postJson(st(), '/api/v1/authn/factors', { state_token: r2.json.state_token, type: 'email' });
    assert.equal(e.status, 200, e.text);
    // the customer's own override (email, totp; no MFA required) applies to its users only
    const b = await stageUser(st(), { tenantId: custA2.id });
    await activate(b);
    const pw = await authn(b);
    assert.equal(pw.status, 200, pw.text);
    assert.equal(pw.json.status, 'SUCCESS', 'no factor needed under mfa_required false');
    const tokens = await sessionTokens(st(), pw.json.session_token);
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.amr, ['pwd'], 'the token says no second factor was used');
    assert.equal(await sql(st(), `SELECT status FROM users.users WHERE id = :'p1'`, [b.id]), 'active');
    // restore for the next test
    assert.equal((await adminA('PUT', `/api/v1/tenants/${mspA.id}/mfa-policy`, { allowed_factors: ['totp', 'webauthn'], mfa_required: true })).status, 200);
  });

  test('the users of an account not yet enrolled', async () => {
    const cust = (await platform('POST', '/api/v1/tenants', { name: 'Policy Customer A4', kind: 'customer', parent_id: mspA.id })).json;
    const enrolled = await activateWithTotp(st(), await stageUser(st(), { tenantId: cust.id, username: `aaa-${Date.now()}@example.com` }));
    const pending = await stageUser(st(), { tenantId: cust.id, username: `bbb-${Date.now()}@example.com` });
    const emailOnly = await stageUser(st(), { tenantId: cust.id, username: `ccc-${Date.now()}@example.com` });
    await sql(st(), `INSERT INTO identity.factors (id, user_id, msp_id, type, status) SELECT gen_random_uuid(), :'p1', msp_id, 'email', 'active' FROM users.users WHERE id = :'p1'`, [emailOnly.id]);
    const all = await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment`);
    assert.equal(all.status, 200, all.text);
    assert.equal(all.json.total, 3);
    assert.equal(all.json.enrolled_total, 1);
    assert.equal(all.json.not_enrolled_total, 2, 'an email factor does not count where the policy allows totp and webauthn only');
    const not = (await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?enrolled=false`)).json;
    assert.deepEqual(not.items.map((u) => u.id), [pending.id, emailOnly.id]);
    assert.ok(not.items.every((u) => u.enrolled === false));
    const yes = (await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?enrolled=true`)).json;
    assert.deepEqual(yes.items.map((u) => [u.id, u.factor_types]), [[enrolled.id, ['totp']]]);
    // pages of one
    const p1 = (await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?limit=1`)).json;
    assert.equal(p1.items.length, 1);
    assert.ok(p1.next_cursor);
    const p2 = (await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?limit=1&cursor=${encodeURIComponent(p1.next_cursor)}`)).json;
    assert.notEqual(p2.items[0].id, p1.items[0].id);
    assertProblem(await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?enrolled=maybe`), 400, 'invalid_parameter');
    assertProblem(await adminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment?x=1`), 400, 'invalid_parameter');
    assertProblem(await mspAdminA('GET', `/api/v1/tenants/${cust.id}/mfa-enrollment`), 403, 'forbidden');
  });
});
