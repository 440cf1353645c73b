// SMS and voice-call factors through the gateway, with a local receiver standing in for
// the provider: it checks each webhook call's HMAC-SHA256 signature (X-Console-Timestamp
// and X-Console-Signature over "<timestamp>.<body>") and keeps the codes, so the test
// reads them back as a phone would. Enrolment and sign-in with sms and with voice (a
// Japanese user gets Japanese), a replayed code refused, the wrong-code limit, the rate
// limits per user and per number, and a provider that fails or hangs.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { useStack } from './lib/stack.mjs';
import { assertProblem, jsonApi } from './lib/api.mjs';
import { activateWithTotp, postJson, sha256hex, sql, stageUser, userTokens } from './lib/identity.mjs';

const SECRET = randomBytes(33).toString('base64url');
const receiver = { mode: 'ok', calls: [], badSignatures: 0 };
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const ts = req.headers['x-console-timestamp'] || '';
    const sig = req.headers['x-console-signature'] || '';
    const want = 'v1=' + createHmac('sha256', SECRET).update(`${ts}.`).update(body).digest('hex');
    const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
    if (!fresh || sig.length !== want.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(want))) {
      receiver.badSignatures++;
      res.writeHead(401).end();
      return;
    }
    if (receiver.mode === 'hang') return; // never answers: the console must time out
    if (receiver.mode === 'fail') {
      res.writeHead(500).end('provider down');
      return;
    }
    receiver.calls.push({ headers: req.headers, json: JSON.parse(body.toString('utf8')) });
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
after(() => {
  server.closeAllConnections();
  server.close();
});

const s = useStack({
  env: {
    CONSOLE_SMS_WEBHOOK_URL: `http://127.0.0.1:${server.address().port}/sms`,
    CONSOLE_SMS_WEBHOOK_SECRET: SECRET,
    CONSOLE_SMS_TIMEOUT_MS: '1000',
    CONSOLE_SMS_RESEND_SECONDS: '0', // the gap itself is a unit test (tests/unit/identity/phone.c)
    CONSOLE_SMS_MAX_PER_USER: '6',
    CONSOLE_SMS_MAX_PER_NUMBER: '8',
  },
});
const st = () => s.stack;

const newNumber = () => `+8190${String(randomInt(0, 1e8)).padStart(8, '0')}`;
/** The last code the receiver got for number (and the whole call). */
function lastCall(number) {
  const c = receiver.calls.filter((x) => x.json.to === number).at(-1);
  assert.ok(c, `a code was delivered to ${number}`);
  return c;
}
const callsTo = (number) => receiver.calls.filter((x) => x.json.to === number).length;

/** Activation with a phone factor: returns {account, factorId}. */
async function activateWithPhone(type, number, opts = {}) {
  const staged = await stageUser(st(), opts);
  const a = await postJson(st(), '/api/v1/authn/activate', {
    activation_token: staged.token, password: 'Violet-Harbor-42', recovery_question: 'First pet?', recovery_answer: 'A cat named Tama',
  });
  assert.equal(a.status, 200, a.text);
  assert.ok(a.json.enroll.some((e) => e.type === type), `${type} is offered: ${a.text}`);
  const e = await postJson(st(), '/api/v1/authn/factors', { state_token: a.json.state_token, type, phone_number: number });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.status, 'PENDING_ACTIVATION');
  const call = lastCall(number);
  assert.equal(call.json.channel, type);
  assert.match(call.json.code, /^\d{6}$/);
  // stored as a keyed hash only: neither the code nor its plain SHA-256
  const stored = await sql(st(), `SELECT code_hash FROM identity.email_codes WHERE factor_id = :'p1'`, [e.json.id]);
  assert.match(stored, /^[0-9a-f]{64}$/);
  assert.notEqual(stored, sha256hex(`${e.json.id}:${call.json.code}`));
  const v = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/activate`, { state_token: a.json.state_token, pass_code: call.json.code });
  assert.equal(v.status, 200, v.text);
  assert.equal(v.json.status, 'SUCCESS');
  return { account: { ...staged, password: 'Violet-Harbor-42' }, factorId: e.json.id };
}

async function mfaRequired(account) {
  const r = await postJson(st(), '/api/v1/authn', { username: account.username, password: account.password });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'MFA_REQUIRED');
  return r.json;
}
const challenge = (tx, factorId) => postJson(st(), `/api/v1/authn/factors/${factorId}/verify`, { state_token: tx.state_token });
const verify = (tx, factorId, code) => postJson(st(), `/api/v1/authn/factors/${factorId}/verify`, { state_token: tx.state_token, pass_code: code });

describe('phone factors', () => {
  test('sms: enrol with a number, sign in with a code sent by the signed webhook', async () => {
    const number = newNumber();
    const { account, factorId } = await activateWithPhone('sms', number);
    const enrol = lastCall(number);
    assert.equal(enrol.json.lang, 'en');
    assert.equal(enrol.json.product_name, 'Console');
    assert.match(enrol.json.message, new RegExp(`^Console: your verification code is ${enrol.json.code}\\.`));
    assert.equal(enrol.json.user_id, account.id);
    assert.match(enrol.headers['x-console-delivery'], /^[0-9a-f-]{36}$/);
    assert.equal(receiver.badSignatures, 0);
    const factors = await sql(st(), `SELECT type || ' ' || status || ' ' || (profile->>'phone') FROM identity.factors WHERE id = :'p1'`, [factorId]);
    assert.equal(factors, `sms active ${number}`);

    const tx = await mfaRequired(account);
    assert.deepEqual(tx.factors.map((f) => f.type), ['sms']);
    const c = await challenge(tx, factorId);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'MFA_CHALLENGE');
    const code = lastCall(number).json.code;
    const ok = await verify(tx, factorId, code);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'SUCCESS');
    const audit = await sql(st(), `SELECT details->>'factor_type' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' ORDER BY at DESC LIMIT 1`, [account.id]);
    assert.equal(audit, 'sms');
    // the code is gone after use: replayed on the next sign-in it is refused
    const tx2 = await mfaRequired(account);
    assertProblem(await verify(tx2, factorId, code), 403, 'invalid_pass_code');
    // an older code stops working when a new one is sent
    assert.equal((await challenge(tx2, factorId)).status, 200);
    const fresh = lastCall(number).json.code;
    assert.equal((await challenge(tx2, factorId)).status, 200);
    const newest = lastCall(number).json.code;
    if (fresh !== newest) assertProblem(await verify(tx2, factorId, fresh), 403, 'invalid_pass_code');
    const ok2 = await verify(tx2, factorId, newest);
    assert.equal(ok2.status, 200, ok2.text);
  });

  test('voice: a Japanese user gets the call in Japanese, digits one by one', async () => {
    const number = newNumber();
    const { account, factorId } = await activateWithPhone('voice', number, { language: 'ja' });
    const call = lastCall(number);
    assert.equal(call.json.channel, 'voice');
    assert.equal(call.json.lang, 'ja');
    assert.ok(call.json.message.includes(call.json.code.split('').join('、')), call.json.message);
    assert.ok(call.json.message.startsWith('Console です。'), call.json.message);
    const tx = await mfaRequired(account);
    assert.deepEqual(tx.factors.map((f) => f.type), ['voice']);
    assert.equal((await challenge(tx, factorId)).status, 200);
    const ok = await verify(tx, factorId, lastCall(number).json.code);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'SUCCESS');
  });

  test('wrong codes: five end the sign-in, and the code dies with them', async () => {
    const number = newNumber();
    const { account, factorId } = await activateWithPhone('sms', number);
    const tx = await mfaRequired(account);
    assert.equal((await challenge(tx, factorId)).status, 200);
    const code = lastCall(number).json.code;
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 4; i++) assertProblem(await verify(tx, factorId, wrong), 403, 'invalid_pass_code');
    assertProblem(await verify(tx, factorId, wrong), 429, 'too_many_attempts');
    assertProblem(await verify(tx, factorId, code), 429, 'too_many_attempts');
    // a new sign-in: the guessed-at code is dead, a fresh one works
    const tx2 = await mfaRequired(account);
    assertProblem(await verify(tx2, factorId, code), 403, 'invalid_pass_code');
    assert.equal((await challenge(tx2, factorId)).status, 200);
    const ok = await verify(tx2, factorId, lastCall(number).json.code);
    assert.equal(ok.status, 200, ok.text);
    await sql(st(), `UPDATE identity.credentials SET failed_count = 0 WHERE user_id = :'p1'`, [account.id]);
  });

  test('rate limits: per user and per number, a clear 429 with Retry-After', async () => {
    const number = newNumber();
    const { account, factorId } = await activateWithPhone('sms', number); // 1 code
    const tx = await mfaRequired(account);
    for (let i = 0; i < 5; i++) assert.equal((await challenge(tx, factorId)).status, 200); // 6 codes
    const r = await challenge(tx, factorId);
    assertProblem(r, 429, 'sms_rate_limited');
    assert.equal(r.json.limit, 'user');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal(callsTo(number), 6);

    // one number shared by two users: the number's cap (8 an hour) holds across users
    const shared = newNumber();
    const a = await activateWithPhone('sms', shared); // 1
    const b = await activateWithPhone('sms', shared); // 2
    const ta = await mfaRequired(a.account);
    for (let i = 0; i < 3; i++) assert.equal((await challenge(ta, a.factorId)).status, 200); // 5
    const tb = await mfaRequired(b.account);
    for (let i = 0; i < 3; i++) assert.equal((await challenge(tb, b.factorId)).status, 200); // 8
    const rb = await challenge(tb, b.factorId);
    assertProblem(rb, 429, 'sms_rate_limited');
    assert.equal(rb.json.limit, 'number');
    // enrolling the number for a third user is refused as well, and creates no factor
    const staged = await stageUser(st());
    const act = await postJson(st(), '/api/v1/authn/activate', {
      activation_token: staged.token, password: 'Violet-Harbor-42', recovery_question: 'First pet?', recovery_answer: 'A cat named Tama',
    });
    const e = await postJson(st(), '/api/v1/authn/factors', { state_token: act.json.state_token, type: 'voice', phone_number: shared });
    assertProblem(e, 429, 'sms_rate_limited');
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.factors WHERE user_id = :'p1'`, [staged.id]), '0');
  });

  test('a failing or hanging provider: 502 sms_delivery_failed, without waiting forever', async () => {
    const number = newNumber();
    const { account, factorId } = await activateWithPhone('sms', number);
    const tx = await mfaRequired(account);
    receiver.mode = 'fail';
    try {
      const r = await challenge(tx, factorId);
      assertProblem(r, 502, 'sms_delivery_failed');
      assert.equal(r.json.factor_id, factorId);
      receiver.mode = 'hang';
      const t0 = Date.now();
      assertProblem(await challenge(tx, factorId), 502, 'sms_delivery_failed');
      assert.ok(Date.now() - t0 < 4000, 'the provider timeout (1 s) bounds the wait');
    } finally {
      receiver.mode = 'ok';
    }
    assert.equal((await challenge(tx, factorId)).status, 200);
    const ok = await verify(tx, factorId, lastCall(number).json.code);
    assert.equal(ok.status, 200, ok.text);
    const logs = st().logs('identity');
    assert.ok(!logs.includes(number), 'the number is not logged');
    for (const c of receiver.calls.filter((x) => x.json.to === number)) assert.ok(!logs.includes(c.json.code), 'no code is logged');
  });

  test('bad input at enrolment', async () => {
    const staged = await stageUser(st());
    const act = await postJson(st(), '/api/v1/authn/activate', {
      activation_token: staged.token, password: 'Violet-Harbor-42', recovery_question: 'First pet?', recovery_answer: 'A cat named Tama',
    });
    const state = act.json.state_token;
    const enrol = (body) => postJson(st(), '/api/v1/authn/factors', { state_token: state, ...body });
    for (const body of [
      { type: 'sms' },
      { type: 'voice', phone_number: '090-1234-5678' },
      { type: 'sms', phone_number: '+0901234567' },
      { type: 'sms', phone_number: '+81 90 1234 5678' },
      { type: 'sms', phone_number: 819012345678 },
      { type: 'totp', phone_number: '+819012345678' },
    ]) {
      const r = await enrol(body);
      assertProblem(r, 400, 'validation_failed');
      assert.equal(r.json.errors[0].field, 'phone_number', r.text);
    }
    assertProblem(await enrol({ type: 'sms', phone_number: '+819012345678', profile: {} }), 400, 'unknown_field');
  });

  test('a signed-in user adds an sms factor through /api/v1/me/factors', async () => {
    const account = await activateWithTotp(st(), await stageUser(st()));
    const me = jsonApi(st(), (await userTokens(st(), account)).access_token);
    assertProblem(await me('POST', '/api/v1/me/factors', { type: 'sms' }), 400, 'validation_failed');
    const number = newNumber();
    const r = await me('POST', '/api/v1/me/factors', { type: 'sms', phone_number: number });
    assert.equal(r.status, 201, r.text);
    assertProblem(await me('POST', `/api/v1/me/factors/${r.json.id}/activate`, { pass_code: '12345x' }), 403, 'invalid_pass_code');
    const a = await me('POST', `/api/v1/me/factors/${r.json.id}/activate`, { pass_code: lastCall(number).json.code });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.status, 'active');
    const list = await me('GET', '/api/v1/me/factors');
    assert.deepEqual(list.json.items.map((f) => f.type).sort(), ['sms', 'totp']);
  });
});
