import Testing

/// `transaction_timeout`: a transaction that stays open longer than this is ended
/// by the pooler even while the client keeps it busy (unlike
/// idle_transaction_timeout, which only counts idle time).
@Suite struct TransactionTimeoutTests {
    @Test func busyTransactionIsDisconnectedAfterTransactionTimeout() throws {
        let pooler = try PoolerProcess(settings: ["transaction_timeout = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.exec("BEGIN")
        let began = monotonicSeconds()
        var failure: Error?
        var statements = 0
        // SELECT 1 every 200 ms: never idle for long, so only transaction_timeout can end it.
        while monotonicSeconds() - began < 6 {
            do {
                #expect(try client.exec("SELECT 1", timeout: 5).scalar == "1")
                statements += 1
            } catch {
                failure = error
                break
            }
            sleepSeconds(0.2)
        }
        let elapsed = monotonicSeconds() - began
        guard let failure else {
            Issue.record("the transaction ran \(elapsed) s (\(statements) statements) despite transaction_timeout = 1\n\(pooler.diagnostics)")
            return
        }
        let text = (failure as? PQError).map { $0.message + "\n" + $0.fullMessage } ?? "\(failure)"
        #expect(elapsed >= 0.9, "ended after \(elapsed) s, before the timeout: \(text)")
        #expect(elapsed < 3, "ended only after \(elapsed) s: \(text)\n\(pooler.diagnostics)")
        #expect(statements >= 3, "only \(statements) statements ran before the timeout")
        #expect(text.contains("transaction timeout"), "the client should be told why: \(text)\n\(pooler.diagnostics)")
        let logged = waitUntil(timeout: 3) { pooler.logText.contains("closing because: transaction timeout") }
        #expect(logged, "no `closing because: transaction timeout` in the log\n\(pooler.diagnostics)")

        // The pool (size 1) serves the next client.
        let next = try pooler.connect()
        defer { next.close() }
        #expect(try next.exec("SELECT 2").scalar == "2")
    }

    /// The clock is per transaction: many short transactions over more than
    /// transaction_timeout are fine, as are autocommit statements.
    @Test func shortTransactionsAreNotAffected() throws {
        let pooler = try PoolerProcess(settings: ["transaction_timeout = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let started = monotonicSeconds()
        var round = 0
        while monotonicSeconds() - started < 2.5 {
            round += 1
            try client.exec("BEGIN")
            #expect(try client.exec("SELECT \(round)").scalar == "\(round)")
            try client.exec("COMMIT")
            #expect(try client.exec("SELECT 1").scalar == "1")
            sleepSeconds(0.2)
        }
        #expect(!pooler.logText.contains("transaction timeout"), "\(pooler.diagnostics)")
    }
}
