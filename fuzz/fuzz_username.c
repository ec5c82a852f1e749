/* Fuzz target: username / profile URL validation. Whatever is accepted must
 * be a bare Letterboxd username: lower-case letters, digits, underscores. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "source/lb_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fp_strndup((const char *)data, size);
    char user[LB_USERNAME_MAX + 1];
    if (lb_username_parse(input, user) == FP_OK) {
        size_t n = strlen(user);
        if (n == 0 || n > LB_USERNAME_MAX ||
            strspn(user, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
            __builtin_trap();
    }
    fp_free(input);
    return 0;
}
