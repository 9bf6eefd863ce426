/// A bad `--policy`, `--harness` or `--fail-page-alloc` argument.
public struct OverrideError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
