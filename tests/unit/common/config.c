/* Unit tests for common/config.c: settings tables, the KEY=VALUE file and the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "console/config.h"
#include "console/errors.h"
#include "console/mem.h"

/* Every variable a test may set; unset before and after each test. */
static const char *const env_keys[] = {
    "CONSOLE_CONFIG_FILE", "CONSOLE_T_NAME", "CONSOLE_T_PORT",   "CONSOLE_T_FLAG",
    "CONSOLE_T_URL",       "CONSOLE_T_SIZE", "CONSOLE_T_SECRET", "CONSOLE_T_KEY",
    "CONSOLE_T_OTHER",     "DATABASE_URL",   "CONSOLE_T_TYPO",   "CONSOLE_T_REQ",
    "CONSOLE_T_COUNT",
};

static char tmp_path[64];
static char err[512];

static const char *t_name, *t_url, *t_secret, *t_db, *t_req, *t_other;
static int64_t t_port, t_size, t_key, t_count;
static bool t_flag;

static void reset_targets(void)
{
    t_name = t_url = t_secret = t_db = t_req = t_other = "untouched";
    t_port = t_size = t_key = t_count = -42;
    t_flag = true;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(env_keys); i++)
        unsetenv(env_keys[i]);
    tmp_path[0] = '\0';
    err[0] = '\0';
    reset_targets();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(env_keys); i++)
        unsetenv(env_keys[i]);
    if (tmp_path[0] != '\0')
        unlink(tmp_path);
    tmp_path[0] = '\0';
    cc_config_free();
    return 0;
}

/* Writes text to a fresh temporary file and points CONSOLE_CONFIG_FILE at it. */
static void write_file(const char *text)
{
    if (tmp_path[0] != '\0')
        unlink(tmp_path);
    strcpy(tmp_path, "/tmp/console-config-test-XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    setenv("CONSOLE_CONFIG_FILE", tmp_path, 1);
}

/* A table with one setting of each type. */
static const cc_setting_t table[] = {
    {"CONSOLE_T_NAME", CC_SET_STRING, &t_name, "default name", 0, 0, false, false, "a name"},
    {"CONSOLE_T_PORT", CC_SET_INT, &t_port, "8080", 1, 65535, false, false, "a port"},
    {"CONSOLE_T_FLAG", CC_SET_BOOL, &t_flag, "false", 0, 0, false, false, "a flag"},
    {"CONSOLE_T_URL", CC_SET_URL, &t_url, NULL, 0, 0, false, false, "a URL"},
    {"CONSOLE_T_SIZE", CC_SET_SIZE, &t_size, "1m", 0, 0, false, false, "a size"},
    {"CONSOLE_T_SECRET", CC_SET_STRING, &t_secret, NULL, 0, 0, true, false, "a secret"},
    {"CONSOLE_T_KEY", CC_SET_INT, &t_key, NULL, 0, 0, true, false, "a secret number"},
    {"DATABASE_URL", CC_SET_URL, &t_db, NULL, 0, 0, false, false, "the database"},
};

static int load(void)
{
    return cc_config_load(table, CC_ARRAY_SIZE(table), err, sizeof(err));
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(load(), 0);
    assert_string_equal(err, "");
    assert_string_equal(t_name, "default name");
    assert_int_equal(t_port, 8080);
    assert_false(t_flag);
    assert_null(t_url); /* NULL default: unset */
    assert_int_equal(t_size, 1 << 20);
    assert_null(t_secret);
    assert_int_equal(t_key, 0);
    assert_null(t_db);
}

static void test_every_type_from_env(void **state)
{
    (void)state;
    setenv("CONSOLE_T_NAME", "顧客会社A", 1);
    setenv("CONSOLE_T_PORT", "443", 1);
    setenv("CONSOLE_T_FLAG", "yes", 1);
    setenv("CONSOLE_T_URL", "https://console.example.com/base", 1);
    setenv("CONSOLE_T_SIZE", "512k", 1);
    setenv("CONSOLE_T_SECRET", "hunter2", 1);
    setenv("CONSOLE_T_KEY", "-17", 1);
    setenv("DATABASE_URL", "postgresql://console@localhost/console", 1);
    assert_int_equal(load(), 0);
    assert_string_equal(t_name, "顧客会社A");
    assert_int_equal(t_port, 443);
    assert_true(t_flag);
    assert_string_equal(t_url, "https://console.example.com/base");
    assert_int_equal(t_size, 512 * 1024);
    assert_string_equal(t_secret, "hunter2");
    assert_int_equal(t_key, -17);
    assert_string_equal(t_db, "postgresql://console@localhost/console");
}

static const struct {
    const char *value;
    bool ok;
    int64_t want;
} int_cases[] = {
    {"1", true, 1},       {"65535", true, 65535},
    {"8081", true, 8081}, {"+80", true, 80},
    {"0", false, 0},      {"65536", false, 0},
    {"-1", false, 0},     {"abc", false, 0},
    {"80a", false, 0},    {" 80", false, 0},
    {"80 ", false, 0},    {"1e3", false, 0},
    {"0x50", false, 0},   {"8.0", false, 0},
    {"-", false, 0},      {"99999999999999999999", false, 0},
};

static void test_int_bounds_name_the_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(int_cases); i++) {
        setenv("CONSOLE_T_PORT", int_cases[i].value, 1);
        t_port = -42;
        int rc = load();
        if (int_cases[i].ok) {
            if (rc != 0)
                fail_msg("port \"%s\" refused: %s", int_cases[i].value, err);
            assert_int_equal(t_port, int_cases[i].want);
        } else {
            if (rc != CC_EINVAL)
                fail_msg("port \"%s\" accepted", int_cases[i].value);
            assert_string_equal(err, "CONSOLE_T_PORT: must be an integer between 1 and 65535");
            assert_int_equal(t_port, -42); /* nothing written on failure */
        }
    }
}

static void test_int_unbounded(void **state)
{
    (void)state;
    const cc_setting_t t[] = {
        {"CONSOLE_T_COUNT", CC_SET_INT, &t_count, "5", 0, 0, false, false, "unbounded"},
    };
    setenv("CONSOLE_T_COUNT", "-9223372036854775808", 1);
    assert_int_equal(cc_config_load(t, 1, err, sizeof(err)), 0);
    assert_true(t_count == INT64_MIN);
    setenv("CONSOLE_T_COUNT", "9223372036854775808", 1);
    assert_int_equal(cc_config_load(t, 1, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_COUNT: must be an integer");
}

static const struct {
    const char *value;
    int want; /* 1 true, 0 false, -1 refused */
} bool_cases[] = {
    {"true", 1}, {"TRUE", 1},  {"True", 1},  {"1", 1},  {"yes", 1},    {"on", 1},
    {"ON", 1},   {"false", 0}, {"FALSE", 0}, {"0", 0},  {"no", 0},     {"off", 0},
    {"2", -1},   {"tru", -1},  {"yes!", -1}, {"y", -1}, {" true", -1}, {"enabled", -1},
};

static void test_bool(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(bool_cases); i++) {
        setenv("CONSOLE_T_FLAG", bool_cases[i].value, 1);
        int rc = load();
        if (bool_cases[i].want < 0) {
            if (rc != CC_EINVAL)
                fail_msg("bool \"%s\" accepted", bool_cases[i].value);
            assert_non_null(strstr(err, "CONSOLE_T_FLAG: "));
        } else {
            if (rc != 0)
                fail_msg("bool \"%s\" refused: %s", bool_cases[i].value, err);
            assert_int_equal(t_flag, bool_cases[i].want);
        }
    }
}

static const struct {
    const char *value;
    bool ok;
    int64_t want;
} size_cases[] = {
    {"1048576", true, 1048576},
    {"0", true, 0},
    {"512k", true, 512 * 1024},
    {"512K", true, 512 * 1024},
    {"1m", true, 1048576},
    {"1M", true, 1048576},
    {"1MiB", true, 1048576},
    {"1mb", true, 1048576},
    {"2g", true, INT64_C(2147483648)},
    {"8589934591g", true, INT64_C(8589934591) << 30},
    {"8589934592g", false, 0}, /* 2^63: overflows int64 */
    {"99999999999999999999", false, 0},
    {"1x", false, 0},
    {"k", false, 0},
    {"-1", false, 0},
    {"+1", false, 0},
    {"1.5m", false, 0},
    {" 1m", false, 0},
    {"1 m", false, 0},
    {"1mm", false, 0},
    {"1kbb", false, 0},
};

static void test_size(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(size_cases); i++) {
        setenv("CONSOLE_T_SIZE", size_cases[i].value, 1);
        int rc = load();
        if (size_cases[i].ok) {
            if (rc != 0)
                fail_msg("size \"%s\" refused: %s", size_cases[i].value, err);
            assert_true(t_size == size_cases[i].want);
        } else {
            if (rc != CC_EINVAL)
                fail_msg("size \"%s\" accepted", size_cases[i].value);
            assert_string_equal(
                err, "CONSOLE_T_SIZE: must be a size in bytes with an optional k, m or g suffix");
        }
    }
}

static void test_size_bounds(void **state)
{
    (void)state;
    const cc_setting_t t[] = {
        {"CONSOLE_T_SIZE", CC_SET_SIZE, &t_size, "1k", 1024, 1 << 20, false, false, "bounded"},
    };
    assert_int_equal(cc_config_load(t, 1, err, sizeof(err)), 0);
    assert_int_equal(t_size, 1024);
    setenv("CONSOLE_T_SIZE", "2m", 1);
    assert_int_equal(cc_config_load(t, 1, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_SIZE: must be a size in bytes with an optional k, m or g "
                             "suffix, between 1024 and 1048576");
    setenv("CONSOLE_T_SIZE", "1m", 1);
    assert_int_equal(cc_config_load(t, 1, err, sizeof(err)), 0);
    assert_int_equal(t_size, 1 << 20);
}

static const struct {
    const char *key, *value;
    bool ok;
} url_cases[] = {
    {"CONSOLE_T_URL", "http://127.0.0.1:8080", true},
    {"CONSOLE_T_URL", "https://console.example.com/x?y=1", true},
    {"CONSOLE_T_URL", "smtp://mail.example.com:25", true},
    {"CONSOLE_T_URL", "smtps://user:pw@mail.example.com:465", true},
    {"CONSOLE_T_URL", "postgresql://u@h/db", true},
    {"CONSOLE_T_URL", "postgres:///db?host=/tmp", true},
    {"CONSOLE_T_URL", "svn+ssh://h/r", true},
    {"CONSOLE_T_URL", "localhost:5432", false},
    {"CONSOLE_T_URL", "://x", false},
    {"CONSOLE_T_URL", "http//x", false},
    {"CONSOLE_T_URL", "http:/x", false},
    {"CONSOLE_T_URL", "1http://x", false},
    {"CONSOLE_T_URL", "ht tp://x", false},
    {"CONSOLE_T_URL", "http://a b", false},
    {"CONSOLE_T_URL", "http://a\tb", false},
    {"CONSOLE_T_URL", "host=/tmp dbname=x", false}, /* conninfo only for DATABASE_URL */
    {"DATABASE_URL", "postgresql:///console?host=/tmp/pg&port=5432", true},
    {"DATABASE_URL", "host=/tmp/pg dbname=console", true},
    {"DATABASE_URL", "dbname = console", true},
    {"DATABASE_URL", "console", false},
    {"DATABASE_URL", "=x", false},
    {"DATABASE_URL", "/tmp/pg", false},
};

static void test_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(url_cases); i++) {
        unsetenv("CONSOLE_T_URL");
        unsetenv("DATABASE_URL");
        setenv(url_cases[i].key, url_cases[i].value, 1);
        int rc = load();
        if (url_cases[i].ok) {
            if (rc != 0)
                fail_msg("URL case %zu refused: %s", i, err);
            const char *got = strcmp(url_cases[i].key, "DATABASE_URL") == 0 ? t_db : t_url;
            assert_string_equal(got, url_cases[i].value);
        } else {
            if (rc != CC_EINVAL)
                fail_msg("URL case %zu (%s) accepted", i, url_cases[i].value);
            char *prefix = cc_aprintf("%s: must be a URL", url_cases[i].key);
            assert_memory_equal(err, prefix, strlen(prefix));
            free(prefix);
            assert_null(strstr(err, url_cases[i].value)); /* values are never echoed */
        }
    }
}

static void test_required(void **state)
{
    (void)state;
    const cc_setting_t t[] = {
        {"CONSOLE_T_NAME", CC_SET_STRING, &t_name, "x", 0, 0, false, false, "optional"},
        {"CONSOLE_T_REQ", CC_SET_URL, &t_req, NULL, 0, 0, false, true, "required"},
    };
    assert_int_equal(cc_config_load(t, 2, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_REQ: is required");
    assert_string_equal(t_name, "untouched");
    setenv("CONSOLE_T_REQ", "", 1); /* empty counts as not set */
    assert_int_equal(cc_config_load(t, 2, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_REQ: is required");
    setenv("CONSOLE_T_REQ", "http://x", 1);
    assert_int_equal(cc_config_load(t, 2, err, sizeof(err)), 0);
    assert_string_equal(t_req, "http://x");
    assert_string_equal(t_name, "x");
}

static void test_file_and_env_precedence(void **state)
{
    (void)state;
    write_file("# settings\n"
               "\n"
               "CONSOLE_T_NAME=from file\n"
               "   CONSOLE_T_PORT = 9000  \n"
               "CONSOLE_T_FLAG=\"on\"\n"
               "CONSOLE_T_SECRET=\"p#ss \"word\"\"\n"
               "CONSOLE_T_SIZE=\n"
               "\t# indented comment\n"
               "CONSOLE_T_URL=\"\"\r\n"
               "PATH=/not/ours\n"
               "OTHER_TOOL_SETTING=1");
    setenv("CONSOLE_T_PORT", "9001", 1);
    setenv("CONSOLE_T_NAME", "", 1); /* empty: the file's value applies */
    assert_int_equal(load(), 0);
    assert_string_equal(t_name, "from file");
    assert_int_equal(t_port, 9001); /* the environment wins */
    assert_true(t_flag);
    assert_string_equal(t_secret, "p#ss \"word\""); /* quotes and '#' kept inside */
    assert_int_equal(t_size, 1 << 20);              /* empty in the file: default */
    assert_null(t_url);
    unsetenv("CONSOLE_T_PORT");
    assert_int_equal(load(), 0);
    assert_int_equal(t_port, 9000);
}

static const struct {
    const char *text, *err;
} bad_files[] = {
    {"CONSOLE_T_NAME=a\nCONSOLE_T_TYPO=1\n",
     "CONSOLE_T_TYPO: unknown setting (CONSOLE_CONFIG_FILE line 2)"},
    {"# x\n\nJUSTAKEY\n", "CONSOLE_CONFIG_FILE: line 3: expected KEY=VALUE"},
    {"CONSOLE_T_SECRET hunter2\n", "CONSOLE_CONFIG_FILE: line 1: expected KEY=VALUE"},
    {"=value\n", "CONSOLE_CONFIG_FILE: line 1: expected KEY=VALUE with KEY made of letters, "
                 "digits and '_'"},
    {"\n\nexport CONSOLE_T_NAME=x\n", "CONSOLE_CONFIG_FILE: line 3: expected KEY=VALUE with KEY "
                                      "made of letters, digits and '_'"},
    {"CONSOLE_T_NAME=\"unbalanced\n", "CONSOLE_CONFIG_FILE: line 1: unbalanced double quote"},
    {"CONSOLE_T_NAME=\"\n", "CONSOLE_CONFIG_FILE: line 1: unbalanced double quote"},
    {"CONSOLE_T_NAME=a\n#\nCONSOLE_T_NAME=b\n",
     "CONSOLE_T_NAME: set twice in CONSOLE_CONFIG_FILE (lines 1 and 3)"},
    {"CONSOLE_T_PORT=0\n", "CONSOLE_T_PORT: must be an integer between 1 and 65535"},
    {"DATABASE_URL=nope\n", "DATABASE_URL: must be a URL of the form scheme://... or a libpq "
                            "key=value string"},
};

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(bad_files); i++) {
        write_file(bad_files[i].text);
        if (load() != CC_EINVAL)
            fail_msg("bad file %zu accepted", i);
        if (strcmp(err, bad_files[i].err) != 0)
            fail_msg("bad file %zu: error \"%s\", want \"%s\"", i, err, bad_files[i].err);
    }
    /* a missing file names the setting that points at it */
    write_file("");
    unlink(tmp_path);
    assert_int_equal(load(), CC_EINVAL);
    assert_memory_equal(err, "CONSOLE_CONFIG_FILE: cannot open ", 33);
    tmp_path[0] = '\0';
}

static void test_unknown_env_tolerated(void **state)
{
    (void)state;
    setenv("CONSOLE_T_TYPO", "1", 1); /* another process's setting */
    write_file("CONSOLE_T_NAME=x\n");
    assert_int_equal(load(), 0);
    assert_string_equal(t_name, "x");
}

/* A key is known when any table registered so far (or being loaded) has it. */
static void test_registry_is_per_process(void **state)
{
    (void)state;
    const cc_setting_t first[] = {
        {"CONSOLE_T_NAME", CC_SET_STRING, &t_name, NULL, 0, 0, false, false, "first"},
    };
    const cc_setting_t second[] = {
        {"CONSOLE_T_OTHER", CC_SET_STRING, &t_other, NULL, 0, 0, false, false, "second"},
    };
    write_file("CONSOLE_T_NAME=a\nCONSOLE_T_OTHER=b\n");
    assert_int_equal(cc_config_load(first, 1, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_OTHER: unknown setting (CONSOLE_CONFIG_FILE line 2)");
    cc_config_register(second, 1);
    assert_int_equal(cc_config_load(first, 1, err, sizeof(err)), 0);
    assert_int_equal(cc_config_load(second, 1, err, sizeof(err)), 0);
    assert_string_equal(t_name, "a");
    assert_string_equal(t_other, "b");
    /* cc_config_free forgets the tables */
    cc_config_free();
    assert_int_equal(cc_config_load(first, 1, err, sizeof(err)), CC_EINVAL);
    /* loading the union at once works without registering */
    cc_config_free();
    const cc_setting_t both[] = {first[0], second[0]};
    assert_int_equal(cc_config_load(both, 2, err, sizeof(err)), 0);
}

static void test_secret_masked(void **state)
{
    (void)state;
    setenv("CONSOLE_T_SECRET", "hunter2", 1);
    setenv("CONSOLE_T_KEY", "31337", 1);
    setenv("CONSOLE_T_URL", "smtp://mailer:s3cr3t@mail.example.com:587", 1);
    setenv("DATABASE_URL", "postgresql:///console?host=/tmp&password=pgpass", 1);
    assert_int_equal(load(), 0);
    char *dump = cc_config_dump(table, CC_ARRAY_SIZE(table));
    assert_non_null(dump);
    assert_string_equal(dump, "CONSOLE_T_NAME=default name\n"
                              "CONSOLE_T_PORT=8080\n"
                              "CONSOLE_T_FLAG=false\n"
                              "CONSOLE_T_URL=smtp://mailer:***@mail.example.com:587\n"
                              "CONSOLE_T_SIZE=1048576\n"
                              "CONSOLE_T_SECRET=***\n"
                              "CONSOLE_T_KEY=***\n"
                              "DATABASE_URL=***\n");
    free(dump);

    /* a bad secret is named, never echoed, wherever it comes from */
    setenv("CONSOLE_T_KEY", "hunter2", 1);
    assert_int_equal(load(), CC_EINVAL);
    assert_string_equal(err, "CONSOLE_T_KEY: must be an integer");
    unsetenv("CONSOLE_T_KEY");
    write_file("CONSOLE_T_NAME=ok\nCONSOLE_T_KEY=\"hunter2\n");
    assert_int_equal(load(), CC_EINVAL);
    assert_null(strstr(err, "hunter2"));
    write_file("CONSOLE_T_KEY=hunter2\n");
    assert_int_equal(load(), CC_EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "CONSOLE_T_KEY"));
}

static void test_bad_default_and_atomicity(void **state)
{
    (void)state;
    const cc_setting_t t[] = {
        {"CONSOLE_T_NAME", CC_SET_STRING, &t_name, "n", 0, 0, false, false, "ok"},
        {"CONSOLE_T_PORT", CC_SET_INT, &t_port, "http", 1, 10, false, false, "bad default"},
    };
    assert_int_equal(cc_config_load(t, 2, err, sizeof(err)), CC_EINVAL);
    assert_string_equal(err,
                        "CONSOLE_T_PORT: must be an integer between 1 and 10 (in its default)");
    assert_string_equal(t_name, "untouched");
    assert_int_equal(t_port, -42);
    /* a too small error buffer truncates, and NULL is allowed */
    char small[8];
    assert_int_equal(cc_config_load(t, 2, small, sizeof(small)), CC_EINVAL);
    assert_string_equal(small, "CONSOLE");
    assert_int_equal(cc_config_load(t, 2, NULL, 0), CC_EINVAL);
}

static void test_dump_empty_and_unset(void **state)
{
    (void)state;
    char *d = cc_config_dump(table, 0);
    assert_string_equal(d, "");
    free(d);
    assert_int_equal(load(), 0);
    d = cc_config_dump(table + 5, 1); /* an unset secret */
    assert_string_equal(d, "CONSOLE_T_SECRET=\n");
    free(d);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_every_type_from_env),
        T(test_int_bounds_name_the_key),
        T(test_int_unbounded),
        T(test_bool),
        T(test_size),
        T(test_size_bounds),
        T(test_url),
        T(test_required),
        T(test_file_and_env_precedence),
        T(test_bad_files),
        T(test_unknown_env_tolerated),
        T(test_registry_is_per_process),
        T(test_secret_masked),
        T(test_bad_default_and_atomicity),
        T(test_dump_empty_and_unset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
