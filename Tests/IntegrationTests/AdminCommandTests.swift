import Testing

/// PgBouncer 1.25's control commands on the admin console: PAUSE, RESUME, SUSPEND,
/// KILL, KILL_CLIENT, DISABLE, ENABLE, RECONNECT, WAIT_CLOSE, SET, and the
/// remaining SHOW commands.
@Suite struct AdminCommandTests {
    /// The text of an error (message plus libpq's full report).
    private static func text(_ error: Error) -> String {
        if let error = error as? PQError { return error.message + "\n" + error.fullMessage }
        return "\(error)"
    }

    /// Runs `sql` expecting an error whose text contains `fragment`.
    private static func expectError(_ connection: PQConnection, _ sql: String, contains fragment: String,
                                    pooler: PoolerProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try connection.exec(sql, timeout: 10)
            Issue.record("`\(sql)` succeeded; expected an error with \"\(fragment)\"\n\(pooler.diagnostics)",
                         sourceLocation: sourceLocation)
        } catch {
            #expect(fragment.isEmpty || text(error).contains(fragment), "`\(sql)`: \(error)\n\(pooler.diagnostics)",
                    sourceLocation: sourceLocation)
        }
    }

    /// A value from `SELECT pg_backend_pid()`: the real PostgreSQL backend.
    private static func backend(_ client: PQConnection) throws -> String {
        try client.exec("SELECT pg_backend_pid()").scalar ?? ""
    }

    @Test func statsUserGetsAdminAccessNeededForControlCommands() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let stats = try pooler.admin(user: "app")
        defer { stats.close() }
        for command in ["PAUSE", "PAUSE app_db", "RESUME", "RESUME app_db", "SUSPEND", "KILL app_db", "KILL",
                        "KILL_CLIENT 1", "DISABLE app_db", "ENABLE app_db", "RECONNECT", "RECONNECT app_db",
                        "WAIT_CLOSE", "WAIT_CLOSE app_db", "SET default_pool_size = 3", "RELOAD", "SHOW FDS",
                        "SHUTDOWN"] {
            Self.expectError(stats, command, contains: "admin access needed", pooler: pooler)
        }
        #expect(pooler.isRunning, "a stats user's SHUTDOWN must not stop the pooler\n\(pooler.diagnostics)")
        #expect(try stats.exec("SHOW VERSION").rows.count == 1)
        let config = try stats.exec("SHOW CONFIG").row(where: ["key": "default_pool_size"])
        #expect(config?["value"] == "5", "the stats user's SET must not apply: \(String(describing: config))")
    }

    @Test func pauseDatabaseWaitsForOpenTransactionThenQueriesWaitUntilResume() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let busy = try pooler.connect()
        defer { busy.close() }
        let other = try pooler.connect()
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
        try busy.exec("BEGIN")
        #expect(try busy.exec("SELECT 1").scalar == "1")

        let admin = try pooler.admin()
        defer { admin.close() }
        let pause = Background { try admin.exec("PAUSE app_db", timeout: 20) }
        let issued = waitUntil(timeout: 5) { pooler.logText.contains("PAUSE 'app_db' command issued") }
        #expect(issued, "no PAUSE in the log\n\(pooler.diagnostics)")
        // The reply must wait for the transaction on app_db.
        #expect(!waitUntil(timeout: 0.7) { pause.isDone },
                "PAUSE answered while a transaction was open: \(String(describing: pause.wait(timeout: 0)))")
        try busy.exec("SELECT 2", timeout: 10)  // the transaction goes on while PAUSE waits
        try busy.exec("COMMIT", timeout: 10)
        switch pause.wait(timeout: 5) {
        case .none: Issue.record("PAUSE did not answer after COMMIT\n\(pooler.diagnostics)")
        case .failure(let error)?: Issue.record("PAUSE failed: \(error)\n\(pooler.diagnostics)")
        case .success?: break
        }

        // A new query on the paused database waits, visible as cl_waiting.
        let query = Background { try other.exec("SELECT 42", timeout: 20).scalar }
        let monitor = try pooler.admin()
        defer { monitor.close() }
        let waiting = try waitUntil(timeout: 5) { try monitor.poolCount("cl_waiting") >= 1 }
        #expect(waiting, "SHOW POOLS: \(String(describing: try? monitor.poolRow()))\n\(pooler.diagnostics)")
        #expect(!query.isDone, "a query ran on a paused database: \(String(describing: query.wait(timeout: 0)))")
        let database = try monitor.exec("SHOW DATABASES").row(where: ["name": "app_db"])
        #expect(database?["paused"] == "1", "SHOW DATABASES should show app_db paused: \(String(describing: database))")

        try admin.exec("RESUME app_db", timeout: 10)
        let answer = query.wait(timeout: 10)
        #expect((try? answer?.get()) == "42", "after RESUME the query should run: \(String(describing: answer))\n\(pooler.diagnostics)")
        #expect(try monitor.poolCount("cl_waiting") == 0)
        Self.expectError(admin, "RESUME app_db", contains: "not paused", pooler: pooler)
    }

    @Test func pauseAllAndResume() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }

        Self.expectError(admin, "RESUME", contains: "pooler is not paused/suspended", pooler: pooler)
        try admin.exec("PAUSE", timeout: 10)
        Self.expectError(admin, "PAUSE", contains: "already", pooler: pooler)
        let query = Background { try client.exec("SELECT 7", timeout: 20).scalar }
        let waiting = try waitUntil(timeout: 5) { try admin.poolCount("cl_waiting") >= 1 }
        #expect(waiting, "SHOW POOLS: \(String(describing: try? admin.poolRow()))\n\(pooler.diagnostics)")
        #expect(!query.isDone)
        // The admin console itself keeps answering while paused.
        #expect(try admin.exec("SHOW VERSION").rows.count == 1)
        try admin.exec("RESUME", timeout: 10)
        let answer = query.wait(timeout: 10)
        #expect((try? answer?.get()) == "7", "\(String(describing: answer))\n\(pooler.diagnostics)")
        Self.expectError(admin, "RESUME", contains: "pooler is not paused/suspended", pooler: pooler)
    }

    /// SUSPEND keeps the server connections (as PgBouncer does): after RESUME the client
    /// runs on the same backend, no server logged in again.
    @Test func suspendThenResume() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let backend = try Self.backend(client)
        let admin = try pooler.admin()
        defer { admin.close() }

        try admin.exec("SUSPEND", timeout: 10)
        let query = Background { try client.exec("SELECT 8", timeout: 20).scalar }
        #expect(!waitUntil(timeout: 0.7) { query.isDone },
                "a query ran while suspended: \(String(describing: query.wait(timeout: 0)))")
        #expect(try admin.exec("SHOW VERSION").rows.count == 1, "the admin console answers while suspended")
        try admin.exec("RESUME", timeout: 10)
        let answer = query.wait(timeout: 10)
        #expect((try? answer?.get()) == "8", "\(String(describing: answer))\n\(pooler.diagnostics)")
        #expect(try Self.backend(client) == backend, "the server was not kept through SUSPEND\n\(pooler.diagnostics)")
        #expect(!pooler.logText.contains("pause mode"), "\(pooler.diagnostics)")
        Self.expectError(admin, "RESUME", contains: "pooler is not paused/suspended", pooler: pooler)
    }

    /// SUSPEND stops accepting connections, as PgBouncer's suspend_pooler: a client that
    /// connects meanwhile (here to the admin console, whose login needs no server) waits
    /// in the listen backlog and logs in after RESUME. With two loops too (their
    /// EPOLLEXCLUSIVE registrations are removed and made again).
    @Test(arguments: [1, 2])
    func suspendStopsAcceptingUntilResume(workers: Int) throws {
        let pooler = try PoolerProcess(settings: ["workers = \(workers)"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("SUSPEND", timeout: 10)
        let late = Background { () throws -> String? in
            let console = try pooler.admin()
            defer { console.close() }
            return try console.exec("SHOW VERSION", timeout: 20).scalar
        }
        #expect(!waitUntil(timeout: 0.7) { late.isDone },
                "a client logged in while suspended: \(String(describing: late.wait(timeout: 0)))")
        try admin.exec("RESUME", timeout: 10)
        let answer = late.wait(timeout: 20)
        #expect(((try? answer?.get()) ?? nil)?.isEmpty == false, "\(String(describing: answer))\n\(pooler.diagnostics)")
    }

    /// As PgBouncer: once suspended with no admin console connection left (nobody could
    /// connect to say RESUME), the pooler resumes by itself.
    @Test func suspendResumesWhenTheAdminDisconnects() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let admin = try pooler.admin()
        try admin.exec("SUSPEND", timeout: 10)
        let query = Background { try client.exec("SELECT 7", timeout: 20).scalar }
        #expect(!waitUntil(timeout: 0.5) { query.isDone },
                "a query ran while suspended: \(String(describing: query.wait(timeout: 0)))")
        admin.close()
        let answer = query.wait(timeout: 10)
        #expect((try? answer?.get()) == "7", "\(String(describing: answer))\n\(pooler.diagnostics)")
        #expect(pooler.logText.contains("admin disappeared when suspended, doing RESUME"), "\(pooler.diagnostics)")
        let fresh = try pooler.connect(timeout: 10)
        defer { fresh.close() }
        #expect(try fresh.exec("SELECT 1").scalar == "1")
    }

    /// While suspended nobody is served, as in PgBouncer: a client queued for the only
    /// server (busy before SUSPEND) still waits after that server is released, and runs
    /// on it after RESUME.
    @Test func suspendServesNoWaitingClientUntilResume() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let busy = try pooler.connect()
        defer { busy.close() }
        let waiter = try pooler.connect()
        defer { waiter.close() }
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try busy.exec("SELECT 1").scalar == "1")
        // The busy client's query runs on the server before the waiter asks (else the
        // waiter might take the server first, and be served before SUSPEND).
        let marker = "suspend-busy-\(pooler.port)"
        let sleeping = Background { try busy.exec("SELECT pg_sleep(2), '\(marker)'", timeout: 20).scalar }
        let running = try waitUntil(timeout: 10, interval: 0.02) {
            try pooler.cluster.superuserExec("""
                SELECT count(*) FROM pg_stat_activity
                WHERE state = 'active' AND query LIKE '%\(marker)%' AND query NOT LIKE '%pg_stat_activity%'
                """).scalar == "1"
        }
        try #require(running, "the busy client's query did not start\n\(pooler.diagnostics)")
        // The waiter queues behind the busy server (SHOW POOLS cl_waiting).
        let queued = Background { try waiter.exec("SELECT 2", timeout: 20).scalar }
        let waiting = try waitUntil(timeout: 10, interval: 0.02) {
            let pools = try admin.exec("SHOW POOLS")
            return pools.rowIndices(where: ["database": "app_db", "user": "app"]).contains { index in
                (Int(pools.value(index, "cl_waiting") ?? "0") ?? 0) > 0
            }
        }
        try #require(waiting, "the second client did not queue\n\(pooler.diagnostics)")
        try admin.exec("SUSPEND", timeout: 10)
        switch sleeping.wait(timeout: 10) {
        case .success?: break
        default: Issue.record("the query running before SUSPEND did not finish\n\(pooler.diagnostics)")
        }
        #expect(!waitUntil(timeout: 0.7) { queued.isDone },
                "a queued client was served while suspended: \(String(describing: queued.wait(timeout: 0)))\n\(pooler.diagnostics)")
        try admin.exec("RESUME", timeout: 10)
        let answer = queued.wait(timeout: 10)
        #expect((try? answer?.get()) == "2", "\(String(describing: answer))\n\(pooler.diagnostics)")
    }

    /// A raw client (md5app, trust) that asks for `megabytes` 1 MB rows and does not read
    /// them yet, once the pooler's buffer toward it is full (SHOW SOCKETS send_avail > 0).
    private static func clientWithUnreadResult(_ pooler: PoolerProcess, admin: PQConnection,
                                               megabytes: Int) throws -> RawSocket {
        let client = try RawSocket(port: pooler.port)
        client.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var ready = false
        while let message = client.readMessage(timeout: 10) {
            if message.typeCharacter == "Z" { ready = true; break }
        }
        try #require(ready, "the raw client did not log in\n\(pooler.diagnostics)")
        let sql = Array("SELECT repeat('x', 1048576) FROM generate_series(1, \(megabytes))".utf8) + [0]
        client.send(FrontendPacket.message("Q", length: UInt32(4 + sql.count), body: sql))
        let filled = try waitUntil(timeout: 10, interval: 0.05) {
            let sockets = try admin.exec("SHOW SOCKETS")
            return sockets.rowIndices(where: ["user": "md5app"]).contains { index in
                (Int(sockets.value(index, "send_avail") ?? "0") ?? 0) > 0
            }
        }
        try #require(filled, "\(String(describing: try? admin.exec("SHOW SOCKETS").rows))")
        return client
    }

    /// suspend_timeout: a client that does not read its (large) result keeps its buffer
    /// full; SUSPEND drops it after suspend_timeout and completes; others carry on.
    @Test func suspendTimeoutDropsAClientThatDoesNotRead() throws {
        let pooler = try PoolerProcess(settings: ["suspend_timeout = 1", "auth_type = trust"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        // ~64 MB of result that this client never reads: the pooler's buffer toward it stays full.
        let stuck = try Self.clientWithUnreadResult(pooler, admin: admin, megabytes: 64)
        defer { stuck.close() }
        let started = monotonicSeconds()
        try admin.exec("SUSPEND", timeout: 15)
        let waited = monotonicSeconds() - started
        #expect(waited >= 0.8 && waited < 8, "SUSPEND completed after \(waited) s")
        #expect(pooler.logText.contains("suspend_timeout"), "\(pooler.diagnostics)")
        try admin.exec("RESUME", timeout: 10)
        // trust: md5app's plaintext userlist entry serves the server login.
        let other = try pooler.connect(user: "md5app")
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
    }

    /// SUSPEND waits for every buffer to be flushed: a client that does not read its
    /// (large) result holds it back; once the client has read it all, SUSPEND completes
    /// (long before suspend_timeout, without dropping the client), and after RESUME the
    /// client goes on. In session mode too, where no server is released at the end.
    @Test(arguments: ["transaction", "session"])
    func suspendWaitsForAClientToReadItsResult(poolMode: String) throws {
        let pooler = try PoolerProcess(settings: ["suspend_timeout = 60", "auth_type = trust", "pool_mode = \(poolMode)"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let slow = try Self.clientWithUnreadResult(pooler, admin: admin, megabytes: 16)
        defer { slow.close() }
        let suspender = try pooler.admin()
        defer { suspender.close() }
        let suspend = Background { try suspender.exec("SUSPEND", timeout: 30) }
        #expect(!waitUntil(timeout: 0.5) { suspend.isDone },
                "SUSPEND answered while a buffer was still full: \(String(describing: suspend.wait(timeout: 0)))")
        var rows = 0
        var finished = false
        while let message = slow.readMessage(timeout: 10) {
            if message.typeCharacter == "D" { rows += 1 }
            if message.typeCharacter == "Z" { finished = true; break }
        }
        #expect(finished && rows == 16, "the client read \(rows) rows\n\(pooler.diagnostics)")
        switch suspend.wait(timeout: 10) {
        case .none: Issue.record("SUSPEND did not complete after the buffer was read\n\(pooler.diagnostics)")
        case .failure(let error)?: Issue.record("SUSPEND failed: \(error)")
        case .success?: break
        }
        #expect(!pooler.logText.contains("suspend_timeout"), "\(pooler.diagnostics)")
        try admin.exec("RESUME", timeout: 10)
        let again = Array("SELECT 5".utf8) + [0]
        slow.send(FrontendPacket.message("Q", length: UInt32(4 + again.count), body: again))
        var answered = false
        while let message = slow.readMessage(timeout: 10) {
            if message.typeCharacter == "Z" { answered = true; break }
        }
        #expect(answered, "the client got no answer after RESUME\n\(pooler.diagnostics)")
    }

    @Test func killDatabaseDropsItsClientsAndNewOnesWaitForResume() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let victim = try pooler.connect()
        defer { victim.close() }
        #expect(try victim.exec("SELECT 1").scalar == "1")
        let inTransaction = try pooler.connect()
        defer { inTransaction.close() }
        try inTransaction.exec("BEGIN")
        try inTransaction.exec("SELECT 1")
        let admin = try pooler.admin()
        defer { admin.close() }

        try admin.exec("KILL app_db", timeout: 10)
        #expect(throws: PQError.self, "a client of a killed database is disconnected") {
            try victim.exec("SELECT 1", timeout: 5)
        }
        #expect(throws: PQError.self, "a client in a transaction is disconnected too") {
            try inTransaction.exec("SELECT 1", timeout: 5)
        }
        let servers = try waitUntil(timeout: 5) {
            try admin.exec("SHOW SERVERS").rowIndices(where: ["database": "app_db"]).isEmpty
        }
        #expect(servers, "servers of the killed database remain: \(String(describing: try? admin.exec("SHOW SERVERS").rows))")

        // A new client waits (at login or at its first query) until RESUME.
        let pooler2 = pooler
        let newcomer = Background { () throws -> String? in
            let client = try pooler2.connect(timeout: 20)
            defer { client.close() }
            return try client.exec("SELECT 9", timeout: 20).scalar
        }
        #expect(!waitUntil(timeout: 1) { newcomer.isDone },
                "a new client got through to a killed database: \(String(describing: newcomer.wait(timeout: 0)))")
        try admin.exec("RESUME app_db", timeout: 10)
        let answer = newcomer.wait(timeout: 10)
        #expect((try? answer?.get()) == "9", "\(String(describing: answer))\n\(pooler.diagnostics)")
    }

    @Test func killClientDisconnectsExactlyThatClient() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let victim = try pooler.connect(extra: ["application_name": "victim"])
        defer { victim.close() }
        let bystander = try pooler.connect(extra: ["application_name": "bystander"])
        defer { bystander.close() }
        #expect(try victim.exec("SELECT 1").scalar == "1")
        #expect(try bystander.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }

        let clients = try admin.exec("SHOW CLIENTS")
        let row = try #require(clients.row(where: ["application_name": "victim"]), "\(clients.columns) \(clients.rows)")
        let id = try #require(row["id"], "SHOW CLIENTS has no id column: \(clients.columns)")
        try admin.exec("KILL_CLIENT \(id)", timeout: 10)

        do {
            try victim.exec("SELECT 1", timeout: 5)
            Issue.record("the killed client still works\n\(pooler.diagnostics)")
        } catch {
            #expect(Self.text(error).contains("admin forced disconnect") || pooler.logText.contains("admin forced disconnect"),
                    "\(error)\n\(pooler.diagnostics)")
        }
        #expect(try bystander.exec("SELECT 2").scalar == "2")
        let after = try admin.exec("SHOW CLIENTS")
        #expect(after.row(where: ["application_name": "victim"]) == nil, "\(after.rows)")
        #expect(after.row(where: ["application_name": "bystander"]) != nil, "\(after.rows)")

        Self.expectError(admin, "KILL_CLIENT 999999", contains: "client not found", pooler: pooler)
    }

    @Test func disableRefusesNewLoginsUntilEnable() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let existing = try pooler.connect()
        defer { existing.close() }
        #expect(try existing.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }

        try admin.exec("DISABLE app_db", timeout: 10)
        do {
            let late = try pooler.connect(timeout: 10)
            late.close()
            Issue.record("a login to a disabled database succeeded\n\(pooler.diagnostics)")
        } catch {
            #expect(Self.text(error).contains("database \"app_db\" is disabled"), "\(error)")
        }
        let databases = try admin.exec("SHOW DATABASES").row(where: ["name": "app_db"])
        #expect(databases?["disabled"] == "1", "SHOW DATABASES: \(String(describing: databases))")
        // A client already in keeps working (PgBouncer only refuses new logins).
        #expect(try existing.exec("SELECT 3").scalar == "3")

        try admin.exec("ENABLE app_db", timeout: 10)
        let again = try pooler.connect(timeout: 10)
        defer { again.close() }
        #expect(try again.exec("SELECT 4").scalar == "4")
    }

    @Test func reconnectReplacesServersAfterTheirTransactionAndWaitCloseReturns() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let waiter = try pooler.admin()
        defer { waiter.close() }

        try client.exec("BEGIN")
        let first = try Self.backend(client)
        try admin.exec("RECONNECT app_db", timeout: 10)
        let waitClose = Background { try waiter.exec("WAIT_CLOSE app_db", timeout: 20) }
        #expect(try Self.backend(client) == first, "RECONNECT must not break an open transaction")
        #expect(!waitUntil(timeout: 0.5) { waitClose.isDone },
                "WAIT_CLOSE answered while the old server was still in use: \(String(describing: waitClose.wait(timeout: 0)))")
        try client.exec("COMMIT")
        switch waitClose.wait(timeout: 10) {
        case .none: Issue.record("WAIT_CLOSE did not return after the old server was released\n\(pooler.diagnostics)")
        case .failure(let error)?: Issue.record("WAIT_CLOSE failed: \(error)")
        case .success?: break
        }
        let second = try Self.backend(client)
        #expect(second != first, "the server in use at RECONNECT was reused after its transaction\n\(pooler.diagnostics)")

        // An idle server is replaced too.
        let idle = try waitUntil(timeout: 5) { try admin.poolCount("sv_idle") == 1 }
        #expect(idle, "\(String(describing: try? admin.poolRow()))")
        try admin.exec("RECONNECT", timeout: 10)
        try admin.exec("WAIT_CLOSE", timeout: 10)
        let third = try Self.backend(client)
        #expect(third != second, "the idle server was reused after RECONNECT\n\(pooler.diagnostics)")
    }

    @Test func setChangesReloadableSettingsOnly() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }

        try admin.exec("SET default_pool_size = 3", timeout: 10)
        let size = try admin.exec("SHOW CONFIG").row(where: ["key": "default_pool_size"])
        #expect(size?["value"] == "3", "\(String(describing: size))")
        try admin.exec("SET default_pool_size = '4'", timeout: 10)
        #expect(try admin.exec("SHOW CONFIG").row(where: ["key": "default_pool_size"])?["value"] == "4")

        Self.expectError(admin, "SET listen_port = 1", contains: "listen_port", pooler: pooler)
        let port = try admin.exec("SHOW CONFIG").row(where: ["key": "listen_port"])
        #expect(port?["value"] == String(pooler.port), "\(String(describing: port))")
        Self.expectError(admin, "SET nonsense = 1", contains: "nonsense", pooler: pooler)
        Self.expectError(admin, "SET default_pool_size = lots", contains: "", pooler: pooler)
        #expect(try admin.exec("SHOW CONFIG").row(where: ["key": "default_pool_size"])?["value"] == "4")
        #expect(try admin.exec("SHOW VERSION").rows.count == 1, "the admin connection keeps working")
    }

    @Test func selectPoolsAndTheOtherShowCommandsAnswer() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }

        let show = try admin.exec("SHOW POOLS")
        let select = try admin.exec("SELECT POOLS")
        #expect(select.columns == show.columns)
        #expect(select.row(where: ["database": "app_db", "user": "app"]) != nil, "\(select.rows)")

        for command in ["SHOW STATE", "SHOW FDS", "SHOW SOCKETS", "SHOW ACTIVE_SOCKETS", "SHOW MEM",
                        "SHOW DNS_HOSTS", "SHOW DNS_ZONES", "SHOW TOTALS", "SHOW STATS_TOTALS",
                        "SHOW STATS_AVERAGES"] {
            do {
                let result = try admin.exec(command, timeout: 10)
                #expect(!result.columns.isEmpty, "\(command) returned no columns")
            } catch {
                Issue.record("\(command): \(error)\n\(pooler.diagnostics)")
            }
        }
        let state = try admin.exec("SHOW STATE")
        #expect(state.row(where: ["key": "paused"])?["value"] == "no", "\(state.columns) \(state.rows)")
        try admin.exec("PAUSE", timeout: 10)
        #expect(try admin.exec("SHOW STATE").row(where: ["key": "paused"])?["value"] == "yes")
        try admin.exec("RESUME", timeout: 10)
        let sockets = try admin.exec("SHOW SOCKETS")
        #expect(sockets.rows.count >= 2, "client, admin and server sockets: \(sockets.rows)")
    }
}
