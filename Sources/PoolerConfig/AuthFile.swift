/// One line of an auth file.
public struct AuthFileEntry: Equatable, Sendable {
    public var user: String
    /// A plain-text password, `md5...` hash or `SCRAM-SHA-256$...` secret.
    public var secret: String

    public init(user: String, secret: String) {
        self.user = user
        self.secret = secret
    }
}

/// PgBouncer's auth file (userlist.txt): `"user" "password"` per line, `""` for a
/// quote inside a field, anything after the second field ignored, lines starting
/// with `;` and blank lines skipped. A later line for the same user wins.
public enum AuthFile {
    static let maxUserLength = 128  // PgBouncer's MAX_USERNAME, including its terminator
    static let maxPasswordLength = 2048  // MAX_PASSWORD

    public static func load(path: String) throws(ConfigError) -> [String: String] {
        try parse(text: FileReading.read(path, what: "auth_file"), fileName: path)
    }

    public static func parse(text: String, fileName: String = "auth_file") throws(ConfigError) -> [String: String] {
        var secrets: [String: String] = [:]
        for entry in try entries(text: text, fileName: fileName) {
            secrets[entry.user] = entry.secret
        }
        return secrets
    }

    /// The lines of an auth file in order, duplicates included.
    public static func entries(text: String, fileName: String = "auth_file") throws(ConfigError) -> [AuthFileEntry] {
        let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n")
        let bytes = Array(text.utf8)
        var position = 0
        var result: [AuthFileEntry] = []

        func lineNumber() -> Int { 1 + bytes[..<min(position, bytes.count)].reduce(0) { $0 + ($1 == newline ? 1 : 0) } }
        func fail(_ message: String) -> ConfigError { ConfigError(file: fileName, line: lineNumber(), message) }
        /// Reads a quoted field starting after its opening quote; `""` is a quote.
        func field(limit: Int, tooLong: String) throws(ConfigError) -> String {
            var value: [UInt8] = []
            while true {
                guard position < bytes.count else { throw fail("broken auth file") }
                let byte = bytes[position]
                position += 1
                if byte == quote {
                    guard position < bytes.count, bytes[position] == quote else { break }
                    position += 1
                }
                value.append(byte)
            }
            guard value.count < limit else { throw fail(tooLong) }
            return String(decoding: value, as: UTF8.self)
        }

        while true {
            while position < bytes.count, ValueParsing.isSpace(bytes[position]) { position += 1 }
            guard position < bytes.count else { return result }
            if bytes[position] == UInt8(ascii: ";") {
                while position < bytes.count, bytes[position] != newline { position += 1 }
                continue
            }
            guard bytes[position] == quote else { throw fail("broken auth file") }
            position += 1
            let user = try field(limit: maxUserLength, tooLong: "username too long in auth file")
            // Like PgBouncer, anything up to the next quote separates the fields.
            while position < bytes.count, bytes[position] != quote { position += 1 }
            guard position < bytes.count else { throw fail("broken auth file") }
            position += 1
            let secret = try field(limit: maxPasswordLength, tooLong: "password too long in auth file")
            result.append(AuthFileEntry(user: user, secret: secret))
            while position < bytes.count, bytes[position] != newline { position += 1 }
        }
    }
}
