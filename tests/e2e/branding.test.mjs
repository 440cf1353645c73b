// Branding through the real gateway: an MSP sets its brand (strict validation, unique
// login domain), a customer overrides some fields and inherits the rest, the public
// effective endpoint shows presentation fields only (ETag, Cache-Control), uploads are
// checked by content (hostile SVGs sanitized or refused), another MSP can neither read nor
// write the brand, the mail identity sends and the pages it serves carry the brand, and
// in Chromium the login page on the MSP's login domain shows its name, logo and colours
// (screenshot in $E2E_SCREENSHOTS, default <tmp>/console-e2e-screenshots).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { SHOTS, launchChromium } from './lib/browser.mjs';
import { png } from './lib/png.mjs';
import { useStack, waitFor } from './lib/stack.mjs';
import { apiClient, assertProblem, jsonApi } from './lib/api.mjs';
import { activateWithTotp, grant, readMails, sql, stageUser, userAccessToken } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;
const tag = () => Math.random().toString(36).slice(2, 8);

const HOSTILE_SVG = `<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="40" onload="alert(1)">
  <script>alert(document.cookie)</script>
  <style>@import url(https://evil.example/x.css);</style>
  <foreignObject width="100" height="20"><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
  <a href="javascript:alert(2)"><text x="1" y="10">click</text></a>
  <use xlink:href="https://evil.example/sprite.svg#icon"/>
  <image href="https://evil.example/track.png" width="10" height="10"/>
  <rect width="120" height="40" fill="#00aa55" onclick="alert(3)" style="fill:url(https://evil.example/p)"/>
  <circle cx="20" cy="20" r="10" fill="url(#g)"/>
  <linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>
</svg>`;

const LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&c;</text></svg>`;

const FULL = {
  product_name: 'Alpha Backup',
  primary_color: '#AA2200',
  secondary_color: '#fff4e0',
  accent_color: '#0055aa',
  support_email: 'support@alpha.example',
  support_phone: '+81 3-1234-5678',
  support_url: 'https://help.alpha.example/support',
  sender_name: 'Alpha Backup Team',
  sender_email: 'noreply@alpha.example',
  social_links: { x: 'https://x.com/alpha', linkedin: 'https://www.linkedin.com/company/alpha', other: 'https://blog.alpha.example' },
  footer_text: '© Alpha K.K. — your data, kept safe',
  default_language: 'en',
};
/** GET through the gateway with exactly these headers (fetch() cannot set Host). */
function rawGet(path, headers) {
  const u = new URL(st().url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const PRESENTATION = [
  'accent_color', 'default_language', 'favicon_url', 'footer_text', 'logo_url', 'primary_color', 'product_name',
  'secondary_color', 'social_links', 'support_email', 'support_phone', 'support_url',
].sort();

let platform, mspA, mspB, custA1, custA2, superA, adminA, superB, domainA;

async function setup() {
  platform = jsonApi(st(), await st().token());
  const mk = async (name, kind, parent_id) => {
    const r = await platform('POST', '/api/v1/tenants', { name, kind, parent_id });
    assert.equal(r.status, 201, r.text);
    return r.json;
  };
  const platformId = await sql(st(), "SELECT id FROM tenants.tenants WHERE kind = 'platform'");
  mspA = await mk(`Brand MSP A ${tag()}`, 'msp', platformId);
  mspB = await mk(`Brand MSP B ${tag()}`, 'msp', platformId);
  custA1 = await mk(`Brand customer A1 ${tag()}`, 'customer', mspA.id);
  custA2 = await mk(`Brand customer A2 ${tag()}`, 'customer', mspA.id);
  superA = jsonApi(st(), (await apiClient(st(), 'brand-super-a', 'msp_super_admin', mspA.id)).accessToken);
  adminA = jsonApi(st(), (await apiClient(st(), 'brand-admin-a', 'msp_admin', mspA.id)).accessToken);
  superB = jsonApi(st(), (await apiClient(st(), 'brand-super-b', 'msp_super_admin', mspB.id)).accessToken);
  domainA = `backup-${tag()}.alpha.example`;
}

describe('branding', () => {
  let tokenA;
  before(async () => {
    await setup();
    tokenA = (await apiClient(st(), 'brand-uploader-a', 'msp_super_admin', mspA.id)).accessToken;
  });
  const put = (tenant, what, bytes, type = 'application/octet-stream', token = tokenA) =>
    st().request(`/api/v1/tenants/${tenant}/branding/${what}`, { method: 'PUT', auth: token, headers: { 'content-type': type }, body: bytes });

  test('an MSP sets its brand; GET answers it with an ETag; If-Match guards changes; audited', async () => {
    let r = await superA('GET', `/api/v1/tenants/${mspA.id}/branding`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, 0);
    assert.equal(r.json.product_name, null);
    assert.equal(r.json.effective.product_name, 'Console', 'platform defaults before any brand');
    r = await superA('PUT', `/api/v1/tenants/${mspA.id}/branding`, { ...FULL, login_domain: domainA.toUpperCase() });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('etag'), '"1"');
    assert.equal(r.json.primary_color, '#aa2200', 'colours are stored lower-case');
    assert.equal(r.json.login_domain, domainA, 'the login domain is stored lower-case');
    assert.deepEqual(r.json.social_links, FULL.social_links);
    assert.equal(r.json.effective.product_name, 'Alpha Backup');
    assertProblem(await superA('PUT', `/api/v1/tenants/${mspA.id}/branding`, { ...FULL, login_domain: domainA }, { 'if-match': '"7"' }), 412, 'precondition_failed');
    r = await superA('PUT', `/api/v1/tenants/${mspA.id}/branding`, { ...FULL, login_domain: domainA }, { 'if-match': '"1"' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, 2);
    const audit = await superA('GET', `/api/v1/audit-events?tenant_id=${mspA.id}&action=branding.updated`);
    assert.equal(audit.status, 200, audit.text);
    assert.equal(audit.json.items.length, 2, 'both changes are in the audit log');
    assert.ok(audit.json.items.every((e) => e.target_id === mspA.id), audit.text);
  });

  test('bad inputs are refused field by field; nothing is written', async () => {
    const url = `/api/v1/tenants/${mspA.id}/branding`;
    const cases = [
      [{ primary_color: 'red' }, 'primary_color'],
      [{ primary_color: '#12345g' }, 'primary_color'],
      [{ secondary_color: '#fff' }, 'secondary_color'],
      [{ accent_color: 12 }, 'accent_color'],
      [{ support_url: 'http://help.alpha.example' }, 'support_url'],
      [{ support_url: 'javascript:alert(1)' }, 'support_url'],
      [{ support_url: 'https://user:pw@evil.example/' }, 'support_url'],
      [{ support_url: 'https://help.alpha.example/"><script>' }, 'support_url'],
      [{ support_email: 'not-an-address' }, 'support_email'],
      [{ sender_email: 'a@b' }, 'sender_email'],
      [{ sender_name: 'Evil <evil@example.com>' }, 'sender_name'],
      [{ support_phone: 'call me' }, 'support_phone'],
      [{ product_name: 'x'.repeat(65) }, 'product_name'],
      [{ product_name: 'bell\u0007' }, 'product_name'],
      [{ footer_text: 'line\nbreak' }, 'footer_text'],
      [{ default_language: 'de' }, 'default_language'],
      [{ login_domain: 'not a host' }, 'login_domain'],
      [{ login_domain: '10.0.0.1' }, 'login_domain'],
      [{ login_domain: 'localhost' }, 'login_domain'],
      [{ social_links: { myspace: 'https://myspace.com/a' } }, 'social_links'],
      [{ social_links: { x: 'http://x.com/a' } }, 'social_links.x'],
      [{ social_links: ['https://x.com/a'] }, 'social_links'],
      [{ product_name: "Robert'); DROP TABLE brands;--" }, null],
    ];
    for (const [body, field] of cases) {
      const r = await superA('PUT', url, body);
      if (field === null) {
        assert.equal(r.status, 200, `SQL metacharacters are only text: ${r.text}`);
        continue;
      }
      assertProblem(r, 400, 'validation_failed');
      assert.ok(r.json.errors.some((e) => e.field === field), `${JSON.stringify(body)} -> ${r.text}`);
    }
    assertProblem(await superA('PUT', url, { product_name: 'A', colour: '#000000' }), 400, 'unknown_field');
    assertProblem(await superA('PUT', url, '{"product_name": '), 400, 'malformed_json');
    assertProblem(await st().request(url, { method: 'PUT', auth: tokenA, headers: { 'content-type': 'text/plain' }, body: '{}' }), 415, 'unsupported_media_type');
    // the brand is as the last good PUT left it
    const r = await superA('PUT', url, { ...FULL, login_domain: domainA });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.product_name, 'Alpha Backup');
  });

  test('a login domain is unique platform-wide and never the platform host', async () => {
    const r = await superB('PUT', `/api/v1/tenants/${mspB.id}/branding`, { product_name: 'Beta', login_domain: domainA });
    assertProblem(r, 409, 'login_domain_taken');
    const host = new URL(st().url).hostname === '127.0.0.1' ? null : new URL(st().url).hostname;
    if (host) assertProblem(await superB('PUT', `/api/v1/tenants/${mspB.id}/branding`, { login_domain: host }), 409, 'login_domain_taken');
    const betaDomain = `beta-${tag()}.example`;
    const ok = await superB('PUT', `/api/v1/tenants/${mspB.id}/branding`, { product_name: 'Beta Vault', primary_color: '#333333', default_language: 'ja', login_domain: betaDomain });
    assert.equal(ok.status, 200, ok.text);
    // its login page, by the Host the browser sends, in the brand's language when the
    // browser states none we serve
    const page = await rawGet('/login', { host: `${betaDomain}:443`, 'accept-language': 'de-DE' });
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /<html lang="ja">/);
    assert.match(page.text, /<span id="brand-name">Beta Vault<\/span>/);
    assert.match(page.text, /サインイン/);
    assert.match(page.text, /background:#333333/);
    // a refusal of the protocol endpoints wears the brand too, in the person's language
    const refused = await rawGet('/oauth2/authorize?client_id=unknown-app&response_type=code', { host: betaDomain, 'accept-language': 'ja' });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.text, /<span id="brand-name">Beta Vault<\/span>/);
    assert.match(refused.text, /サインイン要求が拒否されました/);
    assert.match(refused.text, /<span id="code">unknown_client<\/span>/);
    assert.match(refused.headers['content-security-policy'], /default-src 'none'/);
    const refusedEn = await rawGet('/oauth2/authorize?client_id=unknown-app&response_type=code', { host: betaDomain, 'accept-language': 'en' });
    assert.match(refusedEn.text, /The application that sent you here is not registered\./);
    const other = await rawGet('/login', { host: 'unknown.example.org', 'accept-language': 'en' });
    assert.match(other.text, /<span id="brand-name">Console<\/span>/);
    // a client cannot pose as a login domain through X-Forwarded-Host (the gateway sets it)
    const posed = await rawGet('/login', { host: 'unknown.example.org', 'x-forwarded-host': betaDomain, 'accept-language': 'en' });
    assert.match(posed.text, /<span id="brand-name">Console<\/span>/);
  });

  test('isolation: another MSP cannot read or write the brand; branding:manage is required to change it', async () => {
    assertProblem(await superB('GET', `/api/v1/tenants/${mspA.id}/branding`), 404, 'not_found');
    assertProblem(await superB('PUT', `/api/v1/tenants/${mspA.id}/branding`, { product_name: 'Hijack' }), 404, 'not_found');
    assertProblem(await superB('DELETE', `/api/v1/tenants/${custA1.id}/branding`), 404, 'not_found');
    assertProblem(await put(mspA.id, 'logo', png(32, 32, [0, 0, 0]), 'image/png', (await apiClient(st(), 'b-up', 'msp_super_admin', mspB.id)).accessToken), 404, 'not_found');
    assertProblem(await superB('POST', `/api/v1/tenants/${mspA.id}/branding/preview`, {}), 404, 'not_found');
    // an MSP admin (no branding:manage) reads it but cannot change it
    assert.equal((await adminA('GET', `/api/v1/tenants/${mspA.id}/branding`)).status, 200);
    assertProblem(await adminA('PUT', `/api/v1/tenants/${mspA.id}/branding`, { product_name: 'Nope' }), 403, 'forbidden');
    assertProblem(await adminA('POST', `/api/v1/tenants/${mspA.id}/branding/test-mail`), 403, 'forbidden');
    assertProblem(await st().request(`/api/v1/tenants/${mspA.id}/branding`), 401, 'unauthorized');
    const after = await superA('GET', `/api/v1/tenants/${mspA.id}/branding`);
    assert.equal(after.json.product_name, 'Alpha Backup');
  });

  test('a customer overrides some fields and inherits the rest; removing the override inherits again', async () => {
    let r = await superA('PUT', `/api/v1/tenants/${custA1.id}/branding`, { product_name: 'A1 Safe', accent_color: '#123456' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.primary_color, null, 'not set on the customer');
    assert.equal(r.json.effective.primary_color, '#aa2200', 'inherited from the MSP');
    assert.equal(r.json.effective.accent_color, '#123456');
    r = await st().request(`/api/v1/branding/effective?tenant_id=${custA1.id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.product_name, 'A1 Safe');
    assert.equal(r.json.primary_color, '#aa2200');
    assert.equal(r.json.support_email, FULL.support_email);
    r = await st().request(`/api/v1/branding/effective?tenant_id=${custA2.id}`);
    assert.equal(r.json.product_name, 'Alpha Backup', 'a customer without an override shows its MSP');
    assert.equal((await superA('DELETE', `/api/v1/tenants/${custA1.id}/branding`)).status, 204);
    r = await st().request(`/api/v1/branding/effective?tenant_id=${custA1.id}`);
    assert.equal(r.json.product_name, 'Alpha Backup');
  });

  test('the public effective brand: presentation fields only, ETag and Cache-Control, by tenant or by host', async () => {
    let r = await st().request(`/api/v1/branding/effective?host=${domainA}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), PRESENTATION);
    assert.ok(!r.text.includes(mspA.id), 'no internal id');
    assert.ok(!r.text.includes('noreply@alpha.example'), 'no sender address');
    assert.ok(!r.text.includes(domainA), 'no login domain');
    assert.equal(r.json.product_name, 'Alpha Backup');
    assert.match(r.headers.get('cache-control'), /max-age=\d+/);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    const again = await st().fetch(`/api/v1/branding/effective?host=${domainA.toUpperCase()}:443`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    r = await st().request('/api/v1/branding/effective?host=unknown.example.org');
    assert.equal(r.status, 200);
    assert.equal(r.json.product_name, 'Console', 'an unknown host shows the platform brand');
    assertProblem(await st().request('/api/v1/branding/effective'), 400, 'invalid_parameter');
    assertProblem(await st().request(`/api/v1/branding/effective?host=${domainA}&tenant_id=${mspA.id}`), 400, 'invalid_parameter');
    assertProblem(await st().request('/api/v1/branding/effective?tenant_id=nope'), 400, 'invalid_parameter');
    assertProblem(await st().request('/api/v1/branding/effective?host=%3Cscript%3E'), 400, 'invalid_parameter');
    assertProblem(await st().request('/api/v1/branding/effective?tenant_id=01900000-0000-7000-8000-000000000999'), 404, 'not_found');
  });

  test('uploads are checked by content; assets are served by hash with their checked type', async () => {
    // a PNG declared as SVG is stored and served as what it is
    let r = await put(mspA.id, 'logo', png(120, 40, [0, 85, 170]), 'image/svg+xml');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.content_type, 'image/png');
    assert.deepEqual([r.json.width, r.json.height], [120, 40]);
    assert.match(r.json.url, /^\/branding\/assets\/[0-9a-f]{64}$/);
    let a = await st().fetch(r.json.url);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('content-type'), 'image/png');
    assert.equal(a.headers.get('x-content-type-options'), 'nosniff');
    assert.match(a.headers.get('cache-control'), /immutable/);
    assert.deepEqual(Buffer.from(await a.arrayBuffer()), png(120, 40, [0, 85, 170]));
    const eff = await st().request(`/api/v1/branding/effective?tenant_id=${custA2.id}`);
    assert.equal(eff.json.logo_url, r.json.url, 'customers inherit the logo');

    // hostile SVG: rebuilt without anything active or external
    r = await put(mspA.id, 'favicon', HOSTILE_SVG, 'image/png');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.content_type, 'image/svg+xml');
    assert.ok(r.json.removed >= 8, `removed ${r.json.removed}`);
    a = await st().fetch(r.json.url);
    assert.equal(a.headers.get('content-type'), 'image/svg+xml');
    assert.match(a.headers.get('content-security-policy'), /default-src 'none'.*sandbox/);
    const svg = await a.text();
    for (const bad of ['script', 'onload', 'onclick', 'foreignObject', 'javascript', 'evil.example', '@import', '<style'])
      assert.ok(!svg.includes(bad), `${bad} removed: ${svg}`);
    assert.match(svg, /<rect width="120" height="40" fill="#00aa55"/);
    assert.match(svg, /fill="url\(#g\)"/, 'local references stay');

    // refused
    assertProblem(await put(mspA.id, 'logo', LAUGHS, 'image/svg+xml'), 400, 'svg_unsafe');
    assertProblem(await put(mspA.id, 'logo', '<?xml-stylesheet href="https://evil.example/a.css"?><svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"/>'), 400, 'svg_unsafe');
    assertProblem(await put(mspA.id, 'logo', '<html><body>not svg</body></html>'), 400, 'svg_unsafe');
    assertProblem(await put(mspA.id, 'logo', '<svg xmlns="http://www.w3.org/2000/svg" width="20"'), 400, 'svg_unsafe');
    assertProblem(await put(mspA.id, 'logo', 'GIF89a........', 'image/png'), 415, 'image_unsupported');
    assertProblem(await put(mspA.id, 'logo', '#!/bin/sh\nrm -rf /', 'image/png'), 415, 'image_unsupported');
    assertProblem(await put(mspA.id, 'logo', png(120, 40, [1, 2, 3]).subarray(0, 40), 'image/png'), 400, 'image_malformed');
    const tiny = await put(mspA.id, 'logo', png(4, 4, [1, 2, 3]), 'image/png');
    assertProblem(tiny, 400, 'image_dimensions');
    assert.deepEqual([tiny.json.width, tiny.json.height], [4, 4]);
    assertProblem(await put(mspA.id, 'favicon', png(600, 600, [1, 2, 3]), 'image/png'), 400, 'image_dimensions');
    assertProblem(await put(mspA.id, 'logo', Buffer.concat([png(64, 64, [9, 9, 9]), Buffer.alloc(600 * 1024)]), 'image/png'), 413, 'payload_too_large');
    assert.equal((await st().fetch('/branding/assets/not-a-hash')).status, 404);
    assert.equal((await st().fetch(`/branding/assets/${'0'.repeat(64)}`)).status, 404);
    // the logo in force is still the PNG
    const g = await superA('GET', `/api/v1/tenants/${mspA.id}/branding`);
    assert.match(g.json.logo_url, /^\/branding\/assets\//);
    const logos = await sql(st(), `SELECT count(*) FROM branding.audit_events WHERE action IN ('branding.logo_set', 'branding.favicon_set') AND target_id = '${mspA.id}'`);
    assert.equal(Number(logos), 2);
    // removing the favicon: the inherited (none) shows again; removing it twice is fine
    assert.equal((await superA('DELETE', `/api/v1/tenants/${mspA.id}/branding/favicon`)).status, 204);
    assert.equal((await superA('DELETE', `/api/v1/tenants/${mspA.id}/branding/favicon`)).status, 204);
    assert.equal((await st().request(`/api/v1/branding/effective?tenant_id=${mspA.id}`)).json.favicon_url, null);
    assertProblem(await adminA('DELETE', `/api/v1/tenants/${mspA.id}/branding/logo`), 403, 'forbidden');
    assert.equal((await st().fetch(r.json.url)).status, 200, 'a replaced asset stays reachable (mail already sent shows it)');
  });

  test('preview renders the login page and a sample mail with an unsaved brand', async () => {
    const r = await superA('POST', `/api/v1/tenants/${custA2.id}/branding/preview`, { product_name: 'Preview Name', primary_color: '#010203' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.login_page, /<span id="brand-name">Preview Name<\/span>/);
    assert.match(r.json.login_page, /background:#010203/);
    assert.match(r.json.login_page, /support@alpha\.example/, 'inherited support contact');
    assert.equal(r.json.mail.subject, 'Preview Name: Test message');
    assert.equal(r.json.mail.reply_to, FULL.support_email);
    assert.equal(r.json.mail.from_name, 'Alpha Backup Team');
    assert.match(r.json.mail.html, /https:\/\/x\.com\/alpha/);
    const saved = await st().request(`/api/v1/branding/effective?tenant_id=${custA2.id}`);
    assert.equal(saved.json.product_name, 'Alpha Backup', 'a preview saves nothing');
    assertProblem(await superA('POST', `/api/v1/tenants/${custA2.id}/branding/preview`, { primary_color: 'blue' }), 400, 'validation_failed');
  });

  test("identity's mail and pages carry the brand of the person's account", async () => {
    // a customer user created through the API: the activation mail is branded
    const email = `brand-${tag()}@customer.example`;
    const body = {
      tenant_id: custA2.id, title: 'Mr', first_name: 'Ken', last_name: 'Sato', preferred_currency: 'JPY', language: 'en',
      primary_email: email, phone: '+81 3-1234-5678', street: '1-1', city: 'Chiyoda', state: 'Tokyo', country: 'JP',
      postal_code: '100-0001', time_zone: 'Asia/Tokyo',
    };
    const u = await superA('POST', '/api/v1/users', body);
    assert.equal(u.status, 201, u.text);
    const mail = await waitFor(() => readMails(st()).find((m) => m.headers.to?.includes(email)), { what: 'the activation mail', timeout: 15000 });
    assert.equal(mail.headers.subject, 'Alpha Backup: Activate your account');
    assert.match(mail.headers.from, /Alpha Backup Team.*<noreply@alpha\.example>/);
    assert.equal(mail.headers['reply-to'], FULL.support_email);
    assert.match(mail.text, /on Alpha Backup/);
    assert.match(mail.text, /&lang=en/, 'the link opens the page in the person\'s language');
    assert.match(mail.text, /Support: support@alpha\.example/);
    assert.match(mail.html, /background:#aa2200/);
    assert.match(mail.html, /\/branding\/assets\/[0-9a-f]{64}/, 'the logo');
    assert.match(mail.html, /linkedin/);
    // a language the mail does not speak gets the brand's default language (Beta: ja)
    const fr = `brand-fr-${tag()}@customer.example`;
    const ub = await superB('POST', '/api/v1/users', { ...body, tenant_id: mspB.id, primary_email: fr, language: 'fr' });
    assert.equal(ub.status, 201, ub.text);
    const frMail = await waitFor(() => readMails(st()).find((m) => m.headers.to?.includes(fr)), { what: 'the mail in the brand\'s language', timeout: 15000 });
    assert.equal(frMail.headers.subject, 'Beta Vault: アカウントを有効にしてください');
    assert.match(frMail.text, /&lang=ja/);
    // the activation page (no login domain) is branded by the link's account
    const link = /(http\S+\/activate\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    const page = await st().request(new URL(link).pathname + new URL(link).search);
    assert.equal(page.status, 200);
    assert.match(page.text, /<span id="brand-name">Alpha Backup<\/span>/);
    assert.match(page.headers.get('content-security-policy'), /style-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    // the login page of an OAuth client registered in the MSP's account shows the MSP
    const clientId = `alpha-portal-${tag()}`;
    await sql(st(), `INSERT INTO identity.clients (id, client_id, name, kind, tenant_id, msp_id, scopes, grant_types, redirect_uris, post_logout_redirect_uris, created_by)
      VALUES (gen_random_uuid(), :'p1', 'Alpha portal', 'public', :'p2', :'p2', '{openid}', '{authorization_code}', '{https://portal.alpha.example/cb}', '{}', 'e2e')`, [clientId, mspA.id]);
    const cont = encodeURIComponent(`response_type=code&client_id=${clientId}&redirect_uri=https://portal.alpha.example/cb`);
    const login = await st().request(`/login?continue=${cont}`, { headers: { 'accept-language': 'en' } });
    assert.equal(login.status, 200);
    assert.match(login.text, /<span id="brand-name">Alpha Backup<\/span>/);
    const plain = await st().request('/login', { headers: { 'accept-language': 'en' } });
    assert.match(plain.text, /<span id="brand-name">Console<\/span>/);
    // the test mail goes to the person calling
    const staged = await stageUser(st(), { tenantId: mspA.id });
    const account = await activateWithTotp(st(), staged);
    await grant(st(), staged.id, 'msp_super_admin', mspA.id);
    const me = jsonApi(st(), await userAccessToken(st(), account));
    const t = await me('POST', `/api/v1/tenants/${mspA.id}/branding/test-mail`);
    assert.equal(t.status, 202, t.text);
    const test = await waitFor(() => readMails(st()).find((m) => m.headers.to?.includes(staged.username) && /Test message/.test(m.headers.subject)), { what: 'the test mail' });
    assert.equal(test.headers.subject, 'Alpha Backup: Test message');
    // no way to flood an inbox: one per account and address a minute, with Retry-After
    const again = await me('POST', `/api/v1/tenants/${mspA.id}/branding/test-mail`);
    assertProblem(again, 429, 'rate_limited');
    assert.ok(Number(again.headers.get('retry-after')) >= 1, 'Retry-After says when');
    assertProblem(await superA('POST', `/api/v1/tenants/${mspA.id}/branding/test-mail`), 409, 'caller_has_no_email');
    assertProblem(await superA('POST', `/api/v1/tenants/${mspA.id}/branding/test-mail`, { to: 'x@y.example' }), 400, 'unknown_field');
  });
});

describe('the login page on a branded login domain in Chromium', () => {
  let browser;
  before(async () => {
    // the login domain resolves to the gateway, as the MSP's DNS would make it
    browser = await launchChromium({ hosts: [domainA] });
  });
  after(async () => browser && (await browser.close()));

  test('shows the product name, the logo and the colours', async (t) => {
    const port = new URL(st().url).port;
    const ctx = await browser.newContext({ locale: 'en-US' });
    const page = await ctx.newPage();
    const r = await page.goto(`http://${domainA}:${port}/login`);
    assert.equal(r.status(), 200);
    assert.equal(await page.textContent('#brand-name'), 'Alpha Backup');
    assert.match(await page.title(), /Alpha Backup/);
    const logo = await page.$('#brand-logo');
    assert.ok(logo, 'logo element');
    const natural = await logo.evaluate((img) => [img.complete, img.naturalWidth, img.naturalHeight]);
    assert.deepEqual(natural, [true, 120, 40], 'the logo loaded from the login domain');
    const header = await page.$eval('header.brand', (e) => getComputedStyle(e).backgroundColor);
    assert.equal(header, 'rgb(170, 34, 0)', 'primary colour #aa2200');
    const button = await page.$eval('button[type=submit]', (e) => getComputedStyle(e).backgroundColor);
    assert.equal(button, 'rgb(0, 85, 170)', 'accent colour #0055aa');
    const bodyBg = await page.$eval('body', (e) => getComputedStyle(e).backgroundColor);
    assert.equal(bodyBg, 'rgb(255, 244, 224)', 'secondary colour #fff4e0');
    assert.match(await page.textContent('#brand-support'), /support@alpha\.example/);
    assert.match(await page.textContent('#brand-footer'), /Alpha K\.K\./);
    const social = await page.$$eval('#brand-social a', (as) => as.map((a) => a.href));
    assert.deepEqual(social, ['https://x.com/alpha', 'https://www.linkedin.com/company/alpha', 'https://blog.alpha.example/']);
    const path = join(SHOTS, 'branding-login-domain.png');
    await page.screenshot({ path, fullPage: true });
    t.diagnostic(`screenshot: ${path}`);
    // the platform's own host still shows the platform's brand
    const plain = await ctx.newPage();
    await plain.goto(`${st().url}/login`);
    assert.equal(await plain.textContent('#brand-name'), 'Console');
    await ctx.close();
  });
});
