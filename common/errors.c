#include "console/errors.h"

#include <string.h>

const char *cc_strerror(int err)
{
    switch (err) {
    case CC_OK:
        return "ok";
    case CC_EINVAL:
        return "invalid argument";
    case CC_ENOENT:
        return "not found";
    case CC_EIO:
        return "i/o error";
    case CC_EDB:
        return "database error";
    case CC_EAUTH:
        return "authentication failed";
    case CC_ECONFLICT:
        return "conflict";
    case CC_ETOOBIG:
        return "too big";
    case CC_ECRYPTO:
        return "cryptographic failure";
    case CC_ECLOSED:
        return "peer closed";
    case CC_ETIMEDOUT:
        return "timed out";
    case CC_EDBDOWN:
        return "database unreachable";
    case CC_EEXPIRED:
        return "expired";
    case CC_EKEY:
        return "unknown key";
    default:
        return "unknown error";
    }
}

int cc_error_find(const char *code)
{
    for (int i = 0; i < CC_ERR__COUNT; i++)
        if (strcmp(cc_error_defs[i].code, code) == 0)
            return i;
    return -1;
}
