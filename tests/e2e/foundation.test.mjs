// The foundation, end to end through the real gateway: operations endpoints, the token
// endpoint, bearer-token verification (forgeries included), routing errors, request ids
// and trace context, rate limiting, an upstream that dies, a database restart and a
// replayed bootstrap. One stack for the file; tests that change it restore it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { createServer } from 'node:http';
import { useStack, waitFor, SERVICES, freePortBase } from './lib/stack.mjs';
import { assertProblem, basic } from './lib/api.mjs';

const s = useStack();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const decodePart = (p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
const FORM = 'application/x-www-form-urlencoded';

function token(body, { clientId, clientSecret, via = 'basic' } = {}) {
  const st = s.stack;
  const headers = { 'content-type': FORM };
  let form = body;
  if (via === 'basic') headers.authorization = basic(clientId ?? st.clientId, clientSecret ?? st.clientSecret);
  else form += `&client_id=${encodeURIComponent(clientId ?? st.clientId)}&client_secret=${encodeURIComponent(clientSecret ?? st.clientSecret)}`;
  return st.request('/oauth2/token', { method: 'POST', headers, body: form });
}

describe('operations', () => {
  test('gateway /readyz names all eight services, each ready', async () => {
    const r = await s.stack.request('/readyz');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'ready');
    assert.deepEqual(Object.keys(r.json.services).sort(), [...SERVICES].sort());
    for (const name of SERVICES) assert.equal(r.json.services[name].status, 'ready', `${name}: ${r.text}`);
  });

  test('gateway /healthz and /metrics', async () => {
    const h = await s.stack.request('/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.json.status, 'ok');
    assert.equal(h.json.service, 'gateway');
    await s.stack.request('/no/such/route');
    await s.stack.request('/.well-known/openid-configuration');
    const m = await s.stack.request('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type'), /^text\/plain/);
    assert.match(m.text, /^# TYPE console_http_requests_total counter$/m);
    assert.match(m.text, /^console_http_requests_total\{service="gateway",route="identity"[^}]*\} [1-9]/m);
    assert.match(m.text, /^console_http_errors_total\{service="gateway",code="route_not_found"\} [1-9]/m);
  });

  test('every service answers /healthz, /readyz and /metrics directly', async () => {
    for (const name of SERVICES) {
      const base = `http://127.0.0.1:${s.stack.ports[name]}`;
      const h = await s.stack.request(`${base}/healthz`);
      assert.equal(h.status, 200, `${name} /healthz`);
      assert.equal(h.json.service, name);
      const r = await s.stack.request(`${base}/readyz`);
      assert.equal(r.status, 200, `${name} /readyz: ${r.text}`);
      assert.equal(r.json.checks.database, 'ok');
      const m = await s.stack.request(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.text, new RegExp(`service="${name}"`));
    }
  });
});

describe('token endpoint', () => {
  test('client_credentials with client_secret_basic', async () => {
    const r = await token('grant_type=client_credentials');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_type, 'Bearer');
    assert.ok(r.json.expires_in > 0);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const [h, p, sig] = r.json.access_token.split('.');
    assert.ok(sig, 'a signed JWT');
    const header = decodePart(h);
    assert.equal(header.alg, 'ES256');
    const jwks = (await s.stack.request('/oauth2/jwks')).json;
    assert.ok(jwks.keys.some((k) => k.kid === header.kid), 'kid is published in the JWKS');
    const claims = decodePart(p);
    assert.equal(claims.iss, s.stack.url);
    assert.equal(claims.client_id, s.stack.clientId);
  });

  test('client_credentials with client_secret_post', async () => {
    const r = await token('grant_type=client_credentials', { via: 'post' });
    assert.equal(r.status, 200, r.text);
    assert.equal(typeof r.json.access_token, 'string');
  });

  test('a wrong secret is 401 invalid_client (RFC 6749 error and problem members)', async () => {
    for (const via of ['basic', 'post']) {
      const r = await token('grant_type=client_credentials', { via, clientSecret: 'x'.repeat(40) });
      assertProblem(r, 401, 'invalid_client');
      assert.equal(r.json.error, 'invalid_client');
      assert.equal(typeof r.json.error_description, 'string');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      if (via === 'basic') assert.match(r.headers.get('www-authenticate') || '', /^Basic/);
    }
    const unknown = await token('grant_type=client_credentials', { clientId: 'no-such-client' });
    assertProblem(unknown, 401, 'invalid_client');
  });

  test('an unknown grant type is 400 unsupported_grant_type', async () => {
    const r = await token('grant_type=urn%3Aexample%3Anonsense');
    assertProblem(r, 400, 'unsupported_grant_type');
    assert.equal(r.json.error, 'unsupported_grant_type');
  });

  test('a body over the limit is 413 payload_too_large', async () => {
    const r = await s.stack.request('/oauth2/token', {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: 'grant_type=client_credentials&scope=' + 'a'.repeat(100 * 1024),
    });
    assertProblem(r, 413, 'payload_too_large');
  });

  test('invalid UTF-8 in the body is 400', async () => {
    for (const [body, code] of [
      [Buffer.concat([Buffer.from('grant_type=client_credentials&scope='), Buffer.from([0xff, 0xfe, 0xc0, 0x80])]), 'invalid_utf8'],
      [Buffer.from('grant_type=client_credentials&scope=%FF%FE'), 'validation_failed'],
    ]) {
      const r = await s.stack.request('/oauth2/token', {
        method: 'POST',
        headers: { 'content-type': FORM, authorization: basic(s.stack.clientId, s.stack.clientSecret) },
        body,
      });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json?.code, code, r.text);
      assert.equal(r.json.error, 'invalid_request');
    }
  });
});

describe('bearer tokens', () => {
  let real; // {header, claims, parts}
  let jwks;
  before(async () => {
    const t = await s.stack.token();
    const parts = t.split('.');
    real = { parts, header: decodePart(parts[0]), claims: decodePart(parts[1]) };
    jwks = (await s.stack.request('/oauth2/jwks')).json;
  });

  test('GET /api/v1/me with the token: the api_client with platform_super_admin', async () => {
    const r = await s.stack.request('/api/v1/me', { auth: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.kind, 'api_client');
    assert.equal(r.json.client_id, s.stack.clientId);
    assert.match(r.json.id, UUID);
    assert.match(r.json.tenant_id, UUID);
    assert.match(r.json.msp_id, UUID);
    const g = r.json.grants.find((x) => x.role === 'platform_super_admin');
    assert.ok(g, `grants: ${JSON.stringify(r.json.grants)}`);
    assert.ok(g.tenant_ids.includes(r.json.tenant_id));
  });

  const es256 = (header, claims, key) => {
    const input = `${b64url(header)}.${b64url(claims)}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const forgeries = {
    'no token': () => null,
    'a garbage token': () => 'garbage.garbage.garbage',
    'a non-bearer scheme': () => ({ raw: basic(s.stack.clientId, s.stack.clientSecret) }),
    'alg=none': () => `${b64url({ alg: 'none', typ: 'at+jwt', kid: real.header.kid })}.${b64url(real.claims)}.`,
    'HS256 signed with the JWKS public key': () => {
      const jwk = jwks.keys.find((k) => k.kid === real.header.kid);
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const input = `${b64url({ alg: 'HS256', typ: 'at+jwt', kid: real.header.kid })}.${b64url(real.claims)}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    },
    'ES256 by a random key with the right kid': () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return es256(real.header, real.claims, privateKey);
    },
    'an expired-looking ES256 token by a random key with the right kid': () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const now = Math.floor(Date.now() / 1000);
      return es256(real.header, { ...real.claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 }, privateKey);
    },
    'ES256 by a random key with an unknown kid': () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return es256({ ...real.header, kid: 'no-such-kid' }, real.claims, privateKey);
    },
    'a tampered payload': () => {
      const claims = { ...real.claims, exp: real.claims.exp + 86400, kind: 'user' };
      return `${real.parts[0]}.${b64url(claims)}.${real.parts[2]}`;
    },
    'a truncated signature': () => `${real.parts[0]}.${real.parts[1]}.${real.parts[2].slice(0, -4)}`,
  };
  for (const [name, make] of Object.entries(forgeries)) {
    test(`/api/v1/me with ${name} is 401 unauthorized (gateway and service)`, async () => {
      const tok = make();
      const headers = tok === null ? {} : { authorization: tok.raw ?? `Bearer ${tok}` };
      for (const base of [s.stack.url, `http://127.0.0.1:${s.stack.ports.identity}`]) {
        const r = await s.stack.request(`${base}/api/v1/me`, { headers });
        assertProblem(r, 401, 'unauthorized');
        assert.match(r.headers.get('www-authenticate') || '', /^Bearer/, `${base}: WWW-Authenticate`);
      }
    });
  }
});

describe('routing', () => {
  test('an unknown route is 404 route_not_found', async () => {
    const r = await s.stack.request('/no/such/route');
    assertProblem(r, 404, 'route_not_found');
    const api = await s.stack.request('/api/v1/nothing-here', { auth: true });
    assertProblem(api, 404, 'route_not_found');
  });

  test('a wrong method on a service route is 405 with Allow', async () => {
    const r = await s.stack.request('/api/v1/me', { method: 'DELETE', auth: true });
    assertProblem(r, 405, 'method_not_allowed');
    assert.match(r.headers.get('allow') || '', /\bGET\b/);
  });
});

describe('request ids and trace context', () => {
  // A stub upstream in place of branding (a public route reaches it without a token)
  // shows what the gateway forwards.
  let stub;
  let seen = [];
  before(async () => {
    stub = createServer((req, res) => {
      if (req.url !== '/readyz') seen.push({ url: req.url, headers: req.headers });
      res.setHeader('content-type', 'application/json');
      if (req.headers['x-request-id']) res.setHeader('x-request-id', req.headers['x-request-id']);
      res.end(JSON.stringify({ status: 'ready', headers: req.headers }));
    });
    const port = await freePortBase(1);
    await new Promise((r) => stub.listen(port, '127.0.0.1', r));
    await s.stack.restart('gateway', { env: { CONSOLE_UPSTREAM_BRANDING: `http://127.0.0.1:${port}` } });
  });
  after(async () => {
    await s.stack.restart('gateway');
    stub.close();
  });
  const viaStub = async (headers) => {
    seen = [];
    const r = await s.stack.request('/api/v1/branding/effective?host=example.test', { headers });
    assert.equal(r.status, 200, r.text);
    assert.equal(seen.length, 1);
    return { r, up: seen[0].headers };
  };

  test('a valid X-Request-Id is kept end to end', async () => {
    const id = 'e2e-req.0123_ABC';
    const { r, up } = await viaStub({ 'x-request-id': id });
    assert.equal(up['x-request-id'], id);
    assert.equal(r.headers.get('x-request-id'), id);
    const real = await s.stack.request('/.well-known/openid-configuration', { headers: { 'x-request-id': id } });
    assert.equal(real.status, 200);
    assert.equal(real.headers.get('x-request-id'), id);
    const problem = await s.stack.request('/no/such/route', { headers: { 'x-request-id': id } });
    assert.equal(problem.json.request_id, id);
  });

  test('an invalid X-Request-Id is replaced by a generated one', async () => {
    for (const bad of ['has spaces in it', 'a'.repeat(65), 'semi;colon']) {
      const { r, up } = await viaStub({ 'x-request-id': bad });
      const got = r.headers.get('x-request-id');
      assert.notEqual(got, bad);
      assert.match(got, /^[A-Za-z0-9._-]{1,64}$/);
      assert.equal(up['x-request-id'], got, 'the upstream sees the replacement');
      const real = await s.stack.request('/.well-known/openid-configuration', { headers: { 'x-request-id': bad } });
      assert.notEqual(real.headers.get('x-request-id'), bad);
      assert.match(real.headers.get('x-request-id'), /^[A-Za-z0-9._-]{1,64}$/);
    }
    const { r } = await viaStub({});
    assert.match(r.headers.get('x-request-id'), /^[A-Za-z0-9._-]{1,64}$/, 'one is made when none is sent');
  });

  test('a valid traceparent passes to the upstream; an invalid one is dropped', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.equal((await viaStub({ traceparent: tp })).up.traceparent, tp);
    assert.equal((await viaStub({ traceparent: '00-XYZ-bad-01' })).up.traceparent, undefined);
  });

  test('client X-Forwarded-For is not trusted by default', async () => {
    const { up } = await viaStub({ 'x-forwarded-for': '203.0.113.9' });
    assert.doesNotMatch(up['x-forwarded-for'] || '', /203\.0\.113\.9/);
  });
});

describe('rate limiting', () => {
  before(() => s.stack.restart('gateway', { env: { CONSOLE_RATE_LIMIT_RPS: '5', CONSOLE_RATE_LIMIT_BURST: '5' } }));
  after(() => s.stack.restart('gateway'));

  test('a burst over the limit is 429 rate_limited with Retry-After, then recovers', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => s.stack.request('/.well-known/openid-configuration')));
    const ok = rs.filter((r) => r.status === 200).length;
    const limited = rs.filter((r) => r.status === 429);
    // a burst of 5, refilled at 5/s: about 5 pass, whatever the timing no more than 10
    assert.ok(ok >= 1 && ok <= 10, `200s: ${ok} of 20`);
    assert.equal(ok + limited.length, 20, 'every other answer is a 429');
    assertProblem(limited[0], 429, 'rate_limited');
    const ra = Number(limited[0].headers.get('retry-after'));
    assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 60, `Retry-After: ${ra}`);
    // the gateway's own health endpoints are not limited
    assert.equal((await s.stack.request('/healthz')).status, 200);
    await waitFor(async () => (await s.stack.request('/.well-known/openid-configuration')).status === 200, {
      timeout: (ra + 2) * 1000,
      interval: 250,
      what: 'the bucket to refill',
    });
  });
});

describe('resilience', () => {
  test('an upstream that dies: 503 upstream_unavailable at once, /readyz names it, and it comes back', async () => {
    await s.stack.token();
    await s.stack.kill('tenants');
    const r = await s.stack.request('/api/v1/tenants', { auth: true, timeoutMs: 2000 });
    assertProblem(r, 503, 'upstream_unavailable');
    assert.ok(r.ms < 2000, `answered in ${r.ms} ms`);
    const ready = await waitFor(
      async () => {
        const x = await s.stack.request('/readyz');
        return x.status === 503 && x.json?.services?.tenants?.status === 'unreachable' && x;
      },
      { timeout: 5000, what: '/readyz to name tenants unreachable' },
    );
    assertProblem(ready, 503, 'not_ready');
    assert.equal(ready.json.services.identity.status, 'ready');
    const again = await s.stack.request('/api/v1/tenants', { auth: true, timeoutMs: 2000 });
    assertProblem(again, 503, 'upstream_unavailable');
    assert.ok(again.headers.get('retry-after'));

    await s.stack.restart('tenants');
    await s.stack.waitReady(15000);
    const back = await s.stack.request('/api/v1/tenants', { auth: true });
    assert.notEqual(back.status, 503, back.text);
    assert.notEqual(back.json?.code, 'upstream_unavailable');
  });

  test('a database restart: services answer 503 meanwhile and recover by themselves', async () => {
    assert.equal((await s.stack.request('/api/v1/me', { auth: true })).status, 200);
    await s.stack.pg('stop');
    try {
      const down = await s.stack.request('/api/v1/me', { auth: true, timeoutMs: 15000 });
      assertProblem(down, 503, 'database_unavailable');
    } finally {
      await s.stack.pg('start');
    }
    await waitFor(async () => (await s.stack.request('/api/v1/me', { auth: true })).status === 200, {
      timeout: 10000,
      interval: 250,
      what: '/api/v1/me to work again',
    });
    await s.stack.waitReady(10000);
    const tok = await token('grant_type=client_credentials');
    assert.equal(tok.status, 200, tok.text);
  });
});

describe('bootstrap', () => {
  test('a replayed bootstrap is idempotent', async () => {
    const first = s.stack.bootstrapOutput;
    const tenant = first.match(/^platform tenant: (\S+) \(created\)$/m);
    assert.ok(tenant, first);
    assert.match(first, new RegExp(`^bootstrap API client: ${s.stack.clientId} \\(created\\)$`, 'm'));
    assert.match(first, /^activation link \(valid 72 hours\): http:\/\/\S+\/activate\?token=\S+$/m);
    for (let i = 0; i < 2; i++) {
      const { stdout } = await s.stack.consolectl('bootstrap');
      assert.match(stdout, new RegExp(`^platform tenant: ${tenant[1]}$`, 'm'), stdout);
      assert.doesNotMatch(stdout, /\(created\)/);
      assert.match(stdout, new RegExp(`^bootstrap API client: ${s.stack.clientId} \\(exists\\)$`, 'm'));
      assert.match(stdout, /^platform super-admin: admin@localhost \(staged\)$/m);
    }
    const r = await token('grant_type=client_credentials');
    assert.equal(r.status, 200, 'the client still authenticates');
  });
});
