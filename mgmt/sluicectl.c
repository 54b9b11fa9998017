/* sluicectl - drives sluiced through its management socket: one JSON
 * request line, one JSON reply line (docs/operations.md). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sl_mgmt_proto.h"

static void usage(FILE *f)
{
    char cmds[512];
    sl_mgmt_usage_commands(cmds, sizeof cmds);
    fprintf(f, "usage: sluicectl [--socket PATH] [--json] COMMAND\n%s"
               "  --socket defaults to $SLUICED_SOCKET, else /run/sluice/sluiced.sock.  Exit status:\n"
               "  0 done, 1 refused by the daemon, 2 no daemon or bad usage.\n",
            cmds);
}

static void print_model(json_object *m)
{
    sl_mgmt_version v;
    const unsigned have = sl_mgmt_version_from_json(m, &v);
    char b[SL_MGMT_V_COUNT][24];
#define T(f) sl_mgmt_version_text(&v, have, SL_MGMT_V_##f, b[SL_MGMT_V_##f], sizeof b[0])
    printf("  %-16s version %-4s %s%s\n    %s  queued %s running %s  KV blocks %s/%s  steps %s  tokens %s\n", T(NAME),
           T(VERSION), T(IMAGE), v.retired ? "  (draining)" : "", T(CHECKSUM), T(QUEUED), T(RUNNING),
           T(KV_BLOCKS_USED), T(KV_BLOCKS_TOTAL), T(STEPS), T(GENERATED_TOKENS));
#undef T
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
                                         {"force", no_argument, 0, 'f'},        {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = getenv("SLUICED_SOCKET");
    int json = 0, force = 0, o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 's': path = optarg; break;
        case 'j': json = 1; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path)
        path = "/run/sluice/sluiced.sock";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) { /* cut, it could name another socket */
        fprintf(stderr, "sluicectl: socket path %s is over %zu bytes\n", path, sizeof a.sun_path - 1);
        return 2;
    }
    /* the words and the request line checked here by the daemon's own rules */
    sl_mgmt_req q;
    sl_err err = {0};
    sl_status st = sl_mgmt_request_from_argv(argc - optind, argv + optind, force, &q, &err);
    if (st == SL_EINVAL) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    char abs[4096];
    if (!st && q.image && q.image[0] != '/' && realpath(q.image, abs)) /* the daemon's working directory is not ours */
        q.image = abs;
    static char line[SL_MGMT_LINE_MAX + 1];
    size_t line_len = 0;
    if (!st)
        st = sl_mgmt_encode_request(&q, line, sizeof line, &line_len, &err);
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "sluicectl: cannot reach sluiced at %s: %m\n", path);
        if (fd >= 0)
            close(fd);
        return 2;
    }
    json_object *r;
    if (st) { /* what the daemon would answer: the same decoder, the same words, the same exit */
        close(fd);
        r = sl_mgmt_reply_error(err.msg);
    } else {
        if (write(fd, line, line_len) < 0) {
            fprintf(stderr, "sluicectl: %s: %m\n", path);
            close(fd);
            return 2;
        }
        static char buf[1 << 20];
        size_t len = 0;
        for (;;) { /* one line back */
            const ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            if (memchr(buf, '\n', len) || len == sizeof buf - 1)
                break;
        }
        close(fd);
        buf[len] = 0;
        r = json_tokener_parse(buf);
        if (!r) {
            fprintf(stderr, "sluicectl: no reply from sluiced\n");
            return 2;
        }
    }
    const char *error;
    const bool ok = sl_mgmt_reply_ok(r, &error);
    sl_mgmt_status s;
    json_object *models, *model;
    const unsigned have = sl_mgmt_status_from_json(r, &s, &models);
    if (json)
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    else if (!ok)
        fprintf(stderr, "sluicectl: %s: %s\n", cmd, error ? error : "refused");
    else if (models) {
        char b[SL_MGMT_S_COUNT][24];
#define T(f) sl_mgmt_status_text(&s, have, SL_MGMT_S_##f, b[SL_MGMT_S_##f], sizeof b[0])
        printf("%s, %s; %s served, %s errors, %s swaps (%s refused)\n", s.ready ? "ready" : "not ready",
               s.draining ? "draining" : "serving", T(SERVED), T(ERRORS), T(SWAPS), T(SWAPS_FAILED));
#undef T
        for (size_t i = 0; i < s.n_models; i++)
            print_model(json_object_array_get_idx(models, i));
    } else if (json_object_object_get_ex(r, SL_MGMT_KEY_MODEL, &model)) {
        printf("%s: now serving\n", cmd);
        print_model(model);
    } else
        printf("%s: done\n", cmd);
    json_object_put(r);
    return ok ? 0 : 1;
}
