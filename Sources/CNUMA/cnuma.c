// The C shim: libnuma guarded by numa_available(), CPU_SET, rseq, clocks.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cnuma.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <time.h>
#include <unistd.h>

long cnuma_rseq_cpu_offset = 0;
static atomic_int swallowed = 0;
static int numa_state = -2; // -2 unknown, <0 unavailable, >=0 available

// libnuma prints to stderr from these weak hooks; the executable's
// definitions override them. We count instead of printing.
void numa_error(char *where) { (void)where; atomic_fetch_add(&swallowed, 1); }
void numa_warn(int num, char *fmt, ...) { (void)num; (void)fmt; atomic_fetch_add(&swallowed, 1); }

int cnuma_swallowed_messages(void) { return atomic_load(&swallowed); }

// Once per process, whichever thread comes first (allocators are built
// concurrently by tests): pthread_once orders these writes before every
// caller's reads.
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_body(void) {
#if defined(__x86_64__)
    if (__rseq_size > 0) {
        cnuma_rseq_cpu_offset = (long)__rseq_offset + (long)offsetof(struct rseq, cpu_id);
    }
#endif
    numa_state = numa_available();
}

void cnuma_init(void) { pthread_once(&init_once, init_body); }

int cnuma_sched_getcpu(void) {
    int cpu = sched_getcpu();
    return cpu < 0 ? 0 : cpu;
}

uint64_t cnuma_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cnuma_cycles_slow(void) { return cnuma_monotonic_ns(); }

int cnuma_available(void) {
    cnuma_init();
    return numa_state >= 0;
}

int cnuma_node_count(void) {
    if (!cnuma_available()) return 1;
    int n = numa_max_node() + 1;
    return n < 1 ? 1 : n;
}

int cnuma_node_of_cpu(int cpu) {
    if (!cnuma_available()) return 0;
    int n = numa_node_of_cpu(cpu);
    return n < 0 ? 0 : n;
}

int cnuma_distance(int a, int b) {
    if (!cnuma_available()) return a == b ? 10 : 20;
    return numa_distance(a, b);
}

long long cnuma_node_size(int node) {
    if (!cnuma_available()) return -1;
    return numa_node_size64(node, NULL);
}

int cnuma_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    return n < 1 ? 1 : (int)n;
}

int cnuma_cpu_online(int cpu) {
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
    FILE *f = fopen(path, "r");
    if (!f) return 1; // no file: a CPU that cannot go offline (often cpu0), or no sysfs
    int c = fgetc(f);
    fclose(f);
    return c != '0';
}

int cnuma_bind_memory(void *addr, size_t len, int node) {
    if (!cnuma_available()) return -1;
    int before = atomic_load(&swallowed);
    numa_tonode_memory(addr, len, node);
    // numa_tonode_memory returns nothing: a failed mbind shows as a numa_error.
    return atomic_load(&swallowed) == before ? 0 : -2;
}

int cnuma_policy_of_address(void *addr, int *first_node, int *node_count) {
    *first_node = -1;
    *node_count = 0;
    if (!cnuma_available()) return -ENOSYS;
    enum { BITS = 4096, WORD = 8 * sizeof(unsigned long) };
    unsigned long mask[BITS / WORD];
    memset(mask, 0, sizeof(mask));
    int mode = -1;
    if (get_mempolicy(&mode, mask, BITS, addr, MPOL_F_ADDR) != 0) return -errno;
    for (int n = 0; n < BITS; n++) {
        if (mask[n / WORD] & (1ul << (n % WORD))) {
            if (*first_node < 0) *first_node = n;
            (*node_count)++;
        }
    }
    return mode;
}

int cnuma_nodes_of_pages(void **pages, int count, int *status) {
    for (int i = 0; i < count; i++) status[i] = -ENOSYS;
    if (!cnuma_available()) return -ENOSYS;
    if (move_pages(0, (unsigned long)count, pages, NULL, status, 0) != 0) return -errno;
    return 0;
}

int cnuma_populate_write(void *addr, size_t len) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    return madvise(addr, len, MADV_POPULATE_WRITE) == 0 ? 0 : -errno;
}

int cnuma_node_of_address(void *addr) {
    if (!cnuma_available()) return -ENOSYS;
    void *pages[1] = {addr};
    int status[1] = {-1};
    if (move_pages(0, 1, pages, NULL, status, 0) != 0) return -errno;
    return status[0];
}

int cnuma_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cnuma_pin_current_thread_set(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return EINVAL;
        CPU_SET(cpus[i], &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cnuma_current_affinity_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) return -rc;
    return CPU_COUNT(&set);
}

volatile uint64_t cnuma_blackhole_sink;
uint64_t cnuma_blackhole(uint64_t value) {
    cnuma_blackhole_sink = value;
    return value;
}

// ---- rseq ownership ----

static long rseq_area_offset = 0;
long cnuma_rseq_area_offset(void) { return rseq_area_offset; }
long cnuma_rseq_glibc_area(void) {
#if defined(__x86_64__)
    if (__rseq_size > 0) return (long)__rseq_offset;
#endif
    return 0;
}
static atomic_int rseq_state = -1; // -1 not decided, else cnuma_rseq_setup's answer
static atomic_int rseq_errno = 0;
static atomic_int membarrier_cpu_flag = 1; // MEMBARRIER_CMD_FLAG_CPU accepted so far
unsigned long long cnuma_rseq_abort_counter = 0;

static int membarrier(int cmd, unsigned flags, int cpu) {
    return (int)syscall(__NR_membarrier, cmd, flags, cpu);
}

// Runs once per process (pthread_once, as cnuma_init): allocators built
// concurrently (the tests) otherwise both ran it and both wrote
// rseq_area_offset, a data race ThreadSanitizer reported (make test-tsan).
static pthread_once_t rseq_once = PTHREAD_ONCE_INIT;

static void rseq_setup_body(void) {
    int s;
#if !defined(__x86_64__)
    s = 1;
#else
    if (__rseq_size == 0) {
        s = 2;
    } else {
        const char *tp;
        __asm__("mov %%fs:0, %0" : "=r"(tp));
        const struct rseq *area = (const struct rseq *)(tp + __rseq_offset);
        if ((int)area->cpu_id < 0) {
            s = 4;
        } else if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) {
            atomic_store(&rseq_errno, errno);
            s = 3;
        } else {
            rseq_area_offset = (long)__rseq_offset;
            s = 0;
        }
    }
#endif
    atomic_store(&rseq_state, s);
}

int cnuma_rseq_setup(int *err) {
    pthread_once(&rseq_once, rseq_setup_body);
    if (err) *err = atomic_load(&rseq_errno);
    return atomic_load(&rseq_state);
}

int cnuma_rseq_fence_cpu(int cpu) {
    if (cpu >= 0 && atomic_load(&membarrier_cpu_flag)) {
        if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, cpu) == 0) return 0;
        if (errno != EINVAL) return -errno;
        atomic_store(&membarrier_cpu_flag, 0); // a kernel before 5.10: fence every CPU instead
    }
    return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0 ? 0 : -errno;
}

uint64_t cnuma_rseq_aborts(void) { return __atomic_load_n(&cnuma_rseq_abort_counter, __ATOMIC_RELAXED); }
void cnuma_rseq_count_abort(void) { __atomic_fetch_add(&cnuma_rseq_abort_counter, 1, __ATOMIC_RELAXED); }
