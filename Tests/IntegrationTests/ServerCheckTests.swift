import Testing

/// server_check_delay + server_check_query: servers idle for the delay are checked
/// (while idle, so no client waits); a server failing the check is closed and replaced.
@Suite struct ServerCheckTests {
    @Test func failingCheckReplacesTheServer() throws {
        let pooler = try PoolerProcess(settings: ["server_check_delay = 1", "server_check_query = select 1/0",
                                                  "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let before = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        let checked = waitUntil(timeout: 10) { pooler.logText.contains("test query failed") }
        #expect(checked, "the idle server was not checked\n\(pooler.diagnostics)")
        let after = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        #expect(after != before, "a server that failed its check was reused")
    }

    @Test func passingCheckKeepsTheServer() throws {
        // A check query that leaves a trace, so the test sees that it ran.
        let cluster = try PostgresCluster.shared()
        let table = TestEnvironment.uniqueName("checks")
        try cluster.superuserExec("CREATE TABLE \(table) (at timestamptz); GRANT INSERT ON \(table) TO app",
                                  database: "app_db")
        let pooler = try PoolerProcess(settings: ["server_check_delay = 1",
                                                  "server_check_query = insert into \(table) values (now())",
                                                  "default_pool_size = 1"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        let before = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        let direct = try cluster.directConnection(user: "postgres", database: "app_db")
        defer { direct.close() }
        let ran = waitUntil(timeout: 10, interval: 0.1) {
            (try? direct.exec("SELECT count(*) FROM \(table)").scalar).flatMap { Int($0) } ?? 0 > 0
        }
        #expect(ran, "the idle server was never checked\n\(pooler.diagnostics)")
        let after = try #require(try client.exec("SELECT pg_backend_pid()").scalar)
        #expect(after == before, "a server that passed its check was replaced\n\(pooler.diagnostics)")
    }
}
