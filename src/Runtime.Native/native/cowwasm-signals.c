/* CowWasm's guard-page fault handler: libcowwasm-signals.so, built once per runtime version and loaded once per
 * process (GuardPages.cs), never unloaded. Not part of any artifact.
 *
 * Guard-page artifacts do not bounds-check loads and stores: their linear memory lives in a reservation large enough
 * that no 32-bit address plus offset leaves it, PROT_NONE beyond the live length. An access there raises SIGSEGV
 * (SIGBUS past the end of a file mapping). This handler claims such a fault only when
 *   1. the faulting thread is running guest code — its `target` is set by the trampoline's cw_enter, cleared for host
 *      calls and restored by cw_leave — and
 *   2. the faulting address lies in a registered guest reservation;
 * it then unwinds to that trampoline (an out-of-bounds trap). Every other signal goes to the handler that was
 * installed before ours — the .NET runtime's, which turns faults in managed code into NullReferenceException and
 * reports everything else (stack overflow, native crashes) as it always does.
 *
 * Async-signal safety: the handler touches only initial-exec thread-local storage (no lazy allocation), the registry
 * (plain loads under a per-slot sequence counter), pthread_sigmask and longjmp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CWS_EXPORT __attribute__((visibility("default")))
#define CWS_SLOTS 16384            /* guest reservations registered at once */
#define CWS_ALT_STACK (64 * 1024)  /* for threads that have no alternate signal stack yet */

typedef struct {
  jmp_buf* target; /* first member: artifacts see this struct as jmp_buf* (cw_host_t.guard_thread) */
  int alt_stack_checked;
} cws_thread_t;

static __thread cws_thread_t cws_self __attribute__((tls_model("initial-exec")));

typedef struct {
  uint32_t seq; /* odd while the slot is being written */
  uintptr_t start, end;
} cws_slot_t;

static cws_slot_t cws_slots[CWS_SLOTS];
static uint32_t cws_high_water; /* slots [0, high water) may be in use */
static pthread_mutex_t cws_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction cws_prev_segv, cws_prev_bus;
static int cws_installed;
static uint64_t cws_claimed; /* faults turned into traps, for tests and diagnostics */

static int cws_in_guest_memory(uintptr_t address) {
  uint32_t count = __atomic_load_n(&cws_high_water, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < count; i++) {
    cws_slot_t* slot = &cws_slots[i];
    for (;;) {
      uint32_t before = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
      uintptr_t start = __atomic_load_n(&slot->start, __ATOMIC_RELAXED);
      uintptr_t end = __atomic_load_n(&slot->end, __ATOMIC_RELAXED);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if ((before & 1) == 0 && __atomic_load_n(&slot->seq, __ATOMIC_RELAXED) == before) {
        if (address >= start && address < end) return 1;
        break;
      }
    }
  }
  return 0;
}

static void cws_chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction* prev = sig == SIGSEGV ? &cws_prev_segv : &cws_prev_bus;
  if (prev->sa_flags & SA_SIGINFO) {
    prev->sa_sigaction(sig, info, context);
  } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
    /* Nobody handled it before us: restore the default action and return, so the faulting instruction runs again
       and the process dies of the signal, as it would have without us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
  } else {
    prev->sa_handler(sig);
  }
}

static void cws_handler(int sig, siginfo_t* info, void* context) {
  jmp_buf* target = cws_self.target;
  if (target != NULL && cws_in_guest_memory((uintptr_t)info->si_addr)) {
    __atomic_add_fetch(&cws_claimed, 1, __ATOMIC_RELAXED);
    /* longjmp does not restore the signal mask: unblock what the kernel blocked for this handler, or the next guard
       fault on this thread would find SIGSEGV blocked and kill the process. */
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, sig);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    longjmp(*target, 1 /* WASM_RT_TRAP_OOB */);
  }
  cws_chain(sig, info, context);
}

/* Installs the handler for SIGSEGV and SIGBUS once, keeping the previous ones to chain to. 0, or an errno. */
CWS_EXPORT int cws_install(void) {
  pthread_mutex_lock(&cws_lock);
  int result = 0;
  if (!cws_installed) {
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = cws_handler;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGSEGV, &ours, &cws_prev_segv) != 0) {
      result = errno;
    } else if (sigaction(SIGBUS, &ours, &cws_prev_bus) != 0) {
      result = errno;
      sigaction(SIGSEGV, &cws_prev_segv, NULL);
    } else {
      cws_installed = 1;
    }
  }
  pthread_mutex_unlock(&cws_lock);
  return result;
}

static pthread_key_t cws_alt_stack_key;
static pthread_once_t cws_alt_stack_once = PTHREAD_ONCE_INIT;

static void cws_free_alt_stack(void* stack) {
  stack_t off;
  memset(&off, 0, sizeof off);
  off.ss_flags = SS_DISABLE;
  sigaltstack(&off, NULL);
  munmap(stack, CWS_ALT_STACK);
}

static void cws_make_key(void) { pthread_key_create(&cws_alt_stack_key, cws_free_alt_stack); }

/* The calling thread's handler state (its first member is the trampoline target). On a thread's first call, makes
   sure the thread has an alternate signal stack (the .NET runtime gives its threads one; others get 64 KiB, freed at
   thread exit), so the handler never runs on a stack the guest exhausted. */
CWS_EXPORT jmp_buf** cws_thread(void) {
  cws_thread_t* self = &cws_self;
  if (!self->alt_stack_checked) {
    self->alt_stack_checked = 1;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
      void* stack = mmap(NULL, CWS_ALT_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (stack != MAP_FAILED) {
        stack_t alt;
        memset(&alt, 0, sizeof alt);
        alt.ss_sp = stack;
        alt.ss_size = CWS_ALT_STACK;
        if (sigaltstack(&alt, NULL) == 0) {
          pthread_once(&cws_alt_stack_once, cws_make_key);
          pthread_setspecific(cws_alt_stack_key, stack);
        } else {
          munmap(stack, CWS_ALT_STACK);
        }
      }
    }
  }
  return &self->target;
}

/* Registers [start, start + length) as a guest reservation. Returns the slot (for cws_unregister), or -1 when all
   CWS_SLOTS are in use. */
CWS_EXPORT int cws_register(uintptr_t start, uint64_t length) {
  pthread_mutex_lock(&cws_lock);
  int found = -1;
  for (uint32_t i = 0; i < CWS_SLOTS; i++) {
    if (cws_slots[i].end == 0) {
      found = (int)i;
      break;
    }
  }
  if (found >= 0) {
    cws_slot_t* slot = &cws_slots[found];
    __atomic_store_n(&slot->seq, slot->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&slot->start, start, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->end, start + length, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->seq, slot->seq + 1, __ATOMIC_RELEASE);
    if ((uint32_t)found >= cws_high_water) __atomic_store_n(&cws_high_water, (uint32_t)found + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&cws_lock);
  return found;
}

CWS_EXPORT void cws_unregister(int index) {
  if (index < 0 || index >= CWS_SLOTS) return;
  pthread_mutex_lock(&cws_lock);
  cws_slot_t* slot = &cws_slots[index];
  __atomic_store_n(&slot->seq, slot->seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&slot->start, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&slot->end, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&slot->seq, slot->seq + 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&cws_lock);
}

/* How many faults the handler has turned into traps since the process started. */
CWS_EXPORT uint64_t cws_claimed_faults(void) { return __atomic_load_n(&cws_claimed, __ATOMIC_RELAXED); }
