import PoolerWire

/// What the pooler expects back from a server, in order, for the messages it sent on a
/// client's behalf — so that it can hide responses to messages it injected (a Parse the
/// server lacked, a Close for eviction, a SET to align parameters) and slot in responses
/// it produced itself (ParseComplete/CloseComplete answered from the statement cache)
/// exactly where a direct connection would have put them.
public struct ResponseQueue: Sendable {
    public enum Entry: Equatable, Sendable {
        /// A client Parse sent on; `statement` is the cache id to forget if it fails.
        case parse(statement: Int?)
        /// A Parse the pooler injected: its ParseComplete is hidden.
        case hiddenParse(statement: Int)
        case bind
        case describe
        case execute
        case close
        /// A Close the pooler injected (cache eviction): its CloseComplete is hidden.
        case hiddenClose
        case sync
        /// A simple Query or FunctionCall: everything up to its ReadyForQuery.
        case query
        /// A Query the pooler injected: everything up to and including its ReadyForQuery is hidden.
        case hiddenQuery
        /// A response the pooler produced itself, released once everything before it arrived.
        case synthetic([UInt8])
        /// A Parse the server will refuse (the client's name exists): its ErrorResponse is
        /// replaced by these bytes, PostgreSQL's error for the client's own name.
        case failingParse([UInt8])
    }

    public enum Disposition: Equatable, Sendable {
        case forward
        case drop
        /// Send these bytes instead of the server's message.
        case replace([UInt8])
    }

    private var entries: [Entry] = []
    private var head = 0
    /// Statements whose Parse failed or was skipped after an error: the server does not
    /// have them. `clientVisible` is false for Parses the pooler injected.
    public private(set) var failedStatements: [(statement: Int, clientVisible: Bool)] = []

    public init() {}

    public var isEmpty: Bool { head == entries.count }
    public var count: Int { entries.count - head }
    public var first: Entry? { head < entries.count ? entries[head] : nil }

    public mutating func append(_ entry: Entry) {
        if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        entries.append(entry)
    }

    public mutating func removeAll() {
        if !entries.isEmpty { entries.removeAll(keepingCapacity: true) }
        head = 0
        if !failedStatements.isEmpty { failedStatements.removeAll() }
    }

    public mutating func takeFailedStatements() -> [(statement: Int, clientVisible: Bool)] {
        defer { failedStatements.removeAll() }
        return failedStatements
    }

    private mutating func pop() -> Entry? {
        guard head < entries.count else { return nil }
        defer { head += 1 }
        return entries[head]
    }

    /// The next response the pooler produced that is due now (nothing from the server
    /// precedes it), or nil.
    public mutating func nextDueSynthetic() -> [UInt8]? {
        guard head < entries.count, case .synthetic(let bytes) = entries[head] else { return nil }
        head += 1
        return bytes
    }

    /// True when `nextDueSynthetic` or `takeFailedStatements` has something: the caller
    /// must emit before forwarding more (cheap check for the common "nothing" case).
    @inline(__always)
    public var hasDueWork: Bool {
        if !failedStatements.isEmpty { return true }
        guard head < entries.count, case .synthetic = entries[head] else { return false }
        return true
    }

    /// True when a hidden query's responses are being swallowed.
    public var inHiddenQuery: Bool {
        if case .hiddenQuery = first { return true }
        return false
    }

    /// A server message of `type` arrived: forward it or drop it. Afterwards emit what
    /// `nextDueSynthetic` returns.
    public mutating func serverSent(_ type: UInt8) -> Disposition {
        if case .hiddenQuery = first {
            if type == BackendMessageID.readyForQuery { _ = pop() }
            return type == BackendMessageID.parameterStatus ? .forward : .drop
        }
        switch type {
        case BackendMessageID.parseComplete:
            switch first {
            case .hiddenParse: _ = pop(); return .drop
            case .parse: _ = pop()
            default: break
            }
            return .forward
        case BackendMessageID.closeComplete:
            switch first {
            case .hiddenClose: _ = pop(); return .drop
            case .close: _ = pop()
            default: break
            }
            return .forward
        case BackendMessageID.bindComplete:
            if first == .bind { _ = pop() }
            return .forward
        case BackendMessageID.noData, BackendMessageID.rowDescription:
            // RowDescription also belongs to simple queries and ends nothing there.
            if first == .describe { _ = pop() }
            return .forward
        case BackendMessageID.commandComplete, BackendMessageID.emptyQueryResponse, BackendMessageID.portalSuspended:
            if first == .execute { _ = pop() }
            return .forward
        case BackendMessageID.errorResponse:
            if case .failingParse(let replacement) = first {
                errorArrived()
                return .replace(replacement)
            }
            errorArrived()
            return .forward
        case BackendMessageID.readyForQuery:
            // Ends a Query or a Sync, and with it anything still queued before it.
            while let entry = pop() {
                if entry == .sync || entry == .query { break }
                noteSkipped(entry)
            }
            return .forward
        default:
            return .forward
        }
    }

    /// An error in the extended protocol makes the server skip everything up to Sync:
    /// no response will come for those messages, and synthetic ones are dropped too, as
    /// the server would not have answered them either. In a simple query the error is
    /// just part of the response.
    private mutating func errorArrived() {
        guard let entry = first else { return }
        if entry == .query { return }
        while let entry = first, entry != .sync, entry != .query {
            noteSkipped(entry)
            head += 1
        }
    }

    private mutating func noteSkipped(_ entry: Entry) {
        switch entry {
        case .parse(let statement?): failedStatements.append((statement, true))
        case .hiddenParse(let statement): failedStatements.append((statement, false))
        default: break
        }
    }
}
