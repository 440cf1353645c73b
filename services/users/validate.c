/*
 * Field checks of the user profile (DOMAIN.md section 2): pure functions over built-in
 * lists, so that they are tested without a database (tests/integration/users.c).
 *
 * - Currencies: the active codes of ISO 4217 (list below, 2024 edition).
 * - Countries: the ISO 3166-1 alpha-2 codes officially assigned (249).
 * - Languages: RFC 5646 (BCP 47) syntax — language[-script][-region][-variant…] — whose
 *   primary subtag is an ISO 639-1 code (ja, en, …); extensions and private use are refused.
 * - Time zones: the IANA database as the system ships it (a TZif file under
 *   /usr/share/zoneinfo, Debian package tzdata), so the list
 *   follows tzdata updates; "UTC" is always accepted.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

static bool in_list(const char *s, const char *list, size_t width)
{
    size_t n = strlen(s);
    if (n != width)
        return false;
    for (const char *p = list; *p; p += width + 1)
        if (memcmp(p, s, width) == 0)
            return true;
    return false;
}

static const char currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD "
    "BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP "
    "DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR "
    "IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD "
    "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB "
    "PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS "
    "VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XDR XOF XPD XPF XPT XSU XUA "
    "YER ZAR ZMW ZWL ";

static const char countries[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
    "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ "
    "DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP "
    "GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG "
    "KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML "
    "MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE "
    "PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL "
    "SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM "
    "US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW ";

static const char languages[] =
    "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv "
    "cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho "
    "hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku "
    "kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn "
    "no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm "
    "sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi "
    "vo wa wo xh yi yo za zh zu ";

bool users_valid_currency(const char *s)
{
    return in_list(s, currencies, 3);
}

bool users_valid_country(const char *s)
{
    return in_list(s, countries, 2);
}

static bool all(const char *s, size_t n, int (*cls)(int))
{
    for (size_t i = 0; i < n; i++)
        if (!cls((unsigned char)s[i]))
            return false;
    return true;
}

bool users_valid_language(const char *s)
{
    size_t total = strlen(s);
    if (total < 2 || total > 35)
        return false;
    const char *p = s;
    int part = 0; /* 0 language, 1 script, 2 region, 3 variants */
    while (*p) {
        const char *end = strchr(p, '-');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > 8)
            return false;
        if (part == 0) {
            char lang[3] = {0};
            if (n != 2 || !all(p, n, islower))
                return false;
            memcpy(lang, p, 2);
            if (!in_list(lang, languages, 2))
                return false;
            part = 1;
        } else if (part <= 1 && n == 4 && isupper((unsigned char)p[0]) && all(p + 1, 3, islower)) {
            part = 2; /* script, e.g. Hant */
        } else if (part <= 2 &&
                   ((n == 2 && all(p, 2, isupper)) || (n == 3 && all(p, 3, isdigit)))) {
            part = 3; /* region, e.g. JP or 419 */
        } else if ((n >= 5 && all(p, n, isalnum)) ||
                   (n == 4 && isdigit((unsigned char)p[0]) && all(p, n, isalnum))) {
            part = 3; /* variant */
        } else {
            return false;
        }
        p += n;
        if (*p == '-') {
            p++;
            if (*p == '\0')
                return false;
        }
    }
    return true;
}

bool users_valid_time_zone(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, "UTC") == 0)
        return true;
    if (n == 0 || n > 64 || s[0] == '/' || strstr(s, "..") || strstr(s, "//") || s[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+')
            return false;
    }
    /* names start with an upper-case letter in each component (Asia/Tokyo, Etc/GMT+9) */
    for (const char *p = s; p; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (!isupper((unsigned char)*p))
            return false;
    }
    /* not the database's aliases directories or files that are not zones */
    if (strncmp(s, "posix/", 6) == 0 || strncmp(s, "right/", 6) == 0)
        return false;
    char path[512];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", s);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && memcmp(magic, "TZif", 4) == 0;
}

bool users_valid_email(const char *s)
{
    return cc_email_valid(s);
}

bool users_valid_phone(const char *s)
{
    return cc_phone_valid(s);
}

bool users_valid_username(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 254)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("._@+-", c))
            return false;
    }
    return true;
}

bool users_valid_postal_code(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 16 || s[0] == ' ' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != ' ' && c != '-')
            return false;
    }
    return true;
}

const char *const users_create_fields[] = {
    "tenant_id",   "title",         "first_name", "last_name",       "preferred_currency",
    "language",    "primary_email", "username",   "secondary_email", "phone",
    "mobile",      "street",        "city",       "state",           "country",
    "postal_code", "time_zone",     NULL};

const char *const users_patch_fields[] = {
    "title",    "first_name",    "last_name",   "preferred_currency",
    "language", "primary_email", "username",    "secondary_email",
    "phone",    "mobile",        "street",      "city",
    "state",    "country",       "postal_code", "time_zone",
    NULL};

/* One string field with its length, the optional format check and its message. */
static const char *field(cc_validator_t *v, json_t *body, const char *name, bool create,
                         bool required, size_t max, bool (*check)(const char *),
                         const char *format_msg)
{
    json_t *j = json_object_get(body, name);
    if (!create && j == NULL)
        return NULL; /* not changed */
    if (!create && json_is_null(j)) {
        if (required)
            cc_v_add(v, name, "required", "%s cannot be removed.", name);
        return required ? NULL : "";
    }
    const char *s = cc_v_string(v, body, name, create && required, 1, max, true);
    if (s != NULL && check != NULL && !check(s)) {
        cc_v_add(v, name, "format", "%s", format_msg);
        return NULL;
    }
    return s;
}

void users_validate_profile(cc_validator_t *v, json_t *body, bool create, user_profile_t *p)
{
    memset(p, 0, sizeof(*p));
    p->title = field(v, body, "title", create, false, 32, NULL, NULL);
    p->first_name = field(v, body, "first_name", create, true, 64, NULL, NULL);
    p->last_name = field(v, body, "last_name", create, true, 64, NULL, NULL);
    p->preferred_currency =
        field(v, body, "preferred_currency", create, true, 3, users_valid_currency,
              "preferred_currency must be an ISO 4217 code such as JPY.");
    p->language = field(v, body, "language", create, true, 35, users_valid_language,
                        "language must be a BCP 47 tag such as ja or en-US.");
    p->primary_email = field(v, body, "primary_email", create, true, 254, users_valid_email,
                             "primary_email is not an e-mail address.");
    p->username = field(v, body, "username", create, false, 254, users_valid_username,
                        "username takes 3 to 254 letters, digits and . _ @ + -.");
    if (!create && p->username != NULL && *p->username == '\0') {
        cc_v_add(v, "username", "required", "username cannot be removed.");
        p->username = NULL;
    }
    p->secondary_email = field(v, body, "secondary_email", create, false, 254, users_valid_email,
                               "secondary_email is not an e-mail address.");
    p->phone = field(v, body, "phone", create, true, 32, users_valid_phone,
                     "phone must hold 7 to 15 digits, optionally with + and separators.");
    p->mobile = field(v, body, "mobile", create, false, 32, users_valid_phone,
                      "mobile must hold 7 to 15 digits, optionally with + and separators.");
    p->street = field(v, body, "street", create, true, 200, NULL, NULL);
    p->city = field(v, body, "city", create, true, 100, NULL, NULL);
    p->state = field(v, body, "state", create, true, 100, NULL, NULL);
    p->country = field(v, body, "country", create, false, 2, users_valid_country,
                       "country must be an ISO 3166-1 alpha-2 code such as JP.");
    p->postal_code = field(v, body, "postal_code", create, true, 16, users_valid_postal_code,
                           "postal_code takes letters, digits, spaces and hyphens.");
    p->time_zone = field(v, body, "time_zone", create, true, 64, users_valid_time_zone,
                         "time_zone must be an IANA time zone such as Asia/Tokyo.");
    if (create && p->username == NULL && p->primary_email != NULL)
        p->username = p->primary_email;
}
