import Testing

@Suite struct SessionModeTests {
    /// With one server connection, client B gets the server client A used;
    /// A's session setting must not leak (server_reset_query DISCARD ALL).
    @Test func sessionStateIsResetBetweenClients() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "default_pool_size = 1"])
        defer { pooler.stop() }

        let first = try pooler.connect()
        let defaultTimeout = try first.exec("SHOW statement_timeout").scalar
        try first.exec("SET statement_timeout = '1234ms'")
        #expect(try first.exec("SHOW statement_timeout").scalar == "1234ms")
        let firstBackend = try first.exec("SELECT pg_backend_pid()").scalar
        first.close()

        let second = try pooler.connect()
        defer { second.close() }
        let secondBackend = try second.exec("SELECT pg_backend_pid()").scalar
        #expect(secondBackend == firstBackend, "pool size 1 should hand the same server to the next client")
        #expect(try second.exec("SHOW statement_timeout").scalar == defaultTimeout)
        #expect(defaultTimeout == "0")
    }

    /// In session mode a client keeps its server between transactions, so
    /// session state survives COMMIT.
    /// server_reset_query failing: the server's session state is unknown (the reset did
    /// not happen), so it is closed instead of serving the next client, as PgBouncer
    /// drops a server that sent an error between transactions.
    @Test func failedResetQueryRetiresTheServer() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "default_pool_size = 1",
                                                  "server_reset_query = SELECT 1/0"])
        defer { pooler.stop() }
        let first = try pooler.connect()
        let firstBackend = try first.exec("SELECT pg_backend_pid()").scalar
        try first.exec("SET search_path = leaked_schema")
        first.close()
        let second = try pooler.connect()
        defer { second.close() }
        #expect(try second.exec("SELECT pg_backend_pid()", timeout: 15).scalar != firstBackend,
                "the server whose reset failed served the next client\n\(pooler.diagnostics)")
        #expect(try second.exec("SHOW search_path").scalar != "leaked_schema")
        #expect(pooler.logText.contains("server_reset_query failed"), "\(pooler.diagnostics)")
    }

    @Test func clientKeepsItsServerAcrossTransactions() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = session", "default_pool_size = 2"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        try client.exec("SET application_name = 'kept'")
        let backend = try client.exec("SELECT pg_backend_pid()").scalar
        for _ in 0..<3 {
            try client.exec("BEGIN")
            #expect(try client.exec("SELECT pg_backend_pid()").scalar == backend)
            try client.exec("COMMIT")
        }
        #expect(try client.exec("SHOW application_name").scalar == "kept")
    }
}
