/// The `[policy]` table of a workload: one row per knob, with its default and
/// what it will mean (mimalloc's options.c habit: one table of name, default,
/// description).
///
/// NOT BUILT YET: the slow-path policies themselves (retry, OOM, reserves,
/// NOFAIL, reservations, fault injection) come with the slow-path issue. Today
/// the harness only checks these settings, fills in the defaults, and records
/// them in every results file, so runs made now stay comparable with runs made
/// once the policies exist. The allocator currently behaves as the defaults
/// describe only where it already can (ALLOC_OOM/ATOMIC/HIGH reserve shares);
/// it never retries, reclaims or kills.
public enum Policy {
    public struct Knob: Sendable {
        public let key: String
        public let defaultValue: String
        /// Accepted values: exact strings, or patterns like `retries=N`.
        public let accepted: [String]
        public let meaning: String
    }

    public static let knobs: [Knob] = [
        Knob(key: "retry", defaultValue: "kernel", accepted: ["kernel", "legacy", "retries=N"],
             meaning: "slow-path retry rule: kernel (6.x should_reclaim_retry, 16 retries without progress), legacy (order <= 3 never fails, pre-2015), retries=N (Hocko's knob)"),
        Knob(key: "oom", defaultValue: "async", accepted: ["async", "sync"],
             meaning: "OOM killer: async (kill, then poll) or sync (wait on the victim's exit on a wait queue, with a timeout; Weiner)"),
        Knob(key: "oom_reaper", defaultValue: "on", accepted: ["on", "off"],
             meaning: "oom_reaper thread frees a victim's memory without waiting for it to exit (4.6+)"),
        Knob(key: "oom_victim_timeout_ms", defaultValue: "off", accepted: ["off", "N"],
             meaning: "move on to the next OOM victim after N ms"),
        Knob(key: "oom_reserve", defaultValue: "victim", accepted: ["none", "victim", "victim+issuer"],
             meaning: "who may dip below MIN after an OOM kill: the victims (ALLOC_OOM, kernel), and also the allocation that issued the kill (Weiner's private OOM watermark)"),
        Knob(key: "nofail", defaultValue: "allocator", accepted: ["allocator", "caller-loop"],
             meaning: "__GFP_NOFAIL inside the allocator, or as a caller-side retry loop with a 'possible memory allocation deadlock' canary (the XFS way)"),
        Knob(key: "nofail_reserve", defaultValue: "on", accepted: ["on", "off"],
             meaning: "NOFAIL may use ALLOC_NO_WATERMARKS after an OOM attempt"),
        Knob(key: "atomic_reserve", defaultValue: "on", accepted: ["on", "off"],
             meaning: "the ATOMIC and HIGH partial reserves (MIN shares 62.5% / 50%)"),
        Knob(key: "reservations", defaultValue: "off", accepted: ["off", "on"],
             meaning: "Chinner's transaction reservations: reserve pages before a lock transaction by raising the watermark"),
        Knob(key: "fault_injection", defaultValue: "off", accepted: ["off", "probability=P,interval=I,times=T,space=S,min-order=O,ignore-gfp-wait=Y|N,ignore-gfp-highmem=Y|N"],
             meaning: "fail_page_alloc knobs with their kernel semantics"),
        Knob(key: "need_levels", defaultValue: "record", accepted: ["record", "enforce"],
             meaning: "Ts'o's levels of need: record (charge failures by level) or enforce (a later policy lets level-0 requests fail first)"),
    ]

    public static var keys: [String] { knobs.map(\.key) }
    public static var defaults: [String: String] {
        var d: [String: String] = [:]
        for k in knobs { d[k.key] = k.defaultValue }
        return d
    }

    /// Checks one value; returns a reason when it is not accepted.
    public static func check(key: String, value: String) -> String? {
        guard let knob = knobs.first(where: { $0.key == key }) else { return "unknown policy" }
        switch key {
        case "retry":
            if value == "kernel" || value == "legacy" { return nil }
            if value.hasPrefix("retries="), let n = Int(value.dropFirst(8)), n >= 0 { return nil }
        case "oom_victim_timeout_ms":
            if value == "off" { return nil }
            if let n = Int(value), n > 0 { return nil }
        case "fault_injection":
            if value == "off" { return nil }
            return checkFaultInjection(value)
        default:
            if knob.accepted.contains(value) { return nil }
        }
        return "'\(value)' is not accepted; expected \(knob.accepted.joined(separator: " | "))"
    }

    static func checkFaultInjection(_ value: String) -> String? {
        let known = ["probability", "interval", "times", "space", "min-order", "ignore-gfp-wait", "ignore-gfp-highmem", "verbose"]
        for part in value.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, known.contains(kv[0]) else {
                return "fault_injection: '\(part)' is not KNOB=VALUE with a fail_page_alloc knob (\(known.joined(separator: ", ")))"
            }
            if kv[0].hasPrefix("ignore-") {
                guard kv[1] == "Y" || kv[1] == "N" else { return "fault_injection: \(kv[0]) must be Y or N" }
            } else {
                guard let n = Int(kv[1]), n >= (kv[0] == "times" ? -1 : 0) else { return "fault_injection: \(kv[0]) must be an integer\(kv[0] == "times" ? " >= -1" : " >= 0")" }
                if kv[0] == "probability" && n > 100 { return "fault_injection: probability is a percentage, 0...100" }
            }
        }
        return nil
    }
}

import Foundation
