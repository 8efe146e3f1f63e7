/* CowWasm runtime implementation: thread-local trap state, host-owned memory, tables, func types. */
#define _GNU_SOURCE
#include "cowwasm-rt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* Bytes of native stack kept free below the frame address a prologue checks. A function allocates its frame before
   its body's check runs, so a function that passed its check (its frame, up to CW_MAX_FRAME, lies below that address)
   may call one more, which allocates another frame before it can check: two of the module's largest frames (measured
   by gcc -fstack-usage at build time, passed as CW_MAX_FRAME), plus 256 KiB for the runtime, libc and host calls. */
#ifndef CW_MAX_FRAME
#error "CW_MAX_FRAME (the module's largest native stack frame) must be defined by the artifact builder"
#endif
#define CW_STACK_MARGIN (256 * 1024 + 2 * (CW_MAX_FRAME))

__thread void* cw_current_ctx;
const cw_host_t* cw_host;

static __thread jmp_buf* cw_trap_target;
static __thread jmp_buf* cw_unwind_target;
static __thread uintptr_t cw_thread_floor; /* computed once per thread from its stack bounds */

static uintptr_t cw_compute_floor(void) {
  pthread_attr_t attr;
  void* low = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
  }
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  if (low == NULL || size == 0 || here <= (uintptr_t)low) {
    /* Unknown bounds: no guest frame may run on this thread (every prologue traps with stack exhaustion) rather than
       guess a floor that could lie below the stack. */
    return UINTPTR_MAX - 1;
  }
  /* Never below the stack: with less than the margin left, the floor is above the current frame and the first guest
     prologue traps (stack exhausted) instead of running off the end. */
  return (uintptr_t)low + CW_STACK_MARGIN;
}

void cw_enter(cw_saved_t* saved, void* ctx, jmp_buf* target, cw_instance_state_t* state) {
  saved->trap_target = cw_trap_target;
  saved->unwind_target = cw_unwind_target;
  saved->ctx = cw_current_ctx;
  saved->state = state;
  saved->floor = state->floor;
  if (cw_thread_floor == 0) {
    cw_thread_floor = cw_compute_floor();
  }
  /* An interrupter sets `interrupt` before the floor; this order leaves the floor at UINTPTR_MAX either way. */
  __atomic_store_n(&state->floor, cw_thread_floor, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&state->interrupt, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&state->floor, UINTPTR_MAX, __ATOMIC_SEQ_CST);
  }
  cw_trap_target = target;
  cw_unwind_target = target;
  cw_current_ctx = ctx;
#ifdef CW_GUARD_PAGES
  saved->guard = cw_host->guard_thread();
  saved->guard_target = *saved->guard;
  *saved->guard = target; /* from here until cw_leave, a fault in a guest reservation is this entry's OOB trap */
#else
  saved->guard = NULL;
  saved->guard_target = NULL;
#endif
  /* The first guest function allocates its frame before its own check: refuse to enter at all when the stack is
     already past the floor (a small thread stack, or a deep host → guest re-entry). */
  if ((uintptr_t)__builtin_frame_address(0) < cw_thread_floor) {
    wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
  }
}

void cw_leave(const cw_saved_t* saved) {
  if (saved->guard != NULL) {
    *saved->guard = saved->guard_target;
  }
  cw_trap_target = saved->trap_target;
  cw_unwind_target = saved->unwind_target;
  cw_current_ctx = saved->ctx;
  cw_instance_state_t* state = saved->state;
  __atomic_store_n(&state->floor, saved->floor, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&state->interrupt, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&state->floor, UINTPTR_MAX, __ATOMIC_SEQ_CST); /* an outer entry of the same instance stops too */
  }
}

/* Host calls run with the fault handler's target cleared (see cowwasm-rt.h). */
#ifdef CW_GUARD_PAGES
#define CW_HOST_CALL(call)                    \
  do {                                        \
    jmp_buf** guard_ = cw_host->guard_thread(); \
    jmp_buf* held_ = *guard_;                 \
    *guard_ = NULL;                           \
    int code_ = (call);                       \
    *guard_ = held_;                          \
    return code_;                             \
  } while (0)
#else
#define CW_HOST_CALL(call) return (call)
#endif

int cw_call_import(void* ctx, uint32_t index, const uint64_t* args, uint64_t* results) {
  CW_HOST_CALL(cw_host->call_import(ctx, index, args, results));
}

static int cw_host_allocate(uint32_t initial, uint32_t max, uint8_t** data, uint8_t** dirty) {
  CW_HOST_CALL(cw_host->allocate_memory(cw_current_ctx, initial, max, data, dirty));
}

static int cw_host_grow(uint32_t old, uint32_t delta, uint32_t max) {
  CW_HOST_CALL(cw_host->grow_memory(cw_current_ctx, old, delta, max));
}

void cw_prologue_trap(cw_instance_state_t* state) {
  wasm_rt_trap(__atomic_load_n(&state->interrupt, __ATOMIC_RELAXED) ? (wasm_rt_trap_t)CW_STATUS_INTERRUPTED
                                                                     : WASM_RT_TRAP_EXHAUSTION);
}

void cw_interrupted(void) { wasm_rt_trap((wasm_rt_trap_t)CW_STATUS_INTERRUPTED); }

void wasm_rt_init(void) {}
bool wasm_rt_is_initialized(void) { return true; }
void wasm_rt_free(void) {}

void wasm_rt_trap(wasm_rt_trap_t code) {
  if (cw_trap_target == NULL) {
    /* A trap outside any trampoline is a bug in the glue: there is nowhere safe to unwind to. */
    fprintf(stderr, "cowwasm: trap %d outside a trampoline\n", (int)code);
    abort();
  }
  longjmp(*cw_trap_target, (int)code);
}

const char* wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
    case WASM_RT_TRAP_NONE: return "no error";
    case WASM_RT_TRAP_OOB: return "out of bounds memory or table access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call signature mismatch";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
  }
  return "unknown trap";
}

/* ---- function types: interned signatures, ids stable for the process (per artifact). ---- */
typedef struct {
  uint32_t params, results;
  wasm_rt_type_t* types;
} cw_func_type_t;

static pthread_mutex_t cw_types_lock = PTHREAD_MUTEX_INITIALIZER;
static cw_func_type_t* cw_types;
static uint32_t cw_type_count, cw_type_capacity;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  uint32_t n = params + results;
  wasm_rt_type_t* types = malloc(n ? n * sizeof *types : 1);
  if (types == NULL) abort();
  va_list args;
  va_start(args, results);
  for (uint32_t i = 0; i < n; i++) types[i] = (wasm_rt_type_t)va_arg(args, int);
  va_end(args);

  pthread_mutex_lock(&cw_types_lock);
  for (uint32_t id = 0; id < cw_type_count; id++) {
    cw_func_type_t* t = &cw_types[id];
    if (t->params == params && t->results == results && memcmp(t->types, types, n * sizeof *types) == 0) {
      pthread_mutex_unlock(&cw_types_lock);
      free(types);
      return id + 1;
    }
  }
  if (cw_type_count == cw_type_capacity) {
    cw_type_capacity = cw_type_capacity ? 2 * cw_type_capacity : 16;
    cw_types = realloc(cw_types, cw_type_capacity * sizeof *cw_types);
    if (cw_types == NULL) abort();
  }
  cw_types[cw_type_count] = (cw_func_type_t){params, results, types};
  uint32_t id = ++cw_type_count;
  pthread_mutex_unlock(&cw_types_lock);
  return id; /* 0 is never a valid id: null funcrefs have func_type 0 */
}

/* ---- exceptions (Wasm exception-handling proposal), thread-local ---- */
#define CW_MAX_EXCEPTION_SIZE 256
static uint32_t cw_tag_count;
static __thread uint32_t cw_exc_tag, cw_exc_size;
static __thread uint8_t cw_exc_data[CW_MAX_EXCEPTION_SIZE];

uint32_t wasm_rt_register_tag(uint32_t size) {
  (void)size;
  return __atomic_add_fetch(&cw_tag_count, 1, __ATOMIC_RELAXED);
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* values) {
  if (size > CW_MAX_EXCEPTION_SIZE) wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
  cw_exc_tag = tag;
  cw_exc_size = size;
  if (size) memcpy(cw_exc_data, values, size);
}

void wasm_rt_throw(void) {
  if (cw_unwind_target == NULL) abort();
  longjmp(*cw_unwind_target, WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void) { return cw_unwind_target; }
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* target) { cw_unwind_target = target; }
uint32_t wasm_rt_exception_tag(void) { return cw_exc_tag; }
uint32_t wasm_rt_exception_size(void) { return cw_exc_size; }
void* wasm_rt_exception(void) { return cw_exc_data; }

/* ---- linear memory: owned by the host ---- */
#define CW_WASM_PAGE 65536u

__attribute__((noinline)) void cw_mark(wasm_rt_memory_t* mem, uint64_t addr, uint64_t len) {
  uint8_t* map = mem->dirty;
  if (map != NULL && len != 0) {
    uint64_t last = (addr + len - 1) >> 12;
    for (uint64_t page = addr >> 12; page <= last; page++) map[page] = 1;
  }
}

void wasm_rt_allocate_memory(wasm_rt_memory_t* memory, uint32_t initial_pages, uint32_t max_pages) {
  uint8_t* data = NULL;
  uint8_t* dirty = NULL;
  if (cw_host == NULL || cw_host_allocate(initial_pages, max_pages, &data, &dirty) != 0) {
    wasm_rt_trap((wasm_rt_trap_t)CW_STATUS_OOM);
  }
  memory->data = data;
  memory->dirty = dirty;
  memory->pages = initial_pages;
  memory->max_pages = max_pages;
  memory->size = initial_pages * CW_WASM_PAGE; /* wasm_rt_memory_t.size is 32-bit: 65535 pages at most */
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t* memory, uint32_t delta) {
  uint32_t old = memory->pages;
  if (delta == 0) return old;
  uint64_t wanted = (uint64_t)old + delta;
  /* 65536 pages would make the 32-bit size wrap: refuse it like any limit. */
  if (wanted > memory->max_pages || wanted > 65535u) return (uint32_t)-1;
  if (cw_host_grow(old, delta, memory->max_pages) != 0) return (uint32_t)-1;
  memory->pages = (uint32_t)wanted;
  memory->size = (uint32_t)wanted * CW_WASM_PAGE;
  return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t* memory) {
  /* The host owns the mapping and releases it when the instance is disposed. */
  memory->data = NULL;
  memory->size = 0;
  memory->pages = 0;
  memory->dirty = NULL;
}

/* ---- tables ---- */
#define CW_DEFINE_TABLE(type)                                                                              \
  void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t* table, uint32_t elements, uint32_t max) { \
    table->data = calloc(elements ? elements : 1, sizeof(wasm_rt_##type##_t));                             \
    if (table->data == NULL) wasm_rt_trap((wasm_rt_trap_t)CW_STATUS_OOM);                                  \
    table->size = elements;                                                                                \
    table->max_size = max;                                                                                 \
  }                                                                                                        \
  void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t* table) {                                      \
    free(table->data);                                                                                     \
    table->data = NULL;                                                                                    \
    table->size = 0;                                                                                       \
  }                                                                                                        \
  uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t* table, uint32_t delta,                    \
                                       wasm_rt_##type##_t init) {                                          \
    uint32_t old = table->size;                                                                            \
    uint64_t wanted = (uint64_t)old + delta;                                                               \
    if (wanted > table->max_size || wanted > (1u << 24)) return (uint32_t)-1;                              \
    if (delta == 0) return old;                                                                            \
    wasm_rt_##type##_t* data = realloc(table->data, wanted * sizeof(wasm_rt_##type##_t));                  \
    if (data == NULL) return (uint32_t)-1;                                                                 \
    for (uint32_t i = old; i < wanted; i++) data[i] = init;                                                \
    table->data = data;                                                                                    \
    table->size = (uint32_t)wanted;                                                                        \
    return old;                                                                                            \
  }

CW_DEFINE_TABLE(funcref)
CW_DEFINE_TABLE(externref)

/* ---- entry points every artifact exports ---- */
#define CW_ABI_VERSION 5 /* 2: artifacts carry cw_metadata (ArtifactMetadata.cs); 3: the store barrier (wasm_rt_memory_t.dirty);
                            4: cw_instance_state_t, cw_host_t.guard_thread, CW_STATUS_INTERRUPTED, cw_guard_pages;
                            5: cw_instance_state_t.tables_changed, cw_tables_size/capture/restore */

CW_EXPORT int cw_abi_version(void) { return CW_ABI_VERSION; }
CW_EXPORT void cw_set_host(const cw_host_t* host) { cw_host = host; }

#ifdef CW_GUARD_PAGES
/* Present only in guard-page artifacts: the loader gives their memories CW_GUARD_RESERVATION bytes of address space,
   registers them with the fault handler, and fills cw_host_t.guard_thread. */
CW_EXPORT const uint64_t cw_guard_pages = CW_GUARD_RESERVATION;
#endif
