// FrameScanner.scan / StartupScanner.scan over arbitrary buffers, walking frame by frame.
import FuzzSupport
import PoolerWire

private let limits = [4, 5, 8, 64, 1024, 8192, 1 << 20, Int(Int32.max), Int(UInt32.max)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let maxPacketSize: Int
    if selector < 0xf0 {
        maxPacketSize = limits[Int(selector) % limits.count]
    } else {
        maxPacketSize = Int(input.byte()) << 8 | Int(input.byte()) // arbitrary small limits, 0 included
    }
    let buffer = input.rest()
    buffer.withUnsafeBytes { walk($0, maxPacketSize: maxPacketSize) }
    roundTrip(buffer, maxPacketSize: maxPacketSize)
    return 0
}

private func be32(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int {
    Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
}

private func walk(_ bytes: UnsafeRawBufferPointer, maxPacketSize: Int) {
    var offset = 0
    var frames = 0
    while true {
        checkStartupScan(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        let available = bytes.count - offset
        switch FrameScanner.scan(bytes, from: offset, maxPacketSize: maxPacketSize) {
        case .frame(let frame):
            invariant(available >= 5, "frame with \(available) bytes available")
            invariant(frame.start == offset, "frame.start \(frame.start) != offset \(offset)")
            invariant(frame.type == bytes[offset], "frame.type mismatch")
            invariant(frame.length == be32(bytes, offset + 1), "frame.length \(frame.length) is not the wire length")
            invariant(frame.length >= 4 && frame.length <= maxPacketSize,
                      "frame.length \(frame.length) outside 4...\(maxPacketSize)")
            invariant(frame.end <= bytes.count, "frame end \(frame.end) beyond buffer \(bytes.count)")
            invariant(frame.end > offset, "frame does not advance")
            invariant(frame.payloadStart + frame.payloadLength == frame.end, "payload does not end at frame end")
            invariant(frame.payloadLength >= 0 && frame.payloadStart <= frame.end, "negative payload")
            let payload = UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end])
            readPayload(type: frame.type, payload)
            offset = frame.end
            frames += 1
        case .incomplete(let header):
            if let header {
                invariant(available >= 5, "header reported with only \(available) bytes")
                invariant(header.start == offset && header.type == bytes[offset], "header position/type")
                invariant(header.length == be32(bytes, offset + 1), "header length is not the wire length")
                invariant(header.length >= 4 && header.length <= maxPacketSize, "header length out of range")
                invariant(available < 1 + header.length, "incomplete although the whole frame is there")
            } else {
                invariant(available < 5, "no header although \(available) bytes are there")
            }
            return
        case .invalidLength(let type, let length):
            invariant(available >= 5, "invalidLength with \(available) bytes")
            invariant(type == bytes[offset], "invalidLength type mismatch")
            invariant(length == be32(bytes, offset + 1), "invalidLength length is not the wire length")
            invariant(length < 4 || length > maxPacketSize, "invalidLength for a valid length \(length)")
            return
        }
        invariant(frames <= bytes.count / 5, "more frames than the buffer can hold")
    }
}

private func checkStartupScan(_ bytes: UnsafeRawBufferPointer) {
    switch StartupScanner.scan(bytes) {
    case .packet(let length):
        invariant(bytes.count >= 4 && length == be32(bytes, 0), "startup length is not the wire length")
        invariant(length >= 8 && length <= StartupScanner.maxStartupPacketLength, "startup length out of range")
        invariant(length <= bytes.count, "startup packet beyond buffer")
        // StartupPacket.decode is only ever called on such a packet: it must not trap.
        _ = try? StartupPacket.decode(UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
    case .incomplete:
        if bytes.count >= 4 {
            let length = be32(bytes, 0)
            invariant(length >= 8 && length <= StartupScanner.maxStartupPacketLength && bytes.count < length,
                      "startup incomplete for length \(length) with \(bytes.count) bytes")
        }
    case .invalidLength(let length):
        invariant(bytes.count >= 4 && length == be32(bytes, 0), "startup invalid length mismatch")
        invariant(length < 8 || length > StartupScanner.maxStartupPacketLength, "startup invalidLength for \(length)")
    }
}

/// Reads a payload the way the pooler's handlers do (MessageReader; ErrorFields for E/N):
/// nothing may trap and the reader must stay inside the payload.
private func readPayload(type: UInt8, _ payload: UnsafeRawBufferPointer) {
    if type == UInt8(ascii: "E") || type == UInt8(ascii: "N") {
        _ = ErrorFields.parse(payload)
    }
    var reader = MessageReader(payload)
    var steps = 0
    while !reader.isAtEnd && steps < 64 {
        let before = reader.offset
        switch (Int(payload[reader.offset]) &+ steps) % 6 {
        case 0: _ = reader.uint8()
        case 1: _ = reader.int16()
        case 2: _ = reader.int32()
        case 3: if reader.cString() == nil { _ = reader.rest() }
        case 4: _ = reader.bytes(count: Int(payload[before]) - 128)
        default:
            if reader.bytes(count: reader.remaining + 1) != nil { invariant(false, "bytes(count:) past the end") }
            _ = reader.uint8()
        }
        invariant(reader.offset <= payload.count, "reader offset \(reader.offset) beyond payload \(payload.count)")
        invariant(reader.offset >= before, "reader moved backwards")
        steps += 1
    }
}

/// MessageWriter frames scan back as exactly one frame of the written length.
private func roundTrip(_ buffer: [UInt8], maxPacketSize: Int) {
    guard let type = buffer.first else { return }
    var writer = MessageWriter()
    writer.begin(type)
    writer.raw(buffer.dropFirst())
    writer.end()
    let written = writer.bytes
    written.withUnsafeBytes { bytes in
        let expectedLength = buffer.count - 1 + 4
        switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
        case .frame(let frame):
            invariant(frame.type == type && frame.length == expectedLength && frame.end == bytes.count,
                      "written frame scanned as \(frame)")
        case .invalidLength(_, let length):
            invariant(length == expectedLength && length > maxPacketSize, "written frame rejected: \(length)")
        case .incomplete:
            invariant(false, "written frame incomplete")
        }
        // Split anywhere: the prefix is incomplete, never a different frame.
        let cut = Int(type) % bytes.count
        switch FrameScanner.scan(UnsafeRawBufferPointer(rebasing: bytes[0..<cut]), from: 0, maxPacketSize: maxPacketSize) {
        case .frame: invariant(false, "prefix of \(cut) bytes scanned as a whole frame")
        default: break
        }
    }
}

@_cdecl("FuzzFrames_main")
public func FuzzFramesMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
