import Testing
@testable import PoolerConfig

@Suite struct AuthFileTests {
    @Test func parsesUserlist() throws {
        let users = try AuthFile.parse(text: """
            ; comment
            "alice" "secret"
              "bob"   "md545f2603610af569b6155c45067268c6b" extra fields ignored

            "quo""te" "pa""ss"
            "empty" ""
            "alice" "changed"
            "scram" "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
            """)
        #expect(users == [
            "alice": "changed",
            "bob": "md545f2603610af569b6155c45067268c6b",
            "quo\"te": "pa\"ss",
            "empty": "",
            "scram": "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy",
        ])
        #expect(try AuthFile.entries(text: "\"a\" \"1\"\n\"a\" \"2\"\n").map(\.secret) == ["1", "2"])
    }

    @Test func brokenLines() {
        #expect(throws: ConfigError(file: "userlist.txt", line: 2, "broken auth file")) {
            try AuthFile.parse(text: "\"a\" \"b\"\nalice secret\n", fileName: "userlist.txt")
        }
        #expect(throws: ConfigError(file: "userlist.txt", line: 1, "broken auth file")) {
            try AuthFile.parse(text: "\"a\" \"b", fileName: "userlist.txt")
        }
        let long = String(repeating: "u", count: 128)
        #expect(throws: ConfigError(file: "auth_file", line: 1, "username too long in auth file")) {
            try AuthFile.parse(text: "\"\(long)\" \"b\"")
        }
    }

    @Test func loadReportsMissingFile() {
        #expect(throws: ConfigError("could not load auth_file \"/nonexistent/userlist.txt\": No such file or directory")) {
            try AuthFile.load(path: "/nonexistent/userlist.txt")
        }
    }
}
