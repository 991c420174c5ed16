#define _GNU_SOURCE
#include "CKernels.h"

// The engine's parallel regions (Parallel.perform): a few iterations each, about a hundred per training
// step of a small model, most of them 100–500 µs long. Dispatch's concurrentPerform wakes a sleeping
// worker for each, and in a virtual machine that took 29 µs on average before the worker started its
// iteration, while the caller finished its own and waited. Here the workers, once started, poll for
// the next region for a while (CK_POOL_SPIN_MICROSECONDS) before they sleep on a condition variable,
// so a region that follows another closely starts on every core at once.
//
// A region is published in one 64-bit word, `claim`: generation (32 bits) | next iteration (16) |
// iterations (16). Every participant, the caller included, takes iterations by compare-and-swap on that
// word, so an iteration runs once, and only while its region is open: a worker that saw an older
// generation fails its swap. The function and context are written before the word that opens the
// region (release) and read after it (acquire); they change only after every iteration of the region
// has finished, which a successful swap proves has not happened. One region runs at a time: a caller
// that finds the pool busy (another thread's region, or a region's own iteration asking for another)
// runs its iterations itself, in order; so does a thread marked sharing (ck_parallel_set_sharing) while
// another thread is marked so too.
//
// The pool is started once, by the first call that asks for workers, and lives as long as the process.
// Should a thread fail to start, the pool runs with those that did, or, with none, every region on its
// caller. A fork() child would inherit the pool's state without its threads; the engine starts processes
// with posix_spawn only.

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("yield")
#else
#define PAUSE() ((void)0)
#endif

enum { MAX_WORKERS = 63 };

static struct {
    _Atomic uint64_t claim;
    _Atomic ptrdiff_t done;
    _Atomic(ck_iteration_function) function;
    _Atomic(void *) context;
    _Atomic int busy;
    _Atomic int sleepers;
    _Atomic int started;  // 0: not yet, 1: starting, 2: running (workers > 0), 3: no workers
    pthread_mutex_t lock;
    pthread_cond_t wake;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

int ck_cpus_allowed(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}

static _Thread_local int sharing;
static _Atomic int sharers;  // threads marked sharing, now

void ck_parallel_set_sharing(int on) {
    on = on != 0;
    if (on == sharing) return;
    atomic_fetch_add(&sharers, on ? 1 : -1);
    sharing = on;
}

static inline uint32_t generation_of(uint64_t claim) { return (uint32_t)(claim >> 32); }
static inline uint32_t next_of(uint64_t claim) { return (uint32_t)(claim >> 16) & 0xFFFF; }
static inline uint32_t count_of(uint64_t claim) { return (uint32_t)claim & 0xFFFF; }

/// Runs iterations of generation `generation` until none is left to take (or the region is another's).
static void take_iterations(uint32_t generation) {
    ck_iteration_function function = atomic_load_explicit(&pool.function, memory_order_relaxed);
    void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
    uint64_t claim = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        if (generation_of(claim) != generation || next_of(claim) >= count_of(claim)) return;
        if (atomic_compare_exchange_weak_explicit(&pool.claim, &claim, claim + (1u << 16), memory_order_acq_rel,
                                                  memory_order_acquire)) {
            function(context, next_of(claim));
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
            claim = atomic_load_explicit(&pool.claim, memory_order_acquire);
        }
    }
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *worker(void *unused) {
    (void)unused;
    // Generation 0 is the pool before its first region: that region, opened before this thread may
    // have run, is new to it.
    uint32_t seen = 0;
    for (;;) {
        // Poll for a new region, then sleep until one opens.
        double deadline = seconds() + CK_POOL_SPIN_MICROSECONDS * 1e-6;
        uint32_t generation;
        for (int polls = 1;; polls++) {
            generation = generation_of(atomic_load_explicit(&pool.claim, memory_order_acquire));
            if (generation != seen) break;
            PAUSE();
            if (polls % 256 == 0 && seconds() > deadline) {
                pthread_mutex_lock(&pool.lock);
                atomic_fetch_add(&pool.sleepers, 1);
                while ((generation = generation_of(atomic_load(&pool.claim))) == seen)
                    pthread_cond_wait(&pool.wake, &pool.lock);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.lock);
                break;
            }
        }
        seen = generation;
        take_iterations(generation);
    }
    return NULL;
}

/// Starts the workers once; 1 when there are any.
static int start(int workers) {
    int state = atomic_load_explicit(&pool.started, memory_order_acquire);
    if (state >= 2) return state == 2;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool.started, &expected, 1)) {
        while ((state = atomic_load_explicit(&pool.started, memory_order_acquire)) == 1) PAUSE();
        return state == 2;
    }
    int made = 0;
    workers = workers > MAX_WORKERS ? MAX_WORKERS : workers;
    for (int i = 0; i < workers; i++) {
        pthread_t thread;
        pthread_attr_t attributes;
        if (pthread_attr_init(&attributes) != 0) break;
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker, NULL);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        made++;
    }
    atomic_store_explicit(&pool.started, made > 0 ? 2 : 3, memory_order_release);
    return made > 0;
}

static void run_serially(ptrdiff_t iterations, ck_iteration_function function, void *context) {
    for (ptrdiff_t i = 0; i < iterations; i++) function(context, i);
}

void ck_parallel_run(ptrdiff_t iterations, int workers, ck_iteration_function function, void *context) {
    if (iterations <= 0) return;
    int idle = 0;
    if (iterations == 1 || (sharing && atomic_load_explicit(&sharers, memory_order_relaxed) > 1)
        || workers < 1 || iterations > 0xFFFF || !start(workers)
        || !atomic_compare_exchange_strong(&pool.busy, &idle, 1)) {
        run_serially(iterations, function, context);
        return;
    }
    atomic_store_explicit(&pool.function, function, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint32_t generation = generation_of(atomic_load_explicit(&pool.claim, memory_order_relaxed)) + 1;
    atomic_store_explicit(&pool.claim, ((uint64_t)generation << 32) | (uint64_t)iterations, memory_order_seq_cst);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    take_iterations(generation);
    // Every iteration is taken; wait for those still running on workers (yielding if one was descheduled).
    for (long polls = 1; atomic_load_explicit(&pool.done, memory_order_acquire) < iterations; polls++) {
        PAUSE();
        if (polls % 4096 == 0) sched_yield();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}
