import Glibc
import PoolerCore
import PoolerIO
import PoolerWire

/// A server connection's way in: TLS (SSLRequest or direct), the StartupMessage, the
/// login exchange, connect_query, and the pooler's own queries (reset, check).
extension ServerConnection {
    /// Connected: TLS first when server_tls_sslmode asks for it (TCP only, as PgBouncer),
    /// then the StartupMessage.
    func startSession() {
        let setup = pooler.tlsSetup
        guard setup.servers != nil, remote.family != AF_UNIX else {
            sendStartup()
            return
        }
        if let direct = setup.serversDirect {
            state = .tlsHandshake
            beginTLS(direct)
            return
        }
        state = .sslRequest
        var writer = MessageWriter()
        writer.beginUntyped()
        writer.uint32(StartupCode.sslRequest)
        writer.end()
        output.append(writer.bytes)
    }

    func sendStartup() {
        state = .login
        output.append(ServerLoginStateMachine.startupMessage(parameters: startupParameters))
        flush()
    }

    func beginTLS(_ context: TLSContext) {
        let host = pool.database.host ?? ""
        do {
            let session = try TLSSession(context: context, isServer: false, serverName: host.isEmpty ? nil : host,
                                         verifyHostname: pooler.settings.serverTLSSSLMode == "verify-full")
            startTLS(session)
        } catch {
            loginFailed(message: "TLS setup failed: \(error)", code: SQLState.sqlClientUnableToEstablish)
        }
    }

    /// The server's one-byte answer to SSLRequest.
    func handleSSLResponse() {
        guard let answer = input.readable.first else { return }
        input.consume(1)
        switch answer {
        case UInt8(ascii: "S"):
            // Anything after 'S' arrived before TLS: a man in the middle (CVE-2021-23222).
            guard input.isEmpty else {
                loginFailed(message: "received unencrypted data after SSL response", code: SQLState.protocolViolation)
                return
            }
            state = .tlsHandshake
            if let context = pooler.tlsSetup.servers { beginTLS(context) }
        case UInt8(ascii: "N"):
            if ["require", "verify-ca", "verify-full"].contains(pooler.settings.serverTLSSSLMode) {
                loginFailed(message: "server does not support TLS (server_tls_sslmode = \(pooler.settings.serverTLSSSLMode))",
                            code: SQLState.sqlClientUnableToEstablish)
                return
            }
            sendStartup()
        default:
            loginFailed(message: "bad response to SSLRequest from server", code: SQLState.protocolViolation)
        }
    }

    // MARK: login and internal queries

    func processControlFrames() {
        while !closed {
            let scan = FrameScanner.scan(input.readable, from: 0, maxPacketSize: pooler.settings.maxPacketSize)
            guard case .frame(let frame) = scan else {
                if case .invalidLength = scan { close(reason: "server sent a bad packet length") }
                break
            }
            let payload = UnsafeRawBufferPointer(rebasing: input.readable[frame.payloadStart..<frame.end])
            switch state {
            case .login:
                handleLogin(type: frame.type, payload: payload)
            case .connectQuery, .resetting, .testing:
                handleInternalQuery(type: frame.type, payload: payload)
            default:
                return
            }
            if closed { return }
            input.consume(frame.end)
            if state == .active || state == .idle { break }
        }
        flush()
    }

    func handleLogin(type: UInt8, payload: UnsafeRawBufferPointer) {
        switch login.received(type: type, payload: payload) {
        case .send(let bytes):
            output.append(bytes)
        case .parameter(let name, let value):
            if let index = parameters.firstIndex(where: { $0.0 == name }) {
                parameters[index].1 = value
            } else {
                parameters.append((name, value))
            }
            settings.reported(name: name, value: value)
        case .backendKey(let pid, let key):
            backendProcessID = pid
            backendSecretKey = key
        case .ready:
            if let query = pool.connectQuery, !query.isEmpty {
                state = .connectQuery
                var writer = MessageWriter()
                writer.query(query)
                output.append(writer.bytes)
            } else {
                loginComplete()
            }
        case .fail(let message, let code):
            loginFailed(message: message, code: code)
        case .none:
            break
        }
    }

    func handleInternalQuery(type: UInt8, payload: UnsafeRawBufferPointer) {
        switch type {
        case BackendMessageID.parameterStatus:
            var reader = MessageReader(payload)
            if let name = reader.cString(), let value = reader.cString() { settings.reported(name: name, value: value) }
        case BackendMessageID.errorResponse:
            let fields = ErrorFields.parse(payload)
            if state == .connectQuery {
                loginFailed(message: "connect_query failed: \(fields.message)", code: fields.code)
            } else if state == .testing {
                close(reason: "test query failed: \(fields.message)")
            } else {
                pooler.log.warning("\(logPrefix) server_reset_query failed: \(fields.message)")
                // The reset did not happen: the previous client's session state may still be
                // there. As PgBouncer with an error between transactions, the server goes.
                retireWhenReleased("server_reset_query failed")
            }
        case BackendMessageID.readyForQuery:
            let status = payload.first.flatMap(TransactionStatus.init(rawValue:)) ?? .failed
            if status != .idle {
                close(reason: "reset or connect query left a transaction open")
                return
            }
            if state == .connectQuery {
                loginComplete()
            } else if state == .testing {
                state = .idle
                pool.serverReleased(self, checked: true)
            } else {
                forgetSession(for: SessionCommandScanner.scan(pooler.settings.serverResetQuery))
                state = .idle
                pool.serverReleased(self)
            }
        default:
            break // row data and command tags of internal queries are dropped
        }
    }

    func loginComplete() {
        tracker.reset()
        pooler.log.connection("\(logPrefix) new connection to server (from \(localAddressText))")
        pool.serverLoggedIn(self)
    }

    var localAddressText: String { "pooler" }

    func loginFailed(message: String, code: String) {
        pooler.log.warning("\(logPrefix) server login failed: \(message)")
        pool.serverLoginFailed(self, message: message, code: code)
        close(reason: "login failed")
    }
}
