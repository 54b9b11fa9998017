/* sluiced.c - the appliance daemon: start-up and the event loop.
 *
 * Threads: this one runs the event loop (epoll over the UDP socket, the
 * TCP listener and connections, the management socket, the metrics
 * server, and the eventfds of the two threads below) and the serving core
 * (sl_serve.h); the inference worker steps the schedulers (sl_worker.h);
 * the loader loads, swaps and unmaps images (sl_loader.h).  The loop
 * never runs a forward pass or waits for a load.
 *
 * The life of a request: docs/architecture.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#ifdef SL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "sl_clock.h"
#include "sl_daemon.h"
#include "sl_log.h"

#define MAX_CONNS 256

/* epoll tags */
enum { TAG_UDP, TAG_WORKER, TAG_LOADER, TAG_METRICS, TAG_MGMT, TAG_TCP = TAG_MGMT + 17 };

/* A model's name and image path have one limit each, wherever they come
 * from (the wire, a management line, the config file) and where they are
 * kept (the registry). */
_Static_assert(SL_MGMT_NAME_MAX == SL_WIRE_MODEL_MAX, "one limit of a model name");
_Static_assert(sizeof((sl_version *)0)->name == SL_MGMT_NAME_MAX + 1, "the registry keeps a whole name");
_Static_assert(sizeof((sl_version *)0)->image == SL_MGMT_IMAGE_MAX + 1, "the registry keeps a whole image path");

static volatile sig_atomic_t g_stop, g_reload;
static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluiced [--config FILE] --model NAME=IMAGE [--model ...] [--listen ADDR:PORT] [--mgmt PATH]\n"
               "               [--threads T] [--log-level error|warn|info|debug]\n"
               "               [--max-seqs N] [--ctx N] [--max-queue N] [--isa ISA] [--metrics ADDR:PORT]\n"
               "               [--max-inflight N] [--rate R] [--max-prompt N] [--max-tokens N]\n"
               "               [--key ID:HEX ...] [--require-mac] [--mlock]\n"
               "  Serves each image as NAME over UDP and TCP on the same port (default 127.0.0.1:7433;\n"
               "  port 0 picks one, printed on stdout as \"listening on ADDR:PORT\").  Images given here\n"
               "  are trusted without a quality verdict; swaps through the management socket (--mgmt,\n"
               "  sluicectl) need a passing one unless forced.  SIGTERM or SIGINT drains: no new\n"
               "  requests, the running ones finish, then it exits.  --metrics serves Prometheus text at\n"
               "  http://ADDR:PORT/metrics (keep it on loopback).  Per client (UDP source, TCP\n"
               "  connection): --max-inflight requests at once (64), --rate requests a second (off);\n"
               "  per request: --max-prompt tokens (16384), --max-tokens (4096).  --config reads the same\n"
               "  settings from JSON (docs/operations.md), flags winning; SIGHUP re-reads it: models\n"
               "  load, swap and unload to match, limits and the log level change.\n");
}

static void render_metrics(void *ctx, sl_text_buf *b)
{
    sl_daemon *d = ctx;
    sl_hist batch;
    sl_worker_batch_hist(d->worker, &batch);
    sl_metrics_render(b, sl_serve_stats_of(d->serve), &d->reg, &batch, sl_serve_draining(d->serve));
}

/* Flags over the file: 0 to go on, -1 to exit 0 (--help), else the exit
 * status. */
static int read_settings(int argc, char **argv, sl_config *cfg_out, const char **config_path, json_object **keep)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"max-seqs", required_argument, 0, 's'},
        {"ctx", required_argument, 0, 'c'},     {"max-queue", required_argument, 0, 'q'},
        {"isa", required_argument, 0, 'i'},     {"mgmt", required_argument, 0, 'M'},
        {"metrics", required_argument, 0, 'P'}, {"max-inflight", required_argument, 0, 'F'},
        {"rate", required_argument, 0, 'R'},    {"max-prompt", required_argument, 0, 'X'},
        {"max-tokens", required_argument, 0, 'T'}, {"config", required_argument, 0, 'C'},
        {"log-level", required_argument, 0, 'L'}, {"key", required_argument, 0, 'K'},
        {"require-mac", no_argument, 0, 'Q'},   {"mlock", no_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sl_config cfg = {.listen = "127.0.0.1:7433", .threads = 1, .max_seqs = 16, .max_queue = 256, .isa = -1,
                     .max_inflight = 64, .max_prompt = 16384, .max_tokens = 4096, .log_level = 2};
    int o;
    /* the file first, then the flags over it */
    while ((o = getopt_long(argc, argv, "m:l:t:h", opts, NULL)) != -1)
        if (o == 'C')
            *config_path = optarg;
    sl_err cerr = {0};
    if (*config_path && sl_config_read(*config_path, &cfg, keep, &cerr)) {
        fprintf(stderr, "sluiced: %s\n", cerr.msg);
        return 2;
    }
    const int file_models = cfg.n_models;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:l:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || eq - optarg > SL_WIRE_MODEL_MAX ||
                strlen(eq + 1) > SL_MGMT_IMAGE_MAX) {
                fprintf(stderr, "sluiced: --model %s: not NAME=IMAGE\n", optarg);
                return 2;
            }
            if (cfg.n_models == file_models)
                cfg.n_models = 0; /* --model replaces the file's list */
            if (cfg.n_models == SL_REG_MODELS) {
                fprintf(stderr, "sluiced: at most %d models\n", SL_REG_MODELS);
                return 2;
            }
            snprintf(cfg.model_name[cfg.n_models], sizeof cfg.model_name[0], "%.*s", (int)(eq - optarg), optarg);
            snprintf(cfg.model_image[cfg.n_models], sizeof cfg.model_image[0], "%s", eq + 1);
            cfg.n_models++;
            break;
        }
        case 'l': cfg.listen = optarg; break;
        case 'M': cfg.mgmt = optarg; break;
        case 'P': cfg.metrics = optarg; break;
        case 'F': cfg.max_inflight = atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 'X': cfg.max_prompt = atoi(optarg); break;
        case 'T': cfg.max_tokens = atoi(optarg); break;
        case 't': cfg.threads = atoi(optarg); break;
        case 's': cfg.max_seqs = atoi(optarg); break;
        case 'c': cfg.ctx = atoi(optarg); break;
        case 'q': cfg.max_queue = atoi(optarg); break;
        case 'C': break;
        case 'K':
            if (cfg.n_keys == SL_CONFIG_KEYS || sl_mac_key_parse(optarg, &cfg.keys[cfg.n_keys])) {
                fprintf(stderr, "sluiced: --key %s: ID:HEX with 16..64 bytes of key (at most 16 keys)\n", optarg);
                return 2;
            }
            cfg.n_keys++;
            break;
        case 'Q': cfg.require_mac = 1; break;
        case 'k': cfg.mlock = 1; break;
        case 'L':
            if ((cfg.log_level = sl_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "sluiced: --log-level %s: not error, warn, info or debug\n", optarg);
                return 2;
            }
            break;
        case 'i':
            if ((cfg.isa = sl_isa_parse(optarg)) < 0) {
                fprintf(stderr, "sluiced: --isa %s: not scalar, avx2, avx512 or amx\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (sl_config_check(&cfg, &cerr)) {
        fprintf(stderr, "sluiced: %s\n", cerr.msg);
        usage(stderr);
        return 2;
    }
    if (cfg.require_mac && !cfg.n_keys) {
        fprintf(stderr, "sluiced: --require-mac without any --key\n");
        return 2;
    }
    *cfg_out = cfg;
    return 0;
}

/* The management socket and the metrics server, if asked for. */
static int open_control(sl_daemon *d)
{
    sl_err err = {0};
    if (d->cfg.mgmt && sl_mgmt_open(d->cfg.mgmt, d->ep, TAG_MGMT, sl_daemon_mgmt, d, &d->mgmt, &err)) {
        fprintf(stderr, "sluiced: %s\n", err.msg);
        return 1;
    }
    const char *at = d->cfg.metrics;
    if (at) {
        char host[64];
        const char *colon = strrchr(at, ':');
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - at) : 0, at);
        if (!colon ||
            sl_metrics_start(host, atoi(colon + 1), d->ep, TAG_METRICS, render_metrics, d, &d->metrics, &err)) {
            fprintf(stderr, "sluiced: --metrics %s: %s\n", at, colon ? err.msg : "not ADDR:PORT");
            return 1;
        }
    }
    return 0;
}

static int watch(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Models, threads and sockets, in the order each needs the one before:
 * 0, or the exit status. */
static int start(sl_daemon *d)
{
    sl_err err = {0};
    const sl_config *c = &d->cfg;
    if (sl_worker_new(&d->worker, &err) ||
        sl_registry_init(&d->reg,
                         &(sl_engine_cfg){.n_threads = c->threads, .isa = c->isa, .max_seqs = c->max_seqs,
                                          .ctx = c->ctx, .pin = 1},
                         &(sl_sched_cfg){.max_queue = c->max_queue}, sl_worker_sched_event, d->worker, &err)) {
        fprintf(stderr, "sluiced: %s\n", err.msg);
        return 1;
    }
    d->reg.mlock = c->mlock;
    for (int i = 0; i < c->n_models; i++)
        if (sl_registry_load(&d->reg, c->model_name[i], c->model_image[i], false, true, &err)) {
            fprintf(stderr, "sluiced: %s\n", err.msg);
            return 1;
        }
    const sl_serve_limits lim = sl_daemon_limits(c);
    struct sockaddr_in6 a;
    if (sl_sock_parse_addr(c->listen, &a)) {
        fprintf(stderr, "sluiced: --listen %s: not ADDR:PORT\n", c->listen);
        return 2;
    }
    if ((d->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || sl_worker_start(d->worker, &d->reg, &err) ||
        sl_loader_start(&d->reg, &d->loader, &err) || sl_serve_new(&d->reg, d->worker, &lim, &d->serve, &err) ||
        watch(d->ep, sl_worker_fd(d->worker), TAG_WORKER) || watch(d->ep, sl_loader_fd(d->loader), TAG_LOADER)) {
        fprintf(stderr, "sluiced: %s\n", d->ep < 0 || !err.msg[0] ? strerror(errno) : err.msg);
        return 1;
    }
    /* port 0: TCP is given one and UDP takes the same */
    if (sl_tcp_open(&a, 1, MAX_CONNS, d->ep, TAG_TCP, &d->tcp, &err) ||
        sl_udp_open(&a, 0, d->ep, TAG_UDP, &d->udp, &err)) {
        fprintf(stderr, "sluiced: cannot listen on %s: %s\n", c->listen, err.msg);
        return 1;
    }
    if (open_control(d))
        return 1;
    char at[INET6_ADDRSTRLEN + 8];
    sl_sock_format_addr(&a, at, sizeof at);
    printf("listening on %s (", at);
    sl_version_info v[SL_REG_VERSIONS];
    const int n = sl_registry_list(&d->reg, v, SL_REG_VERSIONS, true);
    for (int i = 0; i < n; i++)
        printf("model %s: %s, ", v[i].name, v[i].image);
    printf("%d thread%s, isa %s)\n", c->threads, c->threads > 1 ? "s" : "", sl_isa_name(sl_isa_select()));
    fflush(stdout);
    return 0;
}

static void stop(sl_daemon *d)
{
    sl_tcp_close(d->tcp);
    sl_udp_close(d->udp);
    sl_mgmt_close(d->mgmt);
    sl_metrics_stop(d->metrics);
    sl_worker_free(d->worker); /* first: it steps the versions the rest frees */
    sl_serve_free(d->serve);
    sl_loader_free(d->loader);
    sl_registry_free(&d->reg);
    if (d->ep >= 0)
        close(d->ep);
}

int main(int argc, char **argv)
{
    static sl_daemon d = {.ep = -1};
    json_object *cfg_keep = NULL;
    int rc = read_settings(argc, argv, &d.cfg, &d.config_path, &cfg_keep);
    if (rc)
        return rc < 0 ? 0 : rc;
    sl_log_set_level(d.cfg.log_level);
    if ((rc = start(&d))) {
        stop(&d);
        json_object_put(cfg_keep);
        return rc;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
#ifdef SL_HAVE_SYSTEMD
    sd_notify(0, "READY=1\nSTATUS=serving"); /* Type=notify: ready once listening with its models */
    int told_stopping = 0;
#endif
    const sl_rx *rx = sl_serve_rx(d.serve);
    for (;;) {
        if (g_stop && !sl_serve_draining(d.serve))
            sl_serve_drain(d.serve);
        if (sl_serve_draining(d.serve)) {
            sl_tcp_refuse(d.tcp);
#ifdef SL_HAVE_SYSTEMD
            if (!told_stopping++)
                sd_notify(0, "STOPPING=1\nSTATUS=draining");
#endif
            if (!sl_serve_live(d.serve) && !sl_loader_pending(d.loader))
                break;
        }
        struct epoll_event evs[64];
        const int n = epoll_wait(d.ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            const uint64_t tag = evs[i].data.u64;
            if (tag == TAG_UDP)
                sl_udp_poll(d.udp, rx);
            else if (tag == TAG_WORKER) {
                const sl_work_event *ev;
                const int k = sl_worker_take(d.worker, &ev);
                sl_serve_events(d.serve, ev, k);
            } else if (tag == TAG_LOADER) {
                const sl_load_done *done;
                const int k = sl_loader_take(d.loader, &done);
                for (int j = 0; j < k; j++)
                    sl_daemon_load_done(&d, &done[j]);
            } else if (tag == TAG_METRICS)
                sl_metrics_run(d.metrics);
            else if (sl_tcp_owns(d.tcp, tag))
                sl_tcp_event(d.tcp, tag, evs[i].events, rx);
            else if (tag >= TAG_MGMT)
                sl_mgmt_event(d.mgmt, tag, evs[i].events);
        }
        sl_tcp_reap(d.tcp, rx);
        if (g_reload && !sl_loader_pending(d.loader)) { /* after what is queued: its plan reads the registry */
            g_reload = 0;
            sl_daemon_reload(&d);
        }
        sl_metrics_run(d.metrics); /* its timeouts */
        sl_serve_tick(d.serve, sl_now_us());
    }
    const sl_serve_stats *st = sl_serve_stats_of(d.serve);
    int models;
    uint64_t swaps, swaps_failed;
    sl_registry_counts(&d.reg, &models, &swaps, &swaps_failed);
    sl_log(SL_LOG_INFO, "drained: %llu requests served, %llu errors, %llu swaps", (unsigned long long)st->served,
           (unsigned long long)st->errors, (unsigned long long)swaps);
    stop(&d);
    json_object_put(cfg_keep);
    return 0;
}
