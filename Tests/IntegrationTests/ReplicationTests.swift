import Foundation
import Testing

/// Replication connections (`replication=database|true`) pass through as PgBouncer 1.21+
/// does: each client gets a server of its own, opened with its startup parameters, never
/// reused, counted in the pool.
@Suite struct ReplicationTests {
    @Test func logicalReplicationConnectionRunsReplicationCommands() throws {
        let pooler = try PoolerProcess(settings: ["log_connections = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let client = try pooler.connect(user: "postgres", extra: ["replication": "database", "application_name": "walclient"])
        let identify = try client.exec("IDENTIFY_SYSTEM", timeout: 10)
        #expect(identify.value(0, "dbname") == "app_db", "\(identify)\n\(pooler.diagnostics)")
        #expect(identify.value(0, "systemid")?.isEmpty == false)
        // The server really is a walsender with our application_name.
        let backends = try PostgresCluster.shared().superuserExec(
            "SELECT backend_type FROM pg_stat_activity WHERE application_name = 'walclient'")
        #expect(backends.rows.map { $0[0] } == ["walsender"], "\(backends)")

        let clients = try admin.exec("SHOW CLIENTS")
        #expect(clients.rowIndices(where: ["user": "postgres", "database": "app_db", "replication": "logical"]).count == 1,
                "\(clients)")
        let servers = try admin.exec("SHOW SERVERS")
        let replicationServers = servers.rowIndices(where: ["replication": "logical"])
        #expect(replicationServers.count == 1, "\(servers)")
        #expect(pooler.logText.contains("login attempt: db=app_db user=postgres tls=no replication=database"))

        // The pair ends together: the server is never handed to anyone else.
        client.close()
        let gone = try waitUntil(timeout: 5) {
            try admin.exec("SHOW SERVERS").rowIndices(where: ["replication": "logical"]).isEmpty
        }
        #expect(gone, "\(String(describing: try? admin.exec("SHOW SERVERS")))")
        let walsenders = try waitUntil(timeout: 5) {
            try PostgresCluster.shared().superuserExec(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'walclient'").scalar == "0"
        }
        #expect(walsenders, "the walsender should end with its client")

        // Ordinary clients of the same pool are unaffected.
        let plain = try pooler.connect(user: "postgres")
        defer { plain.close() }
        #expect(try plain.exec("SELECT 1").scalar == "1")
    }

    /// pg_basebackup through the pooler: two physical replication connections (BASE_BACKUP
    /// and the WAL stream), COPY data both ways, in a transaction-mode pool.
    @Test func pgBasebackupThroughThePooler() throws {
        let pooler = try PoolerProcess(settings: ["log_connections = 1"])
        defer { pooler.stop() }
        let target = NSTemporaryDirectory() + TestEnvironment.uniqueName("basebackup")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let run = try ClientTools.run("pg_basebackup", [
            "-h", "127.0.0.1", "-p", String(pooler.port), "-U", "postgres", "-D", target,
            "-X", "stream", "-c", "fast", "--no-sync", "-w",
        ], password: PostgresCluster.passwords["postgres"], timeout: 120)
        #expect(run.status == 0, "pg_basebackup failed: \(run)\n\(pooler.diagnostics)")
        #expect(FileManager.default.fileExists(atPath: target + "/PG_VERSION"))
        #expect(FileManager.default.fileExists(atPath: target + "/global/pg_control"))
        #expect(pooler.logText.contains("user=postgres tls=no replication=yes"), "\(pooler.diagnostics)")
        let admin = try pooler.admin()
        defer { admin.close() }
        let left = try waitUntil(timeout: 5) {
            try admin.exec("SHOW SERVERS").rowIndices(where: ["replication": "physical"]).isEmpty
        }
        #expect(left, "replication servers close with their clients")
    }

    @Test func invalidReplicationValueIsRefused() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        do {
            let connection = try pooler.connect(user: "postgres", extra: ["replication": "sometimes"])
            connection.close()
            Issue.record("a bad replication value was accepted")
        } catch let error as PQError {
            #expect(error.sqlstate == "22023", "\(error)")
            #expect(error.message.contains("invalid value for parameter \"replication\""), "\(error)")
        }
        // The pooler carries on.
        let plain = try pooler.connect()
        defer { plain.close() }
        #expect(try plain.exec("SELECT 1").scalar == "1")
    }

    /// A replication client counts in pool_size; an idle server makes room for it.
    @Test func replicationServerTakesAnIdleServersPlace() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let plain = try pooler.connect(user: "postgres")
        defer { plain.close() }
        #expect(try plain.exec("SELECT 1").scalar == "1")
        #expect(try admin.poolCount("sv_idle", user: "postgres") == 1)
        let walClient = try pooler.connect(user: "postgres", extra: ["replication": "database"])
        defer { walClient.close() }
        #expect(try walClient.exec("IDENTIFY_SYSTEM", timeout: 10).value(0, "dbname") == "app_db", "\(pooler.diagnostics)")
        let servers = try admin.exec("SHOW SERVERS").rowIndices(where: ["user": "postgres", "database": "app_db"])
        #expect(servers.count == 1, "pool_size = 1 holds: the idle server was evicted")
    }
}
