import Foundation
import PageAllocator
import Topology

// [policy], [harness], [reclaim] and [fail_page_alloc]
extension WorkloadDecoder {

    /// A scalar setting as text: strings as written, integers in decimal, booleans as true/false.
    func settingText(_ r: TableReader, _ k: String) throws(WorkloadError) -> String {
        let v = r.table[k]!
        if let s = v.string { return s }
        if let i = v.integer { return String(i) }
        if let b = v.bool { return b ? "true" : "false" }
        if let d = v.number { return String(d) }
        throw r.fail(k, "expected a string, a number or a boolean, found a \(v.typeName)")
    }

    /// `[policy]`: the allocator's SlowPathPolicy knobs, every key resolved to its canonical text.
    func decodePolicy(_ r: TableReader?) throws(WorkloadError) -> [String: String] {
        guard let r else { return Policy.defaults }
        return Policy.canonical(try decodeKnobs(r, as: SlowPathPolicy.self))
    }

    /// `[harness]`: the callers' side and the measurement (HarnessSpec.table).
    func decodeHarness(_ r: TableReader?) throws(WorkloadError) -> HarnessSpec {
        guard let r else { return HarnessSpec() }
        return try decodeKnobs(r, as: HarnessSpec.self)
    }

    /// A section read through its knob table: only the table's keys, each
    /// value parsed by its row; an error names the line, the key and what the row accepts.
    func decodeKnobs<T: KnobTable>(_ r: TableReader, as: T.Type) throws(WorkloadError) -> T {
        var t = T()
        try r.allowOnly(T.keys)
        for k in r.table.keys {
            let text = try settingText(r, k)
            do { try t.set(k, text) } catch { throw r.fail(k, "'\(text)' is not accepted: expected \(error.expected)") }
        }
        return t
    }

    func decodeReclaim(_ r: TableReader?) throws(WorkloadError) -> ReclaimSpec {
        var s = ReclaimSpec()
        guard let r else { return s }
        try r.allowOnly(WorkloadDecoder.reclaimKeys)
        s.writebackNsPerPage = try r.int("writeback_ns_per_page", default: s.writebackNsPerPage, range: 0...1_000_000_000, what: "simulated writeback time per dirty page")
        s.swapNsPerPage = try r.int("swap_ns_per_page", default: s.swapNsPerPage, range: 0...1_000_000_000, what: "simulated swap-out time per page")
        s.batch = try r.int("batch", default: s.batch, range: 1...1_000_000, what: "pages one reclaim pass aims for")
        return s
    }

    /// `[fail_page_alloc]`: the debugfs knobs with their kernel names (or with underscores).
    func decodeFailPageAlloc(_ r: TableReader?) throws(WorkloadError) -> FaultInjectionSettings {
        var s = FaultInjectionSettings()
        guard let r else { return s }
        try r.allowOnly(WorkloadDecoder.faultKeys)
        for k in r.table.keys {
            var text = try settingText(r, k)
            if k.contains("ignore") { text = text == "true" ? "Y" : (text == "false" ? "N" : text) }
            do { try s.set(k, text) } catch {
                if case .invalid(_, _, let reason) = error { throw r.fail(k, reason) }
                throw r.fail(k, "\(error)")
            }
        }
        return s
    }

    /// `[[memory_group]]`: a name and a page limit each.
}
