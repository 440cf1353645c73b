// Issue 6 ("Done when") as one story, tried as a new user would, through the real gateway:
// the platform operator opens an MSP and adds its first super admin; that person activates
// from the mailed link, enrols TOTP and signs in with MFA, adds the four customers of the
// guide (顧客会社A–D), adds a user for 顧客会社A with the whole profile of the "add my
// customer" form and grants it tenant_admin on A; that user activates from the mailed link,
// signs in with MFA and manages A, but cannot see B; an MSP user made account admin of B
// manages B only; the super admin views A as its admin with a reason and acts under it;
// and A's tenant admin reads A's audit log: who did what, under whose name. It ends with
// the super-admin protections, tried by people (a peer of the same level, oneself).
//
// Each step is a test of its own, in order; a step builds on the ones before it.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, jsonApi } from './lib/api.mjs';
import { activateWithTotp, decodeJwt, readMails, sessionTokens, signIn } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;
const tag = randomBytes(3).toString('hex');
const GUIDE = ['顧客会社A', '顧客会社B', '顧客会社C', '顧客会社D'];

/** The whole profile of the guide's "add my customer" form (a Japanese customer). */
function profile(tenantId, who, over = {}) {
  return {
    tenant_id: tenantId,
    title: '部長',
    first_name: who.first,
    last_name: who.last,
    preferred_currency: 'JPY',
    language: 'ja',
    primary_email: who.email,
    secondary_email: `alt.${who.email}`,
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

/** The activation mail sent to address (waits for the outbox and identity). */
async function activationMail(address) {
  return waitFor(() => readMails(st()).find((m) => m.headers.to?.includes(address) && /activate\?token=/.test(m.text || '')), {
    what: `the activation mail to ${address}`,
    timeout: 20000,
  });
}

/**
 * A person from their mailed link to a signed-in API session: the link opens the
 * activation page; password, recovery question and TOTP enrolment (the authentication API
 * the page is built on); then a sign-in of its own (password + TOTP, the code flow of
 * console-web with PKCE). Returns {account, api, token, claims}.
 */
async function activateAndSignIn(user, address) {
  const mail = await activationMail(address);
  const link = /(https?:\/\/\S+\/activate\?token=[A-Za-z0-9_-]+\S*)/.exec(mail.text)?.[1];
  assert.ok(link, `a link in the mail: ${mail.text}`);
  const url = new URL(link);
  assert.equal(url.origin, st().url, 'the link leads to this deployment');
  const page = await st().request(url.pathname + url.search);
  assert.equal(page.status, 200, 'the mailed link opens the activation page');
  assert.match(page.text, /<form/);
  const account = await activateWithTotp(st(), { id: user.id, username: user.username, token: url.searchParams.get('token') });
  const tokens = await sessionTokens(st(), await signIn(st(), account));
  const claims = decodeJwt(tokens.access_token);
  assert.equal(claims.sub, user.id, "the token's sub is the user's id");
  return { account, api: jsonApi(st(), tokens.access_token), token: tokens.access_token, claims };
}

describe('walkthrough (issue 6): an MSP, its customers, their users, account admins and accountable impersonation', () => {
  let platform; // the platform operator (the bootstrap API client)
  let msp; // the MSP account
  const cust = {}; // 顧客会社A..D by letter
  const people = {}; // name -> {user, account, api, claims}
  let session; // the super admin's impersonation of A
  let imp; // the API under that impersonation
  const did = {}; // ids of what was done, for the audit log step

  before(async () => {
    platform = jsonApi(st(), await st().token());
  });

  test('1. the platform operator opens the MSP and adds its first super admin', async () => {
    const r = await platform('POST', '/api/v1/tenants', { name: `Walk MSP ${tag}`, kind: 'msp' });
    assert.equal(r.status, 201, r.text);
    msp = r.json;
    const who = { first: '花子', last: '鈴木', email: `hanako.${tag}@msp.example.jp` };
    const u = await platform('POST', '/api/v1/users', profile(msp.id, who));
    assert.equal(u.status, 201, u.text);
    assert.equal(u.json.status, 'staged');
    const g = await platform('PUT', `/api/v1/users/${u.json.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }]);
    assert.equal(g.status, 200, g.text);
    people.hanako = { user: u.json, who };
  });

  test('2. the super admin activates from the mailed link, enrols TOTP and signs in with MFA', async () => {
    const h = people.hanako;
    Object.assign(h, await activateAndSignIn(h.user, h.who.email));
    assert.deepEqual([...h.claims.amr].sort(), ['mfa', 'otp', 'pwd'], 'signed in with a password and a one-time code');
    const me = await h.api('GET', '/api/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.kind, 'user');
    assert.equal(me.json.id, h.user.id);
    assert.equal(me.json.tenant_id, msp.id);
    assert.equal(me.json.email, h.who.email);
    assert.equal(me.json.name, '鈴木 花子', 'a Japanese name, family name first');
    assert.equal(me.json.acting_as, null);
    assert.deepEqual(me.json.grants, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }], 'the person sees the roles it holds');
    assert.equal((await platform('GET', `/api/v1/users/${h.user.id}`)).json.status, 'active');
  });

  test('3. the super admin adds the four customers of the guide', async () => {
    const h = people.hanako;
    for (const [i, name] of GUIDE.entries()) {
      const key = `walk-${tag}-${i}`;
      const body = { name, kind: 'customer', parent_id: msp.id };
      const r = await h.api('POST', '/api/v1/tenants', body, { 'idempotency-key': key });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.name, name);
      assert.equal(r.json.kind, 'customer');
      assert.equal(r.json.parent_id, msp.id);
      assert.equal(r.json.status, 'active');
      assert.equal(r.json.created_by, '鈴木 花子', 'added by the person, by name');
      cust['ABCD'[i]] = r.json;
      // a retried click answers the first answer, not a second customer
      const again = await h.api('POST', '/api/v1/tenants', body, { 'idempotency-key': key });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.json.id, r.json.id);
    }
    assertProblem(await h.api('POST', '/api/v1/tenants', { name: '顧客会社Ａ', kind: 'customer', parent_id: msp.id }), 409, 'name_taken');
    const list = await h.api('GET', `/api/v1/tenants?parent_id=${msp.id}&sort=name`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.items.map((t) => t.name), GUIDE);
    assert.equal(list.json.total, 4);
    for (const t of list.json.items) {
      assert.equal(t.status, 'active');
      assert.equal(t.created_by, '鈴木 花子');
      assert.ok(t.created_at);
    }
    const sum = await h.api('GET', `/api/v1/tenants/summary?parent_id=${msp.id}`);
    assert.equal(sum.status, 200, sum.text);
    assert.equal(sum.json.customers_total, 4);
    assert.equal(sum.json.suspended_total, 0);
  });

  test('4. the super admin adds a user for 顧客会社A with the whole profile and grants it tenant_admin on A', async () => {
    const h = people.hanako;
    const who = { first: '太郎', last: '山田', email: `taro.${tag}@kokyaku-a.example.jp` };
    const body = profile(cust.A.id, who);
    const r = await h.api('POST', '/api/v1/users', body);
    assert.equal(r.status, 201, r.text);
    for (const k of Object.keys(body)) assert.equal(r.json[k], body[k], k);
    assert.equal(r.json.status, 'staged');
    assert.equal(r.json.username, who.email, 'the username is the e-mail unless one is chosen');
    assert.deepEqual(r.json.roles, []);
    const g = await h.api('PUT', `/api/v1/users/${r.json.id}/grants`, [{ role: 'tenant_admin', tenant_ids: [cust.A.id] }]);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json, [{ role: 'tenant_admin', tenant_ids: [cust.A.id] }]);
    // the guide's user list: the user with its role and when it was added
    const list = await h.api('GET', `/api/v1/users?tenant_id=${cust.A.id}&sort=created_at`);
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.total, 1);
    const item = list.json.items[0];
    assert.equal(item.id, r.json.id);
    assert.equal(item.status, 'staged');
    assert.deepEqual(item.roles, [{ role: 'tenant_admin', tenant_ids: [cust.A.id] }]);
    assert.ok(item.created_at);
    people.taro = { user: r.json, who };
  });

  test('5. the user of 顧客会社A activates from the mailed link and signs in with MFA', async () => {
    const t = people.taro;
    const mail = await activationMail(t.who.email);
    assert.match(mail.headers.subject, /アカウントを有効にしてください/, 'in the language of the profile');
    assert.match(mail.text, /山田 太郎 様/);
    Object.assign(t, await activateAndSignIn(t.user, t.who.email));
    const me = await t.api('GET', '/api/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.tenant_id, cust.A.id);
    assert.equal(me.json.msp_id, msp.id);
    assert.deepEqual(me.json.grants, [{ role: 'tenant_admin', tenant_ids: [cust.A.id] }]);
    const u = await people.hanako.api('GET', `/api/v1/users/${t.user.id}`);
    assert.equal(u.json.status, 'active');
    // the link was single-use: nobody who finds the mail later activates the account again
    const again = await st().request('/api/v1/authn/activate', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ activation_token: t.account.token, password: 'Another-Pass-9', recovery_question: 'q?', recovery_answer: 'answer' }),
    });
    assert.ok(again.status >= 400 && again.status < 500 && again.status !== 404, again.text);
    assert.notEqual(again.json?.status, 'MFA_ENROLL');
  });

  test('6. the tenant admin manages 顧客会社A: adds a colleague, edits the profile, grants a role, reads A', async () => {
    const a = people.taro.api;
    const got = await a('GET', `/api/v1/tenants/${cust.A.id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.name, '顧客会社A');
    // the customers list of the MSP shows the tenant admin its own customer, nothing else
    const list = await a('GET', `/api/v1/tenants?parent_id=${msp.id}`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.items.map((x) => x.name), ['顧客会社A']);
    const colleague = await a('POST', '/api/v1/users', profile(cust.A.id, { first: '次郎', last: '佐藤', email: `jiro.${tag}@kokyaku-a.example.jp` }));
    assert.equal(colleague.status, 201, colleague.text);
    assert.equal(colleague.json.created_by, '山田 太郎', 'added by the tenant admin, by name');
    did.colleague = colleague.json;
    const renamed = await a('PATCH', `/api/v1/users/${colleague.json.id}`, { last_name: '佐藤（経理）', city: '港区' }, { 'if-match': colleague.headers.get('etag') });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.json.last_name, '佐藤（経理）');
    assert.equal(renamed.json.version, 2);
    const g = await a('PUT', `/api/v1/users/${colleague.json.id}/grants`, [{ role: 'tenant_monitor', tenant_ids: [cust.A.id] }]);
    assert.equal(g.status, 200, g.text);
    const users = await a('GET', `/api/v1/users?tenant_id=${cust.A.id}&sort=name`);
    assert.equal(users.status, 200, users.text);
    assert.deepEqual(users.json.items.map((x) => [x.last_name, x.roles.map((r) => r.role)]).sort(),
      [['佐藤（経理）', ['tenant_monitor']], ['山田', ['tenant_admin']]]);
    // a tenant admin manages the people of the customer, not the customer's place in the MSP
    assertProblem(await a('PATCH', `/api/v1/tenants/${cust.A.id}`, { name: 'Renamed A' }), 403, 'forbidden');
    assertProblem(await a('POST', `/api/v1/tenants/${cust.A.id}/suspend`), 403, 'forbidden');
    // nor more than it holds
    assertProblem(await a('PUT', `/api/v1/users/${colleague.json.id}/grants`, [{ role: 'msp_account_admin', tenant_ids: [cust.A.id] }]), 400, 'validation_failed');
  });

  test('7. the tenant admin of 顧客会社A cannot see 顧客会社B: 404, never 403', async () => {
    const a = people.taro.api;
    const B = cust.B.id;
    assertProblem(await a('GET', `/api/v1/tenants/${B}`), 404, 'not_found');
    assertProblem(await a('PATCH', `/api/v1/tenants/${B}`, { name: 'x' }), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/users?tenant_id=${B}`), 404, 'not_found');
    assertProblem(await a('POST', '/api/v1/users', profile(B, { first: 'B', last: 'B', email: `b.${tag}@kokyaku-b.example.jp` })), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/audit-events?tenant_id=${B}`), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/tenants/${B}/quotas`), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/tenants/${B}/account-admins`), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/tenants/${msp.id}`), 404, 'not_found');
    assertProblem(await a('GET', `/api/v1/users/${people.hanako.user.id}`), 404, 'not_found');
    // nor its MSP's other customers through any list
    const all = await a('GET', `/api/v1/tenants?parent_id=${msp.id}&q=顧客`);
    assert.deepEqual(all.json.items.map((x) => x.id), [cust.A.id]);
  });

  test('8. an MSP user assigned as account admin of 顧客会社B manages B only', async () => {
    const h = people.hanako.api;
    const who = { first: '三郎', last: '高橋', email: `saburo.${tag}@msp.example.jp` };
    const u = await h('POST', '/api/v1/users', profile(msp.id, who));
    assert.equal(u.status, 201, u.text);
    const as = await h('POST', `/api/v1/tenants/${cust.B.id}/account-admins`, { user_id: u.json.id });
    assert.equal(as.status, 201, as.text);
    assert.equal(as.json.role, 'msp_account_admin');
    const admins = await h('GET', `/api/v1/tenants/${cust.B.id}/account-admins`);
    assert.deepEqual(admins.json.items.map((x) => [x.user_id, x.role]), [[u.json.id, 'msp_account_admin']]);
    assert.deepEqual((await h('GET', `/api/v1/tenants/${cust.A.id}/account-admins`)).json.items, []);
    people.saburo = { user: u.json, who };
    Object.assign(people.saburo, await activateAndSignIn(u.json, who.email));
    const b = people.saburo.api;
    const me = await b('GET', '/api/v1/me');
    assert.deepEqual(me.json.grants, [{ role: 'msp_account_admin', tenant_ids: [cust.B.id] }]);
    // B: read, rename (and back), quota
    assert.equal((await b('GET', `/api/v1/tenants/${cust.B.id}`)).status, 200);
    let r = await b('PATCH', `/api/v1/tenants/${cust.B.id}`, { name: '顧客会社B（本社）' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, '顧客会社B（本社）');
    did.renameB = r.json;
    r = await b('PATCH', `/api/v1/tenants/${cust.B.id}`, { name: '顧客会社B' });
    assert.equal(r.status, 200, r.text);
    r = await b('PUT', `/api/v1/tenants/${cust.B.id}/quotas/cloud_storage`, { limit_bytes: 200e9, enforcement: 'track', alert_thresholds_pct: [80, 95] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.limit_bytes, 200e9);
    const list = await b('GET', `/api/v1/tenants?parent_id=${msp.id}`);
    assert.deepEqual(list.json.items.map((x) => x.id), [cust.B.id], 'the MSP\'s list shows it B only');
    // A, C, D and the MSP itself do not exist for it
    for (const other of [cust.A, cust.C, cust.D]) {
      assertProblem(await b('GET', `/api/v1/tenants/${other.id}`), 404, 'not_found');
      assertProblem(await b('PATCH', `/api/v1/tenants/${other.id}`, { name: 'x' }), 404, 'not_found');
      assertProblem(await b('PUT', `/api/v1/tenants/${other.id}/quotas/cloud_storage`, { limit_bytes: 1 }), 404, 'not_found');
      assertProblem(await b('POST', `/api/v1/tenants/${other.id}/impersonate`, { reason: 'curious' }), 404, 'not_found');
    }
    assertProblem(await b('POST', '/api/v1/tenants', { name: '顧客会社E', kind: 'customer', parent_id: msp.id }), 404, 'not_found');
    // an account admin is an Admin: everything but users (DOMAIN.md §2)
    assertProblem(await b('GET', `/api/v1/users?tenant_id=${cust.B.id}`), 403, 'forbidden');
    // what it did stayed in B: A's quotas are untouched
    const qa = await h('GET', `/api/v1/tenants/${cust.A.id}/quotas`);
    assert.equal(qa.status, 200, qa.text);
    assert.ok(!qa.json.items.some((q) => q.limit_bytes === 200e9), qa.text);
  });

  test('9. the super admin views 顧客会社A as its admin, with a reason, and acts under it', async () => {
    const h = people.hanako.api;
    assertProblem(await h('POST', `/api/v1/tenants/${cust.A.id}/impersonate`, {}), 400, 'validation_failed');
    const r = await h('POST', `/api/v1/tenants/${cust.A.id}/impersonate`, { reason: 'Ticket #4711: 復元が失敗する' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.acting_as, 'tenant_admin');
    assert.equal(r.json.tenant_id, cust.A.id);
    assert.ok(r.json.expires_in > 0 && r.json.expires_in <= 1800, `${r.json.expires_in}`);
    assert.equal(r.json.refresh_token, undefined);
    const c = decodeJwt(r.json.access_token);
    assert.equal(c.act.sub, people.hanako.user.id, 'the real person, RFC 8693 act');
    assert.equal(c.sub, r.json.session_id);
    assert.equal(c.tid, cust.A.id);
    session = r.json.session_id;
    imp = jsonApi(st(), r.json.access_token);
    const me = await imp('GET', '/api/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json.acting_as, { sub: people.hanako.user.id });
    assert.deepEqual(me.json.grants, [{ role: 'tenant_admin', tenant_ids: [cust.A.id] }], 'A\'s admin, nothing of the MSP');
    // inside A as its admin: adds a user, edits the colleague
    const u = await imp('POST', '/api/v1/users', profile(cust.A.id, { first: '四郎', last: '伊藤', email: `shiro.${tag}@kokyaku-a.example.jp` }));
    assert.equal(u.status, 201, u.text);
    did.impUser = u.json;
    const p = await imp('PATCH', `/api/v1/users/${did.colleague.id}`, { mobile: '080-0000-1111' });
    assert.equal(p.status, 200, p.text);
    // and nowhere else; no nesting
    assertProblem(await imp('GET', `/api/v1/tenants/${cust.B.id}`), 404, 'not_found');
    assertProblem(await imp('GET', `/api/v1/users?tenant_id=${cust.B.id}`), 404, 'not_found');
    assertProblem(await imp('POST', `/api/v1/tenants/${cust.B.id}/impersonate`, { reason: 'again' }), 403, 'forbidden');
  });

  test("10. 顧客会社A's tenant admin reads A's audit log: who did what, under whose name", async () => {
    const a = people.taro.api;
    const log = await a('GET', `/api/v1/audit-events?tenant_id=${cust.A.id}&limit=500`);
    assert.equal(log.status, 200, log.text);
    const items = log.json.items;
    assert.equal(log.json.total, items.length);
    assert.ok(items.every((e) => e.tenant_id === cust.A.id), 'only A');
    const hanako = people.hanako.user.id;
    const taro = people.taro.user.id;
    const find = (action, target, what = `${action} on ${target}`) => {
      const found = items.filter((e) => e.action === action && e.target_id === target);
      assert.ok(found.length >= 1, `${what}: ${JSON.stringify(items.map((e) => [e.action, e.target_id]))}`);
      return found;
    };
    // the MSP's own acts, in its own name
    const created = find('tenant.created', cust.A.id)[0];
    assert.equal(created.actor, hanako);
    assert.equal(created.actor_kind, 'user');
    assert.equal(created.acting_as, null);
    assert.equal(find('user.created', taro)[0].actor, hanako);
    assert.equal(find('grant.changed', taro)[0].actor, hanako);
    // the tenant admin's own acts
    for (const action of ['user.created', 'user.updated', 'grant.changed']) {
      const e = find(action, did.colleague.id).find((x) => x.actor === taro);
      assert.ok(e, `${action} of the colleague by the tenant admin`);
      assert.equal(e.acting_as, null);
    }
    // the impersonation: the session with its reason, and each act under it with both names
    const started = find('tenant.impersonation_started', cust.A.id)[0];
    assert.equal(started.actor, hanako, 'the real person started it');
    assert.equal(started.details.reason, 'Ticket #4711: 復元が失敗する');
    assert.equal(started.details.session_id, session);
    assert.equal(started.details.as_role, 'tenant_admin');
    assert.equal(started.details.actor_name, '鈴木 花子', 'the customer can tell who it was');
    assert.equal(started.details.actor_email, people.hanako.who.email);
    const underImp = items.filter((e) => e.acting_as === session);
    assert.deepEqual(underImp.map((e) => [e.action, e.target_id]).sort(),
      [['user.created', did.impUser.id], ['user.updated', did.colleague.id]].sort());
    for (const e of underImp) {
      assert.equal(e.actor, hanako, 'the real actor, not the session');
      assert.equal(e.actor_kind, 'user');
      assert.ok(e.request_id && e.user_agent !== undefined);
    }
    // every record names its request; the newest come first
    assert.ok(items.every((e) => e.request_id), 'request ids');
    assert.ok(items.every((e, i) => i === 0 || items[i - 1].at >= e.at), 'newest first');
    // nothing of B or of the account admin
    assert.ok(!items.some((e) => e.actor === people.saburo.user.id));
    // the same in the CSV export, with both columns
    const csv = await a('GET', `/api/v1/audit-events/export?tenant_id=${cust.A.id}&format=csv`);
    assert.equal(csv.status, 200, csv.text);
    const header = csv.text.split('\r\n')[0].split(',');
    const line = csv.text.split('\r\n').find((l) => l.includes(did.impUser.id) && l.includes('user.created'));
    assert.ok(line, csv.text);
    const cells = line.split(',');
    assert.equal(cells[header.indexOf('actor')], hanako);
    assert.equal(cells[header.indexOf('acting_as')], session);
    // the MSP reads the same in its own log; B's log has the account admin's acts
    const mspLog = await people.hanako.api('GET', `/api/v1/audit-events?tenant_id=${msp.id}&action=tenant.impersonation_started`);
    assert.deepEqual(mspLog.json.items.map((e) => e.details.session_id), [session]);
    const bLog = await people.saburo.api('GET', `/api/v1/audit-events?tenant_id=${cust.B.id}&action=tenant.renamed`);
    assert.equal(bLog.status, 200, bLog.text);
    assert.deepEqual(bLog.json.items.map((e) => e.actor), [people.saburo.user.id, people.saburo.user.id]);
  });

  test('11. super admins: not their peers, not themselves into lockout', async () => {
    const h = people.hanako;
    // the only super admin of the MSP cannot remove or deactivate itself
    assertProblem(await h.api('POST', `/api/v1/users/${h.user.id}/deactivate`), 409, 'conflict');
    assertProblem(await h.api('PUT', `/api/v1/users/${h.user.id}/grants`, []), 409, 'last_super_admin');
    // ... but edits its own profile
    const self = await h.api('PATCH', `/api/v1/users/${h.user.id}`, { mobile: '090-9999-0000' });
    assert.equal(self.status, 200, self.text);
    // a second super admin of the same level, a person too
    const who = { first: '美咲', last: '中村', email: `misaki.${tag}@msp.example.jp` };
    const u = await h.api('POST', '/api/v1/users', profile(msp.id, who));
    assert.equal(u.status, 201, u.text);
    assert.equal((await h.api('PUT', `/api/v1/users/${u.json.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }])).status, 200);
    const m = { user: u.json, who, ...(await activateAndSignIn(u.json, who.email)) };
    // peers cannot change, deactivate, reactivate or regrant each other, either way
    for (const [actor, target] of [[h, m], [m, h]]) {
      assertProblem(await actor.api('PATCH', `/api/v1/users/${target.user.id}`, { city: '大阪市' }), 403, 'super_admin_protected');
      assertProblem(await actor.api('POST', `/api/v1/users/${target.user.id}/deactivate`), 403, 'super_admin_protected');
      assertProblem(await actor.api('POST', `/api/v1/users/${target.user.id}/reactivate`), 403, 'super_admin_protected');
      assertProblem(await actor.api('PUT', `/api/v1/users/${target.user.id}/grants`, [{ role: 'msp_monitor', tenant_ids: [msp.id] }]), 403, 'super_admin_protected');
    }
    // but they manage the users below them
    assert.equal((await m.api('PATCH', `/api/v1/users/${people.taro.user.id}`, { city: '横浜市' })).status, 200);
    assert.equal((await m.api('POST', `/api/v1/users/${people.saburo.user.id}/deactivate`)).status, 200);
    assert.equal((await m.api('POST', `/api/v1/users/${people.saburo.user.id}/reactivate`)).status, 200);
    // the platform above them settles it; the last one stays
    assert.equal((await platform('POST', `/api/v1/users/${m.user.id}/deactivate`)).status, 200);
    assertProblem(await platform('POST', `/api/v1/users/${h.user.id}/deactivate`), 409, 'last_super_admin');
    assertProblem(await h.api('PUT', `/api/v1/users/${h.user.id}/grants`, []), 409, 'last_super_admin');
    // the deactivated peer's token stops at once
    assert.equal((await m.api('GET', '/api/v1/me')).status, 401);
  });
});
