/// PgBouncer's ini syntax (libusual cfparser):
/// - leading white space is skipped, blank lines ignored;
/// - a line starting with `;` or `#` is a comment (nowhere else is either special);
/// - `[name]` starts a section; the rest of that line is read as a new line;
/// - `key = value`: the key is `[A-Za-z0-9_.*-]*` or `'any text'`, blanks may
///   surround `=`, the value runs raw to the end of the line, trailing space trimmed;
/// - `%include FILE` reads FILE (relative to the working directory), at most 10 deep.
struct IniParser {
    enum Event {
        case section(String)
        case entry(key: String, value: String)
    }

    static let maxIncludeDepth = 10

    /// Reads included files; replaceable for tests.
    var readFile: (String) throws(ConfigError) -> String = { path throws(ConfigError) in try FileReading.read(path) }

    func parse(text: String, fileName: String, depth: Int = 0,
               handler: (Event, _ file: String, _ line: Int) throws(ConfigError) -> Void) throws(ConfigError) {
        var lineNumber = 0
        // Split bytes, not Characters: "\r\n" is one Character in Swift.
        for line in Substring(text).utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var rest = line.drop(while: ValueParsing.isSpace)
            while !rest.isEmpty {
                func fail(_ message: String) -> ConfigError {
                    ConfigError(file: fileName, line: lineNumber, message)
                }
                if rest.starts(with: "%include".utf8), let after = rest.dropFirst(8).first, ValueParsing.isBlank(after) {
                    let path = string(trimTrailing(rest.dropFirst(8).drop(while: ValueParsing.isBlank)))
                    guard depth < IniParser.maxIncludeDepth else {
                        throw fail("include nesting level too deep, stopping loading")
                    }
                    let included: String
                    do {
                        included = try readFile(path)
                    } catch {
                        throw fail("error processing include file: \(error)")
                    }
                    try parse(text: included, fileName: path, depth: depth + 1, handler: handler)
                    break
                }
                guard let first = rest.first else { break }
                if first == UInt8(ascii: "#") || first == UInt8(ascii: ";") { break }
                if first == UInt8(ascii: "[") {
                    let body = rest.dropFirst()
                    guard let close = body.firstIndex(of: UInt8(ascii: "]")) else {
                        throw fail("syntax error in configuration, stopping loading")
                    }
                    try handler(.section(string(body[..<close])), fileName, lineNumber)
                    rest = body[body.index(after: close)...].drop(while: ValueParsing.isSpace)
                    continue
                }
                guard let (key, value) = keyValue(rest) else {
                    throw fail("syntax error in configuration, stopping loading")
                }
                try handler(.entry(key: key, value: value), fileName, lineNumber)
                break
            }
        }
    }

    private func keyValue(_ line: Substring.UTF8View) -> (String, String)? {
        var rest = line
        let key: Substring.UTF8View
        if rest.first == UInt8(ascii: "'") {
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: UInt8(ascii: "'")), close != rest.startIndex else { return nil }
            key = rest[..<close]
            rest = rest[rest.index(after: close)...]
        } else {
            let end = rest.firstIndex(where: { !isKeyByte($0) }) ?? rest.endIndex
            key = rest[..<end]
            rest = rest[end...]
        }
        rest = rest.drop(while: ValueParsing.isBlank)
        guard rest.first == UInt8(ascii: "=") else { return nil }
        let value = trimTrailing(rest.dropFirst().drop(while: ValueParsing.isBlank))
        return (string(key), string(value))
    }

    private func trimTrailing(_ text: Substring.UTF8View) -> Substring.UTF8View {
        var end = text.endIndex
        while end > text.startIndex, ValueParsing.isSpace(text[text.index(before: end)]) {
            end = text.index(before: end)
        }
        return text[..<end]
    }

    private func string(_ bytes: Substring.UTF8View) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    private func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."),
             UInt8(ascii: "-"), UInt8(ascii: "*"):
            return true
        default:
            return false
        }
    }
}
