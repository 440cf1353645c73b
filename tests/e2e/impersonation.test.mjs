// "View as end-user admin" through the real gateway: a person with the right role gets a
// short token that acts inside one customer as its admin, names both identities, cannot
// nest, and is refused when the customer withdrew its consent.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useStack } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { activateWithTotp, decodeJwt, grant, sql, stageUser, userAccessToken } from './lib/identity.mjs';

const s = useStack();

describe('view as end-user admin', () => {
  let platform, msp, custA, custB, mspUser, mspApi, adminA, adminAApi;
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    msp = (await platform('POST', '/api/v1/tenants', { name: 'Imp MSP', kind: 'msp' })).json;
    custA = (await platform('POST', '/api/v1/tenants', { name: '顧客会社A', kind: 'customer', parent_id: msp.id })).json;
    custB = (await platform('POST', '/api/v1/tenants', { name: '顧客会社B', kind: 'customer', parent_id: msp.id })).json;
    // a person of the MSP with msp_super_admin, and the customer A's own tenant admin
    mspUser = await activateWithTotp(s.stack, await stageUser(s.stack, { tenantId: msp.id, first: 'Mika', last: 'Sato' }));
    await grant(s.stack, mspUser.id, 'msp_super_admin', msp.id);
    const mspToken = await userAccessToken(s.stack, mspUser);
    mspApi = jsonApi(s.stack, mspToken);
    mspApi.token = mspToken;
    adminA = await activateWithTotp(s.stack, await stageUser(s.stack, { tenantId: custA.id }));
    await grant(s.stack, adminA.id, 'tenant_admin', custA.id);
    adminAApi = jsonApi(s.stack, await userAccessToken(s.stack, adminA));
  }, { timeout: 120000 });

  test('a reason is required; the token acts in the customer as its admin, for both names', async () => {
    assertProblem(await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, {}), 400, 'validation_failed');
    assertProblem(await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: '   ' }), 400, 'validation_failed');
    assertProblem(await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'x', as: 'root' }), 400, 'unknown_field');
    const r = await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'Ticket #4711: restore fails' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(r.json.acting_as, 'tenant_admin');
    assert.equal(r.json.refresh_token, undefined, 'not refreshable');
    const c = decodeJwt(r.json.access_token);
    assert.equal(c.act.sub, mspUser.id);
    assert.equal(c.sub, r.json.session_id);
    assert.equal(c.tid, custA.id);
    assert.equal(c.msp, msp.id);
    assert.ok(c.exp - c.iat <= 1800, 'at most 30 minutes');
    const as = jsonApi(s.stack, r.json.access_token);
    const me = await as('GET', '/api/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json.acting_as, { sub: mspUser.id });
    // inside customer A only
    assert.equal((await as('GET', `/api/v1/tenants/${custA.id}`)).status, 200);
    assertProblem(await as('GET', `/api/v1/tenants/${custB.id}`), 404, 'not_found');
    const list = await as('GET', `/api/v1/tenants?parent_id=${msp.id}`);
    assert.deepEqual(list.json.items.map((t) => t.id), [custA.id]);
    // a tenant admin, not the MSP: no renaming, no lifecycle
    assertProblem(await as('PATCH', `/api/v1/tenants/${custA.id}`, { name: 'x' }), 403, 'forbidden');
    assertProblem(await as('POST', `/api/v1/tenants/${custA.id}/suspend`), 403, 'forbidden');
    // no nesting, and not the consent either
    assertProblem(await as('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'again' }), 403, 'forbidden');
    assertProblem(await as('PATCH', `/api/v1/tenants/${custA.id}`, { allow_msp_access: true }), 403, 'forbidden');
    // the session is recorded under the customer, with the real actor and the reason
    const audit = await sql(s.stack, `SELECT actor_id || '|' || (details->>'reason') || '|' || (details->>'session_id')
      FROM identity.audit_events WHERE action = 'tenant.impersonation_started' AND tenant_id = '${custA.id}'`);
    assert.equal(audit, `${mspUser.id}|Ticket #4711: restore fails|${r.json.session_id}`);
  });

  test('read_only gives a monitor; API clients and roles without the permission are refused', async () => {
    const r = await mspApi('POST', `/api/v1/tenants/${custB.id}/impersonate`, { reason: 'look only', read_only: true });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.acting_as, 'tenant_monitor');
    assert.equal(decodeJwt(r.json.access_token).imp_role, 'tenant_monitor');
    const client = jsonApi(s.stack, (await apiClient(s.stack, 'imp-client', 'msp_super_admin', msp.id)).accessToken);
    assertProblem(await client('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'bot' }), 403, 'forbidden');
    assertProblem(await adminAApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'self' }), 403, 'forbidden');
    assertProblem(await adminAApi('POST', `/api/v1/tenants/${custB.id}/impersonate`, { reason: 'sibling' }), 404, 'not_found');
    assertProblem(await mspApi('POST', `/api/v1/tenants/${msp.id}/impersonate`, { reason: 'msp' }), 409, 'conflict');
    assertProblem(await mspApi('POST', '/api/v1/tenants/01900000-0000-7000-8000-000000000000/impersonate', { reason: 'x' }), 404, 'not_found');
  });

  test('the same through the token endpoint (RFC 8693 token exchange)', async () => {
    const subject = mspApi.token;
    const exchange = (extra) =>
      s.stack.request('/oauth2/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: 'console-web',
          subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          resource: `urn:console:tenant:${custB.id}`, reason: 'Ticket #4712', ...extra,
        }).toString(),
      });
    const r = await exchange({});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(r.json.refresh_token, undefined);
    const c = decodeJwt(r.json.access_token);
    assert.equal(c.act.sub, mspUser.id);
    assert.equal(c.tid, custB.id);
    const disco = await s.stack.request('/.well-known/openid-configuration');
    assert.ok(disco.json.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
    for (const [extra, status, error] of [
      [{ reason: '' }, 400, 'invalid_request'],
      [{ resource: 'https://elsewhere.example' }, 400, 'invalid_target'],
      [{ subject_token: 'not.a.token' }, 400, 'invalid_grant'],
      [{ subject_token: r.json.access_token }, 403, 'access_denied'],
      [{ resource: `urn:console:tenant:${msp.id}` }, 409, 'access_denied'],
    ]) {
      const x = await exchange(extra);
      assert.equal(x.status, status, `${JSON.stringify(extra)}: ${x.text}`);
      assert.equal(x.json.error, error);
    }
  });

  test("the customer's consent: only its own admins withdraw it, and then the MSP is refused", async () => {
    assertProblem(await mspApi('PATCH', `/api/v1/tenants/${custA.id}`, { allow_msp_access: false }), 403, 'forbidden');
    assertProblem(await adminAApi('PATCH', `/api/v1/tenants/${custA.id}`, { allow_msp_access: 'no' }), 400, 'validation_failed');
    let r = await adminAApi('PATCH', `/api/v1/tenants/${custA.id}`, { allow_msp_access: false });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.allow_msp_access, false);
    assertProblem(await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'please' }), 403, 'msp_access_refused');
    r = await adminAApi('PATCH', `/api/v1/tenants/${custA.id}`, { allow_msp_access: true });
    assert.equal(r.json.allow_msp_access, true);
    assert.equal((await mspApi('POST', `/api/v1/tenants/${custA.id}/impersonate`, { reason: 'thanks' })).status, 201);
  });
});
