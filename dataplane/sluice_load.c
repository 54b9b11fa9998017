/* sluice-load - load for sluiced: closed loop (N clients, each sending its
 * next request when the last is answered) or open loop (a fixed rate of
 * requests, spread over N clients), over UDP or TCP.  Reports throughput,
 * time to first token and end-to-end latency percentiles, and errors by
 * code, as text or JSON. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_client.h"
#include "sl_clock.h"

typedef struct shared {
    const char *host, *model, *prompt;
    int port, udp, max_tokens, stream;
    double rate;          /* open loop: requests per second in all (0: closed loop) */
    uint64_t t0, t_end;   /* µs, CLOCK_MONOTONIC */
    int clients;
} shared;

typedef struct worker {
    const shared *sh;
    int index;
    double *ttft, *lat; /* ms, per finished request */
    int n, cap;
    uint64_t tokens, errors[SL_WERR_COUNT], failures;
    uint64_t first_us; /* set by the token callback */
    uint64_t sent_us;
} worker;

static void on_tokens(void *ctx, const uint32_t *ids, int n, const char *text, size_t len)
{
    (void)ids, (void)text, (void)len;
    worker *w = ctx;
    if (!w->first_us && n)
        w->first_us = sl_now_us();
}

static void *run(void *arg)
{
    worker *w = arg;
    const shared *sh = w->sh;
    sl_client *c = NULL;
    sl_err err = {0};
    if (sl_client_open(sh->host, sh->port, sh->udp, &c, &err)) {
        fprintf(stderr, "sluice-load: client %d: %s\n", w->index, err.msg);
        w->failures++;
        return NULL;
    }
    sl_wire_generate g = {.model = {(const uint8_t *)sh->model, strlen(sh->model)}, .prompt_kind = SL_WIRE_TEXT,
                          .prompt = (const uint8_t *)sh->prompt, .prompt_len = (uint32_t)strlen(sh->prompt),
                          .max_tokens = (uint32_t)sh->max_tokens, .top_p = 1.0f, .repeat_penalty = 1.0f,
                          .options = sh->stream ? SL_WIRE_O_STREAM : 0};
    /* open loop: this client's share of the rate, on a fixed schedule */
    const double gap_us = sh->rate > 0 ? 1e6 * sh->clients / sh->rate : 0;
    uint64_t due = sh->t0 + (uint64_t)(gap_us * w->index / sh->clients);
    for (uint64_t k = 0;; k++) {
        if (gap_us > 0) {
            const uint64_t t = sl_now_us();
            if (due > t) {
                const uint64_t d = due - t;
                nanosleep(&(struct timespec){(time_t)(d / 1000000u), (long)(d % 1000000u) * 1000}, NULL);
            }
            due += (uint64_t)gap_us;
        }
        if (sl_now_us() >= sh->t_end)
            break;
        w->first_us = 0;
        w->sent_us = sl_now_us();
        sl_client_result res;
        const uint64_t rid = ((uint64_t)w->index << 40) | k;
        if (sl_client_generate(c, rid, &g, on_tokens, w, 60000, &res, &err)) {
            w->failures++;
            sl_client_close(c); /* a broken connection: a fresh one */
            if (sl_client_open(sh->host, sh->port, sh->udp, &c, &err))
                return NULL;
            continue;
        }
        if (res.error) {
            w->errors[res.error < SL_WERR_COUNT ? res.error : 0]++;
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 1024;
            w->ttft = realloc(w->ttft, sizeof *w->ttft * (size_t)w->cap);
            w->lat = realloc(w->lat, sizeof *w->lat * (size_t)w->cap);
            if (!w->ttft || !w->lat)
                break;
        }
        const uint64_t end = sl_now_us();
        w->ttft[w->n] = (double)((w->first_us ? w->first_us : end) - w->sent_us) / 1e3;
        w->lat[w->n++] = (double)(end - w->sent_us) / 1e3;
        w->tokens += res.done.generated_tokens;
    }
    sl_client_close(c);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    if (!n)
        return NAN;
    const int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-load [--host ADDR] [--port P] [--udp] [--model NAME] [--clients N] [--seconds S]\n"
               "                   [--rate R] [-n MAX_TOKENS] [--prompt TEXT] [--no-stream] [--json]\n"
               "  Closed loop by default (N clients, one request each in flight); --rate R sends R\n"
               "  requests a second in all on a fixed schedule (open loop while the clients keep up:\n"
               "  give it more than rate x latency of them).  Defaults: 127.0.0.1:7433, TCP, model\n"
               "  \"default\", 4 clients, 10 s, 64 tokens, prompt \"Once upon a time\".\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},    {"port", required_argument, 0, 'p'},
        {"udp", no_argument, 0, 'u'},           {"model", required_argument, 0, 'm'},
        {"clients", required_argument, 0, 'c'}, {"seconds", required_argument, 0, 's'},
        {"rate", required_argument, 0, 'r'},    {"prompt", required_argument, 0, 'P'},
        {"no-stream", no_argument, 0, 'S'},     {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    shared sh = {.host = "127.0.0.1", .model = "default", .prompt = "Once upon a time", .port = 7433,
                 .max_tokens = 64, .stream = 1, .clients = 4};
    double seconds = 10;
    int json = 0, o;
    while ((o = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': sh.host = optarg; break;
        case 'p': sh.port = atoi(optarg); break;
        case 'u': sh.udp = 1; break;
        case 'm': sh.model = optarg; break;
        case 'c': sh.clients = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'r': sh.rate = atof(optarg); break;
        case 'P': sh.prompt = optarg; break;
        case 'S': sh.stream = 0; break;
        case 'j': json = 1; break;
        case 'n': sh.max_tokens = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || sh.clients < 1 || sh.clients > 4096 || !(seconds > 0 && seconds <= 86400) ||
        sh.max_tokens < 1 || sh.rate < 0) {
        usage(stderr);
        return 2;
    }
    worker *w = calloc((size_t)sh.clients, sizeof *w);
    pthread_t *th = calloc((size_t)sh.clients, sizeof *th);
    if (!w || !th)
        return 2;
    sh.t0 = sl_now_us();
    sh.t_end = sh.t0 + (uint64_t)(seconds * 1e6);
    for (int i = 0; i < sh.clients; i++) {
        w[i] = (worker){.sh = &sh, .index = i};
        if (pthread_create(&th[i], NULL, run, &w[i])) {
            fprintf(stderr, "sluice-load: cannot start client %d\n", i);
            return 2;
        }
    }
    int n = 0;
    uint64_t tokens = 0, failures = 0, errors[SL_WERR_COUNT] = {0};
    for (int i = 0; i < sh.clients; i++) {
        pthread_join(th[i], NULL);
        n += w[i].n, tokens += w[i].tokens, failures += w[i].failures;
        for (int k = 0; k < SL_WERR_COUNT; k++)
            errors[k] += w[i].errors[k];
    }
    const double secs = (double)(sl_now_us() - sh.t0) / 1e6;
    double *ttft = malloc(sizeof(double) * (size_t)(n ? n : 1)), *lat = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int j = 0;
    for (int i = 0; i < sh.clients; i++)
        for (int k = 0; k < w[i].n; k++, j++)
            ttft[j] = w[i].ttft[k], lat[j] = w[i].lat[k];
    qsort(ttft, (size_t)n, sizeof *ttft, cmp);
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    if (json) {
        printf("{\"transport\": \"%s\", \"clients\": %d, \"mode\": \"%s\", \"rate\": %g, \"seconds\": %.3f,\n"
               " \"requests\": %d, \"tokens\": %llu, \"requests_per_s\": %.3f, \"tokens_per_s\": %.3f,\n"
               " \"ttft_ms\": {\"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n"
               " \"latency_ms\": {\"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n"
               " \"failures\": %llu, \"errors\": {",
               sh.udp ? "udp" : "tcp", sh.clients, sh.rate > 0 ? "open" : "closed", sh.rate, secs, n,
               (unsigned long long)tokens, n / secs, (double)tokens / secs, pct(ttft, n, 50), pct(ttft, n, 95),
               pct(ttft, n, 99), pct(ttft, n, 100), pct(lat, n, 50), pct(lat, n, 95), pct(lat, n, 99), pct(lat, n, 100),
               (unsigned long long)failures);
        for (int k = 1, first = 1; k < SL_WERR_COUNT; k++)
            if (errors[k]) {
                printf("%s\"%s\": %llu", first ? "" : ", ", sl_wire_code_name(k), (unsigned long long)errors[k]);
                first = 0;
            }
        printf("}}\n");
    } else {
        printf("%s, %d clients, %s loop: %d requests in %.1f s (%.1f/s), %llu tokens (%.1f tok/s)\n",
               sh.udp ? "udp" : "tcp", sh.clients, sh.rate > 0 ? "open" : "closed", n, secs, n / secs,
               (unsigned long long)tokens, (double)tokens / secs);
        printf("time to first token ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", pct(ttft, n, 50), pct(ttft, n, 95),
               pct(ttft, n, 99), pct(ttft, n, 100));
        printf("latency ms:             p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", pct(lat, n, 50), pct(lat, n, 95),
               pct(lat, n, 99), pct(lat, n, 100));
        printf("failures %llu;", (unsigned long long)failures);
        for (int k = 1; k < SL_WERR_COUNT; k++)
            if (errors[k])
                printf(" %s %llu", sl_wire_code_name(k), (unsigned long long)errors[k]);
        printf("\n");
    }
    for (int i = 0; i < sh.clients; i++) {
        free(w[i].ttft);
        free(w[i].lat);
    }
    free(ttft);
    free(lat);
    free(w);
    free(th);
    return failures ? 1 : 0;
}
