/* Samplers: greedy, the filters, seeded reproducibility, and the drawn
 * frequencies against the distribution. */
#include <criterion/criterion.h>
#include <math.h>

#include "sl_sampler.h"

static sl_sampler make(float temp, int k, float p, float minp, float pen, uint64_t seed)
{
    sl_sampler_cfg c = sl_sampler_defaults();
    c.temp = temp, c.top_k = k, c.top_p = p, c.min_p = minp, c.rep_penalty = pen, c.seed = seed;
    sl_sampler s;
    sl_err err = {0};
    cr_assert_eq(sl_sampler_init(&s, &c, 5, &err), SL_OK, "%s", err.msg);
    return s;
}

static const float lg[5] = {1.0f, 3.0f, 3.0f, 2.0f, -1.0f};

Test(sampler, greedy_takes_the_lowest_id_on_ties)
{
    sl_sampler s = make(0, 0, 1, 0, 1, 0);
    cr_assert_eq(sl_sample(&s, lg, NULL, 0), 1);
    cr_assert_eq(sl_argmax(lg, 5), 1);
    sl_sampler_free(&s);
}

/* the vector argmax against the one-pass loop it replaces: ties, NaNs,
 * signed zeros, infinities, every length and position up to 40 */
static int32_t argmax_loop(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

Test(sampler, argmax_is_the_first_largest_with_nan_and_zeros)
{
    const float pool[] = {0.0f, -0.0f, 1.0f, -1.0f, NAN, INFINITY, -INFINITY, 2.5f, 2.5f, 1e-30f};
    uint64_t r = 88172645463325252ull;
    for (int trial = 0; trial < 20000; trial++) {
        float x[40];
        const int n = 1 + trial % 40;
        for (int i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            x[i] = pool[r % (sizeof pool / sizeof pool[0])];
        }
        cr_assert_eq(sl_argmax(x, n), argmax_loop(x, n), "trial %d, n %d", trial, n);
    }
}

Test(sampler, repetition_penalty_moves_greedy)
{
    sl_sampler s = make(0, 0, 1, 0, 2.0f, 0);
    int32_t hist[] = {1, 1, 4};
    cr_assert_eq(sl_sample(&s, lg, hist, 3), 2, "token 1 penalised: 3/2 < 3");
    int32_t hist2[] = {1, 2};
    cr_assert_eq(sl_sample(&s, lg, hist2, 2), 3, "both 3s halved below 2");
    sl_sampler_free(&s);
}

Test(sampler, filters_narrow_to_the_top)
{
    for (uint64_t seed = 0; seed < 50; seed++) {
        sl_sampler a = make(1, 1, 1, 0, 1, seed), b = make(1, 0, 0.01f, 0, 1, seed), c = make(1, 0, 1, 0.9f, 1, seed);
        cr_assert_eq(sl_sample(&a, lg, NULL, 0), 1, "top-k 1 is greedy");
        cr_assert_eq(sl_sample(&b, lg, NULL, 0), 1, "tiny top-p keeps the first of the tied pair");
        int32_t t = sl_sample(&c, lg, NULL, 0);
        cr_assert(t == 1 || t == 2, "min-p 0.9 keeps only the two tied tokens, got %d", t);
        sl_sampler_free(&a);
        sl_sampler_free(&b);
        sl_sampler_free(&c);
    }
}

Test(sampler, seeded_and_reproducible)
{
    sl_sampler a = make(1, 0, 1, 0, 1, 42), b = make(1, 0, 1, 0, 1, 42), c = make(1, 0, 1, 0, 1, 43);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = sl_sample(&a, lg, NULL, 0), y = sl_sample(&b, lg, NULL, 0), z = sl_sample(&c, lg, NULL, 0);
        cr_assert_eq(x, y, "same seed, draw %d", i);
        differ += x != z;
    }
    cr_assert_gt(differ, 20, "another seed gives another stream");
    sl_sampler_free(&a);
    sl_sampler_free(&b);
    sl_sampler_free(&c);
}

Test(sampler, frequencies_follow_softmax_at_temperature)
{
    const float temps[] = {1.0f, 0.5f, 2.0f};
    for (int ti = 0; ti < 3; ti++) {
        sl_sampler s = make(temps[ti], 0, 1, 0, 1, 7);
        int count[5] = {0};
        const int n = 40000;
        for (int i = 0; i < n; i++)
            count[sl_sample(&s, lg, NULL, 0)]++;
        double z = 0, p[5];
        for (int i = 0; i < 5; i++)
            z += p[i] = exp(lg[i] / temps[ti]);
        for (int i = 0; i < 5; i++) {
            double f = (double)count[i] / n, sd = sqrt(p[i] / z * (1 - p[i] / z) / n);
            cr_assert(fabs(f - p[i] / z) < 5 * sd + 1e-4, "T=%.1f token %d: frequency %.4f, probability %.4f",
                      temps[ti], i, f, p[i] / z);
        }
        sl_sampler_free(&s);
    }
}

Test(sampler, settings_out_of_range_are_refused)
{
    sl_sampler s;
    sl_sampler_cfg c = sl_sampler_defaults();
    sl_err err = {0};
    c.top_p = 0;
    cr_assert_eq(sl_sampler_init(&s, &c, 5, &err), SL_ERANGE);
    c = sl_sampler_defaults();
    c.temp = -1;
    cr_assert_eq(sl_sampler_init(&s, &c, 5, &err), SL_ERANGE);
    c = sl_sampler_defaults();
    c.min_p = 1;
    cr_assert_eq(sl_sampler_init(&s, &c, 5, &err), SL_ERANGE);
    c = sl_sampler_defaults();
    cr_assert_eq(sl_sampler_init(&s, &c, 0, &err), SL_ERANGE);
}

Test(sampler, top_k_keeps_the_best_k_with_ties_to_lower_ids)
{
    static float big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (float)((i * 7919) % 1000) / 100.0f; /* a permutation of 0..9.99 */
    big[500] = big[501] = big[502] = big[503] = 20.0f; /* four tied best; top-3 keeps 500..502 */
    sl_sampler_cfg c = sl_sampler_defaults();
    c.temp = 1e5f; /* nearly uniform over what survives */
    c.top_k = 3;
    c.seed = 3;
    sl_sampler s;
    cr_assert_eq(sl_sampler_init(&s, &c, 1000, NULL), SL_OK);
    int seen[1000] = {0};
    for (int i = 0; i < 3000; i++)
        seen[sl_sample(&s, big, NULL, 0)]++;
    for (int i = 0; i < 1000; i++)
        cr_assert(i >= 500 && i <= 502 ? seen[i] > 800 : seen[i] == 0, "token %d drawn %d times", i, seen[i]);
    sl_sampler_free(&s);
}

Test(sampler, top_p_on_a_large_peaked_vocabulary)
{
    static float w[1000];
    for (int i = 0; i < 1000; i++)
        w[i] = -40.0f + (float)(i % 13); /* a long tail, most of it below 1e-12 of the peak */
    w[10] = w[20] = 10.0f;               /* two near-halves of the mass */
    w[30] = 9.0f;
    sl_sampler_cfg c = sl_sampler_defaults();
    c.temp = 1.0f;
    c.top_p = 0.8f;
    c.seed = 11;
    sl_sampler s;
    cr_assert_eq(sl_sampler_init(&s, &c, 1000, NULL), SL_OK);
    int seen[1000] = {0};
    for (int i = 0; i < 2000; i++)
        seen[sl_sample(&s, w, NULL, 0)]++;
    /* cumulative: 0.42 (id 10), 0.84 (id 20) >= 0.8: only those two */
    for (int i = 0; i < 1000; i++)
        cr_assert(i == 10 || i == 20 ? seen[i] > 800 : seen[i] == 0, "token %d drawn %d times", i, seen[i]);
    sl_sampler_free(&s);
}
