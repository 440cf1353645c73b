/* libFuzzer driver: request bodies through the strict JSON parser and the validator. */
#include <stddef.h>
#include <stdint.h>

#include "console/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cc_pool_t *pool = cc_pool_new();
    json_t *v = NULL;
    const char *detail = NULL;
    if (cc_json_parse_body(pool, (const char *)data, size, 1 << 20, &v, &detail) == 0) {
        cc_validator_t val;
        cc_v_init(&val, pool);
        static const char *const allowed[] = {"name", "kind", "parent_id", "limit", NULL};
        if (cc_v_object(&val, v, allowed)) {
            (void)cc_v_string(&val, v, "name", true, 1, 128, true);
            (void)cc_v_enum(&val, v, "kind", false,
                            (const char *const[]){"msp", "customer", "direct", NULL});
            (void)cc_v_uuid(&val, v, "parent_id", false);
            (void)cc_v_int(&val, v, "limit", false, 1, 500, NULL);
        }
    }
    cc_pool_free(pool);
    return 0;
}
