// OpenBLAS's CBLAS interface. Debian ships no cblas.pc; the `openblas` pkg-config
// entry supplies the include path of the pthread build that holds cblas.h.
#include <cblas.h>
