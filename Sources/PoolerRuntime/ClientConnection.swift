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
    private final class AuthBox {
        var machine: ClientAuthStateMachine
        init(_ machine: ClientAuthStateMachine) { self.machine = machine }
    }
    private var auth: AuthBox?
    private(set) var pool: PoolRuntime?
    private(set) var server: ServerConnection?
    /// Session parameters this client set or asked for at startup.
    var settings: SessionSettings
    /// This client's protocol-level prepared statements (transaction/statement mode).
    var statements = ClientStatements()
    var waitStart: UInt64 = 0
    private var passthroughRemaining = 0
    let cancelKey: (processID: Int32, secretKey: Int32)

    /// Fields few clients need, behind one pointer.
    private final class Extras {
        var replicationOptions: String?
        var replicationServer: ServerConnection?
        var lookedUpSecret: String?
        var adminExtended: AdminExtendedSession?
    }
    private var extras: Extras?
    private var extrasBox: Extras {
        if let extras { return extras }
        let box = Extras()
        extras = box
        return box
    }

    /// A replication client's `options`, passed to its server unchanged.
    private(set) var replicationOptions: String? {
        get { extras?.replicationOptions }
        set { if newValue != nil || extras != nil { extrasBox.replicationOptions = newValue } }
    }
    /// The dedicated server a replication client waits for (logging in).
    var replicationServer: ServerConnection? {
        get { extras?.replicationServer }
        set { if newValue != nil || extras != nil { extrasBox.replicationServer = newValue } }
    }
    /// auth_query: the secret found (for the server login credential).
    private var lookedUpSecret: String? {
        get { extras?.lookedUpSecret }
        set { if newValue != nil || extras != nil { extrasBox.lookedUpSecret = newValue } }
    }
    /// Extended-protocol state of an admin console client (drivers that Parse/Bind SHOW).
    var adminExtended: AdminExtendedSession? {
        get { extras?.adminExtended }
        set { if newValue != nil || extras != nil { extrasBox.adminExtended = newValue } }
    }

    private(set) var state: State = .startup
    let isUnixSocket: Bool
    /// `replication=` of the startup packet: such a client has a server of its own.
    private(set) var replication = ReplicationMode.none
    /// auth_query: the method to continue with once the secret arrives.
    private var pendingMethod = AuthType.scramSHA256
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
    private var peerAdmin = false
    /// Counted in `Pooler.adminClientCount` (asked for the admin database).
    var countedAsAdmin = false
    /// query_wait_notify's notice went out for the current wait.
    var sentWaitNotice = false
    private var releaseAfterPassthrough = false
    /// The connection began with a TLS ClientHello (no SSLRequest).
    private var directTLS = false

    init(pooler: Pooler, fd: Int32, remote: SocketAddress, localPort: Int, isUnixSocket: Bool) {
        self.isUnixSocket = isUnixSocket
        cancelKey = CancelKey.make(peerID: pooler.settings.peerID)
        settings = pooler.sessionSettingsTemplate
        super.init(pooler: pooler, fd: fd, remote: remote, localPort: localPort)
    }

    var logPrefix: String {
        "C-0x\(String(id, radix: 16)): \(databaseName.isEmpty ? "(nodb)" : databaseName)/\(user.isEmpty ? "(nouser)" : user)@\(remote)"
    }

    var isAdmin: Bool { state == .admin }
    var isLoggedIn: Bool { [.idle, .waiting, .active, .admin].contains(state) }

    override func readable() {
        guard readAvailable() else { return }
        requestTime = pooler.loop.now
        processInput()
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

    // MARK: startup

    private func processStartup() {
        if tls == nil, TLSSession.looksLikeTLSClientHello(input.readable) {
            startDirectTLS()
            return
        }
        switch StartupScanner.scan(input.readable) {
        case .incomplete:
            return
        case .invalidLength(let length):
            fail(message: "bad startup packet length: \(length)", code: SQLState.protocolViolation)
        case .packet(let length):
            let packet: StartupPacket
            do {
                packet = try StartupPacket.decode(UnsafeRawBufferPointer(rebasing: input.readable[0..<length]))
            } catch {
                fail(message: "bad startup packet", code: SQLState.protocolViolation)
                return
            }
            input.consume(length)
            handleStartup(packet)
        }
    }

    /// PostgreSQL 17's `sslnegotiation=direct`: the connection starts with a TLS
    /// ClientHello; the handshake must agree on ALPN "postgresql".
    private func startDirectTLS() {
        guard let context = pooler.tlsSetup.clients, !isUnixSocket else {
            close(reason: "TLS ClientHello without TLS configured")
            return
        }
        directTLS = true
        do {
            let session = try TLSSession(context: context, isServer: true)
            let hello = input.readable
            startTLS(session, initialCiphertext: hello)
            input.consume(hello.count)
        } catch {
            close(reason: "TLS: \(error)")
        }
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

    private func handleStartup(_ packet: StartupPacket) {
        switch packet {
        case .sslRequest:
            guard tls == nil, let context = pooler.tlsSetup.clients, !isUnixSocket else {
                // 'N' lets the client continue in plain text (or give up).
                output.append([UInt8(ascii: "N")])
                flush()
                return
            }
            // Bytes sent after SSLRequest but before the handshake would be trusted
            // plaintext injected ahead of TLS (CVE-2021-23214): refuse them.
            guard input.isEmpty else {
                fail(message: "received unencrypted data after SSL request", code: SQLState.protocolViolation)
                return
            }
            output.append([UInt8(ascii: "S")])
            flush()
            do {
                startTLS(try TLSSession(context: context, isServer: true))
            } catch {
                close(reason: "TLS: \(error)")
            }
        case .gssEncRequest:
            output.append([UInt8(ascii: "N")])
            flush()
        case .cancel(let pid, let key):
            pooler.forwardCancel(processID: pid, secretKey: key)
            close(reason: "cancel request")
        case .unsupportedProtocol(let code):
            fail(message: "unsupported protocol version: \(code >> 16).\(code & 0xFFFF)", code: SQLState.protocolViolation)
        case .startup(let parameters):
            startLogin(parameters)
        }
    }

    private func startLogin(_ parameters: [(String, String)]) {
        let settings = pooler.settings
        // First, as PgBouncer: a replication client's options go to its server unparsed.
        for (key, value) in parameters where key == "replication" {
            guard let mode = ReplicationMode(startupValue: value) else {
                fail(message: "invalid value for parameter \"replication\": \"\(value)\"", code: SQLState.invalidParameterValue)
                return
            }
            replication = mode
        }
        for (key, value) in parameters {
            switch key.lowercased() {
            case "user": user = value
            case "database": databaseName = value
            case "application_name": applicationName = value
            case "replication": break
            case "client_encoding", "datestyle", "timezone", "standard_conforming_strings", "intervalstyle":
                startupParameters.append((key, value))
            case "options" where replication != .none:
                replicationOptions = value
            case "options":
                guard let options = StartupOptions.parse(value) else {
                    fail(message: "unsupported options startup parameter: only '-c key=value' is supported",
                         code: SQLState.protocolViolation)
                    return
                }
                startupParameters.append(contentsOf: options)
            default:
                if !settings.ignoreStartupParameters.contains(where: { $0.lowercased() == key.lowercased() }) {
                    fail(message: "unsupported startup parameter: \(key)", code: SQLState.protocolViolation)
                    return
                }
            }
        }
        if user.isEmpty {
            fail(message: "no username supplied", code: SQLState.protocolViolation)
            return
        }
        if databaseName.isEmpty { databaseName = user }
        let isAdminDatabase = databaseName == "pgbouncer"
        if isAdminDatabase && replication != .none {
            fail(message: "replication connections are not supported by the admin console", code: SQLState.protocolViolation)
            return
        }
        if isAdminDatabase {
            countedAsAdmin = true
            pooler.adminClientCount += 1
        }
        if settings.logConnections {
            pooler.log.info("\(logPrefix) login attempt: db=\(databaseName) user=\(user) tls=\(tls == nil ? "no" : tlsDescription) replication=\(replication.logValue)")
        }
        if isAdminDatabase && user == "pgbouncer" && isUnixSocket && Syscall.peerUID(fd) == getuid() {
            // As PgBouncer: the OS user running the pooler, over the unix socket, is the
            // admin "pgbouncer" without a password, whatever auth_type and admin_users say.
            peerAdmin = true
            authenticated()
            return
        }
        if !isAdminDatabase {
            if pooler.clientCount(excludingAdmin: true) > settings.maxClientConn {
                fail(message: "no more connections allowed (max_client_conn)", code: SQLState.tooManyConnections)
                return
            }
            if !pooler.acceptingClients {
                fail(message: "pooler is shutting down", code: SQLState.adminShutdown)
                return
            }
            guard pooler.config.database(named: databaseName) != nil else {
                fail(message: "no such database: \(databaseName)", code: SQLState.invalidCatalogName)
                return
            }
            let dbLimit = pooler.config.database(named: databaseName)?.maxDbClientConnections ?? settings.maxDbClientConnections
            if dbLimit > 0 && pooler.clients.values.filter({ $0.databaseName == databaseName }).count > dbLimit {
                fail(message: "no more connections allowed (max_db_client_connections)", code: SQLState.tooManyConnections)
                return
            }
            let userLimit = pooler.config.users[user]?.maxUserClientConnections ?? settings.maxUserClientConnections
            if userLimit > 0 && pooler.clients.values.filter({ $0.user == user && !$0.countedAsAdmin }).count > userLimit {
                fail(message: "no more connections allowed (max_user_client_connections)", code: SQLState.tooManyConnections)
                return
            }
            if pooler.disabledDatabases.contains(databaseName) {
                fail(message: "database \"\(databaseName)\" is disabled", code: SQLState.protocolViolation)
                return
            }
        }
        if tls == nil && !isUnixSocket && ["require", "verify-ca", "verify-full"].contains(settings.clientTLSSSLMode) {
            fail(message: "SSL required", code: SQLState.protocolViolation)
            return
        }
        var method = settings.authType
        if method == .hba {
            guard let resolved = hbaMethod() else { return }
            method = resolved
        }
        if method == .cert && !isUnixSocket {
            // auth_type = cert: a verified client certificate whose CN is the user name.
            guard let tls, tls.hasPeerCertificate, tls.peerCertificateVerified else {
                pooler.log.warning("\(logPrefix) TLS client certificate required")
                fail(message: "certificate authentication failed", code: SQLState.invalidAuthorizationSpecification)
                return
            }
            guard tls.peerCertificateCommonName == user else {
                pooler.log.warning("\(logPrefix) TLS certificate name mismatch")
                fail(message: "certificate authentication failed", code: SQLState.invalidAuthorizationSpecification)
                return
            }
            handleAuth(.accept(final: nil))
            return
        }
        let needsSecret = method != .trust && method != .any
        if needsSecret, !isAdminDatabase, pooler.secret(for: user) == nil, pooler.authUser(for: databaseName) != nil {
            // auth_query: the secret comes from PostgreSQL (cached), then login goes on.
            if let cached = pooler.cachedAuthSecret(user: user, database: databaseName) {
                beginAuthentication(method, secret: cached)
            } else {
                pendingMethod = method
                state = .authLookup
                pooler.lookUpSecret(user: user, database: databaseName, for: self)
            }
            return
        }
        beginAuthentication(method, secret: pooler.secret(for: user))
    }

    private func beginAuthentication(_ method: AuthType, secret: String?) {
        lookedUpSecret = pooler.secret(for: user) == nil ? secret : nil
        var machine = ClientAuthStateMachine(user: user, authType: method == .cert ? .scramSHA256 : method,
                                             secret: secret, channelBinding: tls?.serverEndPointChannelBinding)
        let action = machine.start()
        auth = AuthBox(machine)
        state = .auth
        handleAuth(action)
    }

    /// The auth_query lookup answered (nil: unknown user or lookup failed — both end as a
    /// wrong password would, so nobody learns which users exist).
    func secretLookedUp(_ secret: String?) {
        guard state == .authLookup, !closed else { return }
        beginAuthentication(pendingMethod, secret: secret)
        flush()
        if !input.isEmpty { processInput() }
    }

    /// auth_type = hba: the first auth_hba_file rule matching this connection decides.
    /// nil when the connection was refused (the client has been told).
    private func hbaMethod() -> AuthType? {
        let connection = HBAConnection(isUnixSocket: isUnixSocket, address: isUnixSocket ? nil : remote.addressBytes,
                                       isTLS: tls != nil, database: databaseName, user: user,
                                       isReplication: replication == .physical)
        guard let rule = pooler.hba?.matchingRule(connection: connection) else {
            fail(message: "no authentication method is found", code: SQLState.invalidAuthorizationSpecification)
            return nil
        }
        pooler.log.debug("\(logPrefix) HBA line \(rule.lineNumber) is matched")
        switch rule.method {
        case .trust: return .trust
        case .md5: return .md5
        case .password: return .plain
        case .scramSHA256: return .scramSHA256
        case .cert: return .cert
        case .peer:
            // The connecting OS user (SO_PEERCRED) must be the user logging in.
            guard isUnixSocket, let uid = Syscall.peerUID(fd), let entry = getpwuid(uid),
                  String(cString: entry.pointee.pw_name) == user else {
                fail(message: "peer authentication failed for user \"\(user)\"", code: SQLState.invalidAuthorizationSpecification)
                return nil
            }
            return .trust
        case .reject:
            fail(message: "login rejected", code: SQLState.invalidAuthorizationSpecification)
            return nil
        case .ldap:
            fail(message: "ldap is not supported by this build", code: SQLState.featureNotSupported)
            return nil
        }
    }

    // MARK: authentication

    private func processAuth() {
        switch FrameScanner.scan(input.readable, from: 0, maxPacketSize: 10_000) {
        case .incomplete:
            return
        case .invalidLength(_, let length):
            fail(message: "bad packet length: \(length)", code: SQLState.protocolViolation)
        case .frame(let frame):
            guard frame.type == FrontendMessageID.password, let box = auth else {
                fail(message: "expected password response, got message type '\(Character(Unicode.Scalar(frame.type)))'",
                     code: SQLState.protocolViolation)
                return
            }
            let action = box.machine.received(UnsafeRawBufferPointer(rebasing: input.readable[frame.payloadStart..<frame.end]))
            input.consume(frame.end)
            handleAuth(action)
        }
    }

    private func handleAuth(_ action: ClientAuthStateMachine.Action) {
        switch action {
        case .send(let bytes):
            output.append(bytes)
            flush()
        case .fail(let message, let code):
            fail(message: message, code: code)
        case .accept(let final):
            if let final { output.append(final) }
            authenticated()
        }
    }

    private func authenticated() {
        var writer = MessageWriter()
        writer.authentication(AuthenticationCode.ok)
        output.append(writer.bytes)
        let keys = auth?.machine.recoveredKeys
        auth = nil
        if databaseName == "pgbouncer" {
            let settings = pooler.settings
            isAdminUser = peerAdmin || settings.adminUsers.contains(user)
            guard isAdminUser || settings.statsUsers.contains(user) else {
                fail(message: "not allowed", code: SQLState.insufficientPrivilege)
                return
            }
            state = .admin
            sendWelcome(pooler.adminWelcomeParameters)
            return
        }
        guard let pool = pooler.pool(database: databaseName, clientUser: user, scramKeys: keys,
                                     lookedUpSecret: lookedUpSecret) else {
            fail(message: "no such database: \(databaseName)", code: SQLState.invalidCatalogName)
            return
        }
        self.pool = pool
        state = .welcomeWait
        if replication != .none {
            pool.stats.clientLoginCount += 1
            pool.requestReplicationServer(for: self)
            return
        }
        pool.welcomeClient(self)
    }

    /// Login is complete: parameters, our own cancel key, ReadyForQuery. The client's
    /// own startup values win over the server's; servers are aligned to them on link.
    func sendWelcome(_ parameters: [(String, String)]) {
        guard !closed else { return }
        var writer = MessageWriter()
        if let shared = pool?.welcomeSettings {
            settings = shared
        } else {
            for (name, value) in parameters { settings.reported(name: name, value: value) }
        }
        for (name, value) in startupParameters {
            if settings.tracked.contains(name.lowercased()) {
                settings.requested(name: name, value: value)
            } else {
                // Any other `-c` setting is replayed on each server like a client SET.
                settings.apply(.setConfig(name: name.lowercased(), value: value))
            }
        }
        var appName = applicationName
        if pooler.settings.applicationNameAddHost && !isAdmin {
            appName += " - \(isUnixSocket ? "unix" : remote.host):\(remote.port)"
        }
        if !appName.isEmpty { settings.requested(name: "application_name", value: appName) }
        // Clients that asked for the same values (one application_name, say) share one
        // storage: an idle client should cost a few hundred bytes.
        if let pool { settings = pool.intern(settings) }
        if let pool, !isAdmin, replication == .none {
            // The same ParameterStatus block for every client with these settings.
            output.append(pool.parameterStatusBlock(for: settings, parameters: parameters))
        } else {
            output.append(Self.parameterStatusBytes(parameters, settings: settings, ownValues: !isAdmin))
        }
        writer.backendKeyData(processID: cancelKey.processID, secretKey: cancelKey.secretKey)
        writer.readyForQuery(.idle)
        output.append(writer.bytes)
        if state == .welcomeWait { state = .idle }
        requestTime = pooler.loop.now
        flush()
        // An idle client should cost a few hundred bytes: no buffers until it speaks.
        if input.isEmpty { input.releaseIfEmpty() } else { processInput() }
    }

    /// ParameterStatus messages for `parameters`, with the client's own value where its
    /// settings have one (`ownValues`).
    static func parameterStatusBytes(_ parameters: [(String, String)], settings: SessionSettings,
                                     ownValues: Bool) -> [UInt8] {
        var writer = MessageWriter()
        for (name, value) in parameters {
            if ownValues, case .reported(let own)? = settings[name] {
                writer.parameterStatus(name: name, value: own)
            } else {
                writer.parameterStatus(name: name, value: value)
            }
        }
        return writer.bytes
    }

    // MARK: traffic

    private var maxPacketSize: Int { pooler.settings.maxPacketSize }

    /// Forwards complete frames (and big frames piecewise) to the linked server,
    /// asking the pool for one first when needed.
    private func forwardToServer() {
        // Frames passed on unchanged go out as one run from `input` (see BorrowedRun);
        // whatever the pooler adds for the server flushes the run first.
        var run = BorrowedRun()
        defer { if !closed, let server { run.flush(to: server) } }
        loop: while !input.isEmpty && !closed {
            let bytes = input.readable
            if passthroughRemaining > 0 {
                let take = min(passthroughRemaining, bytes.count)
                // Without a server this is stray copy data being discarded.
                if let server {
                    run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), peer: server)
                    server.pool.stats.bytesReceived += UInt64(take)
                }
                input.consume(take)
                passthroughRemaining -= take
                if passthroughRemaining == 0 && releaseAfterPassthrough, let server {
                    run.send(to: server)
                    server.flush()
                    serverFinishedTransaction(server)
                    return
                }
                continue
            }
            switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
            case .invalidLength(_, let length):
                fail(message: "bad packet header: length \(length)", code: SQLState.protocolViolation)
                return
            case .incomplete(let header):
                guard let header, !inspected(header.type) else { break loop }
                if header.type == FrontendMessageID.query && pooler.settings.disablePqexec {
                    failPQexec()
                    return
                }
                guard let server else {
                    guard TransactionTracker.isCopyStream(header.type) else { break loop }
                    passthroughRemaining = header.end - bytes.count
                    input.consume(bytes.count)
                    continue
                }
                server.clientWillSend()
                guard server.tracker.clientSent(header.type) == .forward else {
                    failInvalidMessage(header.type)
                    return
                }
                // Large frames we need not understand stream through as they arrive.
                expectResponse(to: header.type, on: server)
                run.add(bytes, peer: server)
                server.pool.stats.bytesReceived += UInt64(bytes.count)
                passthroughRemaining = header.end - bytes.count
                input.consume(bytes.count)
            case .frame(let frame):
                if frame.type == FrontendMessageID.query && pooler.settings.disablePqexec {
                    failPQexec()
                    return
                }
                guard let server else {
                    if frame.type == FrontendMessageID.parse, answerPrepareLocally(frame, in: bytes) { continue }
                    switch TransactionTracker.effect(of: frame.type) {
                    case .forward where TransactionTracker.isCopyStream(frame.type):
                        // Copy data after the server ended the COPY (it failed): the
                        // server would ignore it, so it needs no server at all.
                        input.consume(frame.end)
                        continue
                    case .forward:
                        acquireServer()
                    case .terminate:
                        close(reason: "client close request")
                    case .invalid:
                        failInvalidMessage(frame.type)
                    }
                    return
                }
                server.clientWillSend()
                switch server.tracker.clientSent(frame.type) {
                case .forward:
                    break
                case .terminate:
                    input.consume(frame.end)
                    close(reason: "client close request")
                    return
                case .invalid:
                    failInvalidMessage(frame.type)
                    return
                }
                let frameBytes = UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end])
                let payload = UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end])
                if tracksPreparedStatements && inspected(frame.type) { run.flush(to: server) }
                if !forwardExtended(frame.type, frame: frameBytes, payload: payload, to: server) {
                    expectResponse(to: frame.type, on: server)
                    if frame.type == FrontendMessageID.query { noteSessionCommands(in: payload, on: server) }
                    run.add(frameBytes, peer: server)
                    server.pool.stats.bytesReceived += UInt64(frameBytes.count)
                }
                input.consume(frame.end)
            }
        }
        if !output.isEmpty { flush() }
        if let server {
            run.send(to: server)
            server.flush()
            let paused = server.bufferedOutput > pooler.backpressureLimit
            if paused == wantsRead {
                wantsRead = !paused
                if paused { server.peerPausedForBackpressure = true }
                updateInterest()
            }
        }
    }

    /// Frames that must arrive whole before anything is done with them: Terminate, and
    /// the extended-protocol messages that name prepared statements when the pooler
    /// tracks them.
    private func inspected(_ type: UInt8) -> Bool {
        switch type {
        case FrontendMessageID.terminate: return true
        case FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.describe, FrontendMessageID.close:
            return tracksPreparedStatements
        default: return false
        }
    }

    private func acquireServer() {
        guard let pool else { return }
        state = .waiting
        requestTime = pooler.loop.now
        wantsRead = false
        pool.requestServer(for: self)
        // Stop reading only if it really waits: a server handed over at once would mean
        // two epoll_ctl calls for nothing.
        if state == .waiting { updateInterest() }
    }

    func linked(to server: ServerConnection) {
        self.server = server
        sentWaitNotice = false
        state = .active
        wantsRead = true
        updateInterest()
        processInput()
    }

    /// The server answered the last request and is clean: hand it back, unless a
    /// client frame is still half forwarded (e.g. CopyData after a failed COPY): the
    /// rest of it must reach this server, so the release waits for its end.
    func serverFinishedTransaction(_ server: ServerConnection) {
        guard self.server === server else { return }
        if passthroughRemaining > 0 {
            releaseAfterPassthrough = true
            return
        }
        releaseAfterPassthrough = false
        self.server = nil
        state = .idle
        pool?.serverReleased(server)
        input.releaseIfEmpty()
        if !input.isEmpty { processInput() }
    }

    override func outputDrained() {
        guard peerPausedForBackpressure else { return }
        peerPausedForBackpressure = false
        server?.resumeReading()
    }

    /// The server took what we forwarded: read the client again.
    func resumeReading() {
        if !wantsRead && state == .active {
            wantsRead = true
            updateInterest()
            if !input.isEmpty { processInput() }
        }
    }

    override func flush() {
        super.flush()
    }

    func statementModeViolation() {
        fail(message: "transaction blocks not allowed in statement pooling mode", code: SQLState.featureNotSupported,
             detachServer: true)
    }

    func serverFailed(message: String) {
        fail(message: message, code: SQLState.connectionFailure, detachServer: true)
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
    private func failPQexec() {
        pooler.log.error("\(logPrefix) client used 'Q' packet type")
        fail(message: "PQexec disallowed", code: SQLState.protocolViolation, detachServer: false)
    }

    private func failInvalidMessage(_ type: UInt8) {
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
            pool.cancelWait(self)
            if let pending = replicationServer {
                replicationServer = nil
                pending.terminate(reason: "replication client disconnected")
            }
            if let server {
                self.server = nil
                server.client = nil
                if server.replication != .none {
                    // Replication servers are never reused (PgBouncer does the same).
                    server.terminate(reason: "replication client disconnected")
                } else if server.tracker.isClean {
                    let resetQuery = pooler.settings.serverResetQuery
                    if (pool.mode == .session || pooler.settings.serverResetQueryAlways) && !resetQuery.isEmpty {
                        server.reset(query: resetQuery)
                    } else {
                        pool.serverReleased(server)
                    }
                } else {
                    // Mid-transaction or with requests in flight: never reuse it.
                    server.close(reason: "client disconnected in an unclean state")
                }
            }
        }
        forgetAllStatements()
        pooler.clientClosed(self)
    }
}
