/* sluiced over real loopback sockets: concurrent clients over UDP and TCP
 * get exactly run.c's greedy tokens; unknown models, malformed, truncated,
 * oversized and random datagrams get an ERROR or are dropped while service
 * continues; cancel and deadlines end requests; SIGTERM drains and exits. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "sl_client.h"
#include "sl_types.h"
#include "test_daemon.h"
#include "test_images.h"

static int metrics_port;

/* A free loopback TCP port (bound and released: a small race, fine here). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t l = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* GET /metrics, the body. */
static char *scrape(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "metrics port %d", metrics_port);
    const char *get = "GET /metrics HTTP/1.0\r\n\r\n";
    cr_assert_eq(write(fd, get, strlen(get)), (ssize_t)strlen(get));
    static char buf[1 << 16];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fd);
    cr_assert(strstr(buf, "200 OK"), "%s", buf);
    return strstr(buf, "\r\n\r\n");
}

static long long metric(const char *body, const char *series)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *p = strstr(body, key);
    cr_assert_not_null(p, "no series %s in\n%s", series, body);
    return atoll(p + strlen(key));
}

static void start_daemon_mgmt(const char *image, const char *mgmt)
{
    static char model[4200], metrics[64];
    snprintf(model, sizeof model, "s260=%s", image);
    metrics_port = free_port();
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", metrics_port);
    if (mgmt)
        spawn_daemon((const char *const[]){"--model", model, "--listen", "127.0.0.1:0", "--max-seqs", "8", "--mgmt", mgmt,
                                           NULL});
    else
        spawn_daemon((const char *const[]){"--model", model, "--listen", "127.0.0.1:0", "--max-seqs", "8", "--metrics",
                                           metrics, NULL});
}

static void start_daemon(const char *image) { start_daemon_mgmt(image, NULL); }

typedef struct ref {
    const char *file, *prompt;
    int32_t ids[300];
    int n_prompt, n_seq;
} ref;

static ref refs[3] = {{"reference/stories260K_t0_n200_once_upon_a_time.ids", "Once upon a time", {0}, 0, 0},
                      {"reference/stories260K_t0_n200_the_cat.ids", "The cat", {0}, 0, 0},
                      {"reference/stories260K_t0_default_empty_prompt.ids", "", {0}, 0, 0}};

typedef struct got {
    uint32_t ids[400];
    int n;
} got;

static void collect(void *ctx, const uint32_t *ids, int n, const char *text, size_t len)
{
    (void)text, (void)len;
    got *g = ctx;
    for (int i = 0; i < n && g->n < 400; i++)
        g->ids[g->n++] = ids[i];
}

static sl_wire_generate request(const char *prompt, int max_tokens, int stream)
{
    sl_wire_generate g = {.model = {(const uint8_t *)"s260", 4}, .prompt_kind = SL_WIRE_TEXT,
                          .prompt = (const uint8_t *)prompt, .prompt_len = (uint32_t)strlen(prompt),
                          .max_tokens = (uint32_t)max_tokens, .top_p = 1.0f, .repeat_penalty = 1.0f,
                          .options = stream ? SL_WIRE_O_STREAM : 0};
    return g;
}

typedef struct worker {
    int udp, index, failures;
    char why[1400];
} worker;

static void *client_thread(void *arg)
{
    worker *w = arg;
    sl_client *c;
    sl_err err = {0};
    if (sl_client_open("127.0.0.1", daemon_port, w->udp, &c, &err)) {
        snprintf(w->why, sizeof w->why, "%s", err.msg);
        w->failures++;
        return NULL;
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++) {
            const ref *r = &refs[(i + w->index) % 3];
            got gt = {0};
            sl_client_result res;
            const sl_wire_generate g = request(r->prompt, r->n_seq - r->n_prompt, (round + i) % 2);
            const uint64_t rid = (uint64_t)(w->index * 100 + round * 10 + i);
            if (sl_client_generate(c, rid, &g, collect, &gt, 30000, &res, &err) || res.error ||
                gt.n != r->n_seq - r->n_prompt || (int)res.done.generated_tokens != gt.n) {
                snprintf(w->why, sizeof w->why, "%s request %llu: %s %s, %d tokens", w->udp ? "udp" : "tcp",
                         (unsigned long long)rid, err.msg, res.message, gt.n);
                w->failures++;
                continue;
            }
            for (int k = 0; k < gt.n; k++)
                if ((int32_t)gt.ids[k] != r->ids[r->n_prompt + k]) {
                    snprintf(w->why, sizeof w->why, "%s request %llu: token %d is %u, run.c has %d",
                             w->udp ? "udp" : "tcp", (unsigned long long)rid, k, gt.ids[k], r->ids[r->n_prompt + k]);
                    w->failures++;
                    break;
                }
        }
    sl_client_close(c);
    return NULL;
}

/* GENERATE and CANCEL of one request id in one TCP write: the cancel
 * reaches the worker a step or two after the request, however fast the
 * model decodes (a cancel sent on the first token can arrive after a small
 * model's last).  Returns the ERROR code that ends the request, 0 for a
 * DONE. */
static int generate_then_cancel(const sl_wire_generate *g, uint64_t rid)
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static uint8_t out[1 << 16], in[1 << 20];
    size_t n1, n2;
    const sl_wire_msg m = {.h = {.version = SL_WIRE_VERSION, .type = SL_WIRE_GENERATE, .request_id = rid}, .u.gen = *g};
    sl_err err = {0};
    cr_assert_eq(sl_wire_encode(&m, out, sizeof out, &n1, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_wire_put_empty(out + n1, sizeof out - n1, SL_WIRE_CANCEL, rid, &n2, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(write(fd, out, n1 + n2), (ssize_t)(n1 + n2));
    size_t have = 0;
    for (;;) {
        size_t fl;
        while (have < SL_WIRE_HEADER || (sl_wire_peek(in, have, &fl, NULL) == SL_OK && fl > have)) {
            const ssize_t r = read(fd, in + have, sizeof in - have);
            cr_assert_gt(r, 0, "the connection closed before the request ended");
            have += (size_t)r;
        }
        cr_assert_eq(sl_wire_peek(in, have, &fl, &err), SL_OK, "%s", err.msg);
        sl_wire_msg rep;
        cr_assert_eq(sl_wire_decode(in, fl, &rep, &err), SL_OK, "%s", err.msg);
        if (rep.h.request_id == rid && (rep.h.type == SL_WIRE_ERROR || rep.h.type == SL_WIRE_DONE)) {
            close(fd);
            return rep.h.type == SL_WIRE_ERROR ? rep.u.error.code : 0;
        }
        memmove(in, in + fl, have - fl);
        have -= fl;
    }
}

Test(serve, clients_over_udp_and_tcp_get_run_c_tokens_and_bad_input_is_survived, .timeout = 180)
{
    NEED_SHARED(models);
    for (int i = 0; i < 3; i++) {
        int32_t prompt[300];
        test_read_ref_ids(test_path(models, refs[i].file), prompt, 300, &refs[i].n_prompt, refs[i].ids, 300,
                          &refs[i].n_seq);
    }
    char *dir = test_tmpdir();
    test_write_image(models, "llama2c", SL_TYPE_F32, test_path(dir, "s260.gguf"));
    start_daemon(test_path(dir, "s260.gguf"));
    /* 8 concurrent clients, 4 over UDP and 4 over TCP, 9 requests each */
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){.udp = i % 2, .index = i};
        pthread_create(&th[i], NULL, client_thread, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(w[i].failures, 0, "client %d: %s", i, w[i].why);
    }
    /* hostile datagrams: random bytes, a bad header, a truncated request,
     * an oversized one; none may stop the service */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    uint64_t s = 12345;
    uint8_t junk[2000];
    for (int i = 0; i < 2000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const size_t n = 1 + s % 1500;
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)(s >> (k % 56));
        if (i % 3 == 0 && n >= 24) /* a valid header over a broken body */
            memcpy(junk, "SLW1\x01\x01\0\0", 8);
        sendto(u, junk, n, 0, (struct sockaddr *)&a, sizeof a);
    }
    sl_client *c;
    sl_err err = {0};
    sl_client_result res;
    got gt = {0};
    cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 1, &c, &err), SL_OK, "%s", err.msg);
    /* an oversized datagram: TOO_LARGE, use TCP */
    char big[1500];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sl_wire_generate g = request(big, 4, 1);
    cr_assert_eq(sl_client_generate(c, 7, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, SL_WERR_TOO_LARGE, "%d %s", res.error, res.message);
    /* over the server's max_tokens cap (4096 by default) */
    g = request("Once", 5000, 1);
    cr_assert_eq(sl_client_generate(c, 6, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, SL_WERR_BAD_REQUEST, "%d %s", res.error, res.message);
    cr_assert(strstr(res.message, "max_tokens"), "%s", res.message);
    /* an unknown model */
    g = request("Once", 4, 1);
    g.model = (sl_wire_bytes){(const uint8_t *)"nope", 4};
    cr_assert_eq(sl_client_generate(c, 8, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, SL_WERR_UNKNOWN_MODEL);
    /* still serving, exactly */
    g = request(refs[0].prompt, refs[0].n_seq - refs[0].n_prompt, 0);
    memset(&gt, 0, sizeof gt);
    cr_assert_eq(sl_client_generate(c, 9, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, 0, "%s", res.message);
    cr_assert_eq(gt.n, refs[0].n_seq - refs[0].n_prompt);
    sl_client_close(c);
    close(u);
    /* cancel (sent right behind the request) and a 1 ms deadline end long requests */
    g = request("Once upon a time", 400, 1);
    cr_assert_eq(generate_then_cancel(&g, 999), SL_WERR_CANCELLED);
    cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 0, &c, &err), SL_OK, "%s", err.msg);
    g.deadline_ms = 1;
    cr_assert_eq(sl_client_generate(c, 1000, &g, NULL, NULL, 10000, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, SL_WERR_DEADLINE, "%d %s", res.error, res.message);
    sl_client_close(c);
    /* what the metrics say of all that */
    const char *body = scrape();
    const long long served = metric(body, "sluice_requests_total");
    cr_assert_geq(served, 73, "%s", body);
    cr_assert_eq(metric(body, "sluice_ttft_seconds_count"), served);
    cr_assert_eq(metric(body, "sluice_errors_total{code=\"UNKNOWN_MODEL\"}"), 1);
    cr_assert_eq(metric(body, "sluice_errors_total{code=\"TOO_LARGE\"}"), 1);
    cr_assert_eq(metric(body, "sluice_errors_total{code=\"CANCELLED\"}"), 1);
    cr_assert_eq(metric(body, "sluice_errors_total{code=\"DEADLINE\"}"), 1);
    cr_assert_eq(metric(body, "sluice_kv_blocks_used"), 0);
    cr_assert_eq(metric(body, "sluice_ready"), 1);
    cr_assert_gt(metric(body, "sluice_batch_tokens_count"), 0);
    /* sluice-load: a second of closed-loop load over each transport, no failures */
    const char *load = getenv("SLUICE_LOAD_BIN");
    for (int udp = 0; load && udp < 2; udp++) {
        char cmd[8192], out[4096] = "";
        snprintf(cmd, sizeof cmd, "'%s' --port %d %s --model s260 --clients 4 --seconds 1 -n 16 --json", load,
                 daemon_port, udp ? "--udp" : "");
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        const size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        cr_assert_eq(pclose(p), 0, "%s\n%s", cmd, out);
        cr_assert(strstr(out, "\"failures\": 0") && !strstr(out, "\"requests\": 0,"), "%s", out);
    }
    cr_assert_eq(stop_daemon(), 0, "sluiced did not drain and exit cleanly");
    test_rmtree(dir);
}

/* ---- hot swap under load ---------------------------------------------- */

typedef struct expect {
    char checksum[80];
    uint32_t ids[64];
    int n;
} expect;

typedef struct loader {
    int udp, stop;
    const expect *ex; /* two */
    int requests, failures, per_version[2];
    char why[1400];
} loader;

static void *load_thread(void *arg)
{
    loader *l = arg;
    sl_client *c;
    sl_err err = {0};
    if (sl_client_open("127.0.0.1", daemon_port, l->udp, &c, &err)) {
        l->failures++;
        snprintf(l->why, sizeof l->why, "%s", err.msg);
        return NULL;
    }
    for (uint64_t k = 0; !__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE); k++) {
        got gt = {0};
        sl_client_result res;
        const sl_wire_generate g = request("Once upon a time", 40, (int)(k % 2));
        l->requests++;
        if (sl_client_generate(c, k, &g, collect, &gt, 30000, &res, &err) || res.error) {
            l->failures++;
            snprintf(l->why, sizeof l->why, "request %llu: %s %s", (unsigned long long)k, err.msg, res.message);
            continue;
        }
        int v = -1; /* the one whole version that answered */
        for (int i = 0; i < 2; i++)
            if (!strcmp(res.checksum, l->ex[i].checksum))
                v = i;
        if (v < 0 || gt.n != l->ex[v].n || memcmp(gt.ids, l->ex[v].ids, sizeof(uint32_t) * (size_t)gt.n) != 0) {
            l->failures++;
            snprintf(l->why, sizeof l->why, "request %llu: %d tokens from %s are not that version's", (unsigned long long)k,
                     gt.n, res.checksum);
            continue;
        }
        l->per_version[v]++;
    }
    sl_client_close(c);
    return NULL;
}

Test(serve, fifty_swaps_under_load_lose_no_request, .timeout = 300)
{
    NEED_SHARED(models);
    if (!getenv("SLUICECTL_BIN"))
        cr_skip_test("SLUICECTL_BIN is not set (run through meson test)");
    char *dir = test_tmpdir();
    char *a = strdup(test_path(dir, "a.gguf")), *b = strdup(test_path(dir, "b.gguf")),
         *bad = strdup(test_path(dir, "bad.gguf")), *sock = strdup(test_path(dir, "m.sock"));
    test_write_image(models, "llama2c", SL_TYPE_F32, a);
    test_write_image(models, "llama2c", SL_TYPE_Q8_0, b);
    size_t blen;
    uint8_t *bytes = test_slurp(b, &blen);
    test_spit(bad, bytes, blen / 2); /* a truncated copy */
    free(bytes);
    start_daemon_mgmt(a, sock);
    /* each version's answer, alone */
    expect ex[2];
    sl_client *c;
    sl_err err = {0};
    sl_client_result res;
    cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 0, &c, &err), SL_OK, "%s", err.msg);
    for (int v = 0; v < 2; v++) {
        if (v == 1)
            cr_assert_eq(ctl("--socket '%s' swap s260 '%s' --force", sock, b), 0);
        got gt = {0};
        const sl_wire_generate g = request("Once upon a time", 40, 1);
        cr_assert_eq(sl_client_generate(c, 1u + (uint64_t)v, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(res.error, 0, "%s", res.message);
        snprintf(ex[v].checksum, sizeof ex[v].checksum, "%s", res.checksum);
        ex[v].n = gt.n;
        memcpy(ex[v].ids, gt.ids, sizeof(uint32_t) * (size_t)gt.n);
        cr_assert_eq((int)res.done.model_version, v + 1);
    }
    sl_client_close(c);
    cr_assert_str_neq(ex[0].checksum, ex[1].checksum);
    /* a swap needs a verdict unless forced; a corrupt image is refused */
    cr_assert_eq(ctl("--socket '%s' swap s260 '%s'", sock, a), 1);
    cr_assert_eq(ctl("--socket '%s' swap s260 '%s' --force", sock, bad), 1);
    /* a socket path over sun_path is refused, not cut: these 107 bytes name
     * the daemon's socket (leading slashes), the rest another file */
    char slashes[128];
    const size_t ns = 107 - strlen(sock);
    cr_assert(sock[0] == '/' && strlen(sock) < 100);
    memset(slashes, '/', ns);
    slashes[ns] = 0;
    cr_assert_eq(ctl("--socket '%s%s' status", slashes, sock), 0);
    cr_assert_eq(ctl("--socket '%s%s-gone' status", slashes, sock), 2);
    /* load: 2 TCP and 2 UDP clients back to back while 50 swaps go A, B, A, ... */
    loader l[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        l[i] = (loader){.udp = i % 2, .ex = ex};
        pthread_create(&th[i], NULL, load_thread, &l[i]);
    }
    for (int k = 0; k < 50; k++) {
        cr_assert_eq(ctl("--socket '%s' swap s260 '%s' --force", sock, k % 2 ? b : a), 0, "swap %d", k);
        usleep(20000);
    }
    usleep(100000);
    int requests = 0, seen[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        __atomic_store_n(&l[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(th[i], NULL);
        cr_expect_eq(l[i].failures, 0, "client %d (%s): %d of %d failed: %s", i, l[i].udp ? "udp" : "tcp",
                     l[i].failures, l[i].requests, l[i].why);
        requests += l[i].requests;
        seen[0] += l[i].per_version[0], seen[1] += l[i].per_version[1];
    }
    cr_log_info("50 swaps under load: %d requests, %d answered by A, %d by B, none failed", requests, seen[0], seen[1]);
    cr_assert(seen[0] > 0 && seen[1] > 0, "both versions must have answered: %d, %d", seen[0], seen[1]);
    cr_assert_gt(requests, 50);
    /* anti-amplification, and lost UDP replies coming back: a fresh source
     * gets at most 3x its bytes and then a COOKIE; echoing it releases the
     * rest.  Seqs 2 and 5 are "lost" and asked for with RESEND; a repeated
     * GENERATE is answered from the window, not run again. */
    {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        cr_assert_eq(connect(u, (struct sockaddr *)&sa, sizeof sa), 0);
        struct timeval tv = {2, 0};
        setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        uint8_t msg[2048], rx[4096];
        size_t n, sent, received = 0;
        sl_wire_generate g = request("Once upon a time", 10, 1);
        cr_assert_eq(sl_wire_put_generate(msg, sizeof msg, 4242, 0, &g, &n, NULL), SL_OK);
        cr_assert_eq(send(u, msg, n, 0), (ssize_t)n);
        sent = n;
        int have[64] = {0}, done_seq = -1, cookie = 0;
        sl_wire_msg m;
        while (!cookie) { /* unverified: replies until the cookie */
            const ssize_t r = recv(u, rx, sizeof rx, 0);
            cr_assert_gt(r, 0, "no COOKIE within 2 s");
            cr_assert_eq(sl_wire_decode(rx, (size_t)r, &m, NULL), SL_OK);
            received += (size_t)r;
            if (m.h.type == SL_WIRE_COOKIE) {
                cookie = 1;
                g.cookie = m.u.value;
            } else if (m.h.seq != 2 && m.h.seq != 5)
                have[m.h.seq] = 1;
        }
        cr_assert_leq(received, 3 * sent + SL_WIRE_HEADER + 8, "an unverified source got %zu bytes for %zu", received,
                      sent);
        cr_assert_eq(sl_wire_put_generate(msg, sizeof msg, 4242, SL_WIRE_F_COOKIE, &g, &n, NULL), SL_OK);
        cr_assert_eq(send(u, msg, n, 0), (ssize_t)n);
        while (done_seq < 0 || !have[done_seq]) {
            const ssize_t r = recv(u, rx, sizeof rx, 0);
            cr_assert_gt(r, 0, "the rest did not come after the cookie");
            cr_assert_eq(sl_wire_decode(rx, (size_t)r, &m, NULL), SL_OK);
            if (m.h.seq == 2 || m.h.seq == 5)
                continue; /* "lost" */
            have[m.h.seq] = 1;
            if (m.h.type == SL_WIRE_DONE)
                done_seq = (int)m.h.seq;
        }
        cr_assert_geq(done_seq, 6);
        const uint32_t want[2] = {2, 5};
        cr_assert_eq(sl_wire_put_resend(msg, sizeof msg, 4242, want, 2, &n, NULL), SL_OK);
        cr_assert_eq(send(u, msg, n, 0), (ssize_t)n);
        for (int i = 0; i < 2; i++) {
            const ssize_t r = recv(u, rx, sizeof rx, 0);
            cr_assert(r > 0 && sl_wire_decode(rx, (size_t)r, &m, NULL) == SL_OK, "RESEND went unanswered");
            cr_assert(m.h.request_id == 4242 && m.h.seq == want[i] && m.h.type == SL_WIRE_TOKENS, "seq %u type %u",
                      m.h.seq, m.h.type);
        }
        cr_assert_eq(sl_wire_put_generate(msg, sizeof msg, 4242, SL_WIRE_F_COOKIE, &g, &n, NULL), SL_OK);
        cr_assert_eq(send(u, msg, n, 0), (ssize_t)n); /* the same request again */
        int again = 0;
        for (;;) {
            const ssize_t r = recv(u, rx, sizeof rx, 0);
            if (r <= 0 || sl_wire_decode(rx, (size_t)r, &m, NULL) != SL_OK)
                break;
            again++;
            if (m.h.type == SL_WIRE_DONE)
                break;
        }
        cr_assert_eq(again, done_seq + 1, "the repeat got %d replies, not the %d of the original", again, done_seq + 1);
        close(u);
    }
    /* a TCP client that hangs up mid-answer frees its KV blocks at once */
    {
        sl_client *hc;
        cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 0, &hc, &err), SL_OK, "%s", err.msg);
        const int fd = sl_client_fd(hc);
        uint8_t msg[2048];
        size_t n;
        const sl_wire_generate g = request("Once upon a time", 400, 1);
        cr_assert_eq(sl_wire_put_generate(msg, sizeof msg, 77, 0, &g, &n, NULL), SL_OK);
        cr_assert_eq(send(fd, msg, n, 0), (ssize_t)n);
        uint8_t rx[256];
        cr_assert_gt(recv(fd, rx, sizeof rx, 0), 0, "no first reply");
        sl_client_close(hc);
    }
    /* only the current version is left mapped, holding no KV blocks */
    char cmd[8192], out[65536] = "";
    snprintf(cmd, sizeof cmd, "'%s' --socket '%s' --json stats", getenv("SLUICECTL_BIN"), sock);
    for (int tries = 0; tries < 50; tries++) { /* the hang-up is seen on the daemon's next poll */
        FILE *p = popen(cmd, "r");
        const size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        cr_assert_eq(pclose(p), 0, "%s", out);
        if (strstr(out, "\"kv_blocks_used\":0") && strstr(out, "\"running\":0") && strstr(out, "\"failed\":1"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(out, "\"swaps\":51") && strstr(out, "\"version\":52"), "1 + 50 swaps: %s", out);
    const char *first = strstr(out, "\"name\"");
    cr_assert(first && !strstr(first + 1, "\"name\""), "more than one version still mapped:\n%s", out);
    cr_assert(strstr(out, "\"kv_blocks_used\":0"), "%s", out);
    cr_assert(strstr(out, "\"failed\":1"), "the hung-up request was not cancelled:\n%s", out);
    cr_assert_eq(stop_daemon(), 0);
    free(a);
    free(b);
    free(bad);
    free(sock);
    test_rmtree(dir);
}

/* ---- the config file and SIGHUP ----------------------------------------- */

static uint64_t ask(const char *model, char *checksum, int *error)
{
    sl_client *c;
    sl_err err = {0};
    sl_client_result res;
    cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 0, &c, &err), SL_OK, "%s", err.msg);
    sl_wire_generate g = request("Once upon a time", 8, 1);
    g.model = (sl_wire_bytes){(const uint8_t *)model, strlen(model)};
    cr_assert_eq(sl_client_generate(c, 1, &g, NULL, NULL, 10000, &res, &err), SL_OK, "%s", err.msg);
    sl_client_close(c);
    *error = res.error;
    if (checksum)
        snprintf(checksum, 80, "%s", res.checksum);
    return res.done.model_version;
}

static void write_config(const char *path, const char *a, const char *b)
{
    char text[9000];
    if (b)
        snprintf(text, sizeof text, "{\"listen\": \"127.0.0.1:0\", \"max_seqs\": 4, \"models\": {\"s260\": \"%s\", \"two\": \"%s\"}}",
                 a, b);
    else
        snprintf(text, sizeof text, "{\"listen\": \"127.0.0.1:0\", \"max_seqs\": 4, \"models\": {\"s260\": \"%s\"}}", a);
    test_spit(path, text, strlen(text));
}

Test(serve, config_file_and_sighup_reload, .timeout = 120)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    char *a = strdup(test_path(dir, "a.gguf")), *b = strdup(test_path(dir, "b.gguf")),
         *conf = strdup(test_path(dir, "sluiced.json"));
    test_write_image(models, "llama2c", SL_TYPE_F32, a);
    test_write_image(models, "llama2c", SL_TYPE_Q8_0, b);
    write_config(conf, a, NULL);
    spawn_daemon((const char *const[]){"--config", conf, NULL});
    char ca[80], cb[80];
    int e;
    cr_assert_eq(ask("s260", ca, &e), 1);
    cr_assert_eq(e, 0);
    ask("two", NULL, &e);
    cr_assert_eq(e, SL_WERR_UNKNOWN_MODEL);
    /* the file changes: s260 swaps to b, "two" appears */
    write_config(conf, b, a);
    kill(daemon_pid, SIGHUP);
    int tries = 0;
    while ((ask("two", NULL, &e), e) && tries++ < 100) /* the loader publishes it a moment later */
        usleep(20000);
    cr_assert_eq(e, 0, "\"two\" did not appear after SIGHUP");
    cr_assert_eq(ask("s260", cb, &e), 2);
    cr_assert_str_neq(ca, cb);
    /* a broken file changes nothing: a wrong type, a null where a level's
     * name belongs (that once crashed the daemon), a limit of 0 */
    static const char *const broken[] = {"{\"models\": 3}", "{\"log_level\": null}", "{\"max_prompt\": 0}"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        test_spit(conf, broken[i], strlen(broken[i]));
        kill(daemon_pid, SIGHUP);
        usleep(200000);
        cr_assert_eq(ask("two", NULL, &e), 1, "after %s", broken[i]);
        cr_assert_eq(e, 0, "after %s", broken[i]);
    }
    /* "two" leaves the file: unloaded */
    write_config(conf, b, NULL);
    kill(daemon_pid, SIGHUP);
    tries = 0;
    while ((ask("two", NULL, &e), e == 0) && tries++ < 100)
        usleep(20000);
    cr_assert_eq(e, SL_WERR_UNKNOWN_MODEL);
    cr_assert_eq(stop_daemon(), 0);
    free(a);
    free(b);
    free(conf);
    test_rmtree(dir);
}

/* ---- overload ------------------------------------------------------------- */

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Twice the capacity (2 batch slots and a queue of 4, against 8 TCP and 8
 * UDP clients back to back) for 60 s: the excess gets BUSY at once, nothing
 * times out, and the daemon's RSS grows by at most 16 MB.  Under ASan: 20 s
 * and no RSS bound (its quarantine holds freed memory). */
Test(serve, twice_the_capacity_gets_busy_and_memory_stays_flat, .timeout = 300)
{
    NEED_SHARED(models);
    const char *load = getenv("SLUICE_LOAD_BIN");
    if (!load)
        cr_skip_test("SLUICE_LOAD_BIN is not set (run through meson test)");
#ifdef __SANITIZE_ADDRESS__
    const int seconds = 20;
#else
    const int seconds = 60;
#endif
    char *dir = test_tmpdir();
    char *a = strdup(test_path(dir, "a.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_F32, a);
    char model[4200];
    snprintf(model, sizeof model, "s260=%s", a);
    spawn_daemon((const char *const[]){"--model", model, "--listen", "127.0.0.1:0", "--max-seqs", "2", "--max-queue",
                                       "4", NULL});
    char cmd[2][8192];
    FILE *p[2];
    for (int udp = 0; udp < 2; udp++) {
        snprintf(cmd[udp], sizeof cmd[udp], "'%s' --port %d %s --model s260 --clients 8 --seconds %d -n 64 --json", load,
                 daemon_port, udp ? "--udp" : "", seconds);
        p[udp] = popen(cmd[udp], "r");
        cr_assert_not_null(p[udp]);
    }
    sleep(3); /* past start-up: pools, buffers, the first windows */
    const long before = rss_kb(daemon_pid);
    char out[2][8192];
    for (int udp = 0; udp < 2; udp++) {
        const size_t n = fread(out[udp], 1, sizeof out[udp] - 1, p[udp]);
        out[udp][n] = 0;
        cr_assert_eq(pclose(p[udp]), 0, "%s\n%s", cmd[udp], out[udp]);
    }
    const long after = rss_kb(daemon_pid);
    for (int udp = 0; udp < 2; udp++) {
        cr_assert(strstr(out[udp], "\"failures\": 0"), "%s", out[udp]);
        cr_assert(strstr(out[udp], "\"BUSY\""), "no BUSY under twice the capacity:\n%s", out[udp]);
        cr_assert(!strstr(out[udp], "\"requests\": 0,"), "nothing was served:\n%s", out[udp]);
    }
    cr_log_info("RSS %ld kB -> %ld kB over %d s of overload", before, after, seconds);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed memory resident: RSS says nothing there */
    cr_assert(before > 0 && after - before <= 16 * 1024, "RSS grew from %ld kB to %ld kB", before, after);
#endif
    cr_assert_eq(stop_daemon(), 0);
    free(a);
    test_rmtree(dir);
}

/* ---- request MACs, and garbage on a TCP stream ------------------------------ */

Test(serve, macs_are_required_and_checked_and_tcp_garbage_is_survived, .timeout = 120)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    char *a = strdup(test_path(dir, "a.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_F32, a);
    char model[4200];
    snprintf(model, sizeof model, "s260=%s", a);
    const char *key_spec = "7:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    spawn_daemon((const char *const[]){"--model", model, "--listen", "127.0.0.1:0", "--key", key_spec, "--require-mac",
                                       NULL});
    sl_mac_key good, wrong;
    cr_assert_eq(sl_mac_key_parse(key_spec, &good), 0);
    cr_assert_eq(sl_mac_key_parse("7:ffffffffffffffffffffffffffffffff", &wrong), 0);
    for (int udp = 0; udp < 2; udp++) {
        sl_client *c;
        sl_err err = {0};
        sl_client_result res;
        cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, udp, &c, &err), SL_OK, "%s", err.msg);
        const sl_wire_generate g = request("Once upon a time", 20, 1);
        cr_assert_eq(sl_client_generate(c, 1, &g, NULL, NULL, 10000, &res, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(res.error, SL_WERR_UNAUTHORIZED, "unsigned: %d %s", res.error, res.message);
        sl_client_set_key(c, &wrong);
        cr_assert_eq(sl_client_generate(c, 2, &g, NULL, NULL, 10000, &res, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(res.error, SL_WERR_UNAUTHORIZED, "wrong key: %d %s", res.error, res.message);
        sl_client_set_key(c, &good);
        got gt = {0};
        cr_assert_eq(sl_client_generate(c, 3, &g, collect, &gt, 10000, &res, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(res.error, 0, "signed (%s): %s", udp ? "udp" : "tcp", res.message);
        cr_assert_eq(gt.n, 20);
        sl_client_close(c);
    }
    /* random bytes on a TCP stream: the connection is dropped, service goes on */
    for (int k = 0; k < 20; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        uint8_t junk[4096];
        uint64_t s = 77u + (uint64_t)k;
        for (size_t i = 0; i < sizeof junk; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            junk[i] = (uint8_t)s;
        }
        if (k % 2) /* a valid header announcing more than ever comes, then a hang-up */
            memcpy(junk, "SLW1\x01\x01\0\0\0\0\0\0\0\0\0\0\xff\xff\x0f\0\0\0\0\0", 24);
        (void)send(fd, junk, k % 2 ? 100 : sizeof junk, MSG_NOSIGNAL);
        close(fd);
    }
    /* the fuzz corpus (tests/data/fuzz/wire), each file as a datagram and as a TCP frame */
    {
        DIR *d = opendir(SL_SOURCE_DIR "/tests/data/fuzz/wire");
        cr_assert_not_null(d);
        int u = socket(AF_INET, SOCK_DGRAM, 0), files = 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/tests/data/fuzz/wire/%s", SL_SOURCE_DIR, e->d_name);
            size_t n;
            uint8_t *bytes = test_slurp(path, &n);
            sendto(u, bytes, n, 0, (struct sockaddr *)&sa, sizeof sa);
            int t = socket(AF_INET, SOCK_STREAM, 0);
            cr_assert_eq(connect(t, (struct sockaddr *)&sa, sizeof sa), 0);
            (void)send(t, bytes, n, MSG_NOSIGNAL);
            close(t);
            free(bytes);
            files++;
        }
        closedir(d);
        close(u);
        cr_assert_geq(files, 15);
    }
    sl_client *c;
    sl_err err = {0};
    sl_client_result res;
    cr_assert_eq(sl_client_open("127.0.0.1", daemon_port, 0, &c, &err), SL_OK, "%s", err.msg);
    sl_client_set_key(c, &good);
    /* the blocking style: the whole text at once, as run.c prints it */
    const sl_wire_generate g = request("Once upon a time", 8, 0);
    char *text;
    size_t tlen;
    uint32_t *ids;
    int n_ids;
    cr_assert_eq(sl_client_complete(c, 9, &g, 10000, &text, &tlen, &ids, &n_ids, &res, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(res.error, 0, "%s", res.message);
    cr_assert_eq(n_ids, 8);
    cr_assert_str_eq(text, ", there was a little girl", "%s", text);
    free(text);
    free(ids);
    sl_client_close(c);
    cr_assert_eq(stop_daemon(), 0);
    free(a);
    test_rmtree(dir);
}
