// Helpers shared by the e2e suites: problem-document assertions, API clients with a
// role on a tenant (created with consolectl, as an operator would) and their tokens.
import assert from 'node:assert/strict';

/** Asserts an RFC 9457 problem document with the given status and code. */
export function assertProblem(r, status, code) {
  assert.equal(r.status, status, `status (body: ${r.text})`);
  assert.match(r.headers.get('content-type') || '', /^application\/(problem\+)?json/);
  assert.ok(r.json, `JSON body: ${r.text}`);
  assert.equal(r.json.code, code, `code (body: ${r.text})`);
  assert.equal(r.json.status, status);
  for (const f of ['type', 'title', 'detail', 'request_id'])
    assert.equal(typeof r.json[f], 'string', `problem member ${f}: ${r.text}`);
  assert.equal(r.json.request_id, r.headers.get('x-request-id'), 'request_id matches X-Request-Id');
}

export const basic = (id, secret) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

/** Creates an API client holding role on tenantId; resolves {clientId, clientSecret, token()}. */
export async function apiClient(stack, name, role, tenantId) {
  const args = ['create-api-client', '--name', name, '--role', role];
  if (tenantId) args.push('--tenant', tenantId);
  const { stdout } = await stack.consolectl(...args);
  const clientId = /client_id: (\S+)/.exec(stdout)?.[1];
  const clientSecret = /client_secret: (\S+)/.exec(stdout)?.[1];
  assert.ok(clientId && clientSecret, `consolectl output: ${stdout}`);
  const client = {
    clientId,
    clientSecret,
    async token() {
      const r = await stack.request('/oauth2/token', {
        method: 'POST',
        headers: { authorization: basic(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      assert.equal(r.status, 200, `token for ${name}: ${r.text}`);
      return r.json.access_token;
    },
  };
  client.accessToken = await client.token();
  return client;
}

/** A JSON API call with a bearer token: api(stack, token)('POST', path, body). */
export function jsonApi(stack, token) {
  return (method, path, body, headers = {}) =>
    stack.request(path, {
      method,
      auth: token,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
}
