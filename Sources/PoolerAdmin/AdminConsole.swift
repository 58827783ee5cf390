// The admin console: SHOW result sets built from a snapshot, permission checks, and
// hand-off of control commands to the runtime. Layout follows PgBouncer 1.25's admin.c/stats.c.

public enum AdminConsole {
    /// Parse and execute one simple-protocol query of the admin console.
    public static func handle(query: String, snapshot: AdminSnapshot, isAdmin: Bool) -> AdminReply {
        switch AdminParse.parse(query) {
        case .failure(let error): return .error(error)
        case .success(let command): return execute(command, snapshot: snapshot, isAdmin: isAdmin)
        }
    }

    /// `isAdmin` is false for stats_users: they may run every SHOW except FDS.
    public static func execute(_ command: AdminCommand, snapshot: AdminSnapshot, isAdmin: Bool) -> AdminReply {
        switch command {
        case .show(let subject):
            return show(subject, snapshot: snapshot, isAdmin: isAdmin)
        case .set(let key, _):
            // Faked parameters are acknowledged for anybody (fake_set runs before the permission check).
            if AdminParse.fakeParameter(key) != nil {
                return .command(tag: "SET", notices: [AdminNotice(message: "SET ignored")])
            }
            return isAdmin ? .action(command) : .error(.adminAccessNeeded)
        case .killClient:
            guard isAdmin else { return .error(.adminAccessNeeded) }
            return command.clientID == nil ? .error(.invalidClientID) : .action(command)
        case .disable(let database), .enable(let database):
            guard isAdmin else { return .error(.adminAccessNeeded) }
            return database.isEmpty ? .error(.databaseRequired) : .action(command)
        case .pause, .resume, .suspend, .reload, .kill, .reconnect, .waitClose, .shutdown:
            return isAdmin ? .action(command) : .error(.adminAccessNeeded)
        }
    }

    /// ParameterStatus values PgBouncer sends after authenticating an admin console login.
    public static func welcomeParameters(packageVersion: String = "1.25.2") -> [(name: String, value: String)] {
        [
            ("server_version", packageVersion + "/bouncer"),
            ("client_encoding", "UTF8"),
            ("server_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("TimeZone", "GMT"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "on"),
        ]
    }

    public static let helpNotice = AdminNotice(
        message: "Console usage",
        detail: "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n"
            + "\tSHOW PEERS|PEER_POOLS\n"
            + "\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE\n"
            + "\tSHOW DNS_HOSTS|DNS_ZONES\n"
            + "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n"
            + "\tSET key = arg\n"
            + "\tRELOAD\n"
            + "\tPAUSE [<db>]\n"
            + "\tRESUME [<db>]\n"
            + "\tDISABLE <db>\n"
            + "\tENABLE <db>\n"
            + "\tRECONNECT [<db>]\n"
            + "\tKILL [<db>]\n"
            + "\tKILL_CLIENT <client_id>\n"
            + "\tSUSPEND\n"
            + "\tSHUTDOWN\n"
            + "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n"
            + "\tWAIT_CLOSE [<db>]")

    static func show(_ rawSubject: String, snapshot s: AdminSnapshot, isAdmin: Bool) -> AdminReply {
        let subject = AdminParse.asciiLowercased(rawSubject)
        if let fake = AdminParse.fakeParameter(subject) {
            return .table(AdminTable(columns: [AdminColumn(name: fake.name, type: .text)], rows: [[fake.value]]))
        }
        switch subject {
        case "help": return .command(tag: "SHOW", notices: [helpNotice])
        case "clients": return .table(clients(s))
        case "servers": return .table(servers(s))
        case "sockets": return .table(sockets(s, activeOnly: false))
        case "active_sockets": return .table(sockets(s, activeOnly: true))
        case "pools": return .table(pools(s))
        case "peer_pools": return .table(peerPools(s))
        case "databases": return .table(databases(s))
        case "peers": return .table(peers(s))
        case "users": return .table(users(s))
        case "lists": return .table(lists(s))
        case "config": return .table(config(s))
        case "stats": return .table(stats(s))
        case "stats_totals": return .table(statsTotals(s))
        case "stats_averages": return .table(statsAverages(s))
        case "totals": return .table(totals(s))
        case "version": return .table(AdminTable(columns: [col("version", .text)], rows: [[s.version]]))
        case "state": return .table(state(s))
        case "mem": return .table(memory(s))
        case "dns_hosts": return .table(dnsHosts(s))
        case "dns_zones": return .table(dnsZones(s))
        case "fds":
            // Cancel keys and passwords: admin only. No online-restart support: no rows.
            return isAdmin ? .table(AdminTable(columns: Columns.fds)) : .error(.adminAccessNeeded)
        default:
            return .error(.invalidCommand("SHOW " + rawSubject))
        }
    }

    // MARK: column lists (names and types exactly as PgBouncer 1.25 declares them)

    static func col(_ name: String, _ type: AdminColumnType) -> AdminColumn { AdminColumn(name: name, type: type) }

    private static func columns(_ desc: String, _ names: [String]) -> [AdminColumn] {
        precondition(desc.utf8.count == names.count)
        return zip(desc.utf8, names).map { code, name in
            let type: AdminColumnType
            switch code {
            case UInt8(ascii: "i"): type = .int4
            case UInt8(ascii: "q"): type = .int8
            case UInt8(ascii: "N"): type = .numeric
            case UInt8(ascii: "b"): type = .bytea
            default: type = .text  // 's' and 'T'
            }
            return AdminColumn(name: name, type: type)
        }
    }

    public enum Columns {
        public static let sockets = columns("ssssssisiTTiiississii", [
            "type", "user", "database", "replication", "state", "addr", "port", "local_addr", "local_port",
            "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid",
            "tls", "application_name", "prepared_statements", "id",
        ])
        public static let socketsDebug = sockets + columns("iiiiiii", [
            "recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail",
        ])
        public static let pools = columns("ssiiiiiiiiiiiiiss", [
            "database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
            "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested",
            "sv_login", "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts",
        ])
        public static let peerPools = columns("iiiii", [
            "peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel", "sv_login",
        ])
        public static let databases = columns("ssissiiiissiiiiii", [
            "name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
            "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts", "max_connections",
            "current_connections", "max_client_connections", "current_client_connections", "paused", "disabled",
        ])
        public static let peers = columns("isii", ["peer_id", "host", "port", "pool_size"])
        public static let users = columns("ssssiiii", [
            "name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
            "current_connections", "max_user_client_connections", "current_client_connections",
        ])
        public static let lists = columns("si", ["list", "items"])
        public static let config = columns("ssss", ["key", "value", "default", "changeable"])
        public static let stats = columns("sNNNNNNNNNNNNNNNNNNNNNN", [
            "database",
            "total_server_assignment_count", "total_xact_count", "total_query_count",
            "total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
            "total_client_parse_count", "total_server_parse_count", "total_bind_count",
            "avg_server_assignment_count", "avg_xact_count", "avg_query_count",
            "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time",
            "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count",
        ])
        public static let statsTotals = columns("sNNNNNNNNNNN", [
            "database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
            "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
            "server_parse_count", "bind_count",
        ])
        public static let statsAverages = columns("sNNNNNNNNNNN", [
            "database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
            "bytes_sent", "xact_time", "query_time", "wait_time", "avg_client_parse_count",
            "avg_server_parse_count", "avg_bind_count",
        ])
        public static let totals = columns("sN", ["name", "value"])
        public static let state = columns("ss", ["key", "value"])
        public static let memory = columns("siiii", ["name", "size", "used", "free", "memtotal"])
        public static let dnsHosts = columns("sqs", ["hostname", "ttl", "addrs"])
        public static let dnsZones = columns("sqi", ["zonename", "serial", "count"])
        public static let fds = columns("issssiqisssssbb", [
            "fd", "task", "user", "database", "addr", "port", "cancel", "link", "client_encoding",
            "std_strings", "datestyle", "timezone", "password", "scram_client_key", "scram_server_key",
        ])
        public static let version = [AdminColumn(name: "version", type: .text)]
    }

    // MARK: sockets

    private static func clientRank(_ state: AdminClientState) -> Int? {
        switch state {
        case .active: return 0
        case .waiting: return 1
        case .activeCancelRequest: return 2
        case .waitingCancelRequest: return 3
        case .login: return nil
        }
    }

    private static func serverRank(_ state: AdminServerState) -> Int {
        switch state {
        case .active: return 0
        case .idle: return 1
        case .used: return 2
        case .tested: return 3
        case .new: return 4
        case .activeCancel: return 5
        case .beingCanceled: return 6
        }
    }

    /// SHOW SOCKETS walks, per pool: cl_active, cl_waiting, sv_active, sv_idle, sv_used,
    /// sv_tested, sv_login; then the login clients. Cancel lists are not shown.
    private static func socketsRank(_ state: AdminSocketState) -> (rank: Int, name: String)? {
        switch state {
        case .client(.active): return (0, "cl_active")
        case .client(.waiting): return (1, "cl_waiting")
        case .server(.active): return (2, "sv_active")
        case .server(.idle): return (3, "sv_idle")
        case .server(.used): return (4, "sv_used")
        case .server(.tested): return (5, "sv_tested")
        case .server(.new): return (6, "sv_login")
        case .client(.login): return (7, "cl_login")
        case .client(.activeCancelRequest), .client(.waitingCancelRequest),
             .server(.activeCancel), .server(.beingCanceled): return nil
        }
    }

    /// Stable sort by key.
    private static func ordered<T>(_ items: [(key: (Int, Int), value: T)]) -> [T] {
        items.enumerated().sorted { a, b in
            if a.element.key != b.element.key { return a.element.key < b.element.key }
            return a.offset < b.offset
        }.map { $0.element.value }
    }

    static func clients(_ s: AdminSnapshot) -> AdminTable {
        var items: [(key: (Int, Int), value: AdminSocket)] = []
        for sk in s.sockets {
            if case .client(let st) = sk.state, let rank = clientRank(st) {
                items.append(((sk.poolIndex, rank), sk))
            }
        }
        let rows = ordered(items).map { sk -> [String?] in
            guard case .client(let st) = sk.state else { return [] }
            return socketRow(sk, state: st.rawValue, snapshot: s, debug: false)
        }
        return AdminTable(columns: Columns.sockets, rows: rows)
    }

    static func servers(_ s: AdminSnapshot) -> AdminTable {
        var items: [(key: (Int, Int), value: AdminSocket)] = []
        for sk in s.sockets {
            if case .server(let st) = sk.state { items.append(((sk.poolIndex, serverRank(st)), sk)) }
        }
        let rows = ordered(items).map { sk -> [String?] in
            guard case .server(let st) = sk.state else { return [] }
            return socketRow(sk, state: st.rawValue, snapshot: s, debug: false)
        }
        return AdminTable(columns: Columns.sockets, rows: rows)
    }

    static func sockets(_ s: AdminSnapshot, activeOnly: Bool) -> AdminTable {
        var items: [(key: (Int, Int), value: (AdminSocket, String))] = []
        for sk in s.sockets {
            guard let (rank, name) = socketsRank(sk.state) else { continue }
            if activeOnly && !sk.hasBufferedData { continue }
            // login clients come after every pool
            let key = rank == 7 ? (Int.max, 0) : (sk.poolIndex, rank)
            items.append((key, (sk, name)))
        }
        let rows = ordered(items).map { socketRow($0.0, state: $0.1, snapshot: s, debug: true) }
        return AdminTable(columns: Columns.socketsDebug, rows: rows)
    }

    static func socketRow(_ sk: AdminSocket, state: String, snapshot s: AdminSnapshot, debug: Bool) -> [String?] {
        let isServer: Bool
        if case .server = sk.state { isServer = true } else { isServer = false }
        let waitTime: UInt64 = (sk.queryStart != 0 && s.now > sk.queryStart) ? s.now - sk.queryStart : 0
        let shownState = (sk.link == nil && state == "active") ? "idle" : state
        var row: [String?] = [
            isServer ? "S" : "C",
            sk.user ?? "(nouser)",
            sk.database ?? "(nodb)",
            sk.replication.rawValue,
            shownState,
            sk.address,
            AdminFormat.int4(sk.port),
            sk.localAddress,
            AdminFormat.int4(sk.localPort),
            AdminFormat.timestamp(sk.connectTime, now: s.now, timeZone: s.timeZone),
            AdminFormat.timestamp(sk.requestTime, now: s.now, timeZone: s.timeZone),
            AdminFormat.int4(Int(waitTime / 1_000_000)),
            AdminFormat.int4(Int(waitTime % 1_000_000)),
            sk.closeNeeded ? "1" : "0",
            AdminFormat.pointer(sk.ptr),
            sk.link.map(AdminFormat.pointer) ?? "",
            AdminFormat.int4(sk.remotePid),
            sk.tls,
            sk.applicationName,
            AdminFormat.int4(sk.preparedStatements),
            AdminFormat.int4(Int(truncatingIfNeeded: sk.id)),
        ]
        if debug {
            row += [sk.recvPos, sk.pktPos, sk.pktRemain, sk.sendPos, 0, sk.pktAvail, sk.sendAvail]
                .map { AdminFormat.int4($0) }
        }
        return row
    }

    // MARK: pools, databases, users

    private static func i(_ v: Int) -> String? { AdminFormat.int4(v) }
    private static func flag(_ b: Bool) -> String? { b ? "1" : "0" }
    private static func n(_ v: UInt64) -> String? { String(v) }

    private static func loadBalance(host: String?, setting: String) -> String? {
        guard let host, host.utf8.contains(UInt8(ascii: ",")) else { return nil }
        return setting
    }

    static func pools(_ s: AdminSnapshot) -> AdminTable {
        let rows = s.pools.map { p -> [String?] in
            [
                p.database, p.user,
                i(p.clientsActive), i(p.clientsWaiting), i(p.clientsActiveCancelRequest),
                i(p.clientsWaitingCancelRequest), i(p.serversActive), i(p.serversActiveCancel),
                i(p.serversBeingCanceled), i(p.serversIdle), i(p.serversUsed), i(p.serversTested),
                i(p.serversLogin),
                i(Int(p.maxWaitMicroseconds / 1_000_000)), i(Int(p.maxWaitMicroseconds % 1_000_000)),
                p.poolMode,
                loadBalance(host: p.databaseHost, setting: p.loadBalanceHosts),
            ]
        }
        return AdminTable(columns: Columns.pools, rows: rows)
    }

    static func peerPools(_ s: AdminSnapshot) -> AdminTable {
        let rows = s.peerPools.map { p -> [String?] in
            [i(p.peerID), i(p.clientsActiveCancelRequest), i(p.clientsWaitingCancelRequest),
             i(p.serversActiveCancel), i(p.serversLogin)]
        }
        return AdminTable(columns: Columns.peerPools, rows: rows)
    }

    static func databases(_ s: AdminSnapshot) -> AdminTable {
        let rows = s.databases.map { d -> [String?] in
            [
                d.name, d.host, i(d.port), d.database, d.forceUser,
                i(d.poolSize), i(d.minPoolSize), i(d.reservePoolSize), i(d.serverLifetimeSeconds),
                d.poolMode, loadBalance(host: d.host, setting: d.loadBalanceHosts),
                i(d.maxConnections), i(d.currentConnections),
                i(d.maxClientConnections), i(d.currentClientConnections),
                flag(d.paused), flag(d.disabled),
            ]
        }
        return AdminTable(columns: Columns.databases, rows: rows)
    }

    static func peers(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.peers, rows: s.peers.map { [i($0.peerID), $0.host, i($0.port), i($0.poolSize)] })
    }

    static func users(_ s: AdminSnapshot) -> AdminTable {
        // PgBouncer prints overrides with "%9d" into buffers that start as "" and are not
        // reset between users, so a user without an override repeats the previous user's value.
        var poolSize = ""
        var reservePoolSize = ""
        let rows = s.users.map { u -> [String?] in
            if let v = u.poolSize, v >= 0 { poolSize = AdminFormat.padded9(v) }
            if let v = u.reservePoolSize, v >= 0 { reservePoolSize = AdminFormat.padded9(v) }
            return [
                u.name, poolSize, reservePoolSize, u.poolMode,
                i(u.maxUserConnections), i(u.currentConnections),
                i(u.maxUserClientConnections), i(u.currentClientConnections),
            ]
        }
        return AdminTable(columns: Columns.users, rows: rows)
    }

    static func lists(_ s: AdminSnapshot) -> AdminTable {
        let l = s.lists
        let items: [(String, Int)] = [
            ("databases", l.databases), ("users", l.users), ("peers", l.peers), ("pools", l.pools),
            ("peer_pools", l.peerPools), ("free_clients", l.freeClients), ("used_clients", l.usedClients),
            ("login_clients", l.loginClients), ("free_servers", l.freeServers), ("used_servers", l.usedServers),
            ("dns_names", l.dnsNames), ("dns_zones", l.dnsZones), ("dns_queries", l.dnsQueries),
            ("dns_pending", l.dnsPending),
        ]
        return AdminTable(columns: Columns.lists, rows: items.map { [$0.0, i($0.1)] })
    }

    static func config(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.config,
                   rows: s.config.map { [$0.key, $0.value, $0.defaultValue, $0.changeable ? "yes" : "no"] })
    }

    static func state(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.state, rows: [
            ["active", s.pauseState == .none ? "yes" : "no"],
            ["paused", s.pauseState == .paused ? "yes" : "no"],
            ["suspended", s.pauseState == .suspended ? "yes" : "no"],
        ])
    }

    static func memory(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.memory,
                   rows: s.memory.map { [$0.name, i($0.size), i($0.used), i($0.free), i($0.memTotal)] })
    }

    static func dnsHosts(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.dnsHosts, rows: s.dnsHosts.map { [$0.hostname, n($0.ttlSeconds), $0.addresses] })
    }

    static func dnsZones(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.dnsZones, rows: s.dnsZones.map { [$0.zoneName, n($0.serial), i($0.count)] })
    }

    // MARK: stats

    private static func counterValues(_ c: AdminStatCounters) -> [String?] {
        [c.serverAssignmentCount, c.xactCount, c.queryCount, c.received, c.sent, c.xactTime, c.queryTime,
         c.waitTime, c.clientParseCount, c.serverParseCount, c.bindCount].map(n)
    }

    static func stats(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.stats,
                   rows: s.stats.map { [$0.database] + counterValues($0.totals) + counterValues($0.averages) })
    }

    static func statsTotals(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.statsTotals, rows: s.stats.map { [$0.database] + counterValues($0.totals) })
    }

    static func statsAverages(_ s: AdminSnapshot) -> AdminTable {
        AdminTable(columns: Columns.statsAverages, rows: s.stats.map { [$0.database] + counterValues($0.averages) })
    }

    static func totals(_ s: AdminSnapshot) -> AdminTable {
        let all = s.totalStats ?? aggregate(s.stats)
        let names = ["server_assignment_count", "xact_count", "query_count", "client_bytes", "server_bytes",
                     "xact_time", "query_time", "wait_time", "ps_client_parse_count", "ps_server_parse_count",
                     "ps_bind_count"]
        var rows: [[String?]] = []
        for (name, value) in zip(names, counterValues(all.totals)) { rows.append(["total_" + name, value]) }
        for (name, value) in zip(names, counterValues(all.averages)) { rows.append(["avg_" + name, value]) }
        return AdminTable(columns: Columns.totals, rows: rows)
    }

    /// Fallback aggregate when the runtime gives no `totalStats`.
    static func aggregate(_ stats: [AdminStats]) -> AdminStats {
        var totals = AdminStatCounters.zero
        var rates = AdminStatCounters.zero
        var xactTimeWeighted: UInt64 = 0, queryTimeWeighted: UInt64 = 0, waitTimeWeighted: UInt64 = 0
        for st in stats {
            totals = totals + st.totals
            let a = st.averages
            rates = rates + AdminStatCounters(
                serverAssignmentCount: a.serverAssignmentCount, xactCount: a.xactCount, queryCount: a.queryCount,
                received: a.received, sent: a.sent, clientParseCount: a.clientParseCount,
                serverParseCount: a.serverParseCount, bindCount: a.bindCount)
            xactTimeWeighted &+= a.xactTime &* a.xactCount
            queryTimeWeighted &+= a.queryTime &* a.queryCount
            waitTimeWeighted &+= a.waitTime &* a.serverAssignmentCount
        }
        if rates.xactCount > 0 { rates.xactTime = xactTimeWeighted / rates.xactCount }
        if rates.queryCount > 0 { rates.queryTime = queryTimeWeighted / rates.queryCount }
        if rates.serverAssignmentCount > 0 { rates.waitTime = waitTimeWeighted / rates.serverAssignmentCount }
        return AdminStats(database: "", totals: totals, averages: rates)
    }
}
