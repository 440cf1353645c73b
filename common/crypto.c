/*
 * Crypto helpers on OpenSSL 3 and libargon2. Nothing here keeps mutable global state, so
 * every function is thread-safe as long as OpenSSL is (it is, from 1.1.0 on).
 */
#include "console/crypto.h"

#include "console/str.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console/errors.h"
#include "console/log.h"
#include "console/mem.h"

/* argon2id parameters (OWASP 2023 minimum): 19 MiB, 2 passes, 1 lane. */
#define PW_M_COST 19456u
#define PW_T_COST 2u
#define PW_PARALLELISM 1u
#define PW_SALT_LEN 16u
#define PW_HASH_LEN 32u

/* AES-256-GCM blob layout: nonce | ciphertext | tag. */
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_PREFIX "v1."
/* Keeps lengths within the int that EVP takes, with room for the nonce and the tag. */
#define SEAL_MAX_PLAINTEXT ((size_t)INT_MAX - 1024)

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_digits[] = "0123456789abcdef";

/* A failure of a primitive that cannot fail short of a broken library: stop loudly. */
static _Noreturn void crypto_fatal(const char *what)
{
    cc_log_error("crypto failure: %s", what);
    abort();
}

int cc_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1)
            return CC_ECRYPTO;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* Random bytes for callers that have no error path: a CSPRNG failure is fatal. */
static void random_or_die(void *buf, size_t n)
{
    if (cc_random_bytes(buf, n) != 0)
        crypto_fatal("RAND_bytes");
}

/* Lays out a UUIDv7 (48-bit unix ms, version, variant, 74 random bits from b[6..16)). */
static void format_uuid7(uint8_t b[16], char out[37])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 0; i < 6; i++) /* 48-bit big-endian unix_ts_ms */
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* variant 10 */

    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex_digits[b[i] >> 4];
        *o++ = hex_digits[b[i] & 15];
    }
    *o = '\0';
}

void cc_uuid_new(char out[37])
{
    uint8_t b[16];
    random_or_die(b + 6, sizeof(b) - 6);
    format_uuid7(b, out);
}

/* xoshiro256** (Blackman & Vigna), per thread, seeded from the CSPRNG on first use. */
static _Thread_local uint64_t xo[4];
static _Thread_local bool xo_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xo_next(void)
{
    if (!xo_seeded) {
        do
            random_or_die(xo, sizeof(xo));
        while ((xo[0] | xo[1] | xo[2] | xo[3]) == 0);
        xo_seeded = true;
    }
    uint64_t r = rotl(xo[1] * 5, 7) * 9, t = xo[1] << 17;
    xo[2] ^= xo[0];
    xo[3] ^= xo[1];
    xo[1] ^= xo[2];
    xo[0] ^= xo[3];
    xo[2] ^= t;
    xo[3] = rotl(xo[3], 45);
    return r;
}

void cc_request_id_new(char out[37])
{
    uint8_t b[16];
    uint64_t r1 = xo_next(), r2 = xo_next();
    memcpy(b + 6, &r1, 8);
    memcpy(b + 14, &r2, 2);
    format_uuid7(b, out);
}

char *cc_token_new(size_t nbytes)
{
    uint8_t *b = cc_malloc(nbytes);
    random_or_die(b, nbytes);
    char *t = cc_base64url_encode(b, nbytes);
    cc_wipe(b, nbytes);
    free(b);
    return t;
}

static char *b64_encode(const char *alphabet, bool pad, const void *data, size_t n)
{
    const uint8_t *s = data;
    char *out = cc_malloc((n + 2) / 3 * 4 + 1);
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

char *cc_base64url_encode(const void *data, size_t n)
{
    return b64_encode(b64_url, false, data, n);
}

char *cc_base64_encode(const void *data, size_t n)
{
    return b64_encode(b64_std, true, data, n);
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Strict decoding: only the URL alphabet, padding (when present) must complete the last
 * quantum, and the unused low bits of the last character must be zero, so that every
 * byte string has exactly one accepted encoding (besides the optional padding).
 */
int cc_base64url_decode_strict(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (s == NULL || memchr(s, '=', n) != NULL)
        return CC_EINVAL;
    return cc_base64url_decode(s, n, out, outlen);
}

int cc_base64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    int rc = CC_EINVAL;
    uint8_t *buf = NULL;
    size_t len = n, o = 0;

    *out = NULL;
    *outlen = 0;
    if (s == NULL && n > 0)
        goto Exit;
    while (len > 0 && n - len < 2 && s[len - 1] == '=')
        len--;
    if (len < n && n % 4 != 0)
        goto Exit;
    if (len % 4 == 1)
        goto Exit;

    buf = cc_malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(s[i]);
        if (v < 0)
            goto Exit;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        goto Exit; /* non-canonical trailing bits */
    if (len < n && (len + 3) / 4 * 4 != n)
        goto Exit; /* too much padding for the data */

    *out = buf;
    *outlen = o;
    buf = NULL;
    rc = 0;
Exit:
    free(buf);
    return rc;
}

char *cc_hex_encode(const void *data, size_t n)
{
    const uint8_t *s = data;
    char *out = cc_malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[s[i] >> 4];
        out[2 * i + 1] = hex_digits[s[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

void cc_sha256(const void *data, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(n ? data : "", n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        crypto_fatal("EVP_Digest");
}

void cc_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t d[32];
    cc_sha256(data, n, d);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex_digits[d[i] >> 4];
        out[2 * i + 1] = hex_digits[d[i] & 15];
    }
    out[64] = '\0';
}

void cc_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (keylen > (size_t)INT_MAX)
        crypto_fatal("HMAC key too long");
    /* OpenSSL reads a NULL key as "reuse the previous key": always pass a real pointer. */
    if (HMAC(EVP_sha256(), keylen ? key : "", (int)keylen, n ? data : (const void *)"", n, out,
             &len) == NULL ||
        len != 32)
        crypto_fatal("HMAC");
}

bool cc_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool cc_ct_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return cc_ct_equal(a, b, la);
}

int cc_password_hash_with(const char *password, uint32_t t_cost, uint32_t m_kib,
                          uint32_t parallelism, char **encoded)
{
    int rc = CC_EINVAL;
    uint8_t salt[PW_SALT_LEN];
    char *enc = NULL;

    *encoded = NULL;
    if (password == NULL || t_cost < 1 || m_kib < 8 * parallelism || parallelism < 1)
        goto Exit;
    rc = cc_random_bytes(salt, sizeof(salt));
    if (rc != 0)
        goto Exit;
    size_t enclen =
        argon2_encodedlen(t_cost, m_kib, parallelism, PW_SALT_LEN, PW_HASH_LEN, Argon2_id);
    enc = cc_malloc(enclen);
    int arc = argon2id_hash_encoded(t_cost, m_kib, parallelism, password, strlen(password), salt,
                                    sizeof(salt), PW_HASH_LEN, enc, enclen);
    if (arc != ARGON2_OK) {
        cc_log_error("argon2id hashing failed: %s", argon2_error_message(arc));
        rc = arc == ARGON2_MEMORY_ALLOCATION_ERROR ? CC_EIO : CC_ECRYPTO;
        goto Exit;
    }
    *encoded = enc;
    enc = NULL;
    rc = 0;
Exit:
    free(enc);
    cc_wipe(salt, sizeof(salt));
    return rc;
}

int cc_password_hash(const char *password, char **encoded)
{
    return cc_password_hash_with(password, PW_T_COST, PW_M_COST, PW_PARALLELISM, encoded);
}

int cc_password_verify(const char *encoded, const char *password)
{
    static const char prefix[] = "$argon2id$";
    if (encoded == NULL || password == NULL || strncmp(encoded, prefix, sizeof(prefix) - 1) != 0)
        return CC_EINVAL;
    int arc = argon2id_verify(encoded, password, strlen(password));
    switch (arc) {
    case ARGON2_OK:
        return 0;
    case ARGON2_VERIFY_MISMATCH:
        return CC_EAUTH;
    default:
        return CC_EINVAL;
    }
}

/* ---- master key ---- */

/* Parses 64 hex characters or the base64url of 32 bytes, ignoring surrounding whitespace. */
static int master_key_parse(const char *s, size_t n, uint8_t key[32])
{
    int rc = CC_EINVAL;
    uint8_t *dec = NULL;
    size_t declen = 0;

    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 64) {
        bool all_hex = true;
        for (size_t i = 0; i < 64 && all_hex; i++)
            all_hex = cc_hex_value(s[i]) >= 0;
        if (all_hex) {
            for (size_t i = 0; i < 32; i++)
                key[i] = (uint8_t)(cc_hex_value(s[2 * i]) << 4 | cc_hex_value(s[2 * i + 1]));
            rc = 0;
            goto Exit;
        }
    }
    if (cc_base64url_decode(s, n, &dec, &declen) != 0 || declen != 32)
        goto Exit;
    memcpy(key, dec, 32);
    rc = 0;
Exit:
    if (dec != NULL) {
        cc_wipe(dec, declen);
        free(dec);
    }
    return rc;
}

static int mkdir_private(const char *path)
{
    struct stat st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        cc_log_error("cannot create directory %s: %s", path, strerror(errno));
        return CC_EIO;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cc_log_error("%s is not a directory", path);
        return CC_EIO;
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CC_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads an existing key file; CC_ENOENT when there is none. */
static int master_key_read_file(const char *path, uint8_t key[32])
{
    int rc = CC_EIO, fd;
    char content[160];
    size_t len = 0;
    struct stat st;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return CC_ENOENT;
        cc_log_error("cannot open the master key file %s: %s", path, strerror(errno));
        return CC_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cc_log_error("the master key file %s is not a regular file", path);
        goto Exit;
    }
    if ((st.st_mode & 077) != 0)
        cc_log_warn("the master key file %s is readable by others (mode %o)", path,
                    (unsigned)(st.st_mode & 0777));
    for (;;) {
        ssize_t r = read(fd, content + len, sizeof(content) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cc_log_error("cannot read the master key file %s: %s", path, strerror(errno));
            goto Exit;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == sizeof(content)) {
            cc_log_error("the master key file %s is too long", path);
            rc = CC_EINVAL;
            goto Exit;
        }
    }
    rc = master_key_parse(content, len, key);
    if (rc != 0)
        cc_log_error("the master key file %s is malformed", path);
Exit:
    cc_wipe(content, sizeof(content));
    close(fd);
    return rc;
}

/*
 * Generates a key into a private temporary file (O_EXCL, 0600) and publishes it with
 * link(2), which fails with EEXIST when another process won the race: readers therefore
 * never see a partly written key file, and every process ends up with the same key.
 * CC_ECONFLICT when the file already exists (the caller then reads it).
 */
static int master_key_generate_file(const char *dir, const char *path, uint8_t key[32])
{
    int rc = CC_EIO, fd = -1;
    char line[65];
    uint8_t rnd[8];
    char *tmp = NULL, *rnd_hex = NULL;

    rc = cc_random_bytes(rnd, sizeof(rnd));
    if (rc != 0)
        goto Exit;
    rnd_hex = cc_hex_encode(rnd, sizeof(rnd));
    tmp = cc_aprintf("%s/.master.key.%s.tmp", dir, rnd_hex);
    rc = CC_EIO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        cc_log_error("cannot create %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (fchmod(fd, 0600) != 0)
        goto Exit;
    rc = cc_random_bytes(key, 32);
    if (rc != 0)
        goto Exit;
    for (int i = 0; i < 32; i++) {
        line[2 * i] = hex_digits[key[i] >> 4];
        line[2 * i + 1] = hex_digits[key[i] & 15];
    }
    line[64] = '\n';
    rc = CC_EIO;
    if (write_all(fd, line, sizeof(line)) != 0 || fsync(fd) != 0) {
        cc_log_error("cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto Exit;
    }
    fd = -1;
    if (link(tmp, path) != 0) {
        if (errno == EEXIST) {
            rc = CC_ECONFLICT;
        } else {
            cc_log_error("cannot create the master key file %s: %s", path, strerror(errno));
        }
        goto Exit;
    }
    cc_log_warn("generated a new master key in %s (development only)", path);
    rc = 0;
Exit:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL)
        unlink(tmp);
    if (rc != 0)
        cc_wipe(key, 32);
    cc_wipe(line, sizeof(line));
    free(tmp);
    free(rnd_hex);
    return rc;
}

int cc_master_key_load(const char *env_value, const char *data_dir, bool allow_generate,
                       cc_master_key_t *out)
{
    int rc = CC_EINVAL;
    uint8_t key[32];
    char *dir = NULL, *path = NULL;

    memset(out, 0, sizeof(*out));
    if (env_value != NULL && env_value[0] != '\0') {
        rc = master_key_parse(env_value, strlen(env_value), key);
        if (rc != 0)
            goto Exit;
    } else if (allow_generate && data_dir != NULL && data_dir[0] != '\0') {
        rc = mkdir_private(data_dir);
        if (rc != 0)
            goto Exit;
        dir = cc_aprintf("%s/secrets", data_dir);
        rc = mkdir_private(dir);
        if (rc != 0)
            goto Exit;
        path = cc_aprintf("%s/master.key", dir);
        rc = master_key_read_file(path, key);
        if (rc == CC_ENOENT) {
            rc = master_key_generate_file(dir, path, key);
            if (rc == CC_ECONFLICT)
                rc = master_key_read_file(path, key);
        }
        if (rc != 0) {
            rc = rc == CC_EINVAL ? CC_EINVAL : CC_EIO;
            goto Exit;
        }
    } else {
        goto Exit;
    }

    uint8_t digest[32];
    cc_sha256(key, sizeof(key), digest);
    for (int i = 0; i < 8; i++) {
        out->id[2 * i] = hex_digits[digest[i] >> 4];
        out->id[2 * i + 1] = hex_digits[digest[i] & 15];
    }
    out->id[16] = '\0';
    memcpy(out->key, key, sizeof(key));
    rc = 0;
Exit:
    cc_wipe(key, sizeof(key));
    free(dir);
    free(path);
    return rc;
}

/* ---- sealing ---- */

int cc_seal(const cc_master_key_t *key, const void *plaintext, size_t n, const char *aad,
            char **out)
{
    int rc = CC_EINVAL, len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *blob = NULL;
    char *b64 = NULL;

    *out = NULL;
    if (key == NULL || (plaintext == NULL && n > 0) || n > SEAL_MAX_PLAINTEXT ||
        (aad != NULL && strlen(aad) > (size_t)INT_MAX))
        goto Exit;
    size_t bloblen = SEAL_NONCE_LEN + n + SEAL_TAG_LEN;
    blob = cc_malloc(bloblen);
    uint8_t *nonce = blob, *ct = blob + SEAL_NONCE_LEN, *tag = ct + n;
    rc = cc_random_bytes(nonce, SEAL_NONCE_LEN);
    if (rc != 0)
        goto Exit;

    rc = CC_ECRYPTO;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) != 1)
        goto Exit;
    if (aad != NULL && aad[0] != '\0' &&
        EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) != 1)
        goto Exit;
    if (n > 0 && EVP_EncryptUpdate(ctx, ct, &len, plaintext, (int)n) != 1)
        goto Exit;
    if (EVP_EncryptFinal_ex(ctx, ct + (n > 0 ? (size_t)len : 0), &len) != 1)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto Exit;

    b64 = cc_base64url_encode(blob, bloblen);
    *out = cc_aprintf(SEAL_PREFIX "%s.%s", key->id, b64);
    rc = 0;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    if (blob != NULL) {
        cc_wipe(blob, SEAL_NONCE_LEN + n + SEAL_TAG_LEN);
        free(blob);
    }
    free(b64);
    return rc;
}

static bool is_key_id(const char *s, size_t n)
{
    if (n != 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int cc_unseal(const cc_master_key_t *key, const char *blob, const char *aad, uint8_t **out,
              size_t *outlen)
{
    int rc = CC_EINVAL, len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *raw = NULL, *pt = NULL;
    size_t rawlen = 0, ptlen = 0;

    *out = NULL;
    *outlen = 0;
    if (key == NULL || blob == NULL || strncmp(blob, SEAL_PREFIX, strlen(SEAL_PREFIX)) != 0)
        goto Exit;
    const char *kid = blob + strlen(SEAL_PREFIX);
    const char *dot = strchr(kid, '.');
    if (dot == NULL || !is_key_id(kid, (size_t)(dot - kid)))
        goto Exit;
    if (aad != NULL && strlen(aad) > (size_t)INT_MAX)
        goto Exit;
    if (cc_base64url_decode(dot + 1, strlen(dot + 1), &raw, &rawlen) != 0 ||
        rawlen < SEAL_NONCE_LEN + SEAL_TAG_LEN || rawlen - SEAL_NONCE_LEN > (size_t)INT_MAX)
        goto Exit;
    if (!cc_ct_equal(kid, key->id, 16)) {
        rc = CC_EKEY;
        goto Exit;
    }

    ptlen = rawlen - SEAL_NONCE_LEN - SEAL_TAG_LEN;
    const uint8_t *nonce = raw, *ct = raw + SEAL_NONCE_LEN, *tag = ct + ptlen;
    pt = cc_malloc(ptlen + 1);
    rc = CC_ECRYPTO;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) != 1)
        goto Exit;
    if (aad != NULL && aad[0] != '\0' &&
        EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) != 1)
        goto Exit;
    if (ptlen > 0 && EVP_DecryptUpdate(ctx, pt, &len, ct, (int)ptlen) != 1)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, (void *)tag) != 1)
        goto Exit;
    if (EVP_DecryptFinal_ex(ctx, pt + (ptlen > 0 ? (size_t)len : 0), &len) != 1)
        goto Exit;

    pt[ptlen] = '\0';
    *out = pt;
    *outlen = ptlen;
    pt = NULL;
    rc = 0;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    if (pt != NULL) {
        cc_wipe(pt, ptlen + 1);
        free(pt);
    }
    free(raw);
    return rc;
}

void cc_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}
