import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// Drives one `PoolState`: opens server connections, links servers to waiting
/// clients, and delivers the welcome parameters learnt from the first login.
final class PoolRuntime {
    /// The pooler lives until the process exits: no reference counting on each access.
    unowned(unsafe) let pooler: Pooler
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
            var settings = pooler.sessionSettingsTemplate
            for (name, value) in welcome ?? [] { settings.reported(name: name, value: value) }
            welcomeSettings = settings
        }
    }
    /// The session settings every client of this pool starts from: one storage shared by
    /// all clients that ask for nothing else (copy on write), so idle clients stay small.
    private(set) var welcomeSettings: SessionSettings?
    /// Clients that passed auth and wait for `welcome`.
    var welcomeWaiters: [ClientConnection] = []
    /// Every server of the pool, for iteration and shutdown; the hot path goes through `state`.
    var servers: [Int: ServerConnection] = [:]
    /// Last login failure: (loop time, message, SQLSTATE), for server_login_retry.
    var lastLoginFailure: (time: UInt64, message: String, code: String)?
    var connectQuery: String? { database.connectQuery }
    var mode: PoolMode { state.limits.mode }

    init(pooler: Pooler, key: PoolKey, database: DatabaseEntry, serverUser: String,
         credential: ServerCredential, limits: PoolLimits) {
        self.pooler = pooler
        self.key = key
        self.database = database
        self.serverUser = serverUser
        self.credential = credential
        self.state = PoolState(key: key, limits: limits)
    }

    // MARK: clients

    /// A logged-in client needs a server for its next transaction.
    /// PAUSE or KILL for this database (or all): clients wait, servers close when released.
    var isPaused: Bool { pooler.isPaused(database: key.database) }

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
    }

    func cancelWait(_ client: ClientConnection) {
        state.cancelWait(client: client)
        welcomeWaiters.removeAll { $0 === client }
    }

    /// A client that just logged in: send the welcome now or when the first server is up.
    func welcomeClient(_ client: ClientConnection) {
        stats.clientLoginCount += 1
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

    private func link(_ server: ServerConnection, _ client: ClientConnection) {
        stats.serverAssignmentCount += 1
        if client.waitStart > 0 {
            stats.waitTime += pooler.loop.now &- client.waitStart
            client.waitStart = 0
        }
        server.linked(to: client)
        client.linked(to: server)
    }

    // MARK: servers

    /// Opens as many server connections as waiting clients and min_pool_size need.
    func launchServers() {
        guard pooler.serversUsable, !isPaused, recentLoginFailure == nil else { return }
        let needed = state.serversToOpen(now: pooler.loop.now, extraDemand: welcomeWaiters.isEmpty ? 0 : 1)
        guard needed > 0 else { return }
        var room = pooler.globalServerRoom(for: self)
        if needed > room {
            // max_db_connections / max_user_connections reached: idle servers of other
            // pools under the same limit make way, as PgBouncer evicts them.
            room += pooler.evictIdleServers(for: self, count: needed - room)
        }
        for _ in 0..<min(needed, room) { openServer() }
    }

    private func openServer() {
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
                return // launchServers runs again when the name has resolved
            case .unknown:
                address = nil
            }
        }
        guard let address else {
            serverLoginFailed(nil, message: "could not resolve host \"\(host)\"", code: SQLState.sqlClientUnableToEstablish)
            return
        }
        let fd: Int32
        do {
            fd = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        } catch {
            serverLoginFailed(nil, message: "could not create socket: \(error)", code: SQLState.sqlClientUnableToEstablish)
            return
        }
        ListenSocket.configureDataSocket(fd, isTCP: address.family != AF_UNIX, keepalive: pooler.settings.tcpKeepalive)
        var parameters: [(String, String)] = [("user", serverUser), ("database", database.dbname ?? key.database)]
        if let v = database.clientEncoding { parameters.append(("client_encoding", v)) }
        if let v = database.datestyle { parameters.append(("datestyle", v)) }
        if let v = database.timezone { parameters.append(("timezone", v)) }
        if let v = database.applicationName { parameters.append(("application_name", v)) }
        let server = ServerConnection(pool: self, fd: fd, remote: address, user: serverUser,
                                      credential: credential, startupParameters: parameters)
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
    }

    func serverLoggedIn(_ server: ServerConnection) {
        lastLoginFailure = nil
        if welcome == nil {
            welcome = server.parameters
            let waiters = welcomeWaiters
            welcomeWaiters = []
            for client in waiters where !client.closed { client.sendWelcome(server.parameters) }
        }
        serverReleased(server)
    }

    func serverLoginFailed(_ server: ServerConnection?, message: String, code: String) {
        lastLoginFailure = (pooler.loop.now, message, code)
        // Clients would otherwise wait for a server that will not come (until the retry).
        if state.serverCount - (server == nil ? 0 : 1) <= 0 {
            let waiters = welcomeWaiters
            welcomeWaiters = []
            for client in waiters { client.fail(message: message, code: code) }
            for waiter in state.waiting { waiter.client.fail(message: message, code: code) }
        }
    }

    /// A server is clean: give it to the next waiting client or park it.
    func serverReleased(_ server: ServerConnection, checked: Bool = false) {
        let now = pooler.loop.now
        // server_lifetime: an expired server closes when released and nobody waits for it;
        // 0 means every server is used once (PgBouncer's documented meaning).
        let lifetime = serverLifetime
        let expired = lifetime == 0 ? server.linkCount > 0
            : Double(now &- server.connectTime) / 1e6 >= lifetime && state.waiting.isEmpty
        if server.closeWhenReleased || !pooler.serversUsable || isPaused || expired {
            server.terminate(reason: server.closeWhenReleased ? "database configuration changed"
                             : isPaused ? "pause mode" : expired ? "server lifetime over" : "pooler shutting down")
            return
        }
        if let client = state.serverReady(server) {
            link(server, client)
        } else if pooler.settings.serverCheckDelay == 0 && !pooler.settings.serverCheckQuery.isEmpty && !checked {
            // server_check_delay = 0: every released server is checked before reuse.
            _ = state.removeIdle(server)
            state.serverLoginStarted(server)
            server.check(query: checkQuery)
        } else {
            server.becameIdle()
            pooler.serverBecameIdle()
        }
        if !pooler.pendingAdminReplies.isEmpty { pooler.completePendingAdminReplies() }
    }

    func serverClosed(_ server: ServerConnection) {
        state.serverClosed(server)
        servers[server.id] = nil
        pooler.serverCountChanged()
        if !state.waiting.isEmpty || !welcomeWaiters.isEmpty { launchServers() }
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

    /// The database entry's server_lifetime, else the global one (seconds).
    var serverLifetime: Double { database.serverLifetime ?? pooler.settings.serverLifetime }

    var checkQuery: String {
        pooler.settings.serverCheckSendsEmptyQuery ? "" : pooler.settings.serverCheckQuery
    }

    /// Called by the janitor once per tick.
    func maintain(now: UInt64) {
        let settings = pooler.settings
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
            for server in state.idle where state.removeIdle(server) { server.terminate(reason: "pause mode") }
            return
        }
        // server_idle_timeout and server_lifetime close idle servers above min_pool_size
        let idleLimit = settings.serverIdleTimeout
        let lifetime = serverLifetime
        for server in state.idle where state.serverCount > state.limits.minPoolSize {
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
        checkIdleServers(now: now)
        if !state.waiting.isEmpty || !welcomeWaiters.isEmpty || state.serverCount < state.limits.minPoolSize {
            launchServers()
        }
    }
}
