import Glibc
import Testing

/// A server whose state the pooler cannot vouch for is never handed to the
/// next client: a client that vanishes mid-transaction takes its transaction
/// with it, and in session mode server_reset_query cleans up after a client.
@Suite struct ServerStateResetTests {
    enum Departure: String, CaseIterable {
        /// PQfinish: Terminate, then close.
        case terminate
        /// Socket shut down without Terminate, as a client that died.
        case abort
    }

    @Test(arguments: Departure.allCases)
    func abandonedTransactionIsNotReused(departure: Departure) throws {
        let cluster = try PostgresCluster.shared()
        let database = try cluster.createDatabase(prefix: "leak")
        let pooler = try PoolerProcess(
            settings: ["pool_mode = transaction", "default_pool_size = 1"],
            databases: ["leakdb = host=127.0.0.1 port=\(cluster.port) dbname=\(database)"])
        defer { pooler.stop() }

        let first = try pooler.connect(database: "leakdb")
        try first.exec("BEGIN")
        try first.exec("CREATE TEMP TABLE t_leak(x int)")
        try first.exec("INSERT INTO t_leak VALUES (1), (2)")
        #expect(try first.exec("SELECT pg_current_xact_id_if_assigned() IS NOT NULL").scalar == "t")
        switch departure {
        case .terminate: first.close()
        case .abort: first.abort()
        }

        // With pool size 1 the second client needs the only server slot; it
        // must get a server that is not inside the first client's transaction.
        let second = try pooler.connect(database: "leakdb")
        defer { second.close() }
        #expect(try second.exec("SELECT count(*) FROM pg_class WHERE relname = 't_leak'", timeout: 10).scalar == "0",
                "the abandoned transaction's temp table is visible\n\(pooler.diagnostics)")
        #expect(try second.exec("SELECT pg_current_xact_id_if_assigned()").scalar == nil,
                "the second client runs inside a transaction it did not start")
        #expect(try second.exec("SELECT 1").scalar == "1")
        try second.exec("BEGIN")
        #expect(try second.exec("SELECT pg_current_xact_id_if_assigned()").scalar == nil)
        try second.exec("COMMIT")

        let admin = try pooler.admin()
        defer { admin.close() }
        let pools = try admin.exec("SHOW POOLS")
        let rows = pools.rowIndices(where: ["database": "leakdb", "user": "app"])
        try #require(rows.count == 1, "no leakdb/app row in SHOW POOLS: \(pools.rows)")
        let columns = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        let servers = columns.map { Int(pools.value(rows[0], $0) ?? "") ?? -1 }
        #expect(servers.allSatisfy { $0 >= 0 }, "columns \(pools.columns)")
        #expect(servers.reduce(0, +) <= 1, "\(zip(columns, servers))")

        // Postgres agrees: at most one backend for the database once the
        // abandoned one (if it was closed) has gone.
        let backends = "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)'"
        let settled = try waitUntil(timeout: 5) { Int(try cluster.superuserExec(backends).scalar ?? "") ?? 99 <= 1 }
        let remaining = (try? cluster.superuserExec(backends).scalar) ?? nil
        #expect(settled, "more than one server connection to \(database): \(String(describing: remaining))")
    }

    /// Session mode, one server: DISCARD ALL (the default server_reset_query)
    /// runs between clients, so settings, prepared statements, temp tables and
    /// advisory locks do not reach the next client.
    @Test func sessionStateIsDiscardedBetweenClients() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(
            settings: ["pool_mode = session", "default_pool_size = 1", "server_reset_query = DISCARD ALL"],
            databases: ["app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db"])
        defer { pooler.stop() }

        let first = try pooler.connect()
        let defaultPath = try first.exec("SHOW search_path").scalar
        try first.exec("SET search_path = foo")
        try first.exec("PREPARE p AS SELECT 1")
        try first.exec("CREATE TEMP TABLE t_session(x int)")
        try first.exec("SELECT pg_advisory_lock(4242)")
        #expect(try first.exec("SHOW search_path").scalar == "foo")
        #expect(try first.exec("EXECUTE p").scalar == "1")
        let firstBackend = try first.exec("SELECT pg_backend_pid()").scalar
        first.close()

        let second = try pooler.connect()
        defer { second.close() }
        #expect(try second.exec("SELECT pg_backend_pid()").scalar == firstBackend,
                "pool size 1 should hand the same server to the next client")
        #expect(try second.exec("SHOW search_path").scalar == defaultPath)
        #expect(defaultPath == "\"$user\", public")
        #expect(try second.exec("SELECT count(*) FROM pg_prepared_statements WHERE name = 'p'").scalar == "0")
        let execute = #expect(throws: PQError.self) { try second.exec("EXECUTE p") }
        #expect(execute?.sqlstate == "26000", "\(String(describing: execute))")
        #expect(try second.exec("SELECT count(*) FROM pg_class WHERE relname = 't_session'").scalar == "0")
        #expect(try second.exec("""
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
            """).scalar == "0")
    }
}
