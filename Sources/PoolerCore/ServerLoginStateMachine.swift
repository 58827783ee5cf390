import PoolerWire

/// What the pooler knows to log in to a server as a user.
public enum ServerCredential: Sendable {
    case none
    case plaintext(String)
    /// A stored "md5..." hash: enough for md5 auth, not for SCRAM or cleartext.
    case md5Hash(String)
    /// Keys recovered from a client's SCRAM login (PgBouncer's SCRAM pass-through).
    case scramKeys(clientKey: [UInt8], serverKey: [UInt8])
}

/// The pooler's side of a server login, from StartupMessage to the first ReadyForQuery.
public struct ServerLoginStateMachine {
    public enum Action {
        case send([UInt8])
        case parameter(name: String, value: String)
        case backendKey(processID: Int32, secretKey: Int32)
        /// ReadyForQuery arrived: the server is logged in.
        case ready
        case fail(message: String, code: String)
        case none
    }

    private let user: String
    private let credential: ServerCredential
    private var scram: SCRAMClientExchange?

    public init(user: String, credential: ServerCredential) {
        self.user = user
        self.credential = credential
    }

    public static func startupMessage(parameters: [(String, String)]) -> [UInt8] {
        var writer = MessageWriter()
        writer.startupMessage(parameters: parameters)
        return writer.bytes
    }

    public mutating func received(type: UInt8, payload: UnsafeRawBufferPointer) -> Action {
        switch type {
        case BackendMessageID.authentication:
            return authentication(payload)
        case BackendMessageID.parameterStatus:
            var reader = MessageReader(payload)
            guard let name = reader.cString(), let value = reader.cString() else {
                return .fail(message: "malformed ParameterStatus from server", code: SQLState.protocolViolation)
            }
            return .parameter(name: name, value: value)
        case BackendMessageID.backendKeyData:
            var reader = MessageReader(payload)
            guard let pid = reader.int32(), let key = reader.int32() else {
                return .fail(message: "malformed BackendKeyData from server", code: SQLState.protocolViolation)
            }
            return .backendKey(processID: pid, secretKey: key)
        case BackendMessageID.readyForQuery:
            return .ready
        case BackendMessageID.errorResponse:
            let fields = ErrorFields.parse(payload)
            return .fail(message: fields.message, code: fields.code.isEmpty ? SQLState.connectionFailure : fields.code)
        case BackendMessageID.noticeResponse, BackendMessageID.negotiateProtocolVersion:
            return .none
        default:
            return .fail(message: "unexpected message '\(Character(Unicode.Scalar(type)))' from server during login",
                         code: SQLState.protocolViolation)
        }
    }

    private mutating func authentication(_ payload: UnsafeRawBufferPointer) -> Action {
        var reader = MessageReader(payload)
        guard let code = reader.int32() else {
            return .fail(message: "malformed authentication request from server", code: SQLState.protocolViolation)
        }
        var writer = MessageWriter()
        switch code {
        case AuthenticationCode.ok:
            return .none
        case AuthenticationCode.cleartextPassword:
            guard case .plaintext(let password) = credential else {
                return .fail(message: "server requested cleartext password but no plaintext password is known for user \"\(user)\"",
                             code: SQLState.invalidPassword)
            }
            writer.passwordMessage(password)
        case AuthenticationCode.md5Password:
            guard let salt = reader.bytes(count: 4) else {
                return .fail(message: "malformed md5 request from server", code: SQLState.protocolViolation)
            }
            let secret: String
            switch credential {
            case .plaintext(let p): secret = p
            case .md5Hash(let h): secret = h
            default:
                return .fail(message: "server requested md5 password but no password is known for user \"\(user)\"",
                             code: SQLState.invalidPassword)
            }
            writer.passwordMessage(MD5Password.response(user: user, passwordOrStoredHash: secret, salt: salt))
        case AuthenticationCode.sasl:
            var mechanisms: [String] = []
            while let m = reader.cString(), !m.isEmpty { mechanisms.append(m) }
            guard mechanisms.contains("SCRAM-SHA-256") else {
                return .fail(message: "server offers no supported SASL mechanism", code: SQLState.featureNotSupported)
            }
            var exchange: SCRAMClientExchange
            switch credential {
            case .plaintext(let p): exchange = SCRAMClientExchange(password: p)
            case .scramKeys(let clientKey, let serverKey): exchange = SCRAMClientExchange(clientKey: clientKey, serverKey: serverKey)
            default:
                return .fail(message: "server requested SCRAM authentication but no usable secret is known for user \"\(user)\"",
                             code: SQLState.invalidPassword)
            }
            writer.saslInitialResponse(mechanism: "SCRAM-SHA-256", data: exchange.clientFirstMessage())
            scram = exchange
        case AuthenticationCode.saslContinue:
            guard var exchange = scram else {
                return .fail(message: "unexpected SASL continue from server", code: SQLState.protocolViolation)
            }
            do {
                let final = try exchange.receiveServerFirst(reader.rest())
                scram = exchange
                writer.saslResponse(final)
            } catch {
                return .fail(message: "SCRAM exchange with server failed: \(error)", code: SQLState.protocolViolation)
            }
        case AuthenticationCode.saslFinal:
            guard let exchange = scram else {
                return .fail(message: "unexpected SASL final from server", code: SQLState.protocolViolation)
            }
            do {
                try exchange.verifyServerFinal(reader.rest())
            } catch {
                return .fail(message: "server SCRAM signature invalid: \(error)", code: SQLState.protocolViolation)
            }
            return .none
        default:
            return .fail(message: "unsupported authentication method \(code) requested by server",
                         code: SQLState.featureNotSupported)
        }
        return .send(writer.bytes)
    }
}
