/* quality.c - reading the verdict an image carries (sl_quality.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_quality.h"

/* A string key into dst (NUL-terminated, cut to size); absent: "". */
static sl_status get_str(const sl_gguf *g, const char *key, char *dst, size_t size, bool required, sl_err *err)
{
    dst[0] = '\0';
    const sl_gguf_kv *kv = sl_gguf_find(g, key);
    if (!kv)
        return required ? sl_err_set(err, SL_EFORMAT, "quality verdict without %s", key) : SL_OK;
    sl_str s;
    sl_status st = sl_gguf_get_str(g, key, &s, err);
    if (st)
        return st;
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return SL_OK;
}

static sl_status get_num(const sl_gguf *g, const char *key, double *out, sl_err *err)
{
    const sl_gguf_kv *kv = sl_gguf_find(g, key);
    if (!kv || !sl_gguf_kv_as_f64(kv, out) || !isfinite(*out))
        return sl_err_set(err, SL_EFORMAT, "quality verdict: %s is missing or not a finite number", key);
    return SL_OK;
}

sl_status sl_quality_read(const sl_gguf *g, const char *content_checksum, sl_quality *q, sl_err *err)
{
    memset(q, 0, sizeof *q);
    char verdict[16];
    sl_status st = get_str(g, SL_QUALITY_PREFIX "verdict", verdict, sizeof verdict, false, err);
    if (st)
        return st;
    if (!verdict[0])
        return SL_OK;
    if (strcmp(verdict, "pass") != 0 && strcmp(verdict, "fail") != 0)
        return sl_err_set(err, SL_EFORMAT, "quality verdict '%s' is neither pass nor fail", verdict);
    q->present = true;
    q->pass = strcmp(verdict, "pass") == 0;
    static const struct {
        const char *key;
        size_t off, size;
        bool required;
    } strs[] = {
        {SL_QUALITY_PREFIX "candidate_checksum", offsetof(sl_quality, candidate), sizeof q->candidate, true},
        {SL_QUALITY_PREFIX "base_checksum", offsetof(sl_quality, base), sizeof q->base, true},
        {SL_QUALITY_PREFIX "base", offsetof(sl_quality, base_name), sizeof q->base_name, false},
        {SL_QUALITY_PREFIX "data", offsetof(sl_quality, data), sizeof q->data, false},
        {SL_QUALITY_PREFIX "limits", offsetof(sl_quality, limits), sizeof q->limits, false},
        {SL_QUALITY_PREFIX "worst_layers", offsetof(sl_quality, worst), sizeof q->worst, false},
        {SL_QUALITY_PREFIX "time", offsetof(sl_quality, time), sizeof q->time, false},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0] && !st; i++)
        st = get_str(g, strs[i].key, (char *)q + strs[i].off, strs[i].size, strs[i].required, err);
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
        {SL_QUALITY_PREFIX "ppl", offsetof(sl_quality, ppl)},
        {SL_QUALITY_PREFIX "base_ppl", offsetof(sl_quality, base_ppl)},
        {SL_QUALITY_PREFIX "ppl_ratio", offsetof(sl_quality, ppl_ratio)},
        {SL_QUALITY_PREFIX "kl_mean", offsetof(sl_quality, kl_mean)},
        {SL_QUALITY_PREFIX "kl_p99", offsetof(sl_quality, kl_p99)},
        {SL_QUALITY_PREFIX "top1", offsetof(sl_quality, top1)},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0] && !st; i++)
        st = get_num(g, nums[i].key, (double *)(void *)((char *)q + nums[i].off), err);
    double tokens = 0;
    st = st ? st : get_num(g, SL_QUALITY_PREFIX "tokens", &tokens, err);
    if (st)
        return st;
    q->tokens = (uint64_t)tokens;
    if (strcmp(q->candidate, content_checksum) != 0)
        return sl_err_set(err, SL_ECHECKSUM,
                          "the quality verdict was measured on image %s, not on this one (%s): it does not apply",
                          q->candidate, content_checksum);
    return SL_OK;
}
