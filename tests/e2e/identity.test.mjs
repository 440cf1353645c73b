// Identity end to end, through the real gateway: activation (bootstrap link and mailed
// links), password policy, TOTP enrolment, sign-in with MFA, the authorization code flow
// with PKCE, refresh-token rotation, revocation, introspection and logout, the certified
// relying-party library openid-client against the stack, and the attacks of the issue.
// Staged users are inserted into users.users directly (tests/e2e/lib/identity.mjs) until
// the users service exists.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import * as oidc from 'openid-client';
import { useStack, waitFor } from './lib/stack.mjs';
import {
  FORM, GOOD_PASSWORD, activateWithTotp, b64url, basic, currentStep, decodeJwt, nextTotp, pkce,
  postJson, readMails, registerClient, signIn, sql, stageUser, totpAt,
} from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;

function assertProblem(r, status, code) {
  assert.equal(r.status, status, `status (body: ${r.text})`);
  assert.ok(r.json, `JSON body: ${r.text}`);
  assert.equal(r.json.code, code, `code (body: ${r.text})`);
  assert.equal(typeof r.json.request_id, 'string');
}

function authorizeUrl(params) {
  const u = new URL('/oauth2/authorize', st().url);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}
const noFollow = (url) => st().fetch(url, { redirect: 'manual' });
const webRedirect = () => `${st().url}/console/callback`;

/** session token -> code for console-web (public client, PKCE). */
async function codeFor(sessionToken, extra = {}) {
  const p = pkce();
  const r = await noFollow(
    authorizeUrl({
      response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(),
      scope: 'openid profile email offline_access', state: 'st-1', nonce: 'n-1',
      code_challenge: p.challenge, code_challenge_method: 'S256', session_token: sessionToken, ...extra,
    }),
  );
  assert.equal(r.status, 302, await r.text());
  const loc = new URL(r.headers.get('location'));
  return { loc, verifier: p.verifier, code: loc.searchParams.get('code') };
}

/** A new active user with TOTP (each test its own: a TOTP step is accepted once). */
const fresh = async (opts = {}) => activateWithTotp(st(), await stageUser(st(), opts));

function tokenRequest(body, headers = {}) {
  return st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': FORM, ...headers }, body: new URLSearchParams(body).toString() });
}
const exchange = (code, verifier) =>
  tokenRequest({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: verifier, redirect_uri: webRedirect() });

describe('activation and sign-in through the authentication API', () => {
  let admin;

  test('the bootstrap admin activates with the printed link: policy, TOTP enrolment, SUCCESS', async () => {
    const link = /activation link[^:]*: (\S+)/.exec(st().bootstrapOutput)?.[1];
    assert.ok(link, st().bootstrapOutput);
    const token = new URL(link).searchParams.get('token');
    const weak = [
      ['short1A', 'too_short'],
      ['alllowercase1', 'uppercase_required'],
      ['ALLUPPERCASE1', 'lowercase_required'],
      ['NoDigitsHere', 'digit_required'],
      ['Admin-Secret-9', 'contains_username'],
      ['Password123', 'common_password'],
    ];
    for (const [password, code] of weak) {
      const r = await postJson(st(), '/api/v1/authn/activate', { activation_token: token, password, recovery_question: 'Q?', recovery_answer: 'answer' });
      assertProblem(r, 400, 'validation_failed');
      assert.ok(r.json.errors.some((e) => e.field === 'password' && e.code === code), `${password}: ${r.text}`);
    }
    const unknown = await postJson(st(), '/api/v1/authn/activate', { activation_token: token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer', extra: 1 });
    assertProblem(unknown, 400, 'unknown_field');

    const staged = { id: null, username: 'admin@localhost', token };
    const a = await postJson(st(), '/api/v1/authn/activate', { activation_token: token, password: GOOD_PASSWORD, recovery_question: 'First school?', recovery_answer: '  Sakura   Elementary ' });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.status, 'MFA_ENROLL');
    assert.equal(typeof a.json.state_token, 'string');
    assert.deepEqual(a.json.enroll.map((f) => f.type).sort(), ['email', 'totp', 'webauthn']);
    // the link is single-use
    const again = await postJson(st(), '/api/v1/authn/activate', { activation_token: token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer' });
    assertProblem(again, 400, 'activation_token_invalid');
    // not yet active: MFA enrolment is mandatory
    assert.equal(await sql(st(), "SELECT status FROM users.users WHERE username = 'admin@localhost'"), 'staged');

    const unsupported = await postJson(st(), '/api/v1/authn/factors', { state_token: a.json.state_token, type: 'sms' });
    assertProblem(unsupported, 400, 'factor_not_supported');
    const e = await postJson(st(), '/api/v1/authn/factors', { state_token: a.json.state_token, type: 'totp' });
    assert.equal(e.status, 200, e.text);
    assert.match(e.json.secret, /^[A-Z2-7]{32}$/);
    const uri = new URL(e.json.otpauth_uri);
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.searchParams.get('secret'), e.json.secret);
    assert.equal(uri.searchParams.get('digits'), '6');
    // the seed is sealed at rest, never stored in clear
    const sealed = await sql(st(), "SELECT secret_sealed FROM identity.factors WHERE id = :'p1'", [e.json.id]);
    assert.match(sealed, /^v1\./);
    assert.ok(!sealed.includes(e.json.secret));

    admin = { ...staged, password: GOOD_PASSWORD, secret: e.json.secret, factorId: e.json.id, lastStep: -1 };
    const wrong = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/activate`, { state_token: a.json.state_token, pass_code: '000000' === totpAt(admin.secret, currentStep()) ? '111111' : '000000' });
    assertProblem(wrong, 403, 'invalid_pass_code');
    const ok = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/activate`, { state_token: a.json.state_token, pass_code: await nextTotp(admin) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'SUCCESS');
    assert.match(ok.json.session_token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await sql(st(), "SELECT status FROM users.users WHERE username = 'admin@localhost'"), 'active');
    // secrets at rest: argon2id for the password and the recovery answer
    const cred = await sql(st(), "SELECT password_hash || ' ' || recovery_answer_hash FROM identity.credentials c JOIN users.users u ON u.id = c.user_id WHERE u.username = 'admin@localhost'");
    assert.match(cred, /^\$argon2id\$v=19\$m=19456,t=10,p=1\$\S+ \$argon2id\$/);
  });

  test('sign-in: password -> MFA_REQUIRED -> TOTP -> session token; /api/v1/me with the user token', async () => {
    const r = await postJson(st(), '/api/v1/authn', { username: 'ADMIN@localhost', password: GOOD_PASSWORD });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'MFA_REQUIRED');
    assert.deepEqual(r.json.factors.map((f) => f.type), ['totp']);
    const v = await postJson(st(), `/api/v1/authn/factors/${r.json.factors[0].id}/verify`, { state_token: r.json.state_token, pass_code: await nextTotp(admin) });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.status, 'SUCCESS');
    const { code, verifier, loc } = await codeFor(v.json.session_token);
    assert.equal(loc.origin + loc.pathname, webRedirect());
    assert.equal(loc.searchParams.get('state'), 'st-1');
    assert.equal(loc.searchParams.get('iss'), st().url);
    const t = await exchange(code, verifier);
    assert.equal(t.status, 200, t.text);
    const at = decodeJwt(t.json.access_token);
    assert.equal(at.kind, 'user');
    assert.equal(at.iss, st().url);
    assert.deepEqual(at.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(typeof at.tid, 'string');
    const me = await st().request('/api/v1/me', { auth: t.json.access_token });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.kind, 'user');
    assert.equal(me.json.email, 'admin@localhost');
    assert.equal(me.json.id, at.sub);
  });

  test('an expired activation link says so and mails a fresh one (Japanese, text and HTML)', async () => {
    const staged = await stageUser(st(), { language: 'ja', first: '花子', last: '山田', expired: true });
    const before = readMails(st()).length;
    const r = await postJson(st(), '/api/v1/authn/activate', { activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer' });
    assertProblem(r, 410, 'activation_token_expired');
    const mails = readMails(st()).slice(before);
    const mail = mails.find((m) => m.headers.to?.includes(staged.username));
    assert.ok(mail, `a mail to ${staged.username}`);
    assert.match(mail.headers.subject, /有効/);
    assert.match(mail.text, /山田 花子 様/);
    assert.match(mail.html, /<a href="/);
    const link = /(http\S+\/activate\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    assert.ok(link, mail.text);
    assert.ok(link.startsWith(st().url));
    // the old link is gone, the new one works
    const old = await postJson(st(), '/api/v1/authn/activate', { activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer' });
    assertProblem(old, 400, 'activation_token_invalid');
    const account = await activateWithTotp(st(), { ...staged, token: new URL(link).searchParams.get('token') });
    assert.ok(account.sessionToken);
  });

  test('a user.created event of the users service mails an activation link (72 h) that works', async () => {
    const id = (await sql(st(), 'SELECT gen_random_uuid()'));
    const username = `evented-${randomBytes(3).toString('hex')}@example.com`;
    await sql(
      st(),
      `INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email, first_name, last_name, language, created_by)
       SELECT :'p1', id, msp_id, :'p2', :'p2', 'Eve', 'Vented', 'en', 'e2e' FROM tenants.tenants WHERE kind = 'platform';
       INSERT INTO users.outbox (type, aggregate_id, payload) VALUES ('user.created', :'p1', '{}');`,
      [id, username],
    );
    const mail = await waitFor(() => readMails(st()).find((m) => m.headers.to?.includes(username)), { what: 'the activation mail', timeout: 15000 });
    assert.match(mail.headers.subject, /Activate/);
    assert.match(mail.text, /Hello Eve/);
    assert.match(mail.html, /<a href="http/);
    const link = /(http\S+\/activate\?token=[A-Za-z0-9_-]+)/.exec(mail.text)[1];
    assert.equal(await sql(st(), "SELECT round(extract(epoch FROM expires_at - created_at) / 3600) FROM identity.activation_tokens WHERE user_id = :'p1'", [id]), '72');
    const account = await activateWithTotp(st(), { id, username, token: new URL(link).searchParams.get('token') });
    assert.ok(await signIn(st(), account));
  });

  test('the email factor: enrolment mails a code, activation with it, verify sends a fresh one', async () => {
    const staged = await stageUser(st());
    const a = await postJson(st(), '/api/v1/authn/activate', { activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'answer' });
    assert.equal(a.status, 200, a.text);
    const count = readMails(st()).length;
    const e = await postJson(st(), '/api/v1/authn/factors', { state_token: a.json.state_token, type: 'email' });
    assert.equal(e.status, 200, e.text);
    const mail = readMails(st()).slice(count).find((m) => m.headers.to?.includes(staged.username));
    const code = /code is (\d{6})/.exec(mail.text)?.[1];
    assert.ok(code, mail.text);
    const v = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/activate`, { state_token: a.json.state_token, pass_code: code });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.status, 'SUCCESS');
    // later sign-in: a challenge mails a new code, which verifies once
    const r = await postJson(st(), '/api/v1/authn', { username: staged.username, password: GOOD_PASSWORD });
    assert.equal(r.json.status, 'MFA_REQUIRED', r.text);
    const n = readMails(st()).length;
    const c = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/verify`, { state_token: r.json.state_token });
    assert.equal(c.json.status, 'MFA_CHALLENGE', c.text);
    // a second challenge within 30 s is refused (the challenge cannot flood a mailbox)
    const early = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/verify`, { state_token: r.json.state_token });
    assertProblem(early, 429, 'rate_limited');
    assert.equal(early.headers.get('retry-after'), '30');
    const code2 = /code is (\d{6})/.exec(readMails(st()).slice(n).find((m) => m.headers.to?.includes(staged.username)).text)[1];
    const ok = await postJson(st(), `/api/v1/authn/factors/${e.json.id}/verify`, { state_token: r.json.state_token, pass_code: code2 });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'SUCCESS');
  });
});

describe('forgotten password: the mailed link AND the recovery answer, then MFA still', () => {
  test('recovery: same answer for unknown users, question shown, wrong answer counted, new password, factor still required', async () => {
    const account = await fresh();
    const before = readMails(st()).length;
    const r = await postJson(st(), '/api/v1/authn/recovery/password', { username: account.username });
    const unknown = await postJson(st(), '/api/v1/authn/recovery/password', { username: 'nobody-at-all@example.com' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, unknown.json);
    assert.equal(r.json.status, 'RECOVERY_CHALLENGE');
    // a second request within a minute sends nothing more
    await postJson(st(), '/api/v1/authn/recovery/password', { username: account.username });
    const mails = readMails(st()).slice(before).filter((m) => m.headers.to?.includes(account.username));
    assert.equal(mails.length, 1);
    assert.equal(readMails(st()).slice(before).length, 1, 'no mail for the unknown user');
    const token = new URL(/(http\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(mails[0].text)[1]).searchParams.get('token');

    const q = await postJson(st(), '/api/v1/authn/recovery/verify', { recovery_token: token });
    assert.equal(q.status, 200, q.text);
    assert.equal(q.json.recovery_question, 'First pet?');
    assert.equal(q.json.security_image, 'owl');
    const NEW = 'Second-Harbor-77';
    const wrong = await postJson(st(), '/api/v1/authn/recovery/reset', { recovery_token: token, recovery_answer: 'a dog', password: NEW });
    assertProblem(wrong, 403, 'recovery_answer_wrong');
    const weak = await postJson(st(), '/api/v1/authn/recovery/reset', { recovery_token: token, recovery_answer: 'a cat named tama', password: 'weakpassword' });
    assertProblem(weak, 400, 'validation_failed');
    // the answer is normalized (case, spaces) before it is compared
    const ok = await postJson(st(), '/api/v1/authn/recovery/reset', { recovery_token: token, recovery_answer: '  A  CAT named   Tama ', password: NEW });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'MFA_REQUIRED');
    assert.equal(ok.json.session_token, undefined);
    const again = await postJson(st(), '/api/v1/authn/recovery/reset', { recovery_token: token, recovery_answer: 'A cat named Tama', password: NEW });
    assertProblem(again, 400, 'recovery_token_invalid');
    // old password gone, the new one works, and still needs the factor
    assertProblem(await postJson(st(), '/api/v1/authn', { username: account.username, password: account.password }), 401, 'authentication_failed');
    account.password = NEW;
    const v = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: ok.json.state_token, pass_code: await nextTotp(account) });
    assert.equal(v.json.status, 'SUCCESS', v.text);
    assert.ok(await signIn(st(), account));
    const audit = await sql(st(), "SELECT string_agg(action, ',' ORDER BY at) FROM identity.audit_events WHERE target_id = :'p1' AND action LIKE 'user.password_re%'", [account.id]);
    assert.equal(audit, 'user.password_recovery_mailed,user.password_reset');
  });

  test('a recovery link dies after five wrong answers', async () => {
    const account = await fresh();
    const before = readMails(st()).length;
    await postJson(st(), '/api/v1/authn/recovery/password', { username: account.username });
    const mail = readMails(st()).slice(before).find((m) => m.headers.to?.includes(account.username));
    const token = new URL(/(http\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(mail.text)[1]).searchParams.get('token');
    const codes = [];
    for (let i = 0; i < 6; i++)
      codes.push((await postJson(st(), '/api/v1/authn/recovery/reset', { recovery_token: token, recovery_answer: `guess ${i}`, password: 'Second-Harbor-77' })).json.code);
    assert.deepEqual(codes, [...Array(5).fill('recovery_answer_wrong'), 'recovery_token_invalid']);
  });
});

describe('OAuth 2.0 / OIDC with the first-party public client', () => {
  let account;
  before(async () => {
    account = await activateWithTotp(st(), await stageUser(st(), { first: 'Ada', last: 'Lovelace' }));
  });

  test('discovery advertises what is implemented', async () => {
    const d = (await st().request('/.well-known/openid-configuration')).json;
    assert.equal(d.issuer, st().url);
    for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint', 'end_session_endpoint'])
      assert.ok(d[k]?.startsWith(st().url), k);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(d.response_types_supported, ['code']);
    assert.deepEqual(d.id_token_signing_alg_values_supported, ['ES256']);
  });

  test('code + PKCE -> tokens; ID token claims; userinfo; refresh rotation; reuse revokes the family', async () => {
    const { code, verifier } = await codeFor(account.sessionToken);
    const t = await exchange(code, verifier);
    assert.equal(t.status, 200, t.text);
    assert.equal(t.headers.get('cache-control'), 'no-store');
    const [h] = t.json.id_token.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    assert.equal(header.alg, 'ES256');
    assert.ok(header.kid);
    const id = decodeJwt(t.json.id_token);
    assert.equal(id.aud, 'console-web');
    assert.equal(id.azp, 'console-web');
    assert.equal(id.nonce, 'n-1');
    assert.equal(id.email, account.username);
    assert.equal(id.email_verified, true);
    assert.equal(id.name, 'Ada Lovelace');
    assert.equal(id.locale, 'en');
    assert.equal(id.zoneinfo, 'UTC');
    assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(typeof id.auth_time, 'number');
    assert.equal(typeof id.acr, 'string');
    // an ID token is no access token: its audience is the client
    const asBearer = await st().request('/api/v1/me', { auth: t.json.id_token });
    assertProblem(asBearer, 401, 'unauthorized');

    const ui = await st().request('/oauth2/userinfo', { auth: t.json.access_token });
    assert.equal(ui.status, 200, ui.text);
    assert.equal(ui.json.sub, id.sub);
    assert.equal(ui.json.email, account.username);
    const uiPost = await st().request('/oauth2/userinfo', { method: 'POST', auth: t.json.access_token });
    assert.equal(uiPost.status, 200, uiPost.text);

    const r1 = await tokenRequest({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: t.json.refresh_token });
    assert.equal(r1.status, 200, r1.text);
    assert.notEqual(r1.json.refresh_token, t.json.refresh_token);
    // the rotated-out token comes back: reuse; the whole family dies
    const reuse = await tokenRequest({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: t.json.refresh_token });
    assertProblem(reuse, 400, 'invalid_grant');
    assert.equal(reuse.json.error, 'invalid_grant');
    const after = await tokenRequest({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: r1.json.refresh_token });
    assertProblem(after, 400, 'invalid_grant');
    const ui2 = await st().request('/oauth2/userinfo', { auth: r1.json.access_token });
    assertProblem(ui2, 401, 'unauthorized');
  });

  test('a code is single-use: the second use fails and revokes what the first got', async () => {
    const { code, verifier } = await codeFor((await fresh()).sessionToken);
    const t = await exchange(code, verifier);
    assert.equal(t.status, 200, t.text);
    const again = await exchange(code, verifier);
    assertProblem(again, 400, 'invalid_grant');
    const grant = decodeJwt(t.json.access_token).grant_id;
    assert.equal(await sql(st(), "SELECT count(*) FROM identity.audit_events WHERE action = 'oauth.code_reused' AND details->>'grant_id' = :'p1'", [grant]), '1');
    const ui = await st().request('/oauth2/userinfo', { auth: t.json.access_token });
    assertProblem(ui, 401, 'unauthorized');
    const r = await tokenRequest({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: t.json.refresh_token });
    assertProblem(r, 400, 'invalid_grant');
  });

  test('PKCE: required for the public client, and the verifier must match', async () => {
    const r = await noFollow(authorizeUrl({ response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(), scope: 'openid', state: 'x' }));
    assert.equal(r.status, 302);
    const loc = new URL(r.headers.get('location'));
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.equal(loc.searchParams.get('state'), 'x');
    assert.equal(loc.searchParams.get('code'), null);
    const plain = await noFollow(authorizeUrl({ response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(), scope: 'openid', code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }));
    assert.equal(new URL(plain.headers.get('location')).searchParams.get('error'), 'invalid_request');
    const { code } = await codeFor((await fresh()).sessionToken);
    const bad = await exchange(code, pkce().verifier);
    assertProblem(bad, 400, 'invalid_grant');
  });

  test('an unknown client or an unregistered redirect URI gets an error page, never a redirect', async () => {
    const p = pkce();
    for (const params of [
      { client_id: 'no-such-client', redirect_uri: webRedirect() },
      { client_id: 'console-web', redirect_uri: 'https://evil.example/cb' },
      { client_id: 'console-web', redirect_uri: `${webRedirect()}/extra` },
      { client_id: 'console-web' },
    ]) {
      const r = await noFollow(authorizeUrl({ response_type: 'code', scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256', ...params }));
      assert.equal(r.status, 400, JSON.stringify(params));
      assert.equal(r.headers.get('location'), null);
      assert.match(r.headers.get('content-type'), /^text\/html/);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.match(r.headers.get('content-security-policy'), /frame-ancestors 'none'/);
      assert.match(await r.text(), params.client_id === 'no-such-client' ? /unknown_client/ : /invalid_redirect_uri/);
    }
  });

  test('a used or expired session token gives no code (sign-in page instead); prompt=none says login_required', async () => {
    const other = await fresh();
    const token = other.sessionToken;
    const first = await codeFor(token);
    assert.ok(first.code);
    const p = pkce();
    const base = { response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(), scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' };
    const used = await noFollow(authorizeUrl({ ...base, session_token: token }));
    assert.equal(used.status, 302);
    assert.match(used.headers.get('location'), /^\/login\?/);
    assert.doesNotMatch(used.headers.get('location'), /session_token/);
    const expired = await signIn(st(), other);
    await sql(st(), "UPDATE identity.session_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL");
    const late = await noFollow(authorizeUrl({ ...base, session_token: expired }));
    assert.match(late.headers.get('location'), /^\/login\?/);
    const none = await noFollow(authorizeUrl({ ...base, prompt: 'none', state: 's' }));
    const loc = new URL(none.headers.get('location'));
    assert.equal(loc.searchParams.get('error'), 'login_required');
  });

  test('the browser session (cookie) signs in again, except with prompt=login or a short max_age', async () => {
    const token = (await fresh()).sessionToken;
    const p = pkce();
    const base = { response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(), scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' };
    const r = await noFollow(authorizeUrl({ ...base, session_token: token }));
    const cookie = r.headers.get('set-cookie');
    assert.match(cookie, /^console_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);
    const jar = cookie.split(';')[0];
    const again = await st().fetch(authorizeUrl(base), { redirect: 'manual', headers: { cookie: jar } });
    assert.ok(new URL(again.headers.get('location')).searchParams.get('code'));
    const login = await st().fetch(authorizeUrl({ ...base, prompt: 'login' }), { redirect: 'manual', headers: { cookie: jar } });
    assert.match(login.headers.get('location'), /^\/login\?/);
    await sql(st(), "UPDATE identity.sessions SET auth_time = auth_time - interval '1 hour'");
    const old = await st().fetch(authorizeUrl({ ...base, max_age: '60' }), { redirect: 'manual', headers: { cookie: jar } });
    assert.match(old.headers.get('location'), /^\/login\?/);
    const fine = await st().fetch(authorizeUrl({ ...base, max_age: '86400' }), { redirect: 'manual', headers: { cookie: jar } });
    assert.ok(new URL(fine.headers.get('location')).searchParams.get('code'));
    // max_age=0 forces a sign-in: the cookie is not enough, a fresh session token is
    const zero = await st().fetch(authorizeUrl({ ...base, max_age: '0' }), { redirect: 'manual', headers: { cookie: jar } });
    assert.match(zero.headers.get('location'), /^\/login\?/);
    const again0 = await codeFor((await fresh()).sessionToken, { max_age: '0' });
    assert.ok(again0.code);
  });
});

describe('the signed-in user manages their own factors (/api/v1/me/factors)', () => {
  test('list, enrol a second TOTP, activate it, delete the first; the last one stays; an old sign-in must re-authenticate', async () => {
    const acc = await fresh();
    const p = pkce();
    const base = { response_type: 'code', client_id: 'console-web', redirect_uri: webRedirect(), scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' };
    const r = await noFollow(authorizeUrl({ ...base, session_token: acc.sessionToken }));
    const jar = r.headers.get('set-cookie').split(';')[0];
    const t = await exchange(new URL(r.headers.get('location')).searchParams.get('code'), p.verifier);
    const auth = { authorization: `Bearer ${t.json.access_token}` };

    const list = await st().request('/api/v1/me/factors', { auth: t.json.access_token });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.items.map((f) => [f.id, f.type, f.status]), [[acc.factorId, 'totp', 'active']]);
    const e = await postJson(st(), '/api/v1/me/factors', { type: 'totp' }, auth);
    assert.equal(e.status, 201, e.text);
    const second = { secret: e.json.secret, lastStep: -1 };
    const wrong = await postJson(st(), `/api/v1/me/factors/${e.json.id}/activate`, { pass_code: totpAt(second.secret, currentStep() + 5) }, auth);
    assertProblem(wrong, 403, 'invalid_pass_code');
    const ok = await postJson(st(), `/api/v1/me/factors/${e.json.id}/activate`, { pass_code: await nextTotp(second) }, auth);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await st().request('/api/v1/me/factors', { auth: t.json.access_token })).json.total, 2);
    const del = await st().request(`/api/v1/me/factors/${acc.factorId}`, { method: 'DELETE', auth: t.json.access_token });
    assert.equal(del.status, 204, del.text);
    const last = await st().request(`/api/v1/me/factors/${e.json.id}`, { method: 'DELETE', auth: t.json.access_token });
    assertProblem(last, 409, 'last_factor');
    // the new factor signs in; the deleted one is gone
    acc.factorId = e.json.id;
    acc.secret = second.secret;
    acc.lastStep = second.lastStep;
    assert.ok(await signIn(st(), acc));

    // a token from an old sign-in may read but not change factors
    await sql(st(), "UPDATE identity.sessions SET auth_time = auth_time - interval '1 hour' WHERE user_id = :'p1'", [acc.id]);
    const p2 = pkce();
    const r2 = await st().fetch(authorizeUrl({ ...base, code_challenge: p2.challenge }), { redirect: 'manual', headers: { cookie: jar } });
    const old = await exchange(new URL(r2.headers.get('location')).searchParams.get('code'), p2.verifier);
    assert.equal((await st().request('/api/v1/me/factors', { auth: old.json.access_token })).status, 200);
    const stale = await postJson(st(), '/api/v1/me/factors', { type: 'totp' }, { authorization: `Bearer ${old.json.access_token}` });
    assertProblem(stale, 403, 'reauthentication_required');
    // an API client has no factors
    assertProblem(await st().request('/api/v1/me/factors', { auth: true }), 403, 'forbidden');
    const audit = await sql(st(), "SELECT string_agg(action, ',' ORDER BY at) FROM identity.audit_events WHERE target_id = :'p1' AND action LIKE 'user.factor_%'", [acc.id]);
    assert.equal(audit, 'user.factor_activated,user.factor_enrolled,user.factor_activated,user.factor_deleted');
  });
});

describe('openid-client@6.8.9 against the stack (confidential client, no special cases)', () => {
  const clientId = `rp-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  let account, config, redirectUri, logoutUri;
  before(async () => {
    redirectUri = `http://127.0.0.1:${st().base + 100}/cb`;
    logoutUri = `http://127.0.0.1:${st().base + 100}/bye`;
    await registerClient(st(), { clientId, secret, redirectUris: [redirectUri], postLogoutUris: [logoutUri] });
    account = await activateWithTotp(st(), await stageUser(st(), { first: 'Grace', last: 'Hopper' }));
    config = await oidc.discovery(new URL(st().url), clientId, undefined, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    oidc.enableNonRepudiationChecks(config);
  });

  test('discovery, authorization code + PKCE, ID token, userinfo, refresh, introspection, revocation, logout', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid profile email offline_access', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', max_age: '600',
    });
    url.searchParams.set('session_token', await signIn(st(), account));
    const r = await noFollow(url.toString());
    assert.equal(r.status, 302, await r.text());
    const tokens = await oidc.authorizationCodeGrant(config, new URL(r.headers.get('location')), {
      pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true, maxAge: 600,
    });
    const claims = tokens.claims();
    assert.equal(claims.email, account.username);
    assert.equal(claims.aud, clientId);
    const ui = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(ui.name, 'Grace Hopper');

    const intro = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(intro.active, true);
    assert.equal(intro.sub, claims.sub);
    assert.equal(intro.client_id, clientId);

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    const rtIntro = await oidc.tokenIntrospection(config, refreshed.refresh_token);
    assert.equal(rtIntro.active, true);
    assert.equal(rtIntro.token_type, 'refresh_token');

    await oidc.tokenRevocation(config, refreshed.refresh_token);
    assert.equal((await oidc.tokenIntrospection(config, refreshed.refresh_token)).active, false);
    assert.equal((await oidc.tokenIntrospection(config, refreshed.access_token)).active, false);
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token));

    // RP-initiated logout to a registered address only
    const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: logoutUri, state: 'bye' });
    const out = await noFollow(end.toString());
    assert.equal(out.status, 302, await out.text());
    assert.equal(out.headers.get('location'), `${logoutUri}?state=bye`);
    const evil = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: 'https://evil.example/' });
    const refused = await noFollow(evil.toString());
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('location'), null);
  });

  test('client authentication: a wrong secret is 401 invalid_client; client_secret_post works', async () => {
    const { code, verifier } = await (async () => {
      const p = pkce();
      const r = await noFollow(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256', session_token: await signIn(st(), account) }));
      return { code: new URL(r.headers.get('location')).searchParams.get('code'), verifier: p.verifier };
    })();
    const body = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri };
    const wrong = await tokenRequest(body, { authorization: basic(clientId, 'not-the-secret') });
    assertProblem(wrong, 401, 'invalid_client');
    assert.equal(wrong.json.error, 'invalid_client');
    const unknown = await tokenRequest(body, { authorization: basic('nobody', secret) });
    assertProblem(unknown, 401, 'invalid_client');
    // a confidential client cannot pretend to be public
    const noSecret = await tokenRequest({ ...body, client_id: clientId });
    assertProblem(noSecret, 401, 'invalid_client');
    const ok = await tokenRequest({ ...body, client_id: clientId, client_secret: secret });
    assert.equal(ok.status, 200, ok.text);
    // introspection needs client authentication
    const intro = await st().request('/oauth2/introspect', { method: 'POST', headers: { 'content-type': FORM }, body: `token=${ok.json.access_token}` });
    assertProblem(intro, 401, 'invalid_client');
    // a public client learns nothing from introspection either
    const pub = await st().request('/oauth2/introspect', { method: 'POST', headers: { 'content-type': FORM }, body: `token=${ok.json.access_token}&client_id=console-web` });
    assertProblem(pub, 401, 'invalid_client');
  });
});

describe('attacks and bad input', () => {
  let account;
  before(async () => {
    account = await activateWithTotp(st(), await stageUser(st()));
  });

  test('unknown user and wrong password are indistinguishable; SQL metacharacters are data', async () => {
    const a = await postJson(st(), '/api/v1/authn', { username: 'nobody@example.com', password: 'Whatever-123' });
    const b = await postJson(st(), '/api/v1/authn', { username: account.username, password: 'Whatever-123' });
    for (const r of [a, b]) assertProblem(r, 401, 'authentication_failed');
    const strip = (j) => ({ ...j, request_id: undefined });
    assert.deepEqual(strip(a.json), strip(b.json));
    for (const username of ["' OR '1'='1", "admin@localhost'; DROP TABLE users.users; --", '%', '_']) {
      const r = await postJson(st(), '/api/v1/authn', { username, password: GOOD_PASSWORD });
      assertProblem(r, 401, 'authentication_failed');
    }
    assert.equal(await sql(st(), "SELECT count(*) > 0 FROM users.users"), 't');
    const odd = await activateWithTotp(st(), await stageUser(st(), { username: `o'brien+"x"-${randomBytes(2).toString('hex')}@example.com` }));
    assert.ok(await signIn(st(), odd));
  });

  test('a TOTP code is accepted once (replay refused)', async () => {
    const r1 = await postJson(st(), '/api/v1/authn', { username: account.username, password: account.password });
    const code = await nextTotp(account);
    const v1 = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: r1.json.state_token, pass_code: code });
    assert.equal(v1.status, 200, v1.text);
    const r2 = await postJson(st(), '/api/v1/authn', { username: account.username, password: account.password });
    const v2 = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: r2.json.state_token, pass_code: code });
    assertProblem(v2, 403, 'invalid_pass_code');
    // a state token is single-purpose: after SUCCESS it cannot verify again
    const v3 = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: r1.json.state_token, pass_code: await nextTotp(account) });
    assertProblem(v3, 401, 'state_token_invalid');
  });

  test('enrolment started again and again keeps at most five pending factors (the latest ones)', async () => {
    const staged = await stageUser(st());
    const a = await postJson(st(), '/api/v1/authn/activate', { activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'Q?', recovery_answer: 'an answer' });
    assert.equal(a.status, 200, a.text);
    let last;
    for (let i = 0; i < 9; i++) {
      last = await postJson(st(), '/api/v1/authn/factors', { state_token: a.json.state_token, type: i % 3 ? 'totp' : 'email' });
      assert.equal(last.status, 200, last.text);
    }
    const pending = await sql(st(), `SELECT count(*) FROM identity.factors WHERE user_id = (SELECT id FROM users.users WHERE username = :'p1') AND status = 'pending'`, [staged.username]);
    assert.equal(pending, '5');
    // the latest one still activates
    const v = await postJson(st(), `/api/v1/authn/factors/${last.json.id}/activate`, { state_token: a.json.state_token, pass_code: await nextTotp({ secret: last.json.secret, lastStep: -1 }) });
    assert.equal(v.status, 200, v.text);
  });

  test('TOTP brute force: five wrong codes end the transaction, even the right code is refused then', async () => {
    const victim = await activateWithTotp(st(), await stageUser(st()));
    const r = await postJson(st(), '/api/v1/authn', { username: victim.username, password: victim.password });
    const good = new Set([-1, 0, 1].map((d) => totpAt(victim.secret, currentStep() + d)));
    const wrong = ['000000', '111111', '222222', '333333', '444444', '555555', '666666'].filter((c) => !good.has(c));
    const answers = [];
    for (let i = 0; i < 5; i++)
      answers.push((await postJson(st(), `/api/v1/authn/factors/${victim.factorId}/verify`, { state_token: r.json.state_token, pass_code: wrong[i] })).json.code);
    assert.deepEqual(answers, ['invalid_pass_code', 'invalid_pass_code', 'invalid_pass_code', 'invalid_pass_code', 'too_many_attempts']);
    const right = await postJson(st(), `/api/v1/authn/factors/${victim.factorId}/verify`, { state_token: r.json.state_token, pass_code: await nextTotp(victim) });
    assertProblem(right, 429, 'too_many_attempts');
  });

  test('ten failures in 15 minutes lock the account (LOCKED_OUT, even with the right password)', async () => {
    const victim = await activateWithTotp(st(), await stageUser(st()));
    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const r = await postJson(st(), '/api/v1/authn', { username: victim.username, password: `Wrong-Pass-${i}` });
      statuses.push(r.status === 200 ? r.json.status : r.json.code);
    }
    assert.deepEqual(statuses, [...Array(9).fill('authentication_failed'), 'LOCKED_OUT']);
    const right = await postJson(st(), '/api/v1/authn', { username: victim.username, password: victim.password });
    assert.equal(right.status, 200);
    assert.equal(right.json.status, 'LOCKED_OUT');
    assert.equal(right.json.state_token, undefined);
    // audited, with the user as the target and no secret in the record
    const audit = await sql(st(), "SELECT action || ' ' || details::text FROM identity.audit_events WHERE target_id = :'p1' ORDER BY at", [victim.id]);
    assert.match(audit, /^user\.password_set .*\nuser\.factor_activated .*"type": "totp".*\nuser\.signed_in .*\nuser\.locked_out /s);
    assert.ok(!audit.includes(victim.password) && !audit.includes('Wrong-Pass'));
    // after the cool-down the account opens again
    await sql(st(), "UPDATE identity.credentials SET locked_until = now() - interval '1 second' WHERE user_id = :'p1'", [victim.id]);
    const later = await postJson(st(), '/api/v1/authn', { username: victim.username, password: victim.password });
    assert.equal(later.json.status, 'MFA_REQUIRED', later.text);
  });

  test('users of a suspended tenant cannot sign in (tenant_suspended)', async () => {
    const tid = (await sql(st(), "SELECT gen_random_uuid()"));
    await sql(
      st(),
      `INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id, created_by)
       SELECT :'p1'::uuid, p.id, 'direct', 'Suspended Co', 'suspended co', p.path || text2ltree(replace(:'p1', '-', '')), :'p1'::uuid, 'e2e'
       FROM tenants.tenants p WHERE p.kind = 'platform'`,
      [tid],
    );
    const user = await activateWithTotp(st(), await stageUser(st(), { tenantId: tid }));
    assert.ok(await signIn(st(), user));
    await sql(st(), "UPDATE tenants.tenants SET status = 'suspended' WHERE id = :'p1'", [tid]);
    const r = await postJson(st(), '/api/v1/authn', { username: user.username, password: user.password });
    assertProblem(r, 403, 'tenant_suspended');
  });

  test('forged tokens: alg=none, HS256 with the public key, another issuer — refused at userinfo and introspection', async () => {
    const { code, verifier } = await codeFor((await fresh()).sessionToken);
    const real = (await exchange(code, verifier)).json.access_token;
    const [h, p] = real.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    const jwks = (await st().request('/oauth2/jwks')).json;
    const none = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${p}.`;
    const hsInput = `${b64url({ ...header, alg: 'HS256' })}.${p}`;
    const hs = `${hsInput}.${createHmac('sha256', JSON.stringify(jwks.keys[0])).update(hsInput).digest('base64url')}`;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherInput = `${b64url({ alg: 'ES256', typ: 'at+jwt', kid: 'other' })}.${b64url({ ...claims, iss: 'https://other.example' })}`;
    const other = `${otherInput}.${cryptoSign('sha256', Buffer.from(otherInput), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    const tampered = `${h}.${b64url({ ...claims, sub: '00000000-0000-7000-8000-000000000000' })}.${real.split('.')[2]}`;
    for (const forged of [none, hs, other, tampered]) {
      const ui = await st().request('/oauth2/userinfo', { auth: forged });
      assert.equal(ui.status, 401, ui.text);
      // (an unknown kid makes the gateway refresh its key set, rate-limited: asked once)
      if (forged !== other) assert.equal((await st().request('/api/v1/me', { auth: forged })).status, 401);
    }
    // introspection (client authentication first) does not know forged tokens either
    await registerClient(st(), { clientId: 'rp-forgery', secret: 'forgery-secret-forgery-secret-0123', redirectUris: ['http://127.0.0.1:1/cb'] });
    for (const forged of [none, hs, tampered]) {
      const r = await st().request('/oauth2/introspect', {
        method: 'POST',
        headers: { 'content-type': FORM, authorization: basic('rp-forgery', 'forgery-secret-forgery-secret-0123') },
        body: `token=${forged}`,
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.active, false);
    }
  });

  test('oversized and malformed forms are refused with OAuth errors', async () => {
    const big = await tokenRequest({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: 'x'.repeat(70 * 1024) });
    assert.equal(big.status, 413, big.text);
    const repeated = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': FORM }, body: 'grant_type=refresh_token&grant_type=authorization_code&client_id=console-web' });
    assertProblem(repeated, 400, 'validation_failed');
    assert.equal(repeated.json.error, 'invalid_request');
    const badEscape = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': FORM }, body: 'grant_type=%zz&client_id=console-web' });
    assert.equal(badEscape.json.error, 'invalid_request');
    const json = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"refresh_token"}' });
    assertProblem(json, 415, 'unsupported_media_type');
    const bigJson = await postJson(st(), '/api/v1/authn', { username: 'x', password: 'y'.repeat(20 * 1024) });
    assertProblem(bigJson, 413, 'payload_too_large');
    const malformed = await st().request('/api/v1/authn', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username": "a", ' });
    assertProblem(malformed, 400, 'malformed_json');
    const badState = await postJson(st(), `/api/v1/authn/factors/${account.factorId}/verify`, { state_token: 'nope', pass_code: '123456' });
    assertProblem(badState, 401, 'state_token_invalid');
  });
});
