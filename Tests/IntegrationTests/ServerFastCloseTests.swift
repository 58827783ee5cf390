import Testing

/// server_fast_close: in session mode a server marked for reconnection (RECONNECT,
/// a changed database entry) closes between transactions instead of at session end.
@Suite struct ServerFastCloseTests {
    @Test func sessionServerClosesBetweenTransactionsAfterReconnect() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "server_fast_close = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let before = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RECONNECT")
        #expect(throws: PQError.self, "the session ends with its server") { try client.exec("SELECT 1", timeout: 10) }
        let next = try pooler.connect()
        defer { next.close() }
        let after = try #require(try next.exec("SELECT pg_backend_pid()").scalar)
        #expect(after != before)
    }

    @Test func withoutFastCloseTheSessionKeepsItsServer() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let before = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RECONNECT")
        #expect(try client.exec("SELECT pg_backend_pid()").scalar == before)
    }

    @Test func transactionInProgressFinishesFirst() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "server_fast_close = 1", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.exec("BEGIN")
        let admin = try pooler.admin()
        defer { admin.close() }
        try admin.exec("RECONNECT")
        // Still inside the transaction: the server stays until it ends.
        #expect(try client.exec("SELECT 1").scalar == "1")
        try client.exec("COMMIT")
        #expect(throws: PQError.self) { try client.exec("SELECT 1", timeout: 10) }
    }
}
