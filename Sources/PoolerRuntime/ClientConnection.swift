import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// One client connection: startup and authentication, then its traffic, forwarded to
/// whichever server the pool links for each transaction (or the admin console).
final class ClientConnection: Connection {
    enum State: String {
        case startup, authLookup, auth, welcomeWait, idle, waiting, active, admin
    }

    // Field order matters: an idle client should cost a few hundred bytes, so the
    // pointer-sized fields come first and the one-byte ones are packed at the end;
    // what only some clients need lives in `extras`.
    var user = ""
    var databaseName = ""
    var applicationName = ""
    var startupParameters: [(String, String)] = []
    /// The authentication exchange, boxed: it is large and only lives during login, so an
    /// idle client does not carry its storage.
    final class AuthBox {
        var machine: ClientAuthStateMachine
        init(_ machine: ClientAuthStateMachine) { self.machine = machine }
    }
    var auth: AuthBox?
    /// The pool, once logged in: a strong reference kept as `Unmanaged` (like
    /// `serverLink`) so each transaction's request and release lend it without a retain.
    private(set) var poolLink: Unmanaged<PoolRuntime>?
    var pool: PoolRuntime? {
        get { poolLink?.takeUnretainedValue() }
        set { Unmanaged.replaceRetained(&poolLink, with: newValue) }
    }
    /// The linked server, a strong reference kept as `Unmanaged` so forwarding can lend
    /// it out without retain/release (see `forwardToServer`); released in `deinit`.
    var serverLink: Unmanaged<ServerConnection>?
    var server: ServerConnection? {
        get { serverLink?.takeUnretainedValue() }
        set { Unmanaged.replaceRetained(&serverLink, with: newValue) }
    }
    /// Session parameters this client set or asked for at startup.
    var settings: SessionSettings
    /// This client's protocol-level prepared statements (transaction/statement mode).
    var statements = ClientStatements()
    var waitStart: UInt64 = 0
    var passthroughRemaining = 0
    let cancelKey: (processID: Int32, secretKey: Int32)

    /// Fields few clients need, behind one pointer.
    private final class Extras {
        var replicationOptions: String?
        var replicationServer: ServerConnection?
        var lookedUpSecret: String?
        var adminExtended: AdminExtendedSession?
    }
    private var extras: Extras?

    /// Writes one extra field; the box is made only for a value (nil needs none).
    private func setExtra<Value>(_ field: ReferenceWritableKeyPath<Extras, Value?>, _ value: Value?) {
        if let extras {
            extras[keyPath: field] = value
        } else if value != nil {
            let box = Extras()
            box[keyPath: field] = value
            extras = box
        }
    }

    /// A replication client's `options`, passed to its server unchanged.
    var replicationOptions: String? {
        get { extras?.replicationOptions }
        set { setExtra(\.replicationOptions, newValue) }
    }
    /// The dedicated server a replication client waits for (logging in).
    var replicationServer: ServerConnection? {
        get { extras?.replicationServer }
        set { setExtra(\.replicationServer, newValue) }
    }
    /// auth_query: the secret found (for the server login credential).
    var lookedUpSecret: String? {
        get { extras?.lookedUpSecret }
        set { setExtra(\.lookedUpSecret, newValue) }
    }
    /// Extended-protocol state of an admin console client (drivers that Parse/Bind SHOW).
    var adminExtended: AdminExtendedSession? {
        get { extras?.adminExtended }
        set { setExtra(\.adminExtended, newValue) }
    }

    var state: State = .startup
    let isUnixSocket: Bool
    /// `replication=` of the startup packet: such a client has a server of its own.
    var replication = ReplicationMode.none
    /// auth_query: the method to continue with once the secret arrives.
    var pendingMethod = AuthType.scramSHA256
    var isAdminUser = false
    /// An admin command's reply is deferred (PAUSE, WAIT_CLOSE, SUSPEND): further
    /// queries wait for it.
    var awaitingAdminReply = false
    /// SUSPEND: not read until RESUME.
    var suspended: Bool {
        get { readingSuspended }
        set { readingSuspended = newValue }
    }
    /// Logged in as "pgbouncer" over the unix socket by the pooler's own OS user.
    var peerAdmin = false
    /// Counted in `Pooler.adminClientCount` (asked for the admin database).
    var countedAsAdmin = false
    /// Counted in the shared max_db/max_user_client_connections counts (released at close).
    var countedForLimits = false
    /// query_wait_notify's notice went out for the current wait.
    var sentWaitNotice = false
    var releaseAfterPassthrough = false
    /// forwardToServer is asking the pool for a server: when one is linked at once, that
    /// loop goes on with the frame itself instead of linked(to:) starting a second pass.
    var acquiringInline = false
    /// The connection began with a TLS ClientHello (no SSLRequest).
    var directTLS = false
    /// Encryption requests answered so far (bit 1: SSLRequest, bit 2: GSSENCRequest):
    /// as PostgreSQL, each may come once.
    var negotiated: UInt8 = 0

    init(pooler: Pooler, fd: Int32, remote: SocketAddress, localPort: Int, isUnixSocket: Bool) {
        self.isUnixSocket = isUnixSocket
        cancelKey = CancelKey.make(peerID: pooler.settings.peerID)
        settings = pooler.sessionSettingsTemplate
        super.init(pooler: pooler, fd: fd, remote: remote, localPort: localPort)
    }

    deinit {
        serverLink?.release()
        poolLink?.release()
    }

    /// Whether `server` is the linked one (compared without loading the reference).
    @inline(__always)
    func isLinked(to server: ServerConnection) -> Bool {
        serverLink?.toOpaque() == Unmanaged.passUnretained(server).toOpaque()
    }

    var logPrefix: String {
        logPrefix("C", database: databaseName.isEmpty ? "(nodb)" : databaseName,
                  user: user.isEmpty ? "(nouser)" : user)
    }

    var isAdmin: Bool { state == .admin }
    var isLoggedIn: Bool { [.idle, .waiting, .active, .admin].contains(state) }

    override func readable() {
        guard readAvailable() else { return }
        requestTime = pooler.loop.now
        if state == .waiting || state == .welcomeWait || state == .authLookup {
            // Nothing goes anywhere until a server is linked or the login goes on (either
            // reads on, see resumeReadingAfterWait): what the client sends meanwhile is
            // held up to the backpressure limit, not without bound.
            if input.readableCount > pooler.backpressureLimit {
                wantsRead = false
                updateInterest()
            }
            return
        }
        processInput()
    }

    /// The login went on after a wait that may have stopped reading: read again.
    func resumeReadingAfterWait() {
        guard !wantsRead, !closed else { return }
        wantsRead = true
        updateInterest()
    }

    func processInput() {
        while !closed && !input.isEmpty {
            let before = input.readableCount
            switch state {
            case .startup: processStartup()
            case .auth: processAuth()
            case .welcomeWait, .waiting, .authLookup: return
            case .idle, .active: forwardToServer(); return
            case .admin:
                if awaitingAdminReply { return }
                processAdmin()
            }
            if input.readableCount == before { break }
        }
        flush()
    }

    override func tlsHandshakeCompleted() {
        if directTLS && tls?.negotiatedALPN != "postgresql" {
            close(reason: "direct TLS connection without ALPN \"postgresql\"")
        }
    }

    /// The `tls=` text of log lines and SHOW CLIENTS: protocol/cipher.
    var tlsDescription: String {
        guard let tls, tls.isHandshakeComplete else { return "" }
        return "\(tls.protocolVersion)/\(tls.cipherName)"
    }

    override func outputDrained() {
        // SUSPEND answers once every buffer is flushed. In transaction mode a server's
        // release says so too, in session mode only this.
        if suspended { pooler.adminRepliesMayBeDue() }
        guard peerPausedForBackpressure else { return }
        peerPausedForBackpressure = false
        server?.resumeReading()
    }

    // MARK: admin

    private func processAdmin() {
        switch FrameScanner.scan(input.readable, from: 0, maxPacketSize: maxPacketSize) {
        case .incomplete:
            return
        case .invalidLength(_, let length):
            fail(message: "bad packet header: length \(length)", code: SQLState.protocolViolation)
        case .frame(let frame):
            let payload = UnsafeRawBufferPointer(rebasing: input.readable[frame.payloadStart..<frame.end])
            var reader = MessageReader(payload)
            let type = frame.type
            let sql = type == FrontendMessageID.query ? reader.cString() : nil
            switch type {
            case FrontendMessageID.query:
                input.consume(frame.end)
                output.append(pooler.admin.execute(sql ?? "", client: self))
            case FrontendMessageID.terminate:
                input.consume(frame.end)
                close(reason: "client close request")
            default:
                var session = adminExtended ?? AdminExtendedSession()
                let accepted = session.handle(type: type, payload: payload, client: self)
                input.consume(frame.end)
                guard accepted else {
                    failInvalidMessage(type)
                    return
                }
                adminExtended = session
            }
        }
    }

    // MARK: closing

    /// disable_pqexec: the simple query protocol (several statements per message) is
    /// refused, as PgBouncer does ("client used 'Q' packet type").
    func failPQexec() {
        pooler.log.error("\(logPrefix) client used 'Q' packet type")
        fail(message: "PQexec disallowed", code: SQLState.protocolViolation, detachServer: false)
    }

    func failInvalidMessage(_ type: UInt8) {
        fail(message: "invalid frontend message type '\(Character(Unicode.Scalar(type)))'", code: SQLState.protocolViolation)
    }

    /// Sends an ErrorResponse and closes.
    func fail(message: String, code: String, detachServer: Bool = false) {
        guard !closed else { return }
        if detachServer {
            server?.client = nil
            server = nil
        }
        var writer = MessageWriter()
        writer.errorResponse(severity: "FATAL", code: code, message: message)
        output.append(writer.bytes)
        if pooler.settings.logPoolerErrors {
            pooler.log.warning("\(logPrefix) pooler error: \(message)")
        }
        // Best effort: the error goes out now, the socket closes right after.
        sendNowBestEffort()
        close(reason: message)
    }

    override func close(reason: String) {
        guard !closed else { return }
        super.close(reason: reason)
        if pooler.settings.logDisconnections && state != .startup {
            let age = Double(pooler.loop.now &- connectTime) / 1e6
            pooler.log.info("\(logPrefix) closing because: \(reason) (age=\(Int(age))s)")
        }
        if let pool {
            pool.clientCount -= 1
            pool.cancelWait(self)
            if let pending = replicationServer {
                pending.detachReplicationClient()
                pending.terminate(reason: "replication client disconnected")
            }
            if let server {
                self.server = nil
                server.client = nil
                if server.replication != .none {
                    // Replication servers are never reused (PgBouncer does the same).
                    server.terminate(reason: "replication client disconnected")
                } else if server.tracker.isClean && server.cancelsInFlight == 0 && passthroughRemaining == 0 {
                    let resetQuery = pooler.settings.serverResetQuery
                    if (pool.mode == .session || pooler.settings.serverResetQueryAlways) && !resetQuery.isEmpty {
                        server.reset(query: resetQuery)
                    } else {
                        pool.serverReleased(server)
                    }
                } else {
                    // Mid-transaction, with requests in flight, with a cancel of this
                    // client on its way (it would hit the next client's query), or inside
                    // a frame only half forwarded (the next client's bytes would be read
                    // as its tail): never reuse it.
                    server.close(reason: "client disconnected in an unclean state")
                }
            }
        }
        forgetAllStatements()
        pooler.clientClosed(self)
    }
}

extension Unmanaged {
    /// Stores `object` in a link that holds a retained reference (retained now; the
    /// one it held is released).
    @inline(__always)
    static func replaceRetained(_ link: inout Unmanaged?, with object: consuming Instance?) {
        let old = link
        link = (consume object).map { Unmanaged.passRetained($0) }
        old?.release()
    }
}
