/// Bounds-checked reader over one message payload. Every accessor returns nil
/// instead of trapping on short or malformed input.
public struct MessageReader {
    public let bytes: UnsafeRawBufferPointer
    /// Where the next read starts (public so the small readers below can be inlined).
    public var offset: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    @inlinable
    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    @inlinable
    public mutating func uint8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func int16() -> Int16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return Int16(bitPattern: UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]))
    }

    public mutating func int32() -> Int32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return Int32(bitPattern: FrameScanner.readUInt32(bytes, at: offset))
    }

    /// A NUL-terminated string; nil when no NUL is found before the end.
    public mutating func cString() -> String? {
        var end = offset
        while end < bytes.count {
            if bytes[end] == 0 {
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self)
                offset = end + 1
                return value
            }
            end += 1
        }
        return nil
    }

    public mutating func bytes(count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// True when the next C string is empty (an unnamed statement or portal), checked
    /// without building a String.
    @inlinable
    public var nextCStringIsEmpty: Bool { offset < bytes.count && bytes[offset] == 0 }

    /// Moves past the next C string; false when it has no terminator.
    @inlinable
    public mutating func skipCString() -> Bool {
        var end = offset
        while end < bytes.count {
            if bytes[end] == 0 {
                offset = end + 1
                return true
            }
            end += 1
        }
        return false
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}

/// The fields of an ErrorResponse/NoticeResponse.
public struct ErrorFields: Sendable, Equatable {
    public var severity: String = ""
    public var code: String = ""
    public var message: String = ""

    public init(severity: String = "", code: String = "", message: String = "") {
        self.severity = severity
        self.code = code
        self.message = message
    }

    /// Parses a payload (after type and length).
    public static func parse(_ payload: UnsafeRawBufferPointer) -> ErrorFields {
        var reader = MessageReader(payload)
        var fields = ErrorFields()
        while let tag = reader.uint8(), tag != 0 {
            guard let value = reader.cString() else { break }
            switch tag {
            case UInt8(ascii: "V"): fields.severity = value
            case UInt8(ascii: "S"): if fields.severity.isEmpty { fields.severity = value }
            case UInt8(ascii: "C"): fields.code = value
            case UInt8(ascii: "M"): fields.message = value
            default: break
            }
        }
        return fields
    }
}
