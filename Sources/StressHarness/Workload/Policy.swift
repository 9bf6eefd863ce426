import PageAllocator

/// The `[policy]` table of a workload: exactly the allocator's slow-path
/// knobs, `SlowPathPolicy.table` (name, default, meaning), parsed by
/// `SlowPathPolicy.set`. There is no second list here: a knob added to the
/// allocator is a workload key at once.
///
/// A resolved workload stores every key with its value in the canonical
/// text `SlowPathPolicy.settings` writes (`reaper = "true"`, not `"on"`), so
/// two runs with the same policy record the same table.
public enum Policy {
    /// The keys `[policy]` accepts, in table order.
    public static var keys: [String] { SlowPathPolicy.table.map(\.name) }

    /// Every key with its default, as text.
    public static var defaults: [String: String] { canonical(SlowPathPolicy()) }

    /// The policy as `key: value` text, every key present.
    public static func canonical(_ p: SlowPathPolicy) -> [String: String] {
        Dictionary(uniqueKeysWithValues: p.settings.map { ($0.0, $0.1) })
    }

    /// Builds the allocator's policy from a `[policy]` table (every key or some).
    public static func resolve(_ table: [String: String]) throws(SlowPathPolicy.ParseError) -> SlowPathPolicy {
        var p = SlowPathPolicy()
        // Table order, so that errors come out in a stable order.
        for k in keys { if let v = table[k] { try p.set(k, v) } }
        for k in table.keys.sorted() where !keys.contains(k) { try p.set(k, table[k]!) }
        return p
    }

    /// Checks one value; returns the reason when it is not accepted.
    public static func check(key: String, value: String) -> String? {
        var p = SlowPathPolicy()
        do { try p.set(key, value) } catch { return error.description }
        return nil
    }

    /// Parses `key=value,key=value` (the CLI's `--policy`). A value may itself
    /// contain `=` (`retry=retries=3`): the first `=` splits.
    public static func parseAssignments(_ text: String, what: String) throws(OverrideError) -> [(String, String)] {
        var out: [(String, String)] = []
        for part in splitTopLevel(text) where !part.isEmpty {
            guard let eq = part.firstIndex(of: "=") else {
                throw OverrideError(message: "\(what): '\(part)' is not KEY=VALUE")
            }
            out.append((String(part[..<eq]).trimmingSpaces, String(part[part.index(after: eq)...]).trimmingSpaces))
        }
        return out
    }

    /// Splits on commas, except inside a `retry=retries=N` value (no commas
    /// there anyway); kept as a function so the rule is in one place.
    static func splitTopLevel(_ s: String) -> [String] { s.split(separator: ",").map(String.init) }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
