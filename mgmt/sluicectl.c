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

static void usage(FILE *f)
{
    fprintf(f, "usage: sluicectl [--socket PATH] [--json] COMMAND\n"
               "  status | models | stats | drain\n"
               "  load NAME IMAGE [--force] | swap NAME IMAGE [--force] | unload NAME\n"
               "  --socket defaults to $SLUICED_SOCKET, else /run/sluice/sluiced.sock.  Exit status:\n"
               "  0 done, 1 refused by the daemon, 2 no daemon or bad usage.\n");
}

static void print_model(json_object *m)
{
    json_object *x;
#define S(k) (json_object_object_get_ex(m, k, &x) ? json_object_get_string(x) : "?")
    printf("  %-16s version %-4s %s%s\n    %s  queued %s running %s  KV blocks %s/%s  steps %s  tokens %s\n", S("name"),
           S("version"), S("image"),
           json_object_object_get_ex(m, "retired", &x) && json_object_get_boolean(x) ? "  (draining)" : "",
           S("checksum"), S("queued"), S("running"), S("kv_blocks_used"), S("kv_blocks_total"), S("steps"),
           S("generated_tokens"));
#undef S
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
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    const int args = argc - optind - 1;
    const int want = !strcmp(cmd, "load") || !strcmp(cmd, "swap") ? 2 : !strcmp(cmd, "unload") ? 1 : 0;
    if (args != want) {
        usage(stderr);
        return 2;
    }
    json_object *q = json_object_new_object();
    json_object_object_add(q, "cmd", json_object_new_string(cmd));
    if (want >= 1)
        json_object_object_add(q, "name", json_object_new_string(argv[optind + 1]));
    if (want == 2) {
        char abs[4096];
        const char *img = argv[optind + 2];
        if (img[0] != '/' && realpath(img, abs)) /* the daemon's working directory is not ours */
            img = abs;
        json_object_object_add(q, "image", json_object_new_string(img));
        json_object_object_add(q, "force", json_object_new_boolean(force));
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "sluicectl: cannot reach sluiced at %s: %m\n", path);
        if (fd >= 0)
            close(fd);
        json_object_put(q);
        return 2;
    }
    const char *line = json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN);
    const int sent = write(fd, line, strlen(line)) >= 0 && write(fd, "\n", 1) >= 0;
    json_object_put(q);
    if (!sent) {
        fprintf(stderr, "sluicectl: %s: %m\n", path);
        close(fd);
        return 2;
    }
    static char buf[1 << 20];
    size_t len = 0;
    for (;;) { /* one line back */
        const ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (memchr(buf, '\n', len) || len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    json_object *r = json_tokener_parse(buf), *x;
    if (!r) {
        fprintf(stderr, "sluicectl: no reply from sluiced\n");
        return 2;
    }
    const int ok = json_object_object_get_ex(r, "ok", &x) && json_object_get_boolean(x);
    if (json)
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    else if (!ok)
        fprintf(stderr, "sluicectl: %s: %s\n", cmd,
                json_object_object_get_ex(r, "error", &x) ? json_object_get_string(x) : "refused");
    else if (json_object_object_get_ex(r, "models", &x)) {
        json_object *y;
        printf("%s, %s; %s served, %s errors, %s swaps (%s refused)\n",
               json_object_object_get_ex(r, "ready", &y) && json_object_get_boolean(y) ? "ready" : "not ready",
               json_object_object_get_ex(r, "draining", &y) && json_object_get_boolean(y) ? "draining" : "serving",
               json_object_object_get_ex(r, "served", &y) ? json_object_get_string(y) : "?",
               json_object_object_get_ex(r, "errors", &y) ? json_object_get_string(y) : "?",
               json_object_object_get_ex(r, "swaps", &y) ? json_object_get_string(y) : "?",
               json_object_object_get_ex(r, "swaps_failed", &y) ? json_object_get_string(y) : "?");
        for (size_t i = 0; i < json_object_array_length(x); i++)
            print_model(json_object_array_get_idx(x, i));
    } else if (json_object_object_get_ex(r, "model", &x)) {
        printf("%s: now serving\n", cmd);
        print_model(x);
    } else
        printf("%s: done\n", cmd);
    json_object_put(r);
    return ok ? 0 : 1;
}
