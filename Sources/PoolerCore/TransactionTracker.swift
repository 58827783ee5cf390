import PoolerWire

/// Follows one client↔server link to know when the server is back in a clean,
/// reusable state: every request answered (each Query/Sync/FunctionCall yields exactly
/// one ReadyForQuery), no extended-protocol messages waiting for a Sync, and the last
/// ReadyForQuery said idle.
public struct TransactionTracker: Sendable {
    public var outstanding = 0
    public var unsynced = false
    public var status: TransactionStatus = .idle
    /// A COPY FROM STDIN started by an extended-protocol Execute is running: PostgreSQL
    /// ignores Sync (and Flush) until the client's CopyDone or CopyFail, so a Sync sent
    /// meanwhile gets no ReadyForQuery of its own (see copyInStarted).
    public var inCopyIn = false
    /// The last CopyDone/CopyFail went out before any CopyInResponse (a client that
    /// pipelines past it): its place in the response queue matters (copyInStarted).
    public var copyEndedEarly = false

    public init() {}

    public enum FrontendEffect: Equatable, Sendable {
        case forward
        /// The client said goodbye; do not forward.
        case terminate
        /// Not a message a client may send after login: forwarding it would make the
        /// server drop the connection.
        case invalid
    }

    /// A client frame about to be forwarded.
    @inlinable
    public mutating func clientSent(_ type: UInt8) -> FrontendEffect {
        switch type {
        case FrontendMessageID.query, FrontendMessageID.functionCall:
            outstanding += 1
        case FrontendMessageID.sync:
            if inCopyIn { return .forward } // ignored by the server: nothing to wait for
            outstanding += 1
            unsynced = false
        case FrontendMessageID.copyDone, FrontendMessageID.copyFail:
            copyEndedEarly = !inCopyIn
            inCopyIn = false
        case FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.execute,
             FrontendMessageID.describe, FrontendMessageID.close, FrontendMessageID.flush:
            unsynced = true
        default:
            return Self.effect(of: type)
        }
        return .forward
    }

    /// CopyData/CopyDone/CopyFail: PostgreSQL ignores them outside a COPY.
    @inlinable
    public static func isCopyStream(_ type: UInt8) -> Bool {
        type == FrontendMessageID.copyData || type == FrontendMessageID.copyDone || type == FrontendMessageID.copyFail
    }

    /// What the pooler does with a client frame of this type, before any server is involved.
    @inlinable
    public static func effect(of type: UInt8) -> FrontendEffect {
        switch type {
        case FrontendMessageID.query, FrontendMessageID.functionCall, FrontendMessageID.sync,
             FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.execute,
             FrontendMessageID.describe, FrontendMessageID.close, FrontendMessageID.flush,
             FrontendMessageID.copyData, FrontendMessageID.copyDone, FrontendMessageID.copyFail:
            return .forward
        case FrontendMessageID.terminate:
            return .terminate
        default:
            return .invalid
        }
    }

    /// The server answered CopyInResponse to an extended-protocol Execute, and
    /// `ignoredSyncs` Syncs the client sent after that Execute reached it in copy-in
    /// mode: they will get no ReadyForQuery (clients such as libpq's PQexecParams and
    /// tokio-postgres send Sync after Execute and again after CopyDone). `ended`: the
    /// client's CopyDone or CopyFail went out already (before the CopyInResponse came).
    public mutating func copyInStarted(ignoredSyncs: Int, ended: Bool) {
        inCopyIn = !ended
        outstanding = max(0, outstanding - ignoredSyncs)
    }

    /// A ReadyForQuery from the server; returns true when the server is clean now.
    @inlinable
    public mutating func serverReady(_ status: TransactionStatus) -> Bool {
        if outstanding > 0 { outstanding -= 1 }
        self.status = status
        return isClean
    }

    /// Nothing in flight and outside any transaction: safe to hand to another client.
    @inlinable
    public var isClean: Bool { outstanding == 0 && !unsynced && status == .idle && !inCopyIn }

    public mutating func reset() {
        inCopyIn = false
        copyEndedEarly = false
        outstanding = 0
        unsynced = false
        status = .idle
    }
}
