// Console command parser with the grammar of PgBouncer's admin.c regexes (REG_ICASE):
//   CMD [ARG]          ^WS0 WORD (WS1 WORD)? WS0 (; WS0)?$
//   SET key = 'str'    ^WS0 set WS1 WORD WS0 (=|to) WS0 STRING WS0 (; WS0)?$
//   SET key = word     ^WS0 set WS1 WORD WS0 (=|to) WS0 WORD WS0 (; WS0)?$
// WORD is "([^"]+|"")*" or [0-9a-z_]+ ; STRING is '([^']|'')*' ; WS is [ \t\n\r].
// Matching backtracks over the possible ends of each token, longest first, so the
// regexes' corner cases (e.g. `SET keyTO value`) come out the same.

public enum AdminParse {
    /// Longest console query accepted (command + argument + value fit in far less).
    public static let maxQueryLength = 1024

    /// Byte limits of PgBouncer's copy buffers (the raw token, quotes included, must be shorter).
    static let commandLimit = 16
    static let argumentLimit = 64
    static let valueLimit = 256

    public static func parse(_ sql: String) -> Result<AdminCommand, AdminError> {
        // No console command is longer than this (PgBouncer's own buffers are smaller);
        // refusing early keeps the matcher below linear in practice.
        if sql.utf8.count > maxQueryLength {
            return .failure(.invalidCommand(String(sql.prefix(64)) + "..."))
        }
        let q = Array(sql.utf8)
        if let (cmdRange, argRange) = matchCommand(q) {
            guard let command = unquote(q, cmdRange, quote: dq, limit: commandLimit),
                  let argument = unquote(q, argRange, quote: dq, limit: argumentLimit)
            else { return .failure(.badArguments) }
            return dispatch(command: command, argument: argument, query: sql)
        }
        if let (keyRange, valueRange) = matchSet(q, stringValue: true) {
            return makeSet(q, keyRange, valueRange, quote: sq)
        }
        if let (keyRange, valueRange) = matchSet(q, stringValue: false) {
            return makeSet(q, keyRange, valueRange, quote: dq)
        }
        return .failure(.invalidCommand(sql))
    }

    /// SHOW subjects PgBouncer 1.25 knows (show_map in admin.c).
    public static let showSubjects: Set<String> = [
        "clients", "config", "databases", "fds", "help", "lists", "peers", "peer_pools",
        "pools", "servers", "sockets", "active_sockets", "stats", "stats_totals",
        "stats_averages", "users", "version", "totals", "mem", "dns_hosts", "dns_zones", "state",
    ]

    /// Parameters PgBouncer fakes for clients that SHOW/SET them (fake_param_list).
    public static let fakeParameters: [(name: String, value: String)] = [
        ("client_encoding", "UTF-8"),
        ("default_transaction_isolation", "read committed"),
        ("standard_conforming_strings", "on"),
        ("datestyle", "ISO"),
        ("timezone", "GMT"),
    ]

    static func fakeParameter(_ name: String) -> (name: String, value: String)? {
        let lower = asciiLowercased(name)
        return fakeParameters.first { $0.name == lower }
    }

    // MARK: dispatch

    private static func dispatch(command: String, argument: String, query: String) -> Result<AdminCommand, AdminError> {
        let optionalArgument: String? = argument.isEmpty ? nil : argument
        switch asciiLowercased(command) {
        case "show", "select":
            let subject = asciiLowercased(argument)
            if fakeParameter(subject) != nil || showSubjects.contains(subject) {
                return .success(.show(subject))
            }
            return .failure(.invalidCommand(query))
        case "pause": return .success(.pause(optionalArgument))
        case "resume": return .success(.resume(optionalArgument))
        case "kill": return .success(.kill(optionalArgument))
        case "kill_client": return .success(.killClient(argument))
        case "disable": return .success(.disable(argument))
        case "enable": return .success(.enable(argument))
        case "reconnect": return .success(.reconnect(optionalArgument))
        case "wait_close": return .success(.waitClose(optionalArgument))
        case "reload":
            return argument.isEmpty ? .success(.reload) : .failure(.invalidCommand(query))
        case "suspend":
            return argument.isEmpty ? .success(.suspend) : .failure(.invalidCommand(query))
        case "shutdown":
            switch asciiLowercased(argument) {
            case "": return .success(.shutdown(.immediate))
            case "wait_for_clients": return .success(.shutdown(.waitForClients))
            case "wait_for_servers": return .success(.shutdown(.waitForServers))
            default: return .failure(.invalidCommand(query))
            }
        default:
            return .failure(.invalidCommand(query))
        }
    }

    private static func makeSet(_ q: [UInt8], _ keyRange: Range<Int>, _ valueRange: Range<Int>, quote: UInt8)
        -> Result<AdminCommand, AdminError>
    {
        guard let key = unquote(q, keyRange, quote: dq, limit: argumentLimit), !key.isEmpty,
              let value = unquote(q, valueRange, quote: quote, limit: valueLimit)
        else { return .failure(.badArguments) }
        return .success(.set(key: key, value: value))
    }

    // MARK: matching

    private static let dq = UInt8(ascii: "\"")
    private static let sq = UInt8(ascii: "'")

    private static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d
    }

    private static func isWordChar(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b == 0x5f
    }

    private static func skipSpaces(_ q: [UInt8], _ i: Int) -> Int {
        var j = i
        while j < q.count && isSpace(q[j]) { j += 1 }
        return j
    }

    /// Possible ends of a quoted token `Q([^Q]+|QQ)*Q` (or, for `'`, `'([^']|'')*'`;
    /// both accept the same strings), longest first.
    private static func quotedEnds(_ q: [UInt8], _ i: Int, quote: UInt8) -> [Int] {
        guard i < q.count, q[i] == quote else { return [] }
        var ends: [Int] = []
        var j = i + 1
        while j < q.count {
            if q[j] != quote { j += 1; continue }
            ends.append(j + 1)                 // this quote closes the token
            if j + 1 < q.count && q[j + 1] == quote { j += 2 } else { break }
        }
        return ends.reversed()
    }

    /// Possible ends of WORD starting at i, longest first.
    private static func wordEnds(_ q: [UInt8], _ i: Int) -> [Int] {
        guard i < q.count else { return [] }
        if q[i] == dq { return quotedEnds(q, i, quote: dq) }
        var j = i
        while j < q.count && isWordChar(q[j]) { j += 1 }
        guard j > i else { return [] }
        return Array((i + 1 ... j).reversed())
    }

    /// WS0 (; WS0)? $
    private static func matchesTail(_ q: [UInt8], _ i: Int) -> Bool {
        var j = skipSpaces(q, i)
        if j < q.count && q[j] == UInt8(ascii: ";") { j = skipSpaces(q, j + 1) }
        return j == q.count
    }

    private static func matchCommand(_ q: [UInt8]) -> (Range<Int>, Range<Int>?)? {
        let start = skipSpaces(q, 0)
        for end1 in wordEnds(q, start) {
            // with the optional argument group
            let argStart = skipSpaces(q, end1)
            if argStart > end1 {
                for end2 in wordEnds(q, argStart) where matchesTail(q, end2) {
                    return (start ..< end1, argStart ..< end2)
                }
            }
            if matchesTail(q, end1) { return (start ..< end1, nil) }
        }
        return nil
    }

    private static func matchSet(_ q: [UInt8], stringValue: Bool) -> (Range<Int>, Range<Int>)? {
        var i = skipSpaces(q, 0)
        guard i + 3 <= q.count, asciiLower(q[i]) == UInt8(ascii: "s"), asciiLower(q[i + 1]) == UInt8(ascii: "e"),
              asciiLower(q[i + 2]) == UInt8(ascii: "t") else { return nil }
        i += 3
        let keyStart = skipSpaces(q, i)
        guard keyStart > i else { return nil }
        for keyEnd in wordEnds(q, keyStart) {
            let opStart = skipSpaces(q, keyEnd)
            var opEnd: Int
            if opStart < q.count && q[opStart] == UInt8(ascii: "=") {
                opEnd = opStart + 1
            } else if opStart + 2 <= q.count && asciiLower(q[opStart]) == UInt8(ascii: "t")
                        && asciiLower(q[opStart + 1]) == UInt8(ascii: "o") {
                opEnd = opStart + 2
            } else {
                continue
            }
            let valueStart = skipSpaces(q, opEnd)
            let ends = stringValue ? quotedEnds(q, valueStart, quote: sq) : wordEnds(q, valueStart)
            for valueEnd in ends where matchesTail(q, valueEnd) {
                return (keyStart ..< keyEnd, valueStart ..< valueEnd)
            }
        }
        return nil
    }

    /// copy_arg(): reject tokens that do not fit PgBouncer's buffer, strip the quotes
    /// of a quoted token and fold doubled quotes. An absent token is "".
    private static func unquote(_ q: [UInt8], _ range: Range<Int>?, quote: UInt8, limit: Int) -> String? {
        guard let range else { return "" }
        guard range.count < limit else { return nil }
        var out: [UInt8] = []
        if q[range.lowerBound] == quote {
            var i = range.lowerBound + 1
            while i < range.upperBound - 1 {
                if q[i] == quote && q[i + 1] == quote { i += 1 }
                out.append(q[i])
                i += 1
            }
        } else {
            out.append(contentsOf: q[range])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func asciiLower(_ b: UInt8) -> UInt8 {
        (b >= 0x41 && b <= 0x5a) ? b + 0x20 : b
    }

    static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map(asciiLower), as: UTF8.self)
    }
}
