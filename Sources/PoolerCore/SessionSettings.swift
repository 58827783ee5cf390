/// The session parameters a client believes are in force, or a server has in force,
/// so a server can be brought in line with each client it is linked to.
///
/// Parameters PostgreSQL reports (ParameterStatus) are tracked by their reported
/// value; others (search_path before PostgreSQL 18, custom GUCs) by the SQL text of
/// the client's own SET, found by `SessionCommandScanner`.
public struct SessionSettings: Equatable, Sendable {
    public enum Value: Hashable, Sendable {
        /// A reported value, as ParameterStatus carries it.
        case reported(String)
        /// SQL text from a SET statement, replayed as `SET name TO text`.
        case sql(String)
        /// A value string as set_config() or `-c name=value` take it (list parameters
        /// such as search_path are parsed by the server, not quoted as one item).
        case config(String)

        /// The statement that puts this value in force for `name`.
        public func statement(for name: String) -> String {
            switch self {
            case .sql(let text):
                return "SET \(SessionSettings.quotedName(name)) TO \(text)"
            case .reported(let value), .config(let value):
                return "SELECT pg_catalog.set_config(\(SessionCommandScanner.quoteLiteral(name)), "
                    + "\(SessionCommandScanner.quoteLiteral(value)), false)"
            }
        }
    }

    /// Lowercased parameter name → value. A missing key means "server default".
    public private(set) var values: [String: Value] = [:]
    /// A hash of `values`, kept current: a server whose fingerprint equals its client's
    /// needs no alignment, which is the common case and costs one comparison per link.
    /// The wrapping sum of one hash per entry, so each change updates it in O(1).
    public private(set) var fingerprint: Int = 0

    private static func entryHash(_ key: String, _ value: Value) -> Int {
        var hasher = Hasher()
        hasher.combine(key)
        hasher.combine(value)
        return hasher.finalize()
    }

    /// Every change to `values` goes through here.
    private mutating func set(_ key: String, _ value: Value?) {
        let old = value == nil ? values.removeValue(forKey: key) : values.updateValue(value!, forKey: key)
        if let old { fingerprint &-= Self.entryHash(key, old) }
        if let value { fingerprint &+= Self.entryHash(key, value) }
    }
    /// Lowercased names of the reported parameters being tracked.
    public let tracked: Set<String>

    /// PgBouncer's fixed set; `track_extra_parameters` adds to it.
    public static let alwaysTracked: Set<String> = [
        "client_encoding", "datestyle", "timezone", "intervalstyle", "standard_conforming_strings", "application_name",
    ]

    public init(extraTracked: [String] = []) {
        tracked = Self.alwaysTracked.union(extraTracked.map { $0.lowercased() })
    }

    public subscript(name: String) -> Value? { values[name.lowercased()] }

    /// A ParameterStatus the server sent (only tracked names are kept).
    public mutating func reported(name: String, value: String) {
        let key = name.lowercased()
        guard tracked.contains(key), values[key] != .reported(value) else { return }
        set(key, .reported(value))
    }

    /// A value the client asked for in its startup packet.
    public mutating func requested(name: String, value: String) {
        let key = name.lowercased()
        guard tracked.contains(key) else { return }
        set(key, .reported(value))
    }

    /// A session command that took effect. A parameter the server reports (it has a
    /// ParameterStatus value) is left to the ParameterStatus the server sends for it;
    /// others (search_path before PostgreSQL 18, custom GUCs) are kept as SQL text.
    public mutating func apply(_ command: SessionCommand) {
        switch command {
        case .set(let name, let value):
            if !isReported(name) { set(name, .sql(value)) }
        case .setConfig(let name, let value):
            if !isReported(name) { set(name, .config(value)) }
        case .reset(let name):
            if !isReported(name) { set(name, nil) }
        case .resetAll, .discardAll:
            for (key, value) in values {
                if case .reported = value { continue }
                set(key, nil)
            }
        case .deallocateAll:
            break
        }
    }

    private func isReported(_ name: String) -> Bool {
        if case .reported? = values[name] { return true }
        return false
    }

    /// Statements that make a server with `server` settings match `client`'s, or nil.
    public static func alignment(server: SessionSettings, client: SessionSettings) -> [String]? {
        if server.fingerprint == client.fingerprint { return nil }
        var statements: [String] = []
        for key in client.values.keys.sorted() {
            let wanted = client.values[key]!
            if server.values[key] != wanted {
                statements.append(wanted.statement(for: key))
            }
        }
        for key in server.values.keys.sorted() where client.values[key] == nil {
            if case .reported? = server.values[key] { continue }
            if server.values[key] != nil { statements.append("RESET \(quotedName(key))") }
        }
        return statements.isEmpty ? nil : statements
    }

    /// A parameter name for SET/RESET: each dotted part quoted, since custom names may
    /// use reserved words (`myapp.user`).
    public static func quotedName(_ name: String) -> String {
        // Per Unicode scalar, so a quote followed by a combining mark is still doubled.
        var result = String.UnicodeScalarView()
        result.append("\"")
        for scalar in name.unicodeScalars {
            switch scalar {
            case ".": result.append(contentsOf: "\".\"".unicodeScalars)
            case "\"": result.append(contentsOf: "\"\"".unicodeScalars)
            default: result.append(scalar)
            }
        }
        result.append("\"")
        return String(result)
    }

    /// Records that `alignment(server:client:)` ran on this server.
    public mutating func aligned(to client: SessionSettings) {
        for (key, value) in client.values where values[key] != value { set(key, value) }
        for (key, value) in values where client.values[key] == nil {
            if case .reported = value { continue }
            set(key, nil)
        }
    }
}
