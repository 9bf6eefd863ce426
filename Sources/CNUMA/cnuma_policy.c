#include "cnuma_policy.h"
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int cnuma_set_mempolicy(int mode, uint64_t mask) {
    unsigned long m[2] = {(unsigned long)mask, 0};
    const unsigned long *p = (mode == CNUMA_MPOL_DEFAULT || mode == CNUMA_MPOL_LOCAL) ? NULL : m;
    return syscall(SYS_set_mempolicy, mode, p, p ? 65UL : 0UL) == 0 ? 0 : -errno;
}

int cnuma_mbind(void *addr, size_t len, int mode, uint64_t mask) {
    unsigned long m[2] = {(unsigned long)mask, 0};
    const unsigned long *p = (mode == CNUMA_MPOL_DEFAULT || mode == CNUMA_MPOL_LOCAL) ? NULL : m;
    return syscall(SYS_mbind, addr, len, mode, p, p ? 65UL : 0UL, 0U) == 0 ? 0 : -errno;
}

void *cnuma_map_anon(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_NOHUGEPAGE
    (void)madvise(p, len, MADV_NOHUGEPAGE);
#endif
    return p;
}

void cnuma_unmap(void *addr, size_t len) { munmap(addr, len); }

void cnuma_touch_pages(void *addr, size_t len, size_t page_size) {
    volatile unsigned char *b = (volatile unsigned char *)addr;
    for (size_t off = 0; off < len; off += page_size) b[off] = 1;
}
