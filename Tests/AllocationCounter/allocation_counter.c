// The test executable defines malloc and its relatives here, so the dynamic linker binds every
// library's calls (the Swift runtime's, Foundation's) to these; each counts the call when its
// thread is counting and hands it to glibc's own allocator (__libc_*). Counting is per thread:
// a test runs what it measures on its own thread, and other threads' allocations never make it fail.
#include "allocation_counter.h"

#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *pointer, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *pointer);

static _Thread_local int counting;
static _Thread_local size_t counted;

void allocation_counter_start(void) {
    counted = 0;
    counting = 1;
}

size_t allocation_counter_stop(void) {
    counting = 0;
    return counted;
}

/// With MTLSEG_TRACE_ALLOCATIONS set, each counted allocation's stack goes to stderr, to find where it is made.
static void trace(void) {
    counting = 0; // backtrace() may allocate on its first call
    void *frames[32];
    const int depth = backtrace(frames, 32);
    write(2, "-- allocation:\n", 15);
    backtrace_symbols_fd(frames, depth, 2);
    counting = 1;
}

static inline void count(void) {
    if (!counting) return;
    counted++;
    if (getenv("MTLSEG_TRACE_ALLOCATIONS")) trace();
}

// A sanitizer build (MTLSEG_SANITIZED) leaves malloc to the sanitizer, which intercepts it itself and
// is not ready when the dynamic linker first calls these: nothing is counted there (see
// allocation_counter_enabled).
#ifndef MTLSEG_SANITIZED
void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void free(void *pointer) { __libc_free(pointer); }

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    count();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer && size) return ENOMEM;
    *result = pointer;
    return 0;
}
#endif

int allocation_counter_enabled(void) {
#ifdef MTLSEG_SANITIZED
    return 0;
#else
    return 1;
#endif
}
