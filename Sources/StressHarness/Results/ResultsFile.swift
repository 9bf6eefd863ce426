import Foundation

/// Writing results: pretty, sorted-key JSON, written atomically (a
/// temporary file in the same directory, then rename), so a reader never
/// sees half a file and Ctrl-C never leaves one.
public enum ResultsFile {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        let data = try encoder().encode(value)
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url, options: .atomic)
    }

    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
