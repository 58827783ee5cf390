import Testing

/// Pool limits and the server-side timeouts: query_wait_timeout,
/// client_login_timeout, server_idle_timeout, server_lifetime,
/// max_db_connections, max_user_connections, min_pool_size and the reserve pool.
@Suite struct PoolLimitTests {
    private static func backend(_ client: PQConnection) throws -> String {
        try client.exec("SELECT pg_backend_pid()", timeout: 10).scalar ?? ""
    }

    /// Rows of SHOW SERVERS for `database`.
    private static func servers(_ admin: PQConnection, database: String = "app_db") throws -> Int {
        try admin.exec("SHOW SERVERS").rowIndices(where: ["database": database]).count
    }

    /// Starts `BEGIN; SELECT pg_backend_pid()` on each client in the background.
    private static func beginAll(_ clients: [PQConnection]) -> [Background<String?>] {
        clients.map { client in
            Background { () throws -> String? in
                try client.exec("BEGIN", timeout: 20)
                return try client.exec("SELECT pg_backend_pid()", timeout: 20).scalar
            }
        }
    }

    @Test func queryWaitTimeoutFailsAQueuedQuery() throws {
        let pooler = try PoolerProcess(settings: ["query_wait_timeout = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let holder = try pooler.connect()
        defer { holder.close() }
        try holder.exec("BEGIN")
        try holder.exec("SELECT 1")
        let queued = try pooler.connect()
        defer { queued.close() }
        let start = monotonicSeconds()
        do {
            try queued.exec("SELECT 1", timeout: 15)
            Issue.record("the queued query ran although the only server was held\n\(pooler.diagnostics)")
        } catch {
            let text = (error as? PQError).map { $0.message + "\n" + $0.fullMessage } ?? "\(error)"
            #expect(text.contains("query_wait_timeout"), "\(error)\n\(pooler.diagnostics)")
        }
        let elapsed = monotonicSeconds() - start
        #expect(elapsed >= 0.8 && elapsed < 5, "query_wait_timeout = 1 fired after \(elapsed) s")
        // The holder is unaffected.
        #expect(try holder.exec("SELECT 2").scalar == "2")
        try holder.exec("COMMIT")
    }

    @Test func clientLoginTimeoutClosesASilentSocket() throws {
        let pooler = try PoolerProcess(settings: ["client_login_timeout = 1"])
        defer { pooler.stop() }
        let silent = try RawSocket(port: pooler.port)
        let start = monotonicSeconds()
        let reply = silent.readUntilClosed(timeout: 6)
        let elapsed = monotonicSeconds() - start
        #expect(silent.peerClosed, "a client that sends nothing should be closed; got \(reply)\n\(pooler.diagnostics)")
        #expect(elapsed >= 0.8 && elapsed < 4, "closed after \(elapsed) s")
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }

    @Test func serverIdleTimeoutClosesIdleServers() throws {
        let pooler = try PoolerProcess(settings: ["server_idle_timeout = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try Self.servers(admin) == 1)
        let closed = try waitUntil(timeout: 6) { try Self.servers(admin) == 0 }
        #expect(closed, "SHOW SERVERS: \(String(describing: try? admin.exec("SHOW SERVERS").rows))\n\(pooler.diagnostics)")
        #expect(pooler.logText.contains("server idle timeout"), "\(pooler.diagnostics)")
        // The client gets a fresh server next time.
        #expect(try client.exec("SELECT 2").scalar == "2")
    }

    @Test func serverLifetimeRetiresOldServers() throws {
        let pooler = try PoolerProcess(settings: ["server_lifetime = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let first = try Self.backend(client)
        let retired = waitUntil(timeout: 6) { pooler.logText.contains("server lifetime over") }
        #expect(retired, "no `server lifetime over` in the log\n\(pooler.diagnostics)")
        let second = try Self.backend(client)
        #expect(second != first, "the server outlived server_lifetime = 1\n\(pooler.diagnostics)")

        // A server in use when its lifetime ends finishes the transaction and is then replaced.
        try client.exec("BEGIN")
        let inTransaction = try Self.backend(client)
        let agedStart = monotonicSeconds()
        // Keep the transaction busy past the lifetime (the server must stay linked).
        try client.exec("SELECT pg_sleep(1.2)", timeout: 10)
        #expect(monotonicSeconds() - agedStart >= 1.2)
        #expect(try Self.backend(client) == inTransaction, "a server must not be retired mid-transaction")
        try client.exec("COMMIT")
        let third = try Self.backend(client)
        #expect(third != inTransaction, "a server past server_lifetime was reused after its transaction\n\(pooler.diagnostics)")
    }

    /// pool_size = 0 means no limit (PgBouncer's launch_new_connection): every client
    /// in a transaction gets a server of its own.
    @Test func defaultPoolSizeZeroIsUnlimited() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 0"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let clients = try (0..<12).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        let begun = Self.beginAll(clients)
        let results = begun.map { $0.wait(timeout: 10) }
        #expect(results.allSatisfy { (try? $0?.get()) != nil }, "\(results)\n\(pooler.diagnostics)")
        let pids = Set(results.compactMap { try? $0?.get() })
        #expect(pids.count == 12, "each open transaction needs its own backend: \(pids)")
        #expect(try admin.poolRow()["sv_active"] == "12")
        #expect(try admin.poolRow()["cl_waiting"] == "0")
        for client in clients { try client.exec("COMMIT", timeout: 10) }
    }

    /// As PgBouncer 1.25: a [users] pool_size wins over the database entry's.
    @Test func userPoolSizeOverridesDatabasePoolSize() throws {
        let port = try PostgresCluster.shared().port
        let pooler = try PoolerProcess(settings: ["default_pool_size = 5", "query_wait_timeout = 30"],
                                       databases: ["app_db = host=127.0.0.1 port=\(port) dbname=app_db pool_size=4"],
                                       users: ["app = pool_size=1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let clients = try (0..<2).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        let begun = Self.beginAll(clients)
        let settled = try waitUntil(timeout: 5) {
            let row = try admin.poolRow()
            return row["sv_active"] == "1" && row["cl_waiting"] == "1"
        }
        #expect(settled, "SHOW POOLS: \(String(describing: try? admin.poolRow()))\n\(pooler.diagnostics)")
        #expect(try Self.servers(admin) == 1)
        // The client holding the server finishes its statements (it may not have yet when
        // SHOW POOLS settles); it commits, and the waiting one gets the same server.
        #expect(waitUntil(timeout: 10) { begun.contains { $0.isDone } })
        let first = try #require(begun.indices.first { begun[$0].isDone })
        let other = 1 - first
        #expect(!begun[other].isDone, "pool_size = 1 let both transactions run")
        try clients[first].exec("COMMIT", timeout: 10)
        let second = begun[other].wait(timeout: 10)
        #expect((try? second?.get()) != nil, "\(String(describing: second))\n\(pooler.diagnostics)")
        try clients[other].exec("COMMIT", timeout: 10)
    }

    @Test func maxDbConnectionsCapsServersAcrossThePool() throws {
        let pooler = try PoolerProcess(settings: ["max_db_connections = 2", "default_pool_size = 5"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let clients = try (0..<4).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        let begun = Self.beginAll(clients)
        let settled = try waitUntil(timeout: 5) {
            let row = try admin.poolRow()
            return row["sv_active"] == "2" && row["cl_waiting"] == "2"
        }
        #expect(settled, "SHOW POOLS: \(String(describing: try? admin.poolRow()))\n\(pooler.diagnostics)")
        #expect(try Self.servers(admin) == 2, "\(String(describing: try? admin.exec("SHOW SERVERS").rows))")
        #expect(begun.filter(\.isDone).count == 2)

        // As the first two commit, the waiting two get the same two servers.
        let firstPIDs = Set(begun.indices.filter { begun[$0].isDone }.compactMap { try? begun[$0].wait(timeout: 0)?.get() })
        let committed = begun.indices.filter { begun[$0].isDone }
        for index in committed { try clients[index].exec("COMMIT", timeout: 10) }
        let rest = begun.map { $0.wait(timeout: 10) }
        #expect(rest.allSatisfy { (try? $0?.get()) != nil }, "\(rest)\n\(pooler.diagnostics)")
        let allPIDs = Set(rest.compactMap { try? $0?.get() })
        #expect(allPIDs == firstPIDs, "only two servers may exist: \(allPIDs) vs \(firstPIDs)")
        for index in clients.indices where !committed.contains(index) { try clients[index].exec("COMMIT", timeout: 10) }
        #expect(try Self.servers(admin) <= 2)
    }

    /// A pooler with max_user_connections = 2 and two databases for user app, and
    /// two clients of each database, all logged in (each pool has its login server).
    private static func twoDatabasePooler() throws -> (PoolerProcess, [PQConnection]) {
        let port = try PostgresCluster.shared().port
        let pooler = try PoolerProcess(settings: ["max_user_connections = 2", "default_pool_size = 5"], databases: [
            "app_db = host=127.0.0.1 port=\(port) dbname=app_db",
            "app_db2 = host=127.0.0.1 port=\(port) dbname=app_db",
        ])
        let clients = try [pooler.connect(), pooler.connect(), pooler.connect(database: "app_db2"),
                           pooler.connect(database: "app_db2")]
        return (pooler, clients)
    }

    private static func totalServers(_ admin: PQConnection) throws -> Int {
        try servers(admin) + servers(admin, database: "app_db2")
    }

    @Test func maxUserConnectionsCapsServersAcrossDatabases() throws {
        let (pooler, clients) = try Self.twoDatabasePooler()
        defer { pooler.stop() }
        defer { clients.forEach { $0.close() } }
        let admin = try pooler.admin()
        defer { admin.close() }

        // One transaction per database fits the limit of 2...
        var begun = Self.beginAll([clients[0], clients[2]])
        #expect(begun.allSatisfy { (try? $0.wait(timeout: 10)?.get()) != nil }, "\(pooler.diagnostics)")
        // ...the second of each database waits.
        begun += Self.beginAll([clients[1], clients[3]])
        let settled = try waitUntil(timeout: 5) {
            let active = try admin.poolCount("sv_active") + admin.poolCount("sv_active", database: "app_db2")
            let waiting = try admin.poolCount("cl_waiting") + admin.poolCount("cl_waiting", database: "app_db2")
            return active == 2 && waiting == 2
        }
        #expect(settled, "SHOW POOLS: \(String(describing: try? admin.exec("SHOW POOLS").rows))\n\(pooler.diagnostics)")
        #expect(try Self.totalServers(admin) == 2)
        #expect(!begun[2].isDone && !begun[3].isDone)

        try clients[0].exec("COMMIT", timeout: 10)
        try clients[2].exec("COMMIT", timeout: 10)
        let rest = [begun[2].wait(timeout: 10), begun[3].wait(timeout: 10)]
        #expect(rest.allSatisfy { (try? $0?.get()) != nil },
                "waiting clients should get the released servers: \(rest)\n\(pooler.diagnostics)")
        for index in [1, 3] where begun[index == 1 ? 2 : 3].isDone { try clients[index].exec("COMMIT", timeout: 10) }
        #expect(try Self.totalServers(admin) <= 2)
    }

    /// PgBouncer's evict_user_connection: at max_user_connections, a pool that needs a
    /// server closes an idle server of the same user in another pool ("evicted").
    @Test func maxUserConnectionsEvictsAnIdleServerOfAnotherDatabase() throws {
        let (pooler, clients) = try Self.twoDatabasePooler()
        defer { pooler.stop() }
        defer { clients.forEach { $0.close() } }
        let admin = try pooler.admin()
        defer { admin.close() }
        // Both pools have one idle server (from their clients' logins).
        let ready = try waitUntil(timeout: 5) {
            try admin.poolCount("sv_idle") == 1 && admin.poolCount("sv_idle", database: "app_db2") == 1
        }
        #expect(ready, "\(String(describing: try? admin.exec("SHOW POOLS").rows))")

        // app_db needs two servers; app_db2's idle one must make room.
        let begun = Self.beginAll([clients[0], clients[1]])
        let results = begun.map { $0.wait(timeout: 5) }
        #expect(results.allSatisfy { (try? $0?.get()) != nil },
                "the second app_db transaction should get a server after app_db2's idle server is evicted: \(results)\nSHOW POOLS: \(String(describing: try? admin.exec("SHOW POOLS").rows))\n\(pooler.diagnostics)")
        #expect(try Self.totalServers(admin) <= 2)
        for (index, result) in results.enumerated() where result != nil { try clients[index].exec("COMMIT", timeout: 10) }
    }

    @Test func minPoolSizeOpensServersAhead() throws {
        let pooler = try PoolerProcess(settings: ["min_pool_size = 2"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }
        let filled = try waitUntil(timeout: 5) { try Self.servers(admin) == 2 }
        #expect(filled, "SHOW SERVERS: \(String(describing: try? admin.exec("SHOW SERVERS").rows))\n\(pooler.diagnostics)")
        // And it stays there (does not grow).
        #expect(!(try waitUntil(timeout: 0.6) { try Self.servers(admin) > 2 }))
    }

    @Test func minPoolSizeSurvivesServerIdleTimeout() throws {
        let pooler = try PoolerProcess(settings: ["min_pool_size = 1", "server_idle_timeout = 1", "default_pool_size = 3"])
        defer { pooler.stop() }
        let clients = try (0..<3).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        let begun = Self.beginAll(clients)
        #expect(begun.allSatisfy { (try? $0.wait(timeout: 10)?.get()) != nil })
        for client in clients { try client.exec("COMMIT") }
        let admin = try pooler.admin()
        defer { admin.close() }
        let shrunk = try waitUntil(timeout: 6) { try Self.servers(admin) == 1 }
        #expect(shrunk, "idle servers above min_pool_size close: \(String(describing: try? admin.exec("SHOW SERVERS").rows))")
        #expect(!(try waitUntil(timeout: 1.5) { try Self.servers(admin) == 0 }), "min_pool_size keeps one server")
    }

    @Test func reservePoolServesAClientThatWaitedTooLong() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "reserve_pool_size = 1",
                                                  "reserve_pool_timeout = 1"])
        defer { pooler.stop() }
        let holder = try pooler.connect()
        defer { holder.close() }
        try holder.exec("BEGIN")
        let held = try Self.backend(holder)
        let admin = try pooler.admin()
        defer { admin.close() }

        let waiter = try pooler.connect()
        defer { waiter.close() }
        let start = monotonicSeconds()
        let reserved = try waiter.exec("SELECT pg_backend_pid()", timeout: 10).scalar
        let elapsed = monotonicSeconds() - start
        #expect(reserved != nil && reserved != held)
        #expect(elapsed >= 0.8 && elapsed < 5, "the reserve server came after \(elapsed) s")
        #expect(try Self.servers(admin) == 2, "\(String(describing: try? admin.exec("SHOW SERVERS").rows))")
        // The reserve is one server only: a third client with both busy waits.
        try waiter.exec("BEGIN")
        let third = try pooler.connect()
        defer { third.close() }
        let queued = Background { try third.exec("SELECT 3", timeout: 20).scalar }
        let waiting = try waitUntil(timeout: 5) { try admin.poolCount("cl_waiting") == 1 }
        #expect(waiting, "\(String(describing: try? admin.poolRow()))")
        #expect(!waitUntil(timeout: 1.6) { queued.isDone }, "a third server was opened beyond the reserve")
        #expect(try Self.servers(admin) == 2)
        try holder.exec("COMMIT")
        #expect((try? queued.wait(timeout: 10)?.get()) == "3")
        try waiter.exec("COMMIT")
    }
}
