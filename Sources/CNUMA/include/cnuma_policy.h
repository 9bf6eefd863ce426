// cnuma_policy.h: the kernel's memory policy system calls, for driving the
// real page allocator (pagestorm fault-pages). Plain syscalls, so they work
// whatever libnuma version is installed.
#ifndef PAGESTORM_CNUMA_POLICY_H
#define PAGESTORM_CNUMA_POLICY_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// MPOL_* of <linux/mempolicy.h>.
enum {
    CNUMA_MPOL_DEFAULT = 0, CNUMA_MPOL_PREFERRED = 1, CNUMA_MPOL_BIND = 2, CNUMA_MPOL_INTERLEAVE = 3,
    CNUMA_MPOL_LOCAL = 4, CNUMA_MPOL_PREFERRED_MANY = 5, CNUMA_MPOL_WEIGHTED_INTERLEAVE = 6
};

/// set_mempolicy(mode, {mask}, 65). 0 or -errno.
int cnuma_set_mempolicy(int mode, uint64_t mask);
/// mbind(addr, len, mode, {mask}, 65, 0). 0 or -errno.
int cnuma_mbind(void *addr, size_t len, int mode, uint64_t mask);
/// An anonymous private mapping of `len` bytes with transparent huge pages
/// off (MADV_NOHUGEPAGE), so that each page faults in alone; NULL on failure.
void *cnuma_map_anon(size_t len);
void cnuma_unmap(void *addr, size_t len);
/// Writes one byte to each page of [addr, addr+len): one page fault each.
void cnuma_touch_pages(void *addr, size_t len, size_t page_size);

#ifdef __cplusplus
}
#endif
#endif
