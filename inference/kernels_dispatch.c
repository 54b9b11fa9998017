/* kernels_dispatch.c - picks the kernel table for this CPU at run time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpuid.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sl_kernels.h"
#include "sl_types.h"

static const char *const isa_names[SL_ISA_COUNT] = {"scalar", "avx2", "avx512", "amx"};

const char *sl_isa_name(sl_isa isa) { return (unsigned)isa < SL_ISA_COUNT ? isa_names[isa] : "?"; }

int sl_isa_parse(const char *s)
{
    for (int i = 0; i < SL_ISA_COUNT; i++)
        if (s && strcmp(s, isa_names[i]) == 0)
            return i;
    return -1;
}

/* CPU features from cpuid, with the OS's consent (XCR0) to use the wider
 * registers; read once. */
static struct {
    pthread_once_t once;
    int avx2, avx512, vnni, bf16, dq, amx;
} cpu = {PTHREAD_ONCE_INIT, 0, 0, 0, 0, 0, 0};

/* Linux hands out AMX's 8 KiB tile state only on request (since 5.16);
 * the grant covers the whole process and its children. */
#define SL_ARCH_REQ_XCOMP_PERM 0x1023
#define SL_XFEATURE_XTILEDATA 18

static void probe_cpu(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const int ymm_ok = (lo & 0x6) == 0x6, zmm_ok = (lo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    cpu.avx2 = ymm_ok && fma && f16c && ((b >> 5) & 1);
    cpu.avx512 = cpu.avx2 && zmm_ok && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    cpu.dq = cpu.avx512 && ((b >> 17) & 1);
    cpu.vnni = cpu.avx512 && ((c >> 11) & 1);
    /* AMX-TILE and AMX-INT8, XCR0's tile config and data bits, and the
     * kernel's consent */
    cpu.amx = cpu.vnni && ((d >> 24) & 1) && ((d >> 25) & 1) && (lo & 0x60000) == 0x60000 &&
              syscall(SYS_arch_prctl, SL_ARCH_REQ_XCOMP_PERM, SL_XFEATURE_XTILEDATA) == 0;
    if (cpu.avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        cpu.bf16 = (a >> 5) & 1;
}

static int has(const int *flag)
{
    pthread_once(&cpu.once, probe_cpu);
    return *flag;
}

static int has_avx2(void) { return has(&cpu.avx2); }
/* F + BW + VL (+ DQ, which the kernels' build flags allow the compiler to use) */
static int has_avx512(void) { return has(&cpu.avx512) && cpu.dq; }
static int has_vnni(void) { return has_avx512() && cpu.vnni; }
static int has_amx(void) { return has_vnni() && cpu.amx; }

const char *sl_cpu_features(void)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s%s%s%s%s", has_avx2() ? "avx2 fma f16c" : "sse2", has_avx512() ? " avx512f/bw/vl/dq" : "",
             has_vnni() ? " avx512vnni" : "", has(&cpu.bf16) ? " avx512bf16" : "", has_amx() ? " amx-int8" : "");
    return buf;
}

/* AVX-512 without VNNI: its float kernels, AVX2's int8 ones (and their
 * activation layout). */
static sl_kernels avx512_novnni;
static pthread_once_t novnni_once = PTHREAD_ONCE_INIT;

static void make_novnni(void)
{
    avx512_novnni = sl_kernels_avx512;
    for (int t = SL_W_Q8_0; t < SL_W_COUNT; t++) {
        if (!sl_wtype_quantized(t) && t != SL_W_W8A8)
            continue;
        avx512_novnni.gemm[t] = sl_kernels_avx2.gemm[t];
        avx512_novnni.gemm_name[t] = sl_kernels_avx2.gemm_name[t];
    }
    avx512_novnni.act_bytes = sl_kernels_avx2.act_bytes;
    avx512_novnni.act_quant = sl_kernels_avx2.act_quant;
    /* the prepared input is the VNNI tile's */
    avx512_novnni.xprep_bytes = NULL;
    avx512_novnni.xprep = NULL;
    memset(avx512_novnni.gemm_xp, 0, sizeof avx512_novnni.gemm_xp);
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
    case SL_ISA_AMX:
        return has_amx() ? &sl_kernels_amx : NULL;
    default:
        return NULL;
    }
}

sl_isa sl_isa_select(void)
{
    int best = SL_ISA_COUNT - 1;
    while (best > SL_ISA_SCALAR && !sl_kernels_for((sl_isa)best))
        best--;
    const char *env = getenv("SLUICE_ISA");
    if (env && *env) {
        int want = sl_isa_parse(env);
        if (want < 0)
            fprintf(stderr, "sluice: SLUICE_ISA=%s is not one of scalar, avx2, avx512, amx; using %s\n", env,
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
    case SL_TYPE_Q4_K: return SL_W_Q4_K;
    case SL_TYPE_Q6_K: return SL_W_Q6_K;
    case SL_TYPE_IQ4_NL: return SL_W_IQ4_NL;
    case SL_TYPE_NF4: return SL_W_NF4;
    case SL_TYPE_W8A8: return SL_W_W8A8;
    default: return -1;
    }
}
