/// A block a worker holds, with what it needs to check the block's pattern.
struct Held<Block> {
    var block: Block
    /// Tag the touched words were written from (0: not touched).
    var tag: UInt64
    /// Words touched at the start of each page.
    var words: Int
}

/// A deque of held blocks in raw memory (one per operation that holds blocks).
struct Pool<E> {
    let buf: UnsafeMutablePointer<E>
    let cap: Int
    var head = 0
    var count = 0

    init(capacity: Int) {
        cap = max(capacity, 1)
        buf = .allocate(capacity: cap)
    }

    @inline(__always) func slot(_ j: Int) -> UnsafeMutablePointer<E> {
        var i = head &+ j
        if i >= cap { i &-= cap }
        return buf + i
    }
    @inline(__always) mutating func pushBack(_ e: E) {
        slot(count).initialize(to: e)
        count &+= 1
    }
    @inline(__always) mutating func popBack() -> E {
        count &-= 1
        return slot(count).move()
    }
    @inline(__always) mutating func popFront() -> E {
        let e = (buf + head).move()
        head &+= 1
        if head == cap { head = 0 }
        count &-= 1
        return e
    }
    /// Removes the element at logical index `j` (the last one takes its place).
    @inline(__always) mutating func remove(at j: Int) -> E {
        let last = count &- 1
        if j != last { swap(&slot(j).pointee, &slot(last).pointee) }
        return popBack()
    }
}
