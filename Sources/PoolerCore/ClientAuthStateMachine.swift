import PoolerConfig
import PoolerWire

/// Authenticates one client against its auth_file secret, per auth_type.
/// `md5` uses SCRAM when the stored secret is a SCRAM verifier, as PostgreSQL does.
public struct ClientAuthStateMachine {
    public enum Action {
        /// Send these bytes (an authentication request or SASL continuation) and wait.
        case send([UInt8])
        /// Authenticated: send AuthenticationOk (and, for SASL, `final` before it).
        case accept(final: [UInt8]?)
        case fail(message: String, code: String)
    }

    private enum Phase {
        case start
        case cleartext
        case md5(salt: [UInt8])
        case scramFirst(SCRAMServerExchange)
        case scramFinal(SCRAMServerExchange)
        case done
    }

    public let user: String
    private let authType: AuthType
    private let secret: String?
    private var phase: Phase = .start
    /// Keys recovered from a SCRAM login against a stored verifier, for SCRAM pass-through.
    public private(set) var recoveredKeys: (clientKey: [UInt8], serverKey: [UInt8])?
    /// When no secret exists, the exchange runs to the end against a random one so a
    /// missing user looks exactly like a wrong password.
    private let userKnown: Bool

    /// tls-server-end-point data when the client came over TLS: SCRAM-SHA-256-PLUS
    /// is offered (channel binding), as PostgreSQL does.
    private let channelBinding: [UInt8]?

    /// PBKDF2 iterations for a secret made from a plaintext password (scram_iterations).
    private let scramIterations: Int
    /// `secret` parsed as a SCRAM verifier (nil: not one), parsed once here unless the
    /// caller had it cached.
    private let verifier: SCRAMSecret?

    /// `verifier`: `secret` already parsed as a SCRAM verifier (a login-time cache), so
    /// it is not parsed (base64) again per login.
    public init(user: String, authType: AuthType, secret: String?, channelBinding: [UInt8]? = nil,
                scramIterations: Int = SCRAMSecret.defaultIterations, verifier: SCRAMSecret? = nil) {
        self.verifier = verifier ?? secret.flatMap { SCRAMSecret.parse($0) }
        self.scramIterations = scramIterations
        self.user = user
        self.authType = authType
        self.secret = secret
        self.userKnown = secret != nil
        self.channelBinding = channelBinding
    }

    private var failure: Action {
        .fail(message: "password authentication failed for user \"\(user)\"", code: SQLState.invalidPassword)
    }

    public mutating func start() -> Action {
        var writer = MessageWriter()
        switch authType {
        case .trust, .any:
            phase = .done
            return .accept(final: nil)
        case .plain:
            phase = .cleartext
            writer.authentication(AuthenticationCode.cleartextPassword)
        case .md5:
            if verifier != nil {
                return startSCRAM(&writer)
            }
            let salt = Crypto.randomBytes(count: 4)
            phase = .md5(salt: salt)
            writer.authentication(AuthenticationCode.md5Password, payload: salt)
        case .scramSHA256:
            return startSCRAM(&writer)
        default:
            phase = .done
            return .fail(message: "auth_type \(authType.rawValue) is not supported", code: SQLState.featureNotSupported)
        }
        return .send(writer.bytes)
    }

    private mutating func startSCRAM(_ writer: inout MessageWriter) -> Action {
        let exchange: SCRAMServerExchange
        if let verifier {
            exchange = SCRAMServerExchange(secret: verifier)
        } else if let secret, !MD5Password.isMD5Hash(secret) {
            exchange = SCRAMServerExchange(plaintextPassword: secret, iterations: scramIterations)
        } else {
            // Unknown user, or an md5 hash that cannot serve SCRAM: fail at the end.
            exchange = SCRAMServerExchange.mock(user: user)
        }
        var offered = exchange
        offered.channelBindingData = channelBinding
        phase = .scramFirst(offered)
        writer.authenticationSASL(mechanisms: channelBinding == nil ? ["SCRAM-SHA-256"]
                                                                    : ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
        return .send(writer.bytes)
    }

    /// The payload of a client 'p' message.
    public mutating func received(_ payload: UnsafeRawBufferPointer) -> Action {
        var reader = MessageReader(payload)
        switch phase {
        case .cleartext:
            phase = .done
            guard let password = reader.cString(), let secret, userKnown else { return failure }
            return PasswordCheck.matches(password: password, user: user, secret: secret) ? .accept(final: nil) : failure
        case .md5(let salt):
            phase = .done
            guard let response = reader.cString(), let secret, userKnown else { return failure }
            return MD5Password.verify(response: response, storedSecret: secret, user: user, salt: salt)
                ? .accept(final: nil) : failure
        case .scramFirst(var exchange):
            guard let mechanism = reader.cString(),
                  mechanism == "SCRAM-SHA-256" || (mechanism == "SCRAM-SHA-256-PLUS" && channelBinding != nil),
                  let length = reader.int32(), length >= 0, let data = reader.bytes(count: Int(length)) else {
                phase = .done
                return .fail(message: "malformed SASL initial response", code: SQLState.protocolViolation)
            }
            // The mechanism and the gs2 flag must agree: -PLUS uses p=, plain SCRAM does not.
            let usesBinding = data.first == UInt8(ascii: "p")
            if usesBinding != (mechanism == "SCRAM-SHA-256-PLUS") {
                phase = .done
                return .fail(message: "channel binding does not match the SASL mechanism \(mechanism)",
                             code: SQLState.protocolViolation)
            }
            do {
                let serverFirst = try exchange.receiveClientFirst(data)
                phase = .scramFinal(exchange)
                var writer = MessageWriter()
                writer.authentication(AuthenticationCode.saslContinue, payload: serverFirst)
                return .send(writer.bytes)
            } catch {
                phase = .done
                return .fail(message: "malformed SCRAM message: \(error)", code: SQLState.protocolViolation)
            }
        case .scramFinal(var exchange):
            phase = .done
            do {
                let serverFinal = try exchange.receiveClientFinal(reader.rest())
                guard userKnown else { return failure }
                if let clientKey = exchange.clientKey, verifier != nil {
                    recoveredKeys = (clientKey, exchange.serverKey)
                }
                var writer = MessageWriter()
                writer.authentication(AuthenticationCode.saslFinal, payload: serverFinal)
                return .accept(final: writer.bytes)
            } catch {
                return failure
            }
        case .start, .done:
            phase = .done
            return .fail(message: "unexpected password message", code: SQLState.protocolViolation)
        }
    }
}

/// Checks a cleartext password against a stored secret of any kind.
public enum PasswordCheck {
    public static func matches(password: String, user: String, secret: String) -> Bool {
        if let verifier = SCRAMSecret.parse(secret) {
            let computed = SCRAMSecret.make(password: password, salt: verifier.salt, iterations: verifier.iterations)
            return Crypto.constantTimeEquals(computed.storedKey, verifier.storedKey)
        }
        if MD5Password.isMD5Hash(secret) {
            return Crypto.constantTimeEquals(Array(MD5Password.encrypt(user: user, password: password).utf8), Array(secret.utf8))
        }
        return Crypto.constantTimeEquals(Array(password.utf8), Array(secret.utf8))
    }
}
