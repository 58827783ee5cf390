import PoolerConfig

/// Identifies a pool: one per (database, user) as PgBouncer does.
public struct PoolKey: Hashable, Sendable, CustomStringConvertible {
    public var database: String
    public var user: String

    public init(database: String, user: String) {
        self.database = database
        self.user = user
    }

    public var description: String { "\(database)/\(user)" }
}

/// Limits of one pool, resolved from the database entry, user entry and defaults.
public struct PoolLimits: Equatable, Sendable {
    /// Maximum servers of the pool; 0 = unlimited.
    public var poolSize: Int
    public var minPoolSize: Int
    public var reservePoolSize: Int
    /// Microseconds a client must wait before the reserve pool may be used (0 = never).
    public var reservePoolTimeout: UInt64
    public var mode: PoolMode
    /// server_round_robin: hand out the least recently used idle server (spreads load over
    /// servers, e.g. behind a TCP balancer) instead of the most recent (warmer caches).
    public var roundRobin: Bool

    public init(poolSize: Int, minPoolSize: Int = 0, reservePoolSize: Int = 0, reservePoolTimeout: UInt64 = 5_000_000,
                mode: PoolMode = .transaction, roundRobin: Bool = false) {
        self.roundRobin = roundRobin
        self.poolSize = poolSize
        self.minPoolSize = minPoolSize
        self.reservePoolSize = reservePoolSize
        self.reservePoolTimeout = reservePoolTimeout
        self.mode = mode
    }
}

/// Where a server stands in its pool's `PoolState`, kept in the server itself so a
/// release needs no search of a list (it happens at every transaction end).
public enum PoolMembership: UInt8, Sendable {
    case none, idle, active, loggingIn
}

/// A server `PoolState` can track: it carries its membership tag.
public protocol PoolMember: AnyObject {
    var poolMembership: PoolMembership { get set }
}

/// The bookkeeping of one pool: which servers are idle, active or logging in, and which
/// clients wait, FIFO. It holds the runtime's connection objects and compares them by
/// identity: no hashing or lookups per transaction. Active servers are only counted (their
/// tag says they are active): the runtime reaches them through their clients. Time is
/// injected. Pure: it decides, the runtime performs.
public struct PoolState<Server: PoolMember, Client: AnyObject> {
    public struct Waiter {
        public var client: Client
        public var since: UInt64
    }

    public let key: PoolKey
    public var limits: PoolLimits
    /// Idle servers, most recently used last (PgBouncer's default LIFO reuse).
    public private(set) var idle: [Server] = []
    /// Servers linked to a client (tagged `.active`).
    public private(set) var activeCount = 0
    /// Servers not yet usable: logging in, or running a check query.
    public private(set) var loggingIn: [Server] = []
    public private(set) var waiting: [Waiter] = []

    public init(key: PoolKey, limits: PoolLimits) {
        self.key = key
        self.limits = limits
    }

    public var serverCount: Int { idle.count + activeCount + loggingIn.count }

    /// Loop time the oldest waiting client queued; 0 when nobody waits. Read without
    /// copying the waiter (no retain of its client).
    @inlinable
    public var oldestWaitSince: UInt64 { waiting.isEmpty ? 0 : waiting[0].since }

    /// Microseconds the oldest client has waited.
    public func maxWait(now: UInt64) -> UInt64 {
        guard let first = waiting.first else { return 0 }
        return now >= first.since ? now - first.since : 0
    }

    public enum Assignment {
        case linked(server: Server)
        case queued
    }

    /// A client needs a server: an idle one if any, else it queues (FIFO).
    public mutating func request(client: Client, now: UInt64) -> Assignment {
        if waiting.isEmpty, !idle.isEmpty {
            let server = limits.roundRobin ? idle.removeFirst() : idle.removeLast()
            server.poolMembership = .active
            activeCount += 1
            return .linked(server: server)
        }
        enqueue(client: client, now: now)
        return .queued
    }

    /// Queues a client without handing it an idle server (the pool is paused).
    public mutating func enqueue(client: Client, now: UInt64) {
        if !isWaiting(client: client) {
            waiting.append(Waiter(client: client, since: now))
        }
    }

    /// A queued client went away (or timed out).
    public mutating func cancelWait(client: Client) {
        if let index = waiting.firstIndex(where: { $0.client === client }) { waiting.remove(at: index) }
    }

    public func isWaiting(client: Client) -> Bool { waiting.contains { $0.client === client } }

    /// A server became usable (login finished or released clean): it goes to the first
    /// waiting client, or to the idle list (the caller's reference moves there: no
    /// retain per release).
    public mutating func serverReady(_ server: consuming Server) -> Client? {
        guard !waiting.isEmpty else {
            park(consume server)
            return nil
        }
        leave(server)
        let waiter = waiting.removeFirst()
        server.poolMembership = .active
        activeCount += 1
        return waiter.client
    }

    /// The server goes to the idle list, whoever waits: serverReady's path when nobody
    /// does, and a release while the pooler is suspended (PgBouncer hands out no server
    /// while suspended; RESUME serves the queue).
    public mutating func park(_ server: consuming Server) {
        leave(server)
        server.poolMembership = .idle
        idle.append(consume server)
    }

    /// Takes an idle server out for maintenance or closing.
    public mutating func removeIdle(_ server: Server) -> Bool {
        guard server.poolMembership == .idle else { return false }
        leave(server)
        return true
    }

    /// A server starts logging in (or running a check query: it leaves the idle or
    /// active servers for that time).
    public mutating func serverLoginStarted(_ server: Server) {
        guard server.poolMembership != .loggingIn else { return }
        leave(server)
        server.poolMembership = .loggingIn
        loggingIn.append(server)
    }

    /// A server logged in for one client already chosen (replication): straight to active.
    public mutating func serverActivated(_ server: Server) {
        leave(server)
        server.poolMembership = .active
        activeCount += 1
    }

    /// A server is gone (closed, failed login, crashed, moved to another loop), whatever
    /// its state was.
    public mutating func serverClosed(_ server: Server) { leave(server) }

    /// Takes `server` out of whatever it was counted in.
    private mutating func leave(_ server: Server) {
        switch server.poolMembership {
        case .none: return
        case .active: activeCount -= 1
        case .idle: Self.remove(server, from: &idle)
        case .loggingIn: Self.remove(server, from: &loggingIn)
        }
        server.poolMembership = .none
    }

    /// Removal by identity. `remove(at:)` moves the tail down without touching reference
    /// counts (a swap with the last element retains and releases both); the lists are short.
    private static func remove(_ server: Server, from list: inout [Server]) {
        guard !list.isEmpty, let index = list.firstIndex(where: { $0 === server }) else { return }
        list.remove(at: index)
    }

    /// Server connections to open now: enough for the waiting clients not already covered
    /// by logins in progress, and to reach min_pool_size, within pool_size (plus the reserve
    /// once the oldest client has waited reserve_pool_timeout). `extraDemand` counts clients
    /// waiting for the first login's parameters. `globalRoom` is what max_db_connections /
    /// max_user_connections still allow.
    /// `totalServers` is the pool's server count on all event loops (workers > 1; nil:
    /// this state's own count), which pool_size and min_pool_size apply to.
    public func serversToOpen(now: UInt64, extraDemand: Int = 0, globalRoom: Int = Int.max,
                              totalServers: Int? = nil) -> Int {
        let total = totalServers ?? serverCount
        let limit = effectiveLimit(now: now)
        let demand = max(waiting.count + extraDemand - loggingIn.count, limits.minPoolSize - total, 0)
        let room = max(min((limit > 0 ? limit : Int.max / 2) - total, globalRoom), 0)
        return min(demand, room)
    }

    /// Servers the pool may have now: pool_size, plus the reserve once the oldest client
    /// has waited reserve_pool_timeout; 0 = no limit (pool_size = 0, PgBouncer's
    /// launch_new_connection).
    public func effectiveLimit(now: UInt64) -> Int {
        guard limits.poolSize > 0 else { return 0 }
        var limit = limits.poolSize
        if limits.reservePoolSize > 0, limits.reservePoolTimeout > 0,
           maxWait(now: now) >= limits.reservePoolTimeout {
            limit += limits.reservePoolSize
        }
        return limit
    }

    /// Clients that have waited longer than `timeout` microseconds (0 = no limit), oldest first.
    public func clientsWaiting(longerThan timeout: UInt64, now: UInt64) -> [Client] {
        guard timeout > 0 else { return [] }
        return waiting.filter { now >= $0.since && now - $0.since >= timeout }.map(\.client)
    }
}
