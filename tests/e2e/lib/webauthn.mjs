// A software WebAuthn authenticator for end-to-end tests: ES256, RS256 or EdDSA keys from
// node:crypto, hand-built CBOR, attestation "none", "packed" self or "packed" basic (an
// attestation certificate made with the openssl command), UP/UV flags and a signature
// counter. Every part of a response can be forged through `forge` to test the server's
// checks (challenge, origin, RP ID, type, flags, counter, signature).
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ---- CBOR (RFC 8949), the subset WebAuthn uses: ints, bytes, text, arrays, maps ----
function head(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}
export function cbor(v) {
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (Buffer.isBuffer(v)) return Buffer.concat([head(2, v.length), v]);
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([head(4, v.length), ...v.map(cbor)]);
  if (v instanceof Map) return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
  throw new Error(`cbor: cannot encode ${typeof v}`);
}

const ALGS = { ES256: -7, EdDSA: -8, RS256: -257 };
const sha256 = (b) => createHash('sha256').update(b).digest();
const b64 = (b) => Buffer.from(b).toString('base64url');

/** An attestation certificate and key (openssl CLI); subject and AAGUID extension settable. */
export function attestationCert({ ou = 'Authenticator Attestation', aaguid } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'att-'));
  try {
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2',
      '-subj', `/C=JP/O=Console E2E/OU=${ou}/CN=Soft Authenticator`,
      '-addext', 'basicConstraints=critical,CA:FALSE'];
    if (aaguid) args.push('-addext', `1.3.6.1.4.1.45724.1.1.4=DER:04:10:${aaguid.toString('hex').match(/../g).join(':')}`);
    execFileSync('openssl', args, { stdio: 'pipe' });
    return {
      der: new X509Certificate(readFileSync(join(dir, 'c.pem'))).raw,
      key: createPrivateKey(readFileSync(join(dir, 'k.pem'))),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class SoftAuthenticator {
  /**
   * alg: 'ES256' | 'RS256' | 'EdDSA'; attestation: 'none' | 'self' | 'basic'; uv: sets the
   * UV flag; origin and rpId: where the "browser" is.
   */
  constructor({ alg = 'ES256', attestation = 'none', uv = true, origin, rpId, cert, aaguid } = {}) {
    this.alg = alg;
    this.attestation = attestation;
    this.uv = uv;
    this.origin = origin;
    this.rpId = rpId;
    this.counter = 0;
    this.aaguid = aaguid || randomBytes(16);
    this.credentialId = randomBytes(32);
    const kp = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
    this.privateKey = kp.privateKey;
    this.publicJwk = kp.publicKey.export({ format: 'jwk' });
    this.cert = attestation === 'basic' ? cert || attestationCert({ aaguid: this.aaguid }) : null;
  }

  coseKey() {
    const j = this.publicJwk, d = (s) => Buffer.from(s, 'base64url');
    if (this.alg === 'ES256') return new Map([[1, 2], [3, -7], [-1, 1], [-2, d(j.x)], [-3, d(j.y)]]);
    if (this.alg === 'RS256') return new Map([[1, 3], [3, -257], [-1, d(j.n)], [-2, d(j.e)]]);
    return new Map([[1, 1], [3, -8], [-1, 6], [-2, d(j.x)]]);
  }

  signWith(key, alg, data) {
    return sign(alg === 'EdDSA' ? null : 'sha256', data, key);
  }

  clientData(type, options, forge) {
    return Buffer.from(JSON.stringify({
      type: forge.type || type,
      challenge: forge.challenge || options.challenge,
      origin: forge.origin || this.origin,
      crossOrigin: forge.crossOrigin || false,
    }));
  }

  authData({ attested, forge }) {
    let flags = 0x01 | (this.uv ? 0x04 : 0) | (attested ? 0x40 : 0);
    if (forge.flags !== undefined) flags = forge.flags;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(forge.counter !== undefined ? forge.counter : this.counter);
    const parts = [sha256(Buffer.from(forge.rpId || this.rpId)), Buffer.from([flags]), count];
    if (attested) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(this.credentialId.length);
      parts.push(this.aaguid, len, this.credentialId, cbor(forge.coseKey || this.coseKey()));
    }
    return Buffer.concat(parts);
  }

  /** navigator.credentials.create: {client_data_json, attestation_object} as the API takes them. */
  create(options, forge = {}) {
    const cdj = this.clientData('webauthn.create', options, forge);
    const ad = this.authData({ attested: true, forge });
    const msg = Buffer.concat([ad, sha256(cdj)]);
    let fmt = 'none', stmt = new Map();
    if (this.attestation === 'self') {
      fmt = 'packed';
      stmt = new Map([['alg', ALGS[this.alg]], ['sig', this.signWith(this.privateKey, this.alg, msg)]]);
    } else if (this.attestation === 'basic') {
      fmt = 'packed';
      stmt = new Map([['alg', -7], ['sig', this.signWith(this.cert.key, 'ES256', msg)], ['x5c', [this.cert.der]]]);
    }
    if (forge.fmt) fmt = forge.fmt;
    if (forge.stmt) stmt = forge.stmt;
    const att = cbor(new Map([['fmt', fmt], ['attStmt', stmt], ['authData', ad]]));
    return { client_data_json: b64(cdj), attestation_object: b64(att) };
  }

  /** navigator.credentials.get: {client_data_json, authenticator_data, signature}. */
  get(options, forge = {}) {
    if (forge.counter === undefined) this.counter += 1;
    const cdj = this.clientData('webauthn.get', options, forge);
    const ad = this.authData({ attested: false, forge });
    let sig = this.signWith(this.privateKey, this.alg, Buffer.concat([ad, sha256(cdj)]));
    if (forge.badSignature) {
      sig = Buffer.from(sig);
      sig[sig.length - 5] ^= 0x01;
    }
    return { client_data_json: b64(cdj), authenticator_data: b64(ad), signature: b64(sig) };
  }
}
