import COpenSSL

/// A TLS failure: configuration, handshake, verification or record-layer error,
/// with the text of OpenSSL's error queue.
public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Bad settings or files when building a `TLSContext`.
        case configuration
        /// The peer's certificate failed verification (chain, expiry, hostname).
        case verification
        /// Any other protocol failure (alerts, no shared protocol or cipher, bad records).
        case protocolError
        /// The peer closed the transport without close_notify, or an internal error.
        case other
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "TLS error: \(message)" }

    /// Drains OpenSSL's (per-thread) error queue into one line of text; "" when empty.
    static func drainQueue() -> String {
        var text = ""
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                      UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                      UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                      UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let line = withUnsafeMutableBytes(of: &buffer) { raw -> String in
                let chars = raw.bindMemory(to: CChar.self)
                ERR_error_string_n(code, chars.baseAddress, chars.count)
                return String(cString: chars.baseAddress!)
            }
            if !text.isEmpty { text += "; " }
            text += line
        }
        return text
    }

    /// An error from the queue, or `fallback` when the queue is empty.
    static func fromQueue(_ kind: Kind, _ fallback: String) -> TLSError {
        let queued = drainQueue()
        return TLSError(kind, queued.isEmpty ? fallback : "\(fallback): \(queued)")
    }
}
