/// One `[databases]` line: `name = host=... port=... dbname=...`.
public struct DatabaseEntry: Equatable, Sendable {
    public var name: String
    /// Host name, address, comma-separated host list, or a Unix socket directory
    /// (starting with `/`, or `@` for the abstract namespace). nil means the
    /// default Unix socket.
    public var host: String?
    public var port = 5432
    /// The server-side database; nil means the same as `name`.
    public var dbname: String?
    /// A forced user: every client of this database uses this server login.
    public var user: String?
    public var password: String?
    public var authUser: String?
    public var authQuery: String?
    public var authDbname: String?
    public var poolSize: Int?
    public var minPoolSize: Int?
    public var reservePoolSize: Int?
    public var poolMode: PoolMode?
    public var maxDbConnections: Int?
    public var maxDbClientConnections: Int?
    public var serverLifetime: Double?
    public var loadBalanceHosts = LoadBalanceHosts.roundRobin
    public var connectQuery: String?
    public var clientEncoding: String?
    public var datestyle: String?
    public var timezone: String?
    public var applicationName: String?

    public init(name: String) {
        self.name = name
    }

    /// The database name sent to the server.
    public var serverDatabase: String { dbname ?? name }

    /// Reads a connection string, with PgBouncer's error wording.
    public init(name: String, connectionString: String) throws(ConfigError) {
        if name == "pgbouncer" {
            throw ConfigError("database name \"pgbouncer\" is reserved")
        }
        self.init(name: name)
        for field in try EntryFields.pairs(connectionString, syntaxError: "syntax error in connection string") {
            let value = field.value
            switch field.key {
            case "dbname": dbname = value
            case "host": host = value
            case "port":
                guard let number = ValueParsing.decimal(value), number > 0, number <= 65535 else {
                    throw ConfigError("invalid port: \(value)")
                }
                port = number
            case "user": user = value
            case "password": password = value
            case "auth_user": authUser = value
            case "auth_query": authQuery = value
            case "auth_dbname": authDbname = value
            case "client_encoding": clientEncoding = value
            case "datestyle": datestyle = value
            case "timezone": timezone = value
            case "application_name": applicationName = value
            case "connect_query": connectQuery = value
            case "pool_size": poolSize = try field.integer()
            case "min_pool_size": minPoolSize = try field.integer()
            case "reserve_pool", "reserve_pool_size": reservePoolSize = try field.integer()
            case "max_db_connections": maxDbConnections = try field.integer()
            case "max_db_client_connections": maxDbClientConnections = try field.integer()
            case "server_lifetime": serverLifetime = try field.seconds()
            case "pool_mode": poolMode = try field.poolMode()
            case "load_balance_hosts":
                guard let mode = LoadBalanceHosts(configValue: value) else {
                    throw ConfigError("invalid load_balance_hosts: \(value)")
                }
                loadBalanceHosts = mode
            default:
                throw ConfigError("unrecognized connection parameter: \(field.key)")
            }
        }
    }
}
