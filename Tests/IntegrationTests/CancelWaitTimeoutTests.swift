import Testing

/// `cancel_wait_timeout`: a cancel request the pooler forwards to a server that
/// takes it but never answers (a real postmaster closes the cancel connection once
/// it has signalled the backend) is dropped after cancel_wait_timeout, and the
/// pooler stays healthy. The server is FakePostgresServer.
@Suite struct CancelWaitTimeoutTests {
    @Test func cancelToAServerThatNeverAnswersIsDroppedAfterCancelWaitTimeout() throws {
        let fake = try FakePostgresServer()
        defer { fake.stop() }
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(
            settings: ["cancel_wait_timeout = 2", "server_tls_sslmode = disable"],
            databases: [
                "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
                "fake = host=127.0.0.1 port=\(fake.port) dbname=fake",
            ])
        defer { pooler.stop() }
        func context() -> String { "\(pooler.diagnostics)\n--- fake server ---\n\(fake.log.joined(separator: "\n"))" }

        let client = try pooler.connect(database: "fake")
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1", "\(context())")

        // A query the fake server holds: the client's transaction keeps its server.
        let query = Background { try client.exec("SELECT 'hang'", timeout: 30) }
        let holding = waitUntil(timeout: 5) { fake.held.count == 1 }
        try #require(holding, "the fake server never got the query\n\(context())")

        let canceller = try #require(client.makeCanceller())
        let cancel = Background { canceller.cancel() }
        let arrived = fake.waitForCancel(timeout: 5)
        try #require(arrived != nil, "the cancel request never reached the server\n\(context())")
        // As PgBouncer 1.18+: the client's cancel connection stays open while the server
        // has not taken the request, so PQcancel does not return before then.
        #expect(!waitUntil(timeout: 1) { cancel.isDone },
                "PQcancel returned while the server still held the forwarded request\n\(context())")
        let closed = fake.waitForCancelClosed(timeout: 10)
        if let arrived, let closed {
            let waited = closed - arrived
            #expect(waited >= 1.5, "the cancel connection was dropped after \(waited) s, before cancel_wait_timeout = 2\n\(context())")
            #expect(waited < 4.5, "the cancel connection was dropped only after \(waited) s (cancel_wait_timeout = 2)\n\(context())")
        } else {
            Issue.record("the pooler kept the unanswered cancel connection open for 10 s (cancel_wait_timeout = 2)\n\(context())")
        }
        #expect(cancel.wait(timeout: 10) != nil, "PQcancel did not return\n\(context())")

        // The pooler stays healthy: other databases, the admin console.
        #expect(pooler.isRunning, "\(context())")
        let other = try pooler.connect()
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try admin.exec("SHOW POOLS").rows.count >= 2)

        // The held query now ends (as canceled); the fake server's connection is
        // released as usual once no cancel is in flight, and serves the next query.
        fake.releaseHeldQueries()
        switch query.wait(timeout: 10) {
        case .none: Issue.record("the held query did not end\n\(context())")
        case .success?: Issue.record("the held query should have failed as canceled")
        case .failure(let error)?:
            #expect((error as? PQError)?.sqlstate == "57014", "\(error)\n\(context())")
        }
        #expect(try client.exec("SELECT 1", timeout: 10).scalar == "1", "\(context())")
        let pools = try admin.exec("SHOW POOLS").row(where: ["database": "fake"])
        #expect(pools?["cl_waiting"] == "0", "SHOW POOLS for fake: \(String(describing: pools))")
    }
}
