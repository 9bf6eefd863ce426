import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Pattern checks: touched words written at allocation, checked before the free.
extension Worker {

    // MARK: touching memory

    /// Writes `words` 64-bit words of a pattern at the start of every page of
    /// the block; returns the pattern's tag (unique per allocation).
    @inline(__always)
    mutating func touch(_ b: B.Block, words: Int) -> UInt64 {
        guard words > 0 else { return 0 }
        tagSeq &+= 1
        let tag = (UInt64(truncatingIfNeeded: index) << 40) ^ tagSeq
        let key = tag &* 0x9E37_79B9_7F4A_7C15
        let base = backend.address(of: b)
        let pages = backend.byteCount(of: b) / timing.pageSize
        for p in 0..<pages {
            let w = (base + p &* timing.pageSize).assumingMemoryBound(to: UInt64.self)
            for k in 0..<words { w[k] = key ^ UInt64(truncatingIfNeeded: p &<< 13 | k) }
        }
        return tag
    }

    /// Checks the pattern of a held block before it is freed.
    @inline(__always)
    mutating func verify(_ h: H) {
        let key = h.tag &* 0x9E37_79B9_7F4A_7C15
        let base = backend.address(of: h.block)
        let pages = backend.byteCount(of: h.block) / timing.pageSize
        for p in 0..<pages {
            let w = (base + p &* timing.pageSize).assumingMemoryBound(to: UInt64.self)
            for k in 0..<h.words where w[k] != key ^ UInt64(truncatingIfNeeded: p &<< 13 | k) {
                corrupted(h, page: p, word: k, found: w[k], expected: key ^ UInt64(truncatingIfNeeded: p &<< 13 | k))
                return
            }
        }
    }

    @inline(never)
    mutating func corrupted(_ h: H, page: Int, word: Int, found: UInt64, expected: UInt64) {
        c.corruptions += 1
        if record.firstProblem == nil {
            record.firstProblem = "worker \(index): pattern corrupted in a block of order \(backend.order(of: h.block)) at \(backend.address(of: h.block)), page \(page), word \(word): found 0x\(String(found, radix: 16)), expected 0x\(String(expected, radix: 16))"
        }
    }
}
