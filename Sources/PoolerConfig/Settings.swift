/// The typed values of the `[pgbouncer]` section. Times are seconds, sizes bytes.
///
/// `Settings()` holds PgBouncer's defaults, taken from `ConfigKeys.all`. String
/// keys PgBouncer leaves unset by default (`auth_file`, `auth_user`, `user`, ...)
/// are `""` here.
public struct Settings: Equatable, Sendable {
    // Generic settings
    public var logfile = ""
    public var pidfile = ""
    public var listenAddr = ""
    public var listenPort = 0
    public var unixSocketDir = ""
    public var unixSocketMode = 0
    public var user = ""
    public var poolMode = PoolMode.session
    public var maxClientConn = 0
    public var defaultPoolSize = 0
    public var minPoolSize = 0
    public var reservePoolSize = 0
    public var reservePoolTimeout = 0.0
    public var maxDbConnections = 0
    public var maxUserConnections = 0
    public var serverRoundRobin = false
    public var queryWaitNotify = 0
    public var trackExtraParameters: [String] = []
    public var ignoreStartupParameters: [String] = []
    public var disablePqexec = false
    public var applicationNameAddHost = false
    public var statsPeriod = 0
    public var maxPreparedStatements = 0
    // Authentication settings
    public var authType = AuthType.md5
    public var authFile = ""
    public var authHBAFile = ""
    public var authUser = ""
    public var authQuery = ""
    public var authDbname = ""
    // Log settings
    public var logConnections = false
    public var logDisconnections = false
    public var logPoolerErrors = false
    public var verbose = 0
    // Console access control
    public var adminUsers: [String] = []
    public var statsUsers: [String] = []
    // Connection sanity checks, timeouts
    public var serverResetQuery = ""
    public var serverResetQueryAlways = false
    public var serverCheckDelay = 0.0
    public var serverCheckQuery = ""
    public var serverLifetime = 0.0
    public var serverIdleTimeout = 0.0
    public var serverConnectTimeout = 0.0
    public var serverLoginRetry = 0.0
    public var clientLoginTimeout = 0.0
    // Dangerous timeouts
    public var queryTimeout = 0.0
    public var queryWaitTimeout = 0.0
    public var clientIdleTimeout = 0.0
    public var idleTransactionTimeout = 0.0
    // Low-level network settings
    public var pktBuf = 0
    public var maxPacketSize = 0
    public var soReuseport = false
    /// Event loops; 0 = one per CPU core.
    public var workers = 0
    public var workerCpuAffinity = false
    public var tcpKeepalive = false
    public var tcpKeepcnt = 0
    public var tcpKeepidle = 0
    public var tcpKeepintvl = 0
    public var tcpUserTimeout = 0
    public var tcpSocketBuffer = 0
    public var unixSocketGroup = ""
    public var scramIterations = 4096
    public var autodbIdleTimeout: Double = 3600
    public var tcpDeferAccept = true
    public var suspendTimeout: Double = 10
    public var authIdentFile = ""
    /// The configuration file's path (PgBouncer's read-only `conffile`): set at load.
    public var conffile = ""
    public var serviceName = ""
    public var jobName = "pgbouncer"
    public var listenBacklog = 0
    public var peerID = 0
    public var serverFastClose = false
    public var dnsMaxTTL = 0.0
    public var dnsNXDomainTTL = 0.0
    public var clientTLSSSLMode = ""
    public var clientTLSKeyFile = ""
    public var clientTLSCertFile = ""
    public var clientTLSCAFile = ""
    public var clientTLSProtocols = ""
    public var clientTLSCiphers = ""
    public var clientTLS13Ciphers = ""
    public var clientTLSECDHCurve = ""
    public var clientTLSDHEParams = ""
    public var serverTLSSSLMode = ""
    public var serverTLSCAFile = ""
    public var serverTLSKeyFile = ""
    public var serverTLSCertFile = ""
    public var serverTLSProtocols = ""
    public var serverTLSCiphers = ""
    public var serverTLS13Ciphers = ""
    public var serverTLSDirect = false
    public var metricsListenAddr = ""
    public var metricsListenPort = 0

    public var maxDbClientConnections = 0
    public var maxUserClientConnections = 0
    public var syslog = false
    public var syslogIdent = ""
    public var syslogFacility = ""
    public var logStats = false
    public var cancelWaitTimeout = 0.0
    public var transactionTimeout = 0.0

    /// Values of documented keys this pooler does not act on, as SHOW CONFIG shows them.
    public internal(set) var unsupportedValues: [String: String] = [:]
    /// List values as written, so SHOW CONFIG shows `a, b` rather than `a,b`.
    private var listTexts: [String: String] = [:]

    public init() {
        for key in ConfigKeys.all where key.implemented {
            // PgBouncer leaves keys without a default (e.g. verbose) at zero.
            if key.defaultValue.isEmpty, key.kind != .string, key.kind != .list { continue }
            do {
                try set(key.name, to: key.defaultValue)
            } catch {
                preconditionFailure("default of \(key.name) does not parse: \(error)")
            }
        }
    }

    /// The addresses of `listen_addr`, split at commas.
    public var listenAddresses: [String] { ValueParsing.list(listenAddr) }

    /// `server_check_query = <empty>` sends an empty query as the check.
    public var serverCheckSendsEmptyQuery: Bool { serverCheckQuery == "<empty>" }

    /// Sets a key from its text, as a config file line or the console's SET does.
    /// Errors name the key and the expected form, without a file position.
    public mutating func set(_ name: String, to text: String) throws(ConfigError) {
        guard let key = ConfigKeys.named(name) else {
            throw ConfigError("unknown parameter: pgbouncer/\(name)")
        }
        let value = try key.parse(text)
        guard let binding = key.binding else {
            unsupportedValues[name] = value.text
            return
        }
        switch (binding, value) {
        case let (.int(path), .int(number)): self[keyPath: path] = number
        case let (.bool(path), .bool(flag)): self[keyPath: path] = flag
        case let (.seconds(path), .seconds(seconds)): self[keyPath: path] = seconds
        case let (.string(path), .string(string)):
            if name == "auth_dbname", string == "pgbouncer" {
                throw ConfigError("cannot use the reserved \"pgbouncer\" database as an auth_dbname")
            }
            self[keyPath: path] = string
        case let (.list(path), .list(items)):
            self[keyPath: path] = items
            listTexts[name] = text
        case let (.word(path), .word(word)):
            self[keyPath: path] = word.lowercased()
        case let (.poolMode(path), .word(word)):
            self[keyPath: path] = PoolMode(configValue: word)!
        case let (.authType(path), .word(word)):
            let method = AuthType(configValue: word)!
            guard method.isImplemented else {
                throw ConfigError("invalid value for \(name): '\(text)' (auth_type \(method.rawValue) is not supported by this pooler yet; expected one of: "
                    + AuthType.implemented.map(\.rawValue).joined(separator: ", ") + ")")
            }
            self[keyPath: path] = method
        default:
            preconditionFailure("key \(name): kind \(key.kind) does not fit its Settings property")
        }
    }

    /// The current value of a `[pgbouncer]` key as SHOW CONFIG shows it, or nil
    /// for a name that is not a key.
    public func value(of name: String) -> String? {
        guard let key = ConfigKeys.named(name) else { return nil }
        guard let binding = key.binding else {
            return unsupportedValues[name] ?? (try? key.parse(key.defaultValue))?.text ?? ""
        }
        switch binding {
        case .int(let path): return String(self[keyPath: path])
        case .bool(let path): return self[keyPath: path] ? "1" : "0"
        case .string(let path): return self[keyPath: path]
        case .seconds(let path): return ValueParsing.formatSeconds(self[keyPath: path])
        case .list(let path):
            let items = self[keyPath: path]
            if let text = listTexts[name], ValueParsing.list(text) == items { return text }
            return items.joined(separator: ",")
        case .poolMode(let path): return self[keyPath: path].rawValue
        case .authType(let path): return self[keyPath: path].rawValue
        case .word(let path): return self[keyPath: path]
        }
    }
}
