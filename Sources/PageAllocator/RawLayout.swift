/// Offset tables for the raw handles (Zone, PerCPUPages): each handle names
/// its fields in one enum whose rows say where a field starts, what one element
/// is, and how many there are. Accessors go through the table, and debug builds
/// check what they do, as swift-collections' `_UnsafeHandle` checks its slots:
/// the element type against the row, the base's alignment, and every index
/// (`RawElements`). The checks are `assert`s, compiled out of -O builds, so the
/// release fast path is the same plain loads and stores it was.

/// One row of an offset table.
@usableFromInline struct RawFieldRow: Equatable {
    /// Byte offset from the handle's base.
    @usableFromInline let offset: Int
    /// Stride and alignment of one element.
    @usableFromInline let stride: Int
    @usableFromInline let alignment: Int
    /// Elements in the field (1 for a scalar).
    @usableFromInline let count: Int
    /// Bytes the field may occupy (its space in the layout: `count * stride` or more).
    let space: Int

    init<T: ~Copyable>(_ offset: Int, _ type: T.Type, count: Int = 1, space: Int? = nil) {
        self.offset = offset
        stride = MemoryLayout<T>.stride
        alignment = MemoryLayout<T>.alignment
        self.count = count
        self.space = space ?? count * MemoryLayout<T>.stride
    }

    /// One past the field's last byte.
    var end: Int { offset + space }

    /// Whether an element of `T` fits this row (the accessors' debug check).
    @inlinable
    func holds<T: ~Copyable>(_ type: T.Type) -> Bool {
        MemoryLayout<T>.stride == stride && MemoryLayout<T>.alignment == alignment
    }
}

/// A raw handle's table of fields.
@usableFromInline protocol RawLayout: CaseIterable {
    /// The field's byte offset from the handle's base (a constant per case,
    /// so accessors fold it into their loads).
    var offset: Int { get }
    /// The field's row (its offset, element type and space).
    var row: RawFieldRow { get }
    /// Bytes of one handle (a zone block, a per-CPU slot).
    static var byteSize: Int { get }
    /// The alignment every handle's base has.
    static var baseAlignment: Int { get }
}

extension RawLayout {
    /// What is wrong with the table: fields that overlap, are misaligned (for
    /// their element or, through the base, absolutely), hold fewer bytes than
    /// their elements need, or run past `byteSize`. Empty when consistent.
    static func layoutProblems() -> [String] {
        var problems: [String] = []
        let rows = allCases.map { ("\($0)", $0.row) }.sorted { $0.1.offset < $1.1.offset }
        for (name, r) in rows {
            if r.offset < 0 { problems.append("\(name): negative offset \(r.offset)") }
            if r.offset % r.alignment != 0 { problems.append("\(name): offset \(r.offset) not a multiple of its alignment \(r.alignment)") }
            if baseAlignment % r.alignment != 0 { problems.append("\(name): alignment \(r.alignment) exceeds the base's \(baseAlignment)") }
            if r.space < r.count * r.stride { problems.append("\(name): \(r.count) x \(r.stride) bytes do not fit its \(r.space)") }
            if r.end > byteSize { problems.append("\(name): ends at \(r.end), past the handle's \(byteSize) bytes") }
        }
        for (a, b) in zip(rows, rows.dropFirst()) where a.1.end > b.1.offset {
            problems.append("\(a.0) (\(a.1.offset)..<\(a.1.end)) overlaps \(b.0) at \(b.1.offset)")
        }
        return problems
    }
}

/// `count` elements at a field of a raw handle. Indexing is checked in debug
/// builds only (`assert`); in -O builds it is a plain pointer subscript.
@frozen @usableFromInline
struct RawElements<Element: ~Copyable> {
    @usableFromInline let start: UnsafeMutablePointer<Element>
    @usableFromInline let count: Int

    @inlinable @inline(__always)
    init(_ start: UnsafeMutablePointer<Element>, count: Int) {
        self.start = start
        self.count = count
    }

    @inlinable
    subscript(i: Int) -> Element {
        @inline(__always) unsafeAddress {
            assert(UInt(bitPattern: i) < UInt(bitPattern: count), "raw field index \(i) out of 0..<\(count)")
            return UnsafePointer(start + i)
        }
        @inline(__always) nonmutating unsafeMutableAddress {
            assert(UInt(bitPattern: i) < UInt(bitPattern: count), "raw field index \(i) out of 0..<\(count)")
            return start + i
        }
    }
}

extension UnsafeMutableRawPointer {
    /// The field `f` of the handle at `self`, as `T`. Debug builds check that
    /// `T` is the row's element type and that the handle is aligned.
    @inlinable @inline(__always)
    func rawField<L: RawLayout, T: ~Copyable>(_ f: L, as type: T.Type) -> UnsafeMutablePointer<T> {
        assert(f.row.holds(T.self) && f.row.offset == f.offset, "\(L.self).\(f): not a field of \(T.self)")
        assert(Int(bitPattern: self) % L.baseAlignment == 0, "\(L.self): base \(self) not \(L.baseAlignment)-byte aligned")
        return (self + f.offset).assumingMemoryBound(to: T.self)
    }

    /// Loads the field `f` (a plain value kept as raw bytes), with the same debug checks.
    @inlinable @inline(__always)
    func loadField<L: RawLayout, T>(_ f: L, as type: T.Type) -> T {
        assert(f.row.holds(T.self) && f.row.count == 1, "\(L.self).\(f): not a field of \(T.self)")
        assert(Int(bitPattern: self) % L.baseAlignment == 0, "\(L.self): base \(self) not \(L.baseAlignment)-byte aligned")
        return (self + f.offset).load(as: T.self)
    }

    /// Stores `value` into the field `f` as raw bytes, with the same debug checks.
    @inlinable @inline(__always)
    func storeField<L: RawLayout, T>(_ value: T, _ f: L) {
        assert(f.row.holds(T.self) && f.row.count == 1, "\(L.self).\(f): not a field of \(T.self)")
        (self + f.offset).storeBytes(of: value, as: T.self)
    }
}
