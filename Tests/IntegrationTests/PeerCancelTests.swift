import Glibc
import Testing

/// Peering ([peers], peer_id): a cancel request that reaches the wrong instance is
/// forwarded to the instance that owns the client (peer id in the cancel key).
@Suite struct PeerCancelTests {
    @Test func cancelSentToThePeerCancelsTheQuery() throws {
        let owner = try PoolerProcess(settings: ["peer_id = 1", "auth_type = trust"])
        defer { owner.stop() }
        let other = try PoolerProcess(settings: ["peer_id = 2"], peers: ["1 = host=127.0.0.1 port=\(owner.port)"])
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
