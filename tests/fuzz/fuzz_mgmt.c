/* libFuzzer target: the management request decoder on arbitrary bytes
 * (what a peer of the management socket may send as one line).  Besides
 * memory errors (ASan/UBSan) it checks that a request that decodes keeps
 * the decoder's promises (the arguments its command needs, within their
 * limits, and no others), and that it prints back to JSON that decodes to
 * the same request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_mgmt_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void keeps_promises(const sl_mgmt_req *q)
{
    const int two = q->cmd == SL_MGMT_LOAD || q->cmd == SL_MGMT_SWAP, one = q->cmd == SL_MGMT_UNLOAD;
    if ((int)q->cmd < SL_MGMT_STATUS || (int)q->cmd > SL_MGMT_DRAIN)
        abort();
    if ((two || one) != (q->name != NULL) || two != (q->image != NULL) || (q->force && !two))
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
    if (sl_mgmt_parse(again, strlen(again), &o2, &q2, &err) != SL_OK || q2.cmd != q.cmd || q2.force != q.force ||
        !q2.name != !q.name || !q2.image != !q.image || (q.name && strcmp(q.name, q2.name)) ||
        (q.image && strcmp(q.image, q2.image)))
        abort();
    json_object_put(o2);
    json_object_put(o);
    return 0;
}
