/* libFuzzer target: the management request decoder (sl_mgmt_proto.h) on
 * arbitrary bytes (what a peer of the management socket may send as one
 * line).  Besides memory errors (ASan/UBSan) it checks that a request that
 * decodes keeps the decoder's promises (the arguments its command takes
 * in sl_mgmt_cmds, within their limits, and no others), that it prints
 * back to JSON that decodes to the same request, and that the request
 * encoder (sluicectl's side) writes a line that decodes to it too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_mgmt_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const sl_mgmt_req *a, const sl_mgmt_req *b)
{
    return a->cmd == b->cmd && a->force == b->force && !a->name == !b->name && !a->image == !b->image &&
           (!a->name || !strcmp(a->name, b->name)) && (!a->image || !strcmp(a->image, b->image));
}

static void keeps_promises(const sl_mgmt_req *q)
{
    if ((int)q->cmd < 0 || q->cmd >= SL_MGMT_CMD_COUNT)
        abort();
    const unsigned takes = sl_mgmt_cmds[q->cmd].args;
    if (!(takes & SL_MGMT_ARG_NAME) != !q->name || !(takes & SL_MGMT_ARG_IMAGE) != !q->image ||
        (q->force && !(takes & SL_MGMT_ARG_FORCE)))
        abort();
    if (q->name && (strlen(q->name) < 1 || strlen(q->name) > SL_MGMT_NAME_MAX))
        abort();
    if (q->image && (strlen(q->image) < 1 || strlen(q->image) > SL_MGMT_IMAGE_MAX))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *o;
    sl_mgmt_req q;
    sl_err err = {0};
    if (sl_mgmt_parse((const char *)data, size, &o, &q, &err) != SL_OK) {
        if (o || !err.msg[0])
            abort();
        return 0;
    }
    keeps_promises(&q);
    const char *again = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    json_object *o2;
    sl_mgmt_req q2;
    if (sl_mgmt_parse(again, strlen(again), &o2, &q2, &err) != SL_OK || !same(&q, &q2))
        abort();
    json_object_put(o2);
    static char line[SL_MGMT_LINE_MAX + 1];
    size_t n;
    if (sl_mgmt_encode_request(&q, line, sizeof line, &n, &err) != SL_OK || line[n - 1] != '\n' ||
        sl_mgmt_parse(line, n - 1, &o2, &q2, &err) != SL_OK || !same(&q, &q2))
        abort();
    json_object_put(o2);
    json_object_put(o);
    return 0;
}
