/* kernels_dispatch.c - picks the kernel table for this CPU at run time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "sl_kernels.h"
#include "sl_types.h"

static const char *const isa_names[SL_ISA_COUNT] = {"scalar", "avx2", "avx512"};

const char *sl_isa_name(sl_isa isa) { return (unsigned)isa < SL_ISA_COUNT ? isa_names[isa] : "?"; }

int sl_isa_parse(const char *s)
{
    for (int i = 0; i < SL_ISA_COUNT; i++)
        if (s && strcmp(s, isa_names[i]) == 0)
            return i;
    return -1;
}

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

static int has_avx512(void)
{
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

static int has_vnni(void) { return has_avx512() && __builtin_cpu_supports("avx512vnni"); }

const char *sl_cpu_features(void)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s%s%s%s%s%s", has_avx2() ? "avx2 fma f16c" : "sse2",
             __builtin_cpu_supports("avx512f") ? " avx512f" : "", __builtin_cpu_supports("avx512bw") ? " avx512bw" : "",
             __builtin_cpu_supports("avx512vl") ? " avx512vl" : "", has_vnni() ? " avx512vnni" : "",
             __builtin_cpu_supports("avx512bf16") ? " avx512bf16" : "");
    return buf;
}

/* AVX-512 without VNNI: its float kernels, AVX2's int8 ones. */
static sl_kernels avx512_novnni;
static pthread_once_t novnni_once = PTHREAD_ONCE_INIT;

static void make_novnni(void)
{
    avx512_novnni = sl_kernels_avx512;
    for (int t = SL_W_Q8_0; t < SL_W_COUNT; t++) {
        avx512_novnni.gemm[t] = sl_kernels_avx2.gemm[t];
        avx512_novnni.gemm_name[t] = sl_kernels_avx2.gemm_name[t];
    }
}

const sl_kernels *sl_kernels_for(sl_isa isa)
{
    switch (isa) {
    case SL_ISA_SCALAR:
        return &sl_kernels_scalar;
    case SL_ISA_AVX2:
        return has_avx2() ? &sl_kernels_avx2 : NULL;
    case SL_ISA_AVX512:
        if (!has_avx512())
            return NULL;
        if (has_vnni())
            return &sl_kernels_avx512;
        pthread_once(&novnni_once, make_novnni);
        return &avx512_novnni;
    default:
        return NULL;
    }
}

sl_isa sl_isa_select(void)
{
    int best = SL_ISA_AVX512;
    while (best > SL_ISA_SCALAR && !sl_kernels_for((sl_isa)best))
        best--;
    const char *env = getenv("SLUICE_ISA");
    if (env && *env) {
        int want = sl_isa_parse(env);
        if (want < 0)
            fprintf(stderr, "sluice: SLUICE_ISA=%s is not one of scalar, avx2, avx512; using %s\n", env,
                    isa_names[best]);
        else if (want > best)
            fprintf(stderr, "sluice: SLUICE_ISA=%s is beyond this CPU; using %s\n", env, isa_names[best]);
        else
            best = want;
    }
    return (sl_isa)best;
}

int sl_wtype_from_ggml(uint32_t type)
{
    switch (type) {
    case SL_TYPE_F32: return SL_W_F32;
    case SL_TYPE_F16: return SL_W_F16;
    case SL_TYPE_BF16: return SL_W_BF16;
    case SL_TYPE_Q8_0: return SL_W_Q8_0;
    case SL_TYPE_Q4_0: return SL_W_Q4_0;
    case SL_TYPE_Q4_1: return SL_W_Q4_1;
    default: return -1;
    }
}
