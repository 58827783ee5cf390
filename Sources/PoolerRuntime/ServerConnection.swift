import Glibc
import PoolerCore
import PoolerIO
import PoolerWire

/// One connection to PostgreSQL. Logs in, then carries traffic for whichever client
/// the pool links it to, and tells the pool when it is clean again.
final class ServerConnection: Connection, PoolMember {
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
    var state: State = .connecting {
        didSet { wantsWritable = state == .connecting }
    }
    var login: ServerLoginStateMachine
    let startupParameters: [(String, String)]
    var tracker = TransactionTracker()
    /// Responses expected back, to hide injected ones and place the pooler's own.
    let responses: ResponseQueue
    /// Prepared statements this server has, by registry id.
    var statementCache: ServerStatementCache
    /// The session parameters in force on this server.
    var settings: SessionSettings
    /// Session commands of the client's current batch, applied at its ReadyForQuery
    /// unless the batch failed.
    var pendingCommands: [SessionCommand] = []
    var batchFailed = false
    /// Bytes of a server frame being dropped piecewise (hidden response).
    var passthroughDrop = false
    /// The linked client, unretained. Not weak (a weak reference moves every retain of the
    /// client to the slow side-table path); every way a link ends clears it: release
    /// (becameIdle, reset, check, relink) and the client's own close. Kept as `Unmanaged`
    /// so forwarding can lend it out without a retain (see `forwardToClient`).
    private(set) var clientLink: Unmanaged<ClientConnection>?
    var client: ClientConnection? {
        get { clientLink?.takeUnretainedValue() }
        set { clientLink = newValue.map { Unmanaged.passUnretained($0) } }
    }
    /// Set when server_fast_close ends this session server after the current batch.
    var closeAfterForwarding = false
    /// How many client links this server has served (server_lifetime = 0: one).
    private(set) var linkCount = 0
    /// Cancel requests on their way to this server's backend; it is not reused meanwhile.
    var cancelsInFlight = 0
    var releaseAfterCancels = false
    /// Loop time of the last ReadyForQuery (for idle_transaction_timeout).
    var lastReadyTime: UInt64 = 0
    var parameters: [(String, String)] = []
    var backendProcessID: Int32 = 0
    var backendSecretKey: Int32 = 0
    /// Loop time when the server became idle (for server_idle_timeout).
    var idleSince: UInt64 = 0
    /// Set when the pooler decided to retire it at its next release (RECONNECT, lifetime).
    var closeWhenReleased = false
    /// Why, for the log line (RECONNECT or a changed entry unless said otherwise).
    var retireReason = "database configuration changed"

    /// Retire it at its next release, for `reason`.
    func retireWhenReleased(_ reason: String) {
        closeWhenReleased = true
        retireReason = reason
    }
    /// Where this server stands in its pool's PoolState (kept by PoolState).
    var poolMembership = PoolMembership.none
    /// The database's reconnect generation when it was opened (workers > 1: a server
    /// that was moving between loops during a RECONNECT is retired on arrival).
    var generation = 0
    /// Frame being forwarded piecewise: bytes still to pass through untouched.
    var passthroughRemaining = 0
    /// Bytes of traffic this server has forwarded (both directions), for stats.
    /// Loop time the current transaction (link) started, for transaction_timeout.
    var transactionStart: UInt64 = 0
    var queryStart: UInt64 = 0

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
        self.responses = ResponseQueue()
        super.init(pooler: pool.pooler, fd: fd, remote: remote, localPort: 0)
        wantsWritable = true // connecting
    }


    /// workers > 1: the same idle server, now on `pool`'s loop (see PoolRuntime.handOver).
    init(adopting old: ServerConnection, pool: PoolRuntime) {
        self.pool = pool
        login = old.login
        startupParameters = old.startupParameters
        statementCache = old.statementCache
        settings = old.settings
        replication = old.replication
        responses = old.responses
        super.init(adopting: old, pooler: pool.pooler)
        state = old.state
        wantsWritable = false
        tracker = old.tracker
        linkCount = old.linkCount
        lastReadyTime = old.lastReadyTime
        parameters = old.parameters
        backendProcessID = old.backendProcessID
        backendSecretKey = old.backendSecretKey
        idleSince = old.idleSince
        closeWhenReleased = old.closeWhenReleased
        generation = old.generation
    }

    var isLoggingIn: Bool {
        switch state {
        case .connecting, .sslRequest, .tlsHandshake, .login, .connectQuery: return true
        case .idle, .active, .resetting, .testing: return false
        }
    }

    var logPrefix: String { logPrefix("S", database: pool.key.database, user: pool.key.user) }

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

    /// Everything forwarded from the client reached the server: read the client again.
    override func outputDrained() {
        guard peerPausedForBackpressure else { return }
        peerPausedForBackpressure = false
        client?.resumeReading()
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
        detachReplicationClient()?.serverFailed(message: "server conn crashed?")
        pool.serverClosed(self)
    }

    /// Ends the pairing with the replication client this server was opened for, before
    /// they were linked; returns that client.
    @discardableResult
    func detachReplicationClient() -> ClientConnection? {
        guard let waiting = replicationClient else { return nil }
        replicationClient = nil
        waiting.replicationServer = nil
        return waiting
    }

    /// Bytes the pooler wrote (rewritten or injected) on the client's behalf.
    func forwardFromClient(_ bytes: UnsafeRawBufferPointer) {
        output.append(bytes)
        pool.stats.bytesReceived += UInt64(bytes.count)
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
