/*
 * libFuzzer driver for what the licensing service reads from products and users
 * (services/licensing/sign.c): license documents (compact JWS, EdDSA), offline request
 * files, and product keys.
 *
 * The first byte picks what the rest of the input is:
 *   0: a license (JWS) verified against the driver's key;
 *   1: an offline request file (JSON), opened and its MAC checked;
 *   2: a product key, checked (checksum, MAC) and matched against a product.
 * The keys below are throwaway constants; they sign nothing else.
 *
 * Build (clang): cmake -DCONSOLE_FUZZ=ON; run:
 *   fuzz_license -max_total_time=60 tests/fuzz/corpus/license
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/licensing/licensing.h"
#include "console/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lic_keys_t keys;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        uint8_t priv[32], secret[32];
        memset(priv, 0x42, sizeof(priv));
        memset(secret, 0x24, sizeof(secret));
        cc_log_init("fuzz", CC_LOG_ERROR);
        if (lic_keys_from_raw(&keys, "fuzz", priv, secret) != 0)
            abort();
        ready = 1;
    }
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: {
        json_t *payload = NULL;
        if (lic_verify(&keys, text, &payload) == 0 && payload == NULL)
            abort(); /* success always yields the payload */
        json_decref(payload);
        break;
    }
    case 1: {
        json_t *file = json_loadb(text, size - 1, JSON_REJECT_DUPLICATES, NULL);
        json_t *request = NULL;
        const char *rb = NULL, *mb = NULL;
        if (file != NULL && lic_request_open(file, &request, &rb, &mb) == 0) {
            if (!json_is_object(request))
                abort();
            (void)lic_request_mac_ok("FN-FUZZ", rb, mb);
            json_decref(request);
        }
        /* the offline deactivation request file shares the envelope, not the format */
        if (file != NULL && lic_deactivation_open(file, &request, &rb, &mb) == 0) {
            if (!json_is_object(request))
                abort();
            json_decref(request);
        }
        json_decref(file);
        break;
    }
    default: {
        uint32_t serial;
        int major;
        if (lic_product_key_check(&keys, text, &serial, &major) == 0) {
            /* a key that checks is one this key set makes */
            (void)lic_product_key_for(text, "Arcserve RHA");
        }
        break;
    }
    }
    free(text);
    return 0;
}
