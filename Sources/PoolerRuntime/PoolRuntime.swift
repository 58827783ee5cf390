import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// Drives one `PoolState`: opens server connections, links servers to waiting
/// clients, and delivers the welcome parameters learnt from the first login.
final class PoolRuntime {
    /// The pooler lives until the process exits (a strong `let`: uses need no retain).
    let pooler: Pooler
    let key: PoolKey
    var state: PoolState<ServerConnection, ClientConnection>
    var stats = PoolStats()
    var database: DatabaseEntry
    /// Login user and credential for the server side.
    let serverUser: String
    var credential: ServerCredential
    /// ParameterStatus set sent to clients at login, from the first server login.
    var welcome: [(String, String)]? {
        didSet {
            loginSettings.removeAll()
            welcomeByApplicationName.removeAll()
            var settings = pooler.sessionSettingsTemplate
            for (name, value) in welcome ?? [] { settings.reported(name: name, value: value) }
            welcomeSettings = settings
        }
    }
    /// The session settings every client of this pool starts from: one storage shared by
    /// all clients that ask for nothing else (copy on write), so idle clients stay small.
    private(set) var welcomeSettings: SessionSettings?
    /// Distinct session settings of this pool's clients at login, by fingerprint, shared
    /// (copy on write) — a few values, e.g. one per application_name; bounded — each with
    /// its welcome ParameterStatus bytes once built, so a login does not rebuild them.
    private var loginSettings: [Int: (settings: SessionSettings, statusBlock: [UInt8]?)] = [:]

    func intern(_ settings: SessionSettings) -> SessionSettings {
        if let known = loginSettings[settings.fingerprint], known.settings == settings { return known.settings }
        if loginSettings.count < 64 { loginSettings[settings.fingerprint] = (settings, nil) }
        return settings
    }

    /// The welcome of clients that sent only application_name (see
    /// ClientConnection.sendWelcome), by that name; bounded like `loginSettings`.
    private var welcomeByApplicationName: [String: (settings: SessionSettings, statusBlock: [UInt8])] = [:]

    /// (Empty while `welcome` is nil: it is cleared whenever `welcome` changes.)
    func memoizedWelcome(applicationName: String) -> (settings: SessionSettings, statusBlock: [UInt8])? {
        welcomeByApplicationName[applicationName]
    }

    func memoizeWelcome(applicationName: String, settings: SessionSettings, statusBlock: [UInt8]) {
        guard welcome != nil, welcomeByApplicationName.count < 64 else { return }
        welcomeByApplicationName[applicationName] = (settings, statusBlock)
    }

    func parameterStatusBlock(for settings: SessionSettings, parameters: [(String, String)]) -> [UInt8] {
        let known = loginSettings[settings.fingerprint].flatMap { $0.settings == settings ? $0 : nil }
        if let block = known?.statusBlock { return block }
        let block = ClientConnection.parameterStatusBytes(parameters, settings: settings, ownValues: true)
        if known != nil { loginSettings[settings.fingerprint]?.statusBlock = block }
        return block
    }

    /// Clients that passed auth and wait for `welcome`.
    var welcomeWaiters: [ClientConnection] = []
    /// Every server of the pool, for iteration and shutdown; the hot path goes through `state`.
    var servers: [Int: ServerConnection] = [:]
    /// Last login failure: (loop time, message, SQLSTATE), for server_login_retry.
    var lastLoginFailure: (time: UInt64, message: String, code: String)?
    var connectQuery: String? { database.connectQuery }
    /// Created from the "*" entry: freed after autodb_idle_timeout without clients.
    let isAutoDatabase: Bool
    /// Logged-in clients of this pool.
    var clientCount = 0
    /// Loop time since when an automatic pool has had no clients.
    var unusedSince: UInt64?
    var mode: PoolMode { state.limits.mode }
    /// workers > 1: what this pool's loops show each other (see ServerHandover).
    let board: PoolBoard?
    /// `board`'s slots as a plain value, for the per-transaction reads and writes.
    let boardView: PoolBoardView?
    /// A request for an idle server is on its way to another loop.
    var pullPending = false
    /// A request to close idle servers on another loop is on its way (replication, or a
    /// full max_db_connections / max_user_connections).
    var evictionPending = false
    /// The loop asked last for such an eviction (they are asked in turn).
    var evictionCursor = 0
    /// Loop time another loop was last told to ask for an idle server (nudgeWaitingLoop).
    var lastNudge: UInt64 = 0
    /// Loop time a server last crossed over to a loop whose client waited longer than
    /// this loop's (shouldHandOver).
    var lastCrossOver: UInt64 = 0

    init(pooler: Pooler, key: PoolKey, database: DatabaseEntry, serverUser: String,
         credential: ServerCredential, limits: PoolLimits, isAutoDatabase: Bool = false) {
        self.isAutoDatabase = isAutoDatabase
        self.pooler = pooler
        self.key = key
        self.database = database
        self.serverUser = serverUser
        self.credential = credential
        self.state = PoolState(key: key, limits: limits)
        self.board = pooler.workers.count > 1 ? pooler.workers.board(for: key) : nil
        self.boardView = board?.view
    }

    // MARK: clients

    /// A logged-in client needs a server for its next transaction.
    /// PAUSE or KILL for this database (or all): clients wait, servers close when released.
    @inline(__always)
    var isPaused: Bool {
        // Checked twice per transaction: the common case (nothing paused) is one load.
        pooler.anythingPaused && pooler.isPaused(database: key.database)
    }

    /// PAUSE or KILL (not SUSPEND): servers close as they are released and idle ones at
    /// once. SUSPEND keeps them, as PgBouncer does: RESUME finds the pool warm.
    var closesServersWhilePaused: Bool {
        pooler.anythingPaused && pooler.closesServersWhilePaused(database: key.database)
    }

    func requestServer(for client: ClientConnection) {
        if isPaused {
            state.enqueue(client: client, now: pooler.loop.now)
            client.waitStart = pooler.loop.now
            return
        }
        switch state.request(client: client, now: pooler.loop.now) {
        case .linked(let server):
            link(server, client)
        case .queued:
            client.waitStart = pooler.loop.now
            launchServers()
        }
        publish()
    }

    func cancelWait(_ client: ClientConnection) {
        state.cancelWait(client: client)
        welcomeWaiters.removeAll { $0 === client }
        if client.replication != .none { replicationWaiters.removeAll { $0 === client } }
        publish()
    }

    // MARK: replication clients

    /// Replication clients waiting for room in the pool for their own server.
    private var replicationWaiters: [ClientConnection] = []

    /// A replication client logged in: it gets a new server of its own, opened with its
    /// startup parameters, counted in the pool's limits (idle servers make room).
    func requestReplicationServer(for client: ClientConnection) {
        client.waitStart = pooler.loop.now
        replicationWaiters.append(client)
        launchReplicationServers()
    }

    private var launchingReplication = false

    private func launchReplicationServers() {
        guard !launchingReplication else { return } // re-entered through an eviction's close
        launchingReplication = true
        defer { launchingReplication = false }
        while let client = replicationWaiters.first {
            guard pooler.serversUsable, !isPaused else { return }
            let poolRoom = state.limits.poolSize > 0 ? state.limits.poolSize - totalServers : 1
            if min(poolRoom, pooler.globalServerRoom(for: self)) <= 0 || !reserveServer(limit: state.limits.poolSize) {
                // As PgBouncer's launch_new_connection(evict_if_needed): idle servers go,
                // this pool's first, then those of pools under the same global limit.
                if let idle = state.idle.first, state.removeIdle(idle) {
                    idle.terminate(reason: "evicted")
                    continue
                }
                if poolRoom > 0 && pooler.evictIdleServers(for: self, count: 1) > 0 { continue }
                // This pool's idle servers on other loops make room too.
                if poolRoom <= 0 && board != nil { evictIdleServerElsewhere() }
                return
            }
            replicationWaiters.removeFirst()
            guard openServer(replicationFor: client) else {
                replicationWaiters.insert(client, at: 0) // the host name is being resolved
                return
            }
        }
    }

    /// The replication server logged in: linked to its client for good, then the client
    /// gets its welcome (the server's own parameters).
    private func replicationServerReady(_ server: ServerConnection) {
        guard let client = server.detachReplicationClient(), !client.closed else {
            server.terminate(reason: "replication client was closed")
            return
        }
        state.serverActivated(server)
        link(server, client)
        client.sendWelcome(server.parameters)
    }

    /// The pool's welcome parameters are known (from a server login here or on another
    /// loop): the clients waiting for them get them.
    func adoptWelcome(_ parameters: [(String, String)]) {
        guard welcome == nil else { return }
        welcome = parameters
        let waiters = welcomeWaiters
        welcomeWaiters = []
        for client in waiters where !client.closed { client.sendWelcome(parameters) }
    }

    /// A client that just logged in: send the welcome now or when the first server is up.
    func welcomeClient(_ client: ClientConnection) {
        stats.clientLoginCount += 1
        if welcome == nil, board != nil, let shared = pooler.workers.welcome(for: key) {
            // Another loop's server of this pool logged in already: its parameters do
            // (for the clients already waiting here too).
            adoptWelcome(shared)
        }
        if let welcome {
            client.sendWelcome(welcome)
        } else if let failure = recentLoginFailure {
            client.fail(message: "server login has been failing, cached error: \(failure.message) (server_login_retry)",
                        code: failure.code)
        } else {
            welcomeWaiters.append(client)
            launchServers()
        }
    }

    private var recentLoginFailure: (time: UInt64, message: String, code: String)? {
        guard let failure = lastLoginFailure else { return nil }
        let retry = UInt64(pooler.settings.serverLoginRetry * 1_000_000)
        return pooler.loop.now &- failure.time < retry ? failure : nil
    }

    private func link(_ server: consuming ServerConnection, _ client: ClientConnection) {
        stats.serverAssignmentCount += 1
        if client.waitStart > 0 {
            stats.waitTime += pooler.loop.now &- client.waitStart
            client.waitStart = 0
        }
        server.linked(to: client)
        client.linked(to: consume server)
    }

    // MARK: servers

    /// Opens as many server connections as waiting clients and min_pool_size need.
    func launchServers() {
        if !replicationWaiters.isEmpty { launchReplicationServers() }
        guard pooler.serversUsable, !isPaused, recentLoginFailure == nil else { return }
        // Whatever could not be opened here within the shared limit, another loop's
        // idle server may serve.
        defer { if board != nil { requestServerFromOtherLoop() } }
        let now = pooler.loop.now
        let needed = state.serversToOpen(now: now, extraDemand: welcomeWaiters.isEmpty ? 0 : 1, totalServers: totalServers)
        guard needed > 0 else { return }
        var room = pooler.globalServerRoom(for: self)
        if needed > room {
            // max_db_connections / max_user_connections reached: idle servers of other
            // pools under the same limit make way, as PgBouncer evicts them.
            room += pooler.evictIdleServers(for: self, count: needed - room)
        }
        // Servers for waiting clients count against pool_size; the rest only fill up to
        // min_pool_size (exactly, however many loops top it up at once).
        let limit = state.effectiveLimit(now: now)
        let minimum = state.limits.minPoolSize
        let forClients = uncoveredDemand
        for opened in 0..<min(needed, room) {
            if opened >= forClients && minimum == 0 { break }
            // Counted before opening, in one step with the limit checks: another loop
            // may have opened one since `needed` was computed.
            guard reserveServer(limit: opened < forClients ? limit : (limit > 0 ? min(limit, minimum) : minimum)) else { break }
            openServer()
        }
    }

    /// Clients (waiting for a server, or for the first login's parameters) that no server
    /// logging in now will serve.
    var uncoveredDemand: Int { state.waiting.count + (welcomeWaiters.isEmpty ? 0 : 1) - state.loggingIn.count }

    /// This pool's servers on every loop.
    var totalServers: Int { pooler.workers.count == 1 ? state.serverCount : pooler.workers.serverCount(key) }

    /// Counts one more server in the shared limits if pool_size (`limit`, 0 = none),
    /// max_db_connections and max_user_connections allow it.
    private func reserveServer(limit: Int) -> Bool {
        pooler.workers.reserveServer(key, poolLimit: limit,
                                     databaseLimit: database.maxDbConnections ?? pooler.settings.maxDbConnections,
                                     userLimit: pooler.config.users[key.user]?.maxUserConnections ?? pooler.settings.maxUserConnections)
    }

    /// Starts one server login, counted in the shared limits already (`reserveServer`);
    /// false only while the host name is being resolved (`launchServers` runs again when
    /// it has). The count goes when the server closes, or here if none was created.
    @discardableResult
    private func openServer(replicationFor replicationClient: ClientConnection? = nil) -> Bool {
        func failed(_ message: String) -> Bool {
            pooler.workers.serverClosed(key)
            if let replicationClient {
                replicationClient.fail(message: message, code: SQLState.sqlClientUnableToEstablish)
            } else {
                serverLoginFailed(nil, message: message, code: SQLState.sqlClientUnableToEstablish)
            }
            return true
        }
        let host = database.host ?? ""
        let port = database.port
        let address: SocketAddress?
        if host.isEmpty || host.hasPrefix("/") {
            address = SocketAddress.postgresSocket(host: host, port: port)
        } else {
            switch pooler.resolver.lookup(host: host, port: port, now: pooler.loop.now) {
            case .addresses(let addresses):
                address = addresses.first
            case .pending:
                pooler.workers.serverClosed(key)
                return false // launchServers runs again when the name has resolved
            case .unknown:
                address = nil
            }
        }
        guard let address else { return failed("could not resolve host \"\(host)\"") }
        let fd: Int32
        do {
            fd = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        } catch {
            return failed("could not create socket: \(error)")
        }
        ListenSocket.configureDataSocket(fd, isTCP: address.family != AF_UNIX, options: pooler.tcpOptions)
        var parameters: [(String, String)] = [("user", serverUser), ("database", database.dbname ?? key.database)]
        if let v = database.clientEncoding { parameters.append(("client_encoding", v)) }
        if let v = database.datestyle { parameters.append(("datestyle", v)) }
        if let v = database.timezone { parameters.append(("timezone", v)) }
        if let v = database.applicationName { parameters.append(("application_name", v)) }
        if let replicationClient, let mode = replicationClient.replication.startupValue {
            // PgBouncer's send_startup_packet: the client's parameters travel in the
            // StartupMessage (a physical replication connection takes no SET).
            var own: [(String, String)] = [("replication", mode)]
            own += replicationClient.startupParameters
            if !replicationClient.applicationName.isEmpty { own.append(("application_name", replicationClient.applicationName)) }
            if let options = replicationClient.replicationOptions { own.append(("options", options)) }
            parameters.removeAll { name in own.contains { $0.0.lowercased() == name.0 } }
            parameters += own
        }
        let server = ServerConnection(pool: self, fd: fd, remote: address, user: serverUser,
                                      credential: credential, startupParameters: parameters,
                                      replicationFor: replicationClient)
        replicationClient?.replicationServer = server
        if board != nil { server.generation = pooler.workers.generation(database: key.database) }
        servers[server.id] = server
        state.serverLoginStarted(server)
        do {
            try server.register()
            if try Syscall.connect(fd, address) {
                server.writable()
            }
        } catch {
            server.ioFailed(error)
        }
        return true
    }

    func serverLoggedIn(_ server: ServerConnection) {
        if server.replication != .none {
            replicationServerReady(server)
            return
        }
        lastLoginFailure = nil
        if welcome == nil {
            adoptWelcome(server.parameters)
            if board != nil {
                // Clients of this pool logging in on other loops need not wait for a
                // server of their own either.
                pooler.workers.setWelcome(server.parameters, for: key)
                let parameters = server.parameters, key = self.key
                for index in 0..<pooler.workers.count where index != pooler.workerIndex {
                    pooler.workers.post(to: index) { $0.pools[key]?.adoptWelcome(parameters) }
                }
            }
        }
        serverReleased(server)
    }

    func serverLoginFailed(_ server: ServerConnection?, message: String, code: String) {
        if let server, server.replication != .none {
            // Its own client hears why (e.g. no pg_hba.conf entry for replication); the
            // pool's other logins are not affected.
            server.detachReplicationClient()?.fail(message: message, code: code)
            return
        }
        lastLoginFailure = (pooler.loop.now, message, code)
        // Clients would otherwise wait for a server that will not come (until the retry).
        if state.serverCount - (server == nil ? 0 : 1) <= 0 {
            let waiters = welcomeWaiters
            welcomeWaiters = []
            for client in waiters { client.fail(message: message, code: code) }
            for waiter in state.waiting { waiter.client.fail(message: message, code: code) }
        }
    }

    /// A linked client's server at its transaction end: the client's reference (`link`,
    /// retained) is handed over to the pool instead of released and retained again.
    func serverReleased(taking link: Unmanaged<ServerConnection>) {
        serverReleased(link.takeRetainedValue())
    }

    /// A server is clean: give it to the next waiting client or park it.
    func serverReleased(_ server: consuming ServerConnection, checked: Bool = false) {
        let now = pooler.loop.now
        // server_lifetime: an expired server closes when released and nobody waits for it;
        // 0 means every server is used once (PgBouncer's documented meaning).
        let lifetime = serverLifetime
        let expired = lifetime == 0 ? server.linkCount > 0
            : Double(now &- server.connectTime) / 1e6 >= lifetime && state.waiting.isEmpty
        if server.closeWhenReleased || !pooler.serversUsable || closesServersWhilePaused || expired {
            // Its client is done with it: a failure while it closes is not that client's.
            server.client = nil
            server.terminate(reason: server.closeWhenReleased ? server.retireReason
                             : isPaused ? "pause mode" : expired ? "server lifetime over" : "pooler shutting down")
            return
        }
        if isPaused {
            // SUSPEND (PAUSE closed it above): the server parks and serves nobody until
            // RESUME. SUSPEND's reply waits for every buffer to flush, and a server is
            // released once its client's output has: replies here or on another loop
            // may be due.
            server.becameIdle()
            state.park(consume server)
            pooler.serverBecameIdle()
            pooler.adminRepliesMayBeDue()
            publish()
            return
        }
        // workers > 1: the other loop whose client has waited longest, if any (one read
        // of the board per release).
        var waitingLoop = -1
        var waitingSince: UInt64 = 0
        if let boardView { waitingLoop = boardView.longestWaiting(except: pooler.workerIndex, since: &waitingSince) }
        let checksEveryRelease = pooler.settings.serverCheckDelay == 0 && !pooler.settings.serverCheckQuery.isEmpty && !checked
        if waitingLoop >= 0 && shouldHandOver(server, waitingSince: waitingSince) {
            handOver(server, to: waitingLoop)
        } else if state.waiting.isEmpty && !checksEveryRelease {
            // The usual release: the server parks as idle, the reference moving into the
            // idle list.
            server.becameIdle()
            _ = state.serverReady(consume server)
            pooler.serverBecameIdle()
            if waitingLoop >= 0 { nudgeWaitingLoop(waitingLoop) }
        } else if let client = state.serverReady(copy server) {
            link(server, client)
        } else {
            // server_check_delay = 0: every released server is checked before reuse.
            _ = state.removeIdle(server)
            state.serverLoginStarted(server)
            server.check(query: checkQuery)
        }
        if !pooler.pendingAdminReplies.isEmpty { pooler.completePendingAdminReplies() }
        publish()
    }

    func serverClosed(_ server: ServerConnection) {
        state.serverClosed(server)
        servers[server.id] = nil
        pooler.workers.serverClosed(key)
        publish()
        pooler.adminRepliesMayBeDue()
        if !state.waiting.isEmpty || !welcomeWaiters.isEmpty || !replicationWaiters.isEmpty { launchServers() }
    }

    /// RESUME: the clients that queued while paused get servers (idle ones closed at
    /// pause, so new ones log in and serve the queue in order).
    func resumed() {
        while let server = state.idle.last, !state.waiting.isEmpty {
            _ = state.removeIdle(server)
            serverReleased(server)
        }
        launchServers()
    }

    /// KILL: every client and server of the pool goes.
    func kill() {
        for client in pooler.clients.values where client.pool === self {
            client.fail(message: "database removed", code: SQLState.adminShutdown)
        }
        for server in servers.values { server.terminate(reason: "database removed") }
    }

    /// RECONNECT / RELOAD with a changed entry: idle servers close now, the others
    /// when released.
    func reconnect() {
        if board != nil { pooler.workers.bumpGeneration(database: key.database) }
        // The next server's parameters (server_version, TimeZone, ...) are the ones new
        // clients get, as PgBouncer's tag_pool_dirty drops its welcome message.
        welcome = nil
        pooler.workers.forgetWelcome(for: key)
        for server in state.idle where state.removeIdle(server) {
            server.terminate(reason: "database configuration changed")
        }
        for server in servers.values { server.closeWhenReleased = true }
        // server_fast_close: session-mode servers between transactions go now.
        if mode == .session && pooler.settings.serverFastClose {
            for server in servers.values where server.state == .active && server.tracker.isClean {
                server.closeForFastClose()
            }
        }
    }

    /// server_check_query on servers idle for server_check_delay. The check runs while
    /// the server is idle, so no client waits for it; a server failing it is closed.
    private func checkIdleServers(now: UInt64) {
        let settings = pooler.settings
        guard !settings.serverCheckQuery.isEmpty, settings.serverCheckDelay > 0 else { return }
        let delay = UInt64(settings.serverCheckDelay * 1_000_000)
        for server in state.idle where now &- server.idleSince >= delay && state.removeIdle(server) {
            state.serverLoginStarted(server)
            server.check(query: checkQuery)
        }
    }

    /// The database entry's server_lifetime, else the global one (seconds). As in
    /// PgBouncer, 0 in the entry means "not set".
    var serverLifetime: Double {
        if let own = database.serverLifetime, own != 0 { return own }
        return pooler.settings.serverLifetime
    }

    var checkQuery: String {
        pooler.settings.serverCheckSendsEmptyQuery ? "" : pooler.settings.serverCheckQuery
    }

    /// Called by the janitor once per tick.
    func maintain(now: UInt64) {
        let settings = pooler.settings
        // A request for an idle server that was never answered (its loop stopped) does
        // not block the next one for more than a tick.
        pullPending = false
        evictionPending = false
        // query_wait_timeout
        let waitLimit = UInt64(settings.queryWaitTimeout * 1_000_000)
        for client in state.clientsWaiting(longerThan: waitLimit, now: now) {
            client.fail(message: "query_wait_timeout", code: SQLState.protocolViolation)
        }
        // query_wait_notify: tell a queued client once why it waits (PgBouncer's notice).
        let notifyAfter = UInt64(settings.queryWaitNotify) * 1_000_000
        if notifyAfter > 0 {
            for client in state.clientsWaiting(longerThan: notifyAfter, now: now) where !client.sentWaitNotice {
                client.sentWaitNotice = true
                var writer = MessageWriter()
                writer.noticeResponse(code: "00000",
                                      message: "No server connection available in postgres backend, client being queued")
                client.output.append(writer.bytes)
                client.flush()
            }
        }
        if isPaused {
            // SUSPEND: servers stay as they are until RESUME (no idle timeouts either).
            if closesServersWhilePaused {
                for server in state.idle where state.removeIdle(server) { server.terminate(reason: "pause mode") }
            }
            return
        }
        // server_idle_timeout and server_lifetime close idle servers above min_pool_size
        let idleLimit = settings.serverIdleTimeout
        let lifetime = serverLifetime
        for server in state.idle where totalServers > state.limits.minPoolSize {
            let idleFor = Double(now &- server.idleSince) / 1e6
            let age = Double(now &- server.connectTime) / 1e6
            if idleLimit > 0 && idleFor >= idleLimit {
                _ = state.removeIdle(server)
                server.terminate(reason: "server idle timeout")
            } else if lifetime > 0 && age >= lifetime {
                _ = state.removeIdle(server)
                server.terminate(reason: "server lifetime over")
            }
        }
        // A pool_size lowered by RELOAD: idle servers beyond it (and the reserve) close,
        // as PgBouncer's check_pool_size.
        let poolSize = state.limits.poolSize
        if poolSize > 0 {
            let allowed = poolSize + state.limits.reservePoolSize
            for server in state.idle where totalServers > allowed && state.removeIdle(server) {
                server.terminate(reason: "too many servers in the pool")
            }
        }
        checkIdleServers(now: now)
        if !state.waiting.isEmpty || !welcomeWaiters.isEmpty || !replicationWaiters.isEmpty
            || state.serverCount < state.limits.minPoolSize {
            launchServers()
        }
        publish()
    }
}
