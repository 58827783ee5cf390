import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// A client's way in: the startup packet (SSLRequest, direct TLS, cancel requests),
/// authentication by every auth_type, and the welcome (ParameterStatus, BackendKeyData).
extension ClientConnection {
    // MARK: startup

    func processStartup() {
        // After a CancelRequest nothing more is read: bytes that came with it are dropped
        // (they must not start a login, or more cancels, on this connection).
        guard wantsRead else {
            input.consume(input.readableCount)
            return
        }
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
    func startDirectTLS() {
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

    func handleStartup(_ packet: StartupPacket) {
        switch packet {
        case .sslRequest, .gssEncRequest:
            // As PostgreSQL: one of each; a repeat is an unsupported protocol (otherwise a
            // client could loop here, its answers piling up unread).
            let bit: UInt8 = packet == .sslRequest ? 1 : 2
            guard negotiated & bit == 0 else {
                let code = packet == .sslRequest ? 80877103 : 80877104
                fail(message: "unsupported frontend protocol \(code >> 16).\(code & 0xFFFF): server supports 3.0 to 3.0",
                     code: SQLState.protocolViolation)
                return
            }
            negotiated |= bit
        default:
            break
        }
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
            // As PgBouncer 1.18+: the connection stays open until the server has taken
            // the request (the postmaster closes its end once it signalled the backend),
            // so the client's PQcancel returns only then, and its next query cannot be
            // hit by a signal still on its way. Nothing more is read from it.
            wantsRead = false
            updateInterest()
            pooler.forwardCancel(processID: pid, secretKey: key) { [self] in close(reason: "cancel request") }
        case .unsupportedProtocol(let code):
            fail(message: "unsupported protocol version: \(code >> 16).\(code & 0xFFFF)", code: SQLState.protocolViolation)
        case .startup(let parameters):
            startLogin(parameters)
        }
    }

    func startLogin(_ parameters: [(String, String)]) {
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
                if !pooler.settings.ignoreStartupParameters.contains(where: { $0.lowercased() == key.lowercased() }) {
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
            pooler.workers.clientCountChanged(by: -1)
        }
        if pooler.settings.logConnections {
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
            if pooler.workers.clientCount > pooler.settings.maxClientConn {
                fail(message: "no more connections allowed (max_client_conn)", code: SQLState.tooManyConnections)
                return
            }
            if !pooler.acceptingClients {
                fail(message: "pooler is shutting down", code: SQLState.adminShutdown)
                return
            }
            guard let entry = pooler.config.database(named: databaseName) else {
                fail(message: "no such database: \(databaseName)", code: SQLState.invalidCatalogName)
                return
            }
            let dbLimit = entry.maxDbClientConnections ?? pooler.settings.maxDbClientConnections
            let userLimit = pooler.config.users[user]?.maxUserClientConnections ?? pooler.settings.maxUserClientConnections
            switch pooler.workers.reserveClient(database: databaseName, user: user, databaseLimit: dbLimit, userLimit: userLimit) {
            case .database?:
                fail(message: "no more connections allowed (max_db_client_connections)", code: SQLState.tooManyConnections)
                return
            case .user?:
                fail(message: "no more connections allowed (max_user_client_connections)", code: SQLState.tooManyConnections)
                return
            case nil:
                countedForLimits = true
            }
            if pooler.disabledDatabases.contains(databaseName) {
                fail(message: "database \"\(databaseName)\" is disabled", code: SQLState.protocolViolation)
                return
            }
        }
        if tls == nil && !isUnixSocket && ["require", "verify-ca", "verify-full"].contains(pooler.settings.clientTLSSSLMode) {
            fail(message: "SSL required", code: SQLState.protocolViolation)
            return
        }
        var method = pooler.settings.authType
        var identMap: String?
        if method == .hba {
            guard let resolved = hbaMethod() else { return }
            method = resolved.method
            identMap = resolved.identMap
        }
        if method == .cert && !isUnixSocket {
            // auth_type = cert: a verified client certificate whose CN is the user name.
            guard let tls, tls.hasPeerCertificate, tls.peerCertificateVerified else {
                pooler.log.warning("\(logPrefix) TLS client certificate required")
                fail(message: "certificate authentication failed", code: SQLState.invalidAuthorizationSpecification)
                return
            }
            guard let name = tls.peerCertificateCommonName,
                  Self.identAllows(identMap, systemUser: name, user: user, maps: pooler.identMaps) else {
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

    func beginAuthentication(_ method: AuthType, secret: String?) {
        lookedUpSecret = pooler.secret(for: user) == nil ? secret : nil
        var machine = ClientAuthStateMachine(user: user, authType: method == .cert ? .scramSHA256 : method,
                                             secret: secret, channelBinding: tls?.serverEndPointChannelBinding,
                                             scramIterations: pooler.settings.scramIterations,
                                             verifier: secret.flatMap { pooler.scramVerifier(user: user, secret: $0) })
        let action = machine.start()
        auth = AuthBox(machine)
        state = .auth
        handleAuth(action)
    }

    /// The auth_query lookup answered (nil: unknown user or lookup failed — both end as a
    /// wrong password would, so nobody learns which users exist).
    func secretLookedUp(_ secret: String?) {
        guard state == .authLookup, !closed else { return }
        resumeReadingAfterWait()
        beginAuthentication(pendingMethod, secret: secret)
        flush()
        if !input.isEmpty { processInput() }
    }

    /// Without a map the system (OS or certificate) user must be the user logging in;
    /// with `map=NAME` the ident map decides (PgBouncer 1.25).
    static func identAllows(_ map: String?, systemUser: String, user: String, maps: HBAIdentMaps?) -> Bool {
        guard let map else { return systemUser == user }
        return maps?.allows(map: map, systemUser: systemUser, databaseUser: user) ?? false
    }

    /// auth_type = hba: the first auth_hba_file rule matching this connection decides the
    /// method (and its ident map). nil when the connection was refused (the client has
    /// been told).
    func hbaMethod() -> (method: AuthType, identMap: String?)? {
        let connection = HBAConnection(isUnixSocket: isUnixSocket, address: isUnixSocket ? nil : remote.addressBytes,
                                       isTLS: tls != nil, database: databaseName, user: user,
                                       isReplication: replication == .physical)
        guard let rule = pooler.hba?.matchingRule(connection: connection) else {
            fail(message: "no authentication method is found", code: SQLState.invalidAuthorizationSpecification)
            return nil
        }
        pooler.log.debug("\(logPrefix) HBA line \(rule.lineNumber) is matched")
        switch rule.method {
        case .trust: return (.trust, rule.identMap)
        case .md5: return (.md5, rule.identMap)
        case .password: return (.plain, rule.identMap)
        case .scramSHA256: return (.scramSHA256, rule.identMap)
        case .cert: return (.cert, rule.identMap)
        case .peer:
            // The connecting OS user (SO_PEERCRED) must be the user logging in, or map to
            // it through the rule's ident map (auth_ident_file).
            guard isUnixSocket, let uid = Syscall.peerUID(fd), let entry = getpwuid(uid),
                  Self.identAllows(rule.identMap, systemUser: String(cString: entry.pointee.pw_name),
                                   user: user, maps: pooler.identMaps) else {
                fail(message: "peer authentication failed for user \"\(user)\"", code: SQLState.invalidAuthorizationSpecification)
                return nil
            }
            return (.trust, rule.identMap)
        case .reject:
            fail(message: "login rejected", code: SQLState.invalidAuthorizationSpecification)
            return nil
        case .ldap:
            fail(message: "ldap is not supported by this build", code: SQLState.featureNotSupported)
            return nil
        }
    }

    // MARK: authentication

    func processAuth() {
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

    func handleAuth(_ action: ClientAuthStateMachine.Action) {
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

    func authenticated() {
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
        pool.clientCount += 1
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
        var appName = applicationName
        if pooler.settings.applicationNameAddHost && !isAdmin {
            appName += " - \(isUnixSocket ? "unix" : remote.host):\(remote.port)"
        }
        // Most clients of a pool send nothing but application_name, and the same one: their
        // settings and ParameterStatus block are remembered by it (not with the host added:
        // every client would differ).
        let memoPool = startupParameters.isEmpty && !isAdmin && replication == .none
            && !pooler.settings.applicationNameAddHost ? pool : nil
        if let memoPool, let known = memoPool.memoizedWelcome(applicationName: appName) {
            settings = known.settings
            output.append(known.statusBlock)
        } else {
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
            if !appName.isEmpty { settings.requested(name: "application_name", value: appName) }
            // Clients that asked for the same values (one application_name, say) share one
            // storage: an idle client should cost a few hundred bytes.
            if let pool { settings = pool.intern(settings) }
            if let pool, !isAdmin, replication == .none {
                // The same ParameterStatus block for every client with these settings.
                let block = pool.parameterStatusBlock(for: settings, parameters: parameters)
                output.append(block)
                memoPool?.memoizeWelcome(applicationName: appName, settings: settings, statusBlock: block)
            } else {
                output.append(Self.parameterStatusBytes(parameters, settings: settings, ownValues: !isAdmin))
            }
        }
        var writer = MessageWriter()
        writer.backendKeyData(processID: cancelKey.processID, secretKey: cancelKey.secretKey)
        writer.readyForQuery(.idle)
        output.append(writer.bytes)
        if state == .welcomeWait {
            state = .idle
            resumeReadingAfterWait()
        }
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
}
