/* SPDX-License-Identifier: ISC */
/*
 * Replays a fuzz target's corpus as an ordinary test: calls the target on
 * every file in the directories (or files) given, and fails if none was
 * found. A crash or abort in the target fails the test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overruns */
  memcpy(copy, buf, n);
  LLVMFuzzerTestOneInput(copy, n);
  free(copy);
  return 0;
}

int
main(int argc, char **argv)
{
  int files = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) < 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (replay_file(argv[i]) < 0)
        return 1;
      files++;
      continue;
    }
    DIR *dir = opendir(argv[i]);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      if (replay_file(path) < 0)
        return 1;
      files++;
    }
    if (dir)
      closedir(dir);
  }
  printf("replayed %d input(s)\n", files);
  if (files == 0) {
    fprintf(stderr, "no corpus found\n");
    return 1;
  }
  printf("%d passed, 0 failed\n", files);
  return 0;
}
