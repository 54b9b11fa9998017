/* sl_daemon.h - the parts of a running sluiced, for the modules that act
 * on more than one of them (the management commands, the reload). */
#ifndef SL_DAEMON_H
#define SL_DAEMON_H

#include "sl_config.h"
#include "sl_loader.h"
#include "sl_metrics.h"
#include "sl_mgmt.h"
#include "sl_registry.h"
#include "sl_serve.h"
#include "sl_sock.h"
#include "sl_worker.h"

typedef struct sl_daemon {
    sl_config cfg;           /* as in force */
    const char *config_path; /* NULL: no file to reload */
    sl_registry reg;
    sl_worker *worker;
    sl_loader *loader;
    sl_serve *serve;
    sl_mgmt *mgmt;
    sl_metrics *metrics;
    sl_udp *udp;
    sl_tcp *tcp;
    int ep;
} sl_daemon;

/* The management commands (sl_mgmt_fn; ctx: the daemon).  load, swap and
 * unload go to the loader and are answered from sl_daemon_load_done. */
json_object *sl_daemon_mgmt(void *ctx, const sl_mgmt_req *q, uint64_t token);
/* A loader job finished: its management answer, or its reload log line. */
void sl_daemon_load_done(sl_daemon *d, const sl_load_done *done);
/* SIGHUP: the configuration file again; models, limits and the log
 * level follow it. */
void sl_daemon_reload(sl_daemon *d);
/* The serving limits of a configuration. */
sl_serve_limits sl_daemon_limits(const sl_config *c);

#endif
