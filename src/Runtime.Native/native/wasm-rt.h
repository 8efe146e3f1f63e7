/*
 * CowWasm's replacement for wabt's wasm-rt.h (API of wabt 1.0.32, our own implementation in cowwasm-rt.c).
 * Differences from wabt's runtime, on purpose:
 *  - trap target, exception target and current instance are thread-local; the stack floor (no depth count) lives
 *    in the instance (cw_instance_state_t, the first member of every instance struct), so a function prologue
 *    reaches them through its `instance` argument instead of thread-local storage;
 *  - bounds checks: built with CW_GUARD_PAGES, loads and stores are not checked in software — linear memory lives in
 *    a reservation of CW_GUARD_RESERVATION bytes, PROT_NONE beyond its live length, and the process's one chaining
 *    SIGSEGV/SIGBUS handler (cowwasm-signals.c) turns a fault there into an out-of-bounds trap. Without it every
 *    access is bounds-checked (WASM_RT_MEMCHECK_SIGNAL_HANDLER 0). Bulk operations are range-checked either way;
 *  - linear memory is allocated and grown by the host (the .NET memory engine), inside a reservation that
 *    never moves; the runtime only records data/size;
 *  - the prologue also checks the native stack pointer against the thread's stack bounds, and a host thread can
 *    interrupt a running guest (cw_instance_state_t.interrupt): function entries and loop back-edges trap.
 */
#ifndef WASM_RT_H_
#define WASM_RT_H_

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define wasm_rt_memcpy __builtin_memcpy
#define wasm_rt_unreachable __builtin_unreachable
#define WASM_RT_NO_RETURN __attribute__((noreturn))

#define WASM_RT_SKIP_SIGNAL_RECOVERY 1
#define WASM_RT_SIGNAL_RECOVERY_SUPPORTED 0
#ifdef CW_GUARD_PAGES
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 1
#else
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#endif
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#define WASM_RT_MERGED_OOB_AND_EXHAUSTION_TRAPS 0

/* A guard-page memory's reservation: a 32-bit address plus a 32-bit offset stays below 2^33, and the widest access
   (8 bytes) ends within the 64 KiB past it. Keep in sync with WasmInstance.GuardReservationBytes. */
#define CW_GUARD_RESERVATION ((1ull << 33) + 65536u)

/* Per-instance runtime state, injected by the artifact builder as the first member of wasm2c's instance struct
   (RuntimeHooks.cs). Keep in sync with ArtifactAbi.InstanceState. */
typedef struct {
  uint32_t unused;    /* was the call depth; stack exhaustion is the floor check alone (kept for the layout) */
  uint32_t interrupt; /* set (non-zero) by another thread to stop the guest; cleared by the host between calls */
  uintptr_t floor;    /* the native stack floor of the running entry; UINTPTR_MAX once interrupted */
  uint32_t tables_changed; /* set by guest code that changes a table or drops a segment; cleared by the host */
  uint32_t reserved;
} cw_instance_state_t;

WASM_RT_NO_RETURN void cw_prologue_trap(cw_instance_state_t* state);
WASM_RT_NO_RETURN void cw_interrupted(void);

/* Replaces wasm2c's FUNC_PROLOGUE/EPILOGUE (no thread-local access, no depth count): one load and one compare trap
   on the native stack reaching the floor (cw_enter sets it a margin above the stack's end) and on an interruption
   (which sets the floor to UINTPTR_MAX) — what Wasmtime's stack-limit check and epoch check do, in one compare.
   Nothing runs on return. */
#define CW_FUNC_PROLOGUE(inst)                                                                    \
  if (UNLIKELY((uintptr_t)__builtin_frame_address(0) <                                            \
               __atomic_load_n(&(inst)->cw_state.floor, __ATOMIC_RELAXED)))                       \
    cw_prologue_trap(&(inst)->cw_state);
#define CW_FUNC_EPILOGUE(inst) ((void)0)
/* Before every table mutation and segment drop (RuntimeHooks): tells the host that the instance's tables or dropped
   segments differ from the state it last captured or restored. A comma operand, so it fits in any expression. */
#define CW_MARK_TABLES(inst) ((inst)->cw_state.tables_changed = 1)
/* At every loop back-edge: an interruption stops loops that make no calls too. */
#define CW_LOOP_POLL(inst) \
  if (UNLIKELY(__atomic_load_n(&(inst)->cw_state.interrupt, __ATOMIC_RELAXED))) cw_interrupted();

typedef enum {
  WASM_RT_TRAP_NONE,
  WASM_RT_TRAP_OOB,
  WASM_RT_TRAP_INT_OVERFLOW,
  WASM_RT_TRAP_DIV_BY_ZERO,
  WASM_RT_TRAP_INVALID_CONVERSION,
  WASM_RT_TRAP_UNREACHABLE,
  WASM_RT_TRAP_CALL_INDIRECT,
  WASM_RT_TRAP_UNCAUGHT_EXCEPTION,
  WASM_RT_TRAP_EXHAUSTION,
} wasm_rt_trap_t;

typedef enum {
  WASM_RT_I32,
  WASM_RT_I64,
  WASM_RT_F32,
  WASM_RT_F64,
  WASM_RT_FUNCREF,
  WASM_RT_EXTERNREF,
} wasm_rt_type_t;

typedef void (*wasm_rt_function_ptr_t)(void);

typedef struct {
  uint32_t func_type;
  wasm_rt_function_ptr_t func;
  void* module_instance;
} wasm_rt_funcref_t;

static const wasm_rt_funcref_t wasm_rt_funcref_null_value = {0, NULL, NULL};

typedef void* wasm_rt_externref_t;
static const wasm_rt_externref_t wasm_rt_externref_null_value = NULL;

typedef struct {
  uint8_t* data;
  uint32_t pages, max_pages;
  uint32_t size;
  /* CowWasm: the store barrier's dirty map (one byte per 4 KiB page of the whole reservation), or NULL when no
     store-barrier tracker watches this memory. Keep in sync with ArtifactAbi.WasmRtMemory. */
  uint8_t* dirty;
} wasm_rt_memory_t;

/* CowWasm store barrier: marks the pages of [addr, addr + len) written. Called after the bounds check passed, so
   addr + len <= size <= the reservation, which the map covers. Out of line (cowwasm-rt.c): LOAD_DATA calls it once
   per data segment, and Trealla's instantiate has 68,345 of them in one function, which an inlined loop made gcc
   take several times as long over. */
void cw_mark(wasm_rt_memory_t* mem, uint64_t addr, uint64_t len);

/* The same for one store instruction (at most 8 bytes, so at most two pages): inline and loop-free, because it
   sits at every store site. */
static inline void cw_mark_store(wasm_rt_memory_t* mem, uint64_t addr, uint64_t len) {
  uint8_t* map = mem->dirty;
  if (map != NULL) {
    uint64_t page = addr >> 12;
    map[page] = 1;
    /* A second page only for a store that crosses into it (len is a constant at every site: a 1-byte store has no test). */
    if (len > 1 && UNLIKELY((addr & 4095) > 4096 - len)) {
      map[page + 1] = 1;
    }
  }
}

/* CowWasm value-aware memory.fill: a page whose bytes in the range already equal the value is only read, so it is
   neither written (no copy-on-write fault, no private copy) nor marked; other pages are memset and marked. Invisible
   to the guest without shared memories. Bounds are checked by the caller. */
static inline void cw_fill(wasm_rt_memory_t* mem, uint32_t d, uint32_t val, uint32_t n) {
  uint8_t value = (uint8_t)val;
  uint64_t at = d, end = (uint64_t)d + n;
  while (at < end) {
    uint64_t stop = (at | 4095) + 1;
    if (stop > end) stop = end;
    uint8_t* p = mem->data + at;
    size_t len = (size_t)(stop - at);
    if (p[0] != value || (len > 1 && memcmp(p, p + 1, len - 1) != 0)) {
      memset(p, value, len);
      if (mem->dirty != NULL) mem->dirty[at >> 12] = 1;
    }
    at = stop;
  }
}

typedef struct {
  wasm_rt_funcref_t* data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_funcref_table_t;

typedef struct {
  wasm_rt_externref_t* data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_externref_table_t;

void wasm_rt_init(void);
bool wasm_rt_is_initialized(void);
void wasm_rt_free(void);
WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t);
const char* wasm_rt_strerror(wasm_rt_trap_t trap);
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...);
uint32_t wasm_rt_register_tag(uint32_t size);
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* values);
WASM_RT_NO_RETURN void wasm_rt_throw(void);

#define WASM_RT_UNWIND_TARGET jmp_buf
WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void);
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* target);
uint32_t wasm_rt_exception_tag(void);
uint32_t wasm_rt_exception_size(void);
void* wasm_rt_exception(void);
#define WASM_RT_SETJMP(buf) setjmp(buf)
#define wasm_rt_try(target) WASM_RT_SETJMP(target)

void wasm_rt_allocate_memory(wasm_rt_memory_t*, uint32_t initial_pages, uint32_t max_pages);
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t*, uint32_t pages);
void wasm_rt_free_memory(wasm_rt_memory_t*);
void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t*, uint32_t elements, uint32_t max_elements);
void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t*);
void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t*, uint32_t elements, uint32_t max_elements);
void wasm_rt_free_externref_table(wasm_rt_externref_table_t*);
uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t*, uint32_t delta, wasm_rt_funcref_t init);
uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t*, uint32_t delta, wasm_rt_externref_t init);

#ifdef __cplusplus
}
#endif
#endif /* WASM_RT_H_ */
