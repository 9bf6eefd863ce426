/// Walker's alias method over integer weights: an exact weighted draw from
/// one 64-bit random number (the index from its high half of r * n, the
/// column test from its low half). Plain memory, no ARC.
struct AliasTable {
    let n: Int
    /// The value when n == 1.
    let single: Int
    /// Per column: the threshold below which the column keeps its own value
    /// (UInt64.max: always), its own value, and its alias's value.
    let threshold: UnsafeMutablePointer<UInt64>
    let own: UnsafeMutablePointer<Int32>
    let other: UnsafeMutablePointer<Int32>

    /// `weights[i]` for `values[i]`; entries of weight 0 are never drawn. Needs a positive sum.
    init(weights: [Int], values: [Int]) {
        let items = zip(weights, values).filter { $0.0 > 0 }
        n = items.count
        threshold = .allocate(capacity: max(n, 1))
        own = .allocate(capacity: max(n, 1))
        other = .allocate(capacity: max(n, 1))
        let total = Double(items.reduce(0) { $0 + $1.0 })
        var scaled = items.map { Double($0.0) * Double(items.count) / total }
        var alias = Array(0..<n)
        var thresholds = [UInt64](repeating: .max, count: n)
        var small: [Int] = [], large: [Int] = []
        for (i, s) in scaled.enumerated() { if s < 1 { small.append(i) } else { large.append(i) } }
        while let s = small.popLast(), let l = large.last {
            thresholds[s] = scaled[s] >= 1 ? .max : UInt64(scaled[s] * 18_446_744_073_709_551_616.0)
            alias[s] = l
            scaled[l] -= 1 - scaled[s]
            if scaled[l] < 1 { large.removeLast(); small.append(l) }
        }
        // Leftovers (rounding) keep threshold .max: always themselves.
        for i in 0..<n {
            threshold[i] = thresholds[i]
            own[i] = Int32(items[i].1)
            other[i] = Int32(items[alias[i]].1)
        }
        single = n > 0 ? items[0].1 : 0
    }

    /// One draw: column from the high half of r * n, then a branch-free
    /// choice between the column's value and its alias's from the low half.
    @inline(__always)
    func draw(_ r: UInt64) -> Int {
        if n == 1 { return single }
        let m = r.multipliedFullWidth(by: UInt64(n))
        let i = Int(m.high)
        let keep = m.low <= threshold[i]
        return Int(keep ? own[i] : other[i])
    }

    func destroy() {
        threshold.deallocate()
        own.deallocate()
        other.deallocate()
    }
}
