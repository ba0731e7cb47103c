#ifndef CKERNELS_CPU_H
#define CKERNELS_CPU_H
// CPU facts the Swift side needs outside the kernels' own dispatch.

/// 1 when the CPU (and the OS) run AVX-512F code, else 0; 0 on other architectures.
int ck_cpu_has_avx512f(void);

#endif
