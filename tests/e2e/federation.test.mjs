// Federation through the real gateway: a tenant connects an upstream OpenID Provider (a
// real oidc-provider started here, with its own login and consent forms), its people are
// sent there by the e-mail they type on the login page, come back through /login/callback,
// are provisioned just in time with the roles their upstream groups map to on that tenant
// only, and still meet the console's MFA requirement when the upstream did not show MFA.
// A small fake issuer produces the forged ID tokens (wrong aud, iss, nonce, signature,
// alg none, expired) and the misconfigured discovery documents.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import Provider from 'oidc-provider';
import { useStack } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { decodeJwt, FORM, nextTotp, sql, stageUser } from './lib/identity.mjs';

const s = useStack();

const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
const readBody = (req) => new Promise((r) => { let b = ''; req.on('data', (c) => (b += c)); req.on('end', () => r(b)); });
const unescape = (v) => v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const hidden = (html, name) => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m ? unescape(m[1]) : undefined;
};

// ---- the real upstream: oidc-provider with our own interaction forms ----
const accounts = {
  alice: { email: 'alice@msp-a.example', given_name: 'Alice', family_name: 'Admin', groups: ['console-admins'], amr: ['pwd'] },
  bob: { email: 'bob@msp-a.example', given_name: 'Bob', family_name: 'Monitor', groups: ['console-monitors', 'staff'], amr: ['pwd', 'otp'] },
  mallory: { email: 'mallory@msp-b.example', given_name: 'Mallory', family_name: 'X', groups: ['console-admins'], amr: ['pwd', 'otp'] },
  carol: { email: 'carol@msp-a.example', given_name: 'Carol', family_name: 'Other', groups: ['console-admins'], amr: ['pwd', 'otp'] },
};
const password = (id) => `upstream-pw-${id}`;

async function startUpstream(consoleUrl) {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const jwk = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'up-1', use: 'sig', alg: 'RS256' };
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'console-rp', client_secret: 'upstream-client-secret', redirect_uris: [`${consoleUrl}/login/callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // amr and acr ride with the openid scope, so the ID token always carries them
    claims: { sid: null, iss: null, openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name', 'name'], groups: ['groups'] },
    findAccount: async (ctx, id) => accounts[id] && {
      accountId: id,
      claims: async () => {
        const a = accounts[id];
        return { sub: id, email: a.email, email_verified: true, given_name: a.given_name, family_name: a.family_name, name: `${a.given_name} ${a.family_name}`, groups: a.groups };
      },
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    jwks: { keys: [jwk] },
    cookies: { keys: ['federation-e2e'] },
  });
  const callback = provider.callback();
  const page = (res, html) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(html); };
  server.on('request', async (req, res) => {
    const m = /^\/interaction\/([^/?]+)(\/login|\/confirm)?/.exec(req.url);
    if (!m) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        if (details.prompt.name === 'login')
          return page(res, `<form method="post" action="/interaction/${m[1]}/login"><input name="login"><input name="password" type="password"><button>Sign in</button></form>`);
        return page(res, `<form method="post" action="/interaction/${m[1]}/confirm"><button>Continue</button></form>`);
      }
      const form = new URLSearchParams(await readBody(req));
      if (m[2] === '/login') {
        const id = form.get('login');
        if (!accounts[id] || form.get('password') !== password(id)) return page(res, '<p id="error">wrong login</p>');
        return provider.interactionFinished(req, res, { login: { accountId: id, amr: accounts[id].amr } }, { mergeWithLastSubmission: false });
      }
      const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  });
  return { server, issuer };
}

// ---- a fake issuer: correct discovery, then ID tokens broken on purpose ----
function startFake() {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rotated = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const fake = { mode: 'ok', discovery: 'ok', codes: new Map(), server: createServer(), jwksHits: 0, rotated: false };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jws = (header, claims, key) => {
    const input = `${b64(header)}.${b64(claims)}`;
    if (!key) return `${input}.`;
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  fake.server.on('request', async (req, res) => {
    const url = new URL(req.url, fake.issuer);
    const json = (status, o) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (url.pathname === '/.well-known/openid-configuration') {
      if (fake.discovery === 'down') return json(404, { error: 'not here' });
      const doc = {
        issuer: fake.discovery === 'mismatch' ? 'https://elsewhere.example' : fake.issuer,
        authorization_endpoint: `${fake.issuer}/authorize`, token_endpoint: `${fake.issuer}/token`,
        userinfo_endpoint: `${fake.issuer}/userinfo`, jwks_uri: `${fake.issuer}/jwks`,
        response_types_supported: fake.discovery === 'nocode' ? ['id_token'] : ['code'],
        code_challenge_methods_supported: ['S256'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'],
      };
      if (fake.discovery === 'nojwks') delete doc.jwks_uri;
      return json(200, doc);
    }
    if (url.pathname === '/jwks') {
      fake.jwksHits++;
      const keys = [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'fake-1', use: 'sig', alg: 'ES256' }];
      if (fake.rotated) keys.push({ ...rotated.publicKey.export({ format: 'jwk' }), kid: 'fake-2', use: 'sig', alg: 'ES256' });
      return json(200, { keys });
    }
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('hex');
      fake.codes.set(code, { nonce: url.searchParams.get('nonce'), challenge: url.searchParams.get('code_challenge'), client: url.searchParams.get('client_id') });
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (url.pathname === '/token') {
      const form = new URLSearchParams(await readBody(req));
      const c = fake.codes.get(form.get('code'));
      fake.codes.delete(form.get('code'));
      const verifierOk = c && createHash('sha256').update(form.get('code_verifier') || '').digest('base64url') === c.challenge;
      fake.lastAuth = req.headers.authorization;
      if (!verifierOk) return json(400, { error: 'invalid_grant' });
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: fake.issuer, aud: c.client, sub: 'fake-sub', iat: now, exp: now + 300, nonce: c.nonce, email: 'eve@fake.example', email_verified: true, amr: ['pwd'] };
      let header = { alg: 'ES256', kid: 'fake-1', typ: 'JWT' }, key = ec.privateKey;
      if (fake.mode === 'wrong_aud') claims.aud = 'someone-else';
      if (fake.mode === 'wrong_iss') claims.iss = 'https://evil.example';
      if (fake.mode === 'wrong_nonce') claims.nonce = 'not-the-nonce';
      if (fake.mode === 'no_nonce') delete claims.nonce;
      if (fake.mode === 'expired') { claims.iat = now - 3600; claims.exp = now - 1800; }
      if (fake.mode === 'bad_signature') key = other.privateKey;
      if (fake.mode === 'alg_none') { header = { alg: 'none', kid: 'fake-1' }; key = null; }
      if (fake.mode === 'other_domain') claims.email = 'eve@msp-a.example';
      if (fake.mode === 'rotated') { header = { ...header, kid: 'fake-2' }; key = rotated.privateKey; }
      if (fake.mode === 'unknown_kid') { header = { ...header, kid: 'fake-9' }; key = other.privateKey; }
      return json(200, { access_token: 'fake-access', token_type: 'Bearer', id_token: jws(header, claims, key) });
    }
    if (url.pathname === '/userinfo') {
      return json(200, { sub: 'fake-sub', email: fake.mode === 'other_domain' ? 'eve@msp-a.example' : 'eve@fake.example', email_verified: true });
    }
    json(404, { error: 'not_found' });
  });
  return listen(fake.server).then((port) => { fake.issuer = `http://127.0.0.1:${port}`; return fake; });
}

// ---- a browser: a cookie jar per host, redirects followed by hand ----
function browser() {
  const jar = new Map();
  const b = {
    jar,
    cookieHeader(u) {
      const c = jar.get(u.host) || new Map();
      return [...c].map(([k, v]) => `${k}=${v}`).join('; ');
    },
    store(u, r) {
      const c = jar.get(u.host) || new Map();
      for (const sc of r.headers.getSetCookie()) {
        const [pair, ...attrs] = sc.split(';');
        const i = pair.indexOf('=');
        const name = pair.slice(0, i).trim(), value = pair.slice(i + 1).trim();
        if (attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '') c.delete(name);
        else c.set(name, value);
      }
      jar.set(u.host, c);
    },
    /** One request; {status, url, location, text}. */
    async request(url, { method = 'GET', form } = {}) {
      const u = new URL(url);
      const headers = { cookie: b.cookieHeader(u) };
      if (form) headers['content-type'] = FORM;
      const r = await fetch(u, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual', signal: AbortSignal.timeout(15000) });
      b.store(u, r);
      const location = r.headers.get('location');
      return { status: r.status, url: u.toString(), location: location && new URL(location, u).toString(), text: await r.text() };
    },
    /** Follows redirects until a page answers or stop(url) says so. */
    async go(url, init = {}, stop = () => false) {
      let r = await b.request(url, init);
      for (let n = 0; n < 20 && [301, 302, 303, 307].includes(r.status) && !stop(r.location); n++) r = await b.request(r.location);
      return r;
    },
  };
  return b;
}

const CONSOLE_REDIRECT = (stack) => `${stack.url}/console/callback`;

/** Starts console-web's authorization request; answers the browser on the login page. */
async function openLogin(stack, br) {
  const verifier = randomBytes(32).toString('base64url');
  const u = new URL('/oauth2/authorize', stack.url);
  const q = { response_type: 'code', client_id: 'console-web', redirect_uri: CONSOLE_REDIRECT(stack), scope: 'openid profile email', state: 'st', nonce: 'nn', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  const page = await br.go(u.toString());
  assert.equal(page.status, 200, page.text);
  return { verifier, page };
}

/** Types the address on the login page (step one); answers where that leads (not followed). */
async function typeAddress(stack, br, page, address) {
  return br.request(`${stack.url}/login?lang=en`, { method: 'POST', form: { csrf: hidden(page.text, 'csrf'), continue: hidden(page.text, 'continue'), username: address } });
}

/** At the upstream: login form, then consent. Answers the redirect back to the console. */
async function upstreamLogin(br, upstreamStart, login) {
  const form = await br.go(upstreamStart);
  assert.match(form.text, /name="login"/, form.text);
  const action = new URL(/action="([^"]+)"/.exec(form.text)[1], form.url).toString();
  let r = await br.go(action, { method: 'POST', form: { login, password: password(login) } }, (loc) => loc.includes('/login/callback'));
  if (r.status === 200 && /\/confirm/.test(r.text)) {
    const confirm = new URL(/action="([^"]+)"/.exec(r.text)[1], r.url).toString();
    r = await br.go(confirm, { method: 'POST', form: {} }, (loc) => loc.includes('/login/callback'));
  }
  assert.ok(r.location && r.location.includes('/login/callback'), `back to the console: ${r.status} ${r.location} ${r.text}`);
  return r.location;
}

/** The console's code at the client's redirect URI, exchanged for tokens. */
async function tokensFrom(stack, location, verifier) {
  assert.ok(location?.startsWith(CONSOLE_REDIRECT(stack)), `at the client: ${location}`);
  const code = new URL(location).searchParams.get('code');
  const t = await stack.request('/oauth2/token', {
    method: 'POST', headers: { 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: verifier, redirect_uri: CONSOLE_REDIRECT(stack) }).toString(),
  });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

const audits = (stack, action, tenant) => sql(stack, `SELECT coalesce(string_agg(coalesce(details->>'reason', '') || '|' || coalesce(target_id::text, ''), E'\\n' ORDER BY at), '') FROM identity.audit_events WHERE action = '${action}' AND tenant_id = '${tenant}'`);

describe('federation: a tenant signs its people in through its own OpenID Provider', () => {
  let platform, mspA, mspB, custC, upstream, fake, adminA, adminB, monitorA, adminC;
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    mspA = (await platform('POST', '/api/v1/tenants', { name: 'Fed MSP A', kind: 'msp' })).json;
    mspB = (await platform('POST', '/api/v1/tenants', { name: 'Fed MSP B', kind: 'msp' })).json;
    custC = (await platform('POST', '/api/v1/tenants', { name: 'Fed Customer C', kind: 'customer', parent_id: mspB.id })).json;
    upstream = await startUpstream(s.stack.url);
    fake = await startFake();
    adminA = jsonApi(s.stack, (await apiClient(s.stack, 'fed-a', 'msp_super_admin', mspA.id)).accessToken);
    adminB = jsonApi(s.stack, (await apiClient(s.stack, 'fed-b', 'msp_super_admin', mspB.id)).accessToken);
    monitorA = jsonApi(s.stack, (await apiClient(s.stack, 'fed-a-mon', 'msp_monitor', mspA.id)).accessToken);
    adminC = adminB; // MSP B manages its customer C
  }, { timeout: 120000 });
  after(() => {
    upstream?.server.close();
    fake?.server.close();
  });

  const configA = () => ({
    issuer: upstream.issuer, client_id: 'console-rp', client_secret: 'upstream-client-secret',
    scopes: ['openid', 'email', 'profile', 'groups'], email_domains: ['msp-a.example'],
    claim_mappings: [{ claim: 'groups', value: 'console-admins', role: 'msp_admin' }, { claim: 'groups', value: 'console-monitors', role: 'msp_monitor' }],
    enabled: true,
  });

  test('configuration: validated, discovery checked, secret sealed and never returned, audited', async () => {
    const url = `/api/v1/tenants/${mspA.id}/identity-provider`;
    assertProblem(await adminA('GET', url), 404, 'not_found');
    assertProblem(await adminA('PUT', url, '{"issuer": '), 400, 'malformed_json');
    assertProblem(await adminA('PUT', url, { ...configA(), admin: true }), 400, 'unknown_field');
    assertProblem(await adminA('PUT', url, { ...configA(), claim_mappings: [{ claim: 'groups', value: 'x', role: 'msp_admin', extra: 1 }] }), 400, 'unknown_field');
    for (const bad of [
      { issuer: 'http://idp.example.com' }, { issuer: 'ftp://127.0.0.1/x' }, { issuer: `${upstream.issuer}?x=1` },
      { email_domains: [] }, { email_domains: ['Not A Domain'] }, { email_domains: ['msp-a.example', 'msp-a.example'] },
      { scopes: ['email'] }, { scopes: 'openid' }, { enabled: 'yes' }, { client_id: '' },
      { claim_mappings: [{ claim: 'groups', value: 'x', role: 'tenant_admin' }] },
      { claim_mappings: [{ claim: 'groups', value: 'x', role: 'no_such_role' }] },
      { claim_mappings: [{ claim: 'groups', value: 'x', role: "x'; DROP TABLE grants; --" }] },
    ]) assertProblem(await adminA('PUT', url, { ...configA(), ...bad }), 400, 'validation_failed');
    const { client_secret, ...noSecret } = configA();
    assertProblem(await adminA('PUT', url, noSecret), 400, 'validation_failed');
    // misconfigured issuers: clear 422s, nothing written
    assertProblem(await adminA('PUT', url, { ...configA(), issuer: 'http://127.0.0.1:1' }), 422, 'idp_unreachable');
    for (const [mode, code] of [['down', 'idp_unreachable'], ['mismatch', 'idp_issuer_mismatch'], ['nojwks', 'idp_no_jwks'], ['nocode', 'idp_no_code_flow']]) {
      fake.discovery = mode;
      assertProblem(await adminA('PUT', url, { ...configA(), issuer: fake.issuer, email_domains: ['fake-a.example'] }), 422, code);
    }
    fake.discovery = 'ok';
    assertProblem(await adminA('GET', url), 404, 'not_found');
    // saved
    const r = await adminA('PUT', url, configA());
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.issuer, upstream.issuer);
    assert.equal(r.json.client_secret, undefined);
    assert.equal(r.json.client_secret_set, true);
    assert.equal(r.json.redirect_uri, `${s.stack.url}/login/callback`);
    assert.equal(r.json.endpoints.token_endpoint, `${upstream.issuer}/token`);
    assert.ok(!r.text.includes(client_secret));
    const g = await adminA('GET', url);
    assert.equal(g.status, 200, g.text);
    assert.ok(!g.text.includes(client_secret), 'the secret is never returned');
    assert.deepEqual(g.json.claim_mappings, configA().claim_mappings);
    const stored = await sql(s.stack, `SELECT client_secret_sealed FROM identity.identity_providers WHERE tenant_id = '${mspA.id}'`);
    assert.ok(stored.length > 20 && !stored.includes(client_secret), 'sealed at rest');
    // an update without the secret keeps it; If-Match guards concurrent edits
    const u = await adminA('PUT', url, noSecret, { 'if-match': g.headers.get('etag') });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.version, g.json.version + 1);
    assertProblem(await adminA('PUT', url, noSecret, { 'if-match': g.headers.get('etag') }), 412, 'precondition_failed');
    assert.equal(await sql(s.stack, `SELECT client_secret_sealed FROM identity.identity_providers WHERE tenant_id = '${mspA.id}'`), stored);
    const audit = await sql(s.stack, `SELECT string_agg(action || ':' || (details ? 'client_secret'), ',' ORDER BY at) FROM identity.audit_events WHERE target_type = 'identity_provider' AND tenant_id = '${mspA.id}' AND action LIKE 'identity_provider.%'`);
    assert.equal(audit, 'identity_provider.created:false,identity_provider.updated:false');
  });

  test('isolation: another MSP cannot read or change it; a monitor cannot; a domain has one owner', async () => {
    const url = `/api/v1/tenants/${mspA.id}/identity-provider`;
    assertProblem(await adminB('GET', url), 404, 'not_found');
    assertProblem(await adminB('PUT', url, { ...configA(), client_id: 'hijack' }), 404, 'not_found');
    assertProblem(await monitorA('GET', url), 403, 'forbidden');
    assertProblem(await monitorA('PUT', url, configA()), 403, 'forbidden');
    assertProblem(await adminA('GET', `/api/v1/tenants/${custC.id}/identity-provider`), 404, 'not_found');
    assertProblem(await adminA('GET', '/api/v1/tenants/not-a-uuid/identity-provider'), 404, 'not_found');
    // customer C (of MSP B) cannot claim MSP A's domain
    assertProblem(await adminC('PUT', `/api/v1/tenants/${custC.id}/identity-provider`, { issuer: fake.issuer, client_id: 'console-c', client_secret: 'c-secret', email_domains: ['fake.example', 'msp-a.example'] }), 409, 'email_domain_taken');
    // nor a domain whose addresses already sign in at another account (MSP A's people)
    await stageUser(s.stack, { username: 'dana@squat.example', tenantId: mspA.id });
    const squat = await adminC('PUT', `/api/v1/tenants/${custC.id}/identity-provider`, { issuer: fake.issuer, client_id: 'console-c', client_secret: 'c-secret', email_domains: ['fake.example', 'squat.example'] });
    assertProblem(squat, 409, 'email_domain_taken');
    assert.match(squat.json.detail, /squat\.example/);
    const c = await adminC('PUT', `/api/v1/tenants/${custC.id}/identity-provider`, { issuer: fake.issuer, client_id: 'console-c', client_secret: 'c-secret', email_domains: ['fake.example'], claim_mappings: [{ claim: 'email_verified', value: 'true', role: 'tenant_monitor' }] });
    assert.equal(c.status, 201, c.text);
    assert.equal(await sql(s.stack, `SELECT string_agg(domain, ',' ORDER BY domain) FROM identity.identity_provider_domains`), 'fake.example,msp-a.example');
  });

  test('an MSP user without upstream MFA: provisioned, roles mapped on that MSP only, the console asks for its second factor', async () => {
    const br = browser();
    const { verifier, page } = await openLogin(s.stack, br);
    const sent = await typeAddress(s.stack, br, page, 'Alice@MSP-A.example');
    assert.equal(sent.status, 303, sent.text);
    const up = new URL(sent.location);
    assert.equal(up.origin, upstream.issuer);
    assert.equal(up.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(up.searchParams.get('state') && up.searchParams.get('nonce'));
    assert.equal(up.searchParams.get('redirect_uri'), `${s.stack.url}/login/callback`);
    const back = await upstreamLogin(br, sent.location, 'alice');
    const cb = await br.request(back);
    // no session token yet: the console's own factor first (enrolment: a new user)
    assert.equal(cb.status, 200, cb.text);
    const next = unescape(/url=([^"]+)"/.exec(cb.text)[1]);
    assert.match(next, /^\/mfa\/enroll\?/);
    const user = (await sql(s.stack, `SELECT id || '|' || tenant_id || '|' || status || '|' || first_name || '|' || username FROM users.users WHERE lower(username) = 'alice@msp-a.example'`)).split('|');
    assert.deepEqual(user.slice(1), [mspA.id, 'active', 'Alice', 'alice@msp-a.example']);
    assert.equal(await sql(s.stack, `SELECT string_agg(role || '@' || tenant_id || '/' || created_by, ',') FROM roles.grants WHERE principal_id = '${user[0]}'`), `msp_admin@${mspA.id}/federation`);
    const enroll = await br.go(`${s.stack.url}${next}`);
    assert.equal(enroll.status, 200, enroll.text);
    const secret = /id="secret">([A-Z2-7]+)</.exec(enroll.text)[1];
    const account = { secret };
    const done = await br.go(`${s.stack.url}/mfa/enroll?lang=en`, { method: 'POST', form: { csrf: hidden(enroll.text, 'csrf'), continue: hidden(enroll.text, 'continue'), factor_id: hidden(enroll.text, 'factor_id'), pass_code: await nextTotp(account) } }, (loc) => loc.startsWith(CONSOLE_REDIRECT(s.stack)));
    const tokens = await tokensFrom(s.stack, done.location, verifier);
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.sub, user[0]);
    assert.equal(claims.tid, mspA.id);
    assert.ok(claims.amr.includes('mfa'));
    const me = jsonApi(s.stack, tokens.access_token);
    assert.equal((await me('GET', `/api/v1/tenants/${mspA.id}`)).status, 200);
    assertProblem(await me('GET', `/api/v1/tenants/${mspB.id}`), 404, 'not_found');
    const audit = await sql(s.stack, `SELECT string_agg(action || ':' || (details->>'console_mfa_required'), ',' ORDER BY action DESC) FROM identity.audit_events WHERE target_id = '${user[0]}' AND action IN ('user.provisioned', 'user.federated_sign_in')`);
    assert.equal(audit, 'user.provisioned:true,user.federated_sign_in:true');
  });

  test('upstream MFA is honoured; each sign-in updates the profile and the mapped roles', async () => {
    const signIn = async () => {
      const br = browser();
      const { verifier, page } = await openLogin(s.stack, br);
      const sent = await typeAddress(s.stack, br, page, 'bob@msp-a.example');
      const back = await upstreamLogin(br, sent.location, 'bob');
      const done = await br.go(back, {}, (loc) => loc.startsWith(CONSOLE_REDIRECT(s.stack)));
      return tokensFrom(s.stack, done.location, verifier);
    };
    const t1 = await signIn();
    const c1 = decodeJwt(t1.access_token);
    assert.deepEqual(c1.amr, ['fed', 'mfa']);
    assert.equal(c1.acr, 'urn:console:loa:mfa');
    const first = JSON.parse(await sql(s.stack, `SELECT details::text FROM identity.audit_events WHERE target_id = '${c1.sub}' AND action = 'user.federated_sign_in'`));
    assert.deepEqual([first.upstream_amr, first.upstream_mfa, first.console_mfa_required], [['pwd', 'otp'], true, false]);
    assert.equal(await sql(s.stack, `SELECT string_agg(role, ',') FROM roles.grants WHERE principal_id = '${c1.sub}'`), 'msp_monitor');
    // the upstream changes: a new family name, no console group any more
    accounts.bob.family_name = 'Renamed';
    accounts.bob.groups = ['staff'];
    const t2 = await signIn();
    assert.equal(decodeJwt(t2.access_token).sub, c1.sub, 'the same user, not a second one');
    assert.equal(await sql(s.stack, `SELECT last_name FROM users.users WHERE id = '${c1.sub}'`), 'Renamed');
    assert.equal(await sql(s.stack, `SELECT count(*) FROM roles.grants WHERE principal_id = '${c1.sub}'`), '0');
    assert.equal(await sql(s.stack, `SELECT count(*) FROM users.users WHERE lower(username) = 'bob@msp-a.example'`), '1');
    const roles = await sql(s.stack, `SELECT details->>'roles_removed' FROM identity.audit_events WHERE target_id = '${c1.sub}' AND action = 'user.federated_sign_in' ORDER BY at DESC LIMIT 1`);
    assert.deepEqual(JSON.parse(roles), ['msp_monitor']);
  });

  test('an upstream user never reaches another tenant: another tenant’s domain, another tenant’s user', async () => {
    const carolB = await stageUser(s.stack, { username: 'carol@msp-a.example', tenantId: mspB.id });
    const before = await sql(s.stack, 'SELECT count(*) FROM users.users');
    // mallory signs in at MSP A's upstream but claims an address of MSP B's domain
    let br = browser();
    let { page } = await openLogin(s.stack, br);
    let sent = await typeAddress(s.stack, br, page, 'alice@msp-a.example');
    let cb = await br.request(await upstreamLogin(br, sent.location, 'mallory'));
    assert.equal(cb.status, 403, cb.text);
    // carol's address is of MSP A's domain, but a user of MSP B already has it
    br = browser();
    ({ page } = await openLogin(s.stack, br));
    // typed on the login page, her address keeps its own (password) sign-in
    const own = await typeAddress(s.stack, br, page, 'carol@msp-a.example');
    assert.equal(own.status, 200, own.text);
    assert.match(own.text, /name="password"/);
    // and when MSP A's upstream says a user is carol@msp-a.example, the callback refuses
    sent = await typeAddress(s.stack, br, page, 'alice@msp-a.example');
    cb = await br.request(await upstreamLogin(br, sent.location, 'carol'));
    assert.equal(cb.status, 403, cb.text);
    assert.equal(await sql(s.stack, `SELECT count(*) FROM roles.grants WHERE principal_id = '${carolB.id}'`), '0');
    assert.equal(await sql(s.stack, 'SELECT count(*) FROM users.users'), before, 'nobody provisioned');
    const reasons = await audits(s.stack, 'user.federated_sign_in_refused', mspA.id);
    assert.match(reasons, /not of a domain of this account/);
    assert.match(reasons, /belongs to a user of another account/);
    // the fake issuer of customer C says its user is eve@msp-a.example: refused too
    fake.mode = 'other_domain';
    br = browser();
    ({ page } = await openLogin(s.stack, br));
    sent = await typeAddress(s.stack, br, page, 'eve@fake.example');
    cb = await br.go(sent.location);
    assert.equal(cb.status, 403, cb.text);
    fake.mode = 'ok';
  });

  test('forged ID tokens are refused: aud, iss, nonce, signature, alg none, expiry; state is single use and bound to the browser', async () => {
    const attempt = async (mode) => {
      fake.mode = mode;
      const br = browser();
      const { page, verifier } = await openLogin(s.stack, br);
      const sent = await typeAddress(s.stack, br, page, 'eve@fake.example');
      assert.equal(new URL(sent.location).origin, fake.issuer);
      const back = (await br.request(sent.location)).location;
      return { br, back, verifier, cb: await br.request(back) };
    };
    const expected = {
      wrong_aud: /audience/, wrong_iss: /issuer \(iss\)/, wrong_nonce: /nonce/, no_nonce: /nonce/,
      bad_signature: /signature/, alg_none: /algorithm/, expired: /expired/,
    };
    for (const [mode, reason] of Object.entries(expected)) {
      const { cb } = await attempt(mode);
      assert.equal(cb.status, 401, `${mode}: ${cb.text}`);
      const last = (await audits(s.stack, 'user.federated_sign_in_refused', custC.id)).split('\n').pop();
      assert.match(last, reason, mode);
    }
    assert.equal(await sql(s.stack, `SELECT count(*) FROM users.users WHERE tenant_id = '${custC.id}'`), '0');
    // the good token: a customer user, provisioned, no MSP role: no console factor needed
    const ok = await attempt('ok');
    assert.equal(ok.cb.status, 303, ok.cb.text);
    assert.match(ok.cb.location, /\/oauth2\/authorize\?.*session_token=/);
    const eve = await tokensFrom(s.stack, (await ok.br.request(ok.cb.location)).location, ok.verifier);
    assert.deepEqual([decodeJwt(eve.access_token).amr, decodeJwt(eve.access_token).acr], [['fed'], 'urn:console:loa:1fa'], 'a customer user without MFA: single factor, said so');
    assert.match(fake.lastAuth, /^Basic /, 'client_secret_basic at the token endpoint');
    assert.equal(await sql(s.stack, `SELECT string_agg(g.role, ',') FROM roles.grants g JOIN users.users u ON u.id = g.principal_id WHERE u.username = 'eve@fake.example'`), 'tenant_monitor');
    // the same callback again: the state was used
    const replay = await ok.br.request(ok.back);
    assert.equal(replay.status, 400, replay.text);
    // a callback in another browser (no binding cookie): refused
    fake.mode = 'ok';
    const a = browser();
    const { page } = await openLogin(s.stack, a);
    const sent = await typeAddress(s.stack, a, page, 'eve@fake.example');
    const back = (await a.request(sent.location)).location;
    const other = await browser().request(back);
    assert.equal(other.status, 400, other.text);
    // an unknown domain goes on to the password step
    const pw = await typeAddress(s.stack, a, page, 'someone@unknown.example');
    assert.equal(pw.status, 200);
    assert.match(pw.text, /name="password"/);
  });

  test("the upstream's key set is cached, and fetched again when a new key signs", async () => {
    const signIn = async (mode) => {
      fake.mode = mode;
      const br = browser();
      const { page } = await openLogin(s.stack, br);
      const sent = await typeAddress(s.stack, br, page, 'eve@fake.example');
      const back = (await br.request(sent.location)).location;
      return br.request(back);
    };
    // the key set was fetched by earlier sign-ins: a new one uses the cached copy
    const before = fake.jwksHits;
    assert.equal((await signIn('ok')).status, 303);
    assert.equal(fake.jwksHits, before, 'no fetch for a known key');
    // the upstream rotates: a token signed by a kid not in the cached set fetches it again
    fake.rotated = true;
    const cb = await signIn('rotated');
    assert.equal(cb.status, 303, cb.text);
    assert.equal(fake.jwksHits, before + 1, 'one fetch for the new key');
    // tokens naming unknown kids cannot make the console hammer the upstream
    assert.equal((await signIn('unknown_kid')).status, 401);
    assert.equal((await signIn('unknown_kid')).status, 401);
    assert.equal(fake.jwksHits, before + 1, 'an unknown kid refetches at most every 30 s');
    const last = (await audits(s.stack, 'user.federated_sign_in_refused', custC.id)).split('\n').pop();
    assert.match(last, /no key of the upstream's key set matches/);
    fake.mode = 'ok';
  });

  test('a disabled provider sends nobody upstream', async () => {
    const g = await adminC('GET', `/api/v1/tenants/${custC.id}/identity-provider`);
    const { client_secret_set, redirect_uri, endpoints, version, created_at, updated_at, tenant_id, ...cfg } = g.json;
    const r = await adminC('PUT', `/api/v1/tenants/${custC.id}/identity-provider`, { ...cfg, enabled: false });
    assert.equal(r.status, 200, r.text);
    const br = browser();
    const { page } = await openLogin(s.stack, br);
    const pw = await typeAddress(s.stack, br, page, 'eve@fake.example');
    assert.equal(pw.status, 200);
    assert.match(pw.text, /name="password"/);
  });
});
