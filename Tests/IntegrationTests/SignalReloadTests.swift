import Glibc
import Testing

/// SIGHUP reloads the ini (an invalid one is refused and the old configuration
/// kept); SIGUSR1 pauses and SIGUSR2 resumes, as PgBouncer.
@Suite struct SignalReloadTests {
    /// Rewrites the pooler's ini with `settings` applied (and `databases` when
    /// given) plus raw `extraLines` appended to [pgbouncer]; returns the text.
    @discardableResult
    private static func rewriteIni(_ pooler: PoolerProcess, settings: [String] = [], databases: [String]? = nil,
                                   extraLines: [String] = []) throws -> String {
        var ini = pooler.ini
        ini.apply(settings)
        if let databases { ini.databases = databases }
        var text = ini.render()
        for line in extraLines { text += line + "\n" }
        try writeTextFile(pooler.iniPath, text)
        return text
    }

    /// Sends SIGHUP and waits for the reload to be logged `count` times in all.
    private static func reload(_ pooler: PoolerProcess, count: Int = 1) -> Bool {
        guard pooler.send(signal: SIGHUP) else { return false }
        return waitUntil(timeout: 5) {
            pooler.logText.components(separatedBy: "got SIGHUP").count - 1 >= count
        }
    }

    private static func configValue(_ admin: PQConnection, _ key: String) throws -> String? {
        try admin.exec("SHOW CONFIG").row(where: ["key": key])?["value"]
    }

    @Test func sighupRaisesPoolSizeForConcurrentTransactions() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try Self.configValue(admin, "default_pool_size") == "1")

        try Self.rewriteIni(pooler, settings: ["default_pool_size = 3"])
        #expect(Self.reload(pooler), "no SIGHUP in the log\n\(pooler.diagnostics)")
        let applied = try waitUntil(timeout: 5) { try Self.configValue(admin, "default_pool_size") == "3" }
        #expect(applied, "default_pool_size after SIGHUP: \(String(describing: try? Self.configValue(admin, "default_pool_size")))\n\(pooler.diagnostics)")

        let clients = try (0..<3).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        let begun = clients.map { client in
            Background { () throws -> String? in
                try client.exec("BEGIN", timeout: 10)
                return try client.exec("SELECT pg_backend_pid()", timeout: 10).scalar
            }
        }
        let pids = begun.map { $0.wait(timeout: 10) }
        #expect(pids.allSatisfy { (try? $0?.get()) != nil },
                "3 transactions should run at once with pool size 3: \(pids)\n\(pooler.diagnostics)")
        #expect(Set(pids.compactMap { try? $0?.get() }).count == 3, "three distinct servers: \(pids)")
        let active = try waitUntil(timeout: 5) { try admin.poolCount("sv_active") == 3 }
        #expect(active, "SHOW POOLS: \(String(describing: try? admin.poolRow()))")
        for (index, client) in clients.enumerated() where begun[index].isDone {
            try client.exec("COMMIT", timeout: 10)
        }
    }

    @Test func sighupWithInvalidIniKeepsTheOldConfiguration() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        try Self.rewriteIni(pooler, settings: ["default_pool_size = 3"], extraLines: ["no_such_setting = 1"])
        #expect(Self.reload(pooler), "no SIGHUP in the log\n\(pooler.diagnostics)")
        let refused = waitUntil(timeout: 5) {
            pooler.logText.contains("no_such_setting") && pooler.logText.contains("ERROR")
        }
        #expect(refused, "an invalid ini should be refused with an error naming the key\n\(pooler.diagnostics)")
        #expect(pooler.isRunning)
        #expect(try Self.configValue(admin, "default_pool_size") == "1", "the old pool size must stay")
        #expect(try client.exec("SELECT 2").scalar == "2")
        let newcomer = try pooler.connect()
        defer { newcomer.close() }
        #expect(try newcomer.exec("SELECT 3").scalar == "3")

        // Pool size 1 still holds: a second transaction waits while one is open.
        try client.exec("BEGIN")
        try client.exec("SELECT 1")
        let second = Background { try newcomer.exec("SELECT 4", timeout: 20).scalar }
        let waiting = try waitUntil(timeout: 5) { try admin.poolCount("cl_waiting") >= 1 }
        #expect(waiting, "with pool size 1 the second client should wait: \(String(describing: try? admin.poolRow()))")
        try client.exec("COMMIT")
        #expect((try? second.wait(timeout: 10)?.get()) == "4")

        // A later valid reload still works.
        try Self.rewriteIni(pooler, settings: ["default_pool_size = 2"])
        #expect(Self.reload(pooler, count: 2))
        let applied = try waitUntil(timeout: 5) { try Self.configValue(admin, "default_pool_size") == "2" }
        #expect(applied, "\(pooler.diagnostics)")
    }

    /// A user's password changed in PostgreSQL and in auth_file, then RELOAD: new server
    /// logins use the new one (the pool kept the old one for ever, every login failing).
    @Test func reloadedAuthFilePasswordIsUsedForServerLogins() throws {
        let cluster = try PostgresCluster.shared()
        let role = TestEnvironment.uniqueName("pwchange")
        _ = try cluster.superuserExec("CREATE ROLE \(role) LOGIN PASSWORD 'first-password'")
        _ = try cluster.superuserExec("GRANT CONNECT ON DATABASE app_db TO \(role)")
        let userlist = cluster.userlist + "\"\(role)\" \"first-password\"\n"
        let pooler = try PoolerProcess(settings: ["auth_type = trust"], userlist: userlist)
        defer { pooler.stop() }
        let client = try pooler.connect(user: role)
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == role)

        _ = try cluster.superuserExec("ALTER ROLE \(role) PASSWORD 'second-password'")
        try writeTextFile(pooler.authFilePath, cluster.userlist + "\"\(role)\" \"second-password\"\n", mode: 0o600)
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RELOAD")
        try admin.exec("RECONNECT") // the next transaction needs a new server login
        do {
            #expect(try client.exec("SELECT current_user", timeout: 15).scalar == role)
            let fresh = try pooler.connect(user: role)
            defer { fresh.close() }
            #expect(try fresh.exec("SELECT 1", timeout: 15).scalar == "1")
        } catch {
            Issue.record("server login after a password change and RELOAD failed: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// An entry moved to another database (as to a new host): after RELOAD new clients
    /// get the new server's parameters (here its TimeZone), not the old server's.
    @Test func reloadedEntryGivesNewClientsTheNewServersParameters() throws {
        let cluster = try PostgresCluster.shared()
        let tokyo = try cluster.createDatabase(prefix: "tz")
        _ = try cluster.superuserExec("ALTER DATABASE \(tokyo) SET TimeZone = 'Asia/Tokyo'")
        let pooler = try PoolerProcess(databases: ["app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db"])
        defer { pooler.stop() }
        let before = try pooler.connect()
        defer { before.close() }
        #expect(try before.exec("SELECT 1").scalar == "1")
        #expect(before.parameterStatus("TimeZone") != "Asia/Tokyo")
        try Self.rewriteIni(pooler, databases: ["app_db = host=127.0.0.1 port=\(cluster.port) dbname=\(tokyo)"])
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RELOAD")
        let after = try pooler.connect(timeout: 15)
        defer { after.close() }
        #expect(try after.exec("SELECT current_database()").scalar == tokyo)
        #expect(after.parameterStatus("TimeZone") == "Asia/Tokyo", "\(pooler.diagnostics)")
    }

    /// Keys that need a restart keep their running value on RELOAD (as PgBouncer), with
    /// a warning; reloadable ones in the same file take effect.
    @Test func reloadKeepsRestartOnlyKeys() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let port = String(pooler.port)
        try Self.rewriteIni(pooler, settings: ["listen_port = \(pooler.port + 1)", "disable_pqexec = 1",
                                               "default_pool_size = 7"])
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RELOAD")
        #expect(try Self.configValue(admin, "listen_port") == port)
        #expect(try Self.configValue(admin, "disable_pqexec") == "0")
        #expect(try Self.configValue(admin, "default_pool_size") == "7")
        #expect(pooler.logText.contains("listen_port changed from '\(port)'"), "\(pooler.diagnostics)")
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 'simple query still allowed'").scalar == "simple query still allowed")
    }

    /// default_pool_size lowered by RELOAD: the idle servers beyond it close (as
    /// PgBouncer's check_pool_size), instead of staying until server_idle_timeout.
    @Test func reloadedSmallerPoolSizeClosesExtraIdleServers() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 3", "workers = 1"])
        defer { pooler.stop() }
        let clients = try (0..<3).map { _ in try pooler.connect() }
        defer { for client in clients { client.close() } }
        for client in clients {
            try client.exec("BEGIN")
            _ = try client.exec("SELECT 1")
        }
        for client in clients { try client.exec("COMMIT") }
        let admin = try pooler.admin()
        defer { admin.close() }
        func servers() throws -> Int {
            let pools = try admin.exec("SHOW POOLS")
            return pools.rowIndices(where: ["database": "app_db", "user": "app"]).reduce(0) { total, index in
                total + ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"].reduce(0) {
                    $0 + (Int(pools.value(index, $1) ?? "0") ?? 0)
                }
            }
        }
        #expect(try servers() == 3)
        try Self.rewriteIni(pooler, settings: ["default_pool_size = 1"])
        try admin.exec("RELOAD")
        let shrunk = try waitUntil(timeout: 10, interval: 0.1) { try servers() == 1 }
        let left = try servers()
        #expect(shrunk, "servers after RELOAD: \(left)\n\(pooler.diagnostics)")
        #expect(try clients[0].exec("SELECT 2").scalar == "2")
    }

    /// A database removed by RELOAD: its connected client may finish, then its pool goes
    /// (no more SHOW POOLS row, its servers closed, min_pool_size no longer refilled).
    @Test func reloadRemovedDatabaseFreesItsPoolOnceItsClientsLeave() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(settings: ["min_pool_size = 1", "workers = 1"], databases: [
            "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
            "gone_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
        ])
        defer { pooler.stop() }
        let client = try pooler.connect(database: "gone_db")
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        try Self.rewriteIni(pooler, databases: ["app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db"])
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RELOAD")
        #expect(try client.exec("SELECT 2", timeout: 10).scalar == "2", "the connected client finishes its work")
        #expect(try admin.exec("SHOW POOLS").row(where: ["database": "gone_db"]) != nil)
        client.close()
        let freed = try waitUntil(timeout: 10, interval: 0.1) {
            try admin.exec("SHOW POOLS").row(where: ["database": "gone_db"]) == nil
        }
        #expect(freed, "the removed database's pool stayed\n\(pooler.diagnostics)")
        #expect(pooler.logText.contains("database removed from the configuration"), "\(pooler.diagnostics)")
    }

    @Test func sighupAddsADatabase() throws {
        let pooler = try PoolerProcess(databases: [
            "app_db = host=127.0.0.1 port=\(PostgresCluster.shared().port) dbname=app_db",
        ])
        defer { pooler.stop() }
        #expect(throws: PQError.self, "no entry for added_db yet") {
            let early = try pooler.connect(database: "added_db", timeout: 10)
            early.close()
        }
        try Self.rewriteIni(pooler, databases: [
            "app_db = host=127.0.0.1 port=\(pooler.cluster.port) dbname=app_db",
            "added_db = host=127.0.0.1 port=\(pooler.cluster.port) dbname=app_db",
        ])
        #expect(Self.reload(pooler), "no SIGHUP in the log\n\(pooler.diagnostics)")
        var lastError: Error?
        let connected = waitUntil(timeout: 5, interval: 0.1) {
            do {
                let client = try pooler.connect(database: "added_db", timeout: 5)
                defer { client.close() }
                return try client.exec("SELECT current_database()").scalar == "app_db"
            } catch {
                lastError = error
                return false
            }
        }
        #expect(connected, "added_db should be connectable after SIGHUP: \(String(describing: lastError))\n\(pooler.diagnostics)")
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try admin.exec("SHOW DATABASES").row(where: ["name": "added_db"]) != nil)
    }

    @Test func sigusr1PausesAndSigusr2Resumes() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }

        #expect(pooler.send(signal: SIGUSR1))
        let paused = waitUntil(timeout: 5) { pooler.logText.contains("SIGUSR1") }
        #expect(paused, "\(pooler.diagnostics)")
        let query = Background { try client.exec("SELECT 5", timeout: 20).scalar }
        let waiting = try waitUntil(timeout: 5) { try admin.poolCount("cl_waiting") >= 1 }
        #expect(waiting, "a query should wait while paused: \(String(describing: try? admin.poolRow()))\n\(pooler.diagnostics)")
        #expect(!query.isDone, "\(String(describing: query.wait(timeout: 0)))")

        #expect(pooler.send(signal: SIGUSR2))
        let answer = query.wait(timeout: 10)
        #expect((try? answer?.get()) == "5", "SIGUSR2 should resume: \(String(describing: answer))\n\(pooler.diagnostics)")
        #expect(pooler.logText.contains("SIGUSR2"))
        // After SIGUSR2 the pooler is not paused any more.
        let resumeError = #expect(throws: PQError.self) { try admin.exec("RESUME") }
        #expect(resumeError?.message.contains("not paused") == true, "\(String(describing: resumeError))")
    }
}
