// /proc/buddyinfo and /proc/zoneinfo text.
import Testing
@testable import PageAllocator
import Topology

@Suite struct ProcFormatTests {
    func allocator() throws -> (PageAllocator, [PageBlock]) {
        let a = try makeAllocator(nodes: 2, cpusPerNode: 2, zones: [ZoneSpec(.dma32, pages: 1500), ZoneSpec(.normal, pages: 4096)])
        var held: [PageBlock] = []
        for o in [0, 3, 5, 7] { held.append(try a.allocate(order: o, node: NodeID(1), cpu: CPUID(2))) }
        return (a, held)
    }

    @Test func buddyinfoHasOneLinePerZone() throws {
        let (a, _) = try allocator()
        let text = a.buddyinfo()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == a.zoneCount + 1 && lines.last == "")
        let prefixes = ["Node 0, zone    DMA32 ", "Node 0, zone   Normal ", "Node 1, zone    DMA32 ", "Node 1, zone   Normal "]
        for (zi, line) in lines.dropLast().enumerated() {
            #expect(line.hasPrefix(prefixes[zi]), "\(line)")
            let columns = line.dropFirst(prefixes[zi].count).split(separator: " ").map { Int($0) }
            #expect(columns.count == 11)
            #expect(columns.compactMap { $0 } == a.freeBlocks(zone: zi))
            // %6lu columns, each followed by a space.
            #expect(line.count == prefixes[zi].count + 11 * 7)
        }
        #expect(a.freeBlocks(zone: 3) != expectedSeed(start: 0, end: 0))
    }

    /// By default /proc/zoneinfo's fields only; the project's counters with `extras`.
    @Test func zoneinfoPrintsTheKernelsFieldsUnlessAskedForExtras() throws {
        let (a, _) = try allocator()
        let plain = a.zoneinfo()
        for extra in ["nr_free_pcp", "pgalloc", "pgfree", "zone_lock_acquire"] {
            #expect(!plain.contains(extra), "the kernel's zoneinfo has no \(extra)")
        }
        #expect(plain.contains("nr_free_pages") && plain.contains("numa_hit") && plain.contains("pagesets"))
        let extras = a.zoneinfo(extras: true)
        for extra in ["nr_free_pcp", "pgalloc", "pgfree", "zone_lock_acquire"] { #expect(extras.contains(extra)) }
    }

    @Test func zoneinfoNamesEveryField() throws {
        let (a, _) = try allocator()
        let text = a.zoneinfo(extras: true)
        for s in ["pages free", "boost", "min", "low", "high", "promo", "spanned", "present", "managed",
                  "protection: (", "nr_free_pages", "nr_free_pcp", "numa_hit", "pagesets", "cpu: 0", "count:",
                  "batch:", "high_min:", "high_max:", "vm stats threshold:", "node_unreclaimable:", "start_pfn:"] {
            #expect(text.contains(s), "zoneinfo lacks \(s)")
        }
        // One section per zone, each with every CPU's pageset.
        let sections = text.split(separator: "Node ")
        #expect(sections.count == a.zoneCount)
        for (zi, sec) in sections.enumerated() {
            let d = a.zoneDescription(zi)
            let lines = sec.split(separator: "\n").map { $0.trimmingCharacters() }
            func value(_ key: String) -> [Int] {
                lines.filter { $0.hasPrefix(key) }.compactMap { Int($0.dropFirst(key.count).split(separator: " ").first ?? "") }
            }
            #expect(sec.hasPrefix("\(d.node.rawValue), zone " + String(repeating: " ", count: 8 - d.type.name.count) + d.type.name + "\n"))
            #expect(value("pages free") == [a.freePages(zone: zi)])
            #expect(value("min") == [d.min] && value("low") == [d.low] && value("high ") == [d.high] && value("promo") == [d.promo])
            #expect(value("managed") == [d.pages] && value("spanned") == [d.pages])
            #expect(lines.contains("protection: (" + d.lowmemReserve.map(String.init).joined(separator: ", ") + ")"))
            #expect(value("nr_free_pcp") == [a.perCPUPages(zone: zi)])
            #expect(value("cpu:") == [0, 1, 2, 3])
            #expect(value("batch:") == [Int](repeating: d.batch, count: 4))
            #expect(value("high_min:") == [Int](repeating: d.highMin, count: 4))
            #expect(value("high_max:") == [Int](repeating: d.highMax, count: 4))
            #expect(value("count:") == (0..<4).map { a.perCPUState(zone: zi, cpu: $0).count })
            #expect(value("vm stats threshold:") == [Int](repeating: d.vmstatThreshold, count: 4))
            #expect(value("start_pfn:") == [d.startPFN.rawValue])
        }
        // The protection line of DMA32 against Normal: 4096 / 256.
        #expect(text.contains("protection: (0, 0, 16, 16)"))
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
