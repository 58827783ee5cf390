/// The `key=value key2='quoted value'` strings of `[databases]`, `[users]` and
/// `[peers]`, read as PgBouncer reads them: pairs separated by spaces, a value
/// either quoted with `'` (`''` for a quote inside) or running to the next space;
/// empty values are a syntax error.
enum ConnectionString {
    struct SyntaxError: Error {}

    static func pairs(_ text: String) throws(SyntaxError) -> [(key: String, value: String)] {
        let space = UInt8(ascii: " "), quote = UInt8(ascii: "'"), equals = UInt8(ascii: "=")
        var result: [(key: String, value: String)] = []
        var rest = Substring(text).utf8[...]
        while true {
            rest = rest.drop(while: { $0 == space })
            if rest.isEmpty { return result }
            let keyEnd = rest.firstIndex(where: { $0 == equals || $0 == space }) ?? rest.endIndex
            let key = rest[..<keyEnd]
            rest = rest[keyEnd...].drop(while: { $0 == space })
            guard !key.isEmpty, rest.first == equals else { throw SyntaxError() }
            rest = rest.dropFirst().drop(while: { $0 == space })
            var value: [UInt8] = []
            if rest.first == quote {
                rest = rest.dropFirst()
                while true {
                    guard let byte = rest.first else { throw SyntaxError() }
                    rest = rest.dropFirst()
                    if byte == quote {
                        guard rest.first == quote else { break }
                        rest = rest.dropFirst()
                    }
                    value.append(byte)
                }
            } else {
                let end = rest.firstIndex(of: space) ?? rest.endIndex
                value = Array(rest[..<end])
                rest = rest[end...]
            }
            // PgBouncer cuts the value at the character after it, whatever it is.
            rest = rest.dropFirst()
            guard !value.isEmpty else { throw SyntaxError() }
            result.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
    }

}
