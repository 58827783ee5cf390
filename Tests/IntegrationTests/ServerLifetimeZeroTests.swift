import Testing

/// server_lifetime = 0: every server connection serves one client link, then closes
/// (PgBouncer's documented meaning), so consecutive transactions get new backends.
@Suite struct ServerLifetimeZeroTests {
    @Test func eachServerIsUsedOnce() throws {
        let pooler = try PoolerProcess(settings: ["server_lifetime = 0", "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        var pids: [String] = []
        for _ in 0..<3 {
            pids.append(try #require(try client.exec("SELECT pg_backend_pid()").scalar))
        }
        #expect(Set(pids).count == 3, "backends \(pids)\n\(pooler.diagnostics)")
        #expect(pooler.logText.contains("server lifetime over"))
    }
}
