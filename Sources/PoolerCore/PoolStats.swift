/// PgBouncer's per-pool counters; SHOW STATS sums them per database.
public struct PoolStats: Sendable {
    public var serverAssignmentCount: UInt64 = 0
    public var transactionCount: UInt64 = 0
    public var queryCount: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var bytesSent: UInt64 = 0
    /// Microseconds.
    public var transactionTime: UInt64 = 0
    public var queryTime: UInt64 = 0
    public var waitTime: UInt64 = 0
    public var clientParseCount: UInt64 = 0
    public var serverParseCount: UInt64 = 0
    public var bindCount: UInt64 = 0

    public init() {}

    public static func + (a: PoolStats, b: PoolStats) -> PoolStats {
        var r = PoolStats()
        r.serverAssignmentCount = a.serverAssignmentCount + b.serverAssignmentCount
        r.transactionCount = a.transactionCount + b.transactionCount
        r.queryCount = a.queryCount + b.queryCount
        r.bytesReceived = a.bytesReceived + b.bytesReceived
        r.bytesSent = a.bytesSent + b.bytesSent
        r.transactionTime = a.transactionTime + b.transactionTime
        r.queryTime = a.queryTime + b.queryTime
        r.waitTime = a.waitTime + b.waitTime
        r.clientParseCount = a.clientParseCount + b.clientParseCount
        r.serverParseCount = a.serverParseCount + b.serverParseCount
        r.bindCount = a.bindCount + b.bindCount
        return r
    }

    /// Per-second averages over `seconds`, as PgBouncer's avg_* columns: counts per second,
    /// times per transaction or query.
    public static func averages(current: PoolStats, previous: PoolStats, seconds: UInt64) -> PoolStats {
        let s = max(seconds, 1)
        var r = PoolStats()
        let xacts = current.transactionCount &- previous.transactionCount
        let queries = current.queryCount &- previous.queryCount
        r.serverAssignmentCount = (current.serverAssignmentCount &- previous.serverAssignmentCount) / s
        r.transactionCount = xacts / s
        r.queryCount = queries / s
        r.bytesReceived = (current.bytesReceived &- previous.bytesReceived) / s
        r.bytesSent = (current.bytesSent &- previous.bytesSent) / s
        r.transactionTime = xacts > 0 ? (current.transactionTime &- previous.transactionTime) / xacts : 0
        r.queryTime = queries > 0 ? (current.queryTime &- previous.queryTime) / queries : 0
        r.waitTime = (current.waitTime &- previous.waitTime) / s
        r.clientParseCount = (current.clientParseCount &- previous.clientParseCount) / s
        r.serverParseCount = (current.serverParseCount &- previous.serverParseCount) / s
        r.bindCount = (current.bindCount &- previous.bindCount) / s
        return r
    }
}
