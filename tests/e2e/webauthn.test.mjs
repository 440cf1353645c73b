// WebAuthn end to end through the gateway, with a software authenticator
// (lib/webauthn.mjs): enrolment during MFA_ENROLL and through /api/v1/me/factors, sign-in
// with ES256, RS256 and EdDSA credentials, attestation none / packed self / packed basic,
// and the forged responses of issue 10 (wrong challenge, origin, RP ID, type, counter
// going back, bad signature, replay, missing user presence or verification).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { assertProblem, jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, pkce, postJson, sql, stageUser, FORM } from './lib/identity.mjs';
import { SoftAuthenticator, attestationCert, cbor } from './lib/webauthn.mjs';

const s = useStack();
const st = () => s.stack;
const rpId = () => new URL(st().url).hostname;
const authenticator = (opts = {}) => new SoftAuthenticator({ origin: st().url, rpId: rpId(), ...opts });

/** A staged user through activation to MFA_ENROLL; resolves {staged, state}. */
async function toEnroll() {
  const staged = await stageUser(st());
  const a = await postJson(st(), '/api/v1/authn/activate', {
    activation_token: staged.token, password: GOOD_PASSWORD, recovery_question: 'First pet?',
    recovery_answer: 'A cat named Tama', security_image: 'owl',
  });
  assert.equal(a.status, 200, a.text);
  assert.ok(a.json.enroll.some((e) => e.type === 'webauthn'), 'webauthn is offered');
  return { staged, state: a.json.state_token };
}

async function enrolOptions(state) {
  const e = await postJson(st(), '/api/v1/authn/factors', { state_token: state, type: 'webauthn' });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.status, 'PENDING_ACTIVATION');
  return e.json;
}

/** A user with an active WebAuthn factor; resolves {account, auth, factorId}. */
async function webauthnUser(opts = {}) {
  const { staged, state } = await toEnroll();
  const e = await enrolOptions(state);
  const auth = authenticator(opts);
  const r = await postJson(st(), `/api/v1/authn/factors/${e.id}/activate`, { state_token: state, ...auth.create(e.activation) });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'SUCCESS');
  return { account: { ...staged, password: GOOD_PASSWORD }, auth, factorId: e.id };
}

/** Password step then the challenge; resolves {state, options}. */
async function challenge(u) {
  const r = await postJson(st(), '/api/v1/authn', { username: u.account.username, password: GOOD_PASSWORD });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'MFA_REQUIRED');
  assert.deepEqual(r.json.factors, [{ id: u.factorId, type: 'webauthn' }]);
  const c = await postJson(st(), `/api/v1/authn/factors/${u.factorId}/verify`, { state_token: r.json.state_token });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.status, 'MFA_CHALLENGE');
  return { state: r.json.state_token, options: c.json.challenge };
}

const verify = (u, state, response) => postJson(st(), `/api/v1/authn/factors/${u.factorId}/verify`, { state_token: state, ...response });

function assertRejected(r, reason) {
  assertProblem(r, 403, 'webauthn_rejected');
  assert.equal(r.json.reason, reason, r.text);
}

describe('WebAuthn enrolment and sign-in', () => {
  test('creation options name the relying party, the user and the three algorithms', async () => {
    const { staged, state } = await toEnroll();
    const e = await enrolOptions(state);
    const o = e.activation;
    assert.equal(o.rp.id, rpId());
    assert.equal(o.user.name, staged.username);
    assert.equal(Buffer.from(o.user.id, 'base64url').toString('hex'), staged.id.replaceAll('-', ''));
    assert.equal(Buffer.from(o.challenge, 'base64url').length, 32);
    assert.deepEqual(o.pubKeyCredParams.map((p) => p.alg), [-7, -8, -257]);
    assert.equal(o.attestation, 'none');
    assert.equal(o.authenticatorSelection.userVerification, 'preferred');
    // a second enrolment call makes a new challenge; the first one no longer answers
    const again = await postJson(st(), `/api/v1/authn/factors/${e.id}/activate`, { state_token: state });
    assert.equal(again.status, 200, again.text);
    assert.notEqual(again.json.activation.challenge, o.challenge);
    const auth = authenticator();
    assertRejected(await postJson(st(), `/api/v1/authn/factors/${e.id}/activate`, { state_token: state, ...auth.create(o) }), 'challenge');
  });

  for (const [alg, attestation] of [['ES256', 'none'], ['RS256', 'self'], ['EdDSA', 'self'], ['ES256', 'basic'], ['ES256', 'self']]) {
    test(`${alg} with ${attestation} attestation: enrol, then sign in twice`, async () => {
      const u = await webauthnUser({ alg, attestation });
      const stored = JSON.parse(await sql(st(), `SELECT profile::text FROM identity.factors WHERE id = :'p1'`, [u.factorId]));
      assert.equal(stored.alg, { ES256: -7, RS256: -257, EdDSA: -8 }[alg]);
      assert.equal(stored.attestation, attestation);
      assert.equal(stored.credential_id, u.auth.credentialId.toString('base64url'));
      for (let i = 0; i < 2; i++) {
        const { state, options } = await challenge(u);
        assert.equal(options.rpId, rpId());
        assert.deepEqual(options.allowCredentials, [{ type: 'public-key', id: u.auth.credentialId.toString('base64url') }]);
        const r = await verify(u, state, u.auth.get(options));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.status, 'SUCCESS');
        assert.ok(r.json.session_token);
      }
      assert.equal(await sql(st(), `SELECT profile->>'sign_count' FROM identity.factors WHERE id = :'p1'`, [u.factorId]), '2');
      const audit = await sql(st(), `SELECT count(*) FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' AND details->>'factor_type' = 'webauthn'`, [u.account.id]);
      assert.equal(audit, '3', 'activation and two sign-ins');
    });
  }

  test('the session token of a WebAuthn sign-in is exchanged for tokens with amr mfa', async () => {
    const u = await webauthnUser();
    const { state, options } = await challenge(u);
    const r = await verify(u, state, u.auth.get(options));
    assert.equal(r.status, 200, r.text);
    const p = pkce();
    const url = new URL('/oauth2/authorize', st().url);
    const redirect = `${st().url}/console/callback`;
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'console-web', redirect_uri: redirect, scope: 'openid', state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', session_token: r.json.session_token }))
      url.searchParams.set(k, v);
    const a = await st().fetch(url.toString(), { redirect: 'manual' });
    assert.equal(a.status, 302);
    const code = new URL(a.headers.get('location')).searchParams.get('code');
    const t = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: redirect }).toString() });
    assert.equal(t.status, 200, t.text);
    const claims = JSON.parse(Buffer.from(t.json.access_token.split('.')[1], 'base64url'));
    assert.ok(claims.amr.includes('mfa'));
  });
});

describe('forged WebAuthn assertions are refused', () => {
  test('wrong challenge, origin, RP ID, type, missing user presence; the genuine one still works', async () => {
    const u = await webauthnUser();
    const { state, options } = await challenge(u);
    const cases = [
      [{ challenge: Buffer.alloc(32, 7).toString('base64url') }, 'challenge'],
      [{ origin: 'https://phish.example' }, 'origin'],
      [{ rpId: 'phish.example' }, 'rp_id'],
      [{ type: 'webauthn.create' }, 'type'],
    ];
    for (const [forge, reason] of cases) {
      // every response takes the challenge: ask for a new one each time
      const c = await postJson(st(), `/api/v1/authn/factors/${u.factorId}/verify`, { state_token: state });
      assert.equal(c.status, 200, c.text);
      assertRejected(await verify(u, state, u.auth.get(c.json.challenge, { ...forge, counter: 50 })), reason);
    }
    // five failures end the sign-in transaction: the genuine assertion needs a new one
    const again = await challenge(u);
    const ok = await verify(u, again.state, u.auth.get(again.options));
    assert.equal(ok.status, 200, ok.text);
    assert.ok(options.challenge);
  });

  test('no user presence, a bad signature, a replayed assertion', async () => {
    const u = await webauthnUser();
    let c = await challenge(u);
    assertRejected(await verify(u, c.state, u.auth.get(c.options, { flags: 0x04 })), 'user_presence');
    c = await challenge(u);
    assertRejected(await verify(u, c.state, u.auth.get(c.options, { badSignature: true })), 'signature');
    c = await challenge(u);
    const genuine = u.auth.get(c.options);
    const ok = await verify(u, c.state, genuine);
    assert.equal(ok.status, 200, ok.text);
    // the same response again, in a new sign-in: its challenge was taken
    const c2 = await challenge(u);
    assertRejected(await verify(u, c2.state, genuine), 'challenge');
    // without asking for a challenge at all
    const r = await postJson(st(), '/api/v1/authn', { username: u.account.username, password: GOOD_PASSWORD });
    assertRejected(await verify(u, r.json.state_token, genuine), 'challenge');
  });

  test('a counter going back is refused and audited (cloned authenticator)', async () => {
    const u = await webauthnUser();
    for (let i = 0; i < 3; i++) {
      const c = await challenge(u);
      assert.equal((await verify(u, c.state, u.auth.get(c.options))).status, 200);
    }
    const c = await challenge(u);
    assertRejected(await verify(u, c.state, u.auth.get(c.options, { counter: 2 })), 'counter');
    const c2 = await challenge(u);
    assertRejected(await verify(u, c2.state, u.auth.get(c2.options, { counter: 3 })), 'counter');
    const n = await sql(st(), `SELECT count(*) FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.webauthn_counter_regressed'`, [u.account.id]);
    assert.equal(n, '2');
    assert.equal(await sql(st(), `SELECT profile->>'sign_count' FROM identity.factors WHERE id = :'p1'`, [u.factorId]), '3');
  });

  test('a credential registered with user verification must keep using it', async () => {
    const u = await webauthnUser({ uv: true });
    u.auth.uv = false;
    const c = await challenge(u);
    assertRejected(await verify(u, c.state, u.auth.get(c.options)), 'user_verification');
  });

  test('a response for another factor or user does not pass', async () => {
    const a = await webauthnUser();
    const b = await webauthnUser();
    const c = await challenge(a);
    // b's authenticator answers a's challenge: a's key does not verify b's signature
    const forged = b.auth.get(c.options);
    assertRejected(await verify(a, c.state, forged), 'signature');
  });
});

describe('forged WebAuthn registrations are refused', () => {
  // one enrolling user for up to four refused attempts (five end the sign-in), each with
  // fresh creation options (a refused response takes its challenge)
  let current = null;
  async function attempt(authOpts, forge = {}) {
    if (!current || current.failures >= 4) {
      const { state } = await toEnroll();
      current = { state, factor: (await enrolOptions(state)).id, failures: 0 };
    }
    const fresh = await postJson(st(), `/api/v1/authn/factors/${current.factor}/activate`, { state_token: current.state });
    assert.equal(fresh.status, 200, fresh.text);
    const auth = authenticator(authOpts);
    const r = await postJson(st(), `/api/v1/authn/factors/${current.factor}/activate`, { state_token: current.state, ...auth.create(fresh.json.activation, forge) });
    if (r.status !== 200) current.failures++;
    return r;
  }

  test('origin, RP ID, challenge, type', async () => {
    assertRejected(await attempt({}, { origin: 'http://evil.example' }), 'origin');
    assertRejected(await attempt({}, { rpId: 'evil.example' }), 'rp_id');
    assertRejected(await attempt({}, { challenge: 'AAAA' }), 'challenge');
    assertRejected(await attempt({}, { type: 'webauthn.get' }), 'type');
    assertRejected(await attempt({}, { crossOrigin: true }), 'origin');
  });

  test('attestation statements that do not hold', async () => {
    // "none" with a statement, an unknown format, packed self with another alg or a wrong signature
    assertRejected(await attempt({}, { stmt: new Map([['x', 1]]) }), 'attestation');
    assertRejected(await attempt({}, { fmt: 'fido-u2f' }), 'attestation');
    assertRejected(await attempt({ attestation: 'self' }, { stmt: new Map([['alg', -257], ['sig', Buffer.alloc(64)]]) }), 'attestation');
    assertRejected(await attempt({ attestation: 'self' }, { stmt: new Map([['alg', -7], ['sig', Buffer.alloc(70, 1)]]) }), 'signature');
    // packed basic: a certificate without the FIDO OU, or with another AAGUID
    assertRejected(await attempt({ attestation: 'basic', cert: attestationCert({ ou: 'Something Else' }) }), 'attestation');
    assertRejected(await attempt({ attestation: 'basic', cert: attestationCert({ aaguid: Buffer.alloc(16, 9) }) }), 'attestation');
  });

  test('unsupported algorithms and malformed keys', async () => {
    const p384 = new Map([[1, 2], [3, -35], [-1, 2], [-2, Buffer.alloc(48)], [-3, Buffer.alloc(48)]]);
    assertRejected(await attempt({}, { coseKey: p384 }), 'algorithm');
    const offCurve = new Map([[1, 2], [3, -7], [-1, 1], [-2, Buffer.alloc(32, 1)], [-3, Buffer.alloc(32, 2)]]);
    assertRejected(await attempt({}, { coseKey: offCurve }), 'malformed');
  });

  test('a credential already registered cannot be registered again', async () => {
    const u = await webauthnUser();
    const { state } = await toEnroll();
    const e = await enrolOptions(state);
    // the same authenticator (same credential id) for another account
    assertRejected(await postJson(st(), `/api/v1/authn/factors/${e.id}/activate`, { state_token: state, ...u.auth.create(e.activation) }), 'credential_taken');
  });

  test('bad input: not base64url, not CBOR, both a code and a response, unknown fields', async () => {
    const { state } = await toEnroll();
    const e = await enrolOptions(state);
    const path = `/api/v1/authn/factors/${e.id}/activate`;
    assertRejected(await postJson(st(), path, { state_token: state, client_data_json: 'a+b/', attestation_object: 'AA' }), 'malformed');
    // every response takes the challenge: fresh options for the next attempt
    const fresh = async () => (await postJson(st(), path, { state_token: state })).json.activation;
    const good = authenticator().create(await fresh());
    assertRejected(await postJson(st(), path, { state_token: state, client_data_json: good.client_data_json, attestation_object: cbor([1, 2]).toString('base64url') }), 'malformed');
    assertProblem(await postJson(st(), path, { state_token: state, pass_code: '123456', ...good }), 400, 'validation_failed');
    assertProblem(await postJson(st(), path, { state_token: state, rawId: 'x' }), 400, 'unknown_field');
    assertProblem(await postJson(st(), path, { state_token: state, client_data_json: 5 }), 400, 'validation_failed');
    await fresh();
    assertRejected(await postJson(st(), path, { state_token: state, client_data_json: "x' OR 1=1 --", attestation_object: 'AA' }), 'malformed');
    // a state token in another step (MFA_ENROLL is not MFA_REQUIRED)
    assertProblem(await postJson(st(), `/api/v1/authn/factors/${e.id}/verify`, { state_token: state, ...good }), 401, 'state_token_invalid');
  });
});

describe('WebAuthn through /api/v1/me/factors', () => {
  test('a signed-in user adds a security key and signs in with it', async () => {
    const u = await webauthnUser();
    // sign in with the first key and get an access token
    const c = await challenge(u);
    const v = await verify(u, c.state, u.auth.get(c.options));
    const p = pkce();
    const redirect = `${st().url}/console/callback`;
    const url = new URL('/oauth2/authorize', st().url);
    for (const [k, val] of Object.entries({ response_type: 'code', client_id: 'console-web', redirect_uri: redirect, scope: 'openid', state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', session_token: v.json.session_token }))
      url.searchParams.set(k, val);
    const a = await st().fetch(url.toString(), { redirect: 'manual' });
    const code = new URL(a.headers.get('location')).searchParams.get('code');
    const t = await st().request('/oauth2/token', { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: redirect }).toString() });
    const api = jsonApi(st(), t.json.access_token);
    const e = await api('POST', '/api/v1/me/factors', { type: 'webauthn' });
    assert.equal(e.status, 201, e.text);
    // the first key is excluded from the new registration
    assert.deepEqual(e.json.activation.excludeCredentials, [{ type: 'public-key', id: u.auth.credentialId.toString('base64url') }]);
    const second = authenticator({ alg: 'EdDSA' });
    assertProblem(await api('POST', `/api/v1/me/factors/${e.json.id}/activate`, { pass_code: '123456' }), 400, 'validation_failed');
    assertRejected(await api('POST', `/api/v1/me/factors/${e.json.id}/activate`, second.create(e.json.activation, { origin: 'http://evil.example' })), 'origin');
    const e2 = await api('POST', '/api/v1/me/factors', { type: 'webauthn' });
    const act = await api('POST', `/api/v1/me/factors/${e2.json.id}/activate`, second.create(e2.json.activation));
    assert.equal(act.status, 200, act.text);
    assert.equal(act.json.status, 'active');
    const list = await api('GET', '/api/v1/me/factors');
    assert.equal(list.json.items.filter((f) => f.type === 'webauthn' && f.status === 'active').length, 2);
    // sign in with the second key
    const r = await postJson(st(), '/api/v1/authn', { username: u.account.username, password: GOOD_PASSWORD });
    assert.equal(r.json.factors.length, 2);
    const c2 = await postJson(st(), `/api/v1/authn/factors/${e2.json.id}/verify`, { state_token: r.json.state_token });
    const ok = await postJson(st(), `/api/v1/authn/factors/${e2.json.id}/verify`, { state_token: r.json.state_token, ...second.get(c2.json.challenge) });
    assert.equal(ok.status, 200, ok.text);
    // the first key cannot answer the second factor's challenge
    const r2 = await postJson(st(), '/api/v1/authn', { username: u.account.username, password: GOOD_PASSWORD });
    const c4 = await postJson(st(), `/api/v1/authn/factors/${e2.json.id}/verify`, { state_token: r2.json.state_token });
    assertRejected(await postJson(st(), `/api/v1/authn/factors/${e2.json.id}/verify`, { state_token: r2.json.state_token, ...u.auth.get(c4.json.challenge) }), 'signature');
  });
});
