/* The floor of `backstage render`: the same directories and files, and nothing else: one
   open, one write and one close per file, of bytes already in memory.
     floor LIST OUTDIR    LIST: "d DIR" and "f PATH SIZE OFFSET" lines; the bytes in LIST.data */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: floor LIST OUTDIR\n"); return 2; }
    char datapath[4096];
    snprintf(datapath, sizeof datapath, "%s.data", argv[1]);
    FILE *list = fopen(argv[1], "r");
    int dfd = open(datapath, O_RDONLY);
    struct stat st;
    if (!list || dfd < 0 || fstat(dfd, &st) < 0) { perror(argv[1]); return 1; }
    char *data = malloc(st.st_size + 1);
    if (!data || read(dfd, data, st.st_size) != st.st_size) { perror(datapath); return 1; }
    close(dfd);
    mkdir(argv[2], 0755);
    if (chdir(argv[2]) < 0) { perror(argv[2]); return 1; }
    char line[8192], path[4096];
    long size, off;
    while (fgets(line, sizeof line, list)) {
        if (sscanf(line, "d %4095s", path) == 1) {
            mkdir(path, 0755);
        } else if (sscanf(line, "f %4095s %ld %ld", path, &size, &off) == 3) {
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || write(fd, data + off, size) != size || close(fd) < 0) { perror(path); return 1; }
        }
    }
    return 0;
}
