/// One `[users]` line: `name = pool_mode=... max_user_connections=...`.
public struct UserEntry: Equatable, Sendable {
    public var name: String
    public var poolMode: PoolMode?
    public var poolSize: Int?
    public var reservePoolSize: Int?
    public var maxUserConnections: Int?
    public var maxUserClientConnections: Int?
    public var queryTimeout: Double?
    public var idleTransactionTimeout: Double?
    public var transactionTimeout: Double?
    public var clientIdleTimeout: Double?

    public init(name: String) {
        self.name = name
    }

    /// Reads the settings string, with PgBouncer's error wording.
    public init(name: String, settings: String) throws(ConfigError) {
        self.init(name: name)
        for field in try EntryFields.pairs(settings, syntaxError: "syntax error in user settings") {
            switch field.key {
            case "pool_mode": poolMode = try field.poolMode()
            case "pool_size": poolSize = try field.integer()
            case "reserve_pool_size": reservePoolSize = try field.integer()
            case "max_user_connections": maxUserConnections = try field.integer()
            case "max_user_client_connections": maxUserClientConnections = try field.integer()
            case "query_timeout": queryTimeout = try field.seconds()
            case "idle_transaction_timeout": idleTransactionTimeout = try field.seconds()
            case "transaction_timeout": transactionTimeout = try field.seconds()
            case "client_idle_timeout": clientIdleTimeout = try field.seconds()
            default: throw ConfigError("unrecognized user parameter: \(field.key)")
            }
        }
    }
}
