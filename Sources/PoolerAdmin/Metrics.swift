// Prometheus text exposition (format 0.0.4) built from an admin snapshot.
//
// Metric names follow prometheus-community/pgbouncer_exporter (0.11+, collector.go) so its
// dashboards and alerts carry over: `pgbouncer_pools_*{database,user}` from SHOW POOLS,
// `pgbouncer_stats_totals_*{database}` from SHOW STATS_TOTALS (times in seconds),
// `pgbouncer_databases_*{name,host,port,database,force_user,pool_mode}` from SHOW DATABASES,
// the SHOW LISTS gauges, `pgbouncer_config_*`, `pgbouncer_client_connections`,
// `pgbouncer_up` and `pgbouncer_version_info`. Additions of our own use the same scheme
// (`pgbouncer_server_connections`, `pgbouncer_users_*`, database client counts, pause
// state), and the process_* metrics are the Prometheus client libraries' standard ones.

/// Process figures the runtime reads from /proc for the standard `process_*` metrics.
public struct ProcessMetrics: Equatable, Sendable {
    /// User + system CPU time.
    public var cpuSeconds: Double
    public var residentBytes: Int
    public var openFDs: Int
    /// The RLIMIT_NOFILE soft limit.
    public var maxFDs: Int
    /// Process start, seconds since the Unix epoch.
    public var startTimeSeconds: Double

    public init(cpuSeconds: Double, residentBytes: Int, openFDs: Int, maxFDs: Int, startTimeSeconds: Double) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.openFDs = openFDs
        self.maxFDs = maxFDs
        self.startTimeSeconds = startTimeSeconds
    }
}

public enum MetricsRenderer {
    /// The Content-Type of `render`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The whole exposition: one `# HELP` / `# TYPE` block per family, families sorted by
    /// name, each family's samples together in snapshot order. Families without samples are
    /// left out.
    public static func render(_ snapshot: AdminSnapshot, process: ProcessMetrics?) -> String {
        var families = MetricFamilies()
        addGeneral(snapshot, to: &families)
        addPools(snapshot, to: &families)
        addStats(snapshot, to: &families)
        addDatabases(snapshot, to: &families)
        addUsers(snapshot, to: &families)
        addLists(snapshot, to: &families)
        addConfig(snapshot, to: &families)
        addConnections(snapshot, to: &families)
        if let process { addProcess(process, to: &families) }
        return families.render()
    }

    // MARK: families

    private static func addGeneral(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let ns = MetricFamilies.namespace
        f.add(ns + "up", .gauge, "The pgbouncer scrape succeeded", value: "1")
        f.add(ns + "version_info", .gauge, "The pgbouncer version info", labels: [("version", s.version)], value: "1")
        f.add(ns + "paused", .gauge, "1 if the pooler is paused (PAUSE), else 0",
              value: flag(s.pauseState == .paused))
        f.add(ns + "suspended", .gauge, "1 if the pooler is suspended (SUSPEND), else 0",
              value: flag(s.pauseState == .suspended))
    }

    private static func addPools(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let gauges: [(String, String, (AdminPool) -> Int)] = [
            ("client_active_connections",
             "Client connections linked to server connection and able to process queries, shown as connection",
             { $0.clientsActive }),
            ("client_active_cancel_connections",
             "Client connections that have forwarded query cancellations to the server and are waiting for the server response",
             { $0.clientsActiveCancelRequest }),
            ("client_waiting_connections", "Client connections waiting on a server connection, shown as connection",
             { $0.clientsWaiting }),
            ("client_waiting_cancel_connections",
             "Client connections that have not forwarded query cancellations to the server yet",
             { $0.clientsWaitingCancelRequest }),
            ("server_active_connections", "Server connections linked to a client connection, shown as connection",
             { $0.serversActive }),
            ("server_active_cancel_connections", "Server connections that are currently forwarding a cancel request.",
             { $0.serversActiveCancel }),
            ("server_being_canceled_connections",
             "Servers that normally could become idle but are waiting to do so until all in-flight cancel requests have completed that were sent to cancel a query on this server.",
             { $0.serversBeingCanceled }),
            ("server_idle_connections", "Server connections idle and ready for a client query, shown as connection",
             { $0.serversIdle }),
            ("server_used_connections",
             "Server connections idle more than server_check_delay, needing server_check_query, shown as connection",
             { $0.serversUsed }),
            ("server_testing_connections",
             "Server connections currently running either server_reset_query or server_check_query, shown as connection",
             { $0.serversTested }),
            ("server_login_connections", "Server connections currently in the process of logging in, shown as connection",
             { $0.serversLogin }),
        ]
        let prefix = MetricFamilies.namespace + "pools_"
        for pool in s.pools {
            let labels = [("database", pool.database), ("user", pool.user)]
            for (name, help, value) in gauges {
                f.add(prefix + name, .gauge, help, labels: labels, value: String(value(pool)))
            }
            f.add(prefix + "client_maxwait_seconds", .gauge,
                  "Age of oldest unserved client connection, shown as second", labels: labels,
                  value: seconds(microseconds: pool.maxWaitMicroseconds))
        }
    }

    private static func addStats(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        typealias Counter = (name: String, help: String, value: (AdminStatCounters) -> String)
        let counters: [Counter] = [
            ("queries_pooled_total", "Total number of SQL queries pooled", { String($0.queryCount) }),
            ("queries_duration_seconds_total",
             "Total number of seconds spent by pgbouncer when actively connected to PostgreSQL, executing queries",
             { seconds(microseconds: $0.queryTime) }),
            ("received_bytes_total",
             "Total volume in bytes of network traffic received by pgbouncer, shown as bytes", { String($0.received) }),
            ("sent_bytes_total", "Total volume in bytes of network traffic sent by pgbouncer, shown as bytes",
             { String($0.sent) }),
            ("client_wait_seconds_total", "Time spent by clients waiting for a server in seconds",
             { seconds(microseconds: $0.waitTime) }),
            ("sql_transactions_pooled_total", "Total number of SQL transactions pooled", { String($0.xactCount) }),
            ("server_in_transaction_seconds_total",
             "Total number of seconds spent by pgbouncer when connected to PostgreSQL in a transaction, either idle in transaction or executing queries",
             { seconds(microseconds: $0.xactTime) }),
            ("client_parses_total", "Total number of prepared statement Parse messages received from clients",
             { String($0.clientParseCount) }),
            ("server_parses_total", "Total number of prepared statement Parse messages sent by pgbouncer to PostgreSQL",
             { String($0.serverParseCount) }),
            ("binds_total", "Total number of prepared statements readied for execution with a Bind message",
             { String($0.bindCount) }),
            ("server_assignments_total",
             "Total number of times a server connection was assigned to a client", { String($0.serverAssignmentCount) }),
        ]
        let prefix = MetricFamilies.namespace + "stats_totals_"
        for stats in s.stats {
            for counter in counters {
                f.add(prefix + counter.name, .counter, counter.help, labels: [("database", stats.database)],
                      value: counter.value(stats.totals))
            }
        }
    }

    private static func addDatabases(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let gauges: [(String, String, (AdminDatabase) -> String)] = [
            ("pool_size", "Maximum number of server connections", { String($0.poolSize) }),
            ("min_pool_size", "Minimum number of server connections kept open", { String($0.minPoolSize) }),
            ("reserve_pool", "Maximum number of additional connections for this database",
             { String($0.reservePoolSize) }),
            ("max_connections", "Maximum number of allowed connections for this database",
             { String($0.maxConnections) }),
            ("current_connections", "Current number of connections for this database",
             { String($0.currentConnections) }),
            ("max_client_connections", "Maximum number of allowed client connections for this database",
             { String($0.maxClientConnections) }),
            ("current_client_connections", "Current number of client connections for this database",
             { String($0.currentClientConnections) }),
            ("paused", "1 if this database is currently paused, else 0", { flag($0.paused) }),
            ("disabled", "1 if this database is currently disabled, else 0", { flag($0.disabled) }),
        ]
        let prefix = MetricFamilies.namespace + "databases_"
        for database in s.databases {
            let labels = [
                ("name", database.name), ("host", database.host ?? ""), ("port", String(database.port)),
                ("database", database.database), ("force_user", database.forceUser ?? ""),
                ("pool_mode", database.poolMode ?? ""),
            ]
            for (name, help, value) in gauges {
                f.add(prefix + name, .gauge, help, labels: labels, value: value(database))
            }
        }
    }

    private static func addUsers(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let prefix = MetricFamilies.namespace + "users_"
        for user in s.users {
            let labels = [("user", user.name)]
            f.add(prefix + "max_connections", .gauge, "Maximum number of server connections for this user",
                  labels: labels, value: String(user.maxUserConnections))
            f.add(prefix + "current_connections", .gauge, "Current number of server connections for this user",
                  labels: labels, value: String(user.currentConnections))
            f.add(prefix + "max_client_connections", .gauge, "Maximum number of client connections for this user",
                  labels: labels, value: String(user.maxUserClientConnections))
            f.add(prefix + "current_client_connections", .gauge,
                  "Current number of client connections for this user", labels: labels,
                  value: String(user.currentClientConnections))
        }
    }

    private static func addLists(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let l = s.lists
        let ns = MetricFamilies.namespace
        let gauges: [(String, String, Int)] = [
            ("databases", "Count of databases", l.databases),
            ("users", "Count of users", l.users),
            ("pools", "Count of pools", l.pools),
            ("free_clients", "Count of free clients", l.freeClients),
            ("used_clients", "Count of used clients", l.usedClients),
            ("login_clients", "Count of clients in login state", l.loginClients),
            ("free_servers", "Count of free servers", l.freeServers),
            ("used_servers", "Count of used servers", l.usedServers),
            ("cached_dns_names", "Count of DNS names in the cache", l.dnsNames),
            ("cached_dns_zones", "Count of DNS zones in the cache", l.dnsZones),
            ("in_flight_dns_queries", "Count of in-flight DNS queries", l.dnsQueries),
            ("peers", "Count of peers", l.peers),
            ("peer_pools", "Count of peer pools", l.peerPools),
        ]
        for (name, help, value) in gauges { f.add(ns + name, .gauge, help, value: String(value)) }
    }

    private static func addConfig(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        let exposed: [(key: String, metric: String, help: String)] = [
            ("max_client_conn", "max_client_connections", "Config maximum number of client connections"),
            ("max_user_connections", "max_user_connections", "Config maximum number of server connections per user"),
            ("default_pool_size", "default_pool_size", "Config default number of server connections per pool"),
            ("max_db_connections", "max_db_connections", "Config maximum number of server connections per database"),
        ]
        for item in exposed {
            guard let entry = s.config.first(where: { $0.key == item.key }), let value = Double(entry.value),
                  value.isFinite else { continue }
            f.add(MetricFamilies.namespace + "config_" + item.metric, .gauge, item.help, value: format(value))
        }
    }

    /// SHOW CLIENTS / SHOW SERVERS rows counted by (database, user[, application_name], state),
    /// with SHOW's state names ("idle" for an unlinked active connection).
    private static func addConnections(_ s: AdminSnapshot, to f: inout MetricFamilies) {
        var clients = OrderedCounts()
        var servers = OrderedCounts()
        for socket in s.sockets {
            let database = socket.database ?? "(nodb)", user = socket.user ?? "(nouser)"
            switch socket.state {
            case .client(.login):
                continue  // not in SHOW CLIENTS; see pgbouncer_login_clients
            case .client(let state):
                let name = state == .active && socket.link == nil ? "idle" : state.rawValue
                clients.add([("database", database), ("user", user),
                             ("application_name", socket.applicationName), ("state", name)])
            case .server(let state):
                let name = state == .active && socket.link == nil ? "idle" : state.rawValue
                servers.add([("database", database), ("user", user), ("state", name)])
            }
        }
        let ns = MetricFamilies.namespace
        for (labels, count) in clients.items {
            f.add(ns + "client_connections", .gauge,
                  "Number of client connections grouped by database, user, application name, and state",
                  labels: labels, value: String(count))
        }
        for (labels, count) in servers.items {
            f.add(ns + "server_connections", .gauge,
                  "Number of server connections grouped by database, user, and state",
                  labels: labels, value: String(count))
        }
    }

    private static func addProcess(_ p: ProcessMetrics, to f: inout MetricFamilies) {
        f.add("process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.",
              value: format(p.cpuSeconds))
        f.add("process_resident_memory_bytes", .gauge, "Resident memory size in bytes.",
              value: String(p.residentBytes))
        f.add("process_open_fds", .gauge, "Number of open file descriptors.", value: String(p.openFDs))
        f.add("process_max_fds", .gauge, "Maximum number of open file descriptors.", value: String(p.maxFDs))
        f.add("process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.",
              value: format(p.startTimeSeconds))
    }

    // MARK: values

    static func flag(_ value: Bool) -> String { value ? "1" : "0" }

    /// Exact decimal seconds from microseconds ("1.5", "0.000001", "3").
    static func seconds(microseconds: UInt64) -> String {
        let whole = microseconds / 1_000_000, fraction = microseconds % 1_000_000
        guard fraction != 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        while digits.last == "0" { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    /// A float as the text format spells it (Go's ParseFloat syntax, `NaN`, `+Inf`, `-Inf`).
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// Label value escaping: backslash, double quote and line feed.
    static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") })
        else { return value }
        var result = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    /// HELP text escaping: backslash and line feed.
    static func escapeHelp(_ text: String) -> String {
        var result = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }
}

enum MetricType: String {
    case counter
    case gauge
}

/// Families keyed by name; samples keep insertion order, families are sorted on output.
struct MetricFamilies {
    static let namespace = "pgbouncer_"

    struct Family {
        var name: String
        var type: MetricType
        var help: String
        var samples: [(labels: [(String, String)], value: String)]
    }

    private var families: [String: Family] = [:]

    mutating func add(_ name: String, _ type: MetricType, _ help: String, labels: [(String, String)] = [],
                      value: String) {
        families[name, default: Family(name: name, type: type, help: help, samples: [])]
            .samples.append((labels, value))
    }

    var names: [String] { families.keys.sorted(by: MetricFamilies.byteOrder) }

    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    func render() -> String {
        var out = ""
        for name in names {
            guard let family = families[name], !family.samples.isEmpty else { continue }
            out += "# HELP \(name) \(MetricsRenderer.escapeHelp(family.help))\n"
            out += "# TYPE \(name) \(family.type.rawValue)\n"
            for sample in family.samples {
                out += name
                if !sample.labels.isEmpty {
                    out += "{"
                    out += sample.labels.map { "\($0.0)=\"\(MetricsRenderer.escapeLabelValue($0.1))\"" }
                        .joined(separator: ",")
                    out += "}"
                }
                out += " \(sample.value)\n"
            }
        }
        return out
    }
}

/// Counts keyed by a label set, in order of first appearance.
private struct OrderedCounts {
    private var index: [[UInt8]: Int] = [:]
    private(set) var items: [(labels: [(String, String)], count: Int)] = []

    mutating func add(_ labels: [(String, String)]) {
        // Byte-wise key (no Unicode folding); NUL cannot occur in PostgreSQL names.
        let key = Array(labels.map(\.1).joined(separator: "\u{0}").utf8)
        if let position = index[key] {
            items[position].count += 1
        } else {
            index[key] = items.count
            items.append((labels, 1))
        }
    }
}
