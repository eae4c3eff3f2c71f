/* SPDX-License-Identifier: ISC */
#include "aipc.h"

#include "aipc-config.h"

#include <stdio.h>
#include <string.h>

bool aipc_in_child;
int aipc_argc;
char **aipc_argv;

struct command {
  const char *name;
  int (*main)(int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
    {"demo", aipc_demo_main,
     "run a server and sandboxed clients that each play a tone"},
    {"serve", aipc_serve_main, "serve clients on a Unix socket"},
    {"top", aipc_top_main, "show a running server's clients and streams"},
    {"play", aipc_play_main, "play a sound file, raw audio or a tone"},
    {"record", aipc_record_main, "record an input to a sound file or stdout"},
    {"devices", aipc_devices_main, "list the backend's devices"},
    {"info", aipc_info_main,
     "show the backend's id, preferred rate, latency and channels"},
    {"bench", aipc_bench_main,
     "measure callback overhead, pacing, control calls and memory"},
};

/* Client parts, run in re-executed children only. */
static const struct command child_commands[] = {
    {"demo-client", aipc_demo_client_main, NULL},
    {"play", aipc_play_main, NULL},
    {"record", aipc_record_main, NULL},
    {"devices", aipc_devices_main, NULL},
    {"info", aipc_info_main, NULL},
    {"bench-client", aipc_bench_client_main, NULL},
};

static void
usage(FILE *f)
{
  fputs("usage: aipc COMMAND [OPTIONS]\n"
        "\n"
        "audioipc's command-line tool: serves cubeb to sandboxed clients "
        "and plays,\nrecords and inspects audio through a server.\n"
        "\n"
        "Commands:\n",
        f);
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fputs("\nOptions:\n"
        "  --version   show the version\n"
        "  -h, --help  show this help\n"
        "\nRun \"aipc COMMAND --help\" for a command's options; \"man aipc\" "
        "for all.\n",
        f);
}

static int
dispatch(const struct command *table, size_t n, int argc, char **argv)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, argv[0]) == 0)
      return table[i].main(argc, argv);
  fprintf(stderr, "aipc: unknown %s %s\nsee aipc --help\n",
          argv[0][0] == '-' ? "option" : "command", argv[0]);
  return AIPC_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
  aipc_argc = argc;
  aipc_argv = argv;
  /* Read now, while this process has no other thread. */
  if (!aipc_exe_path())
    return AIPC_EXIT_FAILURE;
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (argc < 2) {
    fputs("aipc: no command given\nsee aipc --help\n", stderr);
    return AIPC_EXIT_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 ||
      strcmp(first, "help") == 0) {
    usage(stdout);
    return AIPC_EXIT_OK;
  }
  if (strcmp(first, "--version") == 0) {
    printf("aipc %s\n", AIPC_VERSION_STRING);
    return AIPC_EXIT_OK;
  }
  if (strcmp(first, AIPC_CHILD_COMMAND) == 0) {
    if (argc < 3) {
      fprintf(stderr, "aipc: %s needs a command\n", AIPC_CHILD_COMMAND);
      return AIPC_EXIT_USAGE;
    }
    aipc_in_child = true;
    return dispatch(child_commands,
                    sizeof(child_commands) / sizeof(child_commands[0]),
                    argc - 2, argv + 2);
  }
  return dispatch(commands, sizeof(commands) / sizeof(commands[0]), argc - 1,
                  argv + 1);
}
