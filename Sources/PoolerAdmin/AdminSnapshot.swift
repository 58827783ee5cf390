// Plain-data snapshot of the pooler's state, filled by the runtime for one admin command.
// Raw values only (counts, microseconds, unix-epoch microseconds, addresses as text);
// the console does PgBouncer's formatting.

public enum AdminPauseState: Equatable, Sendable {
    case none
    case paused
    case suspended
}

/// How `connect_time`/`request_time` are rendered: PgBouncer formats them with
/// localtime() as "YYYY-MM-DD HH:MM:SS TZNAME". Give the offset and tzname the process
/// uses (no TZ set in a container: UTC).
public struct AdminTimeZone: Equatable, Sendable {
    public var name: String
    public var offsetSeconds: Int
    public init(name: String = "UTC", offsetSeconds: Int = 0) {
        self.name = name
        self.offsetSeconds = offsetSeconds
    }
    public static let utc = AdminTimeZone()
}

/// One `[databases]` entry (and the admin database "pgbouncer", which PgBouncer lists too:
/// host nil, port listen_port, database "pgbouncer", forceUser "pgbouncer", poolSize 2,
/// poolMode "statement"). Values are the effective ones (overrides resolved against globals)
/// except `poolMode`, which is nil when the database does not override it.
public struct AdminDatabase: Equatable, Sendable {
    public var name: String
    public var host: String?
    public var port: Int
    public var database: String
    public var forceUser: String?
    public var poolSize: Int
    public var minPoolSize: Int
    public var reservePoolSize: Int
    /// Effective server_lifetime in seconds.
    public var serverLifetimeSeconds: Int
    public var poolMode: String?
    /// The database's load_balance_hosts setting ("disable" / "round-robin"); shown only
    /// when `host` contains a comma.
    public var loadBalanceHosts: String
    public var maxConnections: Int
    public var currentConnections: Int
    public var maxClientConnections: Int
    public var currentClientConnections: Int
    public var paused: Bool
    public var disabled: Bool

    public init(name: String, host: String?, port: Int, database: String, forceUser: String? = nil,
                poolSize: Int, minPoolSize: Int = 0, reservePoolSize: Int = 0, serverLifetimeSeconds: Int = 3600,
                poolMode: String? = nil, loadBalanceHosts: String = "round-robin",
                maxConnections: Int = 0, currentConnections: Int = 0,
                maxClientConnections: Int = 0, currentClientConnections: Int = 0,
                paused: Bool = false, disabled: Bool = false) {
        self.name = name
        self.host = host
        self.port = port
        self.database = database
        self.forceUser = forceUser
        self.poolSize = poolSize
        self.minPoolSize = minPoolSize
        self.reservePoolSize = reservePoolSize
        self.serverLifetimeSeconds = serverLifetimeSeconds
        self.poolMode = poolMode
        self.loadBalanceHosts = loadBalanceHosts
        self.maxConnections = maxConnections
        self.currentConnections = currentConnections
        self.maxClientConnections = maxClientConnections
        self.currentClientConnections = currentClientConnections
        self.paused = paused
        self.disabled = disabled
    }
}

/// One (database, user) pool, in pool-list order.
public struct AdminPool: Equatable, Sendable {
    public var database: String
    public var user: String
    /// Clients linked to a server or idle (PgBouncer's active_client_list).
    public var clientsActive: Int
    public var clientsWaiting: Int
    public var clientsActiveCancelRequest: Int
    public var clientsWaitingCancelRequest: Int
    public var serversActive: Int
    public var serversActiveCancel: Int
    public var serversBeingCanceled: Int
    public var serversIdle: Int
    public var serversUsed: Int
    public var serversTested: Int
    public var serversLogin: Int
    /// How long the first waiting client has waited (now - its query start), microseconds; 0 if none.
    public var maxWaitMicroseconds: UInt64
    /// Effective pool mode: "session", "transaction" or "statement".
    public var poolMode: String
    /// The pool's database host (to decide whether load_balance_hosts is shown).
    public var databaseHost: String?
    public var loadBalanceHosts: String

    public init(database: String, user: String,
                clientsActive: Int = 0, clientsWaiting: Int = 0,
                clientsActiveCancelRequest: Int = 0, clientsWaitingCancelRequest: Int = 0,
                serversActive: Int = 0, serversActiveCancel: Int = 0, serversBeingCanceled: Int = 0,
                serversIdle: Int = 0, serversUsed: Int = 0, serversTested: Int = 0, serversLogin: Int = 0,
                maxWaitMicroseconds: UInt64 = 0, poolMode: String = "session",
                databaseHost: String? = nil, loadBalanceHosts: String = "round-robin") {
        self.database = database
        self.user = user
        self.clientsActive = clientsActive
        self.clientsWaiting = clientsWaiting
        self.clientsActiveCancelRequest = clientsActiveCancelRequest
        self.clientsWaitingCancelRequest = clientsWaitingCancelRequest
        self.serversActive = serversActive
        self.serversActiveCancel = serversActiveCancel
        self.serversBeingCanceled = serversBeingCanceled
        self.serversIdle = serversIdle
        self.serversUsed = serversUsed
        self.serversTested = serversTested
        self.serversLogin = serversLogin
        self.maxWaitMicroseconds = maxWaitMicroseconds
        self.poolMode = poolMode
        self.databaseHost = databaseHost
        self.loadBalanceHosts = loadBalanceHosts
    }
}

public enum AdminClientState: String, Equatable, Sendable {
    /// In the pool's active list (shown as "idle" when not linked to a server).
    case active
    case waiting
    case activeCancelRequest = "active_cancel_req"
    case waitingCancelRequest = "waiting_cancel_req"
    /// Still logging in: not in SHOW CLIENTS, only in SHOW SOCKETS as cl_login.
    case login
}

public enum AdminServerState: String, Equatable, Sendable {
    /// Shown as "idle" when not linked to a client.
    case active
    case idle
    case used
    case tested
    /// Logging in (sv_login in SHOW POOLS).
    case new
    case activeCancel = "active_cancel"
    case beingCanceled = "being_canceled"
}

public enum AdminSocketState: Equatable, Sendable {
    case client(AdminClientState)
    case server(AdminServerState)
}

public enum AdminReplication: String, Equatable, Sendable {
    case none
    case logical
    case physical
}

/// One client or server connection (a row of SHOW CLIENTS / SERVERS / SOCKETS).
/// Rows are ordered by (poolIndex, state in PgBouncer's list order), stably; give peer pools
/// indices after all regular pools.
public struct AdminSocket: Equatable, Sendable {
    public var state: AdminSocketState
    /// Position of the socket's pool in the pool list (orders rows like PgBouncer's per-pool walk).
    public var poolIndex: Int
    /// Login user; nil shows "(nouser)".
    public var user: String?
    /// Pool's database name; nil (no pool, or a peer pool) shows "(nodb)".
    public var database: String?
    public var replication: AdminReplication
    /// Remote address as text ("unix" for Unix sockets).
    public var address: String
    public var port: Int
    public var localAddress: String
    public var localPort: Int
    /// Unix epoch microseconds; 0 renders as the current time (as PgBouncer does).
    public var connectTime: UInt64
    public var requestTime: UInt64
    /// Unix epoch microseconds when the current wait started (query_start); 0 = not waiting.
    public var queryStart: UInt64
    public var closeNeeded: Bool
    /// Identity of this connection object, rendered like "%p" (0x...).
    public var ptr: Int
    /// `ptr` of the linked connection, nil if unlinked (renders "").
    public var link: Int?
    /// Servers: backend PID (from BackendKeyData if not on a Unix socket); clients: peer PID or 0.
    public var remotePid: Int
    /// TLS description ("TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519"), "" without TLS.
    public var tls: String
    public var applicationName: String
    public var preparedStatements: Int
    public var id: UInt64
    // SHOW SOCKETS / ACTIVE_SOCKETS extras.
    public var recvPos: Int
    public var pktPos: Int
    public var pktRemain: Int
    public var sendPos: Int
    public var pktAvail: Int
    public var sendAvail: Int
    /// Has unsent or unparsed buffered data (ACTIVE_SOCKETS lists only these).
    public var hasBufferedData: Bool

    public init(state: AdminSocketState, poolIndex: Int = 0, user: String?, database: String?,
                replication: AdminReplication = .none,
                address: String, port: Int, localAddress: String, localPort: Int,
                connectTime: UInt64, requestTime: UInt64, queryStart: UInt64 = 0,
                closeNeeded: Bool = false, ptr: Int, link: Int? = nil, remotePid: Int = 0,
                tls: String = "", applicationName: String = "", preparedStatements: Int = 0, id: UInt64,
                recvPos: Int = 0, pktPos: Int = 0, pktRemain: Int = 0, sendPos: Int = 0,
                pktAvail: Int = 0, sendAvail: Int = 0, hasBufferedData: Bool = false) {
        self.state = state
        self.poolIndex = poolIndex
        self.user = user
        self.database = database
        self.replication = replication
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.connectTime = connectTime
        self.requestTime = requestTime
        self.queryStart = queryStart
        self.closeNeeded = closeNeeded
        self.ptr = ptr
        self.link = link
        self.remotePid = remotePid
        self.tls = tls
        self.applicationName = applicationName
        self.preparedStatements = preparedStatements
        self.id = id
        self.recvPos = recvPos
        self.pktPos = pktPos
        self.pktRemain = pktRemain
        self.sendPos = sendPos
        self.pktAvail = pktAvail
        self.sendAvail = sendAvail
        self.hasBufferedData = hasBufferedData
    }
}

/// One `[users]` / known user. Overrides are nil when not set; max* are effective values.
public struct AdminUser: Equatable, Sendable {
    public var name: String
    public var poolSize: Int?
    public var reservePoolSize: Int?
    public var poolMode: String?
    public var maxUserConnections: Int
    public var currentConnections: Int
    public var maxUserClientConnections: Int
    public var currentClientConnections: Int

    public init(name: String, poolSize: Int? = nil, reservePoolSize: Int? = nil, poolMode: String? = nil,
                maxUserConnections: Int = 0, currentConnections: Int = 0,
                maxUserClientConnections: Int = 0, currentClientConnections: Int = 0) {
        self.name = name
        self.poolSize = poolSize
        self.reservePoolSize = reservePoolSize
        self.poolMode = poolMode
        self.maxUserConnections = maxUserConnections
        self.currentConnections = currentConnections
        self.maxUserClientConnections = maxUserClientConnections
        self.currentClientConnections = currentClientConnections
    }
}

/// PgBouncer's PgStats: used both for totals since start and for per-second/per-event averages.
public struct AdminStatCounters: Equatable, Sendable {
    public var serverAssignmentCount: UInt64
    public var xactCount: UInt64
    public var queryCount: UInt64
    /// Bytes received from clients (PgBouncer's client_bytes).
    public var received: UInt64
    /// Bytes received from servers, i.e. sent to clients (server_bytes).
    public var sent: UInt64
    /// Microseconds.
    public var xactTime: UInt64
    public var queryTime: UInt64
    public var waitTime: UInt64
    public var clientParseCount: UInt64
    public var serverParseCount: UInt64
    public var bindCount: UInt64

    public init(serverAssignmentCount: UInt64 = 0, xactCount: UInt64 = 0, queryCount: UInt64 = 0,
                received: UInt64 = 0, sent: UInt64 = 0, xactTime: UInt64 = 0, queryTime: UInt64 = 0,
                waitTime: UInt64 = 0, clientParseCount: UInt64 = 0, serverParseCount: UInt64 = 0,
                bindCount: UInt64 = 0) {
        self.serverAssignmentCount = serverAssignmentCount
        self.xactCount = xactCount
        self.queryCount = queryCount
        self.received = received
        self.sent = sent
        self.xactTime = xactTime
        self.queryTime = queryTime
        self.waitTime = waitTime
        self.clientParseCount = clientParseCount
        self.serverParseCount = serverParseCount
        self.bindCount = bindCount
    }

    public static let zero = AdminStatCounters()

    /// Field-wise sum (stat_add), wrapping like PgBouncer's uint64 arithmetic.
    public static func + (a: AdminStatCounters, b: AdminStatCounters) -> AdminStatCounters {
        AdminStatCounters(
            serverAssignmentCount: a.serverAssignmentCount &+ b.serverAssignmentCount,
            xactCount: a.xactCount &+ b.xactCount, queryCount: a.queryCount &+ b.queryCount,
            received: a.received &+ b.received, sent: a.sent &+ b.sent,
            xactTime: a.xactTime &+ b.xactTime, queryTime: a.queryTime &+ b.queryTime,
            waitTime: a.waitTime &+ b.waitTime, clientParseCount: a.clientParseCount &+ b.clientParseCount,
            serverParseCount: a.serverParseCount &+ b.serverParseCount, bindCount: a.bindCount &+ b.bindCount)
    }

    /// PgBouncer's calc_average(): `current` = counters now, `older` = counters at the
    /// stats tick before last, `elapsedMicroseconds` = now - time of that tick.
    /// Counts and bytes become per-second rates; xact/query time are per transaction/query;
    /// wait time is per server assignment.
    public static func averages(current: AdminStatCounters, older: AdminStatCounters,
                                elapsedMicroseconds: UInt64) -> AdminStatCounters {
        guard elapsedMicroseconds > 0 else { return .zero }
        let usec: UInt64 = 1_000_000
        let dur = elapsedMicroseconds
        func rate(_ c: UInt64, _ o: UInt64) -> UInt64 { (usec &* (c &- o)) / dur }
        let queries = current.queryCount &- older.queryCount
        let xacts = current.xactCount &- older.xactCount
        let assignments = current.serverAssignmentCount &- older.serverAssignmentCount
        return AdminStatCounters(
            serverAssignmentCount: usec &* assignments / dur,
            xactCount: usec &* xacts / dur,
            queryCount: usec &* queries / dur,
            received: rate(current.received, older.received),
            sent: rate(current.sent, older.sent),
            xactTime: xacts > 0 ? (current.xactTime &- older.xactTime) / xacts : 0,
            queryTime: queries > 0 ? (current.queryTime &- older.queryTime) / queries : 0,
            waitTime: assignments > 0 ? (current.waitTime &- older.waitTime) / assignments : 0,
            clientParseCount: rate(current.clientParseCount, older.clientParseCount),
            serverParseCount: rate(current.serverParseCount, older.serverParseCount),
            bindCount: rate(current.bindCount, older.bindCount))
    }
}

/// Statistics of one database (sum over its pools), or of everything for SHOW TOTALS.
public struct AdminStats: Equatable, Sendable {
    /// Database name (ignored for the SHOW TOTALS aggregate).
    public var database: String
    public var totals: AdminStatCounters
    public var averages: AdminStatCounters

    public init(database: String, totals: AdminStatCounters, averages: AdminStatCounters) {
        self.database = database
        self.totals = totals
        self.averages = averages
    }

    /// Build from raw counters the way PgBouncer does at query time.
    public init(database: String, current: AdminStatCounters, older: AdminStatCounters,
                elapsedMicroseconds: UInt64) {
        self.init(database: database, totals: current,
                  averages: AdminStatCounters.averages(current: current, older: older,
                                                       elapsedMicroseconds: elapsedMicroseconds))
    }
}

/// SHOW LISTS counters.
public struct AdminLists: Equatable, Sendable {
    public var databases: Int
    public var users: Int
    public var peers: Int
    public var pools: Int
    public var peerPools: Int
    public var freeClients: Int
    public var usedClients: Int
    public var loginClients: Int
    public var freeServers: Int
    public var usedServers: Int
    public var dnsNames: Int
    public var dnsZones: Int
    public var dnsQueries: Int
    public var dnsPending: Int

    public init(databases: Int = 0, users: Int = 0, peers: Int = 0, pools: Int = 0, peerPools: Int = 0,
                freeClients: Int = 0, usedClients: Int = 0, loginClients: Int = 0,
                freeServers: Int = 0, usedServers: Int = 0,
                dnsNames: Int = 0, dnsZones: Int = 0, dnsQueries: Int = 0, dnsPending: Int = 0) {
        self.databases = databases
        self.users = users
        self.peers = peers
        self.pools = pools
        self.peerPools = peerPools
        self.freeClients = freeClients
        self.usedClients = usedClients
        self.loginClients = loginClients
        self.freeServers = freeServers
        self.usedServers = usedServers
        self.dnsNames = dnsNames
        self.dnsZones = dnsZones
        self.dnsQueries = dnsQueries
        self.dnsPending = dnsPending
    }
}

/// One SHOW CONFIG row, in the runtime's key order (PgBouncer: alphabetical).
public struct AdminConfigEntry: Equatable, Sendable {
    public var key: String
    public var value: String
    public var defaultValue: String
    public var changeable: Bool
    public init(key: String, value: String, defaultValue: String, changeable: Bool) {
        self.key = key
        self.value = value
        self.defaultValue = defaultValue
        self.changeable = changeable
    }
}

public struct AdminPeer: Equatable, Sendable {
    public var peerID: Int
    public var host: String?
    public var port: Int
    /// Effective pool size.
    public var poolSize: Int
    public init(peerID: Int, host: String?, port: Int, poolSize: Int) {
        self.peerID = peerID
        self.host = host
        self.port = port
        self.poolSize = poolSize
    }
}

public struct AdminPeerPool: Equatable, Sendable {
    public var peerID: Int
    public var clientsActiveCancelRequest: Int
    public var clientsWaitingCancelRequest: Int
    public var serversActiveCancel: Int
    public var serversLogin: Int
    public init(peerID: Int, clientsActiveCancelRequest: Int = 0, clientsWaitingCancelRequest: Int = 0,
                serversActiveCancel: Int = 0, serversLogin: Int = 0) {
        self.peerID = peerID
        self.clientsActiveCancelRequest = clientsActiveCancelRequest
        self.clientsWaitingCancelRequest = clientsWaitingCancelRequest
        self.serversActiveCancel = serversActiveCancel
        self.serversLogin = serversLogin
    }
}

/// SHOW MEM row (PgBouncer: one per slab cache).
public struct AdminMemoryEntry: Equatable, Sendable {
    public var name: String
    public var size: Int
    public var used: Int
    public var free: Int
    public var memTotal: Int
    public init(name: String, size: Int, used: Int, free: Int, memTotal: Int) {
        self.name = name
        self.size = size
        self.used = used
        self.free = free
        self.memTotal = memTotal
    }
}

public struct AdminDNSHost: Equatable, Sendable {
    public var hostname: String
    /// Seconds until the next lookup (0 if already due).
    public var ttlSeconds: UInt64
    /// Comma separated addresses.
    public var addresses: String
    public init(hostname: String, ttlSeconds: UInt64, addresses: String) {
        self.hostname = hostname
        self.ttlSeconds = ttlSeconds
        self.addresses = addresses
    }
}

public struct AdminDNSZone: Equatable, Sendable {
    public var zoneName: String
    public var serial: UInt64
    public var count: Int
    public init(zoneName: String, serial: UInt64, count: Int) {
        self.zoneName = zoneName
        self.serial = serial
        self.count = count
    }
}

public struct AdminSnapshot: Equatable, Sendable {
    /// Unix epoch microseconds (the loop's cached time).
    public var now: UInt64
    public var timeZone: AdminTimeZone
    /// SHOW VERSION text (PgBouncer: PACKAGE_STRING, e.g. "PgBouncer 1.25.2").
    public var version: String
    public var pauseState: AdminPauseState
    public var databases: [AdminDatabase]
    public var pools: [AdminPool]
    /// Clients and servers, including login clients (for SHOW SOCKETS).
    public var sockets: [AdminSocket]
    public var users: [AdminUser]
    /// Per database, in pool-list order.
    public var stats: [AdminStats]
    /// Aggregate over all pools for SHOW TOTALS; nil derives it from `stats`
    /// (totals summed; rates summed; times weighted by the per-db averages' counts).
    public var totalStats: AdminStats?
    public var lists: AdminLists
    public var config: [AdminConfigEntry]
    public var peers: [AdminPeer]
    public var peerPools: [AdminPeerPool]
    public var memory: [AdminMemoryEntry]
    public var dnsHosts: [AdminDNSHost]
    public var dnsZones: [AdminDNSZone]

    public init(now: UInt64, timeZone: AdminTimeZone = .utc, version: String = "PgBouncer 1.25.2",
                pauseState: AdminPauseState = .none, databases: [AdminDatabase] = [], pools: [AdminPool] = [],
                sockets: [AdminSocket] = [], users: [AdminUser] = [], stats: [AdminStats] = [],
                totalStats: AdminStats? = nil, lists: AdminLists = AdminLists(), config: [AdminConfigEntry] = [],
                peers: [AdminPeer] = [], peerPools: [AdminPeerPool] = [], memory: [AdminMemoryEntry] = [],
                dnsHosts: [AdminDNSHost] = [], dnsZones: [AdminDNSZone] = []) {
        self.now = now
        self.timeZone = timeZone
        self.version = version
        self.pauseState = pauseState
        self.databases = databases
        self.pools = pools
        self.sockets = sockets
        self.users = users
        self.stats = stats
        self.totalStats = totalStats
        self.lists = lists
        self.config = config
        self.peers = peers
        self.peerPools = peerPools
        self.memory = memory
        self.dnsHosts = dnsHosts
        self.dnsZones = dnsZones
    }
}
