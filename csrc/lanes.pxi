# 8-lane float blocks in C (GCC vector extensions) for the row kernels of the attention and norm
# families. Included by _kernels.pyx before them (one compile unit); names start with fastnn_v8.

cdef extern from *:
    """
    /* Explicit lanes: two SSE registers in the baseline build, one AVX register in a function built with
       target("avx2,fma") (picked at run time: fastnn_have_avx2_fma). GCC's vectorizer gives up on plain
       loops with selects in the target clones (-ftrapping-math) and on short rows (remainder loops);
       explicit lanes need neither. */
    #pragma GCC diagnostic ignored "-Wpsabi"
    #define FASTNN_V8_LANES 8
    typedef float fastnn_v8f __attribute__((vector_size(32)));
    typedef int fastnn_v8i __attribute__((vector_size(32)));
    #define FASTNN_AI static inline __attribute__((always_inline))
    FASTNN_AI fastnn_v8f fastnn_v8_load(const float* p) { fastnn_v8f x; __builtin_memcpy(&x, p, sizeof x); return x; }
    FASTNN_AI void fastnn_v8_store(float* p, fastnn_v8f x) { __builtin_memcpy(p, &x, sizeof x); }
    FASTNN_AI fastnn_v8f fastnn_v8_select(fastnn_v8i keep, fastnn_v8f a, fastnn_v8f b) {
        return (fastnn_v8f) (((fastnn_v8i) a & keep) | ((fastnn_v8i) b & ~keep));
    }
    FASTNN_AI fastnn_v8f fastnn_v8_splat(float v) { fastnn_v8f x = {v, v, v, v, v, v, v, v}; return x; }
    FASTNN_AI float fastnn_v8_sum(fastnn_v8f x) { return ((x[0] + x[4]) + (x[1] + x[5])) + ((x[2] + x[6]) + (x[3] + x[7])); }
    FASTNN_AI float fastnn_v8_hmax(fastnn_v8f x) {
        float m = x[0];
        for (int j = 1; j < 8; j++) m = x[j] > m ? x[j] : m;
        return m;
    }
    /* float64 halves of a float32 block (4 lanes: one AVX register; an 8-lane double vector spilled to the
       stack in the AVX2 build, measured 3x slower than the scalar LayerNorm). */
    typedef double fastnn_v4d __attribute__((vector_size(32)));
    typedef float fastnn_v4f __attribute__((vector_size(16)));
    FASTNN_AI fastnn_v4d fastnn_v8_lo(fastnn_v8f x) {
        return __builtin_convertvector(__builtin_shufflevector(x, x, 0, 1, 2, 3), fastnn_v4d);
    }
    FASTNN_AI fastnn_v4d fastnn_v8_hi(fastnn_v8f x) {
        return __builtin_convertvector(__builtin_shufflevector(x, x, 4, 5, 6, 7), fastnn_v4d);
    }
    FASTNN_AI fastnn_v8f fastnn_v8_narrow(fastnn_v4d lo, fastnn_v4d hi) {
        fastnn_v4f a = __builtin_convertvector(lo, fastnn_v4f), b = __builtin_convertvector(hi, fastnn_v4f);
        return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7);
    }
    FASTNN_AI double fastnn_v4d_sum(fastnn_v4d x) { return (x[0] + x[2]) + (x[1] + x[3]); }
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    #define FASTNN_AVX2_FMA __attribute__((target("avx2,fma")))
    /* AVX2 with FMA or better (cpu.pxi) */
    static inline int fastnn_have_avx2_fma(void) { return fastnn_cpu_isa() >= FASTNN_ISA_AVX2; }
    #endif
    """
    int FASTNN_V8_LANES
