import Foundation
import Testing

/// A backend that dies under a client in the middle of a transaction.
@Suite struct ServerDeathTests {
    @Test func terminatedBackendMidTransactionFailsOnlyThatClient() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let victim = try pooler.connect()
        defer { victim.close() }
        try victim.exec("BEGIN")
        let backend = try #require(try victim.exec("SELECT pg_backend_pid()").scalar)
        #expect(victim.transactionStatus == "T")
        victim.setVerboseErrors()

        let superuser = try pooler.cluster.superuserConnection(database: "app_db")
        defer { superuser.close() }
        #expect(try superuser.exec("SELECT pg_terminate_backend(\(backend))").scalar == "t")
        let gone = waitUntil(timeout: 10) {
            (try? superuser.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = \(backend)").scalar) == "0"
        }
        #expect(gone, "backend \(backend) still alive")

        var failure: PQError?
        do {
            try victim.exec("SELECT 'after terminate'", timeout: 10)
        } catch let error as PQError {
            // A FATAL that reached libpq before the query counts as a
            // connection failure: take the SQLSTATE from the verbose text.
            failure = error.sqlstate == nil ? PQError.fromConnectionMessage(error.fullMessage) : error
        }
        let state = failure?.sqlstate ?? ""
        #expect(state.hasPrefix("08") || state == "57P01",
                "the victim's next query should fail with 08xxx or 57P01: \(String(describing: failure))\n\(pooler.diagnostics)")
        // The connection is over: another query cannot succeed.
        var again: Error?
        do { try victim.exec("SELECT 1", timeout: 10) } catch { again = error }
        #expect(again != nil, "the victim's connection should be closed")
        #expect(!victim.statusIsOK)

        // The pool replaces the dead server.
        let fresh = try pooler.connect()
        defer { fresh.close() }
        var freshPID: String?
        do {
            try fresh.exec("BEGIN", timeout: 10)
            freshPID = try fresh.exec("SELECT pg_backend_pid()", timeout: 10).scalar
            try fresh.exec("COMMIT", timeout: 10)
        } catch {
            Issue.record("a new client after the backend died: \(error)\n\(pooler.diagnostics)")
        }
        #expect(freshPID != nil && freshPID != backend)

        let admin = try pooler.admin()
        defer { admin.close() }
        var last = ""
        let recovered = waitUntil(timeout: 10) {
            guard let pools = try? admin.exec("SHOW POOLS"),
                  let row = pools.rowIndices(where: ["database": "app_db", "user": "app"]).first else { return false }
            func value(_ column: String) -> Int { Int(pools.value(row, column) ?? "") ?? -1 }
            last = pools.columns.indices.map { "\(pools.columns[$0])=\(pools.rows[row][$0] ?? "")" }.joined(separator: " ")
            let servers = value("sv_active") + value("sv_idle") + value("sv_used") + value("sv_tested") + value("sv_login")
            return value("cl_waiting") == 0 && value("sv_active") == 0 && servers == 1
                && value("sv_idle") + value("sv_used") == 1
        }
        #expect(recovered, "SHOW POOLS did not settle on one healthy idle server: \(last)\n\(pooler.diagnostics)")
        let servers = try admin.exec("SHOW SERVERS")
        let pids = servers.rowIndices(where: ["database": "app_db"]).compactMap { servers.value($0, "remote_pid") }
        #expect(!pids.contains(backend), "SHOW SERVERS still lists the dead backend \(backend): \(pids)")

        // And a burst of clients works on the replacement.
        let results = Threads.run(count: 5) { index -> String? in
            do {
                let client = try pooler.connect()
                defer { client.close() }
                return try client.execParams("SELECT $1::int * 2", [String(index)]).scalar
            } catch {
                return "\(error)"
            }
        }
        #expect(results == (0..<5).map { String($0 * 2) }, "\(results)")
    }
}
