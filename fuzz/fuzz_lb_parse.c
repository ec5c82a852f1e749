/* Fuzz target: the Letterboxd page parser and page counting on any bytes. */
#include <stddef.h>
#include <stdint.h>

#include "source/lb_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_page page;
    fp_err rc = lb_parse_page((const char *)data, size, &page);
    if (rc == FP_OK) {
        int pages = lb_page_count(&page);
        if (pages < 1 || pages > LB_PAGES_MAX)
            __builtin_trap();
        for (size_t i = 0; i < page.films.len; i++)
            if (!page.films.items[i].title)
                __builtin_trap(); /* every parsed film has a title */
    }
    lb_page_free(&page);
    (void)lb_is_challenge((const char *)data, size);
    return 0;
}
