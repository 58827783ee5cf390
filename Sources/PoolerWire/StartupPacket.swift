/// A decoded startup-phase packet.
public enum StartupPacket: Equatable, Sendable {
    case startup(parameters: [(String, String)])
    case sslRequest
    case gssEncRequest
    case cancel(processID: Int32, secretKey: Int32)
    case unsupportedProtocol(UInt32)

    public static func == (lhs: StartupPacket, rhs: StartupPacket) -> Bool {
        switch (lhs, rhs) {
        case let (.startup(a), .startup(b)):
            return a.map { $0.0 } == b.map { $0.0 } && a.map { $0.1 } == b.map { $0.1 }
        case (.sslRequest, .sslRequest), (.gssEncRequest, .gssEncRequest): return true
        case let (.cancel(p1, s1), .cancel(p2, s2)): return p1 == p2 && s1 == s2
        case let (.unsupportedProtocol(a), .unsupportedProtocol(b)): return a == b
        default: return false
        }
    }

    public enum DecodeError: Error, Equatable {
        case malformed(String)
    }

    /// Decodes one whole packet (length included), as found by `StartupScanner`.
    public static func decode(_ packet: UnsafeRawBufferPointer) throws(DecodeError) -> StartupPacket {
        var reader = MessageReader(packet, offset: 4)
        guard let rawCode = reader.int32() else { throw .malformed("startup packet too short") }
        let code = UInt32(bitPattern: rawCode)
        switch code {
        case StartupCode.sslRequest:
            return .sslRequest
        case StartupCode.gssEncRequest:
            return .gssEncRequest
        case StartupCode.cancelRequest:
            guard let pid = reader.int32(), let key = reader.int32() else {
                throw .malformed("cancel request too short")
            }
            return .cancel(processID: pid, secretKey: key)
        case StartupCode.protocol3:
            var parameters: [(String, String)] = []
            while true {
                guard let key = reader.cString() else { throw .malformed("unterminated startup parameter") }
                if key.isEmpty { break }
                guard let value = reader.cString() else { throw .malformed("unterminated startup parameter value") }
                parameters.append((key, value))
            }
            return .startup(parameters: parameters)
        default:
            return .unsupportedProtocol(code)
        }
    }
}
