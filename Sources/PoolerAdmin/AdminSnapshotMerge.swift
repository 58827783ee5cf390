/// workers > 1: each event loop describes its own clients, servers and pools; the
/// console shows one pooler. Pools, databases, users and stats of the same name are
/// added up; sockets are listed together (clients by id, then servers pool by pool);
/// what every loop holds a copy of (configuration, pause state, DNS) comes from the first.
extension AdminSnapshot {
    public static func merged(_ parts: [AdminSnapshot]) -> AdminSnapshot {
        guard var result = parts.first else { return AdminSnapshot(now: 0) }
        guard parts.count > 1 else { return result }

        var pools: [AdminPool] = []
        var poolIndex: [String: Int] = [:]
        for part in parts {
            for pool in part.pools {
                let key = pool.database + "\u{0}" + pool.user
                if let index = poolIndex[key] {
                    pools[index].add(pool)
                } else {
                    poolIndex[key] = pools.count
                    pools.append(pool)
                }
            }
        }

        var clients: [AdminSocket] = []
        var servers: [AdminSocket] = []
        for part in parts {
            for socket in part.sockets {
                var socket = socket
                if socket.poolIndex < part.pools.count {
                    let pool = part.pools[socket.poolIndex]
                    socket.poolIndex = poolIndex[pool.database + "\u{0}" + pool.user] ?? pools.count
                } else {
                    socket.poolIndex = pools.count
                }
                if case .client = socket.state { clients.append(socket) } else { servers.append(socket) }
            }
        }
        clients.sort { $0.id < $1.id }
        servers.sort { ($0.poolIndex, $0.id) < ($1.poolIndex, $1.id) }

        var databases = result.databases
        var users = result.users
        var peerPools = result.peerPools
        var statsByDatabase: [String: [AdminStats]] = [:]
        var statsOrder: [String] = []
        for (number, part) in parts.enumerated() {
            if number > 0 {
                for database in part.databases {
                    if let index = databases.firstIndex(where: { $0.name == database.name }) {
                        databases[index].currentConnections += database.currentConnections
                        databases[index].currentClientConnections += database.currentClientConnections
                    } else {
                        databases.append(database)
                    }
                }
                for user in part.users {
                    if let index = users.firstIndex(where: { $0.name == user.name }) {
                        users[index].currentConnections += user.currentConnections
                        users[index].currentClientConnections += user.currentClientConnections
                    } else {
                        users.append(user)
                    }
                }
                for peerPool in part.peerPools {
                    if let index = peerPools.firstIndex(where: { $0.peerID == peerPool.peerID }) {
                        peerPools[index].clientsActiveCancelRequest += peerPool.clientsActiveCancelRequest
                        peerPools[index].clientsWaitingCancelRequest += peerPool.clientsWaitingCancelRequest
                        peerPools[index].serversActiveCancel += peerPool.serversActiveCancel
                        peerPools[index].serversLogin += peerPool.serversLogin
                    } else {
                        peerPools.append(peerPool)
                    }
                }
            }
            for stats in part.stats {
                if statsByDatabase[stats.database] == nil { statsOrder.append(stats.database) }
                statsByDatabase[stats.database, default: []].append(stats)
            }
        }
        // "pgbouncer" (the admin database) stays last, as each part lists it.
        if let index = databases.firstIndex(where: { $0.name == "pgbouncer" }) {
            databases.append(databases.remove(at: index))
        }
        users.sort { $0.name < $1.name }
        peerPools.sort { $0.peerID < $1.peerID }

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
        result.lists = lists
        result.stats = statsOrder.sorted().map { database in
            var merged = AdminConsole.aggregate(statsByDatabase[database] ?? [])
            merged.database = database
            return merged
        }
        result.totalStats = nil
        return result
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
