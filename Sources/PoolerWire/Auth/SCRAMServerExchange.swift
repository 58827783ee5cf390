/// The pooler's side of SCRAM-SHA-256 (RFC 5802, RFC 7677) when a client
/// logs in to it: feed the client's SASLInitialResponse data to
/// `receiveClientFirst` and send the result in AuthenticationSASLContinue;
/// feed the SASLResponse data to `receiveClientFinal` and send the result in
/// AuthenticationSASLFinal. Any thrown error ends the exchange.
///
/// Channel binding: with `channelBindingData` set (a TLS connection's
/// tls-server-end-point hash) the pooler offers `SCRAM-SHA-256-PLUS` and accepts
/// `p=tls-server-end-point`, checking the client's `c=` against it; a `y,,` header
/// is then refused, since the client claims the server offered no binding
/// (a downgrade). Without it, `n,,` and `y,,` are accepted and `p=` refused.
public struct SCRAMServerExchange: Sendable {
    public static let mechanism = "SCRAM-SHA-256"
    /// Raw bytes of the server's part of the nonce, as PostgreSQL (`SCRAM_RAW_NONCE_LEN`).
    public static let serverNonceLength = 18

    private enum State: Sendable {
        case awaitingClientFirst
        case awaitingClientFinal(gs2Header: [UInt8], clientFirstBare: [UInt8], serverFirst: [UInt8],
                                 nonce: [UInt8])
        case succeeded
        case failed
    }

    public let secret: SCRAMSecret
    private var state: State = .awaitingClientFirst
    /// tls-server-end-point data of the client's TLS connection: -PLUS is on offer.
    public var channelBindingData: [UInt8]?
    /// True once a client used channel binding (p=) successfully.
    public private(set) var usedChannelBinding = false
    private let fixedServerNonce: [UInt8]?
    /// A mock exchange for a user that does not exist: it looks like a real
    /// one to the client and always fails at the proof, so the client cannot
    /// tell unknown users from wrong passwords.
    private let isMock: Bool

    /// The client's ClientKey (ClientProof XOR ClientSignature), known once
    /// `receiveClientFinal` has succeeded. With `serverKey` it lets the pooler
    /// log in to PostgreSQL as this user (`SCRAMClientExchange(clientKey:serverKey:)`)
    /// without ever knowing the password.
    public private(set) var clientKey: [UInt8]?

    /// The user's ServerKey, from the secret.
    public var serverKey: [UInt8] { secret.serverKey }

    /// True once the client has proven it knows the password.
    public var isAuthenticated: Bool {
        if case .succeeded = state { return true }
        return false
    }

    public init(secret: SCRAMSecret) {
        self.init(secret: secret, serverNonce: nil, isMock: false)
    }

    /// For a user whose stored password is plaintext: a secret is made with a
    /// random salt and `iterations` (scram_iterations, 4096 by default), as PgBouncer does.
    public init(plaintextPassword: String, iterations: Int = SCRAMSecret.defaultIterations) {
        self.init(secret: SCRAMSecret.make(password: plaintextPassword,
                                           salt: Crypto.randomBytes(count: SCRAMSecret.defaultSaltLength),
                                           iterations: max(1, iterations)))
    }

    /// Fixed server nonce (the printable text appended to the client's nonce), for tests.
    init(secret: SCRAMSecret, serverNonce: String) {
        self.init(secret: secret, serverNonce: Array(serverNonce.utf8), isMock: false)
    }

    private init(secret: SCRAMSecret, serverNonce: [UInt8]?, isMock: Bool) {
        self.secret = secret
        self.fixedServerNonce = serverNonce
        self.isMock = isMock
    }

    /// An exchange for a user that does not exist (or has no usable secret),
    /// in the manner of PostgreSQL's mock authentication: the salt is derived
    /// from the user name and a per-process random value, so repeated
    /// attempts for the same name see the same salt, and the proof always
    /// fails with `.authenticationFailed`.
    public static func mock(user: String) -> SCRAMServerExchange {
        let salt = Array(Crypto.sha256(Array(user.utf8) + mockNonce).prefix(SCRAMSecret.defaultSaltLength))
        let secret = SCRAMSecret(iterations: SCRAMSecret.defaultIterations, salt: salt,
                                 storedKey: Crypto.randomBytes(count: Crypto.sha256Length),
                                 serverKey: Crypto.randomBytes(count: Crypto.sha256Length))
        return SCRAMServerExchange(secret: secret, serverNonce: nil, isMock: true)
    }

    private static let mockNonce = Crypto.randomBytes(count: 32)

    /// Takes client-first-message, returns server-first-message
    /// (`r=<client nonce><server nonce>,s=<salt>,i=<iterations>`).
    public mutating func receiveClientFirst(_ message: [UInt8]) throws -> [UInt8] {
        guard case .awaitingClientFirst = state else { state = .failed; throw SCRAMError.unexpectedMessage }
        do {
            return try handleClientFirst(message[...])
        } catch {
            state = .failed
            throw error
        }
    }

    /// Takes client-final-message, checks channel binding, nonce and proof,
    /// returns server-final-message (`v=<ServerSignature>`).
    public mutating func receiveClientFinal(_ message: [UInt8]) throws -> [UInt8] {
        guard case .awaitingClientFinal(let gs2Header, let clientFirstBare, let serverFirst, let nonce) = state
        else { state = .failed; throw SCRAMError.unexpectedMessage }
        do {
            return try handleClientFinal(message[...], gs2Header: gs2Header, clientFirstBare: clientFirstBare,
                                         serverFirst: serverFirst, nonce: nonce)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func handleClientFirst(_ message: ArraySlice<UInt8>) throws -> [UInt8] {
        let fields = SCRAMParsing.fields(message)
        guard fields.count >= 4 else { throw SCRAMError.malformedMessage("client-first-message is incomplete") }

        // gs2-cbind-flag
        let flag = fields[0]
        var bindingData: [UInt8] = []
        if flag.first == UInt8(ascii: "p") {
            guard let data = channelBindingData else { throw SCRAMError.channelBindingNotSupported }
            guard flag.elementsEqual(Array("p=tls-server-end-point".utf8)) else {
                throw SCRAMError.malformedMessage("unsupported channel-binding type")
            }
            bindingData = data
            usedChannelBinding = true
        } else if flag.elementsEqual([UInt8(ascii: "y")]) {
            // The client supports binding but believes we offered none: a downgrade.
            if channelBindingData != nil { throw SCRAMError.channelBindingMismatch }
        } else if !flag.elementsEqual([UInt8(ascii: "n")]) {
            throw SCRAMError.malformedMessage("unexpected channel-binding flag")
        }
        // authzid
        if !fields[1].isEmpty {
            if fields[1].starts(with: Array("a=".utf8)) { throw SCRAMError.authorizationIdentityNotSupported }
            throw SCRAMError.malformedMessage("expected authorization identity or empty field")
        }
        // Both header fields are followed by a comma: the header runs to just past the second one.
        let headerEnd = fields[1].endIndex + 1
        let gs2Header = Array(message[message.startIndex..<headerEnd]) + bindingData
        let bare = message[headerEnd...]

        let bareFields = Array(fields[2...])
        if bareFields[0].starts(with: Array("m=".utf8)) { throw SCRAMError.unsupportedMandatoryExtension }
        // The user name is ignored, as in PostgreSQL: the startup packet's user is the one that counts.
        _ = try SCRAMParsing.value(of: "n", in: bareFields[0])
        let clientNonce = try SCRAMParsing.value(of: "r", in: bareFields[1])
        guard SCRAMParsing.isValidNonce(clientNonce) else {
            throw SCRAMError.malformedMessage("invalid nonce")
        }
        for extensionField in bareFields.dropFirst(2) where !SCRAMParsing.isAttribute(extensionField) {
            throw SCRAMError.malformedMessage("malformed extension attribute")
        }

        let serverNonce = fixedServerNonce
            ?? Crypto.base64EncodeBytes(Crypto.randomBytes(count: SCRAMServerExchange.serverNonceLength))
        let nonce = Array(clientNonce) + serverNonce
        var serverFirst = Array("r=".utf8) + nonce
        serverFirst += Array(",s=".utf8) + Crypto.base64EncodeBytes(secret.salt)
        serverFirst += Array(",i=\(secret.iterations)".utf8)
        state = .awaitingClientFinal(gs2Header: gs2Header, clientFirstBare: Array(bare),
                                     serverFirst: serverFirst, nonce: nonce)
        return serverFirst
    }

    private mutating func handleClientFinal(_ message: ArraySlice<UInt8>, gs2Header: [UInt8],
                                            clientFirstBare: [UInt8], serverFirst: [UInt8],
                                            nonce: [UInt8]) throws -> [UInt8] {
        let fields = SCRAMParsing.fields(message)
        guard fields.count >= 3 else { throw SCRAMError.malformedMessage("client-final-message is incomplete") }

        let channelBinding = try SCRAMParsing.value(of: "c", in: fields[0])
        guard let binding = Crypto.base64Decode(bytes: channelBinding) else {
            throw SCRAMError.malformedMessage("invalid channel-binding data")
        }
        // c= is the gs2 header followed by the binding data (none without binding:
        // "biws" for n,, and "eSws" for y,,).
        guard binding == gs2Header else { throw SCRAMError.channelBindingMismatch }

        let finalNonce = try SCRAMParsing.value(of: "r", in: fields[1])
        guard finalNonce.elementsEqual(nonce) else { throw SCRAMError.nonceMismatch }

        let proofField = fields[fields.count - 1]
        for extensionField in fields[2..<(fields.count - 1)] where !SCRAMParsing.isAttribute(extensionField) {
            throw SCRAMError.malformedMessage("malformed extension attribute")
        }
        let proofText = try SCRAMParsing.value(of: "p", in: proofField)
        guard let proof = Crypto.base64Decode(bytes: proofText), proof.count == Crypto.sha256Length else {
            throw SCRAMError.malformedMessage("malformed proof in client-final-message")
        }

        // client-final-message-without-proof: everything before ",p=".
        let withoutProof = message[message.startIndex..<(proofField.startIndex - 1)]
        let authMessage = clientFirstBare + [SCRAMParsing.comma] + serverFirst + [SCRAMParsing.comma]
            + Array(withoutProof)
        let clientSignature = secret.storedKeyMAC.authenticate(authMessage)
        let candidateClientKey = SCRAMParsing.xor(proof, clientSignature)
        let matches = Crypto.constantTimeEquals(Crypto.sha256(candidateClientKey), secret.storedKey)
        guard matches && !isMock else { throw SCRAMError.authenticationFailed }

        clientKey = candidateClientKey
        state = .succeeded
        let serverSignature = secret.serverKeyMAC.authenticate(authMessage)
        return Array("v=".utf8) + Crypto.base64EncodeBytes(serverSignature)
    }
}
