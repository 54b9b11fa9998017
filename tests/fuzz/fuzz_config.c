/* libFuzzer target: sluiced's configuration decoder on arbitrary bytes
 * (what the file named by --config may hold when the daemon starts or is
 * sent SIGHUP).  Besides memory errors (ASan/UBSan) it checks that a
 * refused file changes nothing, and that an accepted one keeps the
 * decoder's promises: every value within its limits, and the object
 * printed back to JSON decodes to the same configuration. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const sl_config base = {.listen = "127.0.0.1:7433", .threads = 1, .max_seqs = 16, .max_queue = 256, .isa = -1,
                               .max_inflight = 64, .max_prompt = 16384, .max_tokens = 4096, .log_level = 2};

static void string_ok(const char *s, size_t max)
{
    if (s && (strlen(s) < 1 || strlen(s) > max))
        abort();
}

static void keeps_promises(const sl_config *c)
{
    const int ints[] = {c->threads, c->max_seqs, c->ctx, c->max_queue, c->max_inflight, c->max_prompt, c->max_tokens};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i] < 0 || ints[i] > SL_CONFIG_INT_MAX)
            abort();
    if (!(c->rate >= 0) || !isfinite(c->rate) || c->log_level < 0 || c->log_level > 3 || c->isa < -1)
        abort();
    string_ok(c->listen, SL_CONFIG_ADDR_MAX);
    string_ok(c->metrics, SL_CONFIG_ADDR_MAX);
    string_ok(c->mgmt, SL_CONFIG_SOCK_MAX);
    if (c->n_models < 0 || c->n_models > SL_REG_MODELS || c->n_keys < 0 || c->n_keys > SL_CONFIG_KEYS)
        abort();
    for (int i = 0; i < c->n_models; i++) {
        string_ok(c->model_name[i], SL_WIRE_MODEL_MAX);
        string_ok(c->model_image[i], SL_MGMT_IMAGE_MAX);
    }
    for (int i = 0; i < c->n_keys; i++)
        if (c->keys[i].len < 16 || c->keys[i].len > SL_MAC_KEY_MAX)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_config c = base, c2 = base;
    json_object *o, *o2;
    sl_err err = {0};
    if (sl_config_parse((const char *)data, size, &c, &o, &err) != SL_OK) {
        if (o || !err.msg[0] || !sl_config_equal(&c, &base))
            abort();
        return 0;
    }
    keeps_promises(&c);
    const char *again = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (sl_config_parse(again, strlen(again), &c2, &o2, &err) != SL_OK || !sl_config_equal(&c, &c2))
        abort();
    json_object_put(o2);
    json_object_put(o);
    return 0;
}
