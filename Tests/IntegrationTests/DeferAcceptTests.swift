import Testing

/// tcp_defer_accept (PgBouncer's default 1): a TCP connection reaches the pooler with its
/// first bytes; a silent one stays with the kernel and costs the pooler nothing. With 0,
/// the pooler sees it at once (as a client in login).
@Suite struct DeferAcceptTests {
    /// Clients still logging in (SHOW LISTS; SHOW CLIENTS leaves them out, as PgBouncer).
    private static func loginClients(_ admin: PQConnection) throws -> Int {
        Int(try admin.exec("SHOW LISTS").row(where: ["list": "login_clients"])?["items"] ?? "") ?? -1
    }

    @Test func silentConnectionWaitsInTheKernelUntilItSpeaks() throws {
        let pooler = try PoolerProcess(settings: ["tcp_defer_accept = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let silent = try RawSocket(port: pooler.port)
        defer { silent.close() }
        // Bounded look for something that must not happen.
        let seen = try waitUntil(timeout: 1.0, interval: 0.05) { try Self.loginClients(admin) > 0 }
        #expect(!seen, "a silent connection was accepted despite tcp_defer_accept")
        // Once it speaks it is handed over and answered as usual.
        silent.send(FrontendPacket.startup([("user", "app"), ("database", "app_db")]))
        let answer = silent.readMessage(timeout: 10)
        #expect(answer?.typeCharacter == "R", "no authentication request after the startup packet")
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }

    @Test func withoutDeferAcceptTheSilentConnectionIsAClientAtOnce() throws {
        let pooler = try PoolerProcess(settings: ["tcp_defer_accept = 0"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let silent = try RawSocket(port: pooler.port)
        defer { silent.close() }
        #expect(try waitUntil(timeout: 5, interval: 0.05) { try Self.loginClients(admin) == 1 })
    }
}
