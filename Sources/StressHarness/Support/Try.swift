import PageAllocator

/// Shorthands for values known to be valid (tests and benchmarks build them from constants).
enum Try {
    static func order(_ o: Int) -> Order { Order(unchecked: o) }
}
