/// workers > 1: each event loop describes its own clients, servers and pools; the
/// console shows one pooler. Pools, databases, users and stats of the same name are
/// added up; sockets are listed together (clients by id, then servers pool by pool);
/// each loop's DNS cache holds the hosts that loop resolved, so SHOW DNS_HOSTS lists
/// their union; what every loop holds a copy of (configuration, pause state) comes from
/// the first.
extension AdminSnapshot {
    public static func merged(_ parts: [AdminSnapshot]) -> AdminSnapshot {
        guard var result = parts.first else { return AdminSnapshot(now: 0) }
        guard parts.count > 1 else { return result }

        let (pools, poolIndex) = combine(parts.map(\.pools), key: { PoolID(database: $0.database, user: $0.user) },
                                         add: { $0.add($1) })

        var clients: [AdminSocket] = []
        var servers: [AdminSocket] = []
        for part in parts {
            for socket in part.sockets {
                var socket = socket
                if socket.poolIndex < part.pools.count {
                    let pool = part.pools[socket.poolIndex]
                    socket.poolIndex = poolIndex[PoolID(database: pool.database, user: pool.user)] ?? pools.count
                } else {
                    socket.poolIndex = pools.count
                }
                if case .client = socket.state { clients.append(socket) } else { servers.append(socket) }
            }
        }
        clients.sort { $0.id < $1.id }
        servers.sort { ($0.poolIndex, $0.id) < ($1.poolIndex, $1.id) }

        var databases = combine(parts.map(\.databases), key: \.name, add: { $0.add($1) }).rows
        var users = combine(parts.map(\.users), key: \.name, add: { $0.add($1) }).rows
        var peerPools = combine(parts.map(\.peerPools), key: \.peerID, add: { $0.add($1) }).rows
        let statsByDatabase = Dictionary(grouping: parts.flatMap(\.stats), by: \.database)
        // "pgbouncer" (the admin database) stays last, as each part lists it.
        if let index = databases.firstIndex(where: { $0.name == "pgbouncer" }) {
            databases.append(databases.remove(at: index))
        }
        users.sort { $0.name < $1.name }
        peerPools.sort { $0.peerID < $1.peerID }
        // A host resolved on several loops is shown once (the first loop's entry).
        let dnsHosts = combine(parts.map(\.dnsHosts), key: \.hostname, add: { _, _ in }).rows
            .sorted { $0.hostname < $1.hostname }

        var lists = result.lists
        for part in parts.dropFirst() {
            lists.freeClients += part.lists.freeClients
            lists.usedClients += part.lists.usedClients
            lists.loginClients += part.lists.loginClients
            lists.freeServers += part.lists.freeServers
            lists.usedServers += part.lists.usedServers
        }
        lists.databases = databases.count
        lists.users = users.count
        lists.pools = pools.count
        lists.peerPools = peerPools.count

        result.pools = pools
        result.sockets = clients + servers
        result.databases = databases
        result.users = users
        result.peerPools = peerPools
        result.dnsHosts = dnsHosts
        result.lists = lists
        result.stats = statsByDatabase.keys.sorted().map { database in
            var merged = AdminConsole.aggregate(statsByDatabase[database] ?? [])
            merged.database = database
            return merged
        }
        result.totalStats = nil
        return result
    }

    private struct PoolID: Hashable {
        var database: String
        var user: String
    }

    /// The rows of every part, one per key in first-seen order; a key seen again adds
    /// its counts to the row already there. Also where each key's row is.
    private static func combine<Row, Key: Hashable>(_ lists: [[Row]], key: (Row) -> Key,
                                                    add: (inout Row, Row) -> Void) -> (rows: [Row], index: [Key: Int]) {
        var rows: [Row] = []
        var index: [Key: Int] = [:]
        for list in lists {
            for row in list {
                if let at = index[key(row)] {
                    add(&rows[at], row)
                } else {
                    index[key(row)] = rows.count
                    rows.append(row)
                }
            }
        }
        return (rows, index)
    }
}

extension AdminDatabase {
    /// Adds another loop's counts for the same database.
    mutating func add(_ other: AdminDatabase) {
        currentConnections += other.currentConnections
        currentClientConnections += other.currentClientConnections
    }
}

extension AdminUser {
    /// Adds another loop's counts for the same user.
    mutating func add(_ other: AdminUser) {
        currentConnections += other.currentConnections
        currentClientConnections += other.currentClientConnections
    }
}

extension AdminPeerPool {
    /// Adds another loop's cancel requests to the same peer.
    mutating func add(_ other: AdminPeerPool) {
        clientsActiveCancelRequest += other.clientsActiveCancelRequest
        clientsWaitingCancelRequest += other.clientsWaitingCancelRequest
        serversActiveCancel += other.serversActiveCancel
        serversLogin += other.serversLogin
    }
}

extension AdminPool {
    /// Adds another loop's counts for the same pool.
    mutating func add(_ other: AdminPool) {
        clientsActive += other.clientsActive
        clientsWaiting += other.clientsWaiting
        clientsActiveCancelRequest += other.clientsActiveCancelRequest
        clientsWaitingCancelRequest += other.clientsWaitingCancelRequest
        serversActive += other.serversActive
        serversActiveCancel += other.serversActiveCancel
        serversBeingCanceled += other.serversBeingCanceled
        serversIdle += other.serversIdle
        serversUsed += other.serversUsed
        serversTested += other.serversTested
        serversLogin += other.serversLogin
        maxWaitMicroseconds = max(maxWaitMicroseconds, other.maxWaitMicroseconds)
    }
}
