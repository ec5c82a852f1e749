/* cli.c - subcommand dispatch (work in progress). */
#include "cli/cli.h"

#include <stdio.h>

int cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("usage: filmpicker COMMAND [OPTIONS]\n", stderr);
    return 2;
}
