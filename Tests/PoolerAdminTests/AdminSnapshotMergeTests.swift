import Testing
@testable import PoolerAdmin

/// workers > 1: every loop describes its part; the console shows their sum.
@Suite struct AdminSnapshotMergeTests {
    static func socket(_ state: AdminSocketState, pool: Int, id: UInt64, user: String = "app") -> AdminSocket {
        AdminSocket(state: state, poolIndex: pool, user: user, database: "db", address: "127.0.0.1", port: 1,
                    localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0,
                    ptr: Int(id), id: id)
    }

    static func part(pools: [AdminPool], sockets: [AdminSocket], xacts: UInt64, xactRate: UInt64, xactTime: UInt64,
                     servers: Int, clients: Int) -> AdminSnapshot {
        AdminSnapshot(
            now: 1, databases: [AdminDatabase(name: "db", host: nil, port: 5432, database: "db", poolSize: 3,
                                              currentConnections: servers, currentClientConnections: clients),
                                AdminDatabase(name: "pgbouncer", host: nil, port: 6432, database: "pgbouncer", poolSize: 2)],
            pools: pools, sockets: sockets,
            users: [AdminUser(name: "app", maxUserConnections: 0, currentConnections: servers,
                              maxUserClientConnections: 0, currentClientConnections: clients)],
            stats: [AdminStats(database: "db", totals: AdminStatCounters(xactCount: xacts),
                               averages: AdminStatCounters(xactCount: xactRate, xactTime: xactTime))],
            lists: AdminLists(databases: 2, users: 1, pools: pools.count, usedClients: clients, freeServers: servers))
    }

    @Test func poolsDatabasesUsersAndStatsAddUp() {
        let loop0 = Self.part(
            pools: [AdminPool(database: "db", user: "app", clientsActive: 2, clientsWaiting: 1, serversActive: 1,
                              serversIdle: 1, maxWaitMicroseconds: 500)],
            sockets: [Self.socket(.client(.active), pool: 0, id: 3), Self.socket(.client(.login), pool: 1, id: 1),
                      Self.socket(.server(.active), pool: 0, id: 5)],
            xacts: 100, xactRate: 10, xactTime: 1_000, servers: 2, clients: 3)
        let loop1 = Self.part(
            pools: [AdminPool(database: "other", user: "app", clientsActive: 1),
                    AdminPool(database: "db", user: "app", clientsActive: 4, serversActive: 1, maxWaitMicroseconds: 900)],
            sockets: [Self.socket(.client(.active), pool: 1, id: 2), Self.socket(.server(.idle), pool: 1, id: 4),
                      Self.socket(.client(.active), pool: 0, id: 6)],
            xacts: 50, xactRate: 30, xactTime: 3_000, servers: 1, clients: 4)
        let merged = AdminSnapshot.merged([loop0, loop1])

        #expect(merged.pools.map { "\($0.database)/\($0.user)" } == ["db/app", "other/app"])
        let db = merged.pools[0]
        #expect(db.clientsActive == 6 && db.clientsWaiting == 1 && db.serversActive == 2 && db.serversIdle == 1)
        #expect(db.maxWaitMicroseconds == 900)
        // Clients by id, then servers by pool; pool indexes point into the merged list,
        // a client without a pool past its end.
        #expect(merged.sockets.map(\.id) == [1, 2, 3, 6, 4, 5])
        #expect(merged.sockets.map(\.poolIndex) == [2, 0, 0, 1, 0, 0])
        #expect(merged.databases.map(\.name) == ["db", "pgbouncer"])
        #expect(merged.databases[0].currentConnections == 3 && merged.databases[0].currentClientConnections == 7)
        #expect(merged.users.count == 1 && merged.users[0].currentConnections == 3)
        #expect(merged.lists.pools == 2 && merged.lists.usedClients == 7 && merged.lists.freeServers == 3)
        #expect(merged.stats.count == 1)
        #expect(merged.stats[0].totals.xactCount == 150)
        // Rates add; times are weighted by each loop's rate: (10*1000 + 30*3000) / 40.
        #expect(merged.stats[0].averages.xactCount == 40)
        #expect(merged.stats[0].averages.xactTime == 2_500)
    }

    /// Each loop resolves the hosts its own servers need: SHOW DNS_HOSTS lists them all,
    /// once each (with loop 0 alone it missed a host only loop 1 had resolved, which
    /// made HostResolutionTests flaky).
    @Test func dnsHostsAreTheUnionOfTheLoops() {
        var loop0 = AdminSnapshot(now: 1)
        loop0.dnsHosts = [AdminDNSHost(hostname: "db2", ttlSeconds: 10, addresses: "10.0.0.2")]
        var loop1 = AdminSnapshot(now: 1)
        loop1.dnsHosts = [AdminDNSHost(hostname: "localhost", ttlSeconds: 5, addresses: "127.0.0.1"),
                          AdminDNSHost(hostname: "db2", ttlSeconds: 3, addresses: "10.0.0.2")]
        let merged = AdminSnapshot.merged([loop0, loop1])
        #expect(merged.dnsHosts.map(\.hostname) == ["db2", "localhost"])
        #expect(merged.dnsHosts[0].ttlSeconds == 10)
    }

    @Test func oneLoopIsItsOwnView() {
        let only = Self.part(pools: [AdminPool(database: "db", user: "app", clientsActive: 1)],
                             sockets: [Self.socket(.client(.active), pool: 0, id: 1)],
                             xacts: 1, xactRate: 1, xactTime: 1, servers: 0, clients: 1)
        #expect(AdminSnapshot.merged([only]) == only)
    }
}
