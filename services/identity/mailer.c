/*
 * Mail a person meets during sign-up and sign-in: the activation link and one-time codes,
 * in the user's language (ja or en; anything else gets the brand's default language),
 * plain text and HTML, UTF-8, in the brand of the user's account (console/brand.h: sender,
 * Reply-To the support address, the product's name in subject and body), through the
 * common mail module (SMTP, or .eml files under CONSOLE_DATA_DIR/mail).
 */
#include <string.h>

#include "console/brand.h"
#include "console/log.h"
#include "console/mail.h"
#include "identity.h"

/* A message being written: its pool, the brand of the user's account, the language (the
 * user's when ja or en, else the brand's default language). */
typedef struct letter {
    cc_pool_t *pool;
    cc_brand_t brand;
    bool ja;
} letter_t;

static void letter_open(letter_t *l, cc_db_t *db, const identity_user_t *u)
{
    l->pool = cc_pool_new();
    cc_brand_for_tenant(db, l->pool, u->tenant_id, &l->brand); /* the defaults when unavailable */
    const char *lang = u->language ? u->language : "";
    l->ja = strncmp(lang, "ja", 2) == 0 ||
            (strncmp(lang, "en", 2) != 0 && strcmp(l->brand.default_language, "ja") == 0);
}

/* The name in the greeting: "Last First" in Japanese, "First" in English. Pool memory. */
static const char *greeting_name(const identity_user_t *u, bool ja, cc_pool_t *pool)
{
    if (ja)
        return cc_pool_printf(pool, "%s %s", u->last_name ? u->last_name : "",
                              u->first_name ? u->first_name : "");
    return u->first_name ? u->first_name : "";
}

static char *html_escape(cc_pool_t *pool, const char *s)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_html(&b, s);
    char *out = cc_pool_strdup(pool, b.data ? b.data : "");
    cc_buf_free(&b);
    return out;
}

static int send(identity_app_t *app, const letter_t *l, const char *to, const char *subject,
                const char *text, const char *html)
{
    cc_brand_message_t m = {
        .to = to, .lang = l->ja ? "ja" : "en", .subject = subject, .text = text, .html = html};
    int rc = cc_brand_mail_send(&app->svc->mail, &l->brand, app->svc->issuer, &m);
    if (rc != 0)
        cc_log_error("mail could not be sent: %s", cc_strerror(rc));
    return rc;
}

int identity_mail_activation(identity_app_t *app, cc_db_t *db, const identity_user_t *u,
                             const char *token)
{
    letter_t l;
    letter_open(&l, db, u);
    cc_pool_t *pool = l.pool;
    const char *prod = l.brand.product_name, *hprod = html_escape(pool, prod);
    const char *link = cc_pool_printf(pool, "%s/activate?token=%s&lang=%s",
                                      cc_brand_base_url(pool, &l.brand, app->svc->issuer), token,
                                      l.ja ? "ja" : "en"); /* the page in their language */
    const char *name = greeting_name(u, l.ja, pool), *hname = html_escape(pool, name);
    const char *hlink = html_escape(pool, link), *huser = html_escape(pool, u->username);
    const char *subject, *text, *html;
    if (l.ja) {
        subject = "アカウントを有効にしてください";
        text = cc_pool_printf(pool,
                              "%s 様\r\n\r\n%s のアカウント (%s) が作成されました。\r\n"
                              "次のリンクからパスワードを設定し、多要素認証を登録してください"
                              "（有効期限 72 時間）:\r\n\r\n%s\r\n\r\n"
                              "お心当たりのない場合は、このメールを破棄してください。\r\n",
                              name, prod, u->username, link);
        html = cc_pool_printf(pool,
                              "<p>%s 様</p><p>%s のアカウント (%s) が作成されました。"
                              "次のリンクからパスワードを設定し、多要素認証を登録してください"
                              "（有効期限 72 時間）。</p><p><a href=\"%s\">アカウントを有効にする"
                              "</a></p><p>お心当たりのない場合は、このメールを破棄してください。"
                              "</p>",
                              hname, hprod, huser, hlink);
    } else {
        subject = "Activate your account";
        text = cc_pool_printf(pool,
                              "Hello %s,\r\n\r\nAn account (%s) was created for you on "
                              "%s.\r\nSet your password and enrol multi-factor "
                              "authentication here (valid 72 hours):\r\n\r\n%s\r\n\r\n"
                              "If you did not expect this, ignore this message.\r\n",
                              name, u->username, prod, link);
        html = cc_pool_printf(pool,
                              "<p>Hello %s,</p><p>An account (%s) was created for you on "
                              "%s. Set your password and enrol multi-factor authentication "
                              "(the link is valid 72 hours).</p><p><a href=\"%s\">Activate my "
                              "account</a></p><p>If you did not expect this, ignore this "
                              "message.</p>",
                              hname, huser, hprod, hlink);
    }
    int rc = send(app, &l, u->email, subject, text, html);
    cc_pool_free(pool);
    return rc;
}

int identity_mail_recovery(identity_app_t *app, cc_db_t *db, const identity_user_t *u,
                           const char *token)
{
    letter_t l;
    letter_open(&l, db, u);
    cc_pool_t *pool = l.pool;
    const char *link = cc_pool_printf(pool, "%s/password/reset?token=%s&lang=%s",
                                      cc_brand_base_url(pool, &l.brand, app->svc->issuer), token,
                                      l.ja ? "ja" : "en");
    const char *name = greeting_name(u, l.ja, pool), *hname = html_escape(pool, name);
    const char *hlink = html_escape(pool, link);
    const char *subject, *text, *html;
    if (l.ja) {
        subject = "パスワードの再設定";
        text = cc_pool_printf(pool,
                              "%s 様\r\n\r\nパスワードの再設定が依頼されました。次のリンクを開き、"
                              "秘密の質問に答えて新しいパスワードを設定してください（有効期限 1 "
                              "時間）:\r\n\r\n%s\r\n\r\nお心当たりのない場合は、このメールを"
                              "破棄してください。パスワードは変更されません。\r\n",
                              name, link);
        html =
            cc_pool_printf(pool,
                           "<p>%s 様</p><p>パスワードの再設定が依頼されました。次のリンクを開き、"
                           "秘密の質問に答えて新しいパスワードを設定してください（有効期限 1 "
                           "時間）。</p><p><a href=\"%s\">パスワードを再設定する</a></p>"
                           "<p>お心当たりのない場合は、このメールを破棄してください。</p>",
                           hname, hlink);
    } else {
        subject = "Reset your password";
        text = cc_pool_printf(pool,
                              "Hello %s,\r\n\r\nSomebody asked to reset your password. Open "
                              "this link, answer your recovery question and choose a new "
                              "password (valid 1 hour):\r\n\r\n%s\r\n\r\nIf this was not "
                              "you, ignore this message: your password stays as it is.\r\n",
                              name, link);
        html = cc_pool_printf(pool,
                              "<p>Hello %s,</p><p>Somebody asked to reset your password. Open "
                              "this link, answer your recovery question and choose a new "
                              "password (valid 1 hour).</p><p><a href=\"%s\">Reset my "
                              "password</a></p><p>If this was not you, ignore this message: "
                              "your password stays as it is.</p>",
                              hname, hlink);
    }
    int rc = send(app, &l, u->email, subject, text, html);
    cc_pool_free(pool);
    return rc;
}

int identity_mail_code(identity_app_t *app, cc_db_t *db, const identity_user_t *u, const char *to,
                       const char *code)
{
    letter_t l;
    letter_open(&l, db, u);
    cc_pool_t *pool = l.pool;
    const char *name = greeting_name(u, l.ja, pool), *hname = html_escape(pool, name);
    const char *subject, *text, *html;
    if (l.ja) {
        subject = cc_pool_printf(pool, "確認コード: %s", code);
        text = cc_pool_printf(pool,
                              "%s 様\r\n\r\nサインインの確認コードは %s です（10 分間有効）。\r\n"
                              "お心当たりのない場合は、パスワードを変更してください。\r\n",
                              name, code);
        html = cc_pool_printf(pool,
                              "<p>%s 様</p><p>サインインの確認コードは <strong>%s</strong> です"
                              "（10 分間有効）。</p>",
                              hname, code);
    } else {
        subject = cc_pool_printf(pool, "Your verification code: %s", code);
        text = cc_pool_printf(pool,
                              "Hello %s,\r\n\r\nYour sign-in verification code is %s (valid 10 "
                              "minutes).\r\nIf this was not you, change your password.\r\n",
                              name, code);
        html = cc_pool_printf(pool,
                              "<p>Hello %s,</p><p>Your sign-in verification code is "
                              "<strong>%s</strong> (valid 10 minutes).</p>",
                              hname, code);
    }
    int rc = send(app, &l, to, subject, text, html);
    cc_pool_free(pool);
    return rc;
}
