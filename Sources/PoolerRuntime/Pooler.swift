import Glibc
import CLinuxShims
import PoolerAdmin
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// The pooler on one event loop (one per `workers`): its listeners, clients, pools, the
/// janitor and shutdown; loop 0 also handles signals. What the loops share (limits,
/// messages, stopping the world for admin commands) goes through `workers`.
final class Pooler {
    let loop: EventLoop
    /// All loops of the process and what they share; this loop is `workers.loops[workerIndex]`.
    let workers: Workers
    let workerIndex: Int
    private(set) var config: Config {
        didSet {
            settings = config.settings
            sessionSettingsTemplate = SessionSettings(extraTracked: settings.trackExtraParameters)
        }
    }
    /// Empty session settings with the tracked names, copied (not rebuilt) per connection.
    private(set) var sessionSettingsTemplate: SessionSettings
    /// The [pgbouncer] settings in force: a stored copy, read on every event, so that no
    /// access copies the whole Config.
    private(set) var settings: Settings

    /// The tcp_* settings as socket options (for each accepted or opened TCP socket).
    var tcpOptions: ListenSocket.TCPOptions {
        ListenSocket.TCPOptions(keepalive: settings.tcpKeepalive, keepcnt: settings.tcpKeepcnt,
                                keepidle: settings.tcpKeepidle, keepintvl: settings.tcpKeepintvl,
                                userTimeout: settings.tcpUserTimeout, socketBuffer: settings.tcpSocketBuffer)
    }
    let log: Logger
    private(set) var authSecrets: [String: String] = [:]
    private var listeners: [ListenerHandler] = []
    private(set) var clients: [Int: ClientConnection] = [:]
    private(set) var pools: [PoolKey: PoolRuntime] = [:]
    private var poolOrder: [PoolKey] = []
    private var connectionCounter = 0
    lazy var admin = AdminService(pooler: self)
    /// Distinct prepared statements of all clients, shared by the loops (a server that
    /// moves to another loop keeps its statements' ids).
    var statementRegistry: SharedStatementRegistry { workers.statementRegistry }
    let startTime = Int(time(nil))
    /// Per-database counters at the last two stats ticks; the avg_* columns are computed
    /// between them, as PgBouncer does.
    var previousStats: [String: PoolStats] = [:]
    var olderStats: [String: PoolStats] = [:]
    var statsPeriodMicroseconds: UInt64 = 0
    private var lastStatsTime: UInt64
    private var lastStatsLog: UInt64

    enum Shutdown { case none, waitForServers, waitForClients, immediate }
    fileprivate(set) var shutdown: Shutdown = .none
    /// New logins are refused once any shutdown has begun.
    var acceptingClients: Bool { shutdown == .none }
    /// Servers keep serving connected clients during WAIT_FOR_CLIENTS; during
    /// WAIT_FOR_SERVERS they close as soon as they are released.
    var serversUsable: Bool { (shutdown == .none || shutdown == .waitForClients) && !exiting }
    /// This loop's thread is ending (workers > 1): late work posted to it only settles.
    private(set) var exiting = false
    /// The process's exit status once loop 0 returns (1 after going down while suspended).
    private(set) var exitStatus: Int32 = 0

    var pauseMode = PauseMode.none { didSet { pauseChanged() } }
    var pausedDatabases: Set<String> = [] { didSet { pauseChanged() } }
    /// PAUSE, SUSPEND or a paused database: checked at every transaction as one load.
    private(set) var anythingPaused = false
    private func pauseChanged() { anythingPaused = pauseMode != .none || !pausedDatabases.isEmpty }
    var disabledDatabases: Set<String> = []
    var pendingAdminReplies: [PendingAdminReply] = []

    /// Where TLS connections read ciphertext before OpenSSL takes it (one per loop).
    let readScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    /// Bytes buffered toward a peer beyond which the other side stops reading.
    let backpressureLimit: Int

    /// TLS contexts from the current configuration.
    var tlsSetup: TLSSetup

    init(config: Config, log: Logger, workers: Workers = Workers(count: 1), index: Int = 0) throws {
        self.workers = workers
        self.workerIndex = index
        self.config = config
        self.settings = config.settings
        self.sessionSettingsTemplate = SessionSettings(extraTracked: config.settings.trackExtraParameters)
        self.log = log
        self.tlsSetup = try TLSSetup.make(config.settings)
        self.loop = try EventLoop()
        // From here on a signal is queued for the loop (even one that arrives before the
        // loop runs): a SIGHUP during start-up must not kill the process by default action.
        if index == 0 { pooler_install_signal_handlers(loop.wakeDescriptor) }
        backpressureLimit = max(config.settings.pktBuf * 16, 64 * 1024)
        lastStatsTime = loop.now
        lastStatsLog = loop.now
        try loadAuthFile()
    }

    func nextConnectionID() -> Int {
        connectionCounter += 1
        return Workers.connectionID(counter: connectionCounter - 1, index: workerIndex, count: workers.count)
    }

    private func loadAuthFile() throws {
        authSecrets = settings.authFile.isEmpty ? [:] : try AuthFile.load(path: settings.authFile)
        hba = try Self.loadHBA(settings)
        identMaps = hba == nil ? nil : try Self.loadIdentMaps(settings)
    }

    /// auth_type = hba: the rules of auth_hba_file.
    private(set) var hba: HBA?
    /// The maps of auth_ident_file, read with the hba file.
    private(set) var identMaps: HBAIdentMaps?

    static func loadHBA(_ settings: Settings) throws -> HBA? {
        guard settings.authType == .hba else { return nil }
        guard !settings.authHBAFile.isEmpty else { throw StartupError("auth_type = hba needs auth_hba_file") }
        return try HBA.load(path: settings.authHBAFile, identMaps: loadIdentMaps(settings))
    }

    /// auth_ident_file: the maps `map=` names in the hba file (nil: none configured).
    static func loadIdentMaps(_ settings: Settings) throws -> HBAIdentMaps? {
        settings.authIdentFile.isEmpty ? nil : try HBAIdentMaps.load(path: settings.authIdentFile)
    }

    func secret(for user: String) -> String? { authSecrets[user] }

    /// SCRAM verifiers parsed from auth_file / auth_query secrets, by user (the secret
    /// text is compared, so a changed secret is parsed again). Parsing (split, base64)
    /// was ~8% of a login's instructions. Bounded: emptied when it grows past 10,000.
    private var scramVerifiers: [String: (secret: String, verifier: SCRAMSecret)] = [:]

    func scramVerifier(user: String, secret: String) -> SCRAMSecret? {
        if let cached = scramVerifiers[user], cached.secret == secret { return cached.verifier }
        guard let verifier = SCRAMSecret.parse(secret) else { return nil }
        if scramVerifiers.count >= 10_000 { scramVerifiers.removeAll() }
        scramVerifiers[user] = (secret, verifier)
        return verifier
    }

    /// auth_query results: secret (nil: unknown user) and expiry, by database and user.
    var authLookups: [String: AuthQueryConnection] = [:]
    var authLookupWaiters: [String: [ClientConnection]] = [:]
    /// auth_query lookups waiting for the auth database's host name to resolve.
    var authLookupsAwaitingHost: Set<String> = []
    /// Work waiting for a host name to resolve (see withAddress).
    var hostWaiters: [HostWaiter] = []

    // MARK: listening

    func startListening() throws {
        // Metrics first: once the client port accepts, the whole pooler is up.
        try startMetricsListener()
        if try adoptSystemdSockets() { return }
        let backlog = Int32(clamping: max(settings.listenBacklog, 1))
        // The unix socket before TCP: whoever sees the TCP port accept may use either.
        if !settings.unixSocketDir.isEmpty {
            let path = "\(settings.unixSocketDir)/.s.PGSQL.\(settings.listenPort)"
            let fd = try ListenSocket.unix(path: path, mode: settings.unixSocketMode, group: settings.unixSocketGroup,
                                           backlog: backlog)
            try addListener(fd: fd, isUnix: true, path: path)
            log.info("listening on unix:\(path)")
        }
        for address in settings.listenAddresses {
            let hosts = address == "*" ? ["0.0.0.0", "::"] : [address]
            for host in hosts {
                let resolved = SocketAddress.resolve(host: host, port: settings.listenPort, passive: true)
                guard !resolved.isEmpty else {
                    throw StartupError("could not resolve listen_addr \(host)")
                }
                // Every address the name has (localhost: 127.0.0.1 and ::1), as PgBouncer.
                var bound: Set<String> = []
                for address in resolved where bound.insert(address.description).inserted {
                    let fd = try ListenSocket.tcp(address, backlog: backlog, reusePort: settings.soReuseport,
                                                  deferAccept: settings.tcpDeferAccept)
                    try addListener(fd: fd, isUnix: false, path: nil)
                    log.info("listening on \(address)")
                }
            }
        }
        if listeners.isEmpty { throw StartupError("nowhere to listen: set listen_addr or unix_socket_dir") }
    }

    private func addListener(fd: Int32, isUnix: Bool, path: String?) throws {
        let listener = ListenerHandler(pooler: self, fd: fd, isUnix: isUnix, port: settings.listenPort, path: path)
        // With several loops each waits on the same listening sockets; EPOLLEXCLUSIVE wakes
        // one of them per connection (a loop busy elsewhere is not in epoll_wait, so the
        // idle ones take the new clients).
        try listener.register(events: EventMask.readable | (workers.count > 1 ? EventMask.exclusive : 0))
        listeners.append(listener)
    }

    /// workers > 1: this loop accepts on the listening sockets of loop 0 too, through
    /// its own descriptors (dup), which it closes itself.
    func shareListeners(of first: Pooler) throws {
        for listener in first.listeners {
            let fd = dup(listener.fd)
            guard fd >= 0 else { throw SystemError("dup", errno: errno) }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            try addListener(fd: fd, isUnix: listener.isUnix, path: nil)
        }
    }

    var metricsListeners: [MetricsListener] = []
    var metricsConnections: [Int: MetricsConnection] = [:]

    /// metrics_listen_addr/metrics_listen_port: the Prometheus endpoint (off at port 0).
    private func startMetricsListener() throws {
        guard settings.metricsListenPort > 0 else { return }
        let address = settings.metricsListenAddr.isEmpty ? "127.0.0.1" : settings.metricsListenAddr
        for host in address == "*" ? ["0.0.0.0", "::"] : [address] {
            guard let resolved = SocketAddress.resolve(host: host, port: settings.metricsListenPort, passive: true).first else {
                throw StartupError("could not resolve metrics_listen_addr \(host)")
            }
            let fd = try ListenSocket.tcp(resolved, backlog: 16, reusePort: false)
            let listener = MetricsListener(pooler: self, fd: fd)
            try listener.register(events: EventMask.readable)
            metricsListeners.append(listener)
            log.info("metrics on http://\(resolved)/metrics")
        }
    }

    /// systemd socket activation (PgBouncer's pgbouncer.socket): LISTEN_FDS sockets from
    /// fd 3 on, for this pid, are the listeners instead of listen_addr/unix_socket_dir.
    private func adoptSystemdSockets() throws -> Bool {
        guard let pidText = getenv("LISTEN_PID"), Int32(String(cString: pidText)) == getpid(),
              let countText = getenv("LISTEN_FDS"), let count = Int32(String(cString: countText)), count > 0 else {
            return false
        }
        for fd in 3..<(3 + count) {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let isUnix = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            } == 0 && Int32(storage.ss_family) == AF_UNIX
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            try addListener(fd: fd, isUnix: isUnix, path: nil)
            log.info("listening on systemd socket fd \(fd)\(isUnix ? " (unix)" : "")")
        }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        return true
    }

    /// Stops accepting; `keepUnixSocket` leaves the unix socket open so an operator can
    /// still reach the admin console during a graceful shutdown, as in PgBouncer.
    private func closeListeners(keepUnixSocket: Bool = false) {
        for listener in listeners where !(keepUnixSocket && listener.isUnix) { listener.close() }
        listeners = keepUnixSocket ? listeners.filter(\.isUnix) : []
    }

    /// SUSPEND: this loop stops accepting (connections wait in the listen backlog).
    func stopAccepting() {
        for listener in listeners { listener.stopAccepting() }
    }

    /// Loop time at which this loop accepts again after accept() failed (0: it has not).
    private var acceptRetryAt: UInt64 = 0
    /// How long accepting stays off after accept() failed: PgBouncer's err_timeout.
    static let acceptRetryDelay: UInt64 = 5_000_000

    /// accept() failed, most likely for want of descriptors (EMFILE, ENFILE). Trying
    /// again at once would spin, the listener staying readable: as PgBouncer, this loop
    /// says so and stops accepting for acceptRetryDelay (the janitor resumes it).
    func acceptFailed(_ error: SystemError) {
        log.error("accept() failed: \(String(cString: strerror(error.errno)))")
        stopAccepting()
        for listener in metricsListeners { listener.stopAccepting() }
        acceptRetryAt = loop.now &+ Self.acceptRetryDelay
    }

    /// RESUME after SUSPEND, or acceptRetryDelay after accept() failed: this loop
    /// accepts again (client connections not while suspended).
    func resumeAccepting() {
        let sockets: [ListeningSocket] = (pauseMode == .suspend ? [] : listeners) + metricsListeners
        for socket in sockets {
            do {
                try socket.resumeAccepting()
            } catch {
                log.error("could not accept again on a listening socket: \(error)")
            }
        }
    }

    func accept(fd: Int32, remote: SocketAddress, localPort: Int, isUnix: Bool) {
        ListenSocket.configureDataSocket(fd, isTCP: !isUnix, options: tcpOptions)
        let target = workers.placeNewClient(acceptedOn: workerIndex)
        if target != workerIndex {
            // The client lives on the loop with the fewest clients (see placeNewClient).
            if workers.post(to: target, { $0.startClient(fd: fd, remote: remote, localPort: localPort, isUnix: isUnix) }) {
                return
            }
            workers.moveClient(from: target, to: workerIndex)
        }
        startClient(fd: fd, remote: remote, localPort: localPort, isUnix: isUnix)
    }

    /// A client accepted (here or by another loop) starts its login on this loop.
    private func startClient(fd: Int32, remote: SocketAddress, localPort: Int, isUnix: Bool) {
        guard !exiting else {
            Syscall.close(fd)
            workers.clientLeft(loop: workerIndex, countedInTotal: true)
            return
        }
        let client = ClientConnection(pooler: self, fd: fd, remote: remote, localPort: localPort, isUnixSocket: isUnix)
        do {
            try client.register()
        } catch {
            log.warning("could not register client: \(error)")
            Syscall.close(fd)
            workers.clientLeft(loop: workerIndex, countedInTotal: true)
            return
        }
        clients[client.id] = client
    }

    func clientClosed(_ client: ClientConnection) {
        clients[client.id] = nil
        workers.clientLeft(loop: workerIndex, countedInTotal: !client.countedAsAdmin)
        if client.countedAsAdmin { adminClientCount -= 1 }
        if client.countedForLimits {
            workers.releaseClient(database: client.databaseName, user: client.user)
        }
        checkShutdownProgress()
    }

    /// Clients that asked for the admin database; max_client_conn does not count them.
    var adminClientCount = 0

    func clientCount(excludingAdmin: Bool) -> Int {
        excludingAdmin ? clients.count - adminClientCount : clients.count
    }

    // MARK: pools

    /// The pool for a client's (database, user), created on first use. A database entry
    /// with `user=` sends every client to that user's pool, as in PgBouncer.
    func pool(database name: String, clientUser: String, scramKeys: (clientKey: [UInt8], serverKey: [UInt8])?,
              lookedUpSecret: String? = nil) -> PoolRuntime? {
        guard let database = config.database(named: name) else { return nil }
        let serverUser = database.user ?? clientUser
        let key = PoolKey(database: name, user: serverUser)
        if let pool = pools[key] {
            if let scramKeys, database.password == nil, database.user == nil {
                pool.credential = .scramKeys(clientKey: scramKeys.clientKey, serverKey: scramKeys.serverKey)
            }
            return pool
        }
        let credential: ServerCredential
        if let password = database.password {
            credential = .plaintext(password)
        } else if let scramKeys, database.user == nil {
            credential = .scramKeys(clientKey: scramKeys.clientKey, serverKey: scramKeys.serverKey)
        } else if let secret = secret(for: serverUser) ?? (serverUser == clientUser ? lookedUpSecret : nil) {
            credential = Self.serverCredential(secret: secret)
        } else {
            credential = .none
        }
        let limits = poolLimits(database: database, user: serverUser)
        let pool = PoolRuntime(pooler: self, key: key, database: database, serverUser: serverUser,
                               credential: credential, limits: limits,
                               isAutoDatabase: config.databases[name] == nil)
        pools[key] = pool
        poolOrder.append(key)
        return pool
    }

    /// How the pooler logs in to servers with a stored secret: a SCRAM verifier needs a
    /// client's keys first (none until one logs in), md5 hashes and plain passwords serve.
    static func serverCredential(secret: String) -> ServerCredential {
        if SCRAMSecret.parse(secret) != nil { return .none }
        return MD5Password.isMD5Hash(secret) ? .md5Hash(secret) : .plaintext(secret)
    }

    /// A pool's limits as PgBouncer 1.25 resolves them: the [users] entry, then the
    /// database entry, then the [pgbouncer] defaults (pool_size 0 = no limit).
    func poolLimits(database: DatabaseEntry, user: String) -> PoolLimits {
        let userEntry = config.users[user]
        return PoolLimits(poolSize: userEntry?.poolSize ?? database.poolSize ?? settings.defaultPoolSize,
                          minPoolSize: database.minPoolSize ?? settings.minPoolSize,
                          reservePoolSize: userEntry?.reservePoolSize ?? database.reservePoolSize ?? settings.reservePoolSize,
                          reservePoolTimeout: UInt64(settings.reservePoolTimeout * 1_000_000),
                          mode: userEntry?.poolMode ?? database.poolMode ?? settings.poolMode,
                          roundRobin: settings.serverRoundRobin)
    }

    var orderedPools: [PoolRuntime] { poolOrder.compactMap { pools[$0] } }

    /// How many more servers max_db_connections / max_user_connections allow for `pool`
    /// (counting the servers of every loop).
    func globalServerRoom(for pool: PoolRuntime) -> Int {
        var room = Int.max
        let dbLimit = pool.database.maxDbConnections ?? settings.maxDbConnections
        if dbLimit > 0 { room = min(room, dbLimit - workers.serverCount(database: pool.key.database)) }
        let userLimit = config.users[pool.key.user]?.maxUserConnections ?? settings.maxUserConnections
        if userLimit > 0 { room = min(room, userLimit - workers.serverCount(user: pool.key.user)) }
        return max(room, 0)
    }

    /// Closes up to `count` idle servers of other pools that share a full
    /// max_db_connections or max_user_connections limit with `pool`; returns how many.
    func evictIdleServers(for pool: PoolRuntime, count: Int) -> Int {
        let dbLimit = pool.database.maxDbConnections ?? settings.maxDbConnections
        let userLimit = config.users[pool.key.user]?.maxUserConnections ?? settings.maxUserConnections
        let evicted = evictIdleServers(sharingWith: pool.key, databaseLimited: dbLimit > 0, userLimited: userLimit > 0,
                                       count: count)
        if evicted < count && workers.count > 1 && !pool.evictionPending {
            // The idle servers under the same limit may be on other loops: one loop at a
            // time (in turn) closes some of its own.
            let key = pool.key, wanted = count - evicted
            pool.evictionCursor = (pool.evictionCursor + 1) % workers.count
            if pool.evictionCursor == workerIndex { pool.evictionCursor = (pool.evictionCursor + 1) % workers.count }
            pool.requestEviction(on: pool.evictionCursor) { other in
                other.evictIdleServers(sharingWith: key, databaseLimited: dbLimit > 0, userLimited: userLimit > 0,
                                       count: wanted)
            }
        }
        return evicted
    }

    /// Closes up to `count` idle servers of this loop's pools other than `key` that share
    /// its database (when that is limited) or user (likewise).
    private func evictIdleServers(sharingWith key: PoolKey, databaseLimited: Bool, userLimited: Bool, count: Int) -> Int {
        var evicted = 0
        for other in orderedPools where other.key != key && evicted < count {
            let sharesDatabase = databaseLimited && other.key.database == key.database
            let sharesUser = userLimited && other.key.user == key.user
            guard sharesDatabase || sharesUser else { continue }
            for server in other.state.idle where evicted < count {
                guard other.state.removeIdle(server) else { continue }
                server.terminate(reason: "evicted")
                evicted += 1
            }
        }
        return evicted
    }

    /// A server went idle: a pool over a shared limit may now open one.
    func serverBecameIdle() {
        if shutdown == .waitForServers { checkShutdownProgress() }
    }

    /// Cancel requests in flight to servers.
    var cancelForwarders: [CancelForwarder] = []
    /// Peers a cancel request was forwarded to: each has a row in SHOW PEER_POOLS from
    /// then on (PgBouncer creates a peer pool on first use).
    var peersUsed = Set<Int>()

    /// Routes a client's CancelRequest to the backend its current transaction runs on.
    /// A request for a client without a server (or an unknown key) is dropped, as
    /// PostgreSQL does for keys it does not know. Keys are compared in constant time.
    /// `done` runs on this loop once the request is over: taken by the server (or peer),
    /// failed, expired after cancel_wait_timeout, or dropped.
    func forwardCancel(processID: Int32, secretKey: Int32, done: @escaping () -> Void) {
        switch CancelKey.route(processID: processID, secretKey: secretKey, ownPeerID: settings.peerID) {
        case .expired:
            log.debug("cancel request dropped: its TTL was exhausted between peers")
            done()
        case .peer(let id, let pid, let key):
            // Another instance behind the same address owns the client (peering).
            guard let peer = config.peers[id] else {
                log.warning("could not find peer \(id) to forward a cancel request to")
                return done()
            }
            log.debug("forwarding cancellation request to peer \(id)")
            peersUsed.insert(id)
            withAddress(host: peer.host, port: peer.port) { [unowned self] address in
                guard let address, let forwarder = CancelForwarder(pooler: self, address: address, processID: pid,
                                                                   secretKey: key, peerID: id) else { return done() }
                forwarder.onFinish = done
            }
        case .local(let pid, let key):
            if cancelLocalClient(processID: pid, secretKey: key, done: done) { return }
            // The client may be on another loop: the others look (at most one matches).
            // The one that does finishes the request; if none does, it is dropped.
            var unanswered = workers.count - 1
            guard unanswered > 0 else { return done() }
            let requester = workerIndex
            let noMatch = {
                unanswered -= 1
                if unanswered == 0 { done() }
            }
            for index in 0..<workers.count where index != workerIndex {
                let posted = workers.post(to: index) { other in
                    let found = other.cancelLocalClient(processID: pid, secretKey: key) {
                        other.workers.post(to: requester) { _ in done() }
                    }
                    if !found { other.workers.post(to: requester) { _ in noMatch() } }
                }
                if !posted { noMatch() }
            }
        }
    }

    /// Forwards a cancel for a client of this loop; false if none has that key. `done`
    /// runs (on this loop) when the request is over.
    private func cancelLocalClient(processID pid: Int32, secretKey key: Int32, done: @escaping () -> Void) -> Bool {
        var match: ClientConnection?
        for client in clients.values where client.cancelKey.processID == pid {
            if Crypto.constantTimeEquals(Self.bytes(client.cancelKey.secretKey), Self.bytes(key)) { match = client }
        }
        guard let client = match else { return false }
        if let server = client.server, let forwarder = CancelForwarder(pooler: self, target: server) {
            forwarder.onFinish = done
        } else {
            done()
        }
        return true
    }

    private static func bytes(_ value: Int32) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    var adminWelcomeParameters: [(String, String)] {
        AdminConsole.welcomeParameters().map { ($0.name, $0.value) }
    }

    /// Host names of [databases] entries, resolved off the loop and cached for dns_max_ttl.
    lazy var resolver = HostResolver(wakeFD: loop.wakeDescriptor, ttl: UInt64(settings.dnsMaxTTL * 1_000_000),
                                     negativeTTL: UInt64(settings.dnsNXDomainTTL * 1_000_000))

    /// Pools waiting for a host name open their servers now.
    func resolvedHostsArrived() {
        let hosts = resolver.takeFinished(now: loop.now)
        guard !hosts.isEmpty else { return }
        for pool in orderedPools where hosts.contains(pool.database.host ?? "") { pool.launchServers() }
        if !hostWaiters.isEmpty { hostsResolved(hosts) }
    }

    // MARK: running

    /// A loop on its own thread (workers > 1): runs until stopped, then closes its
    /// servers, so that the other loops may open theirs within the shared limits.
    func runWorker() {
        do {
            try run()
        } catch {
            log.error("event loop \(workerIndex) failed: \(error)")
        }
        exiting = true
        for pool in pools.values {
            for server in Array(pool.servers.values) { server.terminate(reason: "shutting down") }
        }
        // Work that arrived too late runs in exiting mode: servers and clients on their
        // way here close, cancel lookups answer.
        for work in workers.markExited(workerIndex) { work(self) }
        for client in Array(clients.values) { client.close(reason: "shutting down") }
    }

    func run() throws {
        workers.pinCurrentThread(loop: workerIndex, log: log)
        loop.onWake { [unowned self] in
            self.workers.serviceInbox(of: self)
            if self.workerIndex == 0 { self.handleSignals() }
            self.resolvedHostsArrived()
        }
        try loop.run(tickMilliseconds: 200) { self.janitor() }
        closeListeners()
    }

    /// Runs `body` for every running loop (this one included) while the others wait at a
    /// safe point; with one loop, for this one. For state every loop holds its own copy
    /// of: pause, configuration, shutdown.
    func everyLoop(_ body: (Pooler) -> Void) {
        workers.stopTheWorld(from: workerIndex) {
            for pooler in workers.runningLoops { body(pooler) }
        }
    }

    private func handleSignals() {
        if pooler_take_signal(SIGQUIT) > 0 { beginShutdown(.immediate) }
        if pooler_take_signal(SIGINT) > 0 {
            if pauseMode == .suspend { return goDownWhileSuspended() }
            beginShutdown(shutdown == .none ? .waitForServers : .immediate)
        }
        if pooler_take_signal(SIGTERM) > 0 {
            if pauseMode == .suspend { return goDownWhileSuspended() }
            beginShutdown(shutdown == .none ? .waitForClients : .immediate)
        }
        if pooler_take_signal(SIGHUP) > 0 {
            log.info("got SIGHUP, re-reading config")
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            _ = pooler_sd_notify("RELOADING=1\nMONOTONIC_USEC=\(Int(now.tv_sec) * 1_000_000 + Int(now.tv_nsec) / 1000)")
            reload()
            _ = pooler_sd_notify("READY=1")
        }
        if pooler_take_signal(SIGUSR1) > 0 {
            log.info("got SIGUSR1, pausing all activity")
            everyLoop { pooler in
                if pooler.pauseMode == .none { pooler.pauseMode = .pause; pooler.applyPause() }
            }
        }
        if pooler_take_signal(SIGUSR2) > 0 {
            log.info("got SIGUSR2, continuing")
            everyLoop { $0.resume(clearingPausedDatabases: true) }
        }
    }

    /// SIGINT or SIGTERM while suspended, as PgBouncer's die(): a graceful shutdown
    /// would wait for clients that are not read, so the pooler ends at once, with exit
    /// status 1.
    private func goDownWhileSuspended() {
        log.error("suspend was in progress, going down immediately")
        exitStatus = 1
        beginShutdown(.immediate, quietly: true)
    }

    func beginShutdown(_ mode: Shutdown, quietly: Bool = false) {
        switch mode {
        case .none: return
        case .immediate: if !quietly { log.info("got SIGQUIT or second shutdown signal, fast exit") }
        case .waitForServers: log.info("got SIGINT, shutting down, waiting for servers")
        case .waitForClients: log.info("got SIGTERM, shutting down, waiting for clients")
        }
        _ = pooler_sd_notify("STOPPING=1")
        everyLoop { pooler in
            pooler.shutdown = mode
            pooler.closeListeners(keepUnixSocket: mode != .immediate)
            pooler.checkShutdownProgress()
        }
    }

    /// This loop's part of a shutdown is over: it stops. Loop 0, which handles signals
    /// and whose return ends the process, stops last.
    private func stopForShutdown() {
        if workerIndex == 0 && !workers.othersExited { return }
        loop.stop()
    }

    private func checkShutdownProgress() {
        switch shutdown {
        case .none:
            return
        case .immediate:
            stopForShutdown()
        case .waitForClients:
            if clientCount(excludingAdmin: true) == 0 { stopForShutdown() }
        case .waitForServers:
            // Idle servers close right away; active ones finish their transaction first.
            for pool in pools.values {
                for server in pool.state.idle where pool.state.removeIdle(server) {
                    server.terminate(reason: "shutting down")
                }
            }
            if pools.values.allSatisfy({ $0.state.activeCount == 0 }) { stopForShutdown() }
        }
    }

    /// Re-reads the config and auth file; a file that does not load is refused whole
    /// and the running configuration stays as it was. Returns false then.
    @discardableResult
    func reload() -> Bool {
        // conffile (set in the file or with SET) names the file RELOAD reads.
        if !settings.conffile.isEmpty { configPath = settings.conffile }
        log.info("reloading config from \(configPath)")
        var fresh: Config
        let tls: TLSSetup
        do {
            fresh = try Config.load(path: configPath)
            keepRestartOnlyKeys(in: &fresh.settings)
            _ = fresh.settings.authFile.isEmpty ? [:] : try AuthFile.load(path: fresh.settings.authFile)
            tls = try TLSSetup.make(fresh.settings)
            let freshHBA = try Self.loadHBA(fresh.settings)
            let freshMaps = freshHBA == nil ? nil : try Self.loadIdentMaps(fresh.settings)
            everyLoop { pooler in
                pooler.hba = freshHBA
                pooler.identMaps = freshMaps
            }
        } catch {
            log.error("config reload failed, keeping the old configuration: \(error)")
            return false
        }
        for warning in fresh.warnings { log.warning(warning) }
        let path = configPath
        everyLoop { pooler in
            pooler.configPath = path
            pooler.tlsSetup = tls
            pooler.apply(fresh)
        }
        return true
    }

    /// Keys that need a restart (listen_port, pkt_buf, workers, disable_pqexec, ...) keep
    /// their running value on RELOAD, as PgBouncer's reload skips them: applying them
    /// halfway (SHOW CONFIG saying one thing, the listeners another; disable_pqexec
    /// changing under connected clients) helps nobody. A change waits for the restart.
    private func keepRestartOnlyKeys(in fresh: inout Settings) {
        for key in ConfigKeys.all where !key.reloadable {
            guard let running = settings.value(of: key.name), let wanted = fresh.value(of: key.name),
                  running != wanted else { continue }
            log.warning("\(key.name) changed from '\(running)' to '\(wanted)' in the config: it needs a restart, keeping '\(running)'")
            try? fresh.set(key.name, to: running)
        }
    }

    /// Puts a new configuration in force (RELOAD, SIGHUP, SET): pool sizes and modes
    /// follow it; servers of a database whose connection settings changed are replaced
    /// once released; a removed database keeps its pool until its clients leave.
    func apply(_ fresh: Config) {
        let old = config
        config = fresh
        let oldSecrets = authSecrets
        if let secrets = try? (fresh.settings.authFile.isEmpty ? [:] : AuthFile.load(path: fresh.settings.authFile)) {
            authSecrets = secrets
        }
        if workerIndex == 0 { reconfigureLog(from: old.settings, to: fresh.settings) }
        resolver.ttl = UInt64(fresh.settings.dnsMaxTTL * 1_000_000)
        resolver.negativeTTL = UInt64(fresh.settings.dnsNXDomainTTL * 1_000_000)
        for pool in pools.values {
            guard let database = fresh.database(named: pool.key.database) else {
                // Removed: its clients may finish; it opens no more servers of its own
                // accord and goes once they have (freeUnusedPools).
                pool.state.limits.minPoolSize = 0
                continue
            }
            // As PgBouncer's parse_database: any of these makes the entry a new one.
            let changed = database.host != pool.database.host || database.port != pool.database.port
                || database.dbname != pool.database.dbname || database.user != pool.database.user
                || database.password != pool.database.password || database.connectQuery != pool.database.connectQuery
                || database.authUser != pool.database.authUser || database.authQuery != pool.database.authQuery
                || database.authDbname != pool.database.authDbname || database.loadBalanceHosts != pool.database.loadBalanceHosts
            // New server logins use the new password: the entry's, or the auth_file's when
            // the server user's secret there changed (a SCRAM verifier waits for the next
            // client's keys), as PgBouncer updates the credentials its pools point to.
            if let password = database.password {
                pool.credential = .plaintext(password)
            } else if pool.database.password != nil || oldSecrets[pool.key.user] != authSecrets[pool.key.user] {
                pool.credential = authSecrets[pool.key.user].map(Self.serverCredential) ?? .none
            }
            pool.database = database
            pool.state.limits = poolLimits(database: database, user: pool.key.user)
            if changed { pool.reconnect() }
            pool.launchServers()
        }
    }

    /// The logger is shared by the loops: reconfigured once (by loop 0).
    private func reconfigureLog(from old: Settings, to fresh: Settings) {
        log.verbose = fresh.verbose
        if fresh.logfile != old.logfile { log.reopen(path: fresh.logfile) }
        if fresh.syslog != old.syslog || fresh.syslogIdent != old.syslogIdent || fresh.syslogFacility != old.syslogFacility {
            log.configureSyslog(enabled: fresh.syslog, ident: fresh.syslogIdent, facility: fresh.syslogFacility)
        }
    }

    /// Servers opened, closed or arrived from another loop: PAUSE/WAIT_CLOSE replies
    /// here and on the other loops may be due.
    func adminRepliesMayBeDue() {
        completePendingAdminReplies()
        workers.pokeAdminReplies(from: workerIndex)
    }

    var configPath = ""

    /// Runs timeouts and pool upkeep; once per tick (200 ms).
    private func janitor() {
        let now = loop.now
        let loginTimeout = UInt64(settings.clientLoginTimeout * 1_000_000)
        let connectTimeout = UInt64(settings.serverConnectTimeout * 1_000_000)
        if loginTimeout > 0 {
            for client in clients.values where !client.isLoggedIn && now &- client.connectTime > loginTimeout {
                client.fail(message: "client_login_timeout (server down)", code: SQLState.protocolViolation)
            }
        }
        let clientIdleTimeout = UInt64(settings.clientIdleTimeout * 1_000_000)
        if clientIdleTimeout > 0 {
            for client in clients.values where client.state == .idle && now &- client.requestTime > clientIdleTimeout {
                client.fail(message: "client_idle_timeout", code: SQLState.protocolViolation)
            }
        }
        enforceTransactionTimeouts(now: now)
        if !authLookups.isEmpty { maintainAuthLookups(now: now) }
        if !hostWaiters.isEmpty { expireHostWaiters(now: now) }
        if workerIndex == 0 { workers.pruneAuthSecrets(now: now) }
        for pool in pools.values {
            if connectTimeout > 0 {
                for server in pool.state.loggingIn {
                    if server.isLoggingIn, now &- server.connectTime > connectTimeout {
                        server.ioFailed(SystemError("connect", errno: ETIMEDOUT))
                    }
                }
            }
            pool.maintain(now: now)
        }
        freeUnusedPools(now: now)
        let period = UInt64(max(settings.statsPeriod, 1)) * 1_000_000
        if now &- lastStatsTime >= period {
            statsPeriodMicroseconds = now &- lastStatsTime
            lastStatsTime = now
            olderStats = previousStats
            previousStats = statsByDatabase()
            if settings.logStats && workerIndex == 0 { logStats() }
        }
        let cancelTimeout = UInt64(settings.cancelWaitTimeout * 1_000_000)
        for forwarder in cancelForwarders where cancelTimeout > 0 { forwarder.expireIfOlder(than: cancelTimeout, now: now) }
        completePendingAdminReplies()
        if workerIndex == 0 && pauseMode == .suspend { resumeIfSuspendedWithoutAdmin() }
        if acceptRetryAt != 0 && now >= acceptRetryAt {
            acceptRetryAt = 0
            resumeAccepting()
        }
        resolvedHostsArrived()
        if shutdown != .none { checkShutdownProgress() }
    }

    /// autodb_idle_timeout: pools made from the "*" entry that have had no client for
    /// that long are freed, their servers closed (PgBouncer's kill of an auto database).
    private func freeUnusedPools(now: UInt64) {
        // A database removed from the configuration (RELOAD): its pool goes once its
        // clients have, as PgBouncer drops such a database's pools.
        let removed = pools.values.filter { pool in
            pool.clientCount == 0 && pool.state.waiting.isEmpty && config.database(named: pool.key.database) == nil
        }
        for pool in removed {
            freePool(pool.key, log: "freeing pool \(pool.key): database removed from the configuration",
                     closing: "database removed")
        }
        let timeout = UInt64(settings.autodbIdleTimeout * 1_000_000)
        guard timeout > 0 else { return }
        var unused: [PoolKey] = []
        for pool in pools.values where pool.isAutoDatabase {
            guard pool.clientCount == 0, pool.state.waiting.isEmpty else {
                pool.unusedSince = nil
                continue
            }
            guard let since = pool.unusedSince else {
                pool.unusedSince = now
                continue
            }
            if now &- since >= timeout { unused.append(pool.key) }
        }
        for key in unused {
            freePool(key, log: "freeing unused automatic database pool \(key) (autodb_idle_timeout)",
                     closing: "unused automatic database")
        }
    }

    /// Drops the pool of `key` (no clients left), logs `line` and closes its servers on
    /// this loop for `reason`.
    private func freePool(_ key: PoolKey, log line: String, closing reason: String) {
        guard let pool = pools.removeValue(forKey: key) else { return }
        poolOrder.removeAll { $0 == key }
        log.info(line)
        for server in Array(pool.servers.values) { server.terminate(reason: reason) }
    }

    /// query_timeout, transaction_timeout and idle_transaction_timeout, per user entry or
    /// global, as PgBouncer:
    /// the server is closed and its client gets the reason.
    private func enforceTransactionTimeouts(now: UInt64) {
        for pool in pools.values where pool.state.activeCount > 0 {
            let user = config.users[pool.key.user]
            let queryTimeout = UInt64((user?.queryTimeout ?? settings.queryTimeout) * 1_000_000)
            let idleTimeout = UInt64((user?.idleTransactionTimeout ?? settings.idleTransactionTimeout) * 1_000_000)
            let transactionTimeout = UInt64((user?.transactionTimeout ?? settings.transactionTimeout) * 1_000_000)
            guard queryTimeout > 0 || idleTimeout > 0 || transactionTimeout > 0 else { continue }
            for server in pool.servers.values where server.poolMembership == .active {
                guard server.state == .active, let client = server.client else { continue }
                let reason: String
                if queryTimeout > 0 && server.tracker.outstanding > 0 && now &- client.requestTime > queryTimeout {
                    reason = "query timeout"
                } else if transactionTimeout > 0 && !server.tracker.isClean && now &- server.transactionStart > transactionTimeout {
                    reason = "transaction timeout"
                } else if idleTimeout > 0 && server.tracker.outstanding == 0 && server.tracker.status != .idle
                            && now &- server.lastReadyTime > idleTimeout {
                    reason = "idle transaction timeout"
                } else {
                    continue
                }
                client.fail(message: reason, code: SQLState.protocolViolation, detachServer: true)
                server.close(reason: reason)
            }
        }
    }

    func statsByDatabase() -> [String: PoolStats] {
        var result: [String: PoolStats] = [:]
        for pool in pools.values { result[pool.key.database, default: PoolStats()] = result[pool.key.database, default: PoolStats()] + pool.stats }
        return result
    }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
