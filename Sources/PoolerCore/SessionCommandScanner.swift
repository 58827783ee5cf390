import Glibc

/// A session-level command found in a client's query text.
public enum SessionCommand: Equatable, Sendable {
    /// `SET [SESSION] name { TO | = } value` or `SET TIME ZONE value`; `value` is SQL
    /// text to replay as `SET name TO value`. Names are lowercased.
    case set(name: String, value: String)
    /// `SELECT set_config('name', 'value', false)`: the value string, unquoted.
    case setConfig(name: String, value: String)
    /// `RESET name` or `SET name TO DEFAULT`.
    case reset(name: String)
    case resetAll
    /// `DISCARD ALL`: settings and prepared statements go.
    case discardAll
    /// `DEALLOCATE ALL` / `DEALLOCATE PREPARE ALL`.
    case deallocateAll
}

/// Finds SET/RESET/set_config/DISCARD/DEALLOCATE at the start of each statement of a
/// query, without a SQL parser: statements are split on semicolons outside quotes and
/// comments, and only a statement's leading words are looked at. `SET LOCAL` and
/// `SET TRANSACTION` last one transaction and are ignored.
public enum SessionCommandScanner {
    public static func scan(_ text: String) -> [SessionCommand] {
        var commands: [SessionCommand] = []
        for statement in statements(Array(text.utf8)) {
            if let command = classify(statement) { commands.append(command) }
        }
        return commands
    }

    /// Cheap pre-check on raw bytes so ordinary queries cost a few comparisons: true
    /// when the first word is SET, RESET, DISCARD or DEALLOCATE, when a SELECT mentions
    /// set_config, or when a second statement follows a semicolon. It runs on every
    /// simple query, so it reads bytes through a raw pointer and compares letters
    /// case-insensitively with `| 0x20` (exact for letters, which are all it compares).
    public static func mightContainSessionCommand(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let count = bytes.count
        var i = 0
        while true { // skip whitespace and -- comments before the first word
            while i < count, isSpace(base.load(fromByteOffset: i, as: UInt8.self)) { i += 1 }
            if i + 1 < count, base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "-"),
               base.load(fromByteOffset: i + 1, as: UInt8.self) == UInt8(ascii: "-") {
                while i < count, base.load(fromByteOffset: i, as: UInt8.self) != UInt8(ascii: "\n") { i += 1 }
                continue
            }
            break
        }
        guard i < count else { return false }
        switch base.load(fromByteOffset: i, as: UInt8.self) | 0x20 {
        case UInt8(ascii: "/"):
            return true // a block comment: let the scanner handle it
        case UInt8(ascii: "s"):
            // SELECT (most queries) in two loads: "sele" and "ct", case folded.
            if i + 7 <= count,
               UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) | 0x2020_2020 == 0x656c_6573,
               UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt16.self)) | 0x2020 == 0x7463,
               !isIdentifierByte(base.load(fromByteOffset: i + 6, as: UInt8.self)) {
                return callsSetConfig(base, count, after: i + 6) || hasSecondStatement(base, count)
            }
            // (A SELECT that ends the text has nothing after it to call set_config.)
            if isWord(base, count, at: i, "set") { return true }
        case UInt8(ascii: "r"):
            if isWord(base, count, at: i, "reset") { return true }
        case UInt8(ascii: "d"):
            if isWord(base, count, at: i, "discard") || isWord(base, count, at: i, "deallocate") { return true }
        default:
            break
        }
        return hasSecondStatement(base, count)
    }

    /// `classify` recognizes set_config only as the word right after SELECT (comments
    /// aside), so only that word is looked at: "set_config" in any case, or quoted; a
    /// comment there may hide it, so it counts too (the full scan decides).
    @inline(__always)
    private static func callsSetConfig(_ base: UnsafeRawPointer, _ count: Int, after start: Int) -> Bool {
        var j = start
        while j < count, isSpace(base.load(fromByteOffset: j, as: UInt8.self)) { j += 1 }
        guard j < count else { return false }
        switch base.load(fromByteOffset: j, as: UInt8.self) {
        case UInt8(ascii: "/"), UInt8(ascii: "-"):
            return true
        case UInt8(ascii: "\""):
            return hasLetters(base, count, at: j + 1, "set_config") && j + 11 < count
                && base.load(fromByteOffset: j + 11, as: UInt8.self) == UInt8(ascii: "\"")
        default:
            return isWord(base, count, at: j, "set_config")
        }
    }

    /// `word` (lowercase ASCII letters and '_') at `start`, letters in any case. `| 0x20`
    /// folds case exactly for letters and keeps '_' apart from every letter.
    @inline(__always)
    private static func hasLetters(_ base: UnsafeRawPointer, _ count: Int, at start: Int, _ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard start >= 0, start + length <= count else { return false }
        let letters = word.utf8Start
        for k in 0..<length where base.load(fromByteOffset: start + k, as: UInt8.self) | 0x20 != letters[k] | 0x20 {
            return false
        }
        return true
    }

    /// `word` at `start`, followed by the end or a byte that cannot continue an identifier.
    @inline(__always)
    private static func isWord(_ base: UnsafeRawPointer, _ count: Int, at start: Int, _ word: StaticString) -> Bool {
        guard hasLetters(base, count, at: start, word) else { return false }
        let end = start + word.utf8CodeUnitCount
        return end == count || !isIdentifierByte(base.load(fromByteOffset: end, as: UInt8.self))
    }

    /// A semicolon followed by anything but whitespace (or the NUL ending a message).
    @inline(__always)
    private static func hasSecondStatement(_ base: UnsafeRawPointer, _ count: Int) -> Bool {
        guard let hit = memchr(base, Int32(UInt8(ascii: ";")), count) else { return false }
        var k = base.distance(to: UnsafeRawPointer(hit)) + 1
        while k < count {
            let byte = base.load(fromByteOffset: k, as: UInt8.self)
            if !isSpace(byte) && byte != 0 && byte != UInt8(ascii: ";") { return true }
            k += 1
        }
        return false
    }

    private static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C
    }

    /// Splits on `;` outside quotes, identifiers, dollar quotes and comments; comments dropped.
    static func statements(_ bytes: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                let quote = b
                // E'...' strings take backslash escapes (E'\'' is one quote inside).
                let escapes = quote == UInt8(ascii: "'") && current.count >= 1
                    && (current[current.count - 1] | 0x20) == UInt8(ascii: "e")
                    && (current.count == 1 || !isIdentifierByte(current[current.count - 2]))
                current.append(b); i += 1
                while i < n {
                    current.append(bytes[i])
                    if escapes && bytes[i] == UInt8(ascii: "\\") && i + 1 < n {
                        current.append(bytes[i + 1])
                        i += 2
                        continue
                    }
                    if bytes[i] == quote {
                        if i + 1 < n && bytes[i + 1] == quote { current.append(bytes[i + 1]); i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                continue
            }
            if b == UInt8(ascii: "-") && i + 1 < n && bytes[i + 1] == UInt8(ascii: "-") {
                while i < n && bytes[i] != UInt8(ascii: "\n") { i += 1 }
                current.append(0x20)
                continue
            }
            if b == UInt8(ascii: "/") && i + 1 < n && bytes[i + 1] == UInt8(ascii: "*") {
                i += 2
                while i + 1 < n && !(bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i += 2
                current.append(0x20)
                continue
            }
            // A dollar quote cannot start inside an identifier (a$b$ is one name).
            if b == UInt8(ascii: "$"), current.last.map({ !isIdentifierByte($0) && $0 != UInt8(ascii: "$") }) ?? true {
                // Dollar quote: $tag$ ... $tag$
                var j = i + 1
                while j < n && (isIdentifierByte(bytes[j])) && bytes[j] != UInt8(ascii: "$") { j += 1 }
                if j < n && bytes[j] == UInt8(ascii: "$") {
                    let tag = Array(bytes[i...j])
                    current.append(contentsOf: tag)
                    i = j + 1
                    while i < n {
                        if bytes[i] == UInt8(ascii: "$") && i + tag.count <= n && bytes[i..<i + tag.count].elementsEqual(tag) {
                            current.append(contentsOf: tag)
                            i += tag.count
                            break
                        }
                        current.append(bytes[i]); i += 1
                    }
                    continue
                }
            }
            if b == UInt8(ascii: ";") {
                result.append(current)
                current = []
                i += 1
                continue
            }
            current.append(b)
            i += 1
        }
        result.append(current)
        return result
    }

    private static func isIdentifierByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b >= 0x80
    }

    /// Tokenizer over one statement: words, quoted identifiers, and single punctuation.
    private struct Tokens {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count && SessionCommandScanner.isSpace(bytes[i]) { i += 1 }
        }

        /// Next word (lowercased) or quoted identifier (as written), or a punctuation byte.
        mutating func next() -> String? {
            skipSpace()
            guard i < bytes.count else { return nil }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                var j = i + 1
                var name: [UInt8] = []
                while j < bytes.count {
                    if bytes[j] == UInt8(ascii: "\"") {
                        if j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "\"") { name.append(bytes[j]); j += 2; continue }
                        break
                    }
                    name.append(bytes[j]); j += 1
                }
                // Past the closing quote; an unterminated one ends the statement (found
                // by fuzzing: `SET x "to` left `i` past the end, and rest() trapped).
                i = min(j + 1, bytes.count)
                return String(decoding: name, as: UTF8.self)
            }
            if SessionCommandScanner.isIdentifierByte(b) || b == UInt8(ascii: ".") {
                var j = i
                while j < bytes.count && (SessionCommandScanner.isIdentifierByte(bytes[j]) || bytes[j] == UInt8(ascii: ".")) { j += 1 }
                defer { i = j }
                return String(decoding: bytes[i..<j], as: UTF8.self).lowercased()
            }
            i += 1
            return String(UnicodeScalar(b))
        }

        /// The rest of the statement, trimmed.
        mutating func rest() -> String {
            skipSpace()
            var end = bytes.count
            while end > i && SessionCommandScanner.isSpace(bytes[end - 1]) { end -= 1 }
            defer { i = bytes.count }
            return String(decoding: bytes[i..<end], as: UTF8.self)
        }

        /// A single-quoted string literal's contents.
        mutating func stringLiteral() -> String? {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "'") else { return nil }
            var j = i + 1
            var value: [UInt8] = []
            while j < bytes.count {
                if bytes[j] == UInt8(ascii: "'") {
                    if j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "'") { value.append(bytes[j]); j += 2; continue }
                    i = j + 1
                    return String(decoding: value, as: UTF8.self)
                }
                value.append(bytes[j]); j += 1
            }
            return nil
        }
    }

    static func classify(_ statement: [UInt8]) -> SessionCommand? {
        var tokens = Tokens(bytes: statement)
        // A quoted identifier is never a keyword: `"reset" x` is not RESET (found by fuzzing).
        tokens.skipSpace()
        guard tokens.i < statement.count, statement[tokens.i] != UInt8(ascii: "\"") else { return nil }
        guard let first = tokens.next() else { return nil }
        switch first {
        case "set":
            guard var name = tokens.next() else { return nil }
            if name == "local" || name == "transaction" { return nil }
            if name == "session" {
                guard let next = tokens.next() else { return nil }
                if next == "characteristics" || next == "authorization" { return nil }
                name = next
            }
            if name == "time" {
                guard tokens.next() == "zone" else { return nil }
                let value = tokens.rest()
                if value.lowercased() == "default" || value.lowercased() == "local" { return .reset(name: "timezone") }
                return value.isEmpty ? nil : .set(name: "timezone", value: value)
            }
            if name == "role" || name == "session_authorization" || name == "names" || name == "schema" || name == "xml" {
                // Forms with their own grammar; not replayable as `SET name TO value`.
                return nil
            }
            guard let op = tokens.next(), op == "=" || op == "to" else { return nil }
            let value = tokens.rest()
            if value.isEmpty { return nil }
            if value.lowercased() == "default" { return .reset(name: name.lowercased()) }
            return .set(name: name.lowercased(), value: value)
        case "reset":
            guard let name = tokens.next() else { return nil }
            if name == "all" { return .resetAll }
            if name == "session" || name == "role" { return nil }
            return .reset(name: name.lowercased())
        case "discard":
            return tokens.next() == "all" ? .discardAll : nil
        case "deallocate":
            var word = tokens.next()
            if word == "prepare" { word = tokens.next() }
            return word == "all" ? .deallocateAll : nil
        case "select":
            guard tokens.next() == "set_config", tokens.next() == "(",
                  let name = tokens.stringLiteral(), tokens.next() == ",",
                  let value = tokens.stringLiteral(), tokens.next() == ",",
                  tokens.next() == "false", tokens.next() == ")", tokens.next() == nil else { return nil }
            return .setConfig(name: name.lowercased(), value: value)
        default:
            return nil
        }
    }

    /// A value as a SQL string literal.
    public static func quoteLiteral(_ value: String) -> String {
        // Per Unicode scalar, not per Character: a quote followed by a combining mark is
        // one Character, and it must still be doubled (found by fuzzing).
        var result = String.UnicodeScalarView()
        result.append("'")
        for scalar in value.unicodeScalars {
            if scalar == "'" { result.append("'") }
            result.append(scalar)
        }
        result.append("'")
        return String(result)
    }
}
