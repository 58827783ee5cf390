/// One `[peers]` line: `peer_id = host=... port=... pool_size=...`, a pooler
/// process that cancel requests may be forwarded to.
public struct PeerEntry: Equatable, Sendable {
    public var id: Int
    public var host: String
    public var port = 6432
    public var poolSize: Int?

    public init(id: Int, host: String) {
        self.id = id
        self.host = host
    }

    /// Reads a `[peers]` line, with PgBouncer's error wording.
    public init(name: String, connectionString: String) throws(ConfigError) {
        guard let id = ValueParsing.decimal(name), id >= 1, id <= 0xFFFF else {
            throw ConfigError("ids of peers must be a number larger than 0 and at most 65536")
        }
        var host: String?
        var port = 6432
        var poolSize: Int?
        for field in try EntryFields.pairs(connectionString, syntaxError: "syntax error in connection string") {
            switch field.key {
            case "host": host = field.value
            case "port":
                guard let number = ValueParsing.decimal(field.value), number > 0, number <= 65535 else {
                    throw ConfigError("invalid port: \(field.value)")
                }
                port = number
            case "pool_size": poolSize = try field.integer()
            default: throw ConfigError("unrecognized connection parameter: \(field.key)")
            }
        }
        guard let host else { throw ConfigError("host was not provided for peer \(id)") }
        self.init(id: id, host: host)
        self.port = port
        self.poolSize = poolSize
    }
}
