import Testing
@testable import PageAllocator

@Suite struct KnobTests {
    @Test func oneBooleanParserTakesEverySpelling() {
        for t in ["true", "yes", "on", "y", "1", "TRUE", "Yes", "ON", "Y"] { #expect(parseBool(t) == true, "\(t)") }
        for f in ["false", "no", "off", "n", "0", "FALSE", "No", "Off", "N"] { #expect(parseBool(f) == false, "\(f)") }
        for bad in ["", "2", "yess", "tru", "nope", "-1"] { #expect(parseBool(bad) == nil, "\(bad)") }
    }

    @Test func tableDefaultsAreTheTypesDefaults() {
        #expect(SlowPathPolicy.rowsDisagreeingWithDefaults() == [])
        #expect(FaultInjectionSettings.rowsDisagreeingWithDefaults() == [])
    }

    @Test func everyKnobIsSetAndPrintedThroughItsRow() throws {
        var p = SlowPathPolicy()
        for (k, v) in [("retry", "retries=3"), ("oom", "sync"), ("reaper", "on"), ("oom_lock", "mutex"), ("max_stall_ms", "250"),
                       ("oom_killer_reserve", "y"), ("nofail_emergency_reserve", "off")] {
            try p.set(k, v)
        }
        #expect(p.retry == .retries(3) && p.oom == .sync && p.reaper && !p.oomLockTrylock && p.maxStallMs == 250)
        #expect(p.oomKillerReserve && !p.nofailEmergencyReserve)
        let printed = Dictionary(uniqueKeysWithValues: p.settings.map { ($0.0, $0.1) })
        #expect(printed["reaper"] == "true" && printed["retry"] == "retries=3" && printed["oom_lock"] == "mutex")
        #expect(p.settings.map(\.0) == SlowPathPolicy.keys)
        #expect(throws: SlowPathPolicy.ParseError(key: "reaper", value: "maybe", expected: "true or false (yes/no, on/off, y/n, 1/0)")) {
            try p.set("reaper", "maybe")
        }
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("retry", "retries=-1") }
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("nosuch", "1") }

        var f = FaultInjectionSettings()
        try f.set("ignore_gfp_wait", "on") // the bool parsers used to disagree: "on" was refused here, "y" in the policy
        try f.set("ignore-gfp-highmem", "n")
        try f.set("min_order", "0")
        #expect(f.ignoreGfpWait && !f.ignoreGfpHighmem && f.minOrder == 0)
        #expect(throws: ConfigError.self) { try f.set("probability", "101") }
        #expect(Set(FaultInjectionSettings.acceptedKeys).isSuperset(of: ["min-order", "min_order", "ignore_gfp_wait", "seed"]))
    }
}
