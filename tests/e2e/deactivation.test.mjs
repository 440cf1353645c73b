// A deactivated user is out at once: their access token stops working in every service,
// their refresh token and browser session are revoked by identity (from the users
// service's event), and a resent activation link reaches a staged user's mailbox.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { FORM, activateWithTotp, readMails, stageUser, userTokens } from './lib/identity.mjs';

const s = useStack();

describe('deactivation and resend', () => {
  test('deactivation ends access, refresh and sessions at once', { timeout: 120000 }, async () => {
    const platform = jsonApi(s.stack, await s.stack.token());
    const msp = (await platform('POST', '/api/v1/tenants', { name: 'Deact MSP', kind: 'msp' })).json;
    const cust = (await platform('POST', '/api/v1/tenants', { name: 'Deact Customer', kind: 'customer', parent_id: msp.id })).json;
    const admin = jsonApi(s.stack, (await apiClient(s.stack, 'deact-admin', 'tenant_admin', cust.id)).accessToken);
    const account = await activateWithTotp(s.stack, await stageUser(s.stack, { tenantId: cust.id }));
    const tokens = await userTokens(s.stack, account, 'openid profile email offline_access');
    assert.ok(tokens.refresh_token);
    const me = () => s.stack.request('/api/v1/me', { auth: tokens.access_token });
    assert.equal((await me()).status, 200);
    const d = await admin('POST', `/api/v1/users/${account.id}/deactivate`);
    assert.equal(d.status, 200, d.text);
    // the access token (valid for minutes more) is refused right away, in every service
    await waitFor(async () => (await me()).status === 401, { timeout: 5000, what: 'the access token to stop' });
    assertProblem(await s.stack.request(`/api/v1/tenants/${cust.id}`, { auth: tokens.access_token }), 401, 'unauthorized');
    // identity revokes the refresh-token family from the users service's event
    const refresh = () =>
      s.stack.request('/oauth2/token', {
        method: 'POST',
        headers: { 'content-type': FORM },
        body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'console-web', refresh_token: tokens.refresh_token }).toString(),
      });
    await waitFor(async () => (await refresh()).status === 400, { timeout: 10000, what: 'the refresh token to be revoked' });
    assert.equal((await refresh()).json.error, 'invalid_grant');
    // reactivated, the user signs in again (a new sign-in, not the old tokens)
    assert.equal((await admin('POST', `/api/v1/users/${account.id}/reactivate`)).status, 200);
    await waitFor(async () => (await me()).status === 200, { timeout: 5000, what: 'the user to be back' });
    assert.equal((await refresh()).status, 400, 'the revoked family stays revoked');
  });

  test('resend activation mails a fresh link that works', { timeout: 60000 }, async () => {
    const platform = jsonApi(s.stack, await s.stack.token());
    const msp = (await platform('POST', '/api/v1/tenants', { name: 'Resend MSP', kind: 'msp' })).json;
    const admin = jsonApi(s.stack, (await apiClient(s.stack, 'resend-admin', 'msp_super_admin', msp.id)).accessToken);
    const staged = await stageUser(s.stack, { tenantId: msp.id });
    const before = readMails(s.stack).length;
    const r = await admin('POST', `/api/v1/users/${staged.id}/resend-activation`);
    assert.equal(r.status, 202, r.text);
    let mail;
    await waitFor(() => (mail = readMails(s.stack).slice(before).find((m) => m.headers.to?.includes(staged.username))), { timeout: 10000, what: 'the activation mail' });
    const token = new URL(/(http\S+\/activate\?token=[A-Za-z0-9_-]+)/.exec(mail.text)[1]).searchParams.get('token');
    assert.notEqual(token, staged.token);
    const done = await activateWithTotp(s.stack, { ...staged, token });
    assert.ok(done.sessionToken);
  });
});
