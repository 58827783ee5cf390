import Glibc
import Testing

/// transaction_timeout and query/xact times count from the client's first message,
/// not from the end of its previous transaction: a session client resting between
/// transactions is not cut off.
@Suite struct SessionTimeoutTests {
    @Test func idleSessionBetweenTransactionsIsNotATransaction() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "transaction_timeout = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        // Rest longer than the timeout (plus janitor ticks) outside any transaction.
        usleep(2_500_000)
        #expect(try client.exec("SELECT 2").scalar == "2", "\(pooler.diagnostics)")
        // A transaction that outlives the timeout is still ended.
        try client.exec("BEGIN")
        let ended = waitUntil(timeout: 10) { pooler.logText.contains("transaction timeout") }
        #expect(ended, "\(pooler.diagnostics)")
    }
}
