/// Why a SCRAM exchange stopped. Descriptions follow PostgreSQL's wording
/// where it has one, so they can go into an ErrorResponse as they are.
public enum SCRAMError: Error, Sendable, Hashable {
    /// The message does not follow RFC 5802's grammar; the payload says where.
    case malformedMessage(String)
    /// The client asked for channel binding (`p=`), which is not offered.
    case channelBindingNotSupported
    /// The `c=` attribute of client-final-message does not repeat the gs2 header.
    case channelBindingMismatch
    /// The client sent an authorization identity (`a=`), which PostgreSQL does not support.
    case authorizationIdentityNotSupported
    /// A mandatory extension (`m=`) was sent.
    case unsupportedMandatoryExtension
    /// The nonce in the final message is not the one the exchange agreed on,
    /// or the server's nonce does not extend the client's.
    case nonceMismatch
    /// The client's proof is wrong: wrong password (or an unknown user).
    case authenticationFailed
    /// The server's signature is wrong: it does not know the password.
    case serverSignatureMismatch
    /// The server sent `e=<value>`.
    case serverError(String)
    /// A message arrived in a state that does not expect it.
    case unexpectedMessage
}

extension SCRAMError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .malformedMessage(let detail): return "malformed SCRAM message: \(detail)"
        case .channelBindingNotSupported:
            return "malformed SCRAM message: the client selected SCRAM-SHA-256 without channel binding, "
                + "but the SCRAM message includes channel binding data"
        case .channelBindingMismatch: return "SCRAM channel binding check failed"
        case .authorizationIdentityNotSupported:
            return "client uses authorization identity, but it is not supported"
        case .unsupportedMandatoryExtension: return "unsupported SCRAM extension"
        case .nonceMismatch: return "SCRAM nonce mismatch"
        case .authenticationFailed: return "password authentication failed"
        case .serverSignatureMismatch: return "incorrect server signature"
        case .serverError(let value): return "error received from server in SCRAM exchange: \(value)"
        case .unexpectedMessage: return "unexpected SCRAM message for the exchange's state"
        }
    }
}

/// Splitting SCRAM messages (`attr=value,attr=value,...`) into attributes.
enum SCRAMParsing {
    static let comma = UInt8(ascii: ",")
    static let equals = UInt8(ascii: "=")

    /// Fields between commas, empty ones kept.
    static func fields(_ message: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        // By hand: the generic split costs a few thousand instructions per login.
        var result: [ArraySlice<UInt8>] = []
        result.reserveCapacity(4)
        var start = message.startIndex
        var index = start
        while index < message.endIndex {
            if message[index] == comma {
                result.append(message[start..<index])
                start = index + 1
            }
            index += 1
        }
        result.append(message[start..<message.endIndex])
        return result
    }

    /// The value of `name=value`, or a malformed error naming what was expected.
    static func value(of name: Character, in field: ArraySlice<UInt8>?) throws -> ArraySlice<UInt8> {
        guard let field, field.count >= 2,
              field[field.startIndex] == UInt8(ascii: name.unicodeScalars.first!),
              field[field.startIndex + 1] == equals
        else { throw SCRAMError.malformedMessage("expected attribute \"\(name)\"") }
        return field.dropFirst(2)
    }

    /// True when `field` is some attribute `x=...` with `x` a letter.
    static func isAttribute(_ field: ArraySlice<UInt8>) -> Bool {
        guard field.count >= 2 else { return false }
        let name = field[field.startIndex]
        return ((UInt8(ascii: "a")...UInt8(ascii: "z")).contains(name)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(name))
            && field[field.startIndex + 1] == equals
    }

    /// RFC 5802 `printable`: %x21-2B / %x2D-7E (no comma), at least one.
    static func isValidNonce(_ nonce: ArraySlice<UInt8>) -> Bool {
        !nonce.isEmpty && nonce.allSatisfy { (0x21...0x7e).contains($0) && $0 != comma }
    }

    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        precondition(a.count == b.count)
        return (0..<a.count).map { a[$0] ^ b[$0] }
    }
}
