// cnuma.h: the C shim under pagestorm.
//
// Everything Swift cannot import directly lives here: libnuma (behind
// numa_available()), the CPU_SET macros, sched_getcpu through rseq, thread
// affinity, a cheap cycle counter and a CPU pause hint. Swift code calls the
// cnuma_* functions only; no libnuma symbol is visible above this header.
#ifndef PAGESTORM_CNUMA_H
#define PAGESTORM_CNUMA_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- hot helpers (static inline so Swift/LLVM can inline them) ----

/// Spin-wait hint (`pause` on x86, `yield` on arm64).
static inline void cnuma_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/// A raw cycle counter: rdtsc on x86-64, cntvct_el0 on arm64, the monotonic
/// clock in nanoseconds elsewhere. Not serialising; calibrate before use.
uint64_t cnuma_cycles_slow(void);
static inline uint64_t cnuma_cycles(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return cnuma_cycles_slow();
#endif
}

/// Offset of glibc's registered `struct rseq` from the thread pointer, or 0
/// when rseq is not registered (then cnuma_current_cpu() calls sched_getcpu()).
extern long cnuma_rseq_cpu_offset;
int cnuma_sched_getcpu(void);

/// The CPU this thread runs on now: what glibc's sched_getcpu() returns,
/// read inline from the kernel-maintained rseq area (~1 ns) when glibc
/// registered one, else through sched_getcpu().
static inline int cnuma_current_cpu(void) {
#if defined(__x86_64__)
    long off = cnuma_rseq_cpu_offset;
    if (__builtin_expect(off != 0, 1)) {
        const char *tp;
        __asm__("mov %%fs:0, %0" : "=r"(tp));
        int cpu = *(volatile const int *)(tp + off);
        if (__builtin_expect(cpu >= 0, 1)) return cpu;
    }
#endif
    return cnuma_sched_getcpu();
}

/// Opaque to the optimiser: consumes a value (benchmarks' black hole) and
/// returns its argument unchanged, so results cannot be computed away or
/// moved across clock reads.
uint64_t cnuma_blackhole(uint64_t value);

// ---- set-up (call once) ----

/// Resolves the rseq offset and silences libnuma's stderr output. Idempotent.
void cnuma_init(void);

/// Monotonic clock in nanoseconds.
uint64_t cnuma_monotonic_ns(void);

// ---- libnuma, guarded: every call below checks numa_available() first ----

/// numa_available() >= 0.
int cnuma_available(void);
/// numa_max_node() + 1, or 1 without libnuma support.
int cnuma_node_count(void);
/// numa_node_of_cpu(cpu), or 0.
int cnuma_node_of_cpu(int cpu);
/// numa_distance(a, b), or 10/20 without libnuma (0 when unknown).
int cnuma_distance(int a, int b);
/// numa_node_size64(node) in bytes, or -1.
long long cnuma_node_size(int node);
/// Number of configured CPUs (sysconf(_SC_NPROCESSORS_CONF)).
int cnuma_cpu_count(void);
/// numa_tonode_memory(); returns 0 on success, -1 without libnuma, -2 when
/// libnuma reported an error (its mbind failed).
int cnuma_bind_memory(void *addr, size_t len, int node);
/// The node that backs `addr` now (move_pages query), or -errno.
int cnuma_node_of_address(void *addr);
/// The memory policy covering `addr` (get_mempolicy with MPOL_F_ADDR): the
/// mode (0 default, 1 preferred, 2 bind, 3 interleave, 4 local, ...) or
/// -errno; the lowest node of its node mask and how many nodes it holds.
int cnuma_policy_of_address(void *addr, int *first_node, int *node_count);
/// One move_pages query for `count` pages: status[i] is the node backing
/// pages[i], or -errno (-ENOENT: not faulted in). Returns 0 or -errno.
int cnuma_nodes_of_pages(void **pages, int count, int *status);
/// madvise(MADV_POPULATE_WRITE): faults the range in writable without
/// writing to it (Linux 5.14+). Returns 0 or -errno.
int cnuma_populate_write(void *addr, size_t len);
/// Count of numa_warn/numa_error calls that were swallowed.
int cnuma_swallowed_messages(void);

// ---- affinity (CPU_SET macros live here only) ----

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int cnuma_pin_current_thread(int cpu);
/// Pins the calling thread to a set of CPUs. Returns 0 or an errno value.
int cnuma_pin_current_thread_set(const int *cpus, int count);
/// Number of CPUs in the calling thread's affinity mask, or -errno.
int cnuma_current_affinity_count(void);

#ifdef __cplusplus
}
#endif
#include "cnuma_policy.h" // memory policy syscalls (pagestorm fault-pages)

#endif
