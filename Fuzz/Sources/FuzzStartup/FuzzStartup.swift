// StartupScanner.scan + StartupPacket.decode on arbitrary bytes, with round trips through
// MessageWriter.startupMessage / cancelRequest.
import FuzzSupport
import PoolerWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // 1. The whole input as a received packet, as the pooler sees it.
    switch StartupScanner.scan(bytes) {
    case .packet(let length):
        invariant(length >= 8 && length <= StartupScanner.maxStartupPacketLength && length <= size,
                  "packet length \(length) out of range for \(size) bytes")
        let packet = UnsafeRawBufferPointer(rebasing: bytes[0..<length])
        if let decoded = try? StartupPacket.decode(packet) { check(decoded, packet) }
    case .incomplete:
        invariant(size < 4 || be32(bytes, 0) > size, "incomplete with \(size) bytes")
    case .invalidLength(let length):
        invariant(length < 8 || length > StartupScanner.maxStartupPacketLength, "invalidLength(\(length))")
    }
    // 2. decode must not trap on any buffer (it ignores the length word, as it is only
    //    given scanned packets, but it must stay inside what it is given).
    if let decoded = try? StartupPacket.decode(bytes) { check(decoded, bytes) }
    return 0
}

private func be32(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int {
    Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
}

private func check(_ decoded: StartupPacket, _ packet: UnsafeRawBufferPointer) {
    invariant(packet.count >= 8, "decoded a packet of \(packet.count) bytes")
    let code = UInt32(be32(packet, 4))
    var writer = MessageWriter()
    switch decoded {
    case .sslRequest:
        invariant(code == 80877103, "sslRequest for code \(code)")
        return
    case .gssEncRequest:
        invariant(code == 80877104, "gssEncRequest for code \(code)")
        return
    case .unsupportedProtocol(let c):
        invariant(c == code && ![80877102, 80877103, 80877104, 196608].contains(c), "unsupportedProtocol(\(c))")
        return
    case .cancel(let pid, let key):
        invariant(code == 80877102 && packet.count >= 16, "cancel from code \(code), \(packet.count) bytes")
        invariant(Int(UInt32(bitPattern: pid)) == be32(packet, 8) && Int(UInt32(bitPattern: key)) == be32(packet, 12),
                  "cancel pid/key not the wire values")
        writer.cancelRequest(processID: pid, secretKey: key)
    case .startup(let parameters):
        invariant(code == 196608, "startup for code \(code)")
        var consumed = 8
        for (key, value) in parameters {
            invariant(!key.isEmpty, "empty key decoded")
            invariant(!key.utf8.contains(0) && !value.utf8.contains(0), "NUL inside a decoded string")
            consumed += 2
        }
        invariant(consumed <= packet.count, "more parameters than bytes")
        writer.startupMessage(parameters: parameters)
    }
    // decode(encode(x)) == x, and the encoding scans as one packet of its own length.
    let encoded = writer.bytes
    encoded.withUnsafeBytes { again in
        switch StartupScanner.scan(again) {
        case .packet(let length):
            invariant(length == again.count, "re-encoded packet scanned as \(length) of \(again.count)")
        case .invalidLength(let length):
            invariant(length == again.count && length > StartupScanner.maxStartupPacketLength,
                      "re-encoded packet rejected: \(length)")
        case .incomplete:
            invariant(false, "re-encoded packet incomplete")
        }
        do {
            let redecoded = try StartupPacket.decode(again)
            invariant(redecoded == decoded, "round trip changed \(decoded) into \(redecoded)")
        } catch {
            invariant(false, "re-encoded packet does not decode: \(error)")
        }
    }
}

@_cdecl("FuzzStartup_main")
public func FuzzStartupMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
