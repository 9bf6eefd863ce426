import Testing
@testable import TOMLReader

@Suite struct TOMLTests {
    @Test func parsesEveryValueKindWithLines() throws {
        let text = """
        # a comment
        name = "basic \\"quoted\\" \\u00e9"   # trailing comment
        path = 'C:\\literal'
        big = 1_000_000
        hex = 0xff_ff
        oct = 0o17
        bin = 0b101
        neg = -42
        f = 6.25e-1
        yes = true
        list = [1, 2,
          3, # comment inside
        ]
        inline = { a = 1, b.c = "x" }
        multi = \"\"\"
        one
        two\"\"\"

        [table.sub]
        key = "v"
        dotted.key = 5

        [[group]]
        name = "a"
        [[group]]
        name = "b"
        [group.extra]
        x = 1
        """
        let t = try TOML.parse(text, file: "t.toml")
        #expect(t["name"]?.string == "basic \"quoted\" é")
        #expect(t["name"]?.line == 2)
        #expect(t["path"]?.string == "C:\\literal")
        #expect(t["big"]?.integer == 1_000_000)
        #expect(t["hex"]?.integer == 0xffff)
        #expect(t["oct"]?.integer == 15)
        #expect(t["bin"]?.integer == 5)
        #expect(t["neg"]?.integer == -42)
        #expect(t["f"]?.number == 0.625)
        #expect(t["yes"]?.bool == true)
        #expect(t["list"]?.array?.compactMap(\.integer) == [1, 2, 3])
        #expect(t["list"]?.line == 11)
        let inline = try #require(t["inline"]?.table)
        #expect(inline["a"]?.integer == 1)
        #expect(inline["b"]?.table?["c"]?.string == "x")
        #expect(t["multi"]?.string == "one\ntwo")
        let sub = try #require(t["table"]?.table?["sub"]?.table)
        #expect(sub.line == 19)
        #expect(sub["key"]?.line == 20)
        #expect(sub["dotted"]?.table?["key"]?.integer == 5)
        let groups = try #require(t["group"]?.array)
        #expect(groups.count == 2)
        #expect(groups[0].table?["name"]?.string == "a")
        #expect(groups[1].table?["extra"]?.table?["x"]?.integer == 1)
        #expect(groups[1].line == 25)
        #expect(t.keys == ["name", "path", "big", "hex", "oct", "bin", "neg", "f", "yes", "list", "inline", "multi", "table", "group"])
    }

    @Test(arguments: [
        ("a = ", 1, "expected a value"),
        ("a = 1\na = 2", 2, "defined twice"),
        ("[t]\n[t]", 2, "defined twice"),
        ("a = \"open", 1, "not closed"),
        ("a = 01", 1, "leading zeros"),
        ("a = 1__0", 1, "underscore"),
        ("a = _1", 1, "quotes"),
        ("a = 99999999999999999999", 1, "64-bit"),
        ("a = 1979-05-27", 1, "dates"),
        ("a = bare", 1, "quotes"),
        ("a = [1, 2", 1, "never closed"),
        ("a = { b = 1", 1, "not closed"),
        ("a = 1 b = 2", 1, "end of the line"),
        ("a = \"\\q\"", 1, "invalid escape"),
        ("x = 1\n[x]", 2, "conflicts"),
        ("[[x]]\n[x]", 2, "conflicts"),
        ("a.b = 1\n[a.b]", 2, "conflicts"),
        ("\n\n[bad", 3, "']'"),
        ("= 1", 1, "expected a key"),
    ] as [(String, Int, String)])
    func rejectsMalformedInputWithItsLine(text: String, line: Int, fragment: String) {
        do {
            _ = try TOML.parse(text, file: "bad.toml")
            Issue.record("parsed \(text.debugDescription) without an error")
        } catch {
            #expect(error.file == "bad.toml")
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(fragment), "\(error)")
            #expect(error.description.hasPrefix("bad.toml:\(line):"))
        }
    }
}
