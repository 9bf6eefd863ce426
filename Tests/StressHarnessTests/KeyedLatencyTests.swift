import Foundation
import Testing
@testable import StressHarness

/// Latency and failures keyed by worker group and by op label (results'
/// `latencyByGroup` / `latencyByLabel`, the summary's tables, compare's
/// metrics), beside the totals per order x flags.
@Suite struct KeyedLatencyTests {
    /// Group a (2 workers): a labelled op and an unlabelled op of the same
    /// class; group b (1 worker): an op with the same label and class.
    static let twoGroups = small("""
    [[group]]
    name = "a"
    workers = 2
    [[group.op]]
    name = "tagged"
    order = 0
    label = "x"
    [[group.op]]
    name = "plain"
    order = 0

    [[group]]
    name = "b"
    workers = 1
    [[group.op]]
    name = "tagged-too"
    order = 0
    label = "x"
    """, run: "ops = 3000\nwarmup_ms = 0\nsample_every = 1")

    func draws(_ r: RunResult, _ group: String, _ op: String) -> Int {
        r.operations.first { $0.group == group && $0.op == op }!.draws
    }

    @Test func groupsAndLabelsSplitTheTotals() throws {
        let r = try run(Self.twoGroups)
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        let total = try #require(r.latency.first { $0.opClass.call == .alloc && $0.opClass.order == 0 })
        let byGroup = try #require(r.latencyByGroup)
        let a = try #require(byGroup.first { $0.key == "a" && $0.name == total.name })
        let b = try #require(byGroup.first { $0.key == "b" && $0.name == total.name })
        // Each worker makes 3000 operations, each one order-0 allocation (freed at once).
        #expect(a.calls == 6000 && b.calls == 3000, "a \(a.calls), b \(b.calls)")
        #expect(a.calls + b.calls == total.calls)
        #expect(a.histogram.totalCount == 6000 && b.histogram.totalCount == 3000, "every call timed (sample_every = 1)")
        // Every class of the totals appears per group, and the groups add up to it.
        for t in r.latency {
            let rows = byGroup.filter { $0.name == t.name }
            #expect(rows.reduce(0) { $0 + $1.calls } == t.calls, "\(t.name)")
            #expect(rows.reduce(0) { $0 + $1.failures } == t.failures, "\(t.name)")
        }
        #expect(byGroup.map(\.key).first == "a" && byGroup.map(\.key).last == "b", "groups in workload order")
        // The label merges group a's tagged op with group b's, and leaves a's plain op out.
        let byLabel = try #require(r.latencyByLabel)
        #expect(byLabel.map(\.key) == ["x"], "\(byLabel.map(\.key))")
        let x = byLabel[0]
        #expect(x.name == total.name)
        #expect(x.calls == draws(r, "a", "tagged") + draws(r, "b", "tagged-too"))
        #expect(x.calls < total.calls && x.calls == total.calls - draws(r, "a", "plain"))
        #expect(x.histogram.totalCount == UInt64(x.calls))
        // The summary shows both tables.
        let text = r.summary()
        #expect(text.contains("by group (ns)") && text.contains("a: \(total.name)") && text.contains("b: \(total.name)"), "\(text)")
        #expect(text.contains("by label (ns)") && text.contains("x: \(total.name)"), "\(text)")
        // The results file round-trips, and compare sees the keyed metrics.
        let data = try JSONEncoder().encode(r)
        #expect(try JSONDecoder().decode(RunResult.self, from: data) == r)
        let rep = try ResultSet.runRep(try JSONSerialization.jsonObject(with: data) as! [String: Any], path: "t.json")
        #expect(rep.values["latency/group/a/\(total.name)/p99"] == Double(a.summary.p99))
        #expect(rep.values["latency/label/x/\(total.name)/p50"] == Double(x.summary.p50))
        #expect(rep.values["failures/group/b/\(total.name)"] == 0)
    }

    @Test func oneGroupAndNoLabelsAddNothing() throws {
        let r = try run(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0", run: "ops = 500\nwarmup_ms = 0"))
        #expect(r.latencyByGroup == nil && r.latencyByLabel == nil)
        #expect(!r.summary().contains("by group (ns)"))
        // An older results file (without the keys) still reads.
        var o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as! [String: Any]
        o.removeValue(forKey: "latencyByGroup")
        #expect(try JSONDecoder().decode(RunResult.self, from: JSONSerialization.data(withJSONObject: o)).latencyByGroup == nil)
    }

    @Test func failuresAreKeyedByGroup() throws {
        // fail_page_alloc fails every non-sleeping allocation: both groups fail every call, in their own rows.
        let text = small("""
        [fail_page_alloc]
        probability = 100
        interval = 1
        times = -1
        min_order = 0

        [[group]]
        name = "two"
        workers = 2
        [[group.op]]
        order = 0
        flags = "GFP_NOWAIT"
        label = "nowait"

        [[group]]
        name = "one"
        workers = 1
        [[group.op]]
        order = 0
        flags = "GFP_NOWAIT"
        """, run: "ops = 400\nwarmup_ms = 0")
        let r = try run(text)
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        let byGroup = try #require(r.latencyByGroup)
        let two = try #require(byGroup.first { $0.key == "two" && $0.opClass.call == .alloc })
        let one = try #require(byGroup.first { $0.key == "one" && $0.opClass.call == .alloc })
        #expect(two.failures == 800 && two.calls == 800, "\(two.failures)/\(two.calls)")
        #expect(one.failures == 400 && one.calls == 400, "\(one.failures)/\(one.calls)")
        #expect(r.failures.total == 1200)
        let label = try #require(r.latencyByLabel?.first)
        #expect(label.key == "nowait" && label.failures == 800)
    }

    @Test(arguments: [
        ("label = \"\"", "is not a label"),
        ("label = \"a b\"", "is not a label"),
        ("label = \"a/b\"", "is not a label"),
        ("label = 3", "expected a string"),
    ])
    func badLabels(_ line: String, _ fragment: String) {
        let text = small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0\n" + line)
        do {
            _ = try parse(text, file: "w.toml")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.description.hasPrefix("w.toml:"), "\(error)")
            #expect(error.field.hasSuffix("label") && error.message.contains(fragment), "\(error)")
        }
    }

    @Test func labelIsForAllocOps() {
        let text = small("""
        [[group]]
        name = "p"
        [[group.op]]
        order = 0
        free = "lifo"
        batch = 4
        free_on = "c"
        [[group]]
        name = "c"
        [[group.op]]
        kind = "consume"
        label = "x"
        """)
        do { _ = try parse(text); Issue.record("a consume op took a label") } catch {
            #expect(error.field.hasSuffix("label"), "\(error)")
        }
    }
}
