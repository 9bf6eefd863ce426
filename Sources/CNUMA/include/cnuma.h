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

// ---- restartable sequences: per-CPU ownership of a slot (x86-64) ----
//
// A per-CPU slot is owned through one word: 0 free, 2 taken by a thread
// running on the slot's CPU (with cnuma_rseq_take, no atomic
// read-modify-write), any other value taken by a thread elsewhere (a
// compare-and-swap of a token, then cnuma_rseq_fence_cpu). The argument for
// why the two never overlap is in docs/allocator.md ("pcp_lock").

/// Why rseq ownership is unavailable: 0 available; 1 not x86-64; 2 glibc
/// did not register rseq (old kernel, GLIBC_TUNABLES=glibc.pthread.rseq=0,
/// valgrind); 3 membarrier(REGISTER_PRIVATE_EXPEDITED_RSEQ) failed (Linux
/// < 5.10); 4 this thread's rseq area has no CPU number. Registers the
/// process for expedited rseq membarriers on the first call that gets this
/// far; later calls return the same answer. `err` receives an errno for 3.
int cnuma_rseq_setup(int *err);
/// Offset of this thread's `struct rseq` from the thread pointer (glibc's
/// __rseq_offset), valid once cnuma_rseq_setup() returned 0.
long cnuma_rseq_area_offset(void);
/// glibc's rseq area offset from the thread pointer when glibc registered
/// rseq for this process (x86-64), else 0: where cnuma_rseq_cpu() reads the
/// CPU number in either pcp_lock mode.
long cnuma_rseq_glibc_area(void);
/// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) on `cpu` (on every CPU
/// when cpu < 0, or when the kernel lacks MEMBARRIER_CMD_FLAG_CPU): when it
/// returns, every rseq critical section of this process that was running
/// on that CPU has been aborted or has committed. 0 or -errno.
int cnuma_rseq_fence_cpu(int cpu);
/// Restarts counted by the abort handlers (all threads); read with cnuma_rseq_aborts().
extern unsigned long long cnuma_rseq_abort_counter;
/// Restarts counted by cnuma_rseq_take's abort handler (all threads).
uint64_t cnuma_rseq_aborts(void);
void cnuma_rseq_count_abort(void);

/// One restartable sequence: if the calling thread runs on `cpu` and
/// `*word` is 0, stores 2 there (the commit: one plain store). Returns 1
/// when it stored, 0 when the word was not 0 (the slot is taken), -1 when
/// the thread is not on `cpu` (or has no rseq area), -2 when the kernel
/// aborted the sequence (preemption, migration, a signal). `off` is
/// cnuma_rseq_area_offset(). The descriptor goes to section __rseq_cs, the
/// abort handler to __rseq_failure behind the signature 0x53053053.
/// The same sequence, answering only "taken or not", as an `asm goto`: the
/// two compares and the abort handler jump straight to the caller's "not
/// taken" code, and the commit falls through into its "taken" code (no
/// flag or return value to test after the sequence).
static inline _Bool cnuma_rseq_take_fast(long *word, int cpu, long off) {
#if defined(__x86_64__)
    __asm__ goto(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0x0, 0x0\n\t"
        ".quad 1f, (2f - 1f), 4f\n\t"
        ".popsection\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq %%rax, %%fs:8(%[off])\n\t"
        "1:\n\t"
        "cmpl %[cpu], %%fs:4(%[off])\n\t"
        "jne %l[fail]\n\t"
        "cmpq $0, %[w]\n\t"
        "jne %l[fail]\n\t"
        "movq $2, %[w]\n\t"                 /* commit */
        "2:\n\t"
        ".pushsection __rseq_failure, \"ax\"\n\t"
        ".byte 0x0f, 0xb9, 0x3d\n\t"
        ".long 0x53053053\n\t"
        "4:\n\t"
        "lock incq cnuma_rseq_abort_counter(%%rip)\n\t" /* counts the restart: not taken */
        "jmp %l[fail]\n\t"
        ".popsection\n\t"
        : : [w] "m"(*word), [cpu] "r"(cpu), [off] "r"(off)
        : "rax", "memory", "cc" : fail);
    return 1;
fail:
    return 0;
#else
    (void)word; (void)cpu; (void)off;
    return 0;
#endif
}

/// rseq->cpu_id of the calling thread (-1 or -2 when it has no rseq area).
static inline int cnuma_rseq_cpu(long off) {
#if defined(__x86_64__)
    int cpu;
    __asm__ __volatile__("movl %%fs:4(%1), %0" : "=r"(cpu) : "r"(off));
    return cpu;
#else
    (void)off;
    return -1;
#endif
}

static inline int cnuma_rseq_take(long *word, int cpu, long off) {
#if defined(__x86_64__)
    int ret;
    __asm__ __volatile__(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0x0, 0x0\n\t"                 /* version, flags */
        ".quad 1f, (2f - 1f), 4f\n\t"       /* start_ip, post_commit_offset, abort_ip */
        ".popsection\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq %%rax, %%fs:8(%[off])\n\t"    /* rseq->rseq_cs = &descriptor */
        "1:\n\t"
        "movl $-1, %[ret]\n\t"
        "cmpl %[cpu], %%fs:4(%[off])\n\t"   /* rseq->cpu_id == cpu ? */
        "jne 5f\n\t"
        "xorl %[ret], %[ret]\n\t"
        "cmpq $0, %[w]\n\t"
        "jne 5f\n\t"
        "movq $2, %[w]\n\t"                 /* commit */
        "2:\n\t"
        "movl $1, %[ret]\n\t"
        "jmp 5f\n\t"
        ".pushsection __rseq_failure, \"ax\"\n\t"
        ".byte 0x0f, 0xb9, 0x3d\n\t"        /* ud1: the signature below is its operand */
        ".long 0x53053053\n\t"
        "4:\n\t"
        "movl $-2, %[ret]\n\t"
        "jmp 5f\n\t"
        ".popsection\n\t"
        "5:\n\t"
        : [ret] "=&r"(ret), [w] "+m"(*word)
        : [cpu] "r"(cpu), [off] "r"(off)
        : "rax", "memory", "cc");
    return ret;
#else
    (void)word; (void)cpu; (void)off;
    return -1;
#endif
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
/// Number of configured CPUs (sysconf(_SC_NPROCESSORS_CONF)), offline ones included.
int cnuma_cpu_count(void);
/// 0 when /sys/devices/system/cpu/cpuN/online says the CPU is offline, else 1.
int cnuma_cpu_online(int cpu);
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
