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
    public var clientLoginCount: UInt64 = 0

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
        r.clientLoginCount = a.clientLoginCount + b.clientLoginCount
        return r
    }
}
