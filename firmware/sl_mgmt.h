/* sl_mgmt.h - sluiced's management socket: a unix stream socket (mode
 * 0600, peers checked by their credentials: root or the daemon's own
 * user), one JSON object per line in each direction (docs/operations.md).
 * The socket lives in the daemon's epoll set.  A command answers at once
 * or later (a load runs on the loader thread): a peer's next line waits
 * for its answer, so replies keep the order of the requests. */
#ifndef SL_MGMT_H
#define SL_MGMT_H

#include <json-c/json.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_mgmt_proto.h"

typedef struct sl_mgmt sl_mgmt;
/* Answers one checked request (sl_mgmt_parse) with a new reply object, or
 * NULL to answer later with sl_mgmt_answer(token); lines that fail the
 * check are answered here, with the reason. */
typedef json_object *(*sl_mgmt_fn)(void *ctx, const sl_mgmt_req *req, uint64_t token);

/* Listens at path (replacing a stale socket file) and adds itself to the
 * epoll set ep with tags from tag0 up (tag0 .. tag0 + 16). */
sl_status sl_mgmt_open(const char *path, int ep, uint64_t tag0, sl_mgmt_fn fn, void *ctx, sl_mgmt **out, sl_err *err);
/* An epoll event whose tag is in [tag0, tag0 + 16]. */
void sl_mgmt_event(sl_mgmt *m, uint64_t tag, uint32_t events);
/* The reply to the request fn left for later (a peer that left gets none);
 * takes the object. */
void sl_mgmt_answer(sl_mgmt *m, uint64_t token, json_object *reply);
void sl_mgmt_close(sl_mgmt *m);

#endif
