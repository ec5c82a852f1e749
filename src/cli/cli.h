/*
 * cli.h - the filmpicker command line: serve, migrate, pick, scrape, import.
 * Each subcommand has --help; configuration comes from flags and FILMPICKER_*
 * environment variables (config.h).
 */
#ifndef FP_CLI_H
#define FP_CLI_H

/* Runs the subcommand named in argv[1]; returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
