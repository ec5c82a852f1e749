/* error.c - names, messages and HTTP statuses generated from FP_ERR_TABLE. */
#include "core/error.h"

#include <string.h>

static const struct {
    const char *code;
    int status;
    const char *message;
} fp_err_info[] = {
#define FP_X_INFO(name, code, status, msg) {code, status, msg},
    FP_ERR_TABLE(FP_X_INFO)
#undef FP_X_INFO
};

const char *fp_err_code(fp_err e)
{
    return (e >= 0 && e < FP_ERR__COUNT) ? fp_err_info[e].code : "internal_error";
}

const char *fp_err_message(fp_err e)
{
    return (e >= 0 && e < FP_ERR__COUNT) ? fp_err_info[e].message : "internal error";
}

int fp_err_http_status(fp_err e)
{
    return (e >= 0 && e < FP_ERR__COUNT) ? fp_err_info[e].status : 500;
}

fp_err fp_err_from_code(const char *code)
{
    for (int i = 0; code && i < FP_ERR__COUNT; i++)
        if (strcmp(fp_err_info[i].code, code) == 0)
            return (fp_err)i;
    return FP_INTERNAL;
}
