import PoolerWire

/// What the pooler expects back from a server, in order, for the messages it sent on a
/// client's behalf — so that it can hide responses to messages it injected (a Parse the
/// server lacked, a Close for eviction, a SET to align parameters) and slot in responses
/// it produced itself (ParseComplete/CloseComplete answered from the statement cache)
/// exactly where a direct connection would have put them.
public final class ResponseQueue {
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
        /// Where the client's CopyDone or CopyFail went, sent before the server's
        /// CopyInResponse to an Execute arrived (see copyInStarted); no response.
        case copyEnd
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

    /// A plain value (returned for every server message): the bytes of `.replace` are
    /// in `replacement`.
    public enum Disposition: Equatable, Sendable {
        case forward
        case drop
        /// Send `replacement` instead of the server's message.
        case replace
    }

    /// What to send instead, after `serverSent` answered `.replace`.
    public private(set) var replacement: [UInt8] = []

    /// The queue holds plain values (no reference counting per message): payload bytes
    /// of `.synthetic` and `.failingParse` sit in `payloads`, referenced by index.
    private enum Slot: Equatable {
        case parse(statement: Int?)
        case hiddenParse(statement: Int)
        case bind, describe, execute, close, hiddenClose, sync, copyEnd, query, hiddenQuery
        case synthetic(payload: Int)
        case failingParse(payload: Int)

        /// Sync or Query: what a ReadyForQuery answers.
        @inline(__always)
        var endsBatch: Bool {
            switch self {
            case .sync, .query: return true
            default: return false
            }
        }
    }

    /// Slots `head..<tail` are pending, in storage the queue owns (a class, so that
    /// appending and popping, several times per transaction, check no array for
    /// uniqueness or bounds); it starts over at 0 whenever it runs empty.
    private var slots: UnsafeMutablePointer<Slot>
    private var capacity = 16
    private var head = 0
    private var tail = 0
    private var payloads: [[UInt8]] = []
    /// Statements whose Parse failed or was skipped after an error: the server does not
    /// have them. `clientVisible` is false for Parses the pooler injected.
    public private(set) var failedStatements: [(statement: Int, clientVisible: Bool)] = []
    /// A Close the pooler injected to evict a statement was skipped after an error: the
    /// server still has that statement.
    private var skippedEviction = false
    /// A Parse the pooler expected the server to refuse (the name exists there) was
    /// accepted: the server lacked the statement (its own Parse skipped after an error)
    /// and now holds the client's new text under the name other clients use.
    public private(set) var parseUnexpectedlyAccepted = false

    public init() {
        slots = .allocate(capacity: capacity)
    }

    deinit { slots.deallocate() }

    public var isEmpty: Bool { head == tail }
    public var count: Int { tail - head }
    public var first: Entry? { head < tail ? entry(slots[head]) : nil }

    private func entry(_ slot: Slot) -> Entry {
        switch slot {
        case .parse(let statement): return .parse(statement: statement)
        case .hiddenParse(let statement): return .hiddenParse(statement: statement)
        case .bind: return .bind
        case .describe: return .describe
        case .execute: return .execute
        case .close: return .close
        case .hiddenClose: return .hiddenClose
        case .sync: return .sync
        case .copyEnd: return .copyEnd
        case .query: return .query
        case .hiddenQuery: return .hiddenQuery
        case .synthetic(let index): return .synthetic(payloads[index])
        case .failingParse(let index): return .failingParse(payloads[index])
        }
    }

    /// What a client message of `type` forwarded as it is will be answered with, queued
    /// without going through `Entry` (several per extended-protocol batch); messages
    /// without a response of their own (CopyData, Flush, ...) add nothing.
    public func expectResponse(toClientMessage type: UInt8) {
        switch type {
        case FrontendMessageID.parse: appendSlot(.parse(statement: nil))
        case FrontendMessageID.bind: appendSlot(.bind)
        case FrontendMessageID.describe: appendSlot(.describe)
        case FrontendMessageID.close: appendSlot(.close)
        case FrontendMessageID.execute: appendSlot(.execute)
        case FrontendMessageID.sync: appendSlot(.sync)
        case FrontendMessageID.query, FrontendMessageID.functionCall: appendSlot(.query)
        default: break
        }
    }

    public func append(_ entry: Entry) {
        let slot: Slot
        switch entry {
        case .parse(let statement): slot = .parse(statement: statement)
        case .hiddenParse(let statement): slot = .hiddenParse(statement: statement)
        case .bind: slot = .bind
        case .describe: slot = .describe
        case .execute: slot = .execute
        case .close: slot = .close
        case .hiddenClose: slot = .hiddenClose
        case .sync: slot = .sync
        case .copyEnd: slot = .copyEnd
        case .query: slot = .query
        case .hiddenQuery: slot = .hiddenQuery
        case .synthetic(let bytes): payloads.append(bytes); slot = .synthetic(payload: payloads.count - 1)
        case .failingParse(let bytes): payloads.append(bytes); slot = .failingParse(payload: payloads.count - 1)
        }
        appendSlot(slot)
    }

    private func appendSlot(_ slot: Slot) {
        if head == tail && head > 0 {
            head = 0 // empty: start over at the front
            tail = 0
        }
        if tail == capacity { makeRoom() }
        (slots + tail).initialize(to: slot)
        tail += 1
    }

    /// Storage full: pending slots move to the front, and the storage doubles when they
    /// fill more than half of it.
    private func makeRoom() {
        let pending = tail - head
        if head > 0 {
            UnsafeMutableRawPointer(slots).copyMemory(from: slots + head, byteCount: pending * MemoryLayout<Slot>.stride)
            head = 0
            tail = pending
        }
        if pending * 2 > capacity {
            let larger = UnsafeMutablePointer<Slot>.allocate(capacity: capacity * 2)
            larger.initialize(from: slots, count: pending)
            slots.deallocate()
            slots = larger
            capacity *= 2
        }
    }

    public func removeAll() {
        head = 0
        tail = 0
        if !payloads.isEmpty { payloads.removeAll() }
        if !failedStatements.isEmpty { failedStatements.removeAll() }
        skippedEviction = false
        parseUnexpectedlyAccepted = false
    }

    /// True (once) when an eviction Close was skipped since the last call.
    public func takeSkippedEviction() -> Bool {
        defer { skippedEviction = false }
        return skippedEviction
    }

    public func takeFailedStatements() -> [(statement: Int, clientVisible: Bool)] {
        defer { failedStatements.removeAll() }
        return failedStatements
    }

    /// The next response the pooler produced that is due now (nothing from the server
    /// precedes it), or nil.
    public func nextDueSynthetic() -> [UInt8]? {
        guard head < tail, case .synthetic(let index) = slots[head] else { return nil }
        head += 1
        return payloads[index]
    }

    /// True when `nextDueSynthetic` or `takeFailedStatements` has something: the caller
    /// must emit before forwarding more (cheap check for the common "nothing" case).
    @inline(__always)
    public var hasDueWork: Bool {
        if !failedStatements.isEmpty { return true }
        guard head < tail, case .synthetic = slots[head] else { return false }
        return true
    }

    /// Neither a response of the pooler's own is due nor a hidden query's responses come
    /// next: plain frames (see `passesPlain`) may go on in one pass.
    @inline(__always)
    public var allowsPlainRun: Bool {
        if !failedStatements.isEmpty { return false }
        guard head < tail else { return true }
        switch slots[head] {
        case .synthetic, .hiddenQuery: return false
        default: return true
        }
    }

    /// True when the oldest expectation is a client's simple Query: until its
    /// ReadyForQuery, no other message changes the queue or is hidden.
    @inline(__always)
    public var inSimpleQuery: Bool {
        guard head < tail, case .query = slots[head] else { return false }
        return true
    }

    /// True when a hidden query's responses are being swallowed.
    public var inHiddenQuery: Bool {
        guard head < tail, case .hiddenQuery = slots[head] else { return false }
        return true
    }

    @inline(__always)
    private var firstSlot: Slot? { head < tail ? slots[head] : nil }

    @inline(__always)
    private func pop() -> Slot? {
        guard head < tail else { return nil }
        defer { head += 1 }
        return slots[head]
    }

    /// For a server message of `type` that only answers the oldest expectation and goes
    /// to the client unchanged (ParseComplete for a client's Parse, BindComplete,
    /// RowDescription or NoData for Describe, CommandComplete, EmptyQueryResponse or
    /// PortalSuspended for Execute, CloseComplete for a client's Close): pops that
    /// expectation, as `serverSent` would, and returns true. False, changing nothing, for
    /// everything else (`serverSent` decides). Afterwards emit what `nextDueSynthetic`
    /// returns.
    public func passesPlain(_ type: UInt8) -> Bool {
        guard head < tail else { return false }
        let answered: Bool
        switch type {
        case BackendMessageID.parseComplete:
            if case .parse = slots[head] { answered = true } else { answered = false }
        case BackendMessageID.bindComplete:
            answered = slots[head] == .bind
        case BackendMessageID.rowDescription, BackendMessageID.noData:
            answered = slots[head] == .describe
        case BackendMessageID.commandComplete, BackendMessageID.emptyQueryResponse, BackendMessageID.portalSuspended:
            answered = slots[head] == .execute
        case BackendMessageID.closeComplete:
            answered = slots[head] == .close
        default:
            return false
        }
        if answered { head += 1 }
        return answered
    }

    /// A server message of `type` arrived: forward it or drop it. Afterwards emit what
    /// `nextDueSynthetic` returns.
    public func serverSent(_ type: UInt8) -> Disposition {
        guard let first = firstSlot else { return .forward } // the common case in a result set
        if case .hiddenQuery = first {
            if type == BackendMessageID.readyForQuery { head += 1 }
            return type == BackendMessageID.parameterStatus ? .forward : .drop
        }
        switch type {
        case BackendMessageID.parseComplete:
            switch first {
            case .hiddenParse: head += 1; return .drop
            case .failingParse: head += 1; parseUnexpectedlyAccepted = true; return .drop
            case .parse: head += 1
            default: break
            }
            return .forward
        case BackendMessageID.closeComplete:
            switch first {
            case .hiddenClose: head += 1; return .drop
            case .close: head += 1
            default: break
            }
            return .forward
        case BackendMessageID.bindComplete:
            if case .bind = first { head += 1 }
            return .forward
        case BackendMessageID.noData, BackendMessageID.rowDescription:
            // RowDescription also belongs to simple queries and ends nothing there.
            if case .describe = first { head += 1 }
            return .forward
        case BackendMessageID.commandComplete, BackendMessageID.emptyQueryResponse, BackendMessageID.portalSuspended:
            if case .execute = first { head += 1 }
            return .forward
        case BackendMessageID.errorResponse:
            if case .failingParse(let index) = first {
                replacement = payloads[index]
                errorArrived()
                return .replace
            }
            errorArrived()
            return .forward
        case BackendMessageID.readyForQuery:
            // Ends a Query or a Sync, and with it anything still queued before it.
            while let slot = pop() {
                if slot.endsBatch { break }
                noteSkipped(slot)
            }
            return .forward
        default:
            return .forward
        }
    }

    /// CopyInResponse (or CopyBothResponse) arrived. For an extended-protocol Execute
    /// (the oldest expectation), the Syncs queued right after it reached the server in
    /// copy-in mode, which ignores them: they are removed and their number returned (the
    /// CommandComplete or ErrorResponse that ends the COPY still answers the Execute,
    /// and the Sync after CopyDone the batch). 0, changing nothing, for a simple Query.
    /// Syncs after the client's CopyDone or CopyFail (a `.copyEnd` slot, when they went
    /// out before the CopyInResponse came) are answered and stay; `ended` says the copy
    /// had already ended on the client's side then (the marker goes too).
    public func copyInStarted() -> (ignoredSyncs: Int, ended: Bool) {
        guard head < tail, slots[head] == .execute else { return (0, false) }
        var end = head + 1
        while end < tail, slots[end] == .sync { end += 1 }
        let ignored = end - head - 1
        let ended = end < tail && slots[end] == .copyEnd
        if ended { end += 1 }
        let removed = end - head - 1
        guard removed > 0 else { return (0, false) }
        let rest = tail - end
        if rest > 0 { UnsafeMutableRawPointer(slots + head + 1).copyMemory(from: slots + end, byteCount: rest * MemoryLayout<Slot>.stride) }
        tail -= removed
        return (ignored, ended)
    }

    /// The client sent CopyDone or CopyFail before any CopyInResponse came, with
    /// extended-protocol messages unanswered: marks the spot for copyInStarted (the next
    /// ReadyForQuery or error drops the mark if no COPY starts).
    public func clientEndedCopy() {
        guard head < tail, !inSimpleQuery else { return }
        appendSlot(.copyEnd)
    }

    /// Whether the oldest expectation is an extended-protocol Execute.
    public var executeIsNext: Bool { head < tail && slots[head] == .execute }

    /// An error in the extended protocol makes the server skip everything up to Sync:
    /// no response will come for those messages, and synthetic ones are dropped too, as
    /// the server would not have answered them either. In a simple query the error is
    /// just part of the response.
    private func errorArrived() {
        guard let first = firstSlot else { return }
        if case .query = first { return }
        while let slot = firstSlot, !slot.endsBatch {
            noteSkipped(slot)
            head += 1
        }
    }

    private func noteSkipped(_ slot: Slot) {
        switch slot {
        case .parse(let statement?): failedStatements.append((statement, true))
        case .hiddenParse(let statement): failedStatements.append((statement, false))
        case .hiddenClose: skippedEviction = true
        default: break
        }
    }
}
