import Glibc
import Testing

/// PgBouncer 1.23+ signals: SIGTERM = SHUTDOWN WAIT_FOR_CLIENTS, SIGINT =
/// SHUTDOWN WAIT_FOR_SERVERS, a second SIGINT exits at once. Both graceful
/// modes close the listener first.
@Suite struct ShutdownSignalTests {
    /// A table in app_db that app may write.
    private static func makeTable(_ cluster: PostgresCluster, prefix: String) throws -> String {
        let table = TestEnvironment.uniqueName(prefix)
        let owner = try cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int)")
        return table
    }

    private static func count(_ cluster: PostgresCluster, _ table: String) throws -> String? {
        let owner = try cluster.directConnection()
        defer { owner.close() }
        return try owner.exec("SELECT count(*) FROM \(table)").scalar
    }

    @Test func sigtermWaitsForClientsToLeave() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let table = try Self.makeTable(pooler.cluster, prefix: "sigterm")

        let busy = try pooler.connect()
        defer { busy.close() }
        let idle = try pooler.connect()
        defer { idle.close() }
        try busy.exec("BEGIN")
        try busy.exec("INSERT INTO \(table) VALUES (1)")

        #expect(pooler.send(signal: SIGTERM))
        let closed = waitUntil(timeout: 5) { !FreePort.isListening(port: pooler.port) }
        #expect(closed, "the listener should close on SIGTERM\n\(pooler.diagnostics)")
        #expect(pooler.isRunning, "the pooler must wait for its clients\n\(pooler.diagnostics)")
        #expect(throws: PQError.self, "a new client must not get in during shutdown") {
            let late = try pooler.connect(timeout: 5)
            late.close()
        }

        // The client in a transaction finishes it and goes on querying.
        for sql in ["INSERT INTO \(table) VALUES (2)", "COMMIT", "SELECT 1",
                    "BEGIN", "INSERT INTO \(table) VALUES (3)", "COMMIT"] {
            do {
                try busy.exec(sql, timeout: 10)
            } catch {
                Issue.record("after SIGTERM, `\(sql)` from the client in a transaction failed: \(error)\n\(pooler.diagnostics)")
                return
            }
        }
        busy.close()

        // One client is still connected, so the pooler still serves it.
        for _ in 0..<3 {
            try idle.exec("BEGIN", timeout: 10)
            #expect(try idle.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "3")
            try idle.exec("COMMIT", timeout: 10)
        }
        #expect(pooler.isRunning)
        idle.close()

        let status = pooler.waitForExit(timeout: 5)
        #expect(status == 0, "the pooler should exit (0) once the last client left\n\(pooler.diagnostics)")
        if let pidfile = pooler.pidfilePath {
            #expect(access(pidfile, F_OK) != 0, "pidfile \(pidfile) left behind")
        }
        #expect(try Self.count(pooler.cluster, table) == "3")
    }

    @Test func sigintWaitsForTransactionsThenExits() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let table = try Self.makeTable(pooler.cluster, prefix: "sigint")

        let busy = try pooler.connect()
        defer { busy.close() }
        let idle = try pooler.connect()
        defer { idle.close() }
        #expect(try idle.exec("SELECT 1").scalar == "1")
        try busy.exec("BEGIN")
        try busy.exec("INSERT INTO \(table) VALUES (1)")

        #expect(pooler.send(signal: SIGINT))
        let closed = waitUntil(timeout: 5) { !FreePort.isListening(port: pooler.port) }
        #expect(closed, "the listener should close on SIGINT\n\(pooler.diagnostics)")
        #expect(pooler.isRunning, "the pooler must wait for the open transaction\n\(pooler.diagnostics)")

        try busy.exec("INSERT INTO \(table) VALUES (2)", timeout: 10)
        try busy.exec("COMMIT", timeout: 10)

        // Once no server is in use the pooler exits, idle client or not.
        let status = pooler.waitForExit(timeout: 5)
        #expect(status != nil, "the pooler should exit once the transaction ended\n\(pooler.diagnostics)")
        if let status { #expect(status == 0, "exit status after a graceful shutdown") }
        #expect(try Self.count(pooler.cluster, table) == "2", "the COMMIT must have reached the server")
        #expect(throws: PQError.self, "the pooler is gone") { try busy.exec("SELECT 1", timeout: 5) }
        #expect(throws: PQError.self, "the pooler is gone") { try idle.exec("SELECT 1", timeout: 5) }
    }

    /// As PgBouncer: SIGTERM or SIGINT while suspended ends the pooler at once (its
    /// clients are not read, so waiting for them or their transactions could last
    /// forever).
    @Test(arguments: [SIGTERM, SIGINT])
    func shutdownSignalWhileSuspendedExitsAtOnce(signal: Int32) throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let busy = try pooler.connect()
        defer { busy.close() }
        try busy.exec("BEGIN")
        try busy.exec("SELECT 1")
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("SUSPEND", timeout: 10)

        #expect(pooler.send(signal: signal))
        let status = pooler.waitForExit(timeout: 5)
        #expect(status != nil, "signal \(signal) while suspended should end the pooler at once\n\(pooler.diagnostics)")
        if let status { #expect(status == 1, "exit status after going down while suspended, as PgBouncer's die()") }
        #expect(pooler.logText.contains("suspend was in progress, going down immediately"), "\(pooler.diagnostics)")
    }

    @Test func secondSigintExitsAtOnce() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let table = try Self.makeTable(pooler.cluster, prefix: "sigint2")

        let busy = try pooler.connect()
        defer { busy.close() }
        try busy.exec("BEGIN")
        try busy.exec("INSERT INTO \(table) VALUES (1)")

        #expect(pooler.send(signal: SIGINT))
        let closed = waitUntil(timeout: 5) { !FreePort.isListening(port: pooler.port) }
        #expect(closed, "the listener should close on SIGINT\n\(pooler.diagnostics)")
        #expect(pooler.isRunning, "the pooler must wait for the open transaction\n\(pooler.diagnostics)")

        #expect(pooler.send(signal: SIGINT))
        let status = pooler.waitForExit(timeout: 3)
        #expect(status != nil, "a second SIGINT should end the pooler at once\n\(pooler.diagnostics)")
        #expect(throws: PQError.self, "the pooler is gone") { try busy.exec("COMMIT", timeout: 5) }
        #expect(try Self.count(pooler.cluster, table) == "0", "the open transaction must not have committed")
    }
}
