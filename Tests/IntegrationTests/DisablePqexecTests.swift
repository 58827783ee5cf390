import Testing

/// disable_pqexec = 1: the simple query protocol is refused (the client is closed with
/// PgBouncer's "PQexec disallowed"), the extended protocol works, others carry on.
@Suite struct DisablePqexecTests {
    @Test func simpleQueryIsRefusedExtendedWorks() throws {
        let pooler = try PoolerProcess(settings: ["disable_pqexec = 1"])
        defer { pooler.stop() }
        let extended = try pooler.connect()
        defer { extended.close() }
        try extended.prepare("one", "SELECT $1::int + 1")
        #expect(try extended.execPrepared("one", ["41"]).scalar == "42")

        let simple = try pooler.connect()
        defer { simple.close() }
        do {
            _ = try simple.exec("SELECT 1")
            Issue.record("a simple query went through with disable_pqexec = 1")
        } catch let error as PQError {
            #expect(error.message.contains("PQexec disallowed"), "\(error)")
        }
        #expect(pooler.logText.contains("client used 'Q' packet type"), "\(pooler.diagnostics)")
        // The other client is unaffected.
        #expect(try extended.execPrepared("one", ["1"]).scalar == "2")
    }

    @Test func simpleQueryWorksByDefault() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }
}
