/* Fuzz target: export import (format sniffing, Letterboxd CSV and zip). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "import/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    import_result r;
    import_result_init(&r);
    fp_err rc = import_parse(data, size, size % 2 ? "watchlist.csv" : NULL, &r);
    if (rc == FP_OK)
        for (size_t i = 0; i < r.films.len; i++)
            if (!r.films.items[i].title || !r.films.items[i].title[0])
                __builtin_trap(); /* imported films always have a name */
    if (rc == FP_BAD_FILE && !r.message)
        __builtin_trap(); /* a refusal always says why */
    import_result_free(&r);
    return 0;
}
