// The licensing service end to end, through the real gateway: every rule of the
// licensing FAQ (seeds/000_…) that concerns the service has a test named after it, then
// the issue's bad inputs and tenant isolation. Products call without a bearer token (the
// Order ID + Fulfillment Number, then the activation secret, are their proof); time moves
// with the service's database clock (licensing.clock), never with sleeps.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, createHmac, verify as edVerify, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useStack } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { sql, readMails } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;
let platform, platformId, mspA, mspB, custA1, adminA, adminB;
let seq = 0;
const uniq = (p) => `${p}-${Date.now().toString(36)}-${++seq}`;

const product = (method, path, body, headers = {}) =>
  st().request(path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
const fingerprint = (n = randomUUID().slice(0, 8)) => ({
  bios_serial: `VMware-42 1a ${n}`,
  cpu_id: 'BFEBFBFF000906EA',
  machine_guid: randomUUID(),
});
const days = (n) => n * 86400;
async function setClock(offsetDays) {
  await sql(st(), `UPDATE licensing.clock SET offset_s = ${Math.round(days(offsetDays))}`);
}
async function newOrder({ quantity = 3, endUser = 'buyer@example.com', tenant = mspA.id, lines, renews, language } = {}) {
  const body = {
    order_id: uniq('ORD'),
    fulfillment_number: uniq('FN'),
    tenant_id: tenant,
    lines: lines || [{ product: 'Arcserve UDP', edition: 'Advanced', quantity, license_type: 'perpetual', unit: 'server' }],
  };
  if (endUser) body.end_user_email = endUser;
  if (renews) body.renews = renews;
  if (language) body.language = language;
  const r = await platform('POST', '/api/v1/licensing/orders', body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}
const activation = (order, extra = {}) => ({
  order_id: order.order_id,
  fulfillment_number: order.fulfillment_number,
  email: 'admin@tokyo.example.com',
  computer_name: 'UDP-CONSOLE-01',
  fingerprint: fingerprint(),
  ...extra,
});
const activate = (body) => product('POST', '/api/v1/licensing/activations', body);
const checkIn = (a, secret = a.activation_secret) =>
  product('POST', `/api/v1/licensing/activations/${a.id}/check-in`, undefined, { 'x-activation-secret': secret });
const confirmForm = (token) =>
  st().request('/licensing/confirm', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
const mailsTo = (addr) => readMails(st()).filter((m) => (m.headers.to || '').includes(addr));
const linkIn = (mail) => /https?:\/\/[^\s"<>]+\/licensing\/(confirm|approve)\?token=([A-Za-z0-9_-]+)/.exec(mail.text);

async function jwks() {
  const r = await product('GET', '/api/v1/licensing/public-key');
  assert.equal(r.status, 200, r.text);
  return r.json;
}
// As a product does: the published key the license's kid names (the set holds the active
// key and, after a rotation, the retired ones still in their overlap).
async function verifyLicense(jws, set) {
  const [h, p, sig] = jws.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const key = (set || (await jwks())).keys.find((k) => k.kid === header.kid);
  if (header.alg !== 'EdDSA' || !key) return null;
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.x }, format: 'jwk' });
  if (!edVerify(null, Buffer.from(`${h}.${p}`), pub, Buffer.from(sig, 'base64url'))) return null;
  return JSON.parse(Buffer.from(p, 'base64url'));
}
function requestFile(order, req, key = order.fulfillment_number) {
  const request = Buffer.from(JSON.stringify(req)).toString('base64url');
  const mac = createHmac('sha256', key).update(request).digest('base64url');
  return { format: 'console-license-request/1', request, mac };
}
async function pools(api, orderId) {
  const r = await api('GET', `/api/v1/licensing/pools?order_id=${encodeURIComponent(orderId)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}
const defaultPool = async (api, orderId) => (await pools(api, orderId)).find((p) => p.default);

describe('licensing', () => {
  before(async () => {
    platform = jsonApi(st(), await st().token());
    platformId = /platform tenant: (\S+)/.exec(st().bootstrapOutput)[1];
    let r = await platform('POST', '/api/v1/tenants', { name: 'License MSP A', kind: 'msp', parent_id: platformId });
    assert.equal(r.status, 201, r.text);
    mspA = r.json;
    r = await platform('POST', '/api/v1/tenants', { name: 'License MSP B', kind: 'msp', parent_id: platformId });
    mspB = r.json;
    adminA = jsonApi(st(), (await apiClient(st(), 'lic-alpha', 'msp_super_admin', mspA.id)).accessToken);
    r = await adminA('POST', '/api/v1/tenants', { name: '顧客会社A', kind: 'customer', parent_id: mspA.id });
    assert.equal(r.status, 201, r.text);
    custA1 = r.json;
    adminB = jsonApi(st(), (await apiClient(st(), 'lic-beta', 'msp_super_admin', mspB.id)).accessToken);
  }, { timeout: 60000 });
  after(async () => {
    if (st()) await setClock(0);
  });

  test('done when: 3 licenses, one online server, 2 left in Default, offline refused, approval, grace and back, released on deactivation, keys', async () => {
    const order = await newOrder({ quantity: 3 });
    const r = await activate(activation(order));
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.status, 'active');
    assert.equal((await defaultPool(adminA, order.order_id)).quantity, 2);
    const offline = await platform('POST', '/api/v1/licensing/offline-requests',
      requestFile(order, activation(order, { computer_name: 'OFFLINE-01' })));
    assertProblem(offline, 409, 'activation_method_conflict');
    const second = await activate(activation(order, { email: 'osaka@example.com', computer_name: 'OSAKA' }));
    assert.equal(second.status, 202, second.text);
    assert.equal(second.json.status, 'pending_approval');
    await setClock(15);
    try {
      const list = await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}&method=online`);
      assert.equal(list.json.items.find((a) => a.id === r.json.id).state, 'grace');
      const c = await checkIn(r.json);
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.previous_state, 'grace');
      assert.equal(c.json.state, 'active');
    } finally {
      await setClock(0);
    }
    const d = await product('DELETE', `/api/v1/licensing/activations/${r.json.id}`, undefined, { 'x-activation-secret': r.json.activation_secret });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.released, 1);
    assert.equal((await defaultPool(adminA, order.order_id)).quantity, 2); // the pending one still holds one
    const keys = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 2 });
    assert.equal(keys.status, 201, keys.text);
    assert.equal(keys.json.keys.length, 2);
  });

  describe('FAQ rules', () => {
    test('FAQ 1.9, 1.12, 1.13: activation takes Order ID, Fulfillment Number, e-mail, computer name and the machine fingerprint; name, company and phone are optional and nothing else is collected', async () => {
      const order = await newOrder({ quantity: 5 });
      const ok = await activate(activation(order, { name: '山田 太郎', company: '東京商事', phone: '+81 3 1234 5678' }));
      assert.equal(ok.status, 201, ok.text);
      const extra = await activate(activation(order, { address: 'Tokyo' }));
      assertProblem(extra, 400, 'unknown_field');
      const fpExtra = await activate(activation(order, { fingerprint: { ...fingerprint(), hostname: 'x' } }));
      assertProblem(fpExtra, 400, 'unknown_field');
      for (const f of ['order_id', 'fulfillment_number', 'email', 'computer_name', 'fingerprint']) {
        const body = activation(order);
        delete body[f];
        const r = await activate(body);
        assertProblem(r, 400, 'validation_failed');
        assert.ok(r.json.errors.some((e) => e.field === f), `${f} named: ${r.text}`);
      }
    });

    test('FAQ 1.13: UDP Archiving activates with the MAC address as its machine fingerprint', async () => {
      const order = await newOrder({ quantity: 1, lines: [{ product: 'Arcserve UDP Archiving', edition: 'Standard', quantity: 1, license_type: 'perpetual' }] });
      const r = await activate(activation(order, { fingerprint: { mac: '00-1A-2B-3C-4D-5E' } }));
      assert.equal(r.status, 201, r.text);
      const lic = await verifyLicense(r.json.license);
      assert.deepEqual(lic.fingerprint, { mac: '00:1a:2b:3c:4d:5e' });
      const bad = await activate(activation(order, { fingerprint: { mac: 'not-a-mac-address' } }));
      assertProblem(bad, 400, 'validation_failed');
    });

    test('FAQ 1.1, 1.4, 1.14: online activation returns a license signed with Ed25519 that the product verifies offline with the published public key', async () => {
      const order = await newOrder({ quantity: 2 });
      const body = activation(order);
      const r = await activate(body);
      assert.equal(r.status, 201, r.text);
      assert.match(r.json.activation_secret, /^[A-Za-z0-9_-]{40,}$/);
      const key = (await jwks()).keys[0];
      assert.equal(key.kty, 'OKP');
      assert.equal(key.crv, 'Ed25519');
      const lic = await verifyLicense(r.json.license);
      assert.ok(lic, 'the signature verifies');
      assert.equal(lic.activation_id, r.json.id);
      assert.equal(lic.method, 'online');
      assert.equal(lic.order_id, order.order_id);
      assert.deepEqual(lic.fingerprint, { ...body.fingerprint, machine_guid: body.fingerprint.machine_guid.toLowerCase() });
      assert.equal(lic.products[0].product, 'Arcserve UDP');
      assert.equal(lic.products[0].quantity, 1);
      assert.match(lic.issued_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(Date.parse(lic.check_in_due_at) - Date.parse(lic.issued_at), days(14) * 1000);
    });

    test('FAQ 2.23, 5.9: re-activating the same machine (e.g. after an overwrite install) is idempotent; a restored server with a new fingerprint needs a new activation', async () => {
      const order = await newOrder({ quantity: 3 });
      const body = activation(order);
      const first = await activate(body);
      assert.equal(first.status, 201, first.text);
      const again = await activate(body);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.id, first.json.id);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 2, 'no second license taken');
      // the first secret was replaced by the new one
      assertProblem(await checkIn(first.json), 401, 'activation_secret_invalid');
      assert.equal((await checkIn(again.json)).status, 200);
      const restored = await activate({ ...body, fingerprint: fingerprint() });
      assert.equal(restored.status, 201, restored.text);
      assert.notEqual(restored.json.id, first.json.id);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 1);
    });

    test('FAQ 1.6, 2.13, 2.17, 5.10: one Order ID / Fulfillment Number pair of a license program (e.g. Premium: UDP and Backup) spans products, one activation licenses every product of the server, and a VM Agent per Host license carries 50 agents', async () => {
      const order = await newOrder({ lines: [
        { product: 'Arcserve UDP', edition: 'Premium', quantity: 2, license_type: 'perpetual', unit: 'socket' },
        { product: 'Arcserve Backup', edition: 'Standard', quantity: 2, license_type: 'perpetual' },
        { product: 'VM Agent per Host', edition: 'Standard', quantity: 1, license_type: 'perpetual', unit: 'host', agents_per_unit: 50 },
      ] });
      const r = await activate(activation(order));
      assert.equal(r.status, 201, r.text);
      const lic = await verifyLicense(r.json.license);
      assert.deepEqual(lic.products.map((p) => p.product), ['Arcserve UDP', 'Arcserve Backup', 'VM Agent per Host']);
      assert.equal(lic.products[2].agents, 50, 'FAQ 5.10: one VM Agent per Host license carries 50 agents');
    });

    test('FAQ 2.21, 3.10: one order does not mix online and offline servers, and switching method needs deactivation first', async () => {
      const order = await newOrder({ quantity: 3 });
      const online = await activate(activation(order));
      assert.equal(online.status, 201);
      const file = requestFile(order, activation(order, { computer_name: 'OFFLINE-01' }));
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', file), 409, 'activation_method_conflict');
      const d = await product('DELETE', `/api/v1/licensing/activations/${online.json.id}`, undefined, { 'x-activation-secret': online.json.activation_secret });
      assert.equal(d.status, 200, d.text);
      const off = await adminA('POST', '/api/v1/licensing/offline-requests', file);
      assert.equal(off.status, 201, off.text);
      assert.equal(off.json.method, 'offline');
      assert.equal(off.json.response_file.format, 'console-license-response/1');
      const lic = await verifyLicense(off.json.response_file.license);
      assert.equal(lic.method, 'offline');
      assert.equal(lic.check_in_due_at, undefined, 'FAQ 1.15: offline needs no connection');
      // and now online is the refused one
      assertProblem(await activate(activation(order)), 409, 'activation_method_conflict');
    });

    test('FAQ 1.18: the offline request file is uploaded from another machine and comes back as a signed response file', async () => {
      const order = await newOrder({ quantity: 1 });
      const r = await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(order, activation(order)));
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.activation_secret, undefined);
      assert.ok(await verifyLicense(r.json.response_file.license));
      const list = await adminA('GET', `/api/v1/licensing/activations?method=offline&order_id=${order.order_id}`);
      assert.equal(list.json.items.length, 1);
    });

    test('FAQ 2.9: both online and offline activation mail the registration link to the e-mail given', async () => {
      const on = await newOrder({ quantity: 1 });
      const e1 = `faq29-online-${seq}@example.com`;
      assert.equal((await activate(activation(on, { email: e1 }))).status, 201);
      assert.ok(linkIn(mailsTo(e1).at(-1)), 'online: a registration link');
      const off = await newOrder({ quantity: 1 });
      const e2 = `faq29-offline-${seq}@example.com`;
      const r = await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(off, activation(off, { email: e2 })));
      assert.equal(r.status, 201, r.text);
      const mail = mailsTo(e2).at(-1);
      assert.ok(mail, 'offline: a registration mail');
      assert.match(mail.headers.subject, /Action required: product registration$/);
      assert.ok(linkIn(mail));
    });

    test('FAQ 2.19: several Order IDs activated with one e-mail are managed together under that account', async () => {
      const email = `faq219-${seq}@example.com`;
      const o1 = await newOrder({ quantity: 1 });
      const o2 = await newOrder({ quantity: 1 });
      const o3 = await newOrder({ quantity: 1 });
      assert.equal((await activate(activation(o1, { email }))).status, 201);
      assert.equal((await activate(activation(o2, { email, computer_name: 'FAQ219-2' }))).status, 201);
      assert.equal((await activate(activation(o3, { email: `other-${email}` }))).status, 201);
      const r = await adminA('GET', `/api/v1/licensing/orders?account_email=${encodeURIComponent(email)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.items.map((o) => o.order_id).sort(), [o1.order_id, o2.order_id].sort());
    });

    test('FAQ 2.5, 2.6, 2.20: another server with another e-mail on an order of several licenses waits for the buyer, whose approval activates it', async () => {
      const order = await newOrder({ quantity: 30, endUser: 'buyer-2-5@example.com' });
      assert.equal((await activate(activation(order, { email: 'tokyo@example.com', computer_name: 'TOKYO' }))).status, 201);
      // the same e-mail on another server needs no approval
      assert.equal((await activate(activation(order, { email: 'tokyo@example.com', computer_name: 'TOKYO-2' }))).status, 201);
      const nagoya = await activate(activation(order, { email: 'nagoya@example.com', computer_name: 'NAGOYA' }));
      assert.equal(nagoya.status, 202, nagoya.text);
      assert.equal(nagoya.json.status, 'pending_approval');
      assert.equal(nagoya.json.license, undefined, 'no license before approval');
      const mail = mailsTo('buyer-2-5@example.com').at(-1);
      assert.ok(mail, 'the buyer got the approval mail');
      assert.match(mail.text, /nagoya@example\.com/);
      const token = linkIn(mail)[2];
      const pending = await checkIn(nagoya.json);
      assert.equal(pending.json.state, 'pending_approval');
      const ok = await product('POST', `/api/v1/licensing/approvals/${token}`, { decision: 'approve' });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.status, 'active');
      const c = await checkIn(nagoya.json);
      assert.equal(c.json.state, 'active');
      assert.ok(await verifyLicense(c.json.license));
      // the token works once
      assertProblem(await product('POST', `/api/v1/licensing/approvals/${token}`, { decision: 'approve' }), 409, 'approval_token_used');
      assertProblem(await product('POST', `/api/v1/licensing/approvals/${'x'.repeat(43)}`, {}), 404, 'approval_token_invalid');
    });

    test('FAQ 2.6: an order without an end-user e-mail (boxed product) sends the approval to the platform licensing address; refusal releases the licenses', async () => {
      const order = await newOrder({ quantity: 2, endUser: null });
      assert.equal((await activate(activation(order, { email: 'first@example.com' }))).status, 201);
      const before = mailsTo('no-reply').length + mailsTo('localhost').length;
      const second = await activate(activation(order, { email: 'second@example.com', computer_name: 'SECOND' }));
      assert.equal(second.status, 202, second.text);
      assert.equal(second.json.approval_requested_from, 'platform');
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 0);
      const mails = readMails(st()).filter((m) => /second@example\.com/.test(m.text || ''));
      const mail = mails.find((m) => /Approval/.test(m.headers.subject));
      assert.ok(mail, `an approval mail (${before} before)`);
      assert.doesNotMatch(mail.headers.to, /second@example\.com|first@example\.com/);
      const token = linkIn(mail)[2];
      const r = await product('POST', `/api/v1/licensing/approvals/${token}`, { decision: 'refuse' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, 'refused');
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 1);
    });

    test('FAQ 1.15: after 14 days without a check-in an online activation enters a 30-day grace period, then is suspended; a check-in restores it at once', async () => {
      const order = await newOrder({ quantity: 1 });
      const a = (await activate(activation(order))).json;
      const state = async () =>
        (await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`)).json.items[0].state;
      try {
        await setClock(13.9);
        assert.equal(await state(), 'active');
        await setClock(14.01);
        assert.equal(await state(), 'grace');
        await setClock(43.9);
        assert.equal(await state(), 'grace');
        await setClock(44.01);
        assert.equal(await state(), 'suspended');
        const c = await checkIn(a);
        assert.equal(c.status, 200, c.text);
        assert.equal(c.json.previous_state, 'suspended');
        assert.equal(c.json.state, 'active');
        assert.equal(await state(), 'active');
        await setClock(44.01 + 14.01);
        assert.equal(await state(), 'grace', 'the 14 days count from the last check-in');
      } finally {
        await setClock(0);
      }
    });

    test('FAQ 1.16: while disconnected the messages escalate: connection lost every 2-3 days, the expiry date after 5 days, expired in grace', async () => {
      const order = await newOrder({ quantity: 1 });
      await activate(activation(order));
      const messages = async () =>
        (await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`)).json.items[0].messages;
      try {
        await setClock(1);
        assert.deepEqual(await messages(), []);
        await setClock(3);
        assert.deepEqual((await messages()).map((m) => m.code), ['connection_lost']);
        assert.deepEqual((await messages())[0].repeat_every_days, [2, 3]);
        await setClock(6);
        const m6 = await messages();
        assert.deepEqual(m6.map((m) => m.code), ['connection_lost', 'license_expires']);
        assert.match(m6[1].date, /^\d{4}\/\d\d\/\d\d$/);
        await setClock(20);
        const m20 = await messages();
        assert.deepEqual(m20.map((m) => m.code), ['license_expired']);
        assert.equal(m20[0].date, m6[1].date, 'the date announced is the date it expired');
        await setClock(50);
        assert.deepEqual((await messages()).map((m) => m.code), ['license_suspended']);
      } finally {
        await setClock(0);
      }
    });

    test('FAQ 2.11: the registration link is valid 72 hours; an expired link says so and mails a fresh 72-hour link', async () => {
      const order = await newOrder({ quantity: 1 });
      const email = `reg-${seq}@example.com`;
      await activate(activation(order, { email }));
      const first = mailsTo(email).at(-1);
      assert.ok(first, 'a registration mail');
      const link = linkIn(first);
      try {
        await setClock(3.01);
        const expired = await product('GET', `/licensing/confirm?token=${link[2]}`);
        assert.equal(expired.status, 410);
        assert.match(expired.text, /expired/i);
        assert.match(expired.text, /<form method="post" action="\/licensing\/confirm">/, 'the page asks for the new link');
        assert.equal(mailsTo(email).at(-1).name, first.name, 'opening the link sends nothing by itself');
        const resent = await confirmForm(link[2]);
        assert.equal(resent.status, 410, resent.text);
        assert.match(resent.text, /new link/i);
        const fresh = mailsTo(email).at(-1);
        assert.notEqual(fresh.name, first.name, 'a new mail');
        const token2 = linkIn(fresh)[2];
        assert.notEqual(token2, link[2]);
        await setClock(3.01 + 2.9);
        const shown = await product('GET', `/licensing/confirm?token=${token2}`);
        assert.equal(shown.status, 200, shown.text);
        assert.match(shown.text, /Confirm the registration/);
        let list = await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`);
        assert.equal(list.json.items[0].registered, false, 'GET changes nothing');
        const ok = await confirmForm(token2);
        assert.equal(ok.status, 200, ok.text);
        assert.match(ok.text, /registered/i);
        list = await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`);
        assert.equal(list.json.items[0].registered, true);
      } finally {
        await setClock(0);
      }
      const bogus = await product('GET', '/licensing/confirm?token=nope');
      assert.equal(bogus.status, 404);
    });

    test('FAQ 3.4, 3.5: deactivating a server returns its licenses to Default (Unassigned Licenses) for the next server', async () => {
      const order = await newOrder({ quantity: 1 });
      const a = (await activate(activation(order))).json;
      assertProblem(await activate(activation(order, { computer_name: 'NEW-SERVER' })), 409, 'no_licenses_available');
      const d = await product('DELETE', `/api/v1/licensing/activations/${a.id}`, undefined, { 'x-activation-secret': a.activation_secret });
      assert.equal(d.status, 200, d.text);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 1);
      assertProblem(await checkIn(a), 401, 'activation_secret_invalid');
      assert.equal((await activate(activation(order, { computer_name: 'NEW-SERVER' }))).status, 201);
    });

    test('FAQ 3.4: releasing a server pool from the portal returns its licenses to Default', async () => {
      const order = await newOrder({ quantity: 2 });
      const a = (await activate(activation(order))).json;
      const pool = (await pools(adminA, order.order_id)).find((p) => p.activation_id === a.id);
      assert.equal(pool.computer_name, 'UDP-CONSOLE-01');
      const r = await adminA('POST', `/api/v1/licensing/pools/${pool.id}/release`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.released, 1);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 2);
      const c = await checkIn(a);
      assert.deepEqual((await verifyLicense(c.json.license)).products, [], 'the server holds no license any more');
    });

    test('FAQ 2.15, 2.22: pools are renamed and resized within the order total (over-allocation answers 409 no_licenses_available); the product gets the new counts when it refreshes (check-in)', async () => {
      const order = await newOrder({ quantity: 10 });
      const a = (await activate(activation(order))).json;
      const pool = (await pools(adminA, order.order_id)).find((p) => p.activation_id === a.id);
      let r = await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { name: '東京拠点', quantity: 6 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.name, '東京拠点');
      assert.equal(r.json.quantity, 6);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 4);
      assertProblem(await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { quantity: 11 }), 409, 'no_licenses_available');
      // the same through PATCH /pools with the id in the body (API.md)
      r = await adminA('PATCH', '/api/v1/licensing/pools', { id: pool.id, quantity: 5 });
      assert.equal(r.status, 200, r.text);
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 5);
      r = await adminA('PATCH', '/api/v1/licensing/pools', { id: pool.id, quantity: 6, color: 'red' });
      assertProblem(r, 400, 'unknown_field');
      r = await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { quantity: 6 }, { 'if-match': '"1"' });
      assertProblem(r, 412, 'precondition_failed');
      r = await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { quantity: 6 });
      assert.equal(r.status, 200, r.text);
      r = await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'Osaka', quantity: 4 });
      assert.equal(r.status, 201, r.text);
      assertProblem(await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'Nagoya', quantity: 1 }), 409, 'no_licenses_available');
      assertProblem(await adminA('PATCH', `/api/v1/licensing/pools/${(await defaultPool(adminA, order.order_id)).id}`, { name: 'mine' }), 409, 'pool_is_default');
      // the product sees the new count at its next check-in
      const c = await checkIn(a);
      assert.equal((await verifyLicense(c.json.license)).products[0].quantity, 6);
    });

    test('FAQ 3.12: license use marks per protected node are reported at check-in, listed, and released from the portal so the product drops them', async () => {
      const order = await newOrder({ quantity: 1, lines: [{ product: 'Arcserve Backup', edition: 'Client Agent', quantity: 2, license_type: 'perpetual' }] });
      const a = (await activate(activation(order))).json;
      const report = (nodes) =>
        product('POST', `/api/v1/licensing/activations/${a.id}/check-in`, { nodes }, { 'x-activation-secret': a.activation_secret });
      let c = await report(['vm-old']);
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.nodes_in_use, 1);
      assert.equal(c.json.nodes_licensed, 1);
      c = await report(['vm-old', 'vm-new']); // the backup target changed: two marks, one license
      assert.equal(c.json.nodes_in_use, 2);
      assert.deepEqual(c.json.messages.map((m) => m.code), ['nodes_over_licensed']);
      const list = await adminA('GET', `/api/v1/licensing/activations/${a.id}/nodes`);
      assert.deepEqual(list.json.items.map((n) => n.node), ['vm-new', 'vm-old']);
      const rel = await adminA('POST', `/api/v1/licensing/activations/${a.id}/nodes/release`, { nodes: ['vm-old'] });
      assert.equal(rel.status, 200, rel.text);
      assert.deepEqual(rel.json.released, ['vm-old']);
      c = await report(['vm-old', 'vm-new']);
      assert.deepEqual(c.json.released_nodes, ['vm-old'], 'the product is told to drop the mark');
      assert.equal(c.json.nodes_in_use, 1);
      assert.deepEqual(c.json.messages, []);
      c = await report(['vm-new']);
      assert.deepEqual(c.json.released_nodes, []);
      assertProblem(await report(['x'.repeat(256)]), 400, 'validation_failed');
      assertProblem(await report('vm'), 400, 'validation_failed');
      assertProblem(await adminB('GET', `/api/v1/licensing/activations/${a.id}/nodes`), 404, 'not_found');
    });

    test('FAQ 2.14, 2.18, 3.1: a boxed option bought under another Order ID is added to an activated server from the portal; the server then uses both fulfillment numbers', async () => {
      const base = await newOrder({ quantity: 1, endUser: null, lines: [{ product: 'Arcserve Backup', edition: 'Standard', quantity: 1, license_type: 'perpetual' }] });
      const option = await newOrder({ quantity: 1, endUser: null, lines: [{ product: 'Arcserve Backup Agent for Open Files', edition: 'Standard', quantity: 1, license_type: 'perpetual' }] });
      const a = (await activate(activation(base))).json;
      const wrong = await adminA('POST', `/api/v1/licensing/activations/${a.id}/orders`, { order_id: option.order_id, fulfillment_number: 'WRONG' });
      assertProblem(wrong, 404, 'order_not_found');
      const r = await adminA('POST', `/api/v1/licensing/activations/${a.id}/orders`, { order_id: option.order_id, fulfillment_number: option.fulfillment_number });
      assert.equal(r.status, 200, r.text);
      const lic = await verifyLicense(r.json.license);
      assert.deepEqual(lic.products.map((p) => p.order_id).sort(), [base.order_id, option.order_id].sort());
      const c = await checkIn(a);
      assert.equal((await verifyLicense(c.json.license)).products.length, 2, 'the product gets both at check-in');
      const list = await adminA('GET', `/api/v1/licensing/activations?order_id=${option.order_id}`);
      assert.deepEqual(list.json.items[0].fulfillment_numbers.sort(), [base.fulfillment_number, option.fulfillment_number].sort());
      assertProblem(await adminA('POST', `/api/v1/licensing/activations/${a.id}/orders`, { order_id: option.order_id, fulfillment_number: option.fulfillment_number }), 409, 'conflict');
      // an order in use offline does not join an online server
      const off = await newOrder({ quantity: 2 });
      await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(off, activation(off)));
      assertProblem(await adminA('POST', `/api/v1/licensing/activations/${a.id}/orders`, { order_id: off.order_id, fulfillment_number: off.fulfillment_number }), 409, 'activation_method_conflict');
      // deactivating the server returns both orders' licenses
      await product('DELETE', `/api/v1/licensing/activations/${a.id}`, undefined, { 'x-activation-secret': a.activation_secret });
      assert.equal((await defaultPool(adminA, option.order_id)).quantity, 1);
      assertProblem(await adminB('POST', `/api/v1/licensing/activations/${a.id}/orders`, { order_id: option.order_id, fulfillment_number: option.fulfillment_number }), 404, 'not_found');
    });

    test('FAQ 1.8, 4.5, 4.8, 4.9: product keys for agent products are generated per order, product, version and quantity, repeatedly for virtual hosts except the capped product (100 guest keys per virtual-host license), and every generated key stays listed', async () => {
      const order = await newOrder({ lines: [
        { product: 'Arcserve UDP Agent', edition: 'Windows', quantity: 1, license_type: 'perpetual' },
        { product: 'Arcserve RHA', edition: 'Virtual Host', quantity: 1, license_type: 'perpetual', unit: 'host', keys_capped: true },
      ] });
      for (let i = 0; i < 3; i++) {
        const r = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP Agent', version: '7.0', quantity: 2 });
        assert.equal(r.status, 201, r.text);
      }
      let r = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve RHA', version: '18.0', quantity: 100 });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.limit, 100);
      assert.equal(new Set(r.json.keys).size, 100);
      for (const k of r.json.keys) assert.match(k, /^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$/);
      r = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve RHA', version: '18.0', quantity: 1 });
      assertProblem(r, 409, 'key_limit_reached');
      // FAQ 4.8: generated keys stay listed
      const list = await adminA('GET', `/api/v1/licensing/keys?order_id=${order.order_id}`);
      assert.equal(list.json.total, 106);
    });

    test('FAQ 4.2: a generated key is reproducibly verifiable; a mistyped or forged key is not', async () => {
      const order = await newOrder({ quantity: 1, lines: [{ product: 'Arcserve UDP Agent', edition: 'Linux', quantity: 1, license_type: 'perpetual' }] });
      const r = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP Agent', version: '7.0', quantity: 1 });
      const key = r.json.keys[0];
      // a retried request with the same Idempotency-Key gets the same keys, not new ones
      const idem = { 'idempotency-key': `keys-${seq}` };
      const k1 = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP Agent', version: '7.0', quantity: 2 }, idem);
      const k2 = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP Agent', version: '7.0', quantity: 2 }, idem);
      assert.equal(k1.status, 201, k1.text);
      assert.deepEqual(k2.json.keys, k1.json.keys);
      assert.equal((await adminA('GET', `/api/v1/licensing/keys?order_id=${order.order_id}`)).json.total, 3);
      const v = await adminA('POST', '/api/v1/licensing/keys/verify', { key: key.toLowerCase() });
      assert.equal(v.json.valid, true, v.text);
      assert.equal(v.json.product, 'Arcserve UDP Agent');
      const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
      const typo = key.slice(0, 3) + alphabet[(alphabet.indexOf(key[3]) + 1) % 32] + key.slice(4);
      assert.deepEqual((await adminA('POST', '/api/v1/licensing/keys/verify', { key: typo })).json, { valid: false, reason: 'checksum' });
      assertProblem(await adminB('POST', '/api/v1/licensing/keys/verify', { key }), 404, 'not_found'); // another MSP does not learn of it
      assertProblem(await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Nope', version: '7.0', quantity: 1 }), 422, 'product_not_in_order');
    });

    test('FAQ 1.10, 1.20: a product never activated runs a 30-day trial, then expires, and activation is still allowed after expiry', async () => {
      const fp = fingerprint();
      let r = await product('POST', '/api/v1/licensing/trials', { product: 'Arcserve Backup', fingerprint: fp });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.state, 'trial');
      assert.equal(r.json.days_left, 30);
      const order = await newOrder({ quantity: 1, lines: [{ product: 'Arcserve Backup', edition: 'Standard', quantity: 1, license_type: 'perpetual' }] });
      try {
        await setClock(29);
        r = await product('POST', '/api/v1/licensing/trials', { product: 'Arcserve Backup', fingerprint: fp });
        assert.equal(r.json.state, 'trial');
        assert.equal(r.json.days_left, 1);
        await setClock(31);
        r = await product('POST', '/api/v1/licensing/trials', { product: 'Arcserve Backup', fingerprint: fp });
        assert.equal(r.json.state, 'expired');
        const a = await activate(activation(order, { fingerprint: fp }));
        assert.equal(a.status, 201, a.text);
        r = await product('POST', '/api/v1/licensing/trials', { product: 'Arcserve Backup', fingerprint: fp });
        assert.equal(r.json.state, 'activated');
      } finally {
        await setClock(0);
      }
    });

    test('FAQ 2.10, 3.6, 5.3, 5.4: an online-activated account changes (or corrects) its e-mail from the product; after the mailed confirmation the orders and pools move to it; an offline one cannot', async () => {
      const old = `old-${seq}@example.com`, neu = `new-${seq}@example.com`;
      const order = await newOrder({ quantity: 2 });
      const a = (await activate(activation(order, { email: old }))).json;
      const r = await product('POST', `/api/v1/licensing/activations/${a.id}/email`, { email: neu }, { 'x-activation-secret': a.activation_secret });
      assert.equal(r.status, 202, r.text);
      let hist = await adminA('GET', `/api/v1/licensing/orders?account_email=${encodeURIComponent(neu)}`);
      assert.equal(hist.json.items.length, 0, 'nothing moves before the confirmation');
      const mail = mailsTo(neu).at(-1);
      assert.ok(mail, 'the new address got the confirmation');
      const token = linkIn(mail)[2];
      const page = await product('GET', `/licensing/confirm?token=${token}`);
      assert.equal(page.status, 200, page.text);
      const described = await product('GET', `/licensing/confirm?token=${token}`, undefined, { accept: 'application/json' });
      assert.equal(described.json.action, 'confirm_email_change', described.text);
      hist = await adminA('GET', `/api/v1/licensing/orders?account_email=${encodeURIComponent(neu)}`);
      assert.equal(hist.json.items.length, 0, 'opening the link moves nothing');
      assert.equal((await confirmForm(token)).status, 200);
      hist = await adminA('GET', `/api/v1/licensing/orders?account_email=${encodeURIComponent(neu)}`);
      assert.deepEqual(hist.json.items.map((o) => o.order_id), [order.order_id]);
      const list = await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`);
      assert.equal(list.json.items[0].email, neu);
      // offline accounts go through the license desk: an offline product holds no secret
      const off = await newOrder({ quantity: 1 });
      const offAct = await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(off, activation(off)));
      assert.equal(offAct.status, 201, offAct.text);
      assert.equal(offAct.json.activation_secret, undefined);
      assertProblem(await product('POST', `/api/v1/licensing/activations/${offAct.json.id}/email`, { email: neu }, { 'x-activation-secret': 'guess' }), 401, 'activation_secret_invalid');
      // and a wrong secret moves nothing
      assertProblem(await product('POST', `/api/v1/licensing/activations/${a.id}/email`, { email: 'evil@example.com' }, { 'x-activation-secret': 'nope' }), 401, 'activation_secret_invalid');
    });

    test('FAQ 3.10, 3.11: a server is released the way it was activated: online from the product or the portal, offline with the product\'s deactivation request file', async () => {
      const deactivationFile = (order, req, key = order.fulfillment_number) => {
        const request = Buffer.from(JSON.stringify(req)).toString('base64url');
        return { format: 'console-license-deactivation/1', request, mac: createHmac('sha256', key).update(request).digest('base64url') };
      };
      // online: the offline file does not release it
      const on = await newOrder({ quantity: 1 });
      const onReq = activation(on);
      const a = (await activate(onReq)).json;
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-deactivations',
        deactivationFile(on, { activation_id: a.id, order_id: on.order_id, fingerprint: onReq.fingerprint })), 409, 'deactivation_method_conflict');
      // offline: neither the product's online call nor the portal's DELETE releases it
      const off = await newOrder({ quantity: 2 });
      const offReq = activation(off, { computer_name: 'OFFLINE-REL' });
      const o = await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(off, offReq));
      assert.equal(o.status, 201, o.text);
      assertProblem(await adminA('DELETE', `/api/v1/licensing/activations/${o.json.id}`), 409, 'deactivation_method_conflict');
      const file = deactivationFile(off, { activation_id: o.json.id, order_id: off.order_id, fingerprint: offReq.fingerprint });
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-deactivations', deactivationFile(off, { activation_id: o.json.id, order_id: off.order_id, fingerprint: fingerprint() })), 422, 'request_file_invalid');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-deactivations', { ...file, mac: deactivationFile(off, {}, 'guess').mac }), 422, 'request_file_invalid');
      assertProblem(await adminB('POST', '/api/v1/licensing/offline-deactivations', file), 404, 'not_found');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-deactivations', requestFile(off, offReq)), 422, 'request_file_invalid');
      const d = await adminA('POST', '/api/v1/licensing/offline-deactivations', file);
      assert.equal(d.status, 200, d.text);
      assert.equal(d.json.released, 1);
      assert.equal(d.json.response_file.format, 'console-license-deactivation-response/1');
      const receipt = await verifyLicense(d.json.response_file.receipt);
      assert.equal(receipt.activation_id, o.json.id);
      assert.equal(receipt.status, 'deactivated');
      assert.equal((await defaultPool(adminA, off.order_id)).quantity, 2);
      // the order is free for either method again (FAQ 3.10)
      assert.equal((await activate(activation(off))).status, 201);
    });

    test('a suspended or deleted account cannot activate, add or approve licenses until it is resumed or restored', async () => {
      let r = await adminA('POST', '/api/v1/tenants', { name: uniq('Suspended customer'), kind: 'customer', parent_id: mspA.id });
      assert.equal(r.status, 201, r.text);
      const cust = r.json;
      const order = await newOrder({ quantity: 3, tenant: cust.id });
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/suspend`)).status, 200);
      assertProblem(await activate(activation(order)), 403, 'account_inactive');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(order, activation(order))), 403, 'account_inactive');
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/resume`)).status, 200);
      assert.equal((await activate(activation(order))).status, 201);
      r = await platform('DELETE', `/api/v1/tenants/${cust.id}?confirm=${encodeURIComponent(cust.name)}`);
      assert.ok(r.status < 300, r.text);
      assertProblem(await activate(activation(order, { computer_name: 'AFTER-DELETE' })), 403, 'account_inactive');
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/restore`)).status, 200);
      assert.equal((await activate(activation(order, { computer_name: 'AFTER-RESTORE' }))).status, 201);
    });

    test("a suspended or deleted account's activated servers check in to a suspended license (account_suspended, no license) until the account is resumed or restored", async () => {
      let r = await adminA('POST', '/api/v1/tenants', { name: uniq('Suspended server customer'), kind: 'customer', parent_id: mspA.id });
      assert.equal(r.status, 201, r.text);
      const cust = r.json;
      const order = await newOrder({ quantity: 2, tenant: cust.id });
      const a = (await activate(activation(order))).json;
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/suspend`)).status, 200);
      let c = await checkIn(a);
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.state, 'suspended');
      assert.equal(c.json.reason, 'account_suspended');
      assert.equal(c.json.license, undefined, 'no license while the account is suspended');
      assert.deepEqual(c.json.messages.map((m) => m.code), ['account_suspended']);
      const list = await adminA('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`);
      assert.equal(list.status, 200, list.text);
      assert.equal(list.json.items[0].state, 'suspended');
      assert.equal(list.json.items[0].messages[0].code, 'account_suspended');
      // its licenses stay on the server
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 1);
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/resume`)).status, 200);
      c = await checkIn(a);
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.state, 'active');
      assert.ok(await verifyLicense(c.json.license));
      r = await platform('DELETE', `/api/v1/tenants/${cust.id}?confirm=${encodeURIComponent(cust.name)}`);
      assert.ok(r.status < 300, r.text);
      c = await checkIn(a);
      assert.equal(c.json.state, 'suspended');
      assert.equal(c.json.reason, 'account_deleted');
      assert.equal((await platform('POST', `/api/v1/tenants/${cust.id}/restore`)).status, 200);
      assert.equal((await checkIn(a)).json.state, 'active');
    });

    test('FAQ 3.8, 5.8: the portal shows which method activated each server, the fulfillment numbers in use per server, and the order history', async () => {
      const o1 = await newOrder({ quantity: 2 });
      const o2 = await newOrder({ quantity: 1 });
      await activate(activation(o1, { computer_name: 'VIEW-ONLINE' }));
      await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(o2, activation(o2, { computer_name: 'VIEW-OFFLINE' })));
      const on = await adminA('GET', '/api/v1/licensing/activations?method=online');
      const off = await adminA('GET', '/api/v1/licensing/activations?method=offline');
      const v1 = on.json.items.find((a) => a.computer_name === 'VIEW-ONLINE');
      const v2 = off.json.items.find((a) => a.computer_name === 'VIEW-OFFLINE');
      assert.equal(v1.method, 'online');
      assert.equal(v1.fulfillment_number, o1.fulfillment_number);
      assert.equal(v2.method, 'offline');
      assert.equal(v2.fulfillment_number, o2.fulfillment_number);
      assert.ok(!on.json.items.some((a) => a.method !== 'online'));
      const hist = await adminA('GET', `/api/v1/licensing/orders?tenant_id=${mspA.id}&limit=2`);
      assert.equal(hist.status, 200, hist.text);
      assert.deepEqual(hist.json.items.map((o) => o.order_id), [o2.order_id, o1.order_id], 'newest first');
      assert.ok(hist.json.next_cursor);
      const next = await adminA('GET', `/api/v1/licensing/orders?tenant_id=${mspA.id}&limit=2&cursor=${hist.json.next_cursor}`);
      assert.equal(next.status, 200, next.text);
      assert.ok(!next.json.items.some((o) => o.order_id === o2.order_id));
    });

    test('FAQ 3.9: a subscription renewal order extends the term from the end of the renewed one', async () => {
      const sub = (months) => [{ product: 'Arcserve UDP', edition: 'Advanced', quantity: 1, license_type: 'subscription', term_months: months }];
      const first = await newOrder({ lines: sub(12) });
      const renewal = await newOrder({ lines: sub(12), renews: first.order_id });
      const end1 = Date.parse(first.lines[0].expires_at), end2 = Date.parse(renewal.lines[0].expires_at);
      const diffDays = (end2 - end1) / 86400000;
      assert.ok(diffDays >= 365 && diffDays <= 366, `extended by a year: ${diffDays}`);
      assert.equal(renewal.renews, first.order_id);
    });
  });

  describe('MSP dimension', () => {
    test('an MSP sub-allocates licenses to a customer, whose pools are listed per customer', async () => {
      const order = await newOrder({ quantity: 10 });
      const r = await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: '顧客会社A 用', quantity: 3, tenant_id: custA1.id });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.tenant_id, custA1.id);
      const mine = await adminA('GET', `/api/v1/licensing/pools?tenant_id=${custA1.id}`);
      assert.deepEqual(mine.json.items.map((p) => p.quantity), [3]);
      assertProblem(await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'x', quantity: 1, tenant_id: mspB.id }), 404, 'not_found');
    });
  });

  describe('branded mail', () => {
    test("FAQ 2.1: the registration and approval mails wear the brand of the MSP the order belongs to: its product name in the subject, its sender name, Reply-To its support address", async () => {
      let r = await platform('POST', '/api/v1/tenants', { name: uniq('Brand MSP'), kind: 'msp', parent_id: platformId });
      assert.equal(r.status, 201, r.text);
      const msp = r.json;
      r = await platform('POST', '/api/v1/tenants', { name: uniq('Brand customer'), kind: 'customer', parent_id: msp.id });
      assert.equal(r.status, 201, r.text);
      const customer = r.json;
      r = await platform('PUT', `/api/v1/tenants/${msp.id}/branding`, { product_name: 'Acme Licensing', sender_name: 'Acme Registration', support_email: 'licenses@acme.example' });
      assert.ok(r.status < 300, r.text);
      // an order of the MSP's customer: the customer has no brand of its own, the MSP's shows
      const order = await newOrder({ quantity: 2, tenant: customer.id, endUser: 'acme-buyer@example.com' });
      const email = `acme-reg-${seq}@example.com`;
      assert.equal((await activate(activation(order, { email }))).status, 201);
      const reg = mailsTo(email).at(-1);
      assert.ok(reg, 'a registration mail');
      assert.match(reg.headers.subject, /^Acme Licensing: Action required: product registration$/);
      assert.match(reg.headers.from, /Acme Registration/);
      assert.match(reg.headers['reply-to'] || '', /licenses@acme\.example/);
      assert.ok(linkIn(reg), 'the link is in the text part');
      assert.equal((await activate(activation(order, { email: `other-${email}`, computer_name: 'ACME-2' }))).status, 202);
      const appr = mailsTo('acme-buyer@example.com').at(-1);
      assert.ok(appr, 'an approval mail');
      assert.match(appr.headers.subject, /^Acme Licensing: Approval required/);
      assert.match(appr.headers.from, /Acme Registration/);
      assert.match(appr.headers['reply-to'] || '', /licenses@acme\.example/);
      // an order of an unbranded MSP keeps the platform's brand
      const plain = await newOrder({ quantity: 1 });
      const pe = `plain-${seq}@example.com`;
      assert.equal((await activate(activation(plain, { email: pe }))).status, 201);
      assert.doesNotMatch(mailsTo(pe).at(-1).headers.subject, /Acme/);
    });
  });

  describe("mail in the person's language", () => {
    const rawMail = (m) => readFileSync(join(st().dataDir, 'mail', m.name), 'utf8');
    const rawSubject = (m) => /\r\nSubject: ([^\r]*(?:\r\n[ \t][^\r]*)*)/.exec(`\r\n${rawMail(m)}`)[1];

    test('FAQ 2.1, 2.7, 2.8: an order in Japanese gets its registration mail in Japanese: RFC 2047 subject "要アクション: 製品登録", UTF-8 plain-text and HTML parts, the link clickable in HTML and written out in text', async () => {
      const order = await newOrder({ quantity: 2, language: 'ja' });
      assert.equal(order.language, 'ja');
      const email = `ja-reg-${seq}@example.com`;
      assert.equal((await activate(activation(order, { email }))).status, 201);
      const mail = mailsTo(email).at(-1);
      assert.ok(mail, 'a registration mail');
      assert.match(mail.headers.subject, /: 要アクション: 製品登録$/);
      assert.match(rawSubject(mail), /^=\?UTF-8\?B\?/, 'the subject is an RFC 2047 encoded-word');
      assert.match(rawMail(mail), /Content-Type: text\/plain; charset=utf-8/i, 'FAQ 2.7: UTF-8');
      assert.match(mail.text, /72 時間以内にライセンス アカウントの登録を確認してください。/);
      assert.match(mail.text, /登録を確認する\r\nhttps?:\/\/\S+\/licensing\/confirm\?token=/);
      assert.match(mail.html, /<html lang="ja"/);
      assert.match(mail.html, /<a href="https?:\/\/[^"]+\/licensing\/confirm\?token=[^"]+">登録を確認する<\/a>/, 'FAQ 2.8: an embedded link');
      assert.match(mail.html, /このメール アドレスで製品のアクティベーションが行われました。/);
      // the confirmation and the fresh link after 72 hours keep the language (FAQ 2.11)
      const token = linkIn(mail)[2];
      await setClock(3.01);
      try {
        assert.equal((await confirmForm(token)).status, 410);
      } finally {
        await setClock(0);
      }
      const fresh = mailsTo(email).at(-1);
      assert.notEqual(fresh.name, mail.name);
      assert.match(fresh.headers.subject, /要アクション: 製品登録$/);
      assert.match(fresh.text, /新しいリンクをお送りします。/);
    });

    test('FAQ 2.5, 2.6: in Japanese, the buyer gets "承認のお願い" with "このユーザを承認する", and the activating address a notice naming [購入ユーザ]', async () => {
      const buyer = `ja-buyer-${seq}@example.com`;
      const order = await newOrder({ quantity: 3, endUser: buyer, language: 'ja' });
      assert.equal((await activate(activation(order, { email: `ja-first-${seq}@example.com` }))).status, 201);
      const second = `ja-second-${seq}@example.com`;
      assert.equal((await activate(activation(order, { email: second, computer_name: 'OSAKA' }))).status, 202);
      const appr = mailsTo(buyer).at(-1);
      assert.match(appr.headers.subject, /: 承認のお願い: 製品のアクティベーション$/);
      assert.match(appr.text, new RegExp(`${second.replace(/\./g, '\\.')} が、オーダー ${order.order_id} をサーバ OSAKA で`));
      assert.match(appr.html, /">このユーザを承認する<\/a>/);
      const notice = mailsTo(second).at(-1);
      assert.match(notice.headers.subject, /: 承認待ち: 製品のアクティベーション$/);
      assert.match(notice.text, new RegExp(`\\[購入ユーザ\\] ${buyer.replace(/\./g, '\\.')}`));
      assert.match(notice.html, /\[購入ユーザ\]/);
    });

    test("an order without a language uses its brand's default language; an order's own language wins; the e-mail change mail follows it", async () => {
      let r = await platform('POST', '/api/v1/tenants', { name: uniq('Ja brand MSP'), kind: 'msp', parent_id: platformId });
      assert.equal(r.status, 201, r.text);
      const msp = r.json;
      r = await platform('PUT', `/api/v1/tenants/${msp.id}/branding`, { default_language: 'ja' });
      assert.ok(r.status < 300, r.text);
      const jaOrder = await newOrder({ quantity: 1, tenant: msp.id });
      assert.equal(jaOrder.language, null);
      const e1 = `brand-ja-${seq}@example.com`;
      const a = (await activate(activation(jaOrder, { email: e1 }))).json;
      assert.match(mailsTo(e1).at(-1).headers.subject, /要アクション: 製品登録$/);
      const enOrder = await newOrder({ quantity: 1, tenant: msp.id, language: 'en' });
      const e2 = `brand-en-${seq}@example.com`;
      assert.equal((await activate(activation(enOrder, { email: e2 }))).status, 201);
      assert.match(mailsTo(e2).at(-1).headers.subject, /: Action required: product registration$/);
      const e3 = `moved-ja-${seq}@example.com`;
      const c = await product('POST', `/api/v1/licensing/activations/${a.id}/email`, { email: e3 }, { 'x-activation-secret': a.activation_secret });
      assert.equal(c.status, 202, c.text);
      const change = mailsTo(e3).at(-1);
      assert.match(change.headers.subject, /要アクション: ライセンス アカウントの電子メール アドレスの確認$/);
      assert.match(change.html, />新しいメール アドレスを確認する<\/a>/);
    });

    test('FAQ 2.6: the activating address gets a notice naming the purchasing user; with no end-user e-mail it names the platform licensing address and says to contact the license desk', async () => {
      const order = await newOrder({ quantity: 2, endUser: null });
      assert.equal((await activate(activation(order, { email: `notice-first-${seq}@example.com` }))).status, 201);
      const second = `notice-second-${seq}@example.com`;
      assert.equal((await activate(activation(order, { email: second, computer_name: 'NOTICE-2' }))).status, 202);
      const notice = mailsTo(second).at(-1);
      assert.ok(notice, 'a notice to the activating address');
      assert.match(notice.headers.subject, /Approval requested: product activation$/);
      assert.match(notice.text, /Purchasing user: \S+@/);
      assert.match(notice.text, /license desk/);
      assert.doesNotMatch(notice.text, /notice-first/);
    });
  });

  describe('signing-key rotation', () => {
    test('signing-key rotation: after consolectl rotate-license-key new licenses carry the new kid, the published set holds both keys, and a license signed before still verifies offline with it', async () => {
      const order = await newOrder({ quantity: 3 });
      const before = await activate(activation(order, { computer_name: 'ROT-BEFORE' }));
      assert.equal(before.status, 201, before.text);
      const oldSet = await jwks();
      const kidOf = (jws) => JSON.parse(Buffer.from(jws.split('.')[0], 'base64url')).kid;
      const oldKid = kidOf(before.json.license);
      assert.equal(oldSet.keys[0].kid, oldKid);
      const { stdout } = await st().consolectl('rotate-license-key');
      assert.match(stdout, new RegExp(`retired license signing key ${oldKid}`));
      const after = await activate(activation(order, { computer_name: 'ROT-AFTER' }));
      assert.equal(after.status, 201, after.text);
      const newKid = kidOf(after.json.license);
      assert.notEqual(newKid, oldKid, 'the new key signs');
      const set = await jwks();
      assert.deepEqual(set.keys.map((k) => k.kid), [newKid, oldKid], 'the active key first, the retired one still published');
      // offline, with the published set only: both licenses verify; a product that kept the
      // old set verifies the old license and learns of the new kid by fetching the set again
      assert.ok(await verifyLicense(before.json.license, set));
      assert.ok(await verifyLicense(after.json.license, set));
      assert.equal(await verifyLicense(after.json.license, oldSet), null);
      // a check-in brings a license of the new key; the offline receipt too
      const c = await checkIn(before.json);
      assert.equal(kidOf(c.json.license), newKid);
      // a second rotation by command: three keys published
      await st().consolectl('rotate-license-key');
      const third = await checkIn(after.json);
      assert.equal((await jwks()).keys.length, 3);
      assert.notEqual(kidOf(third.json.license), newKid);
      assert.ok(await verifyLicense(before.json.license));
      // product keys made before a rotation still verify
      const k = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 1 });
      assert.equal(k.status, 201, k.text);
      await st().consolectl('rotate-license-key');
      const v = await adminA('POST', '/api/v1/licensing/keys/verify', { key: k.json.keys[0] });
      assert.equal(v.json.valid, true, v.text);
    });

    test('signing-key rotation: a retired key leaves the published set after the overlap (CONSOLE_LICENSE_KEY_OVERLAP_DAYS, on the licensing clock), and its licenses no longer verify', async () => {
      const order = await newOrder({ quantity: 1 });
      const a = await activate(activation(order, { computer_name: 'ROT-OVERLAP' }));
      assert.equal(a.status, 201, a.text);
      await st().consolectl('rotate-license-key');
      const set = await jwks();
      assert.ok(set.keys.length >= 2);
      assert.ok(await verifyLicense(a.json.license, set));
      try {
        await setClock(401);
        const later = await jwks();
        assert.equal(later.keys.length, 1, 'only the active key after 400 days');
        assert.equal(await verifyLicense(a.json.license, later), null);
        const c = await checkIn(a.json);
        assert.equal(c.status, 200, c.text);
        assert.ok(await verifyLicense(c.json.license, later), 'a check-in brings a license of the active key');
      } finally {
        await setClock(0);
      }
    });
  });

  describe('customer view', () => {
    test("a customer's tenant admin reads its own licensing view: the pools, orders and servers sub-allocated to it, without managing them", async () => {
      const order = await newOrder({ quantity: 6 });
      const a = (await activate(activation(order, { computer_name: 'CUST-VIEW' }))).json;
      const server = (await pools(adminA, order.order_id)).find((p) => p.activation_id === a.id);
      assert.equal((await adminA('PATCH', `/api/v1/licensing/pools/${server.id}`, { tenant_id: custA1.id })).status, 200);
      const spare = await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'spare', quantity: 2, tenant_id: custA1.id });
      assert.equal(spare.status, 201, spare.text);
      const tadmin = jsonApi(st(), (await apiClient(st(), uniq('cust-admin'), 'tenant_admin', custA1.id)).accessToken);
      const tmon = jsonApi(st(), (await apiClient(st(), uniq('cust-mon'), 'tenant_monitor', custA1.id)).accessToken);
      const mine = await tadmin('GET', '/api/v1/licensing/pools');
      assert.equal(mine.status, 200, mine.text);
      assert.deepEqual(mine.json.items.filter((p) => p.order_id === order.order_id).map((p) => p.id).sort(), [server.id, spare.json.id].sort());
      assert.ok(mine.json.items.every((p) => p.tenant_id === custA1.id), 'only its own pools');
      const orders = await tadmin('GET', `/api/v1/licensing/orders?tenant_id=${custA1.id}`);
      assert.equal(orders.status, 200, orders.text);
      assert.ok(orders.json.items.some((o) => o.order_id === order.order_id), 'the order its licenses come from');
      const servers = await tadmin('GET', '/api/v1/licensing/activations');
      assert.equal(servers.status, 200, servers.text);
      assert.deepEqual(servers.json.items.filter((x) => x.order_id === order.order_id).map((x) => x.id), [a.id]);
      // reading is not managing; the MSP's own account stays out of sight
      assertProblem(await tadmin('PATCH', `/api/v1/licensing/pools/${spare.json.id}`, { quantity: 1 }), 403, 'forbidden');
      assertProblem(await tadmin('GET', `/api/v1/licensing/orders?tenant_id=${mspA.id}`), 404, 'not_found');
      assertProblem(await tmon('GET', '/api/v1/licensing/pools'), 403, 'forbidden');
    });
  });

  describe('paging', () => {
    test('licensing lists page with limit and cursor like the other lists: next_cursor until the last page, total, and a cursor works only with the filters that issued it', async () => {
      const order = await newOrder({ quantity: 5 });
      for (let i = 0; i < 5; i++) assert.equal((await activate(activation(order, { computer_name: `PAGE-${i}` }))).status, 201);
      for (const [list, key] of [['activations', 'id'], ['pools', 'id']]) {
        const seen = [];
        let cursor = null;
        let pages = 0;
        do {
          const r = await adminA('GET', `/api/v1/licensing/${list}?order_id=${order.order_id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
          assert.equal(r.status, 200, r.text);
          assert.ok(r.json.items.length <= 2);
          assert.equal(r.json.total, list === 'activations' ? 5 : 6);
          seen.push(...r.json.items.map((x) => x[key]));
          cursor = r.json.next_cursor;
          pages++;
        } while (cursor && pages < 10);
        assert.equal(new Set(seen).size, list === 'activations' ? 5 : 6, `${list}: every item once`);
      }
      const first = await adminA('GET', `/api/v1/licensing/pools?order_id=${order.order_id}&limit=1`);
      assertProblem(await adminA('GET', `/api/v1/licensing/pools?limit=1&cursor=${first.json.next_cursor}`), 400, 'invalid_cursor');
      assertProblem(await adminA('GET', '/api/v1/licensing/pools?limit=0'), 400, 'invalid_parameter');
      const keys = await adminA('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 3 });
      assert.equal(keys.status, 201, keys.text);
      const k1 = await adminA('GET', `/api/v1/licensing/keys?order_id=${order.order_id}&limit=2`);
      const k2 = await adminA('GET', `/api/v1/licensing/keys?order_id=${order.order_id}&limit=2&cursor=${k1.json.next_cursor}`);
      assert.deepEqual([...k1.json.items, ...k2.json.items].map((k) => k.key).sort(), [...keys.json.keys].sort());
      assert.equal(k2.json.next_cursor, null);
    });
  });

  describe('FAQ 2.6 by mail', () => {
    test('FAQ 2.6: the approval mail links to a page whose "approve this user" button completes the activation', async () => {
      const order = await newOrder({ quantity: 2, endUser: 'buyer-page@example.com' });
      await activate(activation(order, { email: 'one@example.com' }));
      const second = await activate(activation(order, { email: 'two@example.com', computer_name: 'TWO' }));
      assert.equal(second.status, 202, second.text);
      const link = linkIn(mailsTo('buyer-page@example.com').at(-1));
      assert.equal(link[1], 'approve');
      const pageR = await product('GET', `/licensing/approve?token=${link[2]}`);
      assert.equal(pageR.status, 200, pageR.text);
      assert.match(pageR.headers.get('content-type'), /^text\/html/);
      assert.match(pageR.text, /two@example\.com/);
      assert.match(pageR.text, /<form method="post" action="\/licensing\/approve">/);
      assert.equal(pageR.headers.get('x-frame-options'), 'DENY');
      const posted = await st().request('/licensing/approve', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${link[2]}&decision=approve`,
      });
      assert.equal(posted.status, 200, posted.text);
      assert.match(posted.text, /approved/i);
      assert.equal((await checkIn(second.json)).json.state, 'active');
      const again = await product('GET', `/licensing/approve?token=${link[2]}`);
      assert.equal(again.status, 409);
      // the approved user gets the registration mail
      assert.ok(mailsTo('two@example.com').some((m) => /registration/i.test(m.headers.subject)));
    });
  });

  describe('MSP usage', () => {
    test("an MSP moves a server's licenses to its customer and the customer's use shows in the usage report", async () => {
      const order = await newOrder({ quantity: 5 });
      const a = (await activate(activation(order, { computer_name: 'CUST-SRV' }))).json;
      const pool = (await pools(adminA, order.order_id)).find((p) => p.activation_id === a.id);
      let r = await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { tenant_id: custA1.id });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.tenant_id, custA1.id);
      r = await adminA('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'reserve', quantity: 2, tenant_id: custA1.id });
      assert.equal(r.status, 201, r.text);
      const u = await adminA('GET', `/api/v1/licensing/usage?parent_id=${mspA.id}`);
      assert.equal(u.status, 200, u.text);
      const row = u.json.items.find((i) => i.tenant_id === custA1.id);
      assert.ok(row, u.text);
      assert.equal(row.tenant_name, '顧客会社A');
      assert.ok(row.in_use >= 1 && row.allocated >= 2, u.text);
      assertProblem(await adminB('GET', `/api/v1/licensing/usage?parent_id=${mspA.id}`), 404, 'not_found');
      assertProblem(await adminA('PATCH', `/api/v1/licensing/pools/${pool.id}`, { tenant_id: mspB.id }), 404, 'not_found');
    });
  });

  describe('bad input', () => {
    test('an unknown order and a wrong fulfillment number give the same 404 order_not_found', async () => {
      const order = await newOrder({ quantity: 1 });
      const unknown = await activate(activation({ order_id: uniq('NOPE'), fulfillment_number: order.fulfillment_number }));
      const wrong = await activate(activation({ order_id: order.order_id, fulfillment_number: 'WRONG-FN' }));
      assertProblem(unknown, 404, 'order_not_found');
      assertProblem(wrong, 404, 'order_not_found');
      for (const k of ['title', 'detail', 'type']) assert.equal(unknown.json[k], wrong.json[k]);
    });

    test('repeated wrong fulfillment numbers for one order are refused for a while (429 too_many_attempts)', async () => {
      const order = await newOrder({ quantity: 1 });
      for (let i = 0; i < 10; i++)
        assertProblem(await activate(activation({ order_id: order.order_id, fulfillment_number: `GUESS-${i}` })), 404, 'order_not_found');
      assertProblem(await activate(activation(order)), 429, 'too_many_attempts');
      try {
        await setClock(0.02);
        assert.equal((await activate(activation(order))).status, 201, 'the window passes');
      } finally {
        await setClock(0);
      }
    });

    test('absurd fingerprint fields are refused: missing, too long, control characters, wrong types, not a GUID', async () => {
      const order = await newOrder({ quantity: 1 });
      const bad = [
        { bios_serial: 'x'.repeat(129), cpu_id: 'a', machine_guid: randomUUID() },
        { bios_serial: 'a\u0007b', cpu_id: 'a', machine_guid: randomUUID() },
        { bios_serial: 'ｂｉｏｓ', cpu_id: 'a', machine_guid: randomUUID() },
        { bios_serial: 'a', cpu_id: 42, machine_guid: randomUUID() },
        { bios_serial: 'a', cpu_id: 'b', machine_guid: "'; DROP TABLE licensing.orders; --" },
        { bios_serial: 'a', cpu_id: 'b' },
        'fingerprint',
        [],
      ];
      for (const fp of bad) assertProblem(await activate(activation(order, { fingerprint: fp })), 400, 'validation_failed');
      assertProblem(await activate(activation(order, { computer_name: 'x'.repeat(64) })), 400, 'validation_failed');
      assertProblem(await activate(activation(order, { email: 'not an email' })), 400, 'validation_failed');
      assertProblem(await activate('{"order_id": '), 400, 'malformed_json');
      assertProblem(await st().request('/api/v1/licensing/activations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }), 400, 'invalid_utf8');
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 1, 'nothing was taken');
    });

    test('a tampered request file fails its integrity check; a tampered license fails its signature', async () => {
      const order = await newOrder({ quantity: 2 });
      const file = requestFile(order, activation(order));
      const other = JSON.parse(Buffer.from(file.request, 'base64url'));
      other.computer_name = 'SOMEONE-ELSE';
      const tampered = { ...file, request: Buffer.from(JSON.stringify(other)).toString('base64url') };
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', tampered), 422, 'request_file_invalid');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', requestFile(order, activation(order), 'guessed-key')), 422, 'request_file_invalid');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', { format: 'console-license-request/1', request: '!!', mac: 'x' }), 422, 'request_file_invalid');
      assertProblem(await adminA('POST', '/api/v1/licensing/offline-requests', { hello: 1 }), 422, 'request_file_invalid');
      const ok = await adminA('POST', '/api/v1/licensing/offline-requests', file);
      assert.equal(ok.status, 201, ok.text);
      const [h, p, sig] = ok.json.response_file.license.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url'));
      payload.products[0].quantity = 1000;
      const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
      assert.equal(await verifyLicense(forged), null, 'the product rejects it');
      assert.ok(await verifyLicense(ok.json.response_file.license));
    });

    test('check-in and deactivation need the activation secret; approval tokens are single-use', async () => {
      const order = await newOrder({ quantity: 2 });
      const a = (await activate(activation(order))).json;
      assertProblem(await checkIn(a, 'wrong'), 401, 'activation_secret_invalid');
      assertProblem(await product('POST', `/api/v1/licensing/activations/${a.id}/check-in`), 401, 'activation_secret_invalid');
      assertProblem(await checkIn({ id: randomUUID(), activation_secret: a.activation_secret }), 401, 'activation_secret_invalid');
      assertProblem(await product('DELETE', `/api/v1/licensing/activations/${a.id}`, undefined, { 'x-activation-secret': 'nope' }), 401, 'activation_secret_invalid');
      assertProblem(await product('DELETE', `/api/v1/licensing/activations/${a.id}`), 401, 'unauthorized');
    });
  });

  describe('concurrency', () => {
    test('concurrent activations of one order never take more licenses than it has, and one machine activates once', async () => {
      const order = await newOrder({ quantity: 5 });
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => activate(activation(order, { computer_name: `PAR-${i}` }))));
      const by = (st_) => rs.filter((r) => r.status === st_).length;
      assert.equal(by(201), 5, rs.map((r) => r.status).join(','));
      assert.equal(by(409), 15);
      for (const r of rs.filter((x) => x.status === 409)) assertProblem(r, 409, 'no_licenses_available');
      assert.equal((await defaultPool(adminA, order.order_id)).quantity, 0);
      const twin = await newOrder({ quantity: 3 });
      const body = activation(twin);
      const both = await Promise.all([activate(body), activate(body)]);
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 201]);
      assert.equal(both[0].json.id, both[1].json.id);
      assert.equal((await defaultPool(adminA, twin.order_id)).quantity, 2);
    });
  });

  describe('isolation', () => {
    test("another MSP's admin sees none of your orders, pools, activations or keys, and cannot change them", async () => {
      const order = await newOrder({ quantity: 3 });
      const a = (await activate(activation(order))).json;
      const pool = (await pools(adminA, order.order_id)).find((p) => p.activation_id === a.id);
      // an order, or an account, of another MSP is not found, as in every other list
      assertProblem(await adminB('GET', `/api/v1/licensing/pools?order_id=${order.order_id}`), 404, 'not_found');
      assertProblem(await adminB('GET', `/api/v1/licensing/activations?order_id=${order.order_id}`), 404, 'not_found');
      assertProblem(await adminB('GET', `/api/v1/licensing/keys?order_id=${order.order_id}`), 404, 'not_found');
      assertProblem(await adminB('GET', `/api/v1/licensing/orders?tenant_id=${mspA.id}`), 404, 'not_found');
      assertProblem(await adminB('GET', `/api/v1/licensing/pools?tenant_id=${mspA.id}`), 404, 'not_found');
      assert.ok(!(await adminB('GET', '/api/v1/licensing/orders')).json.items.some((o) => o.order_id === order.order_id));
      assertProblem(await adminB('GET', `/api/v1/licensing/orders/${order.id}`), 404, 'not_found');
      assertProblem(await adminB('PATCH', `/api/v1/licensing/pools/${pool.id}`, { quantity: 2 }), 404, 'not_found');
      assertProblem(await adminB('POST', `/api/v1/licensing/pools/${pool.id}/release`), 404, 'not_found');
      assertProblem(await adminB('DELETE', `/api/v1/licensing/activations/${a.id}`), 404, 'not_found');
      assertProblem(await adminB('POST', '/api/v1/licensing/pools', { order_id: order.order_id, name: 'steal', quantity: 1 }), 404, 'order_not_found');
      assertProblem(await adminB('POST', '/api/v1/licensing/keys', { order_id: order.order_id, product: 'Arcserve UDP', version: '7.0', quantity: 1 }), 422, 'product_not_in_order');
      assertProblem(await adminB('POST', '/api/v1/licensing/offline-requests', requestFile(order, activation(order))), 404, 'order_not_found');
      assertProblem(await adminA('POST', '/api/v1/licensing/orders', { order_id: 'X1', fulfillment_number: 'Y1', tenant_id: mspA.id, lines: [{ product: 'p', edition: 'e', quantity: 1, license_type: 'perpetual' }] }), 403, 'forbidden');
      // the owner still can
      const d = await adminA('DELETE', `/api/v1/licensing/activations/${a.id}`);
      assert.equal(d.status, 200, d.text);
    });
  });
});
