/// Finds complete protocol frames (type byte + big-endian Int32 length) in a byte
/// region without copying. A frame is reported as its offsets in the region, so the
/// caller forwards or decodes it in place.
public struct Frame: Equatable, Sendable {
    /// Message type byte (`FrontendMessageID`/`BackendMessageID` raw value).
    public var type: UInt8
    /// Offset of the type byte in the scanned region.
    public var start: Int
    /// Length as declared on the wire: includes the 4 length bytes, not the type byte.
    public var length: Int
    /// Offset just past the frame.
    @inlinable public var end: Int { start + 1 + length }
    /// Offset of the payload (after type and length).
    @inlinable public var payloadStart: Int { start + 5 }
    @inlinable public var payloadLength: Int { length - 4 }

    @inlinable public init(type: UInt8, start: Int, length: Int) {
        self.type = type
        self.start = start
        self.length = length
    }
}

public enum FrameScan: Equatable, Sendable {
    /// A whole frame is available.
    case frame(Frame)
    /// More bytes are needed; `header` is set once the 5 header bytes are there, so the
    /// caller can forward a large frame piecewise or grow its buffer.
    case incomplete(header: Frame?)
    /// The declared length is below 4 or above the limit: the peer is broken or hostile.
    case invalidLength(type: UInt8, length: Int)
}

public enum FrameScanner {
    /// Scans the frame starting at `offset` of `bytes`.
    @inlinable
    public static func scan(_ bytes: UnsafeRawBufferPointer, from offset: Int, maxPacketSize: Int) -> FrameScan {
        let available = bytes.count - offset
        if available < 5 { return .incomplete(header: nil) }
        let type = bytes[offset]
        let length = Int(readUInt32(bytes, at: offset + 1))
        if length < 4 || length > maxPacketSize {
            return .invalidLength(type: type, length: length)
        }
        let frame = Frame(type: type, start: offset, length: length)
        if available < 1 + length { return .incomplete(header: frame) }
        return .frame(frame)
    }

    @inlinable
    public static func readUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}

/// Startup-phase packets have no type byte: Int32 length then Int32 code.
public enum StartupScan: Equatable, Sendable {
    case packet(length: Int)
    case incomplete
    case invalidLength(Int)
}

public enum StartupScanner {
    /// PostgreSQL caps the startup packet at 10000 bytes (MAX_STARTUP_PACKET_LENGTH);
    /// SSLRequest/CancelRequest/GSSENCRequest are 8/16/8 bytes, so one bound serves all.
    public static let maxStartupPacketLength = 10000

    @inlinable
    public static func scan(_ bytes: UnsafeRawBufferPointer) -> StartupScan {
        if bytes.count < 4 { return .incomplete }
        let length = Int(FrameScanner.readUInt32(bytes, at: 0))
        if length < 8 || length > maxStartupPacketLength { return .invalidLength(length) }
        if bytes.count < length { return .incomplete }
        return .packet(length: length)
    }
}
