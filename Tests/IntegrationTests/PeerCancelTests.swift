import Glibc
import Testing

/// Peering ([peers], peer_id): a cancel request that reaches the wrong instance is
/// forwarded to the instance that owns the client (peer id in the cancel key).
@Suite struct PeerCancelTests {
    /// The peer given by address, or by a host name (resolved off the event loop).
    @Test(arguments: ["127.0.0.1", "localhost"])
    func cancelSentToThePeerCancelsTheQuery(peerHost: String) throws {
        let owner = try PoolerProcess(settings: ["peer_id = 1", "auth_type = trust"])
        defer { owner.stop() }
        let other = try PoolerProcess(settings: ["peer_id = 2"], peers: ["1 = host=\(peerHost) port=\(owner.port)"])
        defer { other.stop() }

        // A raw client on the owner (trust; md5app has a plaintext secret for the server
        // login), to learn the cancel key it was given.
        let client = try RawSocket(port: owner.port)
        defer { client.close() }
        client.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var key: [UInt8]?
        while let message = client.readMessage(timeout: 10) {
            if message.typeCharacter == "K" { key = message.payload }
            if message.typeCharacter == "Z" { break }
        }
        let cancelKey = try #require(key, "no BackendKeyData\n\(owner.diagnostics)")
        #expect(Int(cancelKey[1]) | Int(cancelKey[2]) << 8 == 1, "peer id 1 in the key")

        let sql = Array("SELECT pg_sleep(30)".utf8) + [0]
        client.send(FrontendPacket.message("Q", length: UInt32(4 + sql.count), body: sql))
        // Wait until the query runs on a server, then cancel through the OTHER instance.
        let admin = try owner.admin()
        defer { admin.close() }
        let running = waitUntil(timeout: 10, interval: 0.05) {
            (try? admin.exec("SHOW SERVERS").rows.contains { $0.contains("active") }) ?? false
        }
        #expect(running, "the query never reached a server")
        let canceller = try RawSocket(port: other.port)
        canceller.send(FrontendPacket.bigEndian(16) + FrontendPacket.bigEndian(80877102) + cancelKey)
        var errorCode: String?
        let started = monotonicSeconds()
        while let message = client.readMessage(timeout: 10) {
            if message.typeCharacter == "E" {
                errorCode = Self.sqlstate(message.payload)
            }
            if message.typeCharacter == "Z" { break }
        }
        #expect(errorCode == "57014", "query not cancelled through the peer\n\(owner.diagnostics)\n\(other.diagnostics)")
        #expect(monotonicSeconds() - started < 10)
    }

    /// SHOW PEER_POOLS counts the cancel requests on their way to a peer: a peer that
    /// takes the request but never closes keeps it "active" until cancel_wait_timeout.
    @Test func peerPoolsCountCancelsInFlight() throws {
        // A peer that accepts connections (the kernel's backlog) and never answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound && listen(listener, 16) == 0)
        let silentPort = Int(UInt16(bigEndian: address.sin_port))

        let pooler = try PoolerProcess(settings: ["peer_id = 1", "cancel_wait_timeout = 2"],
                                       peers: ["7 = host=127.0.0.1 port=\(silentPort)"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        #expect(try admin.exec("SHOW PEER_POOLS").rows.isEmpty, "no peer pool before the first forwarded cancel")

        // A cancel key that names peer 7 (bytes 1-2) with TTL left (byte 7).
        let key: [UInt8] = [0x12, 7, 0, 0x34, 0x56, 0x78, 0x9A, 0x03]
        let canceller = try RawSocket(port: pooler.port)
        canceller.send(FrontendPacket.bigEndian(16) + FrontendPacket.bigEndian(80877102) + key)
        canceller.close()

        let active = try waitUntil(timeout: 5) {
            try admin.exec("SHOW PEER_POOLS").row(where: ["peer_id": "7"])?["cl_active_cancel_req"] == "1"
        }
        let row = try admin.exec("SHOW PEER_POOLS").row(where: ["peer_id": "7"])
        #expect(active, "\(String(describing: row))\n\(pooler.diagnostics)")
        #expect(row?["sv_active_cancel"] == "1" && row?["cl_waiting_cancel_req"] == "0" && row?["sv_login"] == "0",
                "\(String(describing: row))")
        #expect(try admin.exec("SHOW LISTS").row(where: ["list": "peer_pools"])?["items"] == "1")
        #expect(try admin.exec("SHOW LISTS").row(where: ["list": "peers"])?["items"] == "1")

        // cancel_wait_timeout gives up on it; the peer pool stays, empty.
        let expired = try waitUntil(timeout: 6) {
            try admin.exec("SHOW PEER_POOLS").row(where: ["peer_id": "7"])?["cl_active_cancel_req"] == "0"
        }
        #expect(expired, "\(String(describing: try? admin.exec("SHOW PEER_POOLS")))")
        #expect(try admin.exec("SHOW PEER_POOLS").row(where: ["peer_id": "7"])?["sv_active_cancel"] == "0")
    }

    private static func sqlstate(_ payload: [UInt8]) -> String? {
        var index = 0
        while index < payload.count, payload[index] != 0 {
            let tag = payload[index]
            var end = index + 1
            while end < payload.count, payload[end] != 0 { end += 1 }
            if tag == UInt8(ascii: "C") { return String(decoding: payload[(index + 1)..<end], as: UTF8.self) }
            index = end + 1
        }
        return nil
    }
}
