// A TCG plugin for qemu-user that counts the guest instructions executed per translated block, for
// profile.sh: where the instructions of a run go, by address (profile.sh maps them to symbols).
//   qemu-aarch64 -plugin ./insn_profile.so,outfile=FILE PROGRAM ...
// writes one line per block start address, "address instructions", at exit (blocks translated more
// than once are summed). Each block gets an inline "add 1" to a counter of its own, so like
// insn_count.c it is exact for a single-threaded guest only. Plugin API version 1 (Debian 12's
// qemu 7.2), declared here as insn_count.c does.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; // not read
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

// One per translation; chunks are never moved, so the inline counters' addresses stay valid.
typedef struct { uint64_t vaddr, insns, executions; } block;
enum { CHUNK = 65536 };
static block **chunks;
static size_t nchunks, used = CHUNK; // `used` in the last chunk
static char outfile[4096];

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    if (used == CHUNK) {
        block **grown = realloc(chunks, (nchunks + 1) * sizeof *chunks);
        block *fresh = calloc(CHUNK, sizeof(block));
        if (!grown || !fresh) abort();
        chunks = grown;
        chunks[nchunks++] = fresh;
        used = 0;
    }
    block *b = &chunks[nchunks - 1][used++];
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->insns = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->executions, 1);
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    FILE *f = outfile[0] ? fopen(outfile, "w") : stderr;
    if (!f) return;
    for (size_t c = 0; c < nchunks; c++)
        for (size_t i = 0; i < (c + 1 == nchunks ? used : CHUNK); i++) {
            const block *b = &chunks[c][i];
            if (b->executions)
                fprintf(f, "%llx %llu\n", (unsigned long long)b->vaddr, (unsigned long long)(b->insns * b->executions));
        }
    if (f != stderr) fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                                               char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "outfile=", 8) == 0) snprintf(outfile, sizeof outfile, "%s", argv[i] + 8);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
