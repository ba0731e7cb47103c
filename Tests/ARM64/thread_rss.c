// Creates and joins threads in rounds of 200 and prints the process's RSS and glibc's heap in use
// after each round. Natively RSS stays flat; under qemu-user it grows by the emulator's per-thread
// state, which qemu does not give back when a thread ends (Tests/ARM64/qemu_thread_rss.sh).
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long resident_kilobytes(void) {
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return -1;
    char line[256];
    long kilobytes = -1;
    while (fgets(line, sizeof line, status))
        if (strncmp(line, "VmRSS:", 6) == 0) kilobytes = atol(line + 6);
    fclose(status);
    return kilobytes;
}

static void *touch_a_page(void *unused) {
    (void)unused;
    volatile char page[4096];
    memset((char *)page, 1, sizeof page);
    return NULL;
}

int main(void) {
    for (int round = 1; round <= 4; round++) {
        for (int i = 0; i < 200; i++) {
            pthread_t thread;
            if (pthread_create(&thread, NULL, touch_a_page, NULL) != 0) return 1;
            pthread_join(thread, NULL);
        }
        printf("after %4d threads: RSS %7ld kB, heap in use %5zu kB\n", round * 200, resident_kilobytes(),
               mallinfo2().uordblks / 1024);
    }
    return 0;
}
