/*
 * Errors: internal return codes (0 or a negative CC_E*) and the catalogue of API error
 * codes generated from schemas/errors.tsv.
 */
#ifndef CONSOLE_ERRORS_H
#define CONSOLE_ERRORS_H

#include "console/errors_ids.h" /* generated: cc_error_id_t, CC_ERR_* */

/* Internal return codes. Functions return 0 on success or one of these. */
#define CC_OK 0
#define CC_EINVAL (-1)     /* invalid argument or input */
#define CC_ENOENT (-2)     /* not found */
#define CC_EIO (-3)        /* I/O or network error */
#define CC_EDB (-4)        /* database error (see cc_db_sqlstate) */
#define CC_EAUTH (-5)      /* authentication failed */
#define CC_ECONFLICT (-6)  /* conflicts with current state */
#define CC_ETOOBIG (-7)    /* exceeds a size limit */
#define CC_ECRYPTO (-8)    /* cryptographic failure */
#define CC_ECLOSED (-9)    /* the peer went away */
#define CC_ETIMEDOUT (-10) /* timed out */
#define CC_EDBDOWN (-11)   /* database unreachable */
#define CC_EEXPIRED (-12)  /* token or secret expired */
#define CC_EKEY (-13)      /* unknown signing key */

/** A short lower-case name for an internal return code; never NULL. */
const char *cc_strerror(int err);

/** One entry of the API error catalogue. */
typedef struct cc_error_def {
    const char *code; /* stable snake_case code, e.g. "name_taken" */
    int status;       /* HTTP status */
    const char *title;
} cc_error_def_t;

/** The catalogue, indexed by cc_error_id_t. */
extern const cc_error_def_t cc_error_defs[CC_ERR__COUNT];

/** The id of a code, or -1 when the catalogue has no such code. */
int cc_error_find(const char *code);

#endif
