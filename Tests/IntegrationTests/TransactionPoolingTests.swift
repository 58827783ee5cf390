import Testing

/// Transaction pooling under load: many more clients than server connections.
@Suite struct TransactionPoolingTests {
    static let clients = 200
    static let transactionsPerClient = 50
    static let poolSize = 5

    /// 200 clients, all connected at once, run 50 transactions each through a
    /// pool of 5 server connections. Inside every transaction a client inserts
    /// a row tagged with its id and reads back its own rows: it must see all
    /// its earlier commits plus the uncommitted row, on the same backend as the
    /// INSERT, and nothing else. Even clients use the simple protocol, odd
    /// clients the extended one.
    @Test func twoHundredClientsShareFiveServerConnections() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = \(Self.poolSize)"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("txpool")
        let cluster = pooler.cluster
        let owner = try cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (client_id int NOT NULL, seq int NOT NULL, backend_pid int NOT NULL)")

        let barrier = Barrier(parties: Self.clients)
        let failures: [String?] = Threads.run(count: Self.clients) { client in
            let connection: PQConnection
            do {
                connection = try pooler.connect()
            } catch {
                barrier.arriveAndWait()
                return "client \(client): connect failed: \(error)"
            }
            defer { connection.close() }
            guard barrier.arriveAndWait(timeout: 90) else { return "client \(client): not all clients connected" }
            do {
                for seq in 0..<Self.transactionsPerClient {
                    if let problem = try Self.transaction(on: connection, table: table, client: client, seq: seq) {
                        return "client \(client), transaction \(seq): \(problem)"
                    }
                }
                return nil
            } catch {
                return "client \(client): \(error)"
            }
        }
        let failed = failures.compactMap { $0 }
        #expect(failed.isEmpty, "\(failed.count) clients failed, first: \(failed.prefix(3))\n\(pooler.diagnostics)")

        let total = try owner.exec("SELECT count(*) FROM \(table)").scalar
        #expect(total == String(Self.clients * Self.transactionsPerClient))
        let perClient = try owner.exec("""
            SELECT count(*), min(n), max(n) FROM (SELECT client_id, count(*) AS n FROM \(table) GROUP BY client_id) s
            """)
        #expect(perClient.rows.first == [String(Self.clients), String(Self.transactionsPerClient),
                                         String(Self.transactionsPerClient)])

        let admin = try pooler.admin()
        defer { admin.close() }
        let pools = try admin.exec("SHOW POOLS")
        let rows = pools.rowIndices(where: ["database": "app_db", "user": "app"])
        try #require(rows.count == 1, "SHOW POOLS has no app_db/app row: \(pools.rows)")
        let serverColumns = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        let servers = serverColumns.map { Int(pools.value(rows[0], $0) ?? "") ?? -1 }
        #expect(servers.allSatisfy { $0 >= 0 }, "missing server columns in \(pools.columns)")
        #expect(servers.reduce(0, +) <= Self.poolSize, "server connections \(zip(serverColumns, servers))")
        #expect(servers.reduce(0, +) >= 1)
    }

    /// One transaction; a description of what went wrong, or nil.
    private static func transaction(on connection: PQConnection, table: String, client: Int, seq: Int) throws -> String? {
        let extended = client % 2 == 1
        try connection.exec("BEGIN")
        let inserted: PQResult
        let check: PQResult
        if extended {
            inserted = try connection.execParams(
                "INSERT INTO \(table) VALUES ($1, $2, pg_backend_pid()) RETURNING backend_pid",
                [String(client), String(seq)])
            check = try connection.execParams(
                "SELECT count(*), max(seq), pg_backend_pid() FROM \(table) WHERE client_id = $1", [String(client)])
        } else {
            inserted = try connection.exec(
                "INSERT INTO \(table) VALUES (\(client), \(seq), pg_backend_pid()) RETURNING backend_pid")
            check = try connection.exec(
                "SELECT count(*), max(seq), pg_backend_pid() FROM \(table) WHERE client_id = \(client)")
        }
        try connection.exec("COMMIT")
        let backend = inserted.scalar
        let expected: [String?] = [String(seq + 1), String(seq), backend]
        if check.rows.first != expected {
            return "expected (count, max seq, backend) = \(expected), got \(check.rows)"
        }
        return nil
    }
}
