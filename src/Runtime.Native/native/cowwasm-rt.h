/* CowWasm runtime: the part the per-module glue and the .NET host see. */
#ifndef COWWASM_RT_H_
#define COWWASM_RT_H_

#include "wasm-rt.h"

#define CW_EXPORT __attribute__((visibility("default")))

/* Status codes returned by every trampoline: 0 = returned normally, 1..8 = wasm_rt_trap_t, then: */
#define CW_STATUS_HOST_ERROR 100 /* a host function failed; the host kept the exception */
#define CW_STATUS_EXIT 101       /* proc_exit; the host kept the exit code */
#define CW_STATUS_OOM 102        /* the host could not allocate linear memory */
#define CW_STATUS_INTERRUPTED 103 /* another thread interrupted the guest (cw_instance_state_t.interrupt) */

/* Callbacks into the host. ctx is the per-instance context pointer the host chose. */
typedef struct {
  /* Maps `initial` Wasm pages (max `max`, UINT32_MAX if none) for the instance; fills *data, and *dirty with the
     store barrier's dirty map (NULL when the memory is not tracked that way). 0 = ok. */
  int (*allocate_memory)(void* ctx, uint32_t initial, uint32_t max, uint8_t** data, uint8_t** dirty);
  /* Grows by `delta` Wasm pages within `max`; returns 0 on success, nonzero when Wasm sees -1. */
  int (*grow_memory)(void* ctx, uint32_t old_pages, uint32_t delta, uint32_t max);
  /* Calls import `index` with argument/result slots; returns 0 or a CW_STATUS_* code. */
  int (*call_import)(void* ctx, uint32_t index, const uint64_t* args, uint64_t* results);
  /* Guard-page artifacts only: the calling thread's fault-handler state in libcowwasm-signals.so
     (cws_thread_t; its first member is the jump buffer the handler unwinds to, NULL while no guest code runs). */
  jmp_buf** (*guard_thread)(void);
} cw_host_t;

extern const cw_host_t* cw_host;

/* Per-thread state saved around one entry into Wasm (entries may nest via host calls). */
typedef struct {
  jmp_buf* trap_target;
  jmp_buf* unwind_target;
  void* ctx;
  cw_instance_state_t* state;
  uintptr_t floor;
  jmp_buf** guard; /* the thread's fault-handler target (guard-page artifacts), and what it held before */
  jmp_buf* guard_target;
} cw_saved_t;

extern __thread void* cw_current_ctx;
void cw_enter(cw_saved_t* saved, void* ctx, jmp_buf* target, cw_instance_state_t* state);
void cw_leave(const cw_saved_t* saved);

/* Calls into the host (imports, memory growth): guest code is not running meanwhile, so the fault handler must not
   claim a fault there (a host bug must crash as the host's, never unwind into the guest's trampoline). */
int cw_call_import(void* ctx, uint32_t index, const uint64_t* args, uint64_t* results);

/* Runs BODY inside a trap boundary; returns the trap/status code, or 0 when BODY finished. The boundary is a call
   (cw_enter/cw_leave live in another translation unit), so no guest access can move across it. */
#define CW_GUARDED(ctx, state, BODY)               \
  do {                                             \
    cw_saved_t cw_saved_;                          \
    jmp_buf cw_jb_;                                \
    int cw_code_ = setjmp(cw_jb_);                 \
    if (cw_code_ != 0) {                           \
      cw_leave(&cw_saved_);                        \
      return cw_code_;                             \
    }                                              \
    cw_enter(&cw_saved_, (ctx), &cw_jb_, (state)); \
    BODY;                                          \
    cw_leave(&cw_saved_);                          \
    return 0;                                      \
  } while (0)

/* Slot packing for arguments and results. */
static inline uint64_t cw_from_f32(float v) { uint32_t b; __builtin_memcpy(&b, &v, 4); return b; }
static inline uint64_t cw_from_f64(double v) { uint64_t b; __builtin_memcpy(&b, &v, 8); return b; }
static inline float cw_to_f32(uint64_t s) { uint32_t b = (uint32_t)s; float v; __builtin_memcpy(&v, &b, 4); return v; }
static inline double cw_to_f64(uint64_t s) { double v; __builtin_memcpy(&v, &s, 8); return v; }

#endif /* COWWASM_RT_H_ */
