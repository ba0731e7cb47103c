#ifndef CKERNELS_CPU_H
#define CKERNELS_CPU_H
// CPU facts the Swift side needs outside the kernels' own dispatch.

/// 1 when the CPU (and the OS) run AVX-512F code, else 0; 0 on other architectures.
int ck_cpu_has_avx512f(void);

/// 1 when the CPU (and the OS) run AArch64's SVE, else 0; 0 on other architectures.
int ck_cpu_has_sve(void);

/// 1 when the CPU (and the OS) run AArch64's SME (Scalable Matrix Extension), else 0; 0 on other architectures.
int ck_cpu_has_sme(void);

/// One core's ceiling for 8-bit multiply-adds, in GMAC/s: the widest dot-product instruction the CPU runs (AVX-512
/// VNNI or AVX-VNNI `vpdpbusd`, AArch64 `sdot`; whatever MTLSEG_KERNELS caps) issued back to back on independent
/// accumulators, with no loads. No int8 product can run faster. Measured on each call (best of 5 trials of a few
/// ms); 0, and *instruction NULL, on a CPU without such an instruction. `instruction` may be NULL.
double ck_dot_ceiling_gmacs(const char **instruction);

/// Tells the core that the caller is spinning on a flag (x86 `pause`, AArch64 `yield`),
/// which saves power and lets a sibling hyperthread run.
static inline void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
