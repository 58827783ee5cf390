import Glibc
import PoolerCore
import PoolerIO
import PoolerWire

/// One connection to PostgreSQL. Logs in, then carries traffic for whichever client
/// the pool links it to, and tells the pool when it is clean again.
final class ServerConnection: Connection {
    enum State: String {
        case connecting
        /// SSLRequest sent, waiting for 'S' or 'N'.
        case sslRequest
        case tlsHandshake
        case login, connectQuery, idle, active, resetting
        /// Running server_check_query before going back into service.
        case testing
    }

    let pool: PoolRuntime
    private(set) var state: State = .connecting {
        didSet { wantsWritable = state == .connecting }
    }
    private var login: ServerLoginStateMachine
    private let startupParameters: [(String, String)]
    var tracker = TransactionTracker()
    /// Responses expected back, to hide injected ones and place the pooler's own.
    var responses = ResponseQueue()
    /// Prepared statements this server has, by registry id.
    var statementCache: ServerStatementCache
    /// The session parameters in force on this server.
    var settings: SessionSettings
    /// Session commands of the client's current batch, applied at its ReadyForQuery
    /// unless the batch failed.
    var pendingCommands: [SessionCommand] = []
    private var batchFailed = false
    /// Bytes of a server frame being dropped piecewise (hidden response).
    private var passthroughDrop = false
    /// The linked client. Not weak (a weak reference moves every retain of the client to
    /// the slow side-table path); every way a link ends clears it: release (becameIdle,
    /// reset, check, relink) and the client's own close.
    unowned(unsafe) var client: ClientConnection?
    /// Set when server_fast_close ends this session server after the current batch.
    private var closeAfterForwarding = false
    /// How many client links this server has served (server_lifetime = 0: one).
    private(set) var linkCount = 0
    /// Cancel requests on their way to this server's backend; it is not reused meanwhile.
    var cancelsInFlight = 0
    private var releaseAfterCancels = false
    /// Loop time of the last ReadyForQuery (for idle_transaction_timeout).
    var lastReadyTime: UInt64 = 0
    var parameters: [(String, String)] = []
    var backendProcessID: Int32 = 0
    var backendSecretKey: Int32 = 0
    /// Loop time when the server became idle (for server_idle_timeout).
    var idleSince: UInt64 = 0
    /// Set when the pooler decided to retire it at its next release (RECONNECT, lifetime).
    var closeWhenReleased = false
    /// Frame being forwarded piecewise: bytes still to pass through untouched.
    private var passthroughRemaining = 0
    /// Bytes of traffic this server has forwarded (both directions), for stats.
    /// Loop time the current transaction (link) started, for transaction_timeout.
    private(set) var transactionStart: UInt64 = 0
    private var queryStart: UInt64 = 0

    /// A replication server belongs to one client for that client's lifetime.
    let replication: ReplicationMode
    /// The replication client this server is being opened for, until they are linked.
    var replicationClient: ClientConnection?

    init(pool: PoolRuntime, fd: Int32, remote: SocketAddress, user: String, credential: ServerCredential,
         startupParameters: [(String, String)], replicationFor replicationClient: ClientConnection? = nil) {
        self.pool = pool
        self.replication = replicationClient?.replication ?? .none
        self.replicationClient = replicationClient
        self.login = ServerLoginStateMachine(user: user, credential: credential)
        self.statementCache = ServerStatementCache(capacity: pool.pooler.settings.maxPreparedStatements)
        self.settings = pool.pooler.sessionSettingsTemplate
        self.startupParameters = startupParameters
        super.init(pooler: pool.pooler, fd: fd, remote: remote, localPort: 0)
        wantsWritable = true // connecting
    }


    var isLoggingIn: Bool {
        switch state {
        case .connecting, .sslRequest, .tlsHandshake, .login, .connectQuery: return true
        case .idle, .active, .resetting, .testing: return false
        }
    }

    var logPrefix: String {
        "S-0x\(String(id, radix: 16)): \(pool.key.database)/\(pool.key.user)@\(remote)"
    }

    override func writable() {
        if state == .connecting {
            let error = Syscall.socketError(fd)
            if error != 0 {
                loginFailed(message: "could not connect to server: \(SystemError("connect", errno: error))",
                            code: SQLState.sqlClientUnableToEstablish)
                return
            }
            startSession()
        }
        flush()
    }

    /// Connected: TLS first when server_tls_sslmode asks for it (TCP only, as PgBouncer),
    /// then the StartupMessage.
    private func startSession() {
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

    private func sendStartup() {
        state = .login
        output.append(ServerLoginStateMachine.startupMessage(parameters: startupParameters))
        flush()
    }

    private func beginTLS(_ context: TLSContext) {
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
    private func handleSSLResponse() {
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

    override func tlsHandshakeCompleted() {
        if pooler.tlsSetup.serversDirect != nil && tls?.negotiatedALPN != "postgresql" {
            loginFailed(message: "server did not agree to ALPN postgresql for direct TLS", code: SQLState.protocolViolation)
            return
        }
        sendStartup()
    }

    override func tlsFailed(_ error: TLSError) {
        if isLoggingIn {
            loginFailed(message: "TLS with server failed: \(error.message)", code: SQLState.sqlClientUnableToEstablish)
        } else {
            if let client, !client.closed { client.serverFailed(message: "server conn crashed?") }
            close(reason: "TLS: \(error.message)")
        }
    }

    override func readable() {
        guard readAvailable() else { return }
        processInput()
    }

    func processInput() {
        switch state {
        case .connecting, .tlsHandshake:
            return
        case .sslRequest:
            handleSSLResponse()
        case .login, .connectQuery, .resetting, .testing:
            processControlFrames()
        case .active:
            forwardToClient()
        case .idle:
            // An idle server must stay silent; anything but a notice means trouble.
            processIdleFrames()
        }
    }

    // MARK: login and internal queries

    private func processControlFrames() {
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

    private func handleLogin(type: UInt8, payload: UnsafeRawBufferPointer) {
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

    private func handleInternalQuery(type: UInt8, payload: UnsafeRawBufferPointer) {
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

    private func loginComplete() {
        tracker.reset()
        pooler.log.connection("\(logPrefix) new connection to server (from \(localAddressText))")
        pool.serverLoggedIn(self)
    }

    private var localAddressText: String { "pooler" }

    private func loginFailed(message: String, code: String) {
        pooler.log.warning("\(logPrefix) server login failed: \(message)")
        pool.serverLoginFailed(self, message: message, code: code)
        close(reason: "login failed")
    }

    // MARK: idle and active

    private func processIdleFrames() {
        while case .frame(let frame) = FrameScanner.scan(input.readable, from: 0, maxPacketSize: pooler.settings.maxPacketSize) {
            if frame.type == BackendMessageID.noticeResponse || frame.type == BackendMessageID.parameterStatus {
                input.consume(frame.end)
                continue
            }
            // e.g. FATAL "terminating connection due to administrator command"
            let fields = ErrorFields.parse(UnsafeRawBufferPointer(rebasing: input.readable[frame.payloadStart..<frame.end]))
            close(reason: "idle server sent '\(Character(Unicode.Scalar(frame.type)))': \(fields.message)")
            return
        }
    }

    /// Called by the pool when it links this server to a client: the server takes on
    /// the client's session parameters first, hidden from the client.
    func linked(to client: ClientConnection) {
        self.client = client
        linkCount += 1
        releaseAfterCancels = false
        state = .active
        passthroughRemaining = 0
        passthroughDrop = false
        responses.removeAll()
        if !pendingCommands.isEmpty { pendingCommands.removeAll() }
        batchFailed = false
        transactionStart = pooler.loop.now
        queryStart = pooler.loop.now
        // Replication servers got the client's parameters in their StartupMessage, and a
        // physical replication connection refuses SQL anyway.
        if replication == .none, settings.fingerprint != client.settings.fingerprint,
           let statements = SessionSettings.alignment(server: settings, client: client.settings) {
            var writer = MessageWriter()
            writer.query(statements.joined(separator: "; "))
            output.append(writer.bytes)
            _ = tracker.clientSent(FrontendMessageID.query)
            responses.append(.hiddenQuery)
            settings.aligned(to: client.settings)
        }
    }

    /// What DISCARD ALL / RESET ALL / DEALLOCATE ALL did to this server's session.
    func forgetSession(for commands: [SessionCommand]) {
        for command in commands {
            settings.apply(command)
            if command == .discardAll || command == .deallocateAll { statementCache.removeAll() }
        }
    }

    /// Parks the server as idle after the pool took it back.
    func becameIdle() {
        client = nil
        releaseAfterCancels = false
        state = .idle
        idleSince = pooler.loop.now
        updateInterest()
    }

    /// Runs server_check_query (an empty query for `<empty>`); the pool gets the server
    /// back through `serverReleased` when it passes.
    func check(query: String) { runInternalQuery(query, state: .testing) }

    /// Sends `server_reset_query` before the server goes back to the pool.
    func reset(query: String) { runInternalQuery(query, state: .resetting) }

    /// A query of the pooler's own on an unlinked server; `handleInternalQuery` reads
    /// the answer.
    private func runInternalQuery(_ query: String, state: State) {
        client = nil
        self.state = state
        var writer = MessageWriter()
        writer.query(query)
        output.append(writer.bytes)
        flush()
    }

    /// Forwards what the server sent to the linked client, watching ReadyForQuery and
    /// the responses the pooler must hide or add.
    private func forwardToClient() {
        guard let client, !client.closed else {
            close(reason: "client gone")
            return
        }
        let limit = pooler.settings.maxPacketSize
        var released = false
        // Frames forwarded unchanged are not copied one by one: they lie consecutively in
        // `input` (consumed, but in memory until the next read), so they go out as one
        // run, straight from there when the client has nothing queued. Anything else
        // for the client (a synthetic or replaced response, an error) flushes the run first.
        var run = BorrowedRun()
        defer { if !closed { run.flush(to: client) } } // early exits; the normal end sent it
        loop: while !input.isEmpty {
            let bytes = input.readable
            if passthroughRemaining > 0 {
                let take = min(passthroughRemaining, bytes.count)
                if !passthroughDrop { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), peer: client) }
                input.consume(take)
                passthroughRemaining -= take
                continue
            }
            switch FrameScanner.scan(bytes, from: 0, maxPacketSize: limit) {
            case .frame(let frame):
                let type = frame.type
                let hidden = responses.inHiddenQuery
                var replacement: [UInt8]?
                let forward: Bool
                switch responses.serverSent(type) {
                case .forward: forward = true
                case .drop: forward = false
                case .replace: forward = false; replacement = responses.replacement
                }
                switch type {
                case BackendMessageID.readyForQuery:
                    let status = TransactionStatus(rawValue: bytes[frame.payloadStart]) ?? .failed
                    if !hidden && pool.mode == .statement && status != .idle {
                        // The client must not see its transaction block start.
                        run.flush(to: client)
                        client.statementModeViolation()
                        close(reason: "transaction blocks not allowed in statement pooling mode")
                        return
                    }
                    if forward { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client) }
                    input.consume(frame.end)
                    if !hidden { batchFinished(client) }
                    if readyForQuery(status, counted: !hidden) { released = true }
                case BackendMessageID.parameterStatus:
                    var reader = MessageReader(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end]))
                    if let name = reader.cString(), let value = reader.cString() {
                        settings.reported(name: name, value: value)
                        client.settings.reported(name: name, value: value)
                    }
                    run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client)
                    input.consume(frame.end)
                default:
                    if type == BackendMessageID.errorResponse {
                        if hidden {
                            let fields = ErrorFields.parse(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end]))
                            // None of the statements took effect: this server's settings are
                            // unknown now, so it is not reused.
                            pooler.log.warning("\(logPrefix) setting session parameters failed: \(fields.message)")
                            closeWhenReleased = true
                        } else {
                            batchFailed = true
                        }
                    }
                    if forward { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client) }
                    if let replacement {
                        run.flush(to: client)
                        client.output.append(replacement)
                    }
                    input.consume(frame.end)
                }
                if forward { pool.stats.bytesSent += UInt64(frame.end) }
                if responses.hasDueWork {
                    run.flush(to: client)
                    emitDueResponses(to: client)
                }
            case .incomplete(let header):
                // Stream big frames through instead of buffering them whole; the few
                // frames we inspect (ReadyForQuery, ParameterStatus) are small.
                guard let header, header.type != BackendMessageID.readyForQuery,
                      header.type != BackendMessageID.parameterStatus else { break loop }
                if header.type == BackendMessageID.errorResponse && !responses.inHiddenQuery { batchFailed = true }
                passthroughDrop = responses.serverSent(header.type) == .drop // a replaced error is never this big
                if !passthroughDrop {
                    run.add(bytes, peer: client)
                    pool.stats.bytesSent += UInt64(bytes.count)
                }
                passthroughRemaining = header.end - bytes.count
                input.consume(bytes.count)
                if responses.hasDueWork {
                    run.flush(to: client)
                    emitDueResponses(to: client)
                }
            case .invalidLength:
                run.flush(to: client)
                client.serverFailed(message: "server conn crashed?")
                close(reason: "bad packet length from server")
                return
            }
            if released || closed { break }
        }
        run.send(to: client)
        client.flush()
        if closeAfterForwarding {
            closeForFastClose()
            return
        }
        if released && cancelsInFlight > 0 {
            // The cancel may still land: hold the server (and its client) until it has.
            releaseAfterCancels = true
        } else if released {
            client.serverFinishedTransaction(self)
        } else {
            applyBackpressure(client: client)
        }
    }

    /// Sends the client the responses the pooler produced that are now due, and forgets
    /// statements whose Parse did not happen.
    private func emitDueResponses(to client: ClientConnection) {
        while let bytes = responses.nextDueSynthetic() { client.output.append(bytes) }
        for failed in responses.takeFailedStatements() {
            statementCache.remove(failed.statement)
            if failed.clientVisible { client.statementFailed(failed.statement) }
        }
    }

    /// A client batch (Query or Sync) ended: its session commands take effect unless it failed.
    private func batchFinished(_ client: ClientConnection) {
        if !pendingCommands.isEmpty {
            if !batchFailed {
                for command in pendingCommands {
                    client.settings.apply(command)
                    if command == .discardAll || command == .deallocateAll { client.forgetAllStatements() }
                }
                forgetSession(for: pendingCommands)
            }
            pendingCommands.removeAll()
        }
        batchFailed = false
    }

    /// server_fast_close in session mode: the server closes and its client, whose session
    /// it was, is told why.
    func closeForFastClose() {
        if let client, !client.closed {
            client.fail(message: "database configuration changed", code: SQLState.adminShutdown, detachServer: true)
        }
        terminate(reason: "database configuration changed")
    }

    /// The client is about to send a message: a query (and perhaps a transaction)
    /// starts now if nothing was in flight, for query/transaction times and timeouts.
    @inline(__always)
    func clientWillSend() {
        guard tracker.outstanding == 0 else { return }
        queryStart = pooler.loop.now
        if tracker.isClean { transactionStart = queryStart }
    }

    /// Every cancel request for this backend was delivered.
    func cancelsFinished() {
        guard releaseAfterCancels else { return }
        releaseAfterCancels = false
        if let client, !client.closed, tracker.isClean { client.serverFinishedTransaction(self) }
    }

    /// Stops reading the server while the client cannot keep up.
    private func applyBackpressure(client: ClientConnection) {
        let paused = client.bufferedOutput > pooler.backpressureLimit
        if paused == wantsRead {
            wantsRead = !paused
            if paused { client.peerPausedForBackpressure = true }
            updateInterest()
        }
    }

    /// Everything forwarded from the client reached the server: read the client again.
    override func outputDrained() {
        guard peerPausedForBackpressure else { return }
        peerPausedForBackpressure = false
        client?.resumeReading()
    }

    /// The client drained its output: read from the server again.
    func resumeReading() {
        if !wantsRead {
            wantsRead = true
            updateInterest()
            if !input.isEmpty { processInput() }
        }
    }

    /// Returns true when the server is clean and may be released (transaction/statement mode).
    private func readyForQuery(_ status: TransactionStatus, counted: Bool) -> Bool {
        let now = pooler.loop.now
        guard counted else {
            lastReadyTime = now
            return tracker.serverReady(status) && pool.mode != .session && replication == .none
        }
        pool.stats.queryCount += 1
        pool.stats.queryTime += now &- queryStart
        queryStart = now
        if status == .idle {
            pool.stats.transactionCount += 1
            pool.stats.transactionTime += now &- transactionStart
        }
        lastReadyTime = now
        let clean = tracker.serverReady(status)
        if replication != .none { return false } // bound to its client until either closes
        switch pool.mode {
        case .session:
            // server_fast_close: a server marked for reconnection leaves at the end of
            // the transaction, and its session with it.
            if clean && closeWhenReleased && pooler.settings.serverFastClose { closeAfterForwarding = true }
            return false
        case .statement, .transaction:
            return clean
        }
    }

    override func peerClosed() {
        if let client, !client.closed { client.serverFailed(message: "server conn crashed?") }
        close(reason: "server closed the connection")
    }

    override func ioFailed(_ error: SystemError) {
        if isLoggingIn && state != .connectQuery {
            loginFailed(message: "could not connect to server: \(error)", code: SQLState.sqlClientUnableToEstablish)
            return
        }
        if let client, !client.closed { client.serverFailed(message: "server conn crashed?") }
        close(reason: "\(error)")
    }

    override func close(reason: String) {
        guard !closed else { return }
        super.close(reason: reason)
        if !isLoggingIn || state == .connectQuery {
            pooler.log.connection("\(logPrefix) closing because: \(reason)")
        }
        if let waiting = replicationClient {
            replicationClient = nil
            waiting.replicationServer = nil
            waiting.serverFailed(message: "server conn crashed?")
        }
        pool.serverClosed(self)
    }

    func forwardFromClient(_ bytes: UnsafeRawBufferPointer) {
        output.append(bytes)
        pool.stats.bytesReceived += UInt64(bytes.count)
    }

    /// A message the pooler built (rewritten or injected) on the client's behalf.
    func forwardFromClient(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { forwardFromClient($0) }
    }

    /// Sends Terminate and closes (pool shrinking, lifetime).
    func terminate(reason: String) {
        var writer = MessageWriter()
        writer.terminate()
        output.append(writer.bytes)
        sendNowBestEffort()
        close(reason: reason)
    }
}
