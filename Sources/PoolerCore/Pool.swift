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
    public var poolSize: Int
    public var minPoolSize: Int
    public var reservePoolSize: Int
    /// Microseconds a client must wait before the reserve pool may be used (0 = never).
    public var reservePoolTimeout: UInt64
    public var mode: PoolMode

    public init(poolSize: Int, minPoolSize: Int = 0, reservePoolSize: Int = 0, reservePoolTimeout: UInt64 = 5_000_000,
                mode: PoolMode = .transaction) {
        self.poolSize = poolSize
        self.minPoolSize = minPoolSize
        self.reservePoolSize = reservePoolSize
        self.reservePoolTimeout = reservePoolTimeout
        self.mode = mode
    }
}

/// The bookkeeping of one pool: which servers are idle, active or logging in, and which
/// clients wait, FIFO. Identifiers are the runtime's connection ids; time is injected.
/// Pure: it decides, the runtime performs.
public struct PoolState: Sendable {
    public struct Waiter: Equatable, Sendable {
        public var client: Int
        public var since: UInt64
    }

    public let key: PoolKey
    public var limits: PoolLimits
    /// Idle servers, most recently used last (PgBouncer's default LIFO reuse).
    public private(set) var idle: [Int] = []
    public private(set) var active: Set<Int> = []
    public private(set) var loggingIn: Set<Int> = []
    public private(set) var waiting: [Waiter] = []

    public init(key: PoolKey, limits: PoolLimits) {
        self.key = key
        self.limits = limits
    }

    public var serverCount: Int { idle.count + active.count + loggingIn.count }

    /// Microseconds the oldest client has waited.
    public func maxWait(now: UInt64) -> UInt64 {
        guard let first = waiting.first else { return 0 }
        return now >= first.since ? now - first.since : 0
    }

    public enum Assignment: Equatable, Sendable {
        case linked(server: Int)
        case queued
    }

    /// A client needs a server: an idle one if any, else it queues (FIFO).
    public mutating func request(client: Int, now: UInt64) -> Assignment {
        if waiting.isEmpty, let server = idle.popLast() {
            active.insert(server)
            return .linked(server: server)
        }
        if !waiting.contains(where: { $0.client == client }) {
            waiting.append(Waiter(client: client, since: now))
        }
        return .queued
    }

    /// Queues a client without handing it an idle server (the pool is paused).
    public mutating func enqueue(client: Int, now: UInt64) {
        if !waiting.contains(where: { $0.client == client }) {
            waiting.append(Waiter(client: client, since: now))
        }
    }

    /// A queued client went away (or timed out).
    public mutating func cancelWait(client: Int) {
        waiting.removeAll { $0.client == client }
    }

    public func isWaiting(client: Int) -> Bool { waiting.contains { $0.client == client } }

    /// A server became usable (login finished or released clean): it goes to the first
    /// waiting client, or to the idle list.
    public mutating func serverReady(_ server: Int) -> Int? {
        active.remove(server)
        loggingIn.remove(server)
        if !waiting.isEmpty {
            let waiter = waiting.removeFirst()
            active.insert(server)
            return waiter.client
        }
        idle.append(server)
        return nil
    }

    /// Takes an idle server out for maintenance or closing.
    public mutating func removeIdle(_ server: Int) -> Bool {
        guard let index = idle.firstIndex(of: server) else { return false }
        idle.remove(at: index)
        return true
    }

    public mutating func serverLoginStarted(_ server: Int) { loggingIn.insert(server) }

    /// A server is gone (closed, failed login, crashed), whatever its state was.
    public mutating func serverClosed(_ server: Int) {
        loggingIn.remove(server)
        active.remove(server)
        if let index = idle.firstIndex(of: server) { idle.remove(at: index) }
    }

    /// Server connections to open now: enough for the waiting clients not already covered
    /// by logins in progress, and to reach min_pool_size, within pool_size (plus the reserve
    /// once the oldest client has waited reserve_pool_timeout). `extraDemand` counts clients
    /// waiting for the first login's parameters. `globalRoom` is what max_db_connections /
    /// max_user_connections still allow.
    public func serversToOpen(now: UInt64, extraDemand: Int = 0, globalRoom: Int = Int.max) -> Int {
        var limit = limits.poolSize
        if limits.reservePoolSize > 0, limits.reservePoolTimeout > 0,
           maxWait(now: now) >= limits.reservePoolTimeout {
            limit += limits.reservePoolSize
        }
        let demand = max(waiting.count + extraDemand - loggingIn.count, limits.minPoolSize - serverCount, 0)
        let room = max(min(limit - serverCount, globalRoom), 0)
        return min(demand, room)
    }

    /// Clients that have waited longer than `timeout` microseconds (0 = no limit), oldest first.
    public func clientsWaiting(longerThan timeout: UInt64, now: UInt64) -> [Int] {
        guard timeout > 0 else { return [] }
        return waiting.filter { now >= $0.since && now - $0.since >= timeout }.map(\.client)
    }
}
