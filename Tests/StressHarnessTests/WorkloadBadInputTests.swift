import Testing
@testable import StressHarness

/// Every kind of bad input gets one error naming the file, the line and the
/// field (the CLI turns it into exit code 2).
@Suite struct WorkloadBadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let what: String
        let text: String
        let line: Int
        let field: String
        let fragment: String
        var testDescription: String { what }
    }

    static let op = "[[group]]\n[[group.op]]\n"

    static let cases: [Case] = [
        Case(what: "malformed TOML", text: "[run]\nduration_ms = = 5\n" + op, line: 2, field: "", fragment: "malformed TOML"),
        Case(what: "unknown key", text: "[run]\nduration = 5\n" + op, line: 2, field: "run.duration", fragment: "unknown key 'duration'"),
        Case(what: "unknown key in an op", text: op + "ordr = 3\n", line: 3, field: "group[0].op[0].ordr", fragment: "unknown key"),
        Case(what: "wrong type", text: "[run]\nduration_ms = \"5\"\n" + op, line: 2, field: "run.duration_ms", fragment: "expected an integer, found a string"),
        Case(what: "wrong type of a table", text: "run = 5\n" + op, line: 1, field: "run", fragment: "expected a table"),
        Case(what: "negative count", text: "[[group]]\nworkers = -2\n[[group.op]]\n", line: 2, field: "group[0].workers", fragment: "must not be negative"),
        Case(what: "negative allocations", text: op + "count = -1\n", line: 3, field: "group[0].op[0].count", fragment: "must not be negative"),
        Case(what: "order above 10", text: op + "order = 11\n", line: 3, field: "group[0].op[0].order", fragment: "at most 10"),
        Case(what: "order above 10 in a distribution", text: op + "orders = { 0 = 1, 12 = 1 }\n", line: 3, field: "group[0].op[0].orders.12", fragment: "at most 10"),
        Case(what: "more pinned CPUs than exist", text: "[[group]]\ncpus = [0, 1, 2]\n[[group.op]]\n", line: 2, field: "group[0].cpus", fragment: "group 'group0': cpu 2 does not exist"),
        Case(what: "a node that does not exist", text: op + "node = 3\n", line: 3, field: "group[0].op[0].node", fragment: "group 'group0': node = 3: node 3 does not exist"),
        Case(what: "a node name other than next", text: op + "node = \"far\"\n", line: 3, field: "group[0].op[0].node", fragment: "group 'group0': must be a node number or \"next\""),
        Case(what: "next node of an unpinned worker", text: "[[group]]\npin = \"none\"\n[[group.op]]\nnode = \"next\"\n", line: 4, field: "group[0].op[0].node", fragment: "needs a pinned group"),
        Case(what: "lock used but never declared", text: op + "lock = \"journal\"\n", line: 3, field: "group[0].op[0].lock", fragment: "never declared"),
        Case(what: "duration and op count", text: "[run]\nduration_ms = 5\nops = 10\n" + op, line: 3, field: "run.ops", fragment: "contradicts duration_ms"),
        Case(what: "weights summing to 0", text: "[[group]]\n[[group.op]]\nweight = 0\n[[group.op]]\nweight = 0\n", line: 2, field: "group[0].op", fragment: "sum to 0"),
        Case(what: "order weights summing to 0", text: op + "orders = { 0 = 0, 1 = 0 }\n", line: 3, field: "group[0].op[0].orders", fragment: "sum to 0"),
        Case(what: "batch and live together", text: op + "free = \"fifo\"\nbatch = 4\nlive = 4\n", line: 5, field: "group[0].op[0].live", fragment: "contradicts batch"),
        Case(what: "a holding lifetime without a size", text: op + "free = \"lifo\"\n", line: 3, field: "group[0].op[0].free", fragment: "needs batch"),
        Case(what: "live with immediate frees", text: op + "live = 4\n", line: 3, field: "group[0].op[0].live", fragment: "contradicts free = \"immediate\""),
        Case(what: "a rate in a closed loop", text: "[[group]]\nrate = 100\n[[group.op]]\n", line: 2, field: "group[0].rate", fragment: "contradicts loop = \"closed\""),
        Case(what: "a rate of 0", text: "[[group]]\nloop = \"open\"\nrate = 0\n[[group.op]]\n", line: 3, field: "group[0].rate", fragment: "must be more than 0"),
        Case(what: "a negative rate", text: "[[group]]\nloop = \"open\"\nrate = -20000\n[[group.op]]\n", line: 3, field: "group[0].rate", fragment: "must be more than 0"),
        Case(what: "a rate that is not a number", text: "[[group]]\nloop = \"open\"\nrate = \"fast\"\n[[group.op]]\n", line: 3, field: "group[0].rate", fragment: "expected a number, found a string"),
        Case(what: "a rate below one operation per run", text: "[run]\nduration_ms = 1000\n[[group]]\nloop = \"open\"\nrate = 0.5\n[[group.op]]\n", line: 5, field: "group[0].rate", fragment: "less than one operation per run"),
        Case(what: "a rate that schedules nothing before an op-count run's timeout", text: "[run]\nops = 10\ntimeout_ms = 1000\n[[group]]\nloop = \"open\"\nrate = 0.001\n[[group.op]]\n", line: 6, field: "group[0].rate", fragment: "no operation before"),
        Case(what: "a rate above 1e9", text: "[[group]]\nloop = \"open\"\nrate = 2e9\n[[group.op]]\n", line: 3, field: "group[0].rate", fragment: "at most 1e9"),
        Case(what: "the stall hook on a closed loop", text: "[harness]\nstall_once_ms = 20\n" + op, line: 2, field: "harness.stall_once_ms", fragment: "must run an open loop"),
        Case(what: "an open loop without a rate", text: "[[group]]\nloop = \"open\"\n[[group.op]]\n", line: 2, field: "group[0].loop", fragment: "needs rate"),
        Case(what: "arena_mib and zones", text: "[memory]\narena_mib = 4\nzones = [{ type = \"Normal\", mib = 4 }]\n" + op, line: 3, field: "memory.zones", fragment: "contradicts arena_mib"),
        Case(what: "hand-off to an unknown group", text: op + "free_on = \"nobody\"\n", line: 3, field: "group[0].op[0].free_on", fragment: "no group is named 'nobody'"),
        Case(what: "hand-off to a group that never frees", text: op + "free_on = \"group0\"\n", line: 3, field: "group[0].op[0].free_on", fragment: "no consume operation"),
        Case(what: "a consumer nobody feeds", text: op + "[[group.op]]\nkind = \"consume\"\n", line: 4, field: "group[0].op[1].kind", fragment: "no operation hands it blocks"),
        Case(what: "unknown GFP flag", text: op + "flags = \"GFP_KERNAL\"\n", line: 3, field: "group[0].op[0].flags", fragment: "unknown GFP flag 'GFP_KERNAL'"),
        Case(what: "pcp_lock = rseq on a declared topology", text: "[topology]\nnodes = 1\n[policy]\npcp_lock = \"rseq\"\n" + op, line: 4, field: "policy.pcp_lock", fragment: "declares its topology ([topology] at line 1)"),
        Case(what: "unknown policy", text: "[policy]\nretyr = \"kernel\"\n" + op, line: 2, field: "policy.retyr", fragment: "unknown key"),
        Case(what: "bad policy value", text: "[policy]\noom = \"eager\"\n" + op, line: 2, field: "policy.oom", fragment: "not accepted"),
        Case(what: "need level above 3", text: op + "need = 4\n", line: 3, field: "group[0].op[0].need", fragment: "at most 3"),
        Case(what: "an order larger than the arena", text: "[memory]\nzones = [{ type = \"Normal\", pages = 512 }]\n" + op + "order = 10\n", line: 5, field: "group[0].op[0].order", fragment: "largest zone has 512"),
        Case(what: "no worker group", text: "[run]\nduration_ms = 5\n", line: 1, field: "", fragment: "at least one worker group"),
        Case(what: "a lock declared twice", text: "[[lock]]\nname = \"a\"\n[[lock]]\nname = \"a\"\n" + op, line: 4, field: "lock[1].name", fragment: "declared twice"),
        Case(what: "bad distances", text: "[topology]\nnodes = 2\ndistances = [[10, 5], [5, 10]]\n" + op, line: 3, field: "topology.distances", fragment: "greater than 10"),
        Case(what: "sample_every not a power of two", text: "[run]\nsample_every = 3\n" + op, line: 2, field: "run.sample_every", fragment: "power of two"),
    ]

    @Test(arguments: cases)
    func badInputGetsOneClearError(_ c: Case) {
        do {
            _ = try parse(c.text, file: "bad.toml")
            Issue.record("\(c.what): parsed without an error")
        } catch {
            #expect(error.file == "bad.toml", "\(error)")
            #expect(error.line == c.line, "\(c.what): \(error)")
            if c.field.isEmpty { #expect(error.field.isEmpty || c.what == "no worker group", "\(error)") } else { #expect(error.field == c.field, "\(c.what): \(error)") }
            #expect(error.message.contains(c.fragment), "\(c.what): \(error)")
            #expect(error.description.hasPrefix("bad.toml:\(c.line):"), "\(error)")
            #expect(!error.description.contains("\n"), "one line: \(error)")
        }
    }

    @Test func aShorterRunCanMakeARateUnschedulable() throws {
        let w = try parse("[run]\nduration_ms = 1000\n[[group]]\nloop = \"open\"\nrate = 2\n[[group.op]]\n")
        #expect(throws: OverrideError.self) { try w.overriding(WorkloadOverrides(durationMs: 100)) }
        #expect(throws: OverrideError.self) { var o = WorkloadOverrides(); o.rate = 0; _ = try w.overriding(o) }
        #expect(try w.overriding(WorkloadOverrides(durationMs: 500)).groups[0].rate == 2)
    }

    @Test func unreadableFileIsAnError() {
        #expect(throws: WorkloadError.self) { try Workload.load(path: "/nonexistent/pagestorm/x.toml", machine: testMachine) }
    }
}
