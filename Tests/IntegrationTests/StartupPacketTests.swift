import Testing

/// Startup packets at and beyond the 10 000-byte bound, and one cut short,
/// cost the pooler nothing but that connection.
@Suite struct StartupPacketTests {
    /// A protocol 3.0 StartupMessage of exactly `length` bytes (length field
    /// included), padded with an application_name.
    private static func startup(length: Int) -> [UInt8] {
        let fixed = FrontendPacket.startup([("user", "app"), ("database", "app_db"), ("application_name", "")])
        let padding = length - fixed.count
        precondition(padding >= 0)
        return FrontendPacket.startup([("user", "app"), ("database", "app_db"),
                                       ("application_name", String(repeating: "a", count: padding))])
    }

    private static func expectHealthy(_ pooler: PoolerProcess) throws {
        #expect(pooler.isRunning, "\(pooler.diagnostics)")
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }

    /// Bytes sent after a CancelRequest on the same connection are not processed: a
    /// StartupMessage there starts no login (the connection gets no message and closes).
    @Test func bytesAfterACancelRequestAreIgnored() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let socket = try RawSocket(port: pooler.port)
        defer { socket.close() }
        let cancel = FrontendPacket.bigEndian(16) + FrontendPacket.bigEndian(80877102) + [0, 0, 0, 1, 0, 0, 0, 2]
        socket.send(cancel + FrontendPacket.startup([("user", "app"), ("database", "app_db")]))
        let messages = socket.readUntilClosed(timeout: 10)
        #expect(messages.isEmpty, "the cancel connection answered: \(messages)\n\(pooler.diagnostics)")
        #expect(!pooler.logText.contains("login attempt"), "a login started after the CancelRequest\n\(pooler.diagnostics)")
        try Self.expectHealthy(pooler)
    }

    /// As PostgreSQL, SSLRequest and GSSENCRequest are answered once each; a repeat is an
    /// unsupported protocol (08P01), so a client cannot loop on them.
    @Test func repeatedEncryptionRequestIsRefused() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        for code: UInt32 in [80877103, 80877104] {
            let socket = try RawSocket(port: pooler.port)
            defer { socket.close() }
            let request = FrontendPacket.bigEndian(8) + FrontendPacket.bigEndian(code)
            socket.send(request)
            #expect(socket.readBytes(1, timeout: 10) == [UInt8(ascii: "N")], "\(pooler.diagnostics)")
            socket.send(request)
            let messages = socket.readUntilClosed(timeout: 10)
            let error = messages.first { $0.typeCharacter == "E" }
            #expect(error.map { String(decoding: $0.payload, as: UTF8.self).contains("08P01") } == true,
                    "request \(code) repeated: \(messages)\n\(pooler.diagnostics)")
        }
        try Self.expectHealthy(pooler)
    }

    @Test func oversizeStartupPacketIsRefusedWith08P01() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }

        let packet = Self.startup(length: 10001)
        #expect(packet.count == 10001 && packet[0...3] == [0, 0, 0x27, 0x11][...])
        let socket = try RawSocket(port: pooler.port)
        // The header alone must be enough to refuse it (and sending less than
        // the pooler reads keeps its close from resetting our receive queue).
        socket.send(Array(packet[0..<8]))
        let reply = socket.readUntilClosed(timeout: 5)
        #expect(socket.peerClosed, "the pooler should close the connection; got \(reply)")
        let error = reply.first { $0.typeCharacter == "E" }
        #expect(error?.fields["C"] == "08P01", "expected ErrorResponse 08P01, got \(reply)")

        try Self.expectHealthy(pooler)
    }

    @Test func startupPacketOfExactlyTheLimitIsAccepted() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let socket = try RawSocket(port: pooler.port)
        socket.send(Self.startup(length: 10000))
        let reply = socket.readMessage(timeout: 5)
        #expect(reply?.typeCharacter == "R", "expected an authentication request, got \(String(describing: reply))")
        socket.close()
        try Self.expectHealthy(pooler)
    }

    @Test func truncatedStartupPacketThenCloseLeavesPoolerHealthy() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        for _ in 0..<3 {
            let socket = try RawSocket(port: pooler.port)
            // Declares 20 bytes, sends 10, hangs up.
            socket.send(FrontendPacket.bigEndian(20) + [0, 3, 0, 0] + Array("us".utf8))
            socket.close()
        }
        // The same, but the pooler sees the close while our client waits for an answer.
        let waiting = try RawSocket(port: pooler.port)
        waiting.send(FrontendPacket.bigEndian(20) + [0, 3, 0, 0] + Array("us".utf8))
        #expect(waiting.readMessage(timeout: 0.3) == nil, "nothing to answer before the packet is complete")
        waiting.close()

        try Self.expectHealthy(pooler)
        let admin = try pooler.admin()
        defer { admin.close() }
        // The half-sent logins are gone (only the admin connection remains).
        let gone = try waitUntil(timeout: 5) {
            let clients = try admin.exec("SHOW CLIENTS")
            return clients.rows.count == 1
        }
        #expect(gone, "\(String(describing: try? admin.exec("SHOW CLIENTS").rows))")
    }
}
