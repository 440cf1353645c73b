// Real Chromium (Debian's package) for the tests of HTML pages, driven by playwright-core,
// and screenshots kept in the test output.
//
//   import { launchChromium, screenshot } from './lib/browser.mjs';
//   browser = await launchChromium({ hosts: ['backup.msp.example'] });
//   await screenshot(t, page, 'login');   // $E2E_SCREENSHOTS/login.png, named in the output
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = process.env.E2E_SCREENSHOTS || join(tmpdir(), 'console-e2e-screenshots');

/**
 * Headless Chromium without a sandbox (tests run as root in CI), with background
 * networking off (the machine's closed network refuses it). hosts: host names that
 * resolve to 127.0.0.1 (login domains, as the MSP's DNS would make them).
 */
export async function launchChromium({ hosts = [] } = {}) {
  mkdirSync(SHOTS, { recursive: true });
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: tests/run installs Debian chromium`);
  const args = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (hosts.length) args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** A full-page screenshot named in the test's output. */
export async function screenshot(t, page, name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  t.diagnostic(`screenshot: ${path}`);
  return path;
}
