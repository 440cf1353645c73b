// Users, grants and account admins through the real gateway: the guide's walk-through
// (an MSP super admin adds a customer, a user with the whole profile, the activation
// mail, tenant_admin on the customer), every profile field invalid in turn, duplicate
// usernames, grants on invisible accounts, escalation attempts, isolation between MSPs,
// and the super-admin protections.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { activateWithTotp, pkce, readMails, signIn, sql } from './lib/identity.mjs';

const s = useStack();
const tag = () => randomBytes(3).toString('hex');

/** A signed-in user's access token through the code flow of console-web (PKCE). */
async function userToken(sessionToken) {
  const p = pkce();
  const redirect = `${s.stack.url}/console/callback`;
  const u = new URL('/oauth2/authorize', s.stack.url);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: 'console-web', redirect_uri: redirect, scope: 'openid profile email',
    state: 'st', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', session_token: sessionToken,
  })) u.searchParams.set(k, v);
  const r = await s.stack.fetch(u.toString(), { redirect: 'manual' });
  assert.equal(r.status, 302, await r.text());
  const code = new URL(r.headers.get('location')).searchParams.get('code');
  const t = await s.stack.request('/oauth2/token', {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: redirect }).toString(),
  });
  assert.equal(t.status, 200, t.text);
  return t.json.access_token;
}

/** The whole profile of the guide's "add my customer" form. */
function profile(tenantId, over = {}) {
  const t = tag();
  return {
    tenant_id: tenantId,
    title: '部長',
    first_name: '太郎',
    last_name: '山田',
    preferred_currency: 'JPY',
    language: 'ja',
    primary_email: `taro.${t}@example.co.jp`,
    secondary_email: `yamada.${t}@example.com`,
    phone: '+81 3-1234-5678',
    mobile: '090-1234-5678',
    street: '千代田1-1',
    city: '千代田区',
    state: '東京都',
    country: 'JP',
    postal_code: '100-0001',
    time_zone: 'Asia/Tokyo',
    ...over,
  };
}

describe('users', () => {
  let platform, superA, superB, mspA, mspB, custA, custA2;
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    mspA = (await platform('POST', '/api/v1/tenants', { name: `Users MSP A ${tag()}`, kind: 'msp' })).json;
    mspB = (await platform('POST', '/api/v1/tenants', { name: `Users MSP B ${tag()}`, kind: 'msp' })).json;
    superA = jsonApi(s.stack, (await apiClient(s.stack, 'ua-super', 'msp_super_admin', mspA.id)).accessToken);
    superB = jsonApi(s.stack, (await apiClient(s.stack, 'ub-super', 'msp_super_admin', mspB.id)).accessToken);
    custA = (await superA('POST', '/api/v1/tenants', { name: '顧客会社A', kind: 'customer', parent_id: mspA.id })).json;
    custA2 = (await superA('POST', '/api/v1/tenants', { name: '顧客会社B', kind: 'customer', parent_id: mspA.id })).json;
    assert.ok(custA.id && custA2.id);
  }, { timeout: 60000 });

  test('the guide: a user with the whole profile, staged, mailed, then granted tenant_admin on 顧客会社A', async () => {
    const body = profile(custA.id);
    const r = await superA('POST', '/api/v1/users', body);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.status, 'staged');
    assert.equal(r.json.username, body.primary_email, 'username defaults to the e-mail');
    for (const k of Object.keys(body)) assert.equal(r.json[k], body[k], k);
    assert.equal(r.headers.get('location'), `/api/v1/users/${r.json.id}`);
    assert.ok(r.headers.get('etag'));
    assert.deepEqual(r.json.roles, []);
    // identity consumed user.created from the outbox and mailed the activation link
    const mail = await waitFor(() => readMails(s.stack).find((m) => m.headers.to?.includes(body.primary_email)),
      { what: 'the activation mail', timeout: 15000 });
    const link = /(http\S+\/activate\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    assert.ok(link, mail.text);

    const g = await superA('PUT', `/api/v1/users/${r.json.id}/grants`, [{ role: 'tenant_admin', tenant_ids: [custA.id] }]);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json, [{ role: 'tenant_admin', tenant_ids: [custA.id] }]);
    const got = await superA('GET', `/api/v1/users/${r.json.id}`);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json.roles, [{ role: 'tenant_admin', tenant_ids: [custA.id] }]);
    const list = await superA('GET', `/api/v1/users?tenant_id=${custA.id}&sort=created_at`);
    assert.equal(list.status, 200, list.text);
    const item = list.json.items.find((u) => u.id === r.json.id);
    assert.ok(item && item.created_at);
    assert.deepEqual(item.roles, [{ role: 'tenant_admin', tenant_ids: [custA.id] }]);

    // the user activates, signs in with MFA, and manages A but cannot see B
    const account = await activateWithTotp(s.stack, { id: r.json.id, username: body.primary_email, token: new URL(link).searchParams.get('token') });
    const me = jsonApi(s.stack, await userToken(await signIn(s.stack, account)));
    assert.equal((await me('GET', `/api/v1/tenants/${custA.id}`)).status, 200);
    assertProblem(await me('GET', `/api/v1/tenants/${custA2.id}`), 404, 'not_found');
    assert.equal((await me('GET', `/api/v1/users?tenant_id=${custA.id}`)).status, 200);
    const colleague = await me('POST', '/api/v1/users', profile(custA.id));
    assert.equal(colleague.status, 201, colleague.text);
    assertProblem(await me('POST', '/api/v1/users', profile(custA2.id)), 404, 'not_found');
    // a tenant admin grants the roles inside their customer, never more than they hold
    assert.equal((await me('PUT', `/api/v1/users/${colleague.json.id}/grants`, [{ role: 'tenant_monitor', tenant_ids: [custA.id] }])).status, 200);
    const writer = (await superA('POST', '/api/v1/roles', { name: `Customer writer ${tag()}`, account_kind: 'customer', permissions: ['tenants:read', 'tenants:write'] })).json;
    assertProblem(await me('PUT', `/api/v1/users/${colleague.json.id}/grants`, [{ role: writer.id, tenant_ids: [custA.id] }]), 403, 'privilege_escalation');
    assert.equal((await superA('GET', `/api/v1/users/${r.json.id}`)).json.status, 'active');
    assertProblem(await superA('POST', `/api/v1/users/${r.json.id}/resend-activation`), 409, 'user_not_staged');
  });

  test('every profile field invalid in turn', async () => {
    const bad = {
      tenant_id: ['nope', 5], title: ['x'.repeat(33), 'a\u0007b'], first_name: ['', null, 'x'.repeat(65)], last_name: ['', 7],
      preferred_currency: ['YEN', 'jpy', 'XYZ'], language: ['japanese', 'xx', 'ja-', 'en-x-private', 'JA'],
      primary_email: ['taro', 'taro@', '@example.com', 'a..b@example.com', 'taro@example', 'ta ro@example.com'],
      username: ['ab', 'has space', 'x'.repeat(255)], secondary_email: ['nope'],
      phone: ['12345', 'call me', '+0 123 4567', '1'.repeat(16)], mobile: ['abc'], street: ['', 'x'.repeat(201)],
      city: ['', 'a\nb'], state: [''], country: ['XX', 'jp', 'JPN'], postal_code: ['', '100_0001', 'x'.repeat(17)],
      time_zone: ['Asia/Nowhere', 'Mars/Olympus', '../etc/passwd', 'asia/tokyo', ''],
    };
    for (const [field, values] of Object.entries(bad))
      for (const value of values) {
        const r = await superA('POST', '/api/v1/users', profile(custA.id, { [field]: value }));
        assertProblem(r, 400, 'validation_failed');
        assert.ok(r.json.errors.some((e) => e.field === field), `${field}=${JSON.stringify(value)}: ${r.text}`);
      }
    for (const field of ['first_name', 'last_name', 'preferred_currency', 'language', 'primary_email', 'phone', 'street', 'city', 'state', 'postal_code', 'time_zone']) {
      const b = profile(custA.id);
      delete b[field];
      const r = await superA('POST', '/api/v1/users', b);
      assertProblem(r, 400, 'validation_failed');
      assert.ok(r.json.errors.some((e) => e.field === field && e.code === 'required'), `${field}: ${r.text}`);
    }
    assertProblem(await superA('POST', '/api/v1/users', profile(custA.id, { role: 'x' })), 400, 'unknown_field');
    assertProblem(await superA('POST', '/api/v1/users?x=1', profile(custA.id)), 400, 'invalid_parameter');
    // the optional fields may be left out; other languages and zones pass
    const ok = profile(custA.id, { language: 'en-US', time_zone: 'America/New_York', preferred_currency: 'USD' });
    for (const k of ['title', 'secondary_email', 'mobile', 'country']) delete ok[k];
    const r = await superA('POST', '/api/v1/users', ok);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.country, null);
  });

  test('usernames are unique platform-wide, case-insensitively (409 username_taken)', async () => {
    const name = `Shared.${tag()}@Example.com`;
    const a = await superA('POST', '/api/v1/users', profile(custA.id, { username: name }));
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.username, name);
    assertProblem(await superA('POST', '/api/v1/users', profile(custA2.id, { username: name.toLowerCase() })), 409, 'username_taken');
    assertProblem(await superB('POST', '/api/v1/users', profile(mspB.id, { username: name.toUpperCase() })), 409, 'username_taken');
    const other = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    assertProblem(await superA('PATCH', `/api/v1/users/${other.id}`, { username: name }), 409, 'username_taken');
  });

  test('PATCH with If-Match, the same validation, audit of changed fields', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    const r = await superA('PATCH', `/api/v1/users/${u.id}`, { city: '港区', mobile: null }, { 'if-match': '"1"' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.city, '港区');
    assert.equal(r.json.mobile, null);
    assert.equal(r.json.version, 2);
    assert.equal(r.headers.get('etag'), '"2"');
    assertProblem(await superA('PATCH', `/api/v1/users/${u.id}`, { city: 'x' }, { 'if-match': '"1"' }), 412, 'precondition_failed');
    assertProblem(await superA('PATCH', `/api/v1/users/${u.id}`, { country: 'ZZ' }), 400, 'validation_failed');
    assertProblem(await superA('PATCH', `/api/v1/users/${u.id}`, { first_name: null }), 400, 'validation_failed');
    assertProblem(await superA('PATCH', `/api/v1/users/${u.id}`, { status: 'active' }), 400, 'unknown_field');
    assertProblem(await superA('PATCH', `/api/v1/users/${u.id}`, { tenant_id: custA2.id }), 400, 'unknown_field');
  });

  test('list: search, sorts, cursor pages and total', async () => {
    const cust = (await superA('POST', '/api/v1/tenants', { name: `List ${tag()}`, kind: 'customer', parent_id: mspA.id })).json;
    const names = ['Charlie', 'alice', 'Bob', 'dave', 'Eve'];
    for (const n of names)
      assert.equal((await superA('POST', '/api/v1/users', profile(cust.id, { first_name: n, last_name: n, primary_email: `${n}.${tag()}@list.example` }))).status, 201);
    const all = await superA('GET', `/api/v1/users?tenant_id=${cust.id}&sort=name`);
    assert.equal(all.json.total, 5);
    assert.deepEqual(all.json.items.map((u) => u.first_name), ['alice', 'Bob', 'Charlie', 'dave', 'Eve']);
    const desc = await superA('GET', `/api/v1/users?tenant_id=${cust.id}&sort=-email`);
    assert.deepEqual(desc.json.items.map((u) => u.first_name), ['Eve', 'dave', 'Charlie', 'Bob', 'alice']);
    const seen = [];
    let cursor = null;
    do {
      const r = await superA('GET', `/api/v1/users?tenant_id=${cust.id}&sort=username&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.total, 5);
      seen.push(...r.json.items.map((u) => u.first_name));
      cursor = r.json.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, ['alice', 'Bob', 'Charlie', 'dave', 'Eve']);
    const q = await superA('GET', `/api/v1/users?tenant_id=${cust.id}&q=CHAR`);
    assert.deepEqual(q.json.items.map((u) => u.first_name), ['Charlie']);
    assert.equal(q.json.total, 1);
    assertProblem(await superA('GET', `/api/v1/users?tenant_id=${cust.id}&sort=phone`), 400, 'invalid_parameter');
    assertProblem(await superA('GET', `/api/v1/users?tenant_id=${cust.id}&cursor=abc`), 400, 'invalid_cursor');
    assertProblem(await superA('GET', `/api/v1/users?tenant=${cust.id}`), 400, 'invalid_parameter');
  });

  test('isolation: MSP B never sees or touches A\'s users', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    assertProblem(await superB('GET', `/api/v1/users/${u.id}`), 404, 'not_found');
    assertProblem(await superB('GET', `/api/v1/users?tenant_id=${custA.id}`), 404, 'not_found');
    assertProblem(await superB('PATCH', `/api/v1/users/${u.id}`, { city: 'x' }), 404, 'not_found');
    for (const a of ['deactivate', 'reactivate', 'resend-activation'])
      assertProblem(await superB('POST', `/api/v1/users/${u.id}/${a}`), 404, 'not_found');
    assertProblem(await superB('GET', `/api/v1/users/${u.id}/grants`), 404, 'not_found');
    assertProblem(await superB('PUT', `/api/v1/users/${u.id}/grants`, []), 404, 'not_found');
    assertProblem(await superB('POST', '/api/v1/users', profile(custA.id)), 404, 'not_found');
    assertProblem(await superB('GET', `/api/v1/tenants/${custA.id}/account-admins`), 404, 'not_found');
    const listB = await superB('GET', `/api/v1/users?tenant_id=${mspB.id}`);
    assert.ok(!listB.json.items.some((x) => x.id === u.id));
    // a tenant admin of 顧客会社A sees A's users, not those of 顧客会社B nor of the MSP
    const tadmin = jsonApi(s.stack, (await apiClient(s.stack, 'ua-tadmin', 'tenant_admin', custA.id)).accessToken);
    assert.equal((await tadmin('GET', `/api/v1/users/${u.id}`)).status, 200);
    const inB = (await superA('POST', '/api/v1/users', profile(custA2.id))).json;
    assertProblem(await tadmin('GET', `/api/v1/users/${inB.id}`), 404, 'not_found');
    assertProblem(await tadmin('GET', `/api/v1/users?tenant_id=${mspA.id}`), 404, 'not_found');
    // a monitor sees the account but may not manage its users
    const monitor = jsonApi(s.stack, (await apiClient(s.stack, 'ua-mon', 'tenant_monitor', custA.id)).accessToken);
    assertProblem(await monitor('GET', `/api/v1/users/${u.id}`), 403, 'forbidden');
    assertProblem(await monitor('POST', '/api/v1/users', profile(custA.id)), 403, 'forbidden');
  });

  test('deactivate, reactivate, resend activation (events in the outbox)', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    const re = await superA('POST', `/api/v1/users/${u.id}/resend-activation`);
    assert.equal(re.status, 202, re.text);
    const d = await superA('POST', `/api/v1/users/${u.id}/deactivate`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.status, 'deactivated');
    assert.equal((await superA('POST', `/api/v1/users/${u.id}/deactivate`)).status, 200, 'idempotent');
    assertProblem(await superA('POST', `/api/v1/users/${u.id}/resend-activation`), 409, 'user_not_staged');
    const a = await superA('POST', `/api/v1/users/${u.id}/reactivate`, {});
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.status, 'staged', 'back to the status it had');
    assertProblem(await superA('POST', `/api/v1/users/${u.id}/deactivate`, { why: 1 }), 400, 'unknown_field');
  });

  test('grants: validated, audited, on visible accounts only, never beyond the caller\'s own permissions', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    const put = (api, body) => api('PUT', `/api/v1/users/${u.id}/grants`, body);
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: [mspB.id] }]), 404, 'not_found');
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: ['00000000-0000-4000-8000-000000000000'] }]), 404, 'not_found');
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: [custA2.id] }]), 400, 'validation_failed'); // not the user's account
    assertProblem(await put(superA, [{ role: 'msp_admin', tenant_ids: [custA.id] }]), 400, 'validation_failed'); // an MSP role on a customer
    assertProblem(await put(superA, [{ role: 'super_admin', tenant_ids: [custA.id] }]), 400, 'validation_failed'); // a direct role
    assertProblem(await put(superA, [{ role: 'no_such_role', tenant_ids: [custA.id] }]), 400, 'validation_failed');
    assertProblem(await put(superA, [{ role: 'msp_account_admin', tenant_ids: [custA.id] }]), 400, 'validation_failed'); // for MSP users
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: [custA.id, custA.id] }]), 400, 'validation_failed');
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: [] }]), 400, 'validation_failed');
    assertProblem(await put(superA, { role: 'tenant_admin' }), 400, 'validation_failed');
    assertProblem(await put(superA, [{ role: 'tenant_admin', tenant_ids: [custA.id], extra: 1 }]), 400, 'unknown_field');

    const ok = await put(superA, [{ role: 'tenant_admin', tenant_ids: [custA.id] }, { role: 'tenant_recovery', tenant_ids: [custA.id] }]);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.map((g) => g.role), ['tenant_admin', 'tenant_recovery']);
    assert.deepEqual((await superA('GET', `/api/v1/users/${u.id}/grants`)).json, ok.json);
    const replaced = await put(superA, [{ role: 'tenant_monitor', tenant_ids: [custA.id] }]);
    assert.deepEqual(replaced.json, [{ role: 'tenant_monitor', tenant_ids: [custA.id] }]);
    assert.equal(await sql(s.stack, "SELECT count(*) FROM roles.audit_events WHERE action = 'grant.changed' AND target_id = :'p1'", [u.id]), '2');
    assert.equal(await sql(s.stack, "SELECT count(*) FROM roles.outbox WHERE type = 'grants.changed' AND aggregate_id = :'p1'", [u.id]), '2');

    // msp_admin holds neither access:manage nor users:manage
    const adminA = jsonApi(s.stack, (await apiClient(s.stack, 'ug-admin', 'msp_admin', mspA.id)).accessToken);
    assertProblem(await put(adminA, [{ role: 'tenant_monitor', tenant_ids: [custA.id] }]), 403, 'forbidden');
    // a custom role with access:manage cannot hand out what it lacks
    const role = (await superA('POST', '/api/v1/roles', { name: `Access only ${tag()}`, account_kind: 'msp', permissions: ['tenants:read', 'users:manage', 'access:manage'] })).json;
    const gatekeeper = jsonApi(s.stack, (await apiClient(s.stack, 'ug-gate', role.id, mspA.id)).accessToken);
    const m = (await superA('POST', '/api/v1/users', profile(mspA.id))).json;
    const esc = await gatekeeper('PUT', `/api/v1/users/${m.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [mspA.id] }]);
    assertProblem(esc, 403, 'privilege_escalation');
    assert.ok(esc.json.permission);
    assert.equal((await gatekeeper('PUT', `/api/v1/users/${m.id}/grants`, [{ role: role.id, tenant_ids: [mspA.id] }])).status, 200);
    assertProblem(await gatekeeper('PUT', `/api/v1/users/${u.id}/grants`, [{ role: 'tenant_admin', tenant_ids: [custA.id] }]), 403, 'privilege_escalation');
    // a custom role of MSP A cannot be granted in MSP B
    const inB = (await superB('POST', '/api/v1/users', profile(mspB.id))).json;
    assertProblem(await superB('PUT', `/api/v1/users/${inB.id}/grants`, [{ role: role.id, tenant_ids: [mspB.id] }]), 400, 'validation_failed');
  });

  test('super admins: protected from their peers, and the last one stays', async () => {
    // an MSP of its own: no other user holds a super-admin role there
    const msp = (await platform('POST', '/api/v1/tenants', { name: `Users MSP C ${tag()}`, kind: 'msp' })).json;
    const superC = jsonApi(s.stack, (await apiClient(s.stack, 'uc-super', 'msp_super_admin', msp.id)).accessToken);
    const u1 = (await superC('POST', '/api/v1/users', profile(msp.id))).json;
    const g = await superC('PUT', `/api/v1/users/${u1.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }]);
    assert.equal(g.status, 200, g.text);
    assertProblem(await superC('PATCH', `/api/v1/users/${u1.id}`, { city: 'x' }), 403, 'super_admin_protected');
    assertProblem(await superC('POST', `/api/v1/users/${u1.id}/deactivate`), 403, 'super_admin_protected');
    assertProblem(await superC('PUT', `/api/v1/users/${u1.id}/grants`, []), 403, 'super_admin_protected');
    // the platform is above the MSP, but u1 is its last super admin
    assertProblem(await platform('POST', `/api/v1/users/${u1.id}/deactivate`), 409, 'last_super_admin');
    assertProblem(await platform('PUT', `/api/v1/users/${u1.id}/grants`, []), 409, 'last_super_admin');
    assert.equal((await platform('PATCH', `/api/v1/users/${u1.id}`, { city: '大阪市' })).status, 200);
    const u2 = (await superC('POST', '/api/v1/users', profile(msp.id))).json;
    assert.equal((await superC('PUT', `/api/v1/users/${u2.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }])).status, 200);
    const d = await platform('POST', `/api/v1/users/${u1.id}/deactivate`);
    assert.equal(d.status, 200, d.text);
    assertProblem(await platform('POST', `/api/v1/users/${u2.id}/deactivate`), 409, 'last_super_admin');
    assert.equal((await platform('POST', `/api/v1/users/${u1.id}/reactivate`)).status, 200);
    assert.equal((await platform('POST', `/api/v1/users/${u2.id}/deactivate`)).status, 200);
  });

  test('deleting a user is the platform operator\'s act: confirmed, audited, and everything of the user goes', async () => {
    // an active user of 顧客会社A with a grant, signed in
    const body = profile(custA.id);
    const u = (await superA('POST', '/api/v1/users', body)).json;
    assert.equal((await superA('PUT', `/api/v1/users/${u.id}/grants`, [{ role: 'tenant_admin', tenant_ids: [custA.id] }])).status, 200);
    const mail = await waitFor(() => readMails(s.stack).find((m) => m.headers.to?.includes(body.primary_email)), { what: 'the activation mail', timeout: 15000 });
    const link = /activate\?token=([A-Za-z0-9_-]+)/.exec(mail.text)[1];
    const account = await activateWithTotp(s.stack, { id: u.id, username: body.primary_email, token: link });
    const me = jsonApi(s.stack, await userToken(await signIn(s.stack, account)));
    assert.equal((await me('GET', `/api/v1/tenants/${custA.id}`)).status, 200);
    // MSPs cannot (the guide sends them to support); nor can the tenant's own admins
    assertProblem(await superA('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(body.primary_email)}`), 403, 'forbidden');
    assertProblem(await superB('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(body.primary_email)}`), 404, 'not_found');
    // the platform confirms with the exact username
    assertProblem(await platform('DELETE', `/api/v1/users/${u.id}`), 409, 'confirmation_required');
    assertProblem(await platform('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(body.primary_email.toUpperCase())}`), 409, 'confirmation_required');
    assertProblem(await platform('DELETE', `/api/v1/users/${u.id}?confirm=x&force=1`), 400, 'invalid_parameter');
    const d = await platform('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(body.primary_email)}`);
    assert.equal(d.status, 204, d.text);
    assertProblem(await platform('GET', `/api/v1/users/${u.id}`), 404, 'not_found');
    assertProblem(await platform('DELETE', `/api/v1/users/${u.id}?confirm=${encodeURIComponent(body.primary_email)}`), 404, 'not_found');
    // its token stops at once; its grants, password and factors go (roles and identity
    // consume user.deleted); the username is free again
    assert.equal((await me('GET', `/api/v1/tenants/${custA.id}`)).status, 401);
    await waitFor(async () => (await sql(s.stack, `SELECT (SELECT count(*) FROM roles.grants WHERE principal_id = '${u.id}')
      + (SELECT count(*) FROM identity.credentials WHERE user_id = '${u.id}') + (SELECT count(*) FROM identity.factors WHERE user_id = '${u.id}')`)) === '0',
    { what: 'grants, credentials and factors removed', timeout: 15000 });
    const again = await superA('POST', '/api/v1/users', { ...profile(custA.id), primary_email: body.primary_email });
    assert.equal(again.status, 201, again.text);
    // the customer's audit log says who deleted whom
    const log = await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&action=user.deleted`);
    assert.equal(log.json.items.length, 1, log.text);
    assert.equal(log.json.items[0].target_id, u.id);
    assert.equal(log.json.items[0].details.username, body.primary_email);
  });

  test('the platform cannot delete the last super admin of an account', async () => {
    const msp = (await platform('POST', '/api/v1/tenants', { name: `Users MSP D ${tag()}`, kind: 'msp' })).json;
    const u1 = (await platform('POST', '/api/v1/users', profile(msp.id))).json;
    assert.equal((await platform('PUT', `/api/v1/users/${u1.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }])).status, 200);
    assertProblem(await platform('DELETE', `/api/v1/users/${u1.id}?confirm=${encodeURIComponent(u1.username)}`), 409, 'last_super_admin');
  });

  test('account admins: MSP users assigned to one customer manage only that one', async () => {
    const m = (await superA('POST', '/api/v1/users', profile(mspA.id))).json;
    const base = `/api/v1/tenants/${custA2.id}/account-admins`;
    const a = await superA('POST', base, { user_id: m.id });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.role, 'msp_account_admin');
    assert.equal((await superA('POST', base, { user_id: m.id })).status, 200, 'already assigned');
    const list = await superA('GET', base);
    assert.deepEqual(list.json.items.map((x) => [x.user_id, x.role]), [[m.id, 'msp_account_admin']]);
    assert.deepEqual((await superA('GET', `/api/v1/users/${m.id}`)).json.roles, [{ role: 'msp_account_admin', tenant_ids: [custA2.id] }]);
    const customerUser = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    assertProblem(await superA('POST', base, { user_id: customerUser.id }), 400, 'validation_failed');
    assertProblem(await superA('POST', base, { user_id: m.id, role: 'tenant_admin' }), 400, 'validation_failed');
    assertProblem(await superA('POST', `/api/v1/tenants/${mspA.id}/account-admins`, { user_id: m.id }), 404, 'not_found');
    const tadmin = jsonApi(s.stack, (await apiClient(s.stack, 'uaa-tadmin', 'tenant_admin', custA2.id)).accessToken);
    assertProblem(await tadmin('POST', base, { user_id: m.id }), 403, 'forbidden');
    // an account admin of the second customer manages it and does not see the first
    const acct = jsonApi(s.stack, (await apiClient(s.stack, 'uaa-acct', 'msp_account_admin', custA2.id)).accessToken);
    assert.equal((await acct('GET', `/api/v1/tenants/${custA2.id}`)).status, 200);
    assertProblem(await acct('GET', `/api/v1/tenants/${custA.id}`), 404, 'not_found');
    assertProblem(await acct('GET', `/api/v1/users?tenant_id=${custA.id}`), 404, 'not_found');
    assert.equal((await superA('DELETE', `${base}/${m.id}`)).status, 204);
    assertProblem(await superA('DELETE', `${base}/${m.id}`), 404, 'not_found');
    assert.deepEqual((await superA('GET', base)).json.items, []);
  });

  test('the audit log: an account and the accounts below it, filtered, paged, isolated', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id))).json;
    await superA('PATCH', `/api/v1/users/${u.id}`, { city: '横浜市' });
    await superA('PUT', `/api/v1/users/${u.id}/grants`, [{ role: 'tenant_monitor', tenant_ids: [custA.id] }]);
    const all = await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&limit=500`);
    assert.equal(all.status, 200, all.text);
    const mine = all.json.items.filter((e) => e.target_id === u.id).map((e) => e.action);
    assert.deepEqual(mine, ['grant.changed', 'user.updated', 'user.created'], 'newest first, from users and roles');
    assert.ok(all.json.items.some((e) => e.action === 'tenant.created' && e.source === 'tenants'));
    assert.ok(all.json.items.every((e) => e.tenant_id === custA.id));
    // the MSP's log holds its customers' events too
    const msp = await superA('GET', `/api/v1/audit-events?tenant_id=${mspA.id}&action=user.created&limit=2`);
    assert.equal(msp.status, 200, msp.text);
    assert.ok(msp.json.total > 2);
    assert.ok(msp.json.items.every((e) => e.action === 'user.created'));
    const next = await superA('GET', `/api/v1/audit-events?tenant_id=${mspA.id}&action=user.created&limit=2&cursor=${msp.json.next_cursor}`);
    assert.equal(next.status, 200, next.text);
    assert.ok(!next.json.items.some((e) => msp.json.items.some((x) => x.id === e.id)));
    const created = all.json.items.find((e) => e.target_id === u.id && e.action === 'user.created');
    const since = await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&since=${encodeURIComponent(created.at)}&actor=${encodeURIComponent(created.actor)}`);
    assert.ok(since.json.items.length >= 3 && since.json.items.every((e) => e.at >= created.at && e.actor === created.actor));
    const until = await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&until=${encodeURIComponent(created.at)}`);
    assert.ok(until.json.items.every((e) => e.at < created.at));
    assertProblem(await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&since=yesterday`), 400, 'invalid_parameter');
    assertProblem(await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&cursor=${msp.json.next_cursor}`), 400, 'invalid_cursor');
    assertProblem(await superA('GET', `/api/v1/audit-events?who=me`), 400, 'invalid_parameter');
    // isolation: another MSP, a sibling customer, a role without audit:read
    assertProblem(await superB('GET', `/api/v1/audit-events?tenant_id=${custA.id}`), 404, 'not_found');
    const bLog = await superB('GET', `/api/v1/audit-events?tenant_id=${mspB.id}&limit=500`);
    assert.equal(bLog.status, 200, bLog.text);
    assert.ok(!bLog.json.items.some((e) => e.target_id === u.id || e.tenant_id === custA.id));
    const tadmin = jsonApi(s.stack, (await apiClient(s.stack, 'ual-tadmin', 'tenant_admin', custA.id)).accessToken);
    assert.equal((await tadmin('GET', `/api/v1/audit-events?tenant_id=${custA.id}`)).status, 200);
    assertProblem(await tadmin('GET', `/api/v1/audit-events?tenant_id=${custA2.id}`), 404, 'not_found');
    assertProblem(await tadmin('GET', `/api/v1/audit-events?tenant_id=${mspA.id}`), 404, 'not_found');
    const monitor = jsonApi(s.stack, (await apiClient(s.stack, 'ual-mon', 'tenant_monitor', custA.id)).accessToken);
    assertProblem(await monitor('GET', `/api/v1/audit-events?tenant_id=${custA.id}`), 403, 'forbidden');
  });

  test('the audit log export: CSV (RFC 4180, BOM on request) and JSON, filtered and isolated', async () => {
    const u = (await superA('POST', '/api/v1/users', profile(custA.id, { city: 'Kyoto, "Sakyo"' }))).json;
    await superA('PATCH', `/api/v1/users/${u.id}`, { city: '=cmd|calc' });
    const csv = await superA('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}&format=csv&bom=true`);
    assert.equal(csv.status, 200, csv.text);
    assert.match(csv.headers.get('content-type'), /^text\/csv; charset=utf-8/);
    assert.match(csv.headers.get('content-disposition'), /filename="audit-events\.csv"/);
    assert.ok(csv.text.startsWith('id,source,at,actor,actor_kind,acting_as,tenant_id,action,'), csv.text.slice(0, 120));
    const raw = Buffer.from(await (await s.stack.fetch(`/api/v1/audit-events/export?tenant_id=${custA.id}&bom=true`,
      { headers: { authorization: `Bearer ${await s.stack.token()}` } })).arrayBuffer());
    assert.deepEqual([...raw.subarray(0, 5)], [0xef, 0xbb, 0xbf, 0x69, 0x64], 'a UTF-8 BOM, then the header row');
    const lines = csv.text.split('\r\n');
    assert.equal(lines.at(-1), '', 'every record ends with CRLF');
    // as many records as the list's total, and the same newest-first order
    const list = await superA('GET', `/api/v1/audit-events?tenant_id=${custA.id}&limit=500`);
    const ids = lines.slice(1, -1).map((l) => l.slice(0, 36));
    assert.equal(ids.length, list.json.total);
    assert.deepEqual(ids.slice(0, list.json.items.length), list.json.items.map((e) => e.id));
    // details keep their JSON, quoted per RFC 4180
    const upd = lines.find((l) => l.includes('user.updated') && l.includes(u.id));
    assert.ok(upd && /,"\{""/.test(upd), upd);
    // JSON: the list's items, all of them, filtered
    const json = await superA('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}&format=json&action=user.updated`);
    assert.equal(json.status, 200, json.text);
    assert.ok(Array.isArray(json.json) && json.json.length >= 1);
    assert.ok(json.json.every((e) => e.action === 'user.updated' && e.tenant_id === custA.id));
    assert.deepEqual(Object.keys(json.json[0]), Object.keys(list.json.items[0]));
    assertProblem(await superA('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}&format=xlsx`), 400, 'invalid_parameter');
    assertProblem(await superA('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}&bom=yes`), 400, 'invalid_parameter');
    assertProblem(await superA('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}&limit=5`), 400, 'invalid_parameter');
    assertProblem(await superB('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}`), 404, 'not_found');
    const monitor = jsonApi(s.stack, (await apiClient(s.stack, 'uae-mon', 'tenant_monitor', custA.id)).accessToken);
    assertProblem(await monitor('GET', `/api/v1/audit-events/export?tenant_id=${custA.id}`), 403, 'forbidden');
  });

  test('system records (no account) and records of purged accounts are in the platform log only', async () => {
    const ev = `system.test_${tag()}`;
    await sql(s.stack, `INSERT INTO tenants.audit_events (id, at, action, details) VALUES (gen_random_uuid(), now(), '${ev}', '{}')`);
    const root = (await platform('GET', '/api/v1/me')).json.tenant_id;
    const p = await platform('GET', `/api/v1/audit-events?tenant_id=${root}&action=${ev}`);
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.items.length, 1);
    assert.equal(p.json.items[0].tenant_id, null);
    assert.equal((await superA('GET', `/api/v1/audit-events?tenant_id=${mspA.id}&action=${ev}`)).json.total, 0);
  });
});
