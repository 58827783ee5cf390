import Testing

@Suite struct StatementModeTests {
    /// Statement pooling refuses multi-statement transactions but runs
    /// single statements.
    @Test func transactionBlocksAreRefused() throws {
        let pooler = try PoolerProcess(settings: ["pool_mode = statement", "default_pool_size = 2"])
        defer { pooler.stop() }

        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        #expect(try client.execParams("SELECT $1::int + 1", ["41"]).scalar == "42")

        let error = #expect(throws: PQError.self) { try client.exec("BEGIN") }
        #expect(error?.message.contains("transaction blocks not allowed in statement pooling mode") == true,
                "\(String(describing: error))")

        // PgBouncer closes the client after this error; a new client still works.
        let other = try pooler.connect()
        defer { other.close() }
        for value in 1...3 {
            #expect(try other.exec("SELECT \(value)").scalar == String(value))
        }
    }
}
