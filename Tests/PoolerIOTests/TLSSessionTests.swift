import Foundation
import Testing
@testable import PoolerIO

/// Certificates made once per test run with the openssl CLI.
struct TestPKI {
    let dir: String
    func path(_ name: String) -> String { "\(dir)/\(name)" }

    static let shared: TestPKI = {
        let dir = NSTemporaryDirectory() + "pooler-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        let script = """
        set -e
        cd '\(dir)'
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext
        printf 'basicConstraints=CA:FALSE\\n' > client.ext
        for ca in ca otherca; do
          openssl req -x509 \(ec) -keyout $ca.key -out $ca.crt -days 30 -subj /CN=$ca \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        done
        # name CA subject ext days
        issue() {
          openssl req -new \(ec) -keyout $1.key -out $1.csr -subj "/CN=$3"
          openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -out $1.crt -days $5 -extfile $4
        }
        issue server ca localhost server.ext 30
        issue client ca app client.ext 30
        issue expired ca localhost server.ext -1
        issue otherserver otherca localhost server.ext 30
        issue otherclient otherca app client.ext 30
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try! process.run()
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "openssl certificate generation failed")
        return TestPKI(dir: dir)
    }()

    /// Server context (accepting clients) with the given certificate name.
    func serverContext(cert: String = "server", verifyClients: Bool = false, protocols: String = "secure",
                       alpn: [String] = []) throws -> TLSContext {
        try TLSContext.server(.init(certificateFile: path("\(cert).crt"), keyFile: path("\(cert).key"),
                                    caFile: verifyClients ? path("ca.crt") : nil, protocols: protocols,
                                    verifyPeer: verifyClients, alpn: alpn))
    }

    func clientContext(verify: Bool = false, clientCert: String? = nil, protocols: String = "secure",
                       alpn: [String] = []) throws -> TLSContext {
        try TLSContext.client(.init(certificateFile: clientCert.map { path("\($0).crt") },
                                    keyFile: clientCert.map { path("\($0).key") },
                                    caFile: verify ? path("ca.crt") : nil, protocols: protocols,
                                    verifyPeer: verify, alpn: alpn))
    }
}

/// Moves all pending ciphertext from one session to the other; true if anything moved.
@discardableResult
func shuttle(from source: TLSSession, to destination: TLSSession) -> Bool {
    var buffer = ByteBuffer()
    defer { buffer.deallocate() }
    let n = source.takeCiphertext(into: &buffer)
    if n > 0 { destination.feedCiphertext(buffer.readable) }
    return n > 0
}

struct HandshakeOutcome {
    var client: TLSHandshakeResult
    var server: TLSHandshakeResult
    var bothComplete: Bool { client == .complete && server == .complete }
    var serverError: TLSError? { if case .failed(let e) = server { return e }; return nil }
    var clientError: TLSError? { if case .failed(let e) = client { return e }; return nil }
}

/// Drives both handshakes in memory until both finish or one fails (the other side then
/// gets the alert and one more turn).
func runHandshake(_ client: TLSSession, _ server: TLSSession) -> HandshakeOutcome {
    var c = TLSHandshakeResult.wantsMore, s = TLSHandshakeResult.wantsMore
    for _ in 0..<20 {
        if c == .wantsMore { c = client.handshake() }
        shuttle(from: client, to: server)
        if s == .wantsMore { s = server.handshake() }
        shuttle(from: server, to: client)
        if c != .wantsMore && s != .wantsMore { break }
        if case .failed = c, s == .wantsMore { s = server.handshake(); break }
        if case .failed = s, c == .wantsMore { c = client.handshake(); break }
    }
    // TLS 1.3: the client finishes first; a server-side failure reaches it as an alert on its next read.
    if c == .complete, case .failed = s {
        var scratch = ByteBuffer()
        if case .failed(let e) = client.readPlaintext(into: &scratch) { c = .failed(e) }
        scratch.deallocate()
    }
    return HandshakeOutcome(client: c, server: s)
}

/// Writes `data` on one side and reads it all on the other.
func transfer(_ data: [UInt8], from writer: TLSSession, to reader: TLSSession) -> [UInt8] {
    var received = ByteBuffer()
    defer { received.deallocate() }
    var offset = 0
    var rounds = 0
    while received.readableCount < data.count && rounds < 10_000 {
        rounds += 1
        if offset < data.count {
            let chunk = min(64 * 1024, data.count - offset)
            let result = data.withUnsafeBytes { writer.writePlaintext(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + chunk])) }
            guard case .written(let n) = result else { Issue.record("write: \(result)"); break }
            offset += n
        }
        shuttle(from: writer, to: reader)
        let result = reader.readPlaintext(into: &received)
        switch result {
        case .bytes, .wantsMore: break
        default: Issue.record("read: \(result)"); return Array(received.readable)
        }
        shuttle(from: reader, to: writer)   // TLS 1.3 may answer (tickets, key updates)
    }
    return Array(received.readable)
}

@Suite struct TLSSessionTests {
    let pki = TestPKI.shared

    @Test func handshakeDataBothWaysAndCloseNotify() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true), isServer: false,
                                    serverName: "localhost", verifyHostname: true)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        let outcome = runHandshake(client, server)
        #expect(outcome.bothComplete, "\(outcome.client) / \(outcome.server)")
        #expect(client.isHandshakeComplete && server.isHandshakeComplete)
        #expect(client.protocolVersion == "TLSv1.3")
        #expect(server.protocolVersion == "TLSv1.3")
        #expect(!client.cipherName.isEmpty && client.cipherName == server.cipherName)
        #expect(client.peerCertificateVerified)
        #expect(client.peerCertificateCommonName == "localhost")
        #expect(server.serverName == "localhost")
        #expect(!server.hasPeerCertificate && server.peerCertificateCommonName == nil)
        #expect(client.negotiatedALPN == nil)

        let small = Array("SELECT 1".utf8)
        #expect(transfer(small, from: client, to: server) == small)
        let reply = Array("1 row".utf8)
        #expect(transfer(reply, from: server, to: client) == reply)
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 11)) }
        #expect(transfer(big, from: client, to: server) == big)
        #expect(transfer(big, from: server, to: client) == big)

        client.shutdown()
        shuttle(from: client, to: server)
        var sink = ByteBuffer()
        defer { sink.deallocate() }
        #expect(server.readPlaintext(into: &sink) == .closed)
        #expect(server.receivedCloseNotify)
        server.shutdown()
        shuttle(from: server, to: client)
        #expect(client.readPlaintext(into: &sink) == .closed)
    }

    @Test func plaintextRidingWithTheLastFlightIsNotLost() throws {
        // The client writes right after its handshake completes, before the server has
        // processed the client's Finished: the data arrives together with it.
        let client = try TLSSession(context: pki.clientContext(), isServer: false)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        #expect(client.handshake() == .wantsMore)
        shuttle(from: client, to: server)
        #expect(server.handshake() == .wantsMore)
        shuttle(from: server, to: client)
        #expect(client.handshake() == .complete)
        let message = Array("startup".utf8)
        #expect(message.withUnsafeBytes { client.writePlaintext($0) } == .written(message.count))
        shuttle(from: client, to: server)
        #expect(server.handshake() == .complete)
        var received = ByteBuffer()
        defer { received.deallocate() }
        #expect(server.readPlaintext(into: &received) == .bytes(message.count))
        #expect(Array(received.readable) == message)
    }

    @Test func tls12Works() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true, protocols: "tlsv1.2"), isServer: false,
                                    serverName: "127.0.0.1", verifyHostname: true)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        let outcome = runHandshake(client, server)
        #expect(outcome.bothComplete, "\(outcome.client) / \(outcome.server)")
        #expect(client.protocolVersion == "TLSv1.2")
        #expect(server.serverName == nil)   // no SNI for an IP address
        let data = Array(repeating: UInt8(7), count: 100_000)
        #expect(transfer(data, from: server, to: client) == data)
        #expect(client.serverEndPointChannelBinding == server.serverEndPointChannelBinding)
    }

    @Test func clientRejectsServerFromAnotherCA() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true), isServer: false, serverName: "localhost")
        let server = try TLSSession(context: pki.serverContext(cert: "otherserver"), isServer: true)
        let outcome = runHandshake(client, server)
        let error = try #require(outcome.clientError, "\(outcome.client)")
        #expect(error.kind == .verification)
        #expect(error.message.contains("unable to get local issuer certificate"), "\(error)")
        #expect(outcome.serverError != nil)   // got the alert
    }

    @Test func clientWithoutVerificationAcceptsAnyServer() throws {
        let client = try TLSSession(context: pki.clientContext(verify: false), isServer: false)
        let server = try TLSSession(context: pki.serverContext(cert: "otherserver"), isServer: true)
        #expect(runHandshake(client, server).bothComplete)
        #expect(!client.peerCertificateVerified)
        #expect(client.peerCertificateCommonName == "localhost")
    }

    @Test func hostnameMismatchFailsVerifyFull() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true), isServer: false,
                                    serverName: "db.example.com", verifyHostname: true)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        let outcome = runHandshake(client, server)
        let error = try #require(outcome.clientError, "\(outcome.client)")
        #expect(error.kind == .verification)
        #expect(error.message.contains("hostname mismatch"), "\(error)")

        // Same name without the host check (verify-ca) is fine.
        let caOnly = try TLSSession(context: pki.clientContext(verify: true), isServer: false, serverName: "db.example.com")
        let server2 = try TLSSession(context: pki.serverContext(), isServer: true)
        #expect(runHandshake(caOnly, server2).bothComplete)

        // An IP address is matched against the IP SAN.
        let wrongIP = try TLSSession(context: pki.clientContext(verify: true), isServer: false,
                                     serverName: "10.0.0.1", verifyHostname: true)
        let server3 = try TLSSession(context: pki.serverContext(), isServer: true)
        #expect(runHandshake(wrongIP, server3).clientError?.kind == .verification)
    }

    @Test func expiredServerCertificateRejected() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true), isServer: false, serverName: "localhost")
        let server = try TLSSession(context: pki.serverContext(cert: "expired"), isServer: true)
        let error = try #require(runHandshake(client, server).clientError)
        #expect(error.kind == .verification)
        #expect(error.message.contains("expired"), "\(error)")
    }

    @Test func serverRequiringClientCertificateGetsCommonName() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true, clientCert: "client"), isServer: false,
                                    serverName: "localhost")
        let server = try TLSSession(context: pki.serverContext(verifyClients: true), isServer: true)
        let outcome = runHandshake(client, server)
        #expect(outcome.bothComplete, "\(outcome.client) / \(outcome.server)")
        #expect(server.peerCertificateCommonName == "app")
        #expect(server.peerCertificateVerified)
        let data = Array("hello".utf8)
        #expect(transfer(data, from: client, to: server) == data)
    }

    @Test func serverRejectsClientCertificateFromAnotherCA() throws {
        let client = try TLSSession(context: pki.clientContext(clientCert: "otherclient"), isServer: false)
        let server = try TLSSession(context: pki.serverContext(verifyClients: true), isServer: true)
        let outcome = runHandshake(client, server)
        let error = try #require(outcome.serverError, "\(outcome.server)")
        #expect(error.kind == .verification, "\(error)")
        #expect(outcome.clientError != nil, "\(outcome.client)")   // got the alert
        #expect(!server.peerCertificateVerified)
    }

    @Test func serverRequiringClientCertificateRejectsNone() throws {
        let client = try TLSSession(context: pki.clientContext(), isServer: false)
        let server = try TLSSession(context: pki.serverContext(verifyClients: true), isServer: true)
        let outcome = runHandshake(client, server)
        let error = try #require(outcome.serverError, "\(outcome.server)")
        #expect(error.message.contains("certificate"), "\(error)")
    }

    @Test func channelBindingMatchesOnBothSides() throws {
        let client = try TLSSession(context: pki.clientContext(), isServer: false)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        #expect(client.serverEndPointChannelBinding == nil)   // no peer yet
        #expect(runHandshake(client, server).bothComplete)
        let clientSide = try #require(client.serverEndPointChannelBinding)
        let serverSide = try #require(server.serverEndPointChannelBinding)
        #expect(clientSide == serverSide)
        #expect(clientSide.count == 32)   // ecdsa-with-SHA256 → SHA-256
        // It is the SHA-256 of the DER certificate, as `openssl x509 -fingerprint` shows.
        let fingerprint = try Self.opensslFingerprint(pki.path("server.crt"))
        #expect(clientSide.map { String(format: "%02X", $0) }.joined() == fingerprint)
    }

    static func opensslFingerprint(_ file: String) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "x509", "-in", file, "-noout", "-fingerprint", "-sha256"]
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "sha256 Fingerprint=AB:CD:..."
        let value = output.split(separator: "=").last.map(String.init) ?? ""
        return value.replacingOccurrences(of: ":", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func alpnNegotiated() throws {
        let client = try TLSSession(context: pki.clientContext(alpn: ["postgresql"]), isServer: false)
        let server = try TLSSession(context: pki.serverContext(alpn: ["postgresql"]), isServer: true)
        #expect(runHandshake(client, server).bothComplete)
        #expect(client.negotiatedALPN == "postgresql")
        #expect(server.negotiatedALPN == "postgresql")

        // Server with ALPN, client without: no ALPN, handshake still fine (the caller decides).
        let plain = try TLSSession(context: pki.clientContext(), isServer: false)
        let server2 = try TLSSession(context: pki.serverContext(alpn: ["postgresql"]), isServer: true)
        #expect(runHandshake(plain, server2).bothComplete)
        #expect(server2.negotiatedALPN == nil)

        // No overlap: no_application_protocol.
        let other = try TLSSession(context: pki.clientContext(alpn: ["http/1.1"]), isServer: false)
        let server3 = try TLSSession(context: pki.serverContext(alpn: ["postgresql"]), isServer: true)
        let outcome = runHandshake(other, server3)
        #expect(outcome.serverError != nil && outcome.clientError != nil, "\(outcome.client) / \(outcome.server)")
    }

    @Test func protocolMismatchFails() throws {
        let client = try TLSSession(context: pki.clientContext(protocols: "tlsv1.2"), isServer: false)
        let server = try TLSSession(context: pki.serverContext(protocols: "tlsv1.3"), isServer: true)
        let outcome = runHandshake(client, server)
        #expect(outcome.serverError?.kind == .protocolError, "\(outcome.server)")
        #expect(outcome.clientError != nil, "\(outcome.client)")
    }

    @Test func sniffsClientHelloVersusSSLRequest() throws {
        let client = try TLSSession(context: pki.clientContext(), isServer: false, serverName: "localhost")
        #expect(client.handshake() == .wantsMore)
        var hello = ByteBuffer()
        defer { hello.deallocate() }
        #expect(client.takeCiphertext(into: &hello) > 0)
        #expect(TLSSession.looksLikeTLSClientHello(hello.readable))
        #expect(TLSSession.looksLikeTLSClientHello(UnsafeRawBufferPointer(rebasing: hello.readable[0..<1])))

        let sslRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]
        #expect(!sslRequest.withUnsafeBytes { TLSSession.looksLikeTLSClientHello($0) })
        let gssRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x30]
        #expect(!gssRequest.withUnsafeBytes { TLSSession.looksLikeTLSClientHello($0) })
        #expect(!TLSSession.looksLikeTLSClientHello(UnsafeRawBufferPointer(start: nil, count: 0)))
        #expect(![UInt8]([0x16, 0x01]).withUnsafeBytes { TLSSession.looksLikeTLSClientHello($0) })
    }

    @Test func writeBeforeHandshakeWantsMore() throws {
        let client = try TLSSession(context: pki.clientContext(), isServer: false)
        let data = Array("x".utf8)
        #expect(data.withUnsafeBytes { client.writePlaintext($0) } == .wantsMore)
        var sink = ByteBuffer()
        defer { sink.deallocate() }
        #expect(client.takeCiphertext(into: &sink) > 0)   // the write started the handshake
        #expect(client.readPlaintext(into: &sink) == .wantsMore)
    }

    @Test func idleReadLeavesBufferUnallocated() throws {
        let client = try TLSSession(context: pki.clientContext(), isServer: false)
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        #expect(runHandshake(client, server).bothComplete)
        var buffer = ByteBuffer()
        #expect(server.readPlaintext(into: &buffer) == .wantsMore)
        #expect(buffer.storage == nil)
        #expect(server.takeCiphertext(into: &buffer) == 0)
        #expect(buffer.storage == nil)
    }

    @Test func ciphertextFedOneByteAtATime() throws {
        let client = try TLSSession(context: pki.clientContext(verify: true), isServer: false, serverName: "localhost")
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        func trickle(_ from: TLSSession, _ to: TLSSession) {
            var buffer = ByteBuffer()
            defer { buffer.deallocate() }
            from.takeCiphertext(into: &buffer)
            for i in 0..<buffer.readableCount {
                to.feedCiphertext(UnsafeRawBufferPointer(rebasing: buffer.readable[i..<i + 1]))
                if to.isHandshakeComplete == false { _ = to.handshake() }
            }
        }
        var c = TLSHandshakeResult.wantsMore, s = TLSHandshakeResult.wantsMore
        for _ in 0..<10 where c != .complete || s != .complete {
            if c != .complete { c = client.handshake() }
            trickle(client, server)
            if s != .complete { s = server.handshake() }
            trickle(server, client)
        }
        #expect(c == .complete && s == .complete, "\(c) / \(s)")
        let message = Array("fragmented".utf8)
        _ = message.withUnsafeBytes { client.writePlaintext($0) }
        var wire = ByteBuffer(), received = ByteBuffer()
        defer { wire.deallocate(); received.deallocate() }
        client.takeCiphertext(into: &wire)
        for i in 0..<wire.readableCount {
            server.feedCiphertext(UnsafeRawBufferPointer(rebasing: wire.readable[i..<i + 1]))
            let result = server.readPlaintext(into: &received)
            if i < wire.readableCount - 1 { #expect(result == .wantsMore) }
            else { #expect(result == .bytes(message.count)) }
        }
        #expect(Array(received.readable) == message)
    }

    @Test func garbageFailsTheHandshake() throws {
        let server = try TLSSession(context: pki.serverContext(), isServer: true)
        let garbage: [UInt8] = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        garbage.withUnsafeBytes { server.feedCiphertext($0) }
        guard case .failed(let error) = server.handshake() else { Issue.record("expected failure"); return }
        #expect(error.kind == .protocolError)
        #expect(!error.message.isEmpty)
    }

    @Test func configurationErrors() throws {
        #expect(throws: TLSError.self) { try TLSContext.server(.init()) }   // no certificate
        #expect(throws: TLSError.self) {
            try TLSContext.server(.init(certificateFile: pki.path("server.crt"), keyFile: pki.path("client.key")))
        }
        #expect(throws: TLSError.self) { try TLSContext.client(.init(caFile: "/nonexistent/ca.crt")) }
        #expect(throws: TLSError.self) { try TLSContext.client(.init(protocols: "sslv3")) }
        #expect(throws: TLSError.self) { try TLSContext.client(.init(ciphers: "NOT-A-CIPHER")) }
        #expect(throws: TLSError.self) { try TLSContext.client(.init(ecdhCurve: "nosuchcurve")) }
        #expect(throws: TLSError.self) {   // verifying clients needs a CA
            try TLSContext.server(.init(certificateFile: pki.path("server.crt"), keyFile: pki.path("server.key"),
                                        verifyPeer: true))
        }
        for ciphers in ["default", "secure", "normal", "fast", "compat", "all", "HIGH:!aNULL"] {
            _ = try TLSContext.client(.init(ciphers: ciphers))
        }
        _ = try TLSContext.client(.init(ecdhCurve: "prime256v1,secp384r1", dheParams: "none"))
        _ = try TLSContext.client(.init(tls13Ciphers: "TLS_AES_128_GCM_SHA256"))
    }

    @Test func protocolParsing() throws {
        #expect(try TLSContext.parseProtocols("secure") == 0b1100)
        #expect(try TLSContext.parseProtocols("all") == 0b1111)
        #expect(try TLSContext.parseProtocols("tlsv1.2,tlsv1.3") == 0b1100)
        #expect(try TLSContext.parseProtocols("all,!tlsv1.0") == 0b1110)
        #expect(try TLSContext.parseProtocols("TLSv1.3") == 0b1000)
        #expect(throws: TLSError.self) { try TLSContext.parseProtocols("") }
    }
}
