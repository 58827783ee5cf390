/// The pooler's side of SCRAM-SHA-256 when it logs in to PostgreSQL:
/// send `clientFirstMessage()` in SASLInitialResponse (mechanism
/// `SCRAM-SHA-256`), answer AuthenticationSASLContinue with
/// `receiveServerFirst`, and check AuthenticationSASLFinal with
/// `verifyServerFinal` before trusting AuthenticationOk.
///
/// Two kinds of credentials: a plaintext password, or the ClientKey and
/// ServerKey recovered from the client's own SCRAM login to the pooler
/// (PgBouncer's SCRAM pass-through). The keys only work when PostgreSQL holds
/// the same verifier (same salt and iterations) that the client logged in with.
public struct SCRAMClientExchange: Sendable {
    public static let mechanism = "SCRAM-SHA-256"
    /// Raw bytes of the client nonce, as libpq (`SCRAM_RAW_NONCE_LEN`).
    public static let clientNonceLength = 18
    /// libpq's gs2 header without channel binding; `c=` carries its base64, "biws".
    static let gs2Header = Array("n,,".utf8)

    private enum Credentials: Sendable {
        case password([UInt8])
        case keys(clientKey: [UInt8], serverKey: [UInt8])
    }

    private enum State: Sendable {
        case initial
        case sentClientFirst
        case sentClientFinal(expectedServerSignature: [UInt8])
        case failed
    }

    private let credentials: Credentials
    private let clientNonce: [UInt8]
    /// `saslname` for `n=`; empty except in tests replaying RFC 7677.
    private let username: [UInt8]
    private var state: State = .initial

    /// Upper bound on the iteration count the server may ask for. PBKDF2 runs
    /// on the caller's thread, so a huge count from a misconfigured server
    /// would stall it; libpq accepts any positive `Int32`, and so does the default.
    public var maximumIterations = Int(Int32.max)

    /// The salt and iteration count the server sent (known after `receiveServerFirst`).
    public private(set) var serverSalt: [UInt8]?
    public private(set) var serverIterations: Int?

    /// Password used as raw UTF-8 bytes (no SASLprep; see `SCRAMSecret.make`).
    public init(password: String) {
        self.init(credentials: .password(Array(password.utf8)), nonce: nil)
    }

    /// Pass-through: keys recovered by `SCRAMServerExchange`.
    public init(clientKey: [UInt8], serverKey: [UInt8]) {
        self.init(credentials: .keys(clientKey: clientKey, serverKey: serverKey), nonce: nil)
    }

    /// Fixed client nonce (and optionally a user name for `n=`), for tests.
    init(password: String, nonce: String, username: String = "") {
        self.init(credentials: .password(Array(password.utf8)), nonce: Array(nonce.utf8), username: username)
    }

    init(clientKey: [UInt8], serverKey: [UInt8], nonce: String) {
        self.init(credentials: .keys(clientKey: clientKey, serverKey: serverKey), nonce: Array(nonce.utf8))
    }

    private init(credentials: Credentials, nonce: [UInt8]?, username: String = "") {
        self.credentials = credentials
        // RFC 5802 saslname: "," and "=" are escaped.
        var escaped = [UInt8]()
        for byte in username.utf8 {
            switch byte {
            case UInt8(ascii: ","): escaped += Array("=2C".utf8)
            case UInt8(ascii: "="): escaped += Array("=3D".utf8)
            default: escaped.append(byte)
            }
        }
        self.username = escaped
        self.clientNonce = nonce
            ?? Crypto.base64EncodeBytes(Crypto.randomBytes(count: SCRAMClientExchange.clientNonceLength))
    }

    /// client-first-message: `n,,n=,r=<nonce>`. Like libpq, the user name is
    /// left empty: PostgreSQL takes the user from the startup packet.
    public mutating func clientFirstMessage() -> [UInt8] {
        state = .sentClientFirst
        return SCRAMClientExchange.gs2Header + clientFirstBare
    }

    private var clientFirstBare: [UInt8] { Array("n=".utf8) + username + Array(",r=".utf8) + clientNonce }

    /// Takes server-first-message, returns client-final-message with the proof.
    public mutating func receiveServerFirst(_ message: [UInt8]) throws -> [UInt8] {
        guard case .sentClientFirst = state else { state = .failed; throw SCRAMError.unexpectedMessage }
        do {
            return try handleServerFirst(message)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func handleServerFirst(_ message: [UInt8]) throws -> [UInt8] {
        let fields = SCRAMParsing.fields(message[...])
        guard let first = fields.first else { throw SCRAMError.malformedMessage("empty server-first-message") }
        if first.starts(with: Array("m=".utf8)) { throw SCRAMError.unsupportedMandatoryExtension }
        if first.starts(with: Array("e=".utf8)) {
            throw SCRAMError.serverError(String(decoding: first.dropFirst(2), as: UTF8.self))
        }
        guard fields.count >= 3 else { throw SCRAMError.malformedMessage("server-first-message is incomplete") }
        let nonce = try SCRAMParsing.value(of: "r", in: first)
        guard SCRAMParsing.isValidNonce(nonce) else { throw SCRAMError.malformedMessage("invalid nonce") }
        guard nonce.count > clientNonce.count, nonce.starts(with: clientNonce) else {
            throw SCRAMError.nonceMismatch
        }
        let saltText = try SCRAMParsing.value(of: "s", in: fields[1])
        guard let salt = Crypto.base64Decode(bytes: saltText), !salt.isEmpty else {
            throw SCRAMError.malformedMessage("invalid salt")
        }
        let iterationText = try SCRAMParsing.value(of: "i", in: fields[2])
        guard let iterations = SCRAMSecret.parsePositiveInt(iterationText) else {
            throw SCRAMError.malformedMessage("invalid iteration count")
        }
        guard iterations <= maximumIterations else {
            throw SCRAMError.malformedMessage("iteration count \(iterations) exceeds the limit")
        }
        for extensionField in fields.dropFirst(3) where !SCRAMParsing.isAttribute(extensionField) {
            throw SCRAMError.malformedMessage("malformed extension attribute")
        }
        serverSalt = salt
        serverIterations = iterations

        let clientKey: [UInt8]
        let serverKey: [UInt8]
        switch credentials {
        case .password(let password):
            let keys = SCRAMKeys(saltedPassword: Crypto.pbkdf2SHA256(password: password, salt: salt,
                                                                      iterations: iterations))
            clientKey = keys.clientKey
            serverKey = keys.serverKey
        case .keys(let passedClientKey, let passedServerKey):
            clientKey = passedClientKey
            serverKey = passedServerKey
        }

        let withoutProof = Array("c=".utf8) + Crypto.base64EncodeBytes(SCRAMClientExchange.gs2Header)
            + Array(",r=".utf8) + Array(nonce)
        let authMessage = clientFirstBare + [SCRAMParsing.comma] + message + [SCRAMParsing.comma] + withoutProof
        let storedKey = Crypto.sha256(clientKey)
        let clientSignature = Crypto.hmacSHA256(key: storedKey, data: authMessage)
        guard clientKey.count == clientSignature.count else {
            throw SCRAMError.malformedMessage("client key has the wrong length")
        }
        let proof = SCRAMParsing.xor(clientKey, clientSignature)
        state = .sentClientFinal(expectedServerSignature: Crypto.hmacSHA256(key: serverKey, data: authMessage))
        return withoutProof + Array(",p=".utf8) + Crypto.base64EncodeBytes(proof)
    }

    /// Checks server-final-message: `v=<ServerSignature>` must match (compared
    /// in constant time); `e=<error>` is reported as `.serverError`.
    public func verifyServerFinal(_ message: [UInt8]) throws {
        guard case .sentClientFinal(let expected) = state else { throw SCRAMError.unexpectedMessage }
        let fields = SCRAMParsing.fields(message[...])
        guard let first = fields.first, !first.isEmpty else {
            throw SCRAMError.malformedMessage("empty server-final-message")
        }
        if first.starts(with: Array("e=".utf8)) {
            throw SCRAMError.serverError(String(decoding: first.dropFirst(2), as: UTF8.self))
        }
        let verifier = try SCRAMParsing.value(of: "v", in: first)
        guard let signature = Crypto.base64Decode(bytes: verifier), signature.count == Crypto.sha256Length else {
            throw SCRAMError.malformedMessage("malformed server signature")
        }
        guard Crypto.constantTimeEquals(signature, expected) else { throw SCRAMError.serverSignatureMismatch }
    }
}
