// The offset tables of the raw handles (Zone.Field, PerCPUPages.Field): the
// tables are consistent (no overlap, aligned, inside the block, the cache-line
// placement the fast path relies on), the accessors use them, and in debug
// builds an out-of-range index traps (exit tests).
import Synchronization
import Testing
@testable import PageAllocator

@Suite struct RawLayoutTests {
    @Test func zoneTableIsConsistent() {
        #expect(Zone.Field.layoutProblems() == [])
        #expect(Zone.byteSize == 1152 && Zone.byteSize % 128 == 0)
        // The zone lock has its cache line to itself (contended).
        for f in Zone.Field.allCases where f != .lock { #expect(f.offset >= 128, "\(f) shares the lock's line") }
        // ZoneInfo fits its space up to `reserved`.
        #expect(MemoryLayout<ZoneInfo>.size <= Zone.Field.info.row.space)
        // The buddy's lists and counters (under the zone lock) start on a line of their own.
        #expect(Zone.Field.freeHead.offset % 128 == 0)
        #expect(Zone.Field.rare.offset % 128 == 0)
    }

    @Test func perCPUTableIsConsistent() {
        typealias F = PerCPUPages.Field
        #expect(F.layoutProblems() == [])
        // Slot stride: whole lines, at least an adjacent-line prefetch pair, so no two CPUs share a pair.
        #expect(PerCPUPages.stride % 128 == 0 && PerCPUPages.stride >= 256)
        // Everything the order-0 fast path touches is in the slot's first line.
        for f in [F.owner, .excess, .heads, .aboveLow, .meta, .memory, .pageSize, .pagesOf, .blockBits] {
            #expect(f.row.end <= 128, "\(f) is outside the fast path's line")
        }
        #expect(F.counters.offset == 128)
        #expect(F.heads.row.count == Order.pcpMax + 1)
    }

    /// The checker itself finds what it is for: an overlap, a misaligned
    /// field and a field past the block.
    enum Broken: Int, RawLayout {
        case a, b, c, d
        static var byteSize: Int { 64 }
        static var baseAlignment: Int { 64 }
        var offset: Int { [0, 4, 20, 56][rawValue] }
        var row: RawFieldRow {
            switch self {
            case .a: RawFieldRow(offset, Int.self)            // 0..<8 overlaps b
            case .b: RawFieldRow(offset, UInt32.self)         // 4..<8
            case .c: RawFieldRow(offset, Int.self)            // 20: not 8-aligned
            case .d: RawFieldRow(offset, Int.self, count: 2)  // 56..<72: past 64
            }
        }
    }

    @Test func theCheckerFindsBrokenTables() {
        let p = Broken.layoutProblems()
        #expect(p.contains { $0.hasPrefix("a (0..<8) overlaps b") })
        #expect(p.contains { $0.hasPrefix("c: offset 20 not a multiple") })
        #expect(p.contains { $0.hasPrefix("d: ends at 72") })
        #expect(p.count == 3)
    }

    @Test func accessorsUseTheTables() throws {
        let a = try makeAllocator(cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 4096)])
        let z = a.zones[0]
        func at<T: ~Copyable>(_ p: UnsafeMutablePointer<T>, _ base: UnsafeMutableRawPointer) -> Int { UnsafeMutableRawPointer(p) - base }
        #expect(Int(bitPattern: z.base) % 128 == 0)
        #expect(at(z.freePages, z.base) == Zone.Field.freePages.offset)
        #expect(at(z.info, z.base) == Zone.Field.info.offset)
        #expect(at(z.reserved, z.base) == Zone.Field.reserved.offset)
        #expect(at(z.nrFree.start, z.base) == Zone.Field.nrFree.offset && z.nrFree.count == Zone.Field.nrFree.row.count)
        #expect(at(z.freeHead.start, z.base) == Zone.Field.freeHead.offset && z.freeHead.count == Order.count)
        #expect(at(z.freeTail.start, z.base) == Zone.Field.freeTail.offset && z.freeTail.count == Order.count)
        #expect(z.lowmemReserve.count == Zone.Field.lowmemReserve.row.count)
        #expect(z.lockedCounters.count == Zone.Field.lockedCounters.row.count && z.rare.count == Zone.Field.rare.row.count)
        let s0 = z.pcp(0), s1 = z.pcp(1)
        #expect(s1.base - s0.base == PerCPUPages.stride && Int(bitPattern: s0.base) % 128 == 0)
        #expect(at(s0.excess, s0.base) == PerCPUPages.Field.excess.offset)
        // count is high + excess: an empty slot's excess is -high.
        #expect(s0.count == 0 && s0.excess.pointee == -s0.high && s0.high == z.info.pointee.highMin)
        #expect(at(s0.aboveLow, s0.base) == PerCPUPages.Field.aboveLow.offset)
        #expect(at(s0.heads.start, s0.base) == PerCPUPages.Field.heads.offset && s0.heads.count == PerCPUPages.lists)
        #expect(s0.counters.count == PerCPUPages.Field.counters.row.count)
        // The slot's copies of the zone's facts are read back through the same rows.
        #expect(s1.zone.base == z.base && s1.meta == z.meta && s1.memory == z.info.pointee.memory)
        #expect(s1.orderBits[0] == z.info.pointee.blockBits && s1.pageSize == 1 << z.info.pointee.pageShift)
        #expect(s1.orderBits[3] == z.info.pointee.blockBits | 3 << 32 && s1.pagesOf[3] == 8)
        #expect(s0.batch.pointee == z.info.pointee.batch && s0.highMin.pointee == z.info.pointee.highMin)
    }

    #if DEBUG
    // Debug builds check every index (assert); -O builds compile the checks out.
    @Test func anInRangeIndexRuns() async {
        await #expect(processExitsWith: .success) {
            let a = try! makeSmall(pages: 2048)
            let z = a.zones[0]
            _ = z.freeHead[Order.count - 1]
            _ = z.pcp(0).heads[PerCPUPages.lists - 1]
            _ = z.pcp(0).counters[VMEvent.count - 1]
        }
    }

    @Test func aZoneListIndexPastTheOrdersTraps() async {
        await #expect(processExitsWith: .failure) {
            let a = try! makeSmall(pages: 2048)
            _ = a.zones[0].freeHead[Order.count]
        }
    }

    @Test func aPerCPUListIndexPastOrder3Traps() async {
        await #expect(processExitsWith: .failure) {
            let a = try! makeSmall(pages: 2048)
            _ = a.zones[0].pcp(0).heads[PerCPUPages.lists]
        }
    }

    @Test func aCPUPastTheZonesSlotsTraps() async {
        await #expect(processExitsWith: .failure) {
            let a = try! makeSmall(pages: 2048)  // one CPU
            _ = a.zones[0].pcp(1)
        }
    }

    @Test func aNegativeCounterIndexTraps() async {
        await #expect(processExitsWith: .failure) {
            let a = try! makeSmall(pages: 2048)
            _ = a.zones[0].nrFree[-1].load(ordering: .relaxed)
        }
    }
    #endif
}
