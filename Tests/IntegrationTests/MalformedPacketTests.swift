import Testing

/// Protocol violations from one client end that client, with an
/// ErrorResponse (SQLSTATE 08P01, protocol_violation), and nobody else.
@Suite struct MalformedPacketTests {
    /// auth_type=trust so that the raw client gets past authentication and
    /// its bad 'Q' arrives in the query phase; md5app's plaintext secret lets
    /// the pooler log in to Postgres without a client proof.
    @Test func badLengthsCloseOnlyTheOffendingClient() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("malformed")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (note text); GRANT SELECT, INSERT ON \(table) TO md5app")

        let bystander = try pooler.connect(user: "md5app")
        defer { bystander.close() }
        try bystander.exec("BEGIN")
        try bystander.exec("INSERT INTO \(table) VALUES ('before')")

        // 1. A startup packet claiming 0xFFFFFFF0 bytes.
        let hugeStartup = try RawSocket(port: pooler.port)
        hugeStartup.send(FrontendPacket.bigEndian(0xFFFF_FFF0) + [0, 3, 0, 0])
        let hugeReply = hugeStartup.readUntilClosed(timeout: 5)
        #expect(hugeStartup.peerClosed, "the pooler should close the connection; got \(hugeReply)")
        let hugeError = hugeReply.first { $0.typeCharacter == "E" }
        #expect(hugeError?.fields["C"] == "08P01", "expected ErrorResponse 08P01, got \(hugeReply)")

        // 2. A proper startup, then a Query whose length (3) is below the minimum of 4.
        let shortQuery = try RawSocket(port: pooler.port)
        shortQuery.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var login: [BackendMessage] = []
        while let message = shortQuery.readMessage(timeout: 10) {
            login.append(message)
            if message.typeCharacter == "Z" || message.typeCharacter == "E" { break }
        }
        try #require(login.last?.typeCharacter == "Z", "trust login should end in ReadyForQuery: \(login)")
        shortQuery.send(FrontendPacket.message("Q", length: 3))
        let shortReply = shortQuery.readUntilClosed(timeout: 5)
        #expect(shortQuery.peerClosed, "the pooler should close the connection; got \(shortReply)")
        let shortError = shortReply.first { $0.typeCharacter == "E" }
        #expect(shortError?.fields["C"] == "08P01", "expected ErrorResponse 08P01, got \(shortReply)")

        // The bystander's transaction is intact.
        try bystander.exec("INSERT INTO \(table) VALUES ('after')")
        try bystander.exec("COMMIT")
        #expect(try owner.exec("SELECT string_agg(note, ',' ORDER BY note) FROM \(table)").scalar == "after,before")

        // And the pooler still takes new clients.
        let newcomer = try pooler.connect(user: "md5app")
        defer { newcomer.close() }
        #expect(try newcomer.exec("SELECT 1").scalar == "1")
        #expect(pooler.isRunning)
    }
}
