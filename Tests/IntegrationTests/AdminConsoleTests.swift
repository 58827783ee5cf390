import Testing

/// The admin console: the `pgbouncer` database, for admin_users and stats_users.
@Suite struct AdminConsoleTests {
    /// SHOW POOLS columns of PgBouncer 1.25 (src/admin.c, doc/usage.md), in order.
    static let poolsColumns = [
        "database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
        "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
        "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts",
    ]

    @Test func showPoolsAndClientsReflectIdleClients() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let clients = try (0..<3).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        for client in clients {
            #expect(try client.exec("SELECT 1").scalar == "1")
        }
        let admin = try pooler.admin()
        defer { admin.close() }

        let pools = try admin.exec("SHOW POOLS")
        if TestEnvironment.skipExactColumnLists {
            let present = Self.poolsColumns.filter { pools.columns.contains($0) }
            #expect(pools.columns.filter { Self.poolsColumns.contains($0) } == present, "column order")
            #expect(present.count >= 15, "\(pools.columns)")
        } else {
            #expect(pools.columns == Self.poolsColumns)
        }
        let rows = pools.rowIndices(where: ["database": "app_db", "user": "app"])
        try #require(rows.count == 1, "no app_db/app row in \(pools.rows)")
        // Idle clients between transactions count as active, not waiting.
        let settled = try waitUntil(timeout: 5) {
            let pools = try admin.exec("SHOW POOLS")
            let row = pools.rowIndices(where: ["database": "app_db", "user": "app"]).first ?? -1
            return row >= 0 && pools.value(row, "cl_active") == "3"
        }
        let latest = try admin.exec("SHOW POOLS")
        #expect(settled, "cl_active should be 3: \(latest.columns) \(latest.rows)")
        #expect(pools.value(rows[0], "cl_waiting") == "0")
        #expect(pools.value(rows[0], "pool_mode") == "transaction")

        let clientList = try admin.exec("SHOW CLIENTS")
        for column in ["type", "user", "database", "state", "addr", "port"] {
            #expect(clientList.columnIndex(column) != nil, "SHOW CLIENTS lacks \(column): \(clientList.columns)")
        }
        let appClients = clientList.rowIndices(where: ["database": "app_db", "user": "app"])
        #expect(appClients.count == 3, "\(clientList.rows)")
        #expect(appClients.allSatisfy { clientList.value($0, "type") == "C" })
    }

    @Test func showCommandsAnswer() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.exec("SELECT 1")
        let admin = try pooler.admin()
        defer { admin.close() }

        for command in ["SHOW VERSION", "SHOW STATS", "SHOW CONFIG", "SHOW DATABASES", "SHOW SERVERS",
                        "SHOW LISTS", "SHOW USERS", "SHOW POOLS", "SHOW CLIENTS"] {
            let result = try admin.exec(command)
            #expect(!result.columns.isEmpty, "\(command) returned no columns")
        }
        #expect(try admin.exec("SHOW VERSION").rows.count == 1)
        let databases = try admin.exec("SHOW DATABASES")
        #expect(!databases.rowIndices(where: ["name": "app_db"]).isEmpty, "\(databases.rows)")
        let config = try admin.exec("SHOW CONFIG")
        let poolSize = config.rowIndices(where: ["key": "default_pool_size"])
        #expect(poolSize.count == 1 && config.value(poolSize[0], "value") == "5", "\(config.rows)")
        let users = try admin.exec("SHOW USERS")
        #expect(!users.rowIndices(where: ["name": "app"]).isEmpty, "\(users.rows)")
        let stats = try admin.exec("SHOW STATS")
        #expect(stats.columnIndex("database") != nil)
        #expect(!stats.rowIndices(where: ["database": "app_db"]).isEmpty, "\(stats.rows)")

        // SHOW HELP answers with notices and no rows.
        #expect(throws: Never.self) { try admin.exec("SHOW HELP") }

        let error = #expect(throws: PQError.self) { try admin.exec("SHOW NONSENSE") }
        #expect(error != nil)
        #expect(try admin.exec("SHOW VERSION").rows.count == 1, "the admin connection should keep working")
    }

    @Test func statsUserCanShow() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let stats = try pooler.admin(user: "app")
        defer { stats.close() }
        #expect(try !stats.exec("SHOW POOLS").columns.isEmpty)
        #expect(try !stats.exec("SHOW STATS").columns.isEmpty)
        #expect(try stats.exec("SHOW VERSION").rows.count == 1)
    }
}
