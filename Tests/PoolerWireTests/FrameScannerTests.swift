import Testing
@testable import PoolerWire

@Suite struct FrameScannerTests {
    /// Three frames: Query "select 1", Sync, Terminate.
    static let stream: [UInt8] = {
        var w = MessageWriter()
        w.query("select 1")
        w.begin(FrontendMessageID.sync); w.end()
        w.terminate()
        return w.bytes
    }()

    static func scanAll(_ bytes: [UInt8], max: Int = 1 << 20) -> [Frame] {
        bytes.withUnsafeBytes { raw in
            var frames: [Frame] = []
            var offset = 0
            while case .frame(let frame) = FrameScanner.scan(raw, from: offset, maxPacketSize: max) {
                frames.append(frame)
                offset = frame.end
            }
            return frames
        }
    }

    @Test func findsAllFramesAtOnce() {
        let frames = Self.scanAll(Self.stream)
        #expect(frames.map(\.type) == [UInt8(ascii: "Q"), UInt8(ascii: "S"), UInt8(ascii: "X")])
        #expect(frames[0] == Frame(type: UInt8(ascii: "Q"), start: 0, length: 13))
        #expect(frames[1].start == 14 && frames[1].length == 4)
        #expect(frames.last!.end == Self.stream.count)
    }

    @Test func byteByByteReportsIncompleteUntilWhole() {
        // Feed a growing prefix, as a socket delivering one byte at a time would.
        var seen: [Frame] = []
        var offset = 0
        for end in 0...Self.stream.count {
            let prefix = Array(Self.stream[0..<end])
            prefix.withUnsafeBytes { raw in
                while true {
                    switch FrameScanner.scan(raw, from: offset, maxPacketSize: 1 << 20) {
                    case .frame(let frame):
                        seen.append(frame)
                        offset = frame.end
                        continue
                    case .incomplete(let header):
                        if raw.count - offset >= 5 { #expect(header != nil) } else { #expect(header == nil) }
                    case .invalidLength:
                        Issue.record("valid stream reported invalid")
                    }
                    break
                }
            }
        }
        #expect(seen == Self.scanAll(Self.stream))
    }

    @Test func rejectsLengthsOutsideBounds() {
        let tooShort: [UInt8] = [UInt8(ascii: "Q"), 0, 0, 0, 3]
        let tooLong: [UInt8] = [UInt8(ascii: "Q"), 0xFF, 0xFF, 0xFF, 0xF0]
        tooShort.withUnsafeBytes { raw in
            #expect(FrameScanner.scan(raw, from: 0, maxPacketSize: 100) == .invalidLength(type: UInt8(ascii: "Q"), length: 3))
        }
        tooLong.withUnsafeBytes { raw in
            #expect(FrameScanner.scan(raw, from: 0, maxPacketSize: Int(Int32.max))
                    == .invalidLength(type: UInt8(ascii: "Q"), length: 0xFFFF_FFF0))
        }
        // The configured max_packet_size is the bound, not the protocol's.
        [UInt8(ascii: "Q"), 0, 0, 1, 0].withUnsafeBytes { raw in
            #expect(FrameScanner.scan(raw, from: 0, maxPacketSize: 255) == .invalidLength(type: UInt8(ascii: "Q"), length: 256))
        }
    }

    @Test func startupScannerBoundsAndDecodes() throws {
        var w = MessageWriter()
        w.startupMessage(parameters: [("user", "app"), ("database", "db")])
        let packet = w.bytes
        for end in 0..<packet.count {
            Array(packet[0..<end]).withUnsafeBytes { #expect(StartupScanner.scan($0) == .incomplete) }
        }
        let decoded = try packet.withUnsafeBytes { raw in
            #expect(StartupScanner.scan(raw) == .packet(length: packet.count))
            return try StartupPacket.decode(raw)
        }
        #expect(decoded == .startup(parameters: [("user", "app"), ("database", "db")]))
        ([0, 0, 0x27, 0x11, 0, 3, 0, 0] as [UInt8]).withUnsafeBytes { #expect(StartupScanner.scan($0) == .invalidLength(10001)) }
        ([0, 0, 0, 4] as [UInt8]).withUnsafeBytes { #expect(StartupScanner.scan($0) == .invalidLength(4)) }
    }

    @Test func decodesSpecialPackets() throws {
        var w = MessageWriter()
        w.cancelRequest(processID: 42, secretKey: -7)
        #expect(try w.bytes.withUnsafeBytes { try StartupPacket.decode($0) } == .cancel(processID: 42, secretKey: -7))
        let ssl: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]
        #expect(try ssl.withUnsafeBytes { try StartupPacket.decode($0) } == .sslRequest)
        let gss: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x30]
        #expect(try gss.withUnsafeBytes { try StartupPacket.decode($0) } == .gssEncRequest)
        // A parameter name without its terminating NUL is malformed, not a crash.
        let broken: [UInt8] = [0, 0, 0, 12, 0, 3, 0, 0, UInt8(ascii: "u"), UInt8(ascii: "s"), UInt8(ascii: "e"), UInt8(ascii: "r")]
        _ = broken.withUnsafeBytes { raw in
            #expect(throws: StartupPacket.DecodeError.self) { try StartupPacket.decode(raw) }
        }
    }

    @Test func errorFieldsRoundTrip() {
        var w = MessageWriter()
        w.errorResponse(code: "28P01", message: "password authentication failed for user \"app\"")
        let bytes = w.bytes
        let fields = bytes.withUnsafeBytes { ErrorFields.parse(UnsafeRawBufferPointer(rebasing: $0[5...])) }
        #expect(fields == ErrorFields(severity: "ERROR", code: "28P01", message: "password authentication failed for user \"app\""))
    }
}
