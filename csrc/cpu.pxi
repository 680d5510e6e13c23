# The CPU features the hand-written kernels dispatch on, read once at run time (the extension is built for
# baseline x86-64; the AVX2 / AVX-512 functions carry their own target attributes). Included first by
# _kernels.pyx: the GEMM and recurrent micro-kernels and the 8-lane row kernels all ask here.

cdef extern from *:
    """
    enum { FASTNN_ISA_NONE = 0, FASTNN_ISA_AVX2 = 1, FASTNN_ISA_AVX512 = 2 };
    /* The best vector ISA of this CPU: FASTNN_ISA_AVX512 (AVX-512F), FASTNN_ISA_AVX2 (AVX2 with FMA) or
       FASTNN_ISA_NONE (neither, or not x86-64 with a GCC-compatible compiler). */
    static int fastnn_cpu_isa(void) {
    #if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
        static int isa = -1;  /* a benign race: every thread stores the same answer */
        if (isa < 0) {
            __builtin_cpu_init();
            isa = __builtin_cpu_supports("avx512f") ? FASTNN_ISA_AVX512
                : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? FASTNN_ISA_AVX2
                : FASTNN_ISA_NONE;
        }
        return isa;
    #else
        return FASTNN_ISA_NONE;
    #endif
    }
    """
    int fastnn_cpu_isa() noexcept nogil
    int FASTNN_ISA_NONE, FASTNN_ISA_AVX2, FASTNN_ISA_AVX512
