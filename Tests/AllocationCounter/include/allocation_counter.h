#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
// Counts the heap allocations the calling thread makes between start and stop, so that a test can
// prove a piece of code allocates nothing. See allocation_counter.c for how.
#include <stddef.h>

/// Starts counting this thread's allocations (from zero).
void allocation_counter_start(void);

/// Stops counting; returns how many allocations (malloc, calloc, realloc, the aligned ones) this thread made since start.
size_t allocation_counter_stop(void);

/// Whether allocations are counted at all (not in a sanitizer build, whose own malloc must stay).
int allocation_counter_enabled(void);

#endif
