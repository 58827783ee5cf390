import Benchmark
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

// Forwarding on a linked client/server pair, without sockets: the per-frame work of
// ServerConnection.forwardToClient() (server → client) and of
// ClientConnection.forwardToServer() for a simple Query (client → server), redone
// here with the same public building blocks they use: ByteBuffer (PoolerIO),
// FrameScanner (PoolerWire), ResponseQueue and TransactionTracker (PoolerCore).
// A "read" copies prebuilt bytes into the input ByteBuffer and a "send" consumes the
// whole output ByteBuffer, so no syscall is measured. What the connection classes do
// besides (PoolStats on the pool, the pool release at ReadyForQuery 'I', epoll
// interest updates, TLS) is not part of it.
//
// Two versions of the loops (`Forwarding`): consecutive frames gathered into one
// BorrowedRun over the input and sent from there when the peer has nothing queued,
// due responses emitted only when `ResponseQueue.hasDueWork` (the loops since commit
// 988ebb9); and, as `...CopyEachFrame`, each forwarded frame appended to the peer's
// output as it is scanned, due responses looked for after every frame (the loops
// up to e78d74e).
//
// Buffers are allocated once, outside the measured closures, and reused (the
// ...PooledBuffers benchmarks borrow storage from BufferFreeList instead, as the
// connections do); forwarding must not allocate (mallocCountTotal threshold 0, see
// Thresholds/ and README.md).

private let maxPacketSize = 2_147_483_647 // PgBouncer's default max_packet_size
private let framesPerResultSet = 1_000
private let roundTripsPerIteration = 1_000

/// Wire bytes built once that live for the whole run.
private final class WireBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(_ array: [UInt8]) {
        let region = UnsafeMutableRawBufferPointer.allocate(byteCount: array.count, alignment: 16)
        region.copyBytes(from: array)
        bytes = UnsafeRawBufferPointer(region)
    }

    deinit { bytes.deallocate() }
}

// MARK: - Inputs

/// The same result set as FrameScannerBenchmark's BackendResultSet: `SELECT aid, bid,
/// abalance, filler FROM pgbench_accounts LIMIT 998` — 998 DataRow, CommandComplete,
/// ReadyForQuery 'I'.
private func backendResultSet() -> [UInt8] {
    let rows = framesPerResultSet - 2
    var writer = MessageWriter(reservingCapacity: rows * 128)
    let filler = String(repeating: " ", count: 84) // pgbench_accounts.filler is char(84)
    for row in 0..<rows {
        writer.dataRow(["\(row + 1)", "1", "\(row * 7 % 5000 - 2500)", filler])
    }
    writer.commandComplete("SELECT \(rows)")
    writer.readyForQuery(.idle)
    return writer.bytes
}

/// `pgbench -S` in simple protocol: one Query.
private func selectOnlyQuery() -> [UInt8] {
    var writer = MessageWriter()
    writer.query("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;")
    return writer.bytes
}

/// What PostgreSQL answers to it: RowDescription, one DataRow, CommandComplete,
/// ReadyForQuery 'I'.
private func selectOnlyReply() -> [UInt8] {
    var writer = MessageWriter()
    writer.rowDescription(columns: [(name: "abalance", typeOID: 23)]) // int4
    writer.dataRow(["-2171"])
    writer.commandComplete("SELECT 1")
    writer.readyForQuery(.idle)
    return writer.bytes
}

// MARK: - How forwarded bytes reach the peer

private enum Forwarding {
    /// BorrowedRun; `emitDueResponses` only when `hasDueWork` (since 988ebb9).
    case borrowedRun
    /// `output.append` per frame; `emitDueResponses` after every frame (up to e78d74e).
    case copyEachFrame
}

/// PoolerRuntime's BorrowedRun (internal there), with the peer's output buffer for
/// the peer: a run of consecutive frames in a connection's read buffer, valid until
/// the read buffer changes.
private struct BorrowedRun {
    private var start: UnsafeRawPointer?
    private var count = 0

    /// Adds bytes that follow the run (or starts a new one after flushing a gap).
    @inline(__always)
    mutating func add(_ bytes: UnsafeRawBufferPointer, output: inout ByteBuffer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if let start, start + count == base {
            count += bytes.count
            return
        }
        flush(to: &output)
        start = base
        count = bytes.count
    }

    /// Copies the run into the peer's output buffer (something else follows it).
    mutating func flush(to output: inout ByteBuffer) {
        guard let start, count > 0 else { return }
        defer { self.start = nil; count = 0 }
        output.append(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The end of a batch: Connection.sendBorrowed sends the run straight from the read
    /// buffer when nothing is queued ahead of it (here: the socket takes it all, counted
    /// in `sentDirectly`), else the run is buffered behind what is queued.
    @inline(__always)
    mutating func send(to output: inout ByteBuffer, sentDirectly: inout Int) {
        guard let start, count > 0 else { return }
        if output.isEmpty {
            sentDirectly &+= count
        } else {
            output.append(UnsafeRawBufferPointer(start: start, count: count))
        }
        self.start = nil
        count = 0
    }
}

/// Passes frame bytes on unchanged.
@inline(__always)
private func pass(_ bytes: UnsafeRawBufferPointer, _ forwarding: Forwarding, run: inout BorrowedRun,
                  output: inout ByteBuffer) {
    switch forwarding {
    case .copyEachFrame: output.append(bytes)
    case .borrowedRun: run.add(bytes, output: &output)
    }
}

// MARK: - The link state the connections keep

/// The stored properties of ServerConnection (and its pool's counters) that the
/// forwarding loops read and write, as one value.
private struct Link {
    let mode: PoolMode = .transaction
    let disablePqexec = false
    var tracker = TransactionTracker()
    var responses = ResponseQueue()
    var statementCache = ServerStatementCache(capacity: 200)
    var pendingCommands: [SessionCommand] = []
    var batchFailed = false
    var passthroughRemaining = 0
    var passthroughDrop = false
    var closeWhenReleased = false
    var lastReadyTime: UInt64 = 0
    var queryStart: UInt64 = 0
    var transactionStart: UInt64 = 0
    /// ClientConnection.passthroughRemaining (client → server piecewise frames).
    var clientPassthroughRemaining = 0
    // PoolStats counters
    var bytesSent: UInt64 = 0
    var bytesReceived: UInt64 = 0
    var queryCount: UInt64 = 0
    var queryTime: UInt64 = 0
    var transactionCount: UInt64 = 0
    var transactionTime: UInt64 = 0
    /// Statements the client would be told failed (ClientConnection.statementFailed).
    var failedStatementsSeen = 0
    /// Bytes sent straight from a read buffer (BorrowedRun), to the client / the server.
    var sentDirectlyToClient = 0
    var sentDirectlyToServer = 0
}

// MARK: - server → client (ServerConnection.forwardToClient)

/// Forwards complete frames from the server's input to the client, watching
/// ReadyForQuery and the responses the pooler hides or adds. Returns true when the
/// server became clean (released, in transaction mode). The client's output holds
/// what the client is to be sent; the caller "sends" it.
@inline(__always)
private func forwardToClient(_ forwarding: Forwarding, input: inout ByteBuffer, clientOutput: inout ByteBuffer,
                             link: inout Link, now: UInt64) -> Bool {
    var released = false
    var run = BorrowedRun()
    loop: while !input.isEmpty {
        let bytes = input.readable
        if link.passthroughRemaining > 0 {
            let take = min(link.passthroughRemaining, bytes.count)
            if !link.passthroughDrop {
                pass(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), forwarding, run: &run, output: &clientOutput)
            }
            input.consume(take)
            link.passthroughRemaining -= take
            continue
        }
        switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
        case .frame(let frame):
            let type = frame.type
            let hidden = link.responses.inHiddenQuery
            if forwarding == .borrowedRun && type == BackendMessageID.dataRow && !hidden {
                // As the runtime: a DataRow changes no expectation and skips the queue.
                pass(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), forwarding, run: &run, output: &clientOutput)
                input.consume(frame.end)
                link.bytesSent += UInt64(frame.end)
                continue
            }
            var replacement: [UInt8]?
            let forward: Bool
            switch link.responses.serverSent(type) {
            case .forward: forward = true
            case .drop: forward = false
            case .replace: forward = false; replacement = link.responses.replacement
            }
            switch type {
            case BackendMessageID.readyForQuery:
                let status = TransactionStatus(rawValue: bytes[frame.payloadStart]) ?? .failed
                if !hidden && link.mode == .statement && status != .idle {
                    fatalError("transaction block in statement mode: not in the benchmark input")
                }
                if forward {
                    pass(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), forwarding, run: &run,
                         output: &clientOutput)
                }
                input.consume(frame.end)
                if !hidden { batchFinished(&link) }
                if readyForQuery(status, counted: !hidden, link: &link, now: now) { released = true }
            case BackendMessageID.parameterStatus:
                // ServerConnection decodes name and value into both sides' SessionSettings;
                // no ParameterStatus in these inputs.
                var reader = MessageReader(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end]))
                blackHole(reader.cString())
                pass(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), forwarding, run: &run, output: &clientOutput)
                input.consume(frame.end)
            default:
                if type == BackendMessageID.errorResponse {
                    if hidden { link.closeWhenReleased = true } else { link.batchFailed = true }
                }
                if forward {
                    pass(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), forwarding, run: &run,
                         output: &clientOutput)
                }
                if let replacement {
                    run.flush(to: &clientOutput)
                    clientOutput.append(replacement)
                }
                input.consume(frame.end)
            }
            if forward { link.bytesSent += UInt64(frame.end) }
            emitDueResponsesIfAny(forwarding, run: &run, clientOutput: &clientOutput, link: &link)
        case .incomplete(let header):
            guard let header, header.type != BackendMessageID.readyForQuery,
                  header.type != BackendMessageID.parameterStatus else { break loop }
            if header.type == BackendMessageID.errorResponse && !link.responses.inHiddenQuery { link.batchFailed = true }
            link.passthroughDrop = link.responses.serverSent(header.type) == .drop
            if !link.passthroughDrop {
                pass(bytes, forwarding, run: &run, output: &clientOutput)
                link.bytesSent += UInt64(bytes.count)
            }
            link.passthroughRemaining = header.end - bytes.count
            input.consume(bytes.count)
            emitDueResponsesIfAny(forwarding, run: &run, clientOutput: &clientOutput, link: &link)
        case .invalidLength:
            fatalError("invalid frame length in benchmark input")
        }
        if released { break }
    }
    run.send(to: &clientOutput, sentDirectly: &link.sentDirectlyToClient)
    return released
}

@inline(__always)
private func emitDueResponsesIfAny(_ forwarding: Forwarding, run: inout BorrowedRun, clientOutput: inout ByteBuffer,
                                   link: inout Link) {
    switch forwarding {
    case .copyEachFrame:
        emitDueResponses(clientOutput: &clientOutput, link: &link)
    case .borrowedRun:
        if link.responses.hasDueWork {
            run.flush(to: &clientOutput)
            emitDueResponses(clientOutput: &clientOutput, link: &link)
        }
    }
}

@inline(__always)
private func emitDueResponses(clientOutput: inout ByteBuffer, link: inout Link) {
    while let bytes = link.responses.nextDueSynthetic() { clientOutput.append(bytes) }
    for failed in link.responses.takeFailedStatements() {
        link.statementCache.remove(failed.statement)
        if failed.clientVisible { link.failedStatementsSeen += 1 }
    }
}

@inline(__always)
private func batchFinished(_ link: inout Link) {
    if !link.pendingCommands.isEmpty {
        fatalError("session commands: not in the benchmark input")
    }
    link.batchFailed = false
}

/// ServerConnection.readyForQuery(_:counted:): stats, then TransactionTracker decides.
@inline(__always)
private func readyForQuery(_ status: TransactionStatus, counted: Bool, link: inout Link, now: UInt64) -> Bool {
    guard counted else {
        link.lastReadyTime = now
        return link.tracker.serverReady(status) && link.mode != .session
    }
    link.queryCount += 1
    link.queryTime += now &- link.queryStart
    link.queryStart = now
    if status == .idle {
        link.transactionCount += 1
        link.transactionTime += now &- link.transactionStart
    }
    link.lastReadyTime = now
    let clean = link.tracker.serverReady(status)
    switch link.mode {
    case .session: return false
    case .statement, .transaction: return clean
    }
}

// MARK: - client → server (ClientConnection.forwardToServer, linked, simple protocol)

/// Forwards complete client frames to the linked server. Only what a linked client's
/// Query goes through: no prepared-statement tracking (a Query is never rewritten), no
/// server acquisition. The server's output holds what the server is to be sent; the
/// caller "sends" it.
@inline(__always)
private func forwardToServer(_ forwarding: Forwarding, input: inout ByteBuffer, serverOutput: inout ByteBuffer,
                             link: inout Link, now: UInt64) {
    var run = BorrowedRun()
    loop: while !input.isEmpty {
        let bytes = input.readable
        if link.clientPassthroughRemaining > 0 {
            let take = min(link.clientPassthroughRemaining, bytes.count)
            pass(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), forwarding, run: &run, output: &serverOutput)
            link.bytesReceived += UInt64(take)
            input.consume(take)
            link.clientPassthroughRemaining -= take
            continue
        }
        switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
        case .invalidLength:
            fatalError("invalid frame length in benchmark input")
        case .incomplete:
            break loop // the inputs hold whole frames
        case .frame(let frame):
            if frame.type == FrontendMessageID.query && link.disablePqexec {
                fatalError("disable_pqexec: not in the benchmark")
            }
            clientWillSend(&link, now: now)
            guard link.tracker.clientSent(frame.type) == .forward else {
                fatalError("Terminate or an invalid message: not in the benchmark input")
            }
            let frameBytes = UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end])
            let payload = UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end])
            // forwardExtended returns false for everything but Parse/Bind/Describe/Close.
            expectResponse(to: frame.type, link: &link)
            if frame.type == FrontendMessageID.query {
                // noteSessionCommands: the cheap pre-check, false for ordinary queries.
                if SessionCommandScanner.mightContainSessionCommand(payload) {
                    fatalError("session command: not in the benchmark input")
                }
            }
            pass(frameBytes, forwarding, run: &run, output: &serverOutput) // forwardFromClient / run.add
            link.bytesReceived += UInt64(frameBytes.count)
            input.consume(frame.end)
        }
    }
    run.send(to: &serverOutput, sentDirectly: &link.sentDirectlyToServer)
}

/// ServerConnection.clientWillSend: query and transaction start times.
@inline(__always)
private func clientWillSend(_ link: inout Link, now: UInt64) {
    guard link.tracker.outstanding == 0 else { return }
    link.queryStart = now
    if link.tracker.isClean { link.transactionStart = now }
}

/// ClientConnection.expectResponse(to:on:).
@inline(__always)
private func expectResponse(to type: UInt8, link: inout Link) {
    switch type {
    case FrontendMessageID.parse: link.responses.append(.parse(statement: nil))
    case FrontendMessageID.bind: link.responses.append(.bind)
    case FrontendMessageID.describe: link.responses.append(.describe)
    case FrontendMessageID.close: link.responses.append(.close)
    case FrontendMessageID.execute: link.responses.append(.execute)
    case FrontendMessageID.sync: link.responses.append(.sync)
    case FrontendMessageID.query, FrontendMessageID.functionCall: link.responses.append(.query)
    default: break
    }
}

// MARK: - Fixtures

/// One linked pair: the server connection's input and output, the client
/// connection's input and output, and the link state. A class so the benchmark
/// closures share it; its buffers grow once (setup) and are reused ever after.
private final class LinkedPair: @unchecked Sendable {
    var clientInput = ByteBuffer()
    var clientOutput = ByteBuffer()
    var serverInput = ByteBuffer()
    var serverOutput = ByteBuffer()
    var link = Link()
    var now: UInt64 = 1

    init(bufferCapacity: Int) {
        guard bufferCapacity > 0 else { return }
        clientInput.reserveWritable(bufferCapacity)
        clientOutput.reserveWritable(bufferCapacity)
        serverInput.reserveWritable(bufferCapacity)
        serverOutput.reserveWritable(bufferCapacity)
    }

    /// The client sent a Query earlier (not measured): what forwardToServer recorded.
    func queryOutstanding() {
        _ = link.tracker.clientSent(FrontendMessageID.query)
        link.responses.append(.query)
    }

    /// Server → client: the whole result set read at once, forwarded, then sent.
    @inline(__always)
    func forwardResultSet(_ forwarding: Forwarding) -> Bool {
        now &+= 1 // the loop's cached clock
        let released = forwardToClient(forwarding, input: &serverInput, clientOutput: &clientOutput, link: &link,
                                       now: now)
        clientOutput.consume(clientOutput.readableCount) // "send" to the client
        return released
    }

    /// One simple-query round trip: the client's Query read, forwarded and sent to the
    /// server; the server's reply read, forwarded and sent to the client. The buffers
    /// keep their storage.
    @inline(__always)
    func roundTrip(_ forwarding: Forwarding, query: UnsafeRawBufferPointer, reply: UnsafeRawBufferPointer) -> Bool {
        now &+= 1
        read(query, into: &clientInput)
        forwardToServer(forwarding, input: &clientInput, serverOutput: &serverOutput, link: &link, now: now)
        serverOutput.consume(serverOutput.readableCount) // "send" to the server
        now &+= 1
        read(reply, into: &serverInput)
        let released = forwardToClient(forwarding, input: &serverInput, clientOutput: &clientOutput, link: &link,
                                       now: now)
        clientOutput.consume(clientOutput.readableCount) // "send" to the client
        return released
    }

    /// The same round trip with the connections' buffer life cycle: a drained output
    /// gives its storage back (Connection.flush → releaseIfEmpty), the client's input
    /// goes back when the server is released (ClientConnection.serverFinishedTransaction),
    /// and the next append or read takes storage again, through BufferFreeList.
    @inline(__always)
    func roundTripPooled(_ forwarding: Forwarding, query: UnsafeRawBufferPointer,
                         reply: UnsafeRawBufferPointer) -> Bool {
        now &+= 1
        read(query, into: &clientInput)
        forwardToServer(forwarding, input: &clientInput, serverOutput: &serverOutput, link: &link, now: now)
        serverOutput.consume(serverOutput.readableCount)
        serverOutput.releaseIfEmpty()
        now &+= 1
        read(reply, into: &serverInput)
        let released = forwardToClient(forwarding, input: &serverInput, clientOutput: &clientOutput, link: &link,
                                       now: now)
        clientOutput.consume(clientOutput.readableCount)
        clientOutput.releaseIfEmpty()
        if released { clientInput.releaseIfEmpty() }
        return released
    }
}

/// A socket read as Connection.readAvailable does it: at least max(pkt_buf, 4096)
/// bytes of room, then the bytes land at the write index.
@inline(__always)
private func read(_ bytes: UnsafeRawBufferPointer, into input: inout ByteBuffer) {
    input.reserveWritable(max(4_096, bytes.count))
    input.writablePointer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    input.didWrite(bytes.count)
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    let zeroMallocs = BenchmarkThresholds(
        relative: BenchmarkThresholds.Relative.strict,
        absolute: BenchmarkThresholds.Absolute.strict
    )
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo, // one scaled iteration = one frame / one round trip
        maxDuration: .seconds(2),
        maxIterations: 20_000,
        thresholds: [.mallocCountTotal: zeroMallocs]
    )

    let resultSet = WireBytes(backendResultSet())
    let query = WireBytes(selectOnlyQuery())
    let reply = WireBytes(selectOnlyReply())

    // Check the inputs and the loops once, outside any measurement, so a change in
    // MessageWriter or the building blocks cannot turn a benchmark into a
    // measurement of nothing: what reaches each peer (buffered or sent straight from
    // the read buffer) is exactly what the other sent.
    for forwarding in [Forwarding.borrowedRun, .copyEachFrame] {
        let pair = LinkedPair(bufferCapacity: resultSet.bytes.count)
        pair.queryOutstanding()
        pair.serverInput.append(resultSet.bytes)
        precondition(forwardToClient(forwarding, input: &pair.serverInput, clientOutput: &pair.clientOutput,
                                     link: &pair.link, now: 1))
        precondition(pair.serverInput.isEmpty && pair.link.tracker.isClean && pair.link.responses.isEmpty
            && pair.link.queryCount == 1 && pair.link.transactionCount == 1)
        switch forwarding {
        case .copyEachFrame:
            precondition(pair.clientOutput.readable.elementsEqual(resultSet.bytes) && pair.link.sentDirectlyToClient == 0)
        case .borrowedRun:
            precondition(pair.clientOutput.isEmpty && pair.link.sentDirectlyToClient == resultSet.bytes.count)
        }

        let trips = LinkedPair(bufferCapacity: 4_096)
        for trip in 1...200 { // past ResponseQueue's compaction (head > 64)
            read(query.bytes, into: &trips.clientInput)
            forwardToServer(forwarding, input: &trips.clientInput, serverOutput: &trips.serverOutput,
                            link: &trips.link, now: 1)
            precondition(trips.clientInput.isEmpty && trips.link.tracker.outstanding == 1
                && trips.link.responses.count == 1)
            switch forwarding {
            case .copyEachFrame: precondition(trips.serverOutput.readable.elementsEqual(query.bytes))
            case .borrowedRun: precondition(trips.serverOutput.isEmpty
                && trips.link.sentDirectlyToServer == trip * query.bytes.count)
            }
            trips.serverOutput.consume(trips.serverOutput.readableCount)
            read(reply.bytes, into: &trips.serverInput)
            precondition(forwardToClient(forwarding, input: &trips.serverInput, clientOutput: &trips.clientOutput,
                                         link: &trips.link, now: 2))
            precondition(trips.serverInput.isEmpty && trips.link.tracker.isClean && trips.link.responses.isEmpty)
            switch forwarding {
            case .copyEachFrame: precondition(trips.clientOutput.readable.elementsEqual(reply.bytes))
            case .borrowedRun: precondition(trips.clientOutput.isEmpty
                && trips.link.sentDirectlyToClient == trip * reply.bytes.count)
            }
            trips.clientOutput.consume(trips.clientOutput.readableCount)
        }
        precondition(trips.link.queryCount == 200 && trips.link.bytesSent == UInt64(200 * reply.bytes.count)
            && trips.link.bytesReceived == UInt64(200 * query.bytes.count))
        for _ in 0..<200 { precondition(trips.roundTrip(forwarding, query: query.bytes, reply: reply.bytes)) }

        let pooled = LinkedPair(bufferCapacity: 0)
        for _ in 0..<200 { precondition(pooled.roundTripPooled(forwarding, query: query.bytes, reply: reply.bytes)) }
        precondition(pooled.clientInput.storage == nil && pooled.clientOutput.storage == nil
            && pooled.serverOutput.storage == nil && pooled.serverInput.isEmpty
            && pooled.link.tracker.isClean && pooled.link.responses.isEmpty
            && pooled.link.bytesSent == UInt64(200 * reply.bytes.count))
    }

    // The loops since 988ebb9 (BorrowedRun) under the plain names, the loops up to
    // e78d74e (a copy per frame) as "...CopyEachFrame".
    for (suffix, forwarding) in [("", Forwarding.borrowedRun), ("CopyEachFrame", .copyEachFrame)] {
        // Server → client, 1000 frames per iteration: ns per frame. The client's Query
        // was forwarded before; the result set has just been read (not measured).
        let dataRows = LinkedPair(bufferCapacity: resultSet.bytes.count)
        Benchmark("ServerToClientDataRows\(suffix)") { benchmark in
            dataRows.queryOutstanding()
            dataRows.serverInput.append(resultSet.bytes)
            benchmark.startMeasurement()
            switch forwarding {
            case .borrowedRun: blackHole(dataRows.forwardResultSet(.borrowedRun))
            case .copyEachFrame: blackHole(dataRows.forwardResultSet(.copyEachFrame))
            }
            benchmark.stopMeasurement()
            precondition(dataRows.serverInput.isEmpty && dataRows.link.tracker.isClean)
        }

        // Simple-query round trips, 1000 per iteration: ns per round trip; buffers
        // reserved once.
        let roundTrips = LinkedPair(bufferCapacity: 4_096)
        Benchmark("SimpleQueryRoundTrip\(suffix)") { benchmark in
            let queryBytes = query.bytes
            let replyBytes = reply.bytes
            precondition(benchmark.scaledIterations.count == roundTripsPerIteration)
            benchmark.startMeasurement()
            switch forwarding {
            case .borrowedRun:
                for _ in benchmark.scaledIterations {
                    blackHole(roundTrips.roundTrip(.borrowedRun, query: queryBytes, reply: replyBytes))
                }
            case .copyEachFrame:
                for _ in benchmark.scaledIterations {
                    blackHole(roundTrips.roundTrip(.copyEachFrame, query: queryBytes, reply: replyBytes))
                }
            }
        }

        // The same with no storage reserved up front: the buffers borrow it from
        // BufferFreeList as the connections do (warm-up fills the free list).
        let pooledTrips = LinkedPair(bufferCapacity: 0)
        Benchmark("SimpleQueryRoundTripPooledBuffers\(suffix)") { benchmark in
            let queryBytes = query.bytes
            let replyBytes = reply.bytes
            precondition(benchmark.scaledIterations.count == roundTripsPerIteration)
            benchmark.startMeasurement()
            switch forwarding {
            case .borrowedRun:
                for _ in benchmark.scaledIterations {
                    blackHole(pooledTrips.roundTripPooled(.borrowedRun, query: queryBytes, reply: replyBytes))
                }
            case .copyEachFrame:
                for _ in benchmark.scaledIterations {
                    blackHole(pooledTrips.roundTripPooled(.copyEachFrame, query: queryBytes, reply: replyBytes))
                }
            }
        }
    }
}
