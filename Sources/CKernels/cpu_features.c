#include "ckernels_cpu.h"

int ck_cpu_has_avx512f(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}
