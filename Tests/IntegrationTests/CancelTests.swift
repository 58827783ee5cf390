import Testing

/// CancelRequest through the pooler (libpq's PQcancel with the key the pooler
/// handed out) reaches the backend running the client's query.
@Suite struct CancelTests {
    private enum Outcome {
        case query(error: PQError?, elapsed: Double)
        /// Whether the query showed up in pg_stat_activity, and what PQcancel
        /// said (nil: sent; "hung": PQcancel did not return).
        case cancel(sawQuery: Bool, cancelError: String?)
    }

    /// Runs PQcancel, bounded: PQcancel blocks until the pooler closes the
    /// cancel connection.
    private static func cancel(_ canceller: PQCanceller) -> String? {
        Threads.runWithTimeout(10) { canceller.cancel() } ?? "hung: PQcancel did not return within 10 s"
    }

    @Test func pqCancelStopsARunningQuery() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let canceller = try #require(client.makeCanceller())
        let marker = TestEnvironment.uniqueName("cancel_me")
        let watcher = try pooler.cluster.superuserConnection(database: "app_db")
        defer { watcher.close() }

        let outcomes = Threads.run(count: 2) { index -> Outcome in
            if index == 0 {
                let started = monotonicSeconds()
                do {
                    try client.exec("SELECT pg_sleep(30) /* \(marker) */", timeout: 35)
                    return .query(error: nil, elapsed: monotonicSeconds() - started)
                } catch let error as PQError {
                    return .query(error: error, elapsed: monotonicSeconds() - started)
                } catch {
                    return .query(error: PQError(message: "\(error)", sqlstate: nil, fullMessage: ""),
                                  elapsed: monotonicSeconds() - started)
                }
            }
            let running = waitUntil(timeout: 10, interval: 0.02) {
                let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    + "AND pid <> pg_backend_pid() AND query LIKE '%\(marker)%'"
                return (try? watcher.exec(sql).scalar) == "1"
            }
            return .cancel(sawQuery: running, cancelError: running ? Self.cancel(canceller) : "not sent")
        }

        guard case let .query(error, elapsed) = outcomes[0], case let .cancel(sawQuery, cancelError) = outcomes[1]
        else { Issue.record("bad outcomes \(outcomes)"); return }
        #expect(sawQuery, "the query never showed up as active on the server")
        #expect(cancelError == nil, "PQcancel failed: \(cancelError ?? "")\n\(pooler.diagnostics)")
        #expect(error?.sqlstate == "57014", "expected query_canceled (57014), got \(String(describing: error))")
        #expect(elapsed < 10, "the query ended after \(elapsed) s\n\(pooler.diagnostics)")

        // The connection is still usable, in and out of transactions.
        #expect(try client.exec("SELECT 1").scalar == "1")
        try client.exec("BEGIN")
        #expect(try client.exec("SELECT 2").scalar == "2")
        try client.exec("COMMIT")
    }

    /// A cancel for a client that has no query running (in transaction mode
    /// it has no server at all) is harmless.
    @Test func cancelOfAnIdleClientIsHarmless() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let bystander = try pooler.connect()
        defer { bystander.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        try bystander.exec("BEGIN")
        #expect(try bystander.exec("SELECT 1").scalar == "1")

        let canceller = try #require(client.makeCanceller())
        let cancelError = Self.cancel(canceller)
        #expect(cancelError == nil || cancelError?.hasPrefix("hung") == false,
                "PQcancel: \(cancelError ?? "")\n\(pooler.diagnostics)")

        #expect(try client.exec("SELECT 2").scalar == "2")
        #expect(try bystander.exec("SELECT 3").scalar == "3")
        try bystander.exec("COMMIT")
    }
}
