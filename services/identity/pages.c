/*
 * The hosted HTML pages a person meets: /login, /mfa (verify), /mfa/enroll (TOTP
 * enrolment), /activate. No JavaScript: plain forms that post back to the same path, on
 * the same authentication steps as the JSON API (identity_authn_*). English or Japanese
 * by ?lang=, else Accept-Language, else the brand's default language. Branded
 * (console/brand.h) by the login domain the browser asked for, else by the person the page
 * is about (the activation or recovery link, the sign-in in progress).
 *
 * Protections: a CSRF token (double submit: an HttpOnly SameSite=Strict cookie and a
 * hidden field, compared in constant time), the sign-in state token only in an HttpOnly
 * SameSite=Strict cookie, Content-Security-Policy (no script but WebAuthn's hashed one,
 * form-action limited to the page, this issuer and the redirect origin of the authorization
 * request it continues: util.c; frame-ancestors 'none'), X-Frame-Options DENY, no-store. The only
 * redirect target after sign-in is this issuer's own /oauth2/authorize, which checks the client's
 * registered redirect URI itself.
 */
#include <qrencode.h>
#include <string.h>
#include <strings.h>

#include "console/brand.h"
#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "policy.h"

#define CSRF_COOKIE "console_csrf"
#define AUTHN_COOKIE "console_authn"
#define REMEMBER_COOKIE "console_rmb" /* a remembered browser (remember.c), Path=/login */
#define CONTINUE_MAX 4096

typedef struct text {
    const char *lang, *login_title, *username, *password, *sign_in, *mfa_title, *code, *verify,
        *enroll_title, *enroll_help, *secret, *open_app, *activate_title, *new_password, *question,
        *answer, *image, *activate, *wrong_login, *locked, *suspended, *wrong_code, *start_again,
        *expired_link, *bad_link, *done_title, *done, *bad_form, *unavailable, *policy_help,
        *forgot_title, *forgot_link, *forgot_send, *forgot_sent, *reset_title, *your_image, *reset,
        *wrong_answer, *bad_recovery, *next, *image_check, *not_you;
    /* WebAuthn (security keys and platform biometrics) */
    const char *wa_enroll_title, *wa_title, *wa_help, *wa_start, *wa_failed, *wa_use_key,
        *wa_use_code, *wa_refused;
    /* the factors by name, codes sent by e-mail, SMS and voice, remember-device ("{}": a
     * value put in) */
    const char *f_totp, *f_email, *f_sms, *f_voice, *f_webauthn, *other_methods, *choose_title,
        *choose_help, *send_code, *resend, *sent_email, *will_email, *sent_sms, *will_sms,
        *sent_voice, *will_voice, *code_received, *phone_label, *phone_help_sms, *phone_help_voice,
        *bad_phone, *too_soon, *too_many, *not_delivered, *not_allowed, *remember,
        *enroll_email_title, *enroll_sms_title, *enroll_voice_title;
} text_t;

static const text_t en = {
    .lang = "en",
    .login_title = "Sign in",
    .username = "Username",
    .password = "Password",
    .sign_in = "Sign in",
    .mfa_title = "Verification code",
    .code = "6-digit code from your authenticator app",
    .verify = "Verify",
    .enroll_title = "Set up your authenticator app",
    .enroll_help = "Add this account to an authenticator app (Google Authenticator or any "
                   "TOTP app) with the key below, then enter the code it shows.",
    .secret = "Key",
    .open_app = "Open in an authenticator app",
    .activate_title = "Activate your account",
    .new_password = "New password",
    .question = "Recovery question",
    .answer = "Answer",
    .image = "Security image (shown when you sign in)",
    .activate = "Set password",
    .wrong_login = "The username or the password is wrong.",
    .locked = "Too many failed attempts: this account is locked for 15 minutes.",
    .suspended = "This account is suspended; its users cannot sign in.",
    .wrong_code = "The code is wrong or was already used. Wait for the next code and try "
                  "again.",
    .start_again = "This sign-in has expired or failed too often. Please start again.",
    .expired_link = "This activation link has expired. A new link has been sent to your "
                    "e-mail address.",
    .bad_link = "This activation link is not valid or was already used.",
    .done_title = "You are signed in",
    .done = "Your account is ready.",
    .bad_form = "The form could not be read. Please try again.",
    .unavailable = "The service is unavailable. Please try again in a moment.",
    .policy_help = "At least 8 characters, with a lower-case letter, an upper-case letter and "
                   "a digit, not containing your username, not a common password.",
    .forgot_title = "Forgotten password",
    .forgot_link = "Forgot your password?",
    .forgot_send = "Send me a link",
    .forgot_sent = "If an account with this username exists, a link to reset its password has "
                   "been mailed to it. The link is valid for one hour.",
    .reset_title = "Choose a new password",
    .your_image = "Your security image",
    .reset = "Set the new password",
    .wrong_answer = "The answer is wrong.",
    .next = "Next",
    .image_check = "Enter your password only if this is the image you chose.",
    .not_you = "Not you?",
    .bad_recovery = "This link is not valid, has expired, or was tried too often. Ask for a new "
                    "one.",
    .wa_enroll_title = "Set up a security key or biometrics",
    .wa_title = "Use your security key",
    .wa_help = "Press the button, then touch your security key or confirm with your device's "
               "fingerprint, face or PIN.",
    .wa_start = "Use security key",
    .wa_failed = "The browser did not complete the request. Press the button to try again.",
    .wa_use_key = "Use a security key or biometrics instead",
    .wa_use_code = "Use a code instead",
    .wa_refused = "The security key's answer was refused. Try again.",
    .f_totp = "Authenticator app",
    .f_email = "Code by e-mail",
    .f_sms = "Code by text message (SMS)",
    .f_voice = "Code by voice call",
    .f_webauthn = "Security key or biometrics",
    .other_methods = "Use another method",
    .choose_title = "Set up a second factor",
    .choose_help = "Choose how you will confirm that it is you when you sign in:",
    .send_code = "Send code",
    .resend = "Send a new code",
    .sent_email = "We sent a 6-digit code to {}.",
    .will_email = "We will send a 6-digit code to {}.",
    .sent_sms = "We sent a 6-digit code by text message to {}.",
    .will_sms = "We will send a 6-digit code by text message to {}.",
    .sent_voice = "We are calling {} to read out a 6-digit code.",
    .will_voice = "We will call {} and read out a 6-digit code.",
    .code_received = "6-digit code you received",
    .phone_label = "Phone number in international format (e.g. +819012345678)",
    .phone_help_sms = "Enter the mobile phone number that will receive the codes by text "
                      "message.",
    .phone_help_voice = "Enter the phone number that we will call to read out the codes.",
    .bad_phone = "Enter the number in international format: + and the country code, then the "
                 "number, digits only (e.g. +819012345678).",
    .too_soon = "A code was sent a moment ago. Use it, or ask for a new one in {} seconds.",
    .too_many = "Too many codes were requested. Try again in {} minutes, or use another "
                "method.",
    .not_delivered = "The code could not be sent. Try again later, or use another method.",
    .not_allowed = "Your organization's sign-in policy does not allow this method. Choose "
                   "another.",
    .remember = "Remember this browser for {} days (no second factor here until then)",
    .enroll_email_title = "Set up codes by e-mail",
    .enroll_sms_title = "Set up codes by text message",
    .enroll_voice_title = "Set up codes by voice call",
};

static const text_t ja = {
    .lang = "ja",
    .login_title = "サインイン",
    .username = "ユーザー名",
    .password = "パスワード",
    .sign_in = "サインイン",
    .mfa_title = "確認コード",
    .code = "認証アプリに表示される 6 桁のコード",
    .verify = "確認",
    .enroll_title = "認証アプリの設定",
    .enroll_help = "下のキーで認証アプリ (Google Authenticator などの TOTP アプリ) "
                   "にこのアカウントを追加し、表示されたコードを入力してください。",
    .secret = "キー",
    .open_app = "認証アプリで開く",
    .activate_title = "アカウントの有効化",
    .new_password = "新しいパスワード",
    .question = "秘密の質問",
    .answer = "答え",
    .image = "セキュリティ画像 (サインイン時に表示されます)",
    .activate = "パスワードを設定",
    .wrong_login = "ユーザー名またはパスワードが正しくありません。",
    .locked = "失敗が多すぎるため、このアカウントは 15 分間ロックされています。",
    .suspended = "このアカウントは停止されているため、サインインできません。",
    .wrong_code = "コードが正しくないか、すでに使用されています。次のコードでもう一度お試し"
                  "ください。",
    .start_again = "このサインインは期限切れか、失敗が多すぎます。最初からやり直してください。",
    .expired_link = "この有効化リンクは期限切れです。新しいリンクをメールで送信しました。",
    .bad_link = "この有効化リンクは無効か、すでに使用されています。",
    .done_title = "サインインしました",
    .done = "アカウントの準備ができました。",
    .bad_form = "フォームを読み取れませんでした。もう一度お試しください。",
    .unavailable = "サービスを利用できません。しばらくしてからもう一度お試しください。",
    .policy_help = "8 文字以上で、小文字・大文字・数字を含み、ユーザー名を含まず、よく使われる"
                   "パスワードでないこと。",
    .forgot_title = "パスワードを忘れた場合",
    .forgot_link = "パスワードをお忘れですか?",
    .forgot_send = "リンクを送信",
    .forgot_sent = "このユーザー名のアカウントが存在する場合、パスワード再設定用のリンクをメールで"
                   "送信しました。リンクの有効期限は 1 時間です。",
    .reset_title = "新しいパスワードの設定",
    .your_image = "あなたのセキュリティ画像",
    .reset = "新しいパスワードを設定",
    .wrong_answer = "答えが正しくありません。",
    .next = "次へ",
    .image_check = "ご自身で選んだ画像が表示されている場合にのみパスワードを入力してください。",
    .not_you = "別のユーザーですか？",
    .bad_recovery = "このリンクは無効か、期限切れか、試行回数が多すぎます。もう一度リンクを"
                    "依頼してください。",
    .wa_enroll_title = "セキュリティキーまたは生体認証の設定",
    .wa_title = "セキュリティキーを使用",
    .wa_help = "ボタンを押してから、セキュリティキーに触れるか、デバイスの指紋・顔・PIN で確認して"
               "ください。",
    .wa_start = "セキュリティキーを使用",
    .wa_failed = "ブラウザーで操作が完了しませんでした。もう一度ボタンを押してください。",
    .wa_use_key = "代わりにセキュリティキーまたは生体認証を使用",
    .wa_use_code = "代わりにコードを使用",
    .wa_refused = "セキュリティキーの応答が拒否されました。もう一度お試しください。",
    .f_totp = "認証アプリ",
    .f_email = "メールで届くコード",
    .f_sms = "SMS で届くコード",
    .f_voice = "音声通話で届くコード",
    .f_webauthn = "セキュリティキーまたは生体認証",
    .other_methods = "別の方法を使用",
    .choose_title = "2 段階目の認証の設定",
    .choose_help = "サインイン時に本人確認する方法を選んでください:",
    .send_code = "コードを送信",
    .resend = "新しいコードを送信",
    .sent_email = "{} に 6 桁のコードを送信しました。",
    .will_email = "{} に 6 桁のコードを送信します。",
    .sent_sms = "{} に SMS で 6 桁のコードを送信しました。",
    .will_sms = "{} に SMS で 6 桁のコードを送信します。",
    .sent_voice = "{} に電話をかけて 6 桁のコードをお知らせしています。",
    .will_voice = "{} に電話をかけて 6 桁のコードをお知らせします。",
    .code_received = "受け取った 6 桁のコード",
    .phone_label = "国際形式の電話番号 (例: +819012345678)",
    .phone_help_sms = "SMS でコードを受け取る携帯電話の番号を入力してください。",
    .phone_help_voice = "コードをお知らせする電話の番号を入力してください。",
    .bad_phone = "国際形式で入力してください: + と国番号に続けて、番号を数字のみで (例: "
                 "+819012345678)。",
    .too_soon = "コードを送信したばかりです。届いたコードを使用するか、{} 秒後に新しいコードを"
                "要求してください。",
    .too_many = "コードの要求が多すぎます。{} 分後にもう一度お試しいただくか、別の方法を使用して"
                "ください。",
    .not_delivered = "コードを送信できませんでした。しばらくしてからもう一度お試しいただくか、"
                     "別の方法を使用してください。",
    .not_allowed = "組織のサインインポリシーでこの方法は許可されていません。別の方法を選んで"
                   "ください。",
    .remember = "このブラウザーを {} 日間記憶する (その間、ここでは 2 段階目の認証は不要)",
    .enroll_email_title = "メールでのコードの設定",
    .enroll_sms_title = "SMS でのコードの設定",
    .enroll_voice_title = "音声通話でのコードの設定",
};

static const char *cookie_get(cc_req_t *req, const char *name);

/* ---- the brand of a page ---- */

/* The tenant a page is for when the host is no login domain: the person's (the activation
 * or recovery link's token, the sign-in in progress), else the OAuth client's the sign-in
 * continues to. */
static const cc_stmt_t q_page_tenant =
    CC_STMT("identity_page_tenant",
            "SELECT tenant_id FROM (SELECT 1 AS o, u.tenant_id FROM activation_tokens a"
            " JOIN users.sign_in_profiles u ON u.id = a.user_id WHERE a.token_hash = $1"
            " UNION ALL SELECT 1, u.tenant_id FROM recovery_tokens r"
            " JOIN users.sign_in_profiles u ON u.id = r.user_id WHERE r.token_hash = $1"
            " UNION ALL SELECT 1, u.tenant_id FROM authn_transactions t"
            " JOIN users.sign_in_profiles u ON u.id = t.user_id"
            " WHERE t.state_hash = $2 AND t.expires_at > now()"
            " UNION ALL SELECT 2, c.tenant_id FROM clients c WHERE c.client_id = $3"
            " AND c.tenant_id IS NOT NULL) x ORDER BY o LIMIT 1",
            3);

#define page_param identity_page_param

static void page_brand(cc_req_t *req, cc_brand_t *b)
{
    const char *host = cc_req_header(req, "x-forwarded-host");
    if (host == NULL)
        host = cc_req_header(req, "host");
    if (cc_brand_for_host(req->db, req->pool, host, b, NULL) != CC_ENOENT)
        return; /* the login domain's brand (or, the database down, the defaults) */
    const char *token = page_param(req, "token"), *cont = page_param(req, "continue");
    const char *state = cookie_get(req, AUTHN_COOKIE), *client = NULL;
    if (cont != NULL && cc_query_get(req->pool, cont, "client_id", &client) != 1)
        client = NULL;
    if ((token == NULL || *token == '\0') && (state == NULL || *state == '\0') && client == NULL)
        return;
    char dt[65] = "", ds[65] = "";
    if (token && *token)
        identity_secret_digest(token, dt);
    if (state && *state)
        identity_secret_digest(state, ds);
    PGresult *res;
    const char *p[] = {dt, ds, client ? client : ""};
    int rc = cc_db_in_tx(req->db)
                 ? cc_db_query(req->db, req->pool, &q_page_tenant, p, &res)
                 : cc_db_read(req->db, req->pool, &identity_system_scope, &q_page_tenant, p, &res);
    cc_brand_t tb;
    if (rc == 0 && PQntuples(res) == 1 &&
        cc_brand_for_tenant(req->db, req->pool, PQgetvalue(res, 0, 0), &tb) == 0)
        *b = tb;
}

static const text_t *text_for(cc_req_t *req)
{
    const char *lang = NULL;
    if (cc_query_get(req->pool, req->query, "lang", &lang) == 1 && lang)
        return strcmp(lang, "ja") == 0 ? &ja : &en;
    const char *al = cc_req_header(req, "accept-language");
    if (al && (strncasecmp(al, "ja", 2) == 0 || strncasecmp(al, "en", 2) == 0))
        return strncasecmp(al, "ja", 2) == 0 ? &ja : &en;
    cc_brand_t b; /* no preference we can serve: the brand's language */
    page_brand(req, &b);
    return strcmp(b.default_language, "ja") == 0 ? &ja : &en;
}

static const char *cookie_attrs(cc_req_t *req)
{
    identity_app_t *app = req->app;
    return strncmp(app->svc->issuer, "https:", 6) == 0 ? "; Secure" : "";
}

static const char *cookie_get(cc_req_t *req, const char *name)
{
    const char *h = cc_req_header(req, "cookie");
    size_t n = strlen(name);
    for (const char *s = h; s && *s;) {
        while (*s == ' ' || *s == ';')
            s++;
        size_t len = strcspn(s, ";");
        if (len > n && strncmp(s, name, n) == 0 && s[n] == '=')
            return cc_pool_strndup(req->pool, s + n + 1, len - n - 1);
        s += len;
    }
    return NULL;
}

/* The CSRF token of this browser: the cookie's, or a new one (set on the response). */
static const char *csrf_token(cc_req_t *req)
{
    const char *t = cookie_get(req, CSRF_COOKIE);
    if (t && strlen(t) == 43)
        return t;
    char *fresh = cc_token_new(32);
    t = cc_pool_strdup(req->pool, fresh);
    free(fresh);
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool, CSRF_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s",
                                 t, cookie_attrs(req)));
    return t;
}

static bool csrf_ok(cc_req_t *req, const char *field)
{
    const char *c = cookie_get(req, CSRF_COOKIE);
    return c && field && strlen(c) == 43 && strlen(field) == 43 && cc_ct_equal(c, field, 43);
}

static void set_authn_cookie(cc_req_t *req, const char *state, int max_age)
{
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool,
                                 AUTHN_COOKIE
                                 "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
                                 state ? state : "", max_age, cookie_attrs(req)));
}

static void render_script(cc_req_t *req, int status, const text_t *t, const char *title,
                          const char *error, const char *body, const char *script);

/* Renders a page in the brand's chrome: title, an optional error, and body (already HTML). */
static void render(cc_req_t *req, int status, const text_t *t, const char *title, const char *error,
                   const char *body)
{
    render_script(req, status, t, title, error, body, NULL);
}

/* The same with an inline script (allowed by its hash, nothing else). */
static void render_script(cc_req_t *req, int status, const text_t *t, const char *title,
                          const char *error, const char *body, const char *script)
{
    cc_brand_t brand;
    page_brand(req, &brand);
    const char *css = cc_brand_page_css(req->pool, &brand);
    cc_buf_t b;
    cc_buf_init(&b);
    cc_brand_page_open(&b, &brand, t->lang, title, css);
    if (error) {
        cc_buf_puts(&b, "<p role=\"alert\" id=\"error\">");
        cc_buf_html(&b, error);
        cc_buf_puts(&b, "</p>");
    }
    cc_buf_puts(&b, body ? body : "");
    if (script)
        cc_buf_printf(&b, "<script>%s</script>", script);
    cc_brand_page_close(&b, &brand, t->lang);
    identity_page_headers_script(req, cc_brand_css_hash(req->pool, css),
                                 script ? cc_brand_css_hash(req->pool, script) : NULL);
    cc_res_text(req, status, "text/html; charset=utf-8", b.data, b.len);
    cc_buf_free(&b);
}

/* A form's fields from an application/x-www-form-urlencoded body; false renders 400. */
static bool page_form(cc_req_t *req, const text_t *t, const char *const *names, const char **vals)
{
    const char *ct = cc_req_header(req, "content-type");
    const char *body = req->body ? req->body : "";
    bool ok = ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
              cc_utf8_valid(body, req->body_len) && strlen(body) == req->body_len;
    for (int i = 0; ok && names[i]; i++) {
        vals[i] = NULL;
        if (cc_query_get(req->pool, body, names[i], &vals[i]) < 0)
            ok = false;
    }
    if (!ok)
        render(req, 400, t, t->login_title, t->bad_form, NULL);
    return ok;
}

/* The authorization request a sign-in continues (a raw query), or NULL when unusable. */
static const char *continue_ok(const char *c)
{
    if (c == NULL || *c == '\0' || strlen(c) > CONTINUE_MAX || cc_has_control(c, strlen(c)) ||
        strstr(c, "session_token=") != NULL)
        return NULL;
    return c;
}

static void hidden(cc_buf_t *b, const char *name, const char *value)
{
    if (value == NULL)
        return;
    cc_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    cc_buf_html(b, value);
    cc_buf_puts(b, "\">");
}

static void field(cc_buf_t *b, const char *label, const char *name, const char *type,
                  const char *extra)
{
    cc_buf_printf(b, "<p><label for=\"%s\">", name);
    cc_buf_html(b, label);
    cc_buf_printf(b, "</label><br><input id=\"%s\" name=\"%s\" type=\"%s\" %s></p>", name, name,
                  type, extra ? extra : "");
}

/* /path?continue=<urlencoded>&lang=.. (pool) */
static const char *with_continue(cc_req_t *req, const char *path, const char *cont, const text_t *t)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "%s?lang=%s", path, t->lang);
    if (cont) {
        cc_buf_puts(&b, "&continue=");
        cc_buf_percent_encode(&b, cont);
    }
    const char *out = cc_pool_strdup(req->pool, b.data);
    cc_buf_free(&b);
    return out;
}

static void see_other(cc_req_t *req, const char *location)
{
    identity_page_headers(req);
    cc_res_header(req, "location", location);
    cc_res_text(req, 303, "text/plain; charset=utf-8", "", 0);
}

/* After SUCCESS: back to the authorization request with the session token, or done. */
static void signed_in(cc_req_t *req, const text_t *t, const char *cont, const char *session)
{
    set_authn_cookie(req, NULL, 0);
    if (cont) {
        see_other(
            req, cc_pool_printf(req->pool, "/oauth2/authorize?%s&session_token=%s", cont, session));
        return;
    }
    render(req, 200, t, t->done_title, NULL,
           cc_pool_printf(req->pool, "<p id=\"done\">%s</p>", t->done));
}

/* An outcome that is not the expected next step: the page for it. */
static void step_failed(cc_req_t *req, const text_t *t, const identity_authn_out_t *o,
                        const char *title, const char *cont)
{
    if (o->db_rc != 0) {
        render(req, 503, t, title, t->unavailable, NULL);
        return;
    }
    const char *again = cc_pool_printf(req->pool, "<p><a href=\"%s\">%s</a></p>",
                                       with_continue(req, "/login", cont, t), t->login_title);
    if (o->status && strcmp(o->status, "LOCKED_OUT") == 0) {
        render(req, 403, t, title, t->locked, again);
        return;
    }
    switch (o->err) {
    case CC_ERR_TENANT_SUSPENDED:
        render(req, 403, t, title, t->suspended, again);
        return;
    case CC_ERR_STATE_TOKEN_INVALID:
    case CC_ERR_TOO_MANY_ATTEMPTS:
    case CC_ERR_NOT_FOUND:
        set_authn_cookie(req, NULL, 0);
        render(req, o->err == CC_ERR_TOO_MANY_ATTEMPTS ? 429 : 400, t, title, t->start_again,
               again);
        return;
    default:
        render(req, 400, t, title, t->bad_form, again);
    }
}

/* ---- /login ---- */

/*
 * The security image of a username: the one its owner chose at activation, else (no
 * choice, or no such user) one derived from the username with a keyed hash, stable per
 * username, so the page looks the same for every name typed and tells nothing about
 * which accounts exist. A phishing site cannot show it: it does not know it.
 */
static const cc_stmt_t q_image = CC_STMT(
    "identity_page_image",
    "SELECT c.security_image FROM users.sign_in_profiles u JOIN credentials c ON c.user_id = u.id"
    " WHERE lower(u.username) = lower($1)",
    1);

static const char *image_for(cc_req_t *req, const char *username)
{
    identity_app_t *app = req->app;
    PGresult *res;
    if (cc_db_read(req->db, req->pool, &identity_system_scope, &q_image, (const char *[]){username},
                   &res) == 0 &&
        PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        identity_security_image_valid(PQgetvalue(res, 0, 0)))
        return PQgetvalue(res, 0, 0);
    size_t n = 0;
    while (identity_security_images[n])
        n++;
    char *lower = cc_pool_strdup(req->pool, username);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    uint8_t mac[32];
    cc_hmac_sha256(app->svc->master_key.key, sizeof(app->svc->master_key.key), lower, strlen(lower),
                   mac);
    return identity_security_images[((uint32_t)mac[0] << 8 | mac[1]) % n];
}

/* Step one asks for the username only; step two (image set) shows the security image
 * and asks for the password. */
static void login_form(cc_req_t *req, int status, const text_t *t, const char *error,
                       const char *cont, const char *username, const char *image)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "<form method=\"post\" action=\"/login?lang=%s\">", t->lang);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "continue", cont);
    if (image == NULL) {
        cc_buf_t v;
        cc_buf_init(&v);
        cc_buf_puts(&v, "autocomplete=\"username\" required value=\"");
        cc_buf_html(&v, username ? username : "");
        cc_buf_puts(&v, "\"");
        field(&b, t->username, "username", "text", v.data);
        cc_buf_free(&v);
        cc_buf_printf(&b, "<p><button type=\"submit\">%s</button></p></form>", t->next);
    } else {
        hidden(&b, "username", username);
        cc_buf_puts(&b, "<p id=\"who\">");
        cc_buf_html(&b, username);
        cc_buf_printf(&b, " <a id=\"not-you\" href=\"/login?lang=%s\">%s</a></p>", t->lang,
                      t->not_you);
        cc_buf_puts(&b, "<p id=\"image\">");
        cc_buf_html(&b, t->your_image);
        cc_buf_puts(&b, ": <strong>");
        cc_buf_html(&b, image);
        cc_buf_puts(&b, "</strong></p><p><small>");
        cc_buf_html(&b, t->image_check);
        cc_buf_puts(&b, "</small></p>");
        field(&b, t->password, "password", "password",
              "autocomplete=\"current-password\" required autofocus");
        cc_buf_printf(&b, "<p><button type=\"submit\">%s</button></p></form>", t->sign_in);
    }
    cc_buf_printf(&b, "<p><a id=\"forgot\" href=\"/password/forgot?lang=%s\">%s</a></p>", t->lang,
                  t->forgot_link);
    render(req, status, t, t->login_title, error, b.data);
    cc_buf_free(&b);
}

void identity_page_login(cc_req_t *req)
{
    const text_t *t = text_for(req);
    /* the query is the authorization request to continue (from /oauth2/authorize) */
    const char *cont = NULL;
    if (cc_query_get(req->pool, req->query, "continue", &cont) != 1)
        cont = strstr(req->query, "client_id=") ? req->query : NULL;
    login_form(req, 200, t, NULL, continue_ok(cont), NULL, NULL);
}

void identity_page_login_post(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *v[5] = {0};
    static const char *const names[] = {"csrf", "continue", "username", "password", NULL};
    if (!page_form(req, t, names, v))
        return;
    const char *cont = continue_ok(v[1]);
    if (!csrf_ok(req, v[0])) {
        login_form(req, 403, t, t->bad_form, cont, v[2], NULL);
        return;
    }
    if (v[2] == NULL || *v[2] == '\0' || strlen(v[2]) > 254 || cc_has_control(v[2], strlen(v[2]))) {
        login_form(req, 400, t, t->wrong_login, cont, NULL, NULL);
        return;
    }
    if (identity_federation_discover(req, v[2], cont)) /* an address of a federated domain */
        return;
    if (v[3] == NULL || *v[3] == '\0') { /* step one done: the image and the password field */
        login_form(req, 200, t, NULL, cont, v[2], image_for(req, v[2]));
        return;
    }
    if (strlen(v[3]) > 1024) {
        login_form(req, 400, t, t->wrong_login, cont, v[2], image_for(req, v[2]));
        return;
    }
    /* a relying party that asks for the MFA level or a maximum age gets a fresh factor:
     * neither a remembered browser nor a password-only policy answers it (oauth.c) */
    const char *acr = NULL, *max_age = NULL;
    identity_authn_opts_t opts = {.remember_token = cookie_get(req, REMEMBER_COOKIE)};
    if (cont != NULL)
        opts.step_up = (cc_query_get(req->pool, cont, "acr_values", &acr) == 1 &&
                        identity_acr_wants_mfa(acr)) ||
                       cc_query_get(req->pool, cont, "max_age", &max_age) != 0;
    identity_authn_out_t o;
    identity_authn_password_with(req, v[2], v[3], &opts, &o);
    if (o.db_rc == 0 && o.err == CC_ERR_AUTHENTICATION_FAILED) {
        login_form(req, 401, t, t->wrong_login, cont, v[2], image_for(req, v[2]));
        return;
    }
    if (o.db_rc != 0 || o.err >= 0 || strcmp(o.status, "LOCKED_OUT") == 0) {
        step_failed(req, t, &o, t->login_title, cont);
        return;
    }
    if (strcmp(o.status, IDENTITY_SUCCESS) == 0) { /* the policy needs no second factor */
        signed_in(req, t, cont, o.session_token);
        return;
    }
    set_authn_cookie(req, o.state_token, 900);
    bool enroll = strcmp(o.status, IDENTITY_MFA_ENROLL) == 0;
    see_other(req, with_continue(req, enroll ? "/mfa/enroll" : "/mfa", cont, t));
}

/* ---- the factors on the pages ---- */

/* A template's "{}" replaced by value (escaped later with the rest of the text). Pool. */
static const char *subst(cc_req_t *req, const char *tmpl, const char *value)
{
    const char *at = strstr(tmpl, "{}");
    if (at == NULL)
        return tmpl;
    return cc_pool_printf(req->pool, "%.*s%s%s", (int)(at - tmpl), tmpl, value, at + 2);
}

static const char *subst_int(cc_req_t *req, const char *tmpl, long long n)
{
    return subst(req, tmpl, cc_pool_printf(req->pool, "%lld", n));
}

static const char *factor_label(const text_t *t, const char *type)
{
    return strcmp(type, "totp") == 0       ? t->f_totp
           : strcmp(type, "email") == 0    ? t->f_email
           : strcmp(type, "sms") == 0      ? t->f_sms
           : strcmp(type, "voice") == 0    ? t->f_voice
           : strcmp(type, "webauthn") == 0 ? t->f_webauthn
                                           : type;
}

static bool sends_code(const char *type)
{
    return strcmp(type, "email") == 0 || strcmp(type, "sms") == 0 || strcmp(type, "voice") == 0;
}

/* Where a code goes, masked: "t•••@example.com", "+81•••••5678". Pool. */
static const char *factor_hint(cc_req_t *req, json_t *f)
{
    const char *email = json_string_value(json_object_get(f, "email"));
    const char *phone = json_string_value(json_object_get(f, "phone"));
    if (phone && strlen(phone) > 7)
        return cc_pool_printf(req->pool, "%.3s•••••%s", phone, phone + strlen(phone) - 4);
    if (email && strchr(email, '@') && strchr(email, '@') != email)
        return cc_pool_printf(req->pool, "%.1s•••%s", email, strchr(email, '@'));
    return NULL;
}

/* The factor of choices->factors with this id, else by preference: a security key, an
 * authenticator app, then the first (newest last: the API's order). */
static json_t *factor_pick(const identity_authn_out_t *c, const char *id, const char *type)
{
    size_t i;
    json_t *f;
    const char *order[] = {type, "webauthn", "totp", "email", "sms", "voice"};
    if (id != NULL)
        json_array_foreach(c->factors, i, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "id")), id) == 0)
                return f;
        }
    for (size_t k = 0; k < CC_ARRAY_SIZE(order); k++)
        json_array_foreach(c->factors, i, f)
        {
            if (order[k] && strcmp(json_string_value(json_object_get(f, "type")), order[k]) == 0)
                return f;
        }
    return NULL;
}

/* "Use another method": a link to /mfa for each other factor (id use-<type> on the first
 * of each type). */
static void other_factors(cc_buf_t *b, cc_req_t *req, const text_t *t, const char *cont,
                          const identity_authn_out_t *c, json_t *current)
{
    size_t i;
    json_t *f;
    bool any = false;
    const char *seen = "";
    json_array_foreach(c->factors, i, f)
    {
        if (f == current)
            continue;
        const char *id = json_string_value(json_object_get(f, "id"));
        const char *type = json_string_value(json_object_get(f, "type"));
        if (!any) {
            cc_buf_puts(b, "<nav id=\"other-methods\"><p>");
            cc_buf_html(b, t->other_methods);
            cc_buf_puts(b, "</p><ul>");
            any = true;
        }
        const char *hint = factor_hint(req, f);
        bool first = strstr(seen, type) == NULL;
        seen = cc_pool_printf(req->pool, "%s %s", seen, type);
        cc_buf_printf(b, "<li><a%s%s%s data-type=\"%s\" href=\"", first ? " id=\"use-" : "",
                      first ? type : "", first ? "\"" : "", type);
        cc_buf_html(b, with_continue(req, "/mfa", cont, t));
        cc_buf_printf(b, "&amp;factor=%s\">", id);
        cc_buf_html(b, factor_label(t, type));
        if (hint) {
            cc_buf_puts(b, " (");
            cc_buf_html(b, hint);
            cc_buf_puts(b, ")");
        }
        cc_buf_puts(b, "</a></li>");
    }
    if (any)
        cc_buf_puts(b, "</ul></nav>");
}

/* The "remember this browser" box of a verification form (days 0: none). */
static void remember_box(cc_buf_t *b, cc_req_t *req, const text_t *t, int days)
{
    if (days <= 0)
        return;
    cc_buf_puts(b, "<p><label><input type=\"checkbox\" id=\"remember\" name=\"remember\""
                   " value=\"on\"> ");
    cc_buf_html(b, subst_int(req, t->remember, days));
    cc_buf_puts(b, "</label></p>");
}

/* Runs navigator.credentials.create/get with the options of the form's data-options and
 * posts the response back (base64url fields). The only script of the pages, allowed by
 * its hash. */
static const char webauthn_js[] =
    "(function(){var f=document.getElementById('webauthn');if(!f)return;"
    "function d(s){s=s.replace(/-/g,'+').replace(/_/g,'/');while(s.length%4)s+='=';"
    "var b=atob(s),u=new Uint8Array(b.length);for(var i=0;i<b.length;i++)u[i]=b.charCodeAt(i);"
    "return u.buffer;}"
    "function e(b){var u=new Uint8Array(b),s='';for(var i=0;i<u.length;i++)"
    "s+=String.fromCharCode(u[i]);"
    "return btoa(s).replace(/\\+/g,'-').replace(/\\//g,'_').replace(/=+$/,'');}"
    "function set(n,v){f.elements[n].value=v;}"
    "function go(){var o=JSON.parse(f.getAttribute('data-options'));"
    "var create=f.getAttribute('data-mode')==='create',p;o.challenge=d(o.challenge);"
    "if(create){o.user.id=d(o.user.id);(o.excludeCredentials||[]).forEach(function(c){"
    "c.id=d(c.id);});p=navigator.credentials.create({publicKey:o});}"
    "else{(o.allowCredentials||[]).forEach(function(c){c.id=d(c.id);});"
    "p=navigator.credentials.get({publicKey:o});}"
    "p.then(function(c){var r=c.response;set('client_data_json',e(r.clientDataJSON));"
    "if(create)set('attestation_object',e(r.attestationObject));"
    "else{set('authenticator_data',e(r.authenticatorData));set('signature',e(r.signature));}"
    "f.submit();},function(){document.getElementById('webauthn-error').hidden=false;});}"
    "document.getElementById('webauthn-start').addEventListener('click',go);})();";

static void webauthn_form(cc_req_t *req, const text_t *t, const char *title, const char *action,
                          const char *cont, const char *factor_id, json_t *options, bool create,
                          const char *alternative, int remember_days)
{
    cc_buf_t b;
    cc_buf_init(&b);
    char *json = json_dumps(options, JSON_COMPACT);
    cc_buf_puts(&b, "<p>");
    cc_buf_html(&b, t->wa_help);
    cc_buf_puts(&b, "</p><p id=\"webauthn-error\" role=\"alert\" hidden>");
    cc_buf_html(&b, t->wa_failed);
    cc_buf_printf(&b,
                  "</p><form id=\"webauthn\" method=\"post\" action=\"%s?lang=%s\""
                  " data-mode=\"%s\" data-options=\"",
                  action, t->lang, create ? "create" : "get");
    cc_buf_html(&b, json ? json : "{}");
    cc_buf_puts(&b, "\">");
    free(json);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "continue", cont);
    hidden(&b, "factor_id", factor_id);
    hidden(&b, "client_data_json", "");
    if (create)
        hidden(&b, "attestation_object", "");
    else {
        hidden(&b, "authenticator_data", "");
        hidden(&b, "signature", "");
    }
    remember_box(&b, req, t, remember_days);
    cc_buf_printf(&b, "<p><button type=\"button\" id=\"webauthn-start\">%s</button></p></form>",
                  t->wa_start);
    if (alternative)
        cc_buf_puts(&b, alternative);
    render_script(req, 200, t, title, NULL, b.data, webauthn_js);
    cc_buf_free(&b);
}

/* The pass-code form (posts op=verify to action): intro and outro are HTML. */
static void code_form_ex(cc_req_t *req, int status, const text_t *t, const char *title,
                         const char *action, const char *error, const char *cont,
                         const char *factor_id, const char *type, const char *intro,
                         const char *label, int remember_days, const char *outro)
{
    cc_buf_t b;
    cc_buf_init(&b);
    if (intro)
        cc_buf_puts(&b, intro);
    cc_buf_printf(&b, "<form id=\"verify\" method=\"post\" action=\"%s?lang=%s\">", action,
                  t->lang);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "continue", cont);
    hidden(&b, "factor_id", factor_id);
    hidden(&b, "type", type);
    field(
        &b, label ? label : t->code, "pass_code", "text",
        "inputmode=\"numeric\" pattern=\"[0-9]{6}\" maxlength=\"6\" autocomplete=\"one-time-code\""
        " required autofocus");
    remember_box(&b, req, t, remember_days);
    cc_buf_printf(&b, "<p><button type=\"submit\">%s</button></p></form>", t->verify);
    if (outro)
        cc_buf_puts(&b, outro);
    render(req, status, t, title, error, b.data);
    cc_buf_free(&b);
}

static void code_form(cc_req_t *req, int status, const text_t *t, const char *title,
                      const char *action, const char *error, const char *cont,
                      const char *factor_id, const char *intro)
{
    code_form_ex(req, status, t, title, action, error, cont, factor_id, NULL, intro, NULL, 0, NULL);
}

/* A form that asks for a (new) code: op=send on /mfa, op=resend or op=send on /mfa/enroll. */
static void send_form(cc_buf_t *b, cc_req_t *req, const text_t *t, const char *action,
                      const char *cont, const char *op, const char *factor_id, const char *type,
                      const char *button)
{
    cc_buf_printf(b, "<form id=\"send\" method=\"post\" action=\"%s?lang=%s\">", action, t->lang);
    hidden(b, "csrf", csrf_token(req));
    hidden(b, "continue", cont);
    hidden(b, "op", op);
    hidden(b, "factor_id", factor_id);
    hidden(b, "type", type);
    cc_buf_printf(b, "<p><button type=\"submit\" id=\"send-code\">%s</button></p></form>", button);
}

/* The sentence for a code just sent (sent) or about to be sent, to hint. Pool. */
static const char *code_sentence(cc_req_t *req, const text_t *t, const char *type, const char *hint,
                                 bool sent)
{
    const char *tmpl = strcmp(type, "email") == 0 ? (sent ? t->sent_email : t->will_email)
                       : strcmp(type, "sms") == 0 ? (sent ? t->sent_sms : t->will_sms)
                                                  : (sent ? t->sent_voice : t->will_voice);
    return subst(req, tmpl, hint ? hint : "");
}

/* The error sentence of a refused send (rate limits, the provider), else NULL. */
static const char *send_error(cc_req_t *req, const text_t *t, const identity_authn_out_t *o,
                              int *status)
{
    switch (o->err) {
    case CC_ERR_RATE_LIMITED:
        *status = 429;
        return subst_int(req, t->too_soon, o->retry_after > 0 ? o->retry_after : 30);
    case CC_ERR_SMS_RATE_LIMITED:
        *status = 429;
        if (o->retry_after <= 120)
            return subst_int(req, t->too_soon, o->retry_after > 0 ? o->retry_after : 1);
        return subst_int(req, t->too_many, (o->retry_after + 59) / 60);
    case CC_ERR_SMS_DELIVERY_FAILED:
        *status = 502;
        return t->not_delivered;
    case CC_ERR_FACTOR_NOT_ALLOWED:
    case CC_ERR_FACTOR_NOT_SUPPORTED:
        *status = 403;
        return t->not_allowed;
    default:
        return NULL;
    }
}

/* ---- /mfa ---- */

/* The page for one factor of the sign-in: a security key's ceremony, an app's code, or
 * (email, sms, voice) a button that sends a code and the field for it; the other factors
 * as links. sent: a code has just gone out. */
static void mfa_show(cc_req_t *req, int status, const text_t *t, const char *cont,
                     const identity_authn_out_t *c, json_t *f, const char *error, bool sent)
{
    const char *state = cookie_get(req, AUTHN_COOKIE);
    const char *id = json_string_value(json_object_get(f, "id"));
    const char *type = json_string_value(json_object_get(f, "type"));
    int days = c->remember_allowed ? c->remember_days : 0;
    cc_buf_t alt;
    cc_buf_init(&alt);
    other_factors(&alt, req, t, cont, c, f);
    if (strcmp(type, "webauthn") == 0 && error == NULL) {
        identity_authn_out_t o;
        identity_authn_factor_with(req, state, id, NULL, NULL, false, &o);
        if (o.db_rc != 0 || o.err >= 0)
            step_failed(req, t, &o, t->wa_title, cont);
        else
            webauthn_form(req, t, t->wa_title, "/mfa", cont, id, o.webauthn, false, alt.data, days);
        cc_buf_free(&alt);
        return;
    }
    if (strcmp(type, "webauthn") == 0) { /* refused: a link that starts again */
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_puts(&b, "<p><a id=\"retry\" href=\"");
        cc_buf_html(&b, with_continue(req, "/mfa", cont, t));
        cc_buf_printf(&b, "&amp;factor=%s\">", id);
        cc_buf_html(&b, t->wa_start);
        cc_buf_puts(&b, "</a></p>");
        cc_buf_puts(&b, alt.data ? alt.data : "");
        render(req, status, t, t->wa_title, error, b.data);
        cc_buf_free(&b);
        cc_buf_free(&alt);
        return;
    }
    if (!sends_code(type)) {
        code_form_ex(req, status, t, t->mfa_title, "/mfa", error, cont, id, NULL, NULL, NULL, days,
                     alt.data);
        cc_buf_free(&alt);
        return;
    }
    cc_buf_t intro;
    cc_buf_init(&intro);
    cc_buf_puts(&intro, "<p id=\"destination\">");
    cc_buf_html(&intro, code_sentence(req, t, type, factor_hint(req, f), sent));
    cc_buf_puts(&intro, "</p>");
    send_form(&intro, req, t, "/mfa", cont, "send", id, NULL, sent ? t->resend : t->send_code);
    code_form_ex(req, status, t, factor_label(t, type), "/mfa", error, cont, id, NULL, intro.data,
                 t->code_received, days, alt.data);
    cc_buf_free(&intro);
    cc_buf_free(&alt);
}

static const char *query_continue(cc_req_t *req)
{
    const char *cont = NULL;
    if (cc_query_get(req->pool, req->query, "continue", &cont) != 1)
        return NULL;
    return continue_ok(cont);
}

/* The start of /mfa and /mfa/enroll: the sign-in in progress (else back to /login) and
 * the factors it may use or enrol. False when the page has answered already. */
static bool step_page_begin(cc_req_t *req, const text_t *t, bool enroll, const char *title,
                            const char **cont, const char **state, identity_authn_out_t *c)
{
    *cont = query_continue(req);
    *state = cookie_get(req, AUTHN_COOKIE);
    if (*state == NULL || **state == '\0') {
        see_other(req, with_continue(req, "/login", *cont, t));
        return false;
    }
    identity_authn_choices(req, *state, enroll, c);
    if (c->db_rc != 0 || c->err >= 0) {
        step_failed(req, t, c, title, *cont);
        return false;
    }
    return true;
}

void identity_page_mfa(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *cont, *state;
    identity_authn_out_t c;
    if (!step_page_begin(req, t, false, t->mfa_title, &cont, &state, &c))
        return;
    const char *want = NULL, *method = NULL;
    if (cc_query_get(req->pool, req->query, "factor", &want) != 1 || !cc_is_uuid(want))
        want = NULL;
    bool code = cc_query_get(req->pool, req->query, "method", &method) == 1 && method &&
                strcmp(method, "code") == 0; /* the app's code rather than a security key */
    json_t *f = factor_pick(&c, want, code ? "totp" : NULL);
    if (f == NULL) { /* no usable factor left (the policy changed): start again */
        identity_authn_out_t gone = {.err = CC_ERR_STATE_TOKEN_INVALID};
        step_failed(req, t, &gone, t->mfa_title, cont);
        return;
    }
    mfa_show(req, 200, t, cont, &c, f, NULL, false);
}

/* After SUCCESS on /mfa: remembers this browser when the person asked and may. */
static void remember_browser(cc_req_t *req, const char *user_id, const char *asked)
{
    if (asked == NULL || strcmp(asked, "on") != 0 || user_id == NULL)
        return;
    char *token = NULL;
    int days = 0;
    if (identity_remember_create(req, user_id, cc_req_header(req, "user-agent"), &token, &days) !=
            0 ||
        token == NULL)
        return; /* not remembered: the sign-in itself succeeded */
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool,
                                 REMEMBER_COOKIE
                                 "=%s; Path=/login; HttpOnly; SameSite=Lax; Max-Age=%d%s",
                                 token, days * 86400, cookie_attrs(req)));
    cc_wipe(token, strlen(token));
    free(token);
}

/* Re-renders the current factor's page of a sign-in with an error (or, sent, the notice
 * that a code went out). */
static void mfa_again(cc_req_t *req, int status, const text_t *t, const char *cont,
                      const char *state, const char *factor_id, const char *error, bool sent)
{
    identity_authn_out_t c;
    identity_authn_choices(req, state, false, &c);
    json_t *f = c.db_rc == 0 && c.err < 0 ? factor_pick(&c, factor_id, "totp") : NULL;
    if (f == NULL) {
        if (c.err < 0 && c.db_rc == 0)
            c.err = CC_ERR_STATE_TOKEN_INVALID;
        step_failed(req, t, &c, t->mfa_title, cont);
        return;
    }
    mfa_show(req, status, t, cont, &c, f, error, sent);
}

/* ---- /mfa/enroll ---- */

/* The otpauth URI as an inline SVG QR code (libqrencode): drawn in the page, nothing
 * fetched, so the CSP stays default-src 'none'. Nothing when encoding fails. */
static void qr_svg(cc_buf_t *b, const char *text)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return;
    const int w = q->width, border = 4, size = q->width + 2 * border;
    cc_buf_printf(b,
                  "<p><svg id=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\""
                  " width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\" role=\"img\""
                  " aria-label=\"QR code\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                  "<path fill=\"#000\" d=\"",
                  size, size, size * 5, size * 5, size, size);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++)
            if (q->data[y * w + x] & 1)
                cc_buf_printf(b, "M%d %dh1v1h-1z", x + border, y + border);
    cc_buf_puts(b, "\"/></svg></p>");
    QRcode_free(q);
}

static bool may_enroll(const identity_authn_out_t *c, const char *type)
{
    size_t i;
    json_t *e;
    json_array_foreach(c->enroll, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            return true;
    }
    return false;
}

/* Links to enrol each other type the policy and the deployment allow (id use-<type>). */
static void other_types(cc_buf_t *b, cc_req_t *req, const text_t *t, const char *cont,
                        const identity_authn_out_t *c, const char *current)
{
    size_t i;
    json_t *e;
    bool any = false;
    json_array_foreach(c->enroll, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (current && strcmp(type, current) == 0)
            continue;
        if (!any) {
            cc_buf_puts(b, current ? "<nav id=\"other-methods\"><p>" : "<nav id=\"methods\"><p>");
            cc_buf_html(b, current ? t->other_methods : t->choose_help);
            cc_buf_puts(b, "</p><ul>");
            any = true;
        }
        cc_buf_printf(b, "<li><a id=\"use-%s\" href=\"", type);
        cc_buf_html(b, with_continue(req, "/mfa/enroll", cont, t));
        cc_buf_printf(b, "&amp;type=%s\">", type);
        cc_buf_html(b, factor_label(t, type));
        cc_buf_puts(b, "</a></li>");
    }
    if (any)
        cc_buf_puts(b, "</ul></nav>");
}

static const char *enroll_title(const text_t *t, const char *type)
{
    return strcmp(type, "email") == 0   ? t->enroll_email_title
           : strcmp(type, "sms") == 0   ? t->enroll_sms_title
           : strcmp(type, "voice") == 0 ? t->enroll_voice_title
                                        : t->enroll_title;
}

/* The first step of an email, sms or voice enrolment: where the code goes (the e-mail
 * address on file, or a phone number to type), and the button that sends it. */
static void enroll_send_page(cc_req_t *req, int status, const text_t *t, const char *cont,
                             const identity_authn_out_t *c, const char *type, const char *error,
                             const char *phone)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "<form id=\"send\" method=\"post\" action=\"/mfa/enroll?lang=%s\">", t->lang);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "continue", cont);
    hidden(&b, "op", "send");
    hidden(&b, "type", type);
    if (strcmp(type, "email") == 0) {
        json_t *who = json_pack("{s:s?}", "email", c->user.email);
        cc_buf_puts(&b, "<p id=\"destination\">");
        cc_buf_html(&b, code_sentence(req, t, type, factor_hint(req, who), false));
        cc_buf_puts(&b, "</p>");
        json_decref(who);
    } else {
        cc_buf_puts(&b, "<p id=\"destination\">");
        cc_buf_html(&b, strcmp(type, "sms") == 0 ? t->phone_help_sms : t->phone_help_voice);
        cc_buf_puts(&b, "</p>");
        cc_buf_t extra;
        cc_buf_init(&extra);
        cc_buf_puts(&extra, "autocomplete=\"tel\" inputmode=\"tel\" required maxlength=\"32\""
                            " placeholder=\"+819012345678\" value=\"");
        cc_buf_html(&extra, phone ? phone : "");
        cc_buf_puts(&extra, "\"");
        field(&b, t->phone_label, "phone_number", "tel", extra.data);
        cc_buf_free(&extra);
    }
    cc_buf_printf(&b, "<p><button type=\"submit\" id=\"send-code\">%s</button></p></form>",
                  t->send_code);
    other_types(&b, req, t, cont, c, type);
    render(req, status, t, enroll_title(t, type), error, b.data);
    cc_buf_free(&b);
}

/* The second step: the code that was sent to the new factor, and a button for another. */
static void enroll_code_page(cc_req_t *req, int status, const text_t *t, const char *cont,
                             const char *type, const char *factor_id, const char *to,
                             const char *error, bool sent)
{
    cc_buf_t intro, outro;
    cc_buf_init(&intro);
    cc_buf_init(&outro);
    if (sent && to) {
        json_t *dest = json_pack("{s:s}", strcmp(type, "email") == 0 ? "email" : "phone", to);
        cc_buf_puts(&intro, "<p id=\"destination\">");
        cc_buf_html(&intro, code_sentence(req, t, type, factor_hint(req, dest), true));
        cc_buf_puts(&intro, "</p>");
        json_decref(dest);
    }
    send_form(&outro, req, t, "/mfa/enroll", cont, "resend", factor_id, type, t->resend);
    cc_buf_puts(&outro, "<p><a id=\"choose\" href=\"");
    cc_buf_html(&outro, with_continue(req, "/mfa/enroll", cont, t));
    cc_buf_puts(&outro, "&amp;choose=1\">");
    cc_buf_html(&outro, t->other_methods);
    cc_buf_puts(&outro, "</a></p>");
    code_form_ex(req, status, t, enroll_title(t, type), "/mfa/enroll", error, cont, factor_id, type,
                 intro.data, t->code_received, 0, outro.data);
    cc_buf_free(&intro);
    cc_buf_free(&outro);
}

/* Every type this person may enrol, to choose from. */
static void enroll_chooser(cc_req_t *req, int status, const text_t *t, const char *cont,
                           const identity_authn_out_t *c, const char *error)
{
    cc_buf_t b;
    cc_buf_init(&b);
    other_types(&b, req, t, cont, c, NULL);
    render(req, status, t, t->choose_title, error, b.data);
    cc_buf_free(&b);
}

static void enroll_totp(cc_req_t *req, const text_t *t, const char *state, const char *cont,
                        const identity_authn_out_t *c)
{
    identity_authn_out_t o;
    identity_authn_enroll(req, state, "totp", NULL, &o);
    if (o.db_rc != 0 || o.err >= 0) {
        step_failed(req, t, &o, t->enroll_title, cont);
        return;
    }
    cc_buf_t b, alt;
    cc_buf_init(&b);
    cc_buf_init(&alt);
    cc_buf_puts(&b, "<p>");
    cc_buf_html(&b, t->enroll_help);
    cc_buf_puts(&b, "</p>");
    qr_svg(&b, o.otpauth_uri);
    cc_buf_puts(&b, "<p>");
    cc_buf_html(&b, t->secret);
    cc_buf_puts(&b, ": <code id=\"secret\">");
    cc_buf_html(&b, o.secret);
    cc_buf_puts(&b, "</code></p><p><a id=\"otpauth\" href=\"");
    cc_buf_html(&b, o.otpauth_uri);
    cc_buf_puts(&b, "\">");
    cc_buf_html(&b, t->open_app);
    cc_buf_puts(&b, "</a></p>");
    other_types(&alt, req, t, cont, c, "totp");
    code_form_ex(req, 200, t, t->enroll_title, "/mfa/enroll", NULL, cont, o.factor_id, NULL, b.data,
                 NULL, 0, alt.data);
    cc_buf_free(&b);
    cc_buf_free(&alt);
}

void identity_page_enroll(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *cont, *state;
    identity_authn_out_t c;
    if (!step_page_begin(req, t, true, t->enroll_title, &cont, &state, &c))
        return;
    const char *type = NULL, *choose = NULL;
    if (cc_query_get(req->pool, req->query, "type", &type) != 1 || type == NULL)
        type = NULL;
    bool chooser = cc_query_get(req->pool, req->query, "choose", &choose) == 1;
    if (type == NULL && !chooser && may_enroll(&c, "totp"))
        type = "totp"; /* the default, as before: most people have an authenticator app */
    if (type == NULL || chooser) {
        enroll_chooser(req, 200, t, cont, &c, NULL);
        return;
    }
    if (!may_enroll(&c, type)) {
        enroll_chooser(req, 403, t, cont, &c, t->not_allowed);
        return;
    }
    if (strcmp(type, "totp") == 0) {
        enroll_totp(req, t, state, cont, &c);
        return;
    }
    if (strcmp(type, "webauthn") == 0) {
        identity_authn_out_t o;
        identity_authn_enroll(req, state, "webauthn", NULL, &o);
        if (o.db_rc != 0 || o.err >= 0) {
            step_failed(req, t, &o, t->wa_enroll_title, cont);
            return;
        }
        cc_buf_t alt;
        cc_buf_init(&alt);
        other_types(&alt, req, t, cont, &c, "webauthn");
        webauthn_form(req, t, t->wa_enroll_title, "/mfa/enroll", cont, o.factor_id, o.webauthn,
                      true, alt.data, 0);
        cc_buf_free(&alt);
        return;
    }
    enroll_send_page(req, 200, t, cont, &c, type, NULL, NULL);
}

/* ---- the posts of /mfa and /mfa/enroll ---- */

enum {
    P_CSRF,
    P_CONTINUE,
    P_PASS_CODE,
    P_FACTOR_ID,
    P_CLIENT_DATA,
    P_ATTESTATION,
    P_AUTH_DATA,
    P_SIGNATURE,
    P_OP,
    P_TYPE,
    P_PHONE,
    P_REMEMBER,
    P_COUNT
};

/* op=send on /mfa/enroll: creates the pending factor (a phone number first, validated as
 * the API does) and sends its first code. */
static void enroll_send(cc_req_t *req, const text_t *t, const char *state, const char *cont,
                        const char **v)
{
    identity_authn_out_t c;
    identity_authn_choices(req, state, true, &c);
    if (c.db_rc != 0 || c.err >= 0) {
        step_failed(req, t, &c, t->enroll_title, cont);
        return;
    }
    const char *type = v[P_TYPE];
    if (type == NULL || !sends_code(type) || !may_enroll(&c, type)) {
        enroll_chooser(req, 403, t, cont, &c, t->not_allowed);
        return;
    }
    const char *phone = NULL;
    if (strcmp(type, "email") != 0) {
        cc_validator_t pv;
        cc_v_init(&pv, req->pool);
        json_t *body = cc_json_on_pool(req->pool, json_pack("{s:s?}", "phone_number", v[P_PHONE]));
        phone = identity_v_phone(&pv, body, type);
        if (!cc_v_ok(&pv) || phone == NULL) {
            enroll_send_page(req, 400, t, cont, &c, type, t->bad_phone, v[P_PHONE]);
            return;
        }
    }
    identity_authn_out_t o;
    identity_authn_enroll(req, state, type, phone, &o);
    int status = 200;
    const char *err = send_error(req, t, &o, &status);
    if (o.db_rc == 0 && err != NULL && o.factor_id != NULL && o.err == CC_ERR_SMS_DELIVERY_FAILED) {
        /* the factor exists, its code did not go out: the code page offers another */
        enroll_code_page(req, status, t, cont, type, o.factor_id, NULL, err, false);
        return;
    }
    if (o.db_rc == 0 && err != NULL) {
        enroll_send_page(req, status, t, cont, &c, type, err, v[P_PHONE]);
        return;
    }
    if (o.db_rc != 0 || o.err >= 0) {
        step_failed(req, t, &o, enroll_title(t, type), cont);
        return;
    }
    enroll_code_page(req, 200, t, cont, type, o.factor_id,
                     strcmp(type, "email") == 0 ? c.user.email : phone, NULL, true);
}

static void code_post(cc_req_t *req, bool activate)
{
    const text_t *t = text_for(req);
    const char *title = activate ? t->enroll_title : t->mfa_title;
    const char *action = activate ? "/mfa/enroll" : "/mfa";
    const char *v[P_COUNT + 1] = {0};
    static const char *const names[] = {"csrf",
                                        "continue",
                                        "pass_code",
                                        "factor_id",
                                        "client_data_json",
                                        "attestation_object",
                                        "authenticator_data",
                                        "signature",
                                        "op",
                                        "type",
                                        "phone_number",
                                        "remember",
                                        NULL};
    if (!page_form(req, t, names, v))
        return;
    const char *cont = continue_ok(v[P_CONTINUE]);
    const char *state = cookie_get(req, AUTHN_COOKIE);
    const char *op = v[P_OP] ? v[P_OP] : "verify";
    identity_webauthn_response_t wa = {v[P_CLIENT_DATA], v[P_ATTESTATION], v[P_AUTH_DATA],
                                       v[P_SIGNATURE]};
    bool webauthn = v[P_CLIENT_DATA] != NULL && *v[P_CLIENT_DATA] != '\0';
    bool send = strcmp(op, "send") == 0 || strcmp(op, "resend") == 0;
    if (!csrf_ok(req, v[P_CSRF]) || state == NULL || *state == '\0' ||
        (strcmp(op, "verify") != 0 && !send) || (!send && v[P_PASS_CODE] == NULL && !webauthn) ||
        ((activate || webauthn || send) && !(activate && strcmp(op, "send") == 0) &&
         (v[P_FACTOR_ID] == NULL || !cc_is_uuid(v[P_FACTOR_ID])))) {
        code_form(req, 403, t, title, action, t->bad_form, cont, v[P_FACTOR_ID], NULL);
        return;
    }
    if (activate && strcmp(op, "send") == 0) {
        enroll_send(req, t, state, cont, v);
        return;
    }
    const char *factor = v[P_FACTOR_ID] && cc_is_uuid(v[P_FACTOR_ID]) ? v[P_FACTOR_ID] : NULL;
    identity_authn_out_t o;
    identity_authn_factor_with(req, state, factor, send ? NULL : v[P_PASS_CODE],
                               webauthn ? &wa : NULL, activate, &o);
    int status = 200;
    const char *err = o.db_rc == 0 ? send_error(req, t, &o, &status) : NULL;
    if (o.db_rc == 0 && o.err == CC_ERR_WEBAUTHN_REJECTED) {
        if (!activate) {
            mfa_again(req, 403, t, cont, state, factor, t->wa_refused, false);
            return;
        }
        const char *again = cc_pool_printf(req->pool, "<p><a id=\"retry\" href=\"%s\">%s</a></p>",
                                           with_continue(req, action, cont, t), t->wa_start);
        render(req, 403, t, t->wa_enroll_title, t->wa_refused, again);
        return;
    }
    if (o.db_rc == 0 && (o.err == CC_ERR_INVALID_PASS_CODE || (send && err != NULL))) {
        const char *msg = o.err == CC_ERR_INVALID_PASS_CODE ? t->wrong_code : err;
        int st = o.err == CC_ERR_INVALID_PASS_CODE ? 403 : status;
        if (!activate)
            mfa_again(req, st, t, cont, state, factor, msg, false);
        else if (v[P_TYPE] && sends_code(v[P_TYPE]))
            enroll_code_page(req, st, t, cont, v[P_TYPE], factor, NULL, msg, false);
        else
            code_form(req, st, t, title, action, msg, cont, factor, NULL);
        return;
    }
    if (o.db_rc != 0 || o.err >= 0) {
        step_failed(req, t, &o, title, cont);
        return;
    }
    if (strcmp(o.status, "MFA_CHALLENGE") == 0) { /* a code went out */
        if (!activate)
            mfa_again(req, 200, t, cont, state, factor, NULL, true);
        else
            enroll_code_page(req, 200, t, cont, o.factor_type, factor, o.deliver_to, NULL, true);
        return;
    }
    if (!activate)
        remember_browser(req, o.user.id, v[P_REMEMBER]);
    signed_in(req, t, cont, o.session_token);
}

void identity_page_mfa_post(cc_req_t *req)
{
    code_post(req, false);
}

void identity_page_enroll_post(cc_req_t *req)
{
    code_post(req, true);
}

/* ---- /activate ---- */

static void activate_form(cc_req_t *req, int status, const text_t *t, const char *token,
                          const char *error, unsigned flaws)
{
    cc_buf_t b;
    cc_buf_init(&b);
    if (flaws) {
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        identity_password_report(&v, "password", flaws);
        cc_buf_puts(&b, "<ul id=\"policy\">");
        size_t i;
        json_t *e;
        json_array_foreach(v.errors, i, e)
        {
            cc_buf_puts(&b, "<li>");
            cc_buf_html(&b, json_string_value(json_object_get(e, "code")));
            cc_buf_puts(&b, "</li>");
        }
        cc_buf_puts(&b, "</ul>");
    }
    cc_buf_printf(&b, "<form method=\"post\" action=\"/activate?lang=%s\">", t->lang);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "token", token);
    field(&b, t->new_password, "password", "password", "autocomplete=\"new-password\" required");
    cc_buf_puts(&b, "<p><small>");
    cc_buf_html(&b, t->policy_help);
    cc_buf_puts(&b, "</small></p>");
    field(&b, t->question, "recovery_question", "text", "required maxlength=\"200\"");
    field(&b, t->answer, "recovery_answer", "text", "required minlength=\"3\" maxlength=\"200\"");
    cc_buf_puts(&b, "<fieldset><legend>");
    cc_buf_html(&b, t->image);
    cc_buf_puts(&b, "</legend>");
    for (int i = 0; identity_security_images[i]; i++)
        cc_buf_printf(&b,
                      "<label><input type=\"radio\" name=\"security_image\" value=\"%s\"%s> %s"
                      "</label> ",
                      identity_security_images[i], i == 0 ? " checked" : "",
                      identity_security_images[i]);
    cc_buf_printf(&b, "</fieldset><p><button type=\"submit\">%s</button></p></form>", t->activate);
    render(req, status, t, t->activate_title, error, b.data);
    cc_buf_free(&b);
}

void identity_page_activate(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *token = NULL;
    if (cc_query_get(req->pool, req->query, "token", &token) != 1 || token == NULL ||
        strlen(token) > 256 || cc_has_control(token, strlen(token))) {
        render(req, 400, t, t->activate_title, t->bad_link, NULL);
        return;
    }
    activate_form(req, 200, t, token, NULL, 0);
}

void identity_page_activate_post(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *v[7] = {0};
    static const char *const names[] = {
        "csrf",           "token", "password", "recovery_question", "recovery_answer",
        "security_image", NULL};
    if (!page_form(req, t, names, v))
        return;
    const char *token = v[1];
    if (token == NULL || strlen(token) > 256) {
        render(req, 400, t, t->activate_title, t->bad_link, NULL);
        return;
    }
    if (!csrf_ok(req, v[0])) {
        activate_form(req, 403, t, token, t->bad_form, 0);
        return;
    }
    const char *pw = v[2], *q = v[3], *a = v[4], *img = v[5];
    if (pw == NULL || q == NULL || a == NULL || strlen(pw) > 1024 || *q == '\0' ||
        cc_utf8_length(q, strlen(q)) > 200 || cc_utf8_length(a, strlen(a)) < 3 ||
        cc_utf8_length(a, strlen(a)) > 200 || cc_has_control(q, strlen(q)) ||
        cc_has_control(a, strlen(a)) || (img && !identity_security_image_valid(img))) {
        activate_form(req, 400, t, token, t->bad_form, 0);
        return;
    }
    identity_authn_out_t o;
    identity_authn_activate(req, token, pw, q, a, img, &o);
    if (o.db_rc != 0) {
        render(req, 503, t, t->activate_title, t->unavailable, NULL);
        return;
    }
    switch (o.err) {
    case -1:
        break;
    case CC_ERR_VALIDATION_FAILED:
        activate_form(req, 400, t, token, t->policy_help, o.pw_flaws);
        return;
    case CC_ERR_ACTIVATION_TOKEN_EXPIRED:
        render(req, 410, t, t->activate_title, t->expired_link, NULL);
        return;
    default:
        render(req, 400, t, t->activate_title, t->bad_link, NULL);
        return;
    }
    set_authn_cookie(req, o.state_token, 900);
    see_other(req, with_continue(req, "/mfa/enroll", NULL, t));
}

/* ---- /password/forgot and /password/reset ---- */

static void forgot_form(cc_req_t *req, int status, const text_t *t, const char *error)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "<form method=\"post\" action=\"/password/forgot?lang=%s\">", t->lang);
    hidden(&b, "csrf", csrf_token(req));
    field(&b, t->username, "username", "text", "autocomplete=\"username\" required");
    cc_buf_printf(&b, "<p><button type=\"submit\">%s</button></p></form>", t->forgot_send);
    render(req, status, t, t->forgot_title, error, b.data);
    cc_buf_free(&b);
}

void identity_page_forgot(cc_req_t *req)
{
    forgot_form(req, 200, text_for(req), NULL);
}

void identity_page_forgot_post(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *v[3] = {0};
    static const char *const names[] = {"csrf", "username", NULL};
    if (!page_form(req, t, names, v))
        return;
    if (!csrf_ok(req, v[0]) || v[1] == NULL || *v[1] == '\0' || strlen(v[1]) > 254) {
        forgot_form(req, 403, t, t->bad_form);
        return;
    }
    identity_authn_out_t o;
    identity_recovery_start(req, v[1], &o);
    if (o.db_rc != 0) {
        render(req, 503, t, t->forgot_title, t->unavailable, NULL);
        return;
    }
    render(req, 200, t, t->forgot_title, NULL,
           cc_pool_printf(req->pool, "<p id=\"sent\">%s</p>", t->forgot_sent));
}

static void reset_form(cc_req_t *req, int status, const text_t *t, const char *token,
                       const char *question, const char *image, const char *error, unsigned flaws)
{
    cc_buf_t b;
    cc_buf_init(&b);
    if (image) {
        cc_buf_puts(&b, "<p id=\"image\">");
        cc_buf_html(&b, t->your_image);
        cc_buf_puts(&b, ": <strong>");
        cc_buf_html(&b, image);
        cc_buf_puts(&b, "</strong></p>");
    }
    if (flaws) {
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        identity_password_report(&v, "password", flaws);
        cc_buf_puts(&b, "<ul id=\"policy\">");
        size_t i;
        json_t *e;
        json_array_foreach(v.errors, i, e)
        {
            cc_buf_puts(&b, "<li>");
            cc_buf_html(&b, json_string_value(json_object_get(e, "code")));
            cc_buf_puts(&b, "</li>");
        }
        cc_buf_puts(&b, "</ul>");
    }
    cc_buf_printf(&b, "<form method=\"post\" action=\"/password/reset?lang=%s\">", t->lang);
    hidden(&b, "csrf", csrf_token(req));
    hidden(&b, "token", token);
    cc_buf_puts(&b, "<p id=\"question\">");
    cc_buf_html(&b, question);
    cc_buf_puts(&b, "</p>");
    field(&b, t->answer, "recovery_answer", "text", "required autocomplete=\"off\"");
    field(&b, t->new_password, "password", "password", "autocomplete=\"new-password\" required");
    cc_buf_puts(&b, "<p><small>");
    cc_buf_html(&b, t->policy_help);
    cc_buf_printf(&b, "</small></p><p><button type=\"submit\">%s</button></p></form>", t->reset);
    render(req, status, t, t->reset_title, error, b.data);
    cc_buf_free(&b);
}

void identity_page_reset(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *token = NULL, *question = NULL, *image = NULL;
    if (cc_query_get(req->pool, req->query, "token", &token) != 1 || token == NULL ||
        strlen(token) > 256) {
        render(req, 400, t, t->reset_title, t->bad_recovery, NULL);
        return;
    }
    identity_authn_out_t o;
    identity_recovery_question(req, token, &question, &image, &o);
    if (o.db_rc != 0 || o.err >= 0) {
        render(req, o.db_rc ? 503 : 400, t, t->reset_title,
               o.db_rc ? t->unavailable : t->bad_recovery, NULL);
        return;
    }
    reset_form(req, 200, t, token, question, image, NULL, 0);
}

void identity_page_reset_post(cc_req_t *req)
{
    const text_t *t = text_for(req);
    const char *v[5] = {0};
    static const char *const names[] = {"csrf", "token", "recovery_answer", "password", NULL};
    if (!page_form(req, t, names, v))
        return;
    const char *token = v[1], *question = NULL, *image = NULL;
    identity_authn_out_t q;
    if (token == NULL || strlen(token) > 256 ||
        (identity_recovery_question(req, token, &question, &image, &q), q.err >= 0 || q.db_rc)) {
        render(req, 400, t, t->reset_title, t->bad_recovery, NULL);
        return;
    }
    if (!csrf_ok(req, v[0]) || v[2] == NULL || v[3] == NULL || strlen(v[2]) > 200 ||
        strlen(v[3]) > 1024) {
        reset_form(req, 403, t, token, question, image, t->bad_form, 0);
        return;
    }
    identity_authn_out_t o;
    identity_recovery_reset(req, token, v[2], v[3], &o);
    if (o.db_rc != 0) {
        render(req, 503, t, t->reset_title, t->unavailable, NULL);
        return;
    }
    switch (o.err) {
    case -1:
        break;
    case CC_ERR_RECOVERY_ANSWER_WRONG:
        reset_form(req, 403, t, token, question, image, t->wrong_answer, 0);
        return;
    case CC_ERR_VALIDATION_FAILED:
        reset_form(req, 400, t, token, question, image, t->policy_help, o.pw_flaws);
        return;
    case CC_ERR_TENANT_SUSPENDED:
        render(req, 403, t, t->reset_title, t->suspended, NULL);
        return;
    default:
        render(req, 400, t, t->reset_title, t->bad_recovery, NULL);
        return;
    }
    /* the password is set; the second factor is still required to sign in */
    set_authn_cookie(req, o.state_token, 900);
    bool enroll = strcmp(o.status, IDENTITY_MFA_ENROLL) == 0;
    see_other(req, with_continue(req, enroll ? "/mfa/enroll" : "/mfa", NULL, t));
}

/* ---- notices and refusals of the protocol endpoints ---- */

/* Japanese for the fixed English titles and messages the OAuth, sign-out and federation
 * endpoints show (identity_html_page); a text without an entry stays English. */
static const struct {
    const char *en, *ja;
} notice_ja[] = {
    {"Sign-in unavailable", "サインインできません"},
    {"Sign-in refused", "サインインが拒否されました"},
    {"Sign-in request refused", "サインイン要求が拒否されました"},
    {"Sign-out refused", "サインアウトが拒否されました"},
    {"You are signed in", "サインインしました"},
    {"Signed out", "サインアウトしました"},
    {"The service is unavailable. Please try again in a moment.",
     "サービスを利用できません。しばらくしてからもう一度お試しください。"},
    {"This sign-in is unknown, expired or was started in another browser; start again.",
     "このサインインは不明か期限切れ、または別のブラウザーで開始されたものです。最初からやり直"
     "してください。"},
    {"This sign-in is unknown, expired, already used or was started in another browser; start "
     "again.",
     "このサインインは不明か期限切れか使用済み、または別のブラウザーで開始されたものです。最初"
     "からやり直してください。"},
    {"Your organization's sign-in is no longer configured.",
     "組織のサインインはもう設定されていません。"},
    {"Your organization's sign-in cannot be used now.", "組織のサインインは現在使用できません。"},
    {"This account is suspended; its users cannot sign in.",
     "このアカウントは停止中のため、ユーザーはサインインできません。"},
    {"Your account is ready.", "アカウントの準備ができました。"},
    {"The application that sent you here is not registered.",
     "このページへ移動させたアプリケーションは登録されていません。"},
    {"The application asked to return to an address that is not registered for it.",
     "アプリケーションが、登録されていない戻り先アドレスを指定しました。"},
    {"A parameter is repeated or malformed.",
     "パラメーターが重複しているか、形式が正しくありません。"},
    {"The id_token_hint is not a valid ID token of this issuer.",
     "id_token_hint はこの発行者の有効な ID トークンではありません。"},
    {"client_id does not match the id_token_hint.", "client_id が id_token_hint と一致しません。"},
    {"The address to return to is not registered for this application.",
     "戻り先アドレスはこのアプリケーションに登録されていません。"},
    {"You are signed out of the console.", "コンソールからサインアウトしました。"},
    {"Your organization's sign-in did not complete.", "組織のサインインが完了しませんでした。"},
    {"Your organization's sign-in answered for another issuer.",
     "組織のサインインが別の発行者として応答しました。"},
    {"Your organization's sign-in could not be verified; start again.",
     "組織のサインインを検証できませんでした。最初からやり直してください。"},
    {"Your organization's sign-in gave no e-mail address.",
     "組織のサインインからメールアドレスが提供されませんでした。"},
    {"Your e-mail address is not verified at your organization.",
     "メールアドレスが組織で確認されていません。"},
    {"Your organization's sign-in cannot be used for this e-mail address.",
     "このメールアドレスには組織のサインインを使用できません。"},
    {"Your organization's sign-in cannot be used for this user.",
     "このユーザーには組織のサインインを使用できません。"},
    {"This user is deactivated; ask your administrator.",
     "このユーザーは無効化されています。管理者に問い合わせてください。"},
};

static const char *notice_text(const text_t *t, const char *en_text)
{
    if (t != &ja)
        return en_text;
    for (size_t i = 0; i < sizeof notice_ja / sizeof notice_ja[0]; i++)
        if (strcmp(notice_ja[i].en, en_text) == 0)
            return notice_ja[i].ja;
    return en_text;
}

void identity_html_page(cc_req_t *req, int status, int id, const char *title, const char *message)
{
    const text_t *t = text_for(req);
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "<p id=\"notice\">");
    cc_buf_html(&b, notice_text(t, message));
    cc_buf_puts(&b, "</p>");
    if (id >= 0 && id < CC_ERR__COUNT) {
        cc_buf_puts(&b, "<p><small>code: <span id=\"code\">");
        cc_buf_html(&b, cc_error_defs[id].code);
        cc_buf_puts(&b, "</span> · request ");
        cc_buf_html(&b, req->request_id ? req->request_id : "");
        cc_buf_puts(&b, "</small></p>");
    }
    render(req, status, t, notice_text(t, title), NULL, b.data);
    if (id >= 0 && id < CC_ERR__COUNT)
        req->error_id = id;
    cc_buf_free(&b);
}
