// Grouped-query decode attention on CPU, fp32: every K/V byte is read once for all the query heads that share it.
//
// One new token per sequence. The g query heads of a KV head sit in the lanes of one vector (W = 8 or 16 fp32
// lanes; padded with zeros), so each key costs d scalar-broadcast FMAs for its g scores and each value d FMAs
// for its g outputs, whatever g is. Keys are walked in blocks of KB with an online softmax (running max m,
// running sum l, unnormalised output); the sequence is split into `parts` runs processed by different
// threads and merged exactly by their log-sum-exp (flash-decoding's split-KV). K/V rows are prefetched in two
// steps, toward the outer caches FAR keys ahead and into L1 NEAR keys ahead, so that the memory system
// streams while the core computes (one step into L1 alone is bounded by L1's few outstanding misses).
//
// Built by gqa/cpu_decode.py with the system C++ compiler (-O3 -march=native -fopenmp) on first use. GCC/Clang
// vector extensions only: no intrinsics, so the same source builds on AVX2, AVX-512 and Arm.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int KB = 64;          // keys per softmax block
constexpr int TILE = 16;        // output features kept in registers at once
constexpr long NEAR = 8;        // keys between a row's prefetch into L1 and its use
constexpr long FAR = 128;        // keys between a row's prefetch toward L2 and its use
// "Minus infinity" that stays finite through exp and subtraction. A masked score is set to it, and a score at
// or below it counts as masked: no unmasked fp32 score of real data comes near.
constexpr float NEG = -1e30f;

template <int W> struct Lanes {
    typedef float f __attribute__((vector_size(4 * W)));
    typedef int32_t i __attribute__((vector_size(4 * W)));
};

template <int W> inline typename Lanes<W>::f vmax(typename Lanes<W>::f a, typename Lanes<W>::f b) {
    return a > b ? a : b;
}

// e^x for x <= 0, fp32: e^x = 2^n e^r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial
// (relative error below 3e-7); x below -87 gives about 1e-38, and the caller zeroes masked keys.
template <int W> inline typename Lanes<W>::f vexp(typename Lanes<W>::f x) {
    typedef typename Lanes<W>::f F;
    typedef typename Lanes<W>::i I;
    x = x < -87.0f ? F{} - 87.0f : x;
    F t = x * 1.44269504f;
    F n = __builtin_convertvector(__builtin_convertvector(t + (t < 0 ? F{} - 0.5f : F{} + 0.5f), I), F);
    F r = x - n * 0.693145752f - n * 1.42860677e-6f;
    F p = F{} + 1.0f / 5040;
    p = p * r + 1.0f / 720; p = p * r + 1.0f / 120; p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;   p = p * r + 0.5f;       p = p * r + 1.0f;      p = p * r + 1.0f;
    I bits = (__builtin_convertvector(n, I) + 127) << 23;
    F two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

template <int LOCALITY> inline void prefetch_row(const float *row, int d) {  // 3: into L1; 1: toward L2
    for (int c = 0; c < d; c += 16) __builtin_prefetch(row + c, 0, LOCALITY);
}

// One (sequence, KV head, query tile, part): keys [s0, s1). qT[c] holds feature c of the tile's W queries
// (pre-scaled). Writes the unnormalised output accT[c], the running max m and the running sum l per lane.
template <int W>
void attend_part(int d, const typename Lanes<W>::f *qT, const float *k, const float *v, long ks, long vs,
                 const unsigned char *mask, long mq, int width, long s0, long s1,
                 typename Lanes<W>::f *accT, float *m_out, float *l_out) {
    typedef typename Lanes<W>::f F;
    F s[KB];
    F m = F{} + NEG, l = F{};
    for (int c = 0; c < d; c++) accT[c] = F{};
    for (long j0 = s0; j0 < s1; j0 += KB) {
        const int n = (int)(s1 - j0 < KB ? s1 - j0 : KB);
        int jj = 0;
        for (; jj + 4 <= n; jj += 4) {  // scores, four keys at a time (each qT[c] loaded once for four)
            const float *k0 = k + (j0 + jj) * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
            for (long x = j0 + jj + NEAR; x < j0 + jj + NEAR + 4 && x < s1; x++) {
                prefetch_row<3>(k + x * ks, d);
                prefetch_row<3>(v + x * vs, d);
            }
            for (long x = j0 + jj + FAR; x < j0 + jj + FAR + 4 && x < s1; x++) {
                prefetch_row<1>(k + x * ks, d);
                prefetch_row<1>(v + x * vs, d);
            }
            // two accumulators per key (even and odd features): eight independent chains keep both FMA
            // units busy through the FMA latency; one chain per key would run at half their rate
            F e0 = {}, e1 = {}, e2 = {}, e3 = {}, o0 = {}, o1 = {}, o2 = {}, o3 = {};
            int c = 0;
            for (; c + 2 <= d; c += 2) {
                const F qe = qT[c], qo = qT[c + 1];
                e0 += k0[c] * qe; e1 += k1[c] * qe; e2 += k2[c] * qe; e3 += k3[c] * qe;
                o0 += k0[c + 1] * qo; o1 += k1[c + 1] * qo; o2 += k2[c + 1] * qo; o3 += k3[c + 1] * qo;
            }
            if (c < d) {
                const F q = qT[c];
                e0 += k0[c] * q; e1 += k1[c] * q; e2 += k2[c] * q; e3 += k3[c] * q;
            }
            s[jj] = e0 + o0; s[jj + 1] = e1 + o1; s[jj + 2] = e2 + o2; s[jj + 3] = e3 + o3;
        }
        for (; jj < n; jj++) {
            const float *k0 = k + (j0 + jj) * ks;
            F t0 = {};
            for (int c = 0; c < d; c++) t0 += k0[c] * qT[c];
            s[jj] = t0;
        }
        if (mask)
            for (jj = 0; jj < n; jj++)
                for (int i = 0; i < width; i++)
                    if (!mask[i * mq + j0 + jj]) s[jj][i] = NEG;
        F mx = m;
        for (jj = 0; jj < n; jj++) mx = vmax<W>(mx, s[jj]);
        const F rescale = vexp<W>(m - mx);
        F sum = {};
        for (jj = 0; jj < n; jj++) {
            F p = vexp<W>(s[jj] - mx);
            p = s[jj] <= NEG ? F{} : p;
            s[jj] = p;
            sum += p;
        }
        m = mx;
        l = l * rescale + sum;
        for (int c = 0; c < d; c++) accT[c] *= rescale;
        for (int c0 = 0; c0 < d; c0 += TILE) {  // outputs: TILE features of every lane held in registers
            if (c0 + TILE <= d) {
                F a[TILE];
#pragma GCC unroll 16
                for (int r = 0; r < TILE; r++) a[r] = accT[c0 + r];
                for (jj = 0; jj < n; jj++) {
                    const F p = s[jj];
                    const float *vj = v + (j0 + jj) * vs + c0;
#pragma GCC unroll 16
                    for (int r = 0; r < TILE; r++) a[r] += vj[r] * p;
                }
#pragma GCC unroll 16
                for (int r = 0; r < TILE; r++) accT[c0 + r] = a[r];
            } else {
                for (jj = 0; jj < n; jj++) {
                    const float *vj = v + (j0 + jj) * vs;
                    for (int c = c0; c < d; c++) accT[c] += vj[c] * s[jj];
                }
            }
        }
    }
    std::memcpy(m_out, &m, sizeof m);
    std::memcpy(l_out, &l, sizeof l);
}

template <typename T> T *allocate(long count) {  // 64-byte aligned; the size rounded up as aligned_alloc asks
    const size_t bytes = ((sizeof(T) * (size_t)count + 63) / 64) * 64;
    return static_cast<T *>(std::aligned_alloc(64, bytes ? bytes : 64));
}

template <int W>
int decode(int B, int n_kv, int g, int d, long S, const float *query, const float *key, const float *value,
            long kb, long kh, long ks, long vb, long vh, long vs, const unsigned char *mask, long mb, long mq,
            float scale, int parts, int threads, float *out) {
    typedef typename Lanes<W>::f F;
    const int tiles = (g + W - 1) / W;
    const long tasks = (long)B * n_kv * tiles * parts;
    F *acc = allocate<F>(tasks * d), *qts = allocate<F>(tasks * d);
    float *ms = allocate<float>(tasks * W), *ls = allocate<float>(tasks * W);
    if (!acc || !qts || !ms || !ls) {
        std::free(acc); std::free(qts); std::free(ms); std::free(ls);
        return 1;
    }
    const long chunk = (S + parts - 1) / parts;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long t = 0; t < tasks; t++) {
        const long p = t % parts, tile = (t / parts) % tiles, h = (t / parts / tiles) % n_kv;
        const long b = t / parts / tiles / n_kv;
        const int q0 = (int)tile * W, width = g - q0 < W ? g - q0 : W;
        F *qT = qts + t * d;
        const float *q = query + ((b * n_kv + h) * g + q0) * (long)d;
        for (int c = 0; c < d; c++) {
            qT[c] = F{};
            for (int i = 0; i < width; i++) qT[c][i] = q[i * d + c] * scale;
        }
        const long s0 = p * chunk, s1 = s0 + chunk < S ? s0 + chunk : S;
        const unsigned char *mrow = mask ? mask + b * mb + (h * g + q0) * mq : nullptr;
        attend_part<W>(d, qT, key + b * kb + h * kh, value + b * vb + h * vh, ks, vs, mrow, mq, width,
                       s0, s1 < s0 ? s0 : s1, acc + t * d, ms + t * W, ls + t * W);
    }
    for (long u = 0; u < tasks / parts; u++) {  // merge the parts of (sequence, KV head, tile) u
        const int q0 = (int)(u % tiles) * W, width = g - q0 < W ? g - q0 : W;
        float *o = out + ((u / tiles) * g + q0) * (long)d;
        for (int i = 0; i < width; i++) {
            float M = NEG, L = 0.0f;
            for (int p = 0; p < parts; p++) M = std::fmax(M, ms[(u * parts + p) * W + i]);
            for (int c = 0; c < d; c++) o[i * d + c] = 0.0f;
            for (int p = 0; p < parts; p++) {
                const long t = u * parts + p;
                const float w = std::exp(ms[t * W + i] - M);
                L += w * ls[t * W + i];
                for (int c = 0; c < d; c++) o[i * d + c] += w * acc[t * d + c][i];
            }
            for (int c = 0; c < d; c++) o[i * d + c] = L > 0.0f ? o[i * d + c] / L : NAN;  // all masked: NaN
        }
    }
    std::free(acc); std::free(qts); std::free(ms); std::free(ls);
    return 0;
}

}  // namespace

// query (B, n_kv·g, d) contiguous fp32; key and value rows of d contiguous floats at element strides (batch,
// KV head, position); mask: null, or bytes (nonzero = attend) along S with strides (batch, query head),
// the query-head stride 0 when every head shares the row; out (B, n_kv·g, d) contiguous. S >= 1.
// Returns 0, or 1 when the work buffers could not be allocated (out is then untouched).
extern "C" int gqa_decode(int B, int n_kv, int g, int d, long S, const float *query, const float *key,
                           const float *value, long kb, long kh, long ks, long vb, long vh, long vs,
                           const unsigned char *mask, long mb, long mq, float scale, int parts, int threads,
                           float *out) {
    if (g > 8)  // lanes() in cpu_decode.py mirrors this choice to count the tasks
        return decode<16>(B, n_kv, g, d, S, query, key, value, kb, kh, ks, vb, vh, vs, mask, mb, mq, scale, parts,
                          threads, out);
    return decode<8>(B, n_kv, g, d, S, query, key, value, kb, kh, ks, vb, vh, vs, mask, mb, mq, scale, parts,
                     threads, out);
}
