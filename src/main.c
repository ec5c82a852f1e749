/* main.c - the filmpicker binary: dispatches to the subcommands in cli/. */
#include "cli/cli.h"

#ifdef FP_USE_JEMALLOC
/* jemalloc reads its options from this symbol: two arenas are plenty for a
 * 2-core server and keep idle memory low. */
const char *malloc_conf = "narenas:2";
#endif

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
