import Testing

/// PgBouncer's client and transaction timeouts, each shown firing with the reason
/// the client gets; the pool serves the next client afterwards.
@Suite struct TimeoutTests {
    /// Runs `sql` expecting it to fail: with `reason` in the error when given (the
    /// connection may also just be gone when the pooler closed it earlier).
    private static func expectDisconnect(_ client: PQConnection, _ sql: String, reason: String?,
                                         pooler: PoolerProcess) {
        do {
            _ = try client.exec(sql, timeout: 20)
            Issue.record("\(sql) succeeded; expected a failure\n\(pooler.diagnostics)")
        } catch let error as PQError {
            if let reason {
                let text = error.message + "\n" + error.fullMessage
                #expect(text.contains(reason), "got \(error)\n\(pooler.diagnostics)")
            }
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func queryTimeoutClosesTheLongQuery() throws {
        let pooler = try PoolerProcess(settings: ["query_timeout = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        Self.expectDisconnect(client, "SELECT pg_sleep(30)", reason: "query timeout", pooler: pooler)
        let next = try pooler.connect()
        defer { next.close() }
        #expect(try next.exec("SELECT 1").scalar == "1")
    }

    @Test func idleTransactionTimeoutEndsAnAbandonedTransaction() throws {
        let pooler = try PoolerProcess(settings: ["idle_transaction_timeout = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.exec("BEGIN")
        // The client now sits in its transaction; the pooler must end it, not the client.
        let ended = waitUntil(timeout: 10) { pooler.logText.contains("idle transaction timeout") }
        #expect(ended, "no idle transaction timeout\n\(pooler.diagnostics)")
        Self.expectDisconnect(client, "SELECT 1", reason: nil, pooler: pooler)
        let next = try pooler.connect()
        defer { next.close() }
        #expect(try next.exec("SELECT 1").scalar == "1")
    }

    @Test func clientIdleTimeoutClosesIdleClients() throws {
        let pooler = try PoolerProcess(settings: ["client_idle_timeout = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let closed = waitUntil(timeout: 10) { pooler.logText.contains("client_idle_timeout") }
        #expect(closed, "idle client not closed\n\(pooler.diagnostics)")
        Self.expectDisconnect(client, "SELECT 1", reason: nil, pooler: pooler)
    }
}
