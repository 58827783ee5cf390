import CLinuxShims
import Glibc
import PoolerAdmin
import PoolerConfig
import PoolerCore
import PoolerWire

/// The admin console: builds a snapshot of the pooler, lets PoolerAdmin answer,
/// performs the commands that change state, and encodes the reply.
final class AdminService {
    unowned let pooler: Pooler
    init(pooler: Pooler) { self.pooler = pooler }

    func execute(_ sql: String, client: ClientConnection) -> [UInt8] {
        let reply = AdminConsole.handle(query: sql, snapshot: snapshot(), isAdmin: client.isAdminUser)
        var writer = MessageWriter()
        encode(reply, client: client, into: &writer)
        // A deferred reply (PAUSE, WAIT_CLOSE, SUSPEND) sends ReadyForQuery when it completes.
        if !client.awaitingAdminReply { writer.readyForQuery(.idle) }
        return writer.bytes
    }

    /// The console's answer to `sql` for this client, without side effects yet.
    func reply(for sql: String, client: ClientConnection) -> AdminReply {
        AdminConsole.handle(query: sql, snapshot: snapshot(), isAdmin: client.isAdminUser)
    }

    /// Writes `reply`; `describe: false` leaves out the RowDescription (extended
    /// protocol Execute, where Describe sent it).
    func encode(_ reply: AdminReply, client: ClientConnection, into writer: inout MessageWriter, describe: Bool = true) {
        switch reply {
        case .table(let table):
            if describe { Self.rowDescription(table, into: &writer) }
            for row in table.rows { writer.dataRow(row) }
            writer.commandComplete(table.tag)
        case .command(let tag, let notices):
            for notice in notices {
                writer.begin(BackendMessageID.noticeResponse)
                writer.byte(UInt8(ascii: "S")); writer.cString(notice.severity)
                writer.byte(UInt8(ascii: "C")); writer.cString(notice.code)
                writer.byte(UInt8(ascii: "M")); writer.cString(notice.message)
                if let detail = notice.detail { writer.byte(UInt8(ascii: "D")); writer.cString(detail) }
                writer.byte(0)
                writer.end()
            }
            writer.commandComplete(tag)
        case .error(let error):
            writer.errorResponse(severity: error.severity, code: error.code, message: error.message)
        case .action(let command):
            perform(command, client: client, into: &writer)
        }
    }

    static func rowDescription(_ table: AdminTable, into writer: inout MessageWriter) {
        writer.begin(BackendMessageID.rowDescription)
        writer.int16(Int16(table.columns.count))
        for column in table.columns {
            writer.cString(column.name)
            writer.int32(0)
            writer.int16(0)
            writer.int32(column.type.oid)
            writer.int16(column.type.typeSize)
            writer.int32(column.type.typeModifier)
            writer.int16(0)
        }
        writer.end()
    }

    // MARK: snapshot

    /// The whole pooler: with several loops, each describes its part while the others
    /// wait, so the view is consistent.
    func snapshot() -> AdminSnapshot {
        guard pooler.workers.count > 1 else { return localSnapshot() }
        var parts: [AdminSnapshot] = []
        pooler.everyLoop { parts.append($0.admin.localSnapshot()) }
        return AdminSnapshot.merged(parts)
    }

    /// This loop's clients, servers and pools.
    func localSnapshot() -> AdminSnapshot {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wallNow = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec / 1000)
        let monoNow = pooler.loop.now
        func wall(_ mono: UInt64) -> UInt64 { mono == 0 ? 0 : wallNow &- (monoNow &- mono) }
        let settings = pooler.settings
        let pools = pooler.orderedPools
        var poolIndex: [PoolKey: Int] = [:]
        for (i, pool) in pools.enumerated() { poolIndex[pool.key] = i }

        var clientsActive: [PoolKey: Int] = [:]
        var clientsWaiting: [PoolKey: Int] = [:]
        var sockets: [AdminSocket] = []
        var loginClients = 0
        for client in pooler.clients.values.sorted(by: { $0.id < $1.id }) {
            let state: AdminClientState
            switch client.state {
            case .startup, .authLookup, .auth, .welcomeWait: state = .login; loginClients += 1
            case .waiting: state = .waiting
            case .idle, .active, .admin: state = .active
            }
            if let key = client.pool?.key {
                if state == .waiting { clientsWaiting[key, default: 0] += 1 } else if state == .active { clientsActive[key, default: 0] += 1 }
            }
            sockets.append(AdminSocket(
                state: .client(state), poolIndex: client.pool.flatMap { poolIndex[$0.key] } ?? pools.count,
                user: client.user.isEmpty ? nil : client.user,
                database: client.databaseName.isEmpty ? nil : client.databaseName,
                replication: AdminReplication(client.replication),
                address: client.isUnixSocket ? "unix" : client.remote.host, port: client.remote.port,
                localAddress: client.isUnixSocket ? "unix" : "127.0.0.1", localPort: client.localPort,
                connectTime: wall(client.connectTime), requestTime: wall(client.requestTime),
                queryStart: client.state == .waiting ? wall(client.waitStart) : 0,
                ptr: client.id, link: client.server?.id, remotePid: 0,
                tls: client.tlsDescription,
                applicationName: client.applicationName, preparedStatements: client.statements.count, id: UInt64(client.id),
                pktAvail: client.input.readableCount, sendAvail: client.output.readableCount,
                hasBufferedData: !client.input.isEmpty || !client.output.isEmpty))
        }
        var freeServers = 0
        for pool in pools {
            for server in pool.servers.values.sorted(by: { $0.id < $1.id }) {
                let state: AdminServerState
                switch server.state {
                case .connecting, .sslRequest, .tlsHandshake, .login, .connectQuery: state = .new
                case .idle: state = .idle; freeServers += 1
                case .active: state = .active
                case .resetting: state = .used
                case .testing: state = .tested
                }
                sockets.append(AdminSocket(
                    state: .server(state), poolIndex: poolIndex[pool.key] ?? 0, user: pool.key.user, database: pool.key.database,
                    replication: AdminReplication(server.replication),
                    address: server.remote.family == AF_UNIX ? "unix" : server.remote.host, port: server.remote.port,
                    localAddress: "127.0.0.1", localPort: 0,
                    connectTime: wall(server.connectTime), requestTime: wall(server.requestTime),
                    ptr: server.id, link: server.client?.id, remotePid: Int(server.backendProcessID),
                    applicationName: "", preparedStatements: server.statementCache.count, id: UInt64(server.id),
                    pktAvail: server.input.readableCount, sendAvail: server.output.readableCount,
                    hasBufferedData: !server.input.isEmpty || !server.output.isEmpty))
            }
        }

        let adminPools = pools.map { pool -> AdminPool in
            let counts = serverCounts(pool)
            let cancels = cancelCounts { $0.target?.pool === pool }
            return AdminPool(database: pool.key.database, user: pool.key.user,
                             clientsActive: clientsActive[pool.key] ?? 0, clientsWaiting: clientsWaiting[pool.key] ?? 0,
                             clientsActiveCancelRequest: cancels.sent, clientsWaitingCancelRequest: cancels.connecting,
                             serversActive: counts.active, serversActiveCancel: cancels.sent,
                             serversBeingCanceled: pool.servers.values.filter { $0.cancelsInFlight > 0 }.count, serversIdle: counts.idle, serversUsed: counts.used,
                             serversTested: counts.tested,
                             serversLogin: counts.login, maxWaitMicroseconds: pool.state.maxWait(now: monoNow),
                             poolMode: pool.mode.rawValue, databaseHost: pool.database.host)
        }

        var databases: [AdminDatabase] = []
        for name in pooler.config.databaseOrder {
            guard let entry = pooler.config.databases[name], name != "*" else { continue }
            let current = pools.filter { $0.key.database == name }.reduce(0) { $0 + $1.state.serverCount }
            let clients = pooler.clients.values.filter { $0.databaseName == name }.count
            databases.append(AdminDatabase(
                name: name, host: entry.host, port: entry.port, database: entry.dbname ?? name, forceUser: entry.user,
                poolSize: entry.poolSize ?? settings.defaultPoolSize, minPoolSize: entry.minPoolSize ?? settings.minPoolSize,
                reservePoolSize: entry.reservePoolSize ?? settings.reservePoolSize,
                serverLifetimeSeconds: Int(entry.serverLifetime.flatMap { $0 > 0 ? $0 : nil } ?? settings.serverLifetime), poolMode: entry.poolMode?.rawValue,
                maxConnections: entry.maxDbConnections ?? settings.maxDbConnections, currentConnections: current,
                maxClientConnections: entry.maxDbClientConnections ?? settings.maxDbClientConnections,
                currentClientConnections: clients, paused: pooler.isPaused(database: name),
                disabled: pooler.disabledDatabases.contains(name)))
        }
        // Databases created on the fly through the "*" entry are listed too, as in PgBouncer.
        for pool in pools where pooler.config.databases[pool.key.database] == nil
            && !databases.contains(where: { $0.name == pool.key.database }) {
            databases.append(AdminDatabase(name: pool.key.database, host: pool.database.host, port: pool.database.port,
                                           database: pool.database.dbname ?? pool.key.database,
                                           poolSize: pool.state.limits.poolSize,
                                           currentConnections: pool.state.serverCount))
        }
        databases.append(AdminDatabase(name: "pgbouncer", host: nil, port: settings.listenPort, database: "pgbouncer",
                                       forceUser: "pgbouncer", poolSize: 2, poolMode: "statement"))

        let current = pooler.statsByDatabase()
        let stats = current.keys.sorted().map { db in
            AdminStats(database: db,
                       totals: counters(current[db]!),
                       averages: AdminStatCounters.averages(current: counters(pooler.previousStats[db] ?? PoolStats()),
                                                            older: counters(pooler.olderStats[db] ?? PoolStats()),
                                                            elapsedMicroseconds: pooler.statsPeriodMicroseconds))
        }

        var users: [AdminUser] = []
        var userNames = Set(pooler.config.users.keys)
        for pool in pools { userNames.insert(pool.key.user) }
        for name in userNames.sorted() {
            let entry = pooler.config.users[name]
            users.append(AdminUser(name: name, poolSize: entry?.poolSize, reservePoolSize: entry?.reservePoolSize,
                                   poolMode: entry?.poolMode?.rawValue,
                                   maxUserConnections: entry?.maxUserConnections ?? settings.maxUserConnections,
                                   currentConnections: pools.filter { $0.key.user == name }.reduce(0) { $0 + $1.state.serverCount },
                                   maxUserClientConnections: entry?.maxUserClientConnections ?? settings.maxUserClientConnections,
                                   currentClientConnections: pooler.clients.values.filter { $0.user == name }.count))
        }

        let config = ConfigKeys.all.map { key in
            AdminConfigEntry(key: key.name, value: settings.value(of: key.name) ?? "", defaultValue: key.defaultValue,
                             changeable: key.reloadable)
        }
        let usedServers = pools.reduce(0) { $0 + $1.state.serverCount } - freeServers
        let lists = AdminLists(databases: databases.count, users: users.count, peers: pooler.config.peers.count,
                               pools: pools.count, peerPools: pooler.peersUsed.count,
                               freeClients: 0, usedClients: pooler.clients.count - loginClients, loginClients: loginClients,
                               freeServers: freeServers, usedServers: usedServers)
        let pauseState: AdminPauseState
        switch pooler.pauseMode {
        case .none: pauseState = .none
        case .pause: pauseState = .paused
        case .suspend: pauseState = .suspended
        }
        let peers = pooler.config.peers.keys.sorted().map { id -> AdminPeer in
            let peer = pooler.config.peers[id]!
            return AdminPeer(peerID: id, host: peer.host, port: peer.port, poolSize: peer.poolSize ?? settings.defaultPoolSize)
        }
        let peerPools = pooler.peersUsed.sorted().map { id -> AdminPeerPool in
            let cancels = cancelCounts { $0.peerID == id }
            return AdminPeerPool(peerID: id, clientsActiveCancelRequest: cancels.sent,
                                 clientsWaitingCancelRequest: cancels.connecting,
                                 serversActiveCancel: cancels.sent, serversLogin: cancels.connecting)
        }
        let dnsHosts = pooler.resolver.cachedHosts.sorted { $0.host < $1.host }.map { entry in
            AdminDNSHost(hostname: entry.host, ttlSeconds: entry.expires > monoNow ? (entry.expires - monoNow) / 1_000_000 : 0,
                         addresses: entry.addresses.map(\.host).joined(separator: ","))
        }
        return AdminSnapshot(now: wallNow, version: PoolerVersion.full, pauseState: pauseState,
                             databases: databases, pools: adminPools, sockets: sockets, users: users, stats: stats,
                             lists: lists, config: config, peers: peers, peerPools: peerPools, dnsHosts: dnsHosts)
    }

    private func serverCounts(_ pool: PoolRuntime) -> (active: Int, idle: Int, used: Int, tested: Int, login: Int) {
        var result = (active: 0, idle: 0, used: 0, tested: 0, login: 0)
        for server in pool.servers.values {
            switch server.state {
            case .connecting, .sslRequest, .tlsHandshake, .login, .connectQuery: result.login += 1
            case .idle: result.idle += 1
            case .active: result.active += 1
            case .resetting: result.used += 1
            case .testing: result.tested += 1
            }
        }
        return result
    }

    private func counters(_ s: PoolStats) -> AdminStatCounters {
        AdminStatCounters(serverAssignmentCount: s.serverAssignmentCount, xactCount: s.transactionCount,
                          queryCount: s.queryCount, received: s.bytesReceived, sent: s.bytesSent,
                          xactTime: s.transactionTime, queryTime: s.queryTime, waitTime: s.waitTime,
                          clientParseCount: s.clientParseCount, serverParseCount: s.serverParseCount,
                          bindCount: s.bindCount)
    }
}

extension Pooler {
    /// PgBouncer 1.25.2's periodic stats line (later versions add client logins/s): per-second averages over all pools for the
    /// last stats_period, logged even when idle; also the systemd STATUS text.
    func logStats() {
        let total = { (stats: [String: PoolStats]) in stats.values.reduce(PoolStats(), +) }
        var current = PoolStats(), older = PoolStats()
        everyLoop { pooler in
            current = current + total(pooler.previousStats)
            older = older + total(pooler.olderStats)
        }
        let seconds = max(statsPeriodMicroseconds, 1)
        let perSecond = { (c: UInt64, o: UInt64) in (c &- o) &* 1_000_000 / seconds }
        let xacts = current.transactionCount &- older.transactionCount
        let queries = current.queryCount &- older.queryCount
        let assignments = current.serverAssignmentCount &- older.serverAssignmentCount
        let text = "stats: \(perSecond(current.transactionCount, older.transactionCount)) xacts/s, "
            + "\(perSecond(current.queryCount, older.queryCount)) queries/s, "
            + "\(perSecond(current.clientParseCount, older.clientParseCount)) client parses/s, "
            + "\(perSecond(current.serverParseCount, older.serverParseCount)) server parses/s, "
            + "\(perSecond(current.bindCount, older.bindCount)) binds/s, "
            + "in \(perSecond(current.bytesReceived, older.bytesReceived)) B/s, "
            + "out \(perSecond(current.bytesSent, older.bytesSent)) B/s, "
            + "xact \(xacts > 0 ? (current.transactionTime &- older.transactionTime) / xacts : 0) us, "
            + "query \(queries > 0 ? (current.queryTime &- older.queryTime) / queries : 0) us, "
            + "wait \(assignments > 0 ? (current.waitTime &- older.waitTime) / assignments : 0) us"
        log.info(text)
        _ = pooler_sd_notify("STATUS=\(text)")
    }
}


extension AdminService {
    /// Cancel requests in flight matching `filter`: still connecting (a client request
    /// waiting, a connection logging in) or sent (waiting for the other end to close).
    func cancelCounts(_ filter: (CancelForwarder) -> Bool) -> (connecting: Int, sent: Int) {
        var counts = (connecting: 0, sent: 0)
        for forwarder in pooler.cancelForwarders where filter(forwarder) {
            if forwarder.sent { counts.sent += 1 } else { counts.connecting += 1 }
        }
        return counts
    }
}

extension AdminReplication {
    init(_ mode: ReplicationMode) {
        switch mode {
        case .none: self = .none
        case .logical: self = .logical
        case .physical: self = .physical
        }
    }
}
