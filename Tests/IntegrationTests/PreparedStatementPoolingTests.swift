import Foundation
import Testing

/// Protocol-level named prepared statements in transaction mode: the pooler
/// maps each client's names onto per-server statements and prepares them on
/// whichever server the client's next transaction lands.
@Suite struct PreparedStatementPoolingTests {
    /// pgbench -M prepared with 200 clients on 5 servers: no failures, no
    /// "prepared statement ... does not exist/already exists" errors, and the
    /// admin console counted parses and binds and shows cached statements.
    @Test func pgbenchPreparedWithTwoHundredClientsOnFiveServers() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 5"])
        defer { pooler.stop() }
        let cluster = pooler.cluster
        let database = try cluster.createDatabase(prefix: "psbench")
        let initialise = try ClientTools.pgbench(
            ["-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", "app", database],
            password: "app")
        try #require(initialise.status == 0, "pgbench -i failed: \(initialise)")

        // The default TPC-B script: pgbench prepares each statement lazily with a
        // blocking PQprepare, so a thread blocked preparing for an idle client
        // would deadlock the pool if that prepare needed a server while the same
        // thread's other clients hold all servers mid-transaction. The pooler
        // answers such a prepare itself.
        let run = try ClientTools.pgbench(
            ["-n", "-M", "prepared", "-c", "200", "-j", "2", "-T", "5",
             "-h", "127.0.0.1", "-p", String(pooler.port), "-U", "app", database],
            password: "app", timeout: 90)
        let report = PgbenchReport(output: run.stdout)
        #expect(run.status == 0, "pgbench -M prepared failed: \(run)\n\(pooler.diagnostics)")
        #expect(report.failed ?? 0 == 0, "failed transactions: \(run.stdout)")
        let processed = try #require(report.processed, "no transaction count in \(run)")
        #expect(processed >= 200, "\(run)")
        let everything = run.stdout + run.stderr
        #expect(!everything.contains("prepared statement"), "pgbench saw prepared-statement errors: \(run)")
        #expect(!everything.lowercased().contains("error"), "pgbench reported errors: \(run)")

        let admin = try pooler.admin()
        defer { admin.close() }
        let stats = try admin.exec("SHOW STATS")
        let statRows = stats.rowIndices(where: ["database": database])
        try #require(statRows.count == 1, "SHOW STATS has no \(database) row: \(stats.rows)")
        let clientParses = Int(stats.value(statRows[0], "total_client_parse_count") ?? "") ?? -1
        let serverParses = Int(stats.value(statRows[0], "total_server_parse_count") ?? "") ?? -1
        let binds = Int(stats.value(statRows[0], "total_bind_count") ?? "") ?? -1
        let transactions = Int(stats.value(statRows[0], "total_xact_count") ?? "") ?? -1
        #expect(clientParses >= 200, "total_client_parse_count \(clientParses)")
        #expect(binds >= processed, "total_bind_count \(binds) < \(processed) transactions")
        #expect(serverParses >= 1, "total_server_parse_count \(serverParses)")
        // One statement on each of 5 servers would do; a server re-parse
        // per client parse would mean the cache is not shared.
        #expect(serverParses <= clientParses, "server parses \(serverParses) > client parses \(clientParses)")
        #expect(transactions >= processed, "total_xact_count \(transactions) < \(processed)")

        let servers = try admin.exec("SHOW SERVERS")
        let serverRows = servers.rowIndices(where: ["database": database, "user": "app"])
        try #require(!serverRows.isEmpty, "SHOW SERVERS lists no server for \(database): \(servers.rows)")
        try #require(servers.columnIndex("prepared_statements") != nil, "no prepared_statements in \(servers.columns)")
        let cached = serverRows.map { Int(servers.value($0, "prepared_statements") ?? "") ?? -1 }
        #expect(serverRows.count <= 5, "\(serverRows.count) servers for a pool of 5")
        #expect(cached.allSatisfy { $0 >= 1 && $0 <= 200 }, "prepared_statements per server: \(cached)")
    }

    /// 50 clients on 3 servers each prepare "s1", "s2", "s3" with their own
    /// queries and run them in 20 transactions: every result is the client's
    /// own, and PQdescribePrepared reports the client's parameter count.
    /// The server's statement cache is full (max_prepared_statements = 2), so preparing
    /// a third statement closes the least recently used one first; an error earlier in
    /// the same pipeline makes PostgreSQL skip that Close. The statement is then still
    /// on the server although the pooler counted it gone: using it again must not fail
    /// with "already exists".
    @Test func evictionSkippedByAnErrorLeavesNoGhostStatement() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "max_prepared_statements = 2"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.prepare("s1", "SELECT 1")
        try client.prepare("s2", "SELECT 2")
        #expect(try client.execPrepared("s1", []).scalar == "1")
        #expect(try client.execPrepared("s2", []).scalar == "2")
        let items = try client.pipeline([.query("SELECT 1/0", []), .prepare("s3", "SELECT 3"), .sync])
        #expect(items.first.map { if case .error(let code, _) = $0 { code == "22012" } else { false } } == true,
                "\(items)")
        for _ in 0..<2 {
            do {
                #expect(try client.execPrepared("s1", [], timeout: 10).scalar == "1")
                #expect(try client.execPrepared("s2", [], timeout: 10).scalar == "2")
            } catch {
                Issue.record("a statement used after a skipped eviction failed: \(error)\n\(pooler.diagnostics)")
            }
        }
        try client.prepare("s3", "SELECT 3")
        #expect(try client.execPrepared("s3", [], timeout: 10).scalar == "3")
    }

    /// A pipeline whose error makes PostgreSQL skip the pooler's hidden Parse (the
    /// server lacks a statement the client binds), then re-prepares that name with
    /// other text: the server accepts it where the pooler expected "already exists",
    /// and would hold the new text under the statement other clients use. That client
    /// is failed and the server closed; another client's statement stays right.
    @Test func reprepareAcceptedAfterSkippedParseDoesNotLeakToOthers() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let first = try pooler.connect()
        defer { first.close() }
        try first.prepare("s", "SELECT 1")
        #expect(try first.execPrepared("s", []).scalar == "1")
        try admin.exec("RECONNECT") // the next server lacks the statement
        // The first client's own outcome is an error either way (its Parse of an existing
        // name, or the failure the pooler reports): what matters is the other client.
        _ = try? first.pipeline([.query("SELEC 1", []), .executePrepared("s", []), .sync,
                                 .prepare("s", "SELECT 2"), .sync], timeout: 10)
        let other = try pooler.connect()
        defer { other.close() }
        try other.prepare("t", "SELECT 1")
        #expect(try other.execPrepared("t", [], timeout: 10).scalar == "1",
                "another client's statement ran the text of a failed re-prepare\n\(pooler.diagnostics)")
    }

    /// A client that asks for answers the pooler gives without a server (re-preparing a
    /// name it has: Parse + Sync, answered 42P05 and ReadyForQuery) and never reads them:
    /// what the pooler holds toward it stays bounded instead of growing with the flood
    /// (each answer is about 4 bytes per byte read).
    @Test func unreadAnswersOfThePoolersOwnStayBounded() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust", "max_prepared_statements = 100"])
        defer { pooler.stop() }
        let client = try RawSocket(port: pooler.port)
        defer { client.close() }
        client.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var ready = false
        while !ready, let message = client.readMessage(timeout: 10) { ready = message.typeCharacter == "Z" }
        try #require(ready, "the raw client did not log in\n\(pooler.diagnostics)")
        let prepare = FrontendPacket.message("P", Array("s".utf8) + [0] + Array("SELECT 1".utf8) + [0, 0, 0])
            + FrontendPacket.message("S", [])
        client.send(prepare)
        var prepared = false
        while !prepared, let message = client.readMessage(timeout: 10) { prepared = message.typeCharacter == "Z" }
        try #require(prepared, "\(pooler.diagnostics)")
        let megabyte = Array(repeating: prepare, count: 1_048_576 / prepare.count).flatMap { $0 }
        let flood = Array(repeating: megabyte, count: 24).flatMap { $0 }
        _ = client.sendUntilStalled(flood, stall: 2)
        // What the pooler holds toward the client (SHOW SOCKETS send_avail): bounded by
        // the backpressure limit plus one read's answers, not growing with the flood.
        let admin = try pooler.admin()
        defer { admin.close() }
        let sockets = try admin.exec("SHOW SOCKETS")
        let buffered = sockets.rowIndices(where: ["user": "md5app"]).compactMap { Int(sockets.value($0, "send_avail") ?? "") }.max() ?? -1
        #expect(buffered >= 0 && buffered < 1_048_576,
                "the pooler holds \(buffered) bytes of answers nobody reads\n\(pooler.diagnostics)")
        let other = try pooler.connect(user: "md5app")
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
    }

    @Test func sameNamesDifferentQueriesFromFiftyClients() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 3"])
        defer { pooler.stop() }
        let clients = 50
        let barrier = Barrier(parties: clients)
        let failures: [String?] = Threads.run(count: clients) { id in
            let connection: PQConnection
            do {
                connection = try pooler.connect()
            } catch {
                barrier.arriveAndWait()
                return "client \(id): connect: \(error)"
            }
            defer { connection.close() }
            guard barrier.arriveAndWait(timeout: 60) else { return "client \(id): not all clients connected" }
            do {
                // Different statement shapes per client, so a mix-up shows as a
                // wrong column count or parameter count, not only a wrong value.
                try connection.prepare("s1", "SELECT $1::int + \(id)")
                try connection.prepare("s2", "SELECT $1::text || '-\(id)', $2::int * \(id)")
                try connection.prepare("s3", id % 2 == 0 ? "SELECT \(id) AS id" : "SELECT $1::int, $2::int, $3::int, \(id)")
                let described = try connection.describePrepared("s3")
                let expected = id % 2 == 0 ? (0, 1) : (3, 4)
                guard described == expected else {
                    return "client \(id): describe s3 = \(described), expected \(expected)"
                }
                let s2 = try connection.describePrepared("s2")
                guard s2 == (2, 2) else { return "client \(id): describe s2 = \(s2)" }
                for round in 0..<20 {
                    let inTransaction = round % 4 != 3
                    if inTransaction { try connection.exec("BEGIN") }
                    let one = try connection.execPrepared("s1", [String(round)]).scalar
                    guard one == String(round + id) else {
                        return "client \(id) round \(round): s1 gave \(one ?? "NULL"), expected \(round + id)"
                    }
                    let two = try connection.execPrepared("s2", ["r\(round)", String(round)]).rows
                    guard two == [["r\(round)-\(id)", String(round * id)]] else {
                        return "client \(id) round \(round): s2 gave \(two)"
                    }
                    let three = try connection.execPrepared("s3", id % 2 == 0 ? [] : ["1", "2", String(round)]).rows
                    let wanted: [[String?]] = id % 2 == 0 ? [[String(id)]] : [["1", "2", String(round), String(id)]]
                    guard three == wanted else { return "client \(id) round \(round): s3 gave \(three)" }
                    if inTransaction { try connection.exec("COMMIT") }
                }
                // The names are still the client's after all that.
                let again = try connection.describePrepared("s1")
                guard again == (1, 1) else { return "client \(id): describe s1 at the end = \(again)" }
                return nil
            } catch {
                return "client \(id): \(error)"
            }
        }
        let failed = failures.compactMap { $0 }
        #expect(failed.isEmpty, "\(failed.count) clients failed, first: \(failed.prefix(3))\n\(pooler.diagnostics)")

        let admin = try pooler.admin()
        defer { admin.close() }
        let pools = try admin.exec("SHOW POOLS")
        let row = try #require(pools.rowIndices(where: ["database": "app_db", "user": "app"]).first)
        let servers = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
            .map { Int(pools.value(row, $0) ?? "") ?? 0 }.reduce(0, +)
        #expect(servers <= 3, "\(servers) servers for a pool of 3")
    }

    /// Preparing a name the client already has must not silently replace the
    /// statement: Postgres answers 42P05 (and the old statement stays);
    /// PgBouncer closes the client ("prepared statement name is already in
    /// use"). Either is accepted. A name the client never prepared fails with
    /// 26000 (or, PgBouncer's way, a closed connection) even when another
    /// client on the same server has that name.
    @Test func duplicateAndUnknownNamesAreNotSilentlyAccepted() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let owner = try pooler.connect()
        defer { owner.close() }
        let stranger = try pooler.connect()
        defer { stranger.close() }
        try owner.prepare("mine", "SELECT 'owner'")
        #expect(try owner.execPrepared("mine", []).scalar == "owner")

        var unknown: PQError?
        do { try stranger.execPrepared("mine", []) } catch let error as PQError { unknown = error }
        #expect(unknown?.sqlstate == "26000" || (unknown != nil && !stranger.statusIsOK),
                "another client's name: \(String(describing: unknown))\n\(pooler.diagnostics)")

        var duplicate: PQError?
        do { try owner.prepare("mine", "SELECT 'again'") } catch let error as PQError { duplicate = error }
        if owner.statusIsOK {
            #expect(duplicate?.sqlstate == "42P05", """
                re-prepare of an existing name succeeded silently (\(String(describing: duplicate))); \
                the statement now answers \((try? owner.execPrepared("mine", []).scalar) ?? "error")
                """)
            #expect(try owner.execPrepared("mine", []).scalar == "owner", "the first statement must survive")
        } else {
            #expect(duplicate != nil)
        }
        let later = try pooler.connect()
        defer { later.close() }
        #expect(try later.exec("SELECT 1").scalar == "1")
    }

    /// A protocol Close of "s1" followed by a Parse of "s1" with another query
    /// (what PQclosePrepared in libpq 17 sends) gives the new query's result,
    /// while another client's "s1" with the old text keeps working on the
    /// same server.
    @Test func closeThenReprepareSameNameGivesNewQuery() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust", "default_pool_size = 1"])
        defer { pooler.stop() }
        let neighbour = try pooler.connect(user: "md5app")
        defer { neighbour.close() }
        try neighbour.prepare("s1", "SELECT 'old'::text")
        #expect(try neighbour.execPrepared("s1", []).scalar == "old")

        let raw = try RawClient(port: pooler.port)
        defer { raw.close() }
        raw.send(FrontendPacket.parse("s1", "SELECT 'old'::text"), FrontendPacket.bind(statement: "s1", []),
                 FrontendPacket.execute(), FrontendPacket.sync)
        let first = raw.readUntilReady()
        #expect(first.map(\.typeCharacter) == ["1", "2", "D", "C", "Z"], "\(first)\n\(pooler.diagnostics)")
        #expect(first.first { $0.typeCharacter == "D" }?.dataRowValues == ["old"])

        raw.send(FrontendPacket.close("S", "s1"), FrontendPacket.sync)
        let closed = raw.readUntilReady()
        #expect(closed.map(\.typeCharacter) == ["3", "Z"], "Close: \(closed)\n\(pooler.diagnostics)")

        raw.send(FrontendPacket.parse("s1", "SELECT 'new'::text, $1::int"), FrontendPacket.describe("S", "s1"),
                 FrontendPacket.bind(statement: "s1", ["7"]), FrontendPacket.execute(), FrontendPacket.sync)
        let second = raw.readUntilReady()
        #expect(second.map(\.typeCharacter) == ["1", "t", "T", "2", "D", "C", "Z"], "\(second)\n\(pooler.diagnostics)")
        #expect(second.first { $0.typeCharacter == "t" }?.parameterCount == 1, "\(second)")
        #expect(second.first { $0.typeCharacter == "D" }?.dataRowValues == ["new", "7"], "\(second)")

        // Both clients alternate on the single server.
        for round in 0..<3 {
            #expect(try neighbour.execPrepared("s1", []).scalar == "old", "round \(round)")
            raw.send(FrontendPacket.bind(statement: "s1", [String(round)]), FrontendPacket.execute(), FrontendPacket.sync)
            let reply = raw.readUntilReady()
            #expect(reply.first { $0.typeCharacter == "D" }?.dataRowValues == ["new", String(round)],
                    "round \(round): \(reply)\n\(pooler.diagnostics)")
        }

        // Executing a closed name fails with 26000, as on Postgres.
        raw.send(FrontendPacket.close("S", "s1"), FrontendPacket.sync)
        _ = raw.readUntilReady()
        raw.send(FrontendPacket.bind(statement: "s1", ["1"]), FrontendPacket.execute(), FrontendPacket.sync)
        let gone = raw.readUntilReady()
        let error = gone.first { $0.typeCharacter == "E" }
        #expect(error?.fields["C"] == "26000", "Bind of a closed statement: \(gone)")
        #expect(gone.last?.typeCharacter == "Z")
        #expect(try neighbour.execPrepared("s1", []).scalar == "old")
    }

    /// `DISCARD ALL` sent as SQL drops the client's prepared statements like on
    /// a direct connection (the next PQexecPrepared gets 26000), and must not
    /// break another client whose statement lived on the same server.
    @Test func discardAllForgetsTheClientsStatements() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }

        func discardThenExecute(_ connection: PQConnection) throws -> PQError? {
            try connection.prepare("d1", "SELECT 41 + $1::int")
            guard try connection.execPrepared("d1", ["1"]).scalar == "42" else {
                return PQError(message: "d1 gave a wrong answer before DISCARD", sqlstate: nil, fullMessage: "")
            }
            try connection.exec("DISCARD ALL")
            do {
                try connection.execPrepared("d1", ["1"])
                return nil
            } catch let error as PQError {
                return error
            }
        }

        let direct = try pooler.cluster.directConnection()
        defer { direct.close() }
        let directError = try discardThenExecute(direct)
        #expect(directError?.sqlstate == "26000", "direct: \(String(describing: directError))")

        let bystander = try pooler.connect()
        defer { bystander.close() }
        try bystander.prepare("b1", "SELECT 'bystander'")
        #expect(try bystander.execPrepared("b1", []).scalar == "bystander")

        let client = try pooler.connect()
        defer { client.close() }
        let pooledError = try discardThenExecute(client)
        #expect(pooledError?.sqlstate == directError?.sqlstate,
                "through the pooler: \(String(describing: pooledError))\n\(pooler.diagnostics)")
        #expect(try client.exec("SELECT 1").scalar == "1")
        // The name is free again.
        try client.prepare("d1", "SELECT 'reborn'")
        #expect(try client.execPrepared("d1", []).scalar == "reborn")

        // The bystander's statement was on the server DISCARD ALL cleared.
        do {
            #expect(try bystander.execPrepared("b1", []).scalar == "bystander")
        } catch {
            Issue.record("bystander after another client's DISCARD ALL: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// max_prepared_statements = 2: a server holding two of the client's statements
    /// closes the least recently used one (a hidden Close) to make room for a third, and
    /// prepares it again when it is used again; every execution gives its own result.
    @Test func serverCacheEvictsAndReprepares() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "max_prepared_statements = 2"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        for n in 1...3 { try client.prepare("s\(n)", "SELECT \(n) * $1::int") }
        for round in 1...3 {
            for n in [1, 2, 3, 1, 3, 2] {
                let value = try client.execPrepared("s\(n)", [String(round)]).scalar
                #expect(value == String(n * round), "s\(n) round \(round): \(String(describing: value))\n\(pooler.diagnostics)")
            }
        }
        // The only server never holds more than two of them.
        let held = try client.exec("SELECT count(*) FROM pg_prepared_statements").scalar
        #expect(held == "2", "pg_prepared_statements on the server: \(String(describing: held))")
        let admin = try pooler.admin()
        defer { admin.close() }
        let servers = try admin.exec("SHOW SERVERS")
        let rows = servers.rowIndices(where: ["database": "app_db", "user": "app"])
        #expect(rows.map { servers.value($0, "prepared_statements") } == ["2"], "\(servers.rows)")
    }
}
