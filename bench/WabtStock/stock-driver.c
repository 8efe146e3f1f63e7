/* The wabt-stock reference for `bench wabt-stock`: Trealla translated by wasm2c (module name `tpl`) and linked with
 * wabt 1.0.32's own runtime (/usr/share/wabt/wasm2c/wasm-rt-impl.c: guard pages and its signal handler), driven the way
 * src/Prolog/PrologInterpreter.cs drives it, with the WASI the queries need (docs/trealla-abi.md). A standalone
 * process: wabt's handler claims every SIGSEGV, which a .NET process must never let it do.
 *
 *   stock-trealla PROGRAM_FILE BLOCKS TESTX_PER_BLOCK QUEENS_PER_BLOCK QUEENS_GOAL
 *
 * consults the program, then prints one line per block: `block <n> testx_us <µs per test(X)> queens_ms <ms per goal>`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpl.h"
#include "wasm-rt-impl.h"

struct Z_trealla_instance_t { int unused; };
struct Z_wasi_snapshot_preview1_instance_t { int unused; };

static Z_tpl_instance_t g_inst;
static struct Z_trealla_instance_t g_host;
static struct Z_wasi_snapshot_preview1_instance_t g_wasi;

#define ENOSYS_ 52
#define EBADF_ 8

static uint8_t* mem(void) { return g_inst.w2c_memory.data; }
static uint32_t rd32(uint32_t at) { uint32_t v; memcpy(&v, mem() + at, 4); return v; }
static void wr32(uint32_t at, uint32_t v) { memcpy(mem() + at, &v, 4); }
static void wr64(uint32_t at, uint64_t v) { memcpy(mem() + at, &v, 8); }

/* ---- imports ---- */
u32 Z_treallaZ_hostZ2Dcall(struct Z_trealla_instance_t* h, u32 a, u32 b, u32 c, u32 d, u32 e) { return 0; }
u32 Z_treallaZ_hostZ2Dresume(struct Z_trealla_instance_t* h, u32 a, u32 reply, u32 c) { wr32(reply, 0); return 0; }

typedef struct Z_wasi_snapshot_preview1_instance_t W;
u32 Z_wasi_snapshot_preview1Z_args_sizes_get(W* w, u32 argc, u32 size) { wr32(argc, 1); wr32(size, 8); return 0; }
u32 Z_wasi_snapshot_preview1Z_args_get(W* w, u32 argv, u32 buf) { memcpy(mem() + buf, "trealla", 8); wr32(argv, buf); return 0; }
u32 Z_wasi_snapshot_preview1Z_environ_sizes_get(W* w, u32 count, u32 size) { wr32(count, 0); wr32(size, 0); return 0; }
u32 Z_wasi_snapshot_preview1Z_environ_get(W* w, u32 env, u32 buf) { return 0; }
u32 Z_wasi_snapshot_preview1Z_clock_time_get(W* w, u32 id, u64 precision, u32 out) {
  struct timespec ts;
  clock_gettime(id == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
  wr64(out, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
  return 0;
}
u32 Z_wasi_snapshot_preview1Z_fd_write(W* w, u32 fd, u32 iovs, u32 count, u32 written) {
  uint32_t total = 0; /* the C stdio noise is discarded, as the CowWasm host discards it per query */
  for (uint32_t i = 0; i < count; i++) total += rd32(iovs + 8 * i + 4);
  wr32(written, total);
  return 0;
}
u32 Z_wasi_snapshot_preview1Z_fd_prestat_get(W* w, u32 fd, u32 out) { return EBADF_; }
u32 Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(W* w, u32 fd, u32 p, u32 n) { return EBADF_; }
u32 Z_wasi_snapshot_preview1Z_fd_close(W* w, u32 fd) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_fdstat_get(W* w, u32 fd, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(W* w, u32 fd, u32 flags) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_filestat_get(W* w, u32 fd, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_pread(W* w, u32 fd, u32 iovs, u32 n, u64 off, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_read(W* w, u32 fd, u32 iovs, u32 n, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_readdir(W* w, u32 fd, u32 buf, u32 len, u64 cookie, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_fd_seek(W* w, u32 fd, u64 off, u32 whence, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_create_directory(W* w, u32 fd, u32 p, u32 n) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_filestat_get(W* w, u32 fd, u32 f, u32 p, u32 n, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_open(W* w, u32 fd, u32 df, u32 p, u32 n, u32 of, u64 rb, u64 ri, u32 ff, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_readlink(W* w, u32 fd, u32 p, u32 n, u32 b, u32 bl, u32 out) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_remove_directory(W* w, u32 fd, u32 p, u32 n) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_rename(W* w, u32 fd, u32 p, u32 n, u32 fd2, u32 p2, u32 n2) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_path_unlink_file(W* w, u32 fd, u32 p, u32 n) { return ENOSYS_; }
u32 Z_wasi_snapshot_preview1Z_poll_oneoff(W* w, u32 in, u32 out, u32 n, u32 events) { return ENOSYS_; }
void Z_wasi_snapshot_preview1Z_proc_exit(W* w, u32 code) {
  fprintf(stderr, "stock-trealla: the guest called proc_exit(%u)\n", code);
  exit(3);
}

/* ---- the driver ---- */
static u32 alloc(u32 size, u32 align) {
  u32 p = Z_tplZ_canonical_abi_realloc(&g_inst, 0, 0, align, size);
  if (p == 0) { fprintf(stderr, "stock-trealla: guest allocation failed\n"); exit(3); }
  return p;
}
static void release(u32 p, u32 size, u32 align) { Z_tplZ_canonical_abi_free(&g_inst, p, size, align); }

/* js_ask("user:(\nGOAL\n)"). with \ " newline and tab escaped, as PrologInterpreter sends it. */
static char* ask_text(const char* goal, size_t* length) {
  size_t n = strlen(goal);
  char* text = malloc(4 * n + 64);
  size_t at = 0;
  at += (size_t)sprintf(text, "js_ask(\"user:(\\n");
  for (size_t i = 0; i < n; i++) {
    char c = goal[i];
    if (c == '\\' || c == '"') { text[at++] = '\\'; text[at++] = c; }
    else if (c == '\n') { text[at++] = '\\'; text[at++] = 'n'; }
    else if (c == '\t') { text[at++] = '\\'; text[at++] = 't'; }
    else text[at++] = c;
  }
  at += (size_t)sprintf(text + at, "\\n)\").");
  *length = at;
  return text;
}

/* Runs GOAL to its first answer and closes it; returns 1 on "success" (the JSON status). Exits on a trap. */
static int query_once(u32 pl, const char* goal) {
  wasm_rt_trap_t trap = wasm_rt_impl_try();
  if (trap != WASM_RT_TRAP_NONE) {
    fprintf(stderr, "stock-trealla: trap %s in %s\n", wasm_rt_strerror(trap), goal);
    exit(3);
  }
  size_t length;
  char* text = ask_text(goal, &length);
  u32 g = alloc((u32)length + 1, 1);
  memcpy(mem() + g, text, length + 1);
  free(text);
  u32 slot = alloc(4, 4);
  Z_tplZ_pl_capture(&g_inst, pl);
  u32 more = Z_tplZ_pl_query(&g_inst, pl, g, slot, 0);
  u32 subquery = more ? rd32(slot) : 0;
  release(g, (u32)length + 1, 1);
  release(slot, 4, 4);
  u32 slots = alloc(16, 4);
  Z_tplZ_pl_capture_read(&g_inst, pl, slots, slots + 4, slots + 8, slots + 12);
  u32 at = rd32(slots), n = rd32(slots + 4);
  int success = 0;
  const char* status = "\"status\":\"success\"";
  for (u32 i = 0; n >= strlen(status) && i + strlen(status) <= n; i++) {
    if (memcmp(mem() + at + i, status, strlen(status)) == 0) { success = 1; break; }
  }
  Z_tplZ_pl_capture_free(&g_inst, pl);
  release(slots, 16, 4);
  if (more == 1) Z_tplZ_pl_done(&g_inst, subquery);
  return success;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: stock-trealla PROGRAM_FILE BLOCKS TESTX_PER_BLOCK QUEENS_PER_BLOCK QUEENS_GOAL\n");
    return 2;
  }
  FILE* f = fopen(argv[1], "rb");
  if (f == NULL) { perror(argv[1]); return 2; }
  static char program[1 << 16];
  size_t read = fread(program, 1, sizeof program - 1, f);
  fclose(f);
  program[read] = 0;
  int blocks = atoi(argv[2]), testx = atoi(argv[3]), queens = atoi(argv[4]);
  const char* queens_goal = argv[5];

  wasm_rt_init();
  Z_tpl_init_module();
  Z_tpl_instantiate(&g_inst, &g_host, &g_wasi);
  u32 pl = Z_tplZ_pl_global(&g_inst);
  Z_tplZ_set_opt(&g_inst, pl, 1);

  /* user:'$load_chars'("PROGRAM") — the program text goes in as a Prolog string. */
  size_t n = strlen(program);
  char* consult = malloc(4 * n + 64);
  size_t at = (size_t)sprintf(consult, "user:'$load_chars'(\"");
  for (size_t i = 0; i < n; i++) {
    char c = program[i];
    if (c == '\\' || c == '"') { consult[at++] = '\\'; consult[at++] = c; }
    else if (c == '\n') { consult[at++] = '\\'; consult[at++] = 'n'; }
    else consult[at++] = c;
  }
  sprintf(consult + at, "\")");
  if (!query_once(pl, consult)) { fprintf(stderr, "stock-trealla: consulting the program failed\n"); return 3; }
  free(consult);
  if (!query_once(pl, "test(X)") || !query_once(pl, queens_goal)) {
    fprintf(stderr, "stock-trealla: a warm-up query failed\n");
    return 3;
  }

  for (int b = 0; b < blocks; b++) {
    double start = now_ms();
    for (int i = 0; i < testx; i++) if (!query_once(pl, "test(X)")) return 3;
    double testx_ms = now_ms() - start;
    start = now_ms();
    for (int i = 0; i < queens; i++) if (!query_once(pl, queens_goal)) return 3;
    double queens_ms = now_ms() - start;
    printf("block %d testx_us %.3f queens_ms %.3f\n", b, testx_ms * 1000.0 / testx, queens_ms / queens);
    fflush(stdout);
  }
  Z_tpl_free(&g_inst);
  wasm_rt_free();
  return 0;
}
