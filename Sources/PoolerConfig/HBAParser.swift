import Glibc

/// PgBouncer's HBA tokenizer (next_token in src/hba.c) over one line: words end at
/// whitespace, `,`, `#` or `"`; `"..."` is a quoted string with `""` for a quote;
/// `#` or the end of the line ends the line.
struct HBATokenizer {
    enum Token: Equatable {
        case ident(String)
        case string(String)
        case comma
        case end
        /// An unterminated quoted string.
        case fail
    }

    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int
    private(set) var current: Token = .end

    init(_ line: ArraySlice<UInt8>) {
        bytes = line
        position = line.startIndex
        advance()
    }

    /// The text after the current token, for `ldap` options.
    var rest: String { String(decoding: bytes[position...], as: UTF8.self) }

    mutating func advance() {
        if current == .end && position >= bytes.endIndex { return }
        while position < bytes.endIndex, ValueParsing.isSpace(bytes[position]) { position += 1 }
        guard position < bytes.endIndex, bytes[position] != UInt8(ascii: "#") else {
            current = .end
            position = bytes.endIndex
            return
        }
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        switch bytes[position] {
        case comma:
            position += 1
            current = .comma
        case quote:
            var value: [UInt8] = []
            var index = position + 1
            while true {
                guard index < bytes.endIndex else {
                    current = .fail
                    position = bytes.endIndex
                    return
                }
                if bytes[index] == quote {
                    if index + 1 < bytes.endIndex, bytes[index + 1] == quote {
                        value.append(quote)
                        index += 2
                        continue
                    }
                    break
                }
                value.append(bytes[index])
                index += 1
            }
            position = index + 1
            current = .string(String(decoding: value, as: UTF8.self))
        default:
            var end = position + 1
            while end < bytes.endIndex {
                let byte = bytes[end]
                if byte == comma || byte == quote || byte == UInt8(ascii: "#") || ValueParsing.isSpace(byte) { break }
                end += 1
            }
            current = .ident(String(decoding: bytes[position..<end], as: UTF8.self))
            position = end
        }
    }

    /// The current token as text for messages.
    var text: String {
        switch current {
        case .ident(let s): return s
        case .string(let s): return "\"" + s + "\""
        case .comma: return ","
        case .end: return ""
        case .fail: return "\""
        }
    }
}

/// Line-by-line parser producing `HBARule`s (PgBouncer's parse_line / parse_names).
struct HBAParser {
    let fileName: String
    let identMaps: HBAIdentMaps?
    let readFile: (String) throws(ConfigError) -> String
    private var warnings: [ConfigError] = []

    /// `@file` lists may include further lists; this bounds self-inclusion.
    static let maxIncludeDepth = 10

    init(fileName: String, identMaps: HBAIdentMaps?, readFile: @escaping (String) throws(ConfigError) -> String) {
        self.fileName = fileName
        self.identMaps = identMaps
        self.readFile = readFile
    }

    static func lines(_ text: String) -> [ArraySlice<UInt8>] {
        Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    }

    mutating func parseFile(_ text: String, skipInvalidLines: Bool) throws(ConfigError) -> (hba: HBA, errors: [ConfigError]) {
        var rules: [HBARule] = []
        var errors: [ConfigError] = []
        for (index, line) in HBAParser.lines(text).enumerated() {
            do {
                if let rule = try parseLine(line, number: index + 1) { rules.append(rule) }
            } catch {
                guard skipInvalidLines else { throw error }
                errors.append(error)
            }
        }
        return (HBA(rules: rules, warnings: warnings), errors)
    }

    private mutating func parseLine(_ line: ArraySlice<UInt8>, number: Int) throws(ConfigError) -> HBARule? {
        var tokens = HBATokenizer(line)
        func fail(_ message: String) -> ConfigError { ConfigError(file: fileName, line: number, message) }

        let type: HBARecordType
        switch tokens.current {
        case .end: return nil
        case .ident("local"): type = .local
        case .ident("host"): type = .host
        case .ident("hostssl"): type = .hostSSL
        case .ident("hostnossl"): type = .hostNoSSL
        default: throw fail("unknown type: \(tokens.text)")
        }
        tokens.advance()

        var databases = HBANames()
        try parseNames(&tokens, into: &databases, column: "database", file: fileName, line: number, depth: 0)
        var users = HBANames()
        try parseNames(&tokens, into: &users, column: "user", file: fileName, line: number, depth: 0)

        let address: HBAAddress
        if type == .local {
            address = .unixSocket
        } else if tokens.current == .ident("all") {
            address = .all
            tokens.advance()
        } else {
            guard case .ident(let text) = tokens.current else {
                throw fail(tokens.current == .fail ? "unterminated quoted string" : "did not find address")
            }
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let addressText = String(parts[0])
            guard let base = HBAParser.ipAddress(addressText) else {
                if addressText == "samehost" || addressText == "samenet" {
                    throw fail("\(addressText) is not supported")
                }
                throw fail("failed to parse address - \(addressText)")
            }
            let mask: [UInt8]
            if parts.count == 2 {
                guard let bits = HBAParser.maskBits(parts[1], family: base.count) else { throw fail("invalid mask") }
                mask = HBAParser.mask(bits: bits, count: base.count)
                tokens.advance()
            } else {
                tokens.advance()
                guard case .ident(let maskText) = tokens.current else { throw fail("did not find mask") }
                guard let parsed = HBAParser.ipAddress(maskText, family: base.count) else {
                    throw fail("failed to parse mask: \(maskText)")
                }
                mask = parsed
                tokens.advance()
            }
            if zip(base, mask).contains(where: { $0 & ~$1 != 0 }) {
                warnings.append(fail("address does not match mask: \(HBAParser.format(base)) / \(HBAParser.format(mask))"))
            }
            address = .network(address: base, mask: mask)
        }

        let method: HBAMethod
        var ldapOptions: String?
        switch tokens.current {
        case .ident("trust"): method = .trust
        case .ident("reject"): method = .reject
        case .ident("md5"): method = .md5
        case .ident("password"): method = .password
        case .ident("peer"): method = .peer
        case .ident("cert"): method = .cert
        case .ident("scram-sha-256"): method = .scramSHA256
        case .ident("ldap"): method = .ldap
        case .end: throw fail("missing authentication method")
        default: throw fail("unsupported method: \(tokens.text)")
        }
        if method == .ldap {
            // PgBouncer hands the rest of the line, verbatim, to its LDAP code.
            let options = tokens.rest
            ldapOptions = String(decoding: options.utf8.drop(while: ValueParsing.isSpace)
                .reversed().drop(while: ValueParsing.isSpace).reversed(), as: UTF8.self)
            while tokens.current != .end { tokens.advance() }
        } else {
            tokens.advance()
        }
        if method == .peer && type != .local {
            warnings.append(fail("peer authentication is only supported on local sockets"))
        }

        var identMap: String?
        if case .ident(let option) = tokens.current {
            guard option.hasPrefix("map=") else {
                throw fail("Ident map \(option) is malformed. It is not in map=value format.")
            }
            let name = String(option.dropFirst(4))
            guard identMaps?.contains(map: name) == true else {
                throw fail("Ident map \(name) is not found in ident config file")
            }
            identMap = name
            tokens.advance()
        }
        guard tokens.current == .end else { throw fail("unsupported parameters") }

        return HBARule(type: type, databases: databases, users: users, address: address, method: method,
                       identMap: identMap, ldapOptions: ldapOptions, lineNumber: number)
    }

    /// PgBouncer's parse_names(): a comma list of names and keywords. PgBouncer uses the
    /// database keywords for both columns (`parse_names(..., true, ...)` twice).
    private func parseNames(_ tokens: inout HBATokenizer, into names: inout HBANames, column: String,
                            file: String, line: Int, depth: Int) throws(ConfigError) {
        while true {
            try parseName(&tokens, into: &names, column: column, file: file, line: line, depth: depth)
            guard tokens.current == .comma else { return }
            tokens.advance()
        }
    }

    private func parseName(_ tokens: inout HBATokenizer, into names: inout HBANames, column: String,
                           file: String, line: Int, depth: Int) throws(ConfigError) {
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: line, message) }
        switch tokens.current {
        case .ident("all"): names.all = true
        case .ident("sameuser"): names.sameUser = true
        case .ident("replication"): names.replication = true
        case .ident("samerole"): throw fail("samerole is not supported")
        case .ident("samegroup"): throw fail("samegroup is not supported")
        case .ident(let name) where name.utf8.first == UInt8(ascii: "+"):
            throw fail("group names are not supported: \(name)")
        case .ident(let name) where name.utf8.first == UInt8(ascii: "@"):
            let path = HBAParser.path(String(name.dropFirst()), relativeTo: file)
            guard depth < HBAParser.maxIncludeDepth else { throw fail("@file nesting too deep: \(path)") }
            let text: String
            do {
                text = try readFile(path)
            } catch {
                throw fail(error.file == nil && error.line == nil ? error.message : error.description)
            }
            try parseNameFile(text, path: path, into: &names, column: column, depth: depth + 1)
        case .ident(let name), .string(let name): names.add(name)
        case .fail: throw fail("unterminated quoted string")
        case .comma, .end: throw fail("missing \(column) name")
        }
        tokens.advance()
    }

    /// An `@file`: names separated by commas or whitespace, on any number of lines,
    /// with `#` comments. (PgBouncer reads one comma list per line, fails on blank lines
    /// and ignores what follows a name not followed by a comma; pg_hba.conf's rules are
    /// used here instead.)
    private func parseNameFile(_ text: String, path: String, into names: inout HBANames, column: String,
                               depth: Int) throws(ConfigError) {
        for (index, line) in HBAParser.lines(text).enumerated() {
            var tokens = HBATokenizer(line)
            while tokens.current != .end {
                if tokens.current == .comma {
                    tokens.advance()
                    continue
                }
                try parseName(&tokens, into: &names, column: column, file: path, line: index + 1, depth: depth)
            }
        }
    }

    // MARK: addresses

    /// inet_pton, IPv6 tried first as PgBouncer does; `family` is 4 or 16 to force one.
    static func ipAddress(_ text: String, family: Int? = nil) -> [UInt8]? {
        var storage = [UInt8](repeating: 0, count: 16)
        if family != 4, storage.withUnsafeMutableBytes({ inet_pton(AF_INET6, text, $0.baseAddress) }) == 1 {
            return storage
        }
        if family != 16, storage.withUnsafeMutableBytes({ inet_pton(AF_INET, text, $0.baseAddress) }) == 1 {
            return Array(storage[0..<4])
        }
        return nil
    }

    /// Prefix length of `addr/bits`: decimal digits, at most 32 or 128.
    static func maskBits(_ text: Substring, family: Int) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let bits = Int(text), bits <= family * 8 else { return nil }
        return bits
    }

    static func mask(bits: Int, count: Int) -> [UInt8] {
        (0..<count).map { index in
            let remaining = bits - index * 8
            if remaining >= 8 { return 0xFF }
            if remaining <= 0 { return 0 }
            return UInt8(truncatingIfNeeded: 0xFF << (8 - remaining))
        }
    }

    static func format(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = address.count == 4 ? AF_INET : AF_INET6
        let ok = address.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        return ok ? String(cString: buffer) : "?"
    }

    /// PgBouncer's path_join_dirname(): relative names are resolved against the
    /// directory of the file that names them.
    static func path(_ name: String, relativeTo parent: String) -> String {
        if name.hasPrefix("/") { return name }
        guard let slash = parent.lastIndex(of: "/") else { return name }
        let directory = parent[..<slash]
        return directory.isEmpty ? "/" + name : directory + "/" + name
    }
}
