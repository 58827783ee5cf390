import Benchmark
import PoolerWire

// Hot-path frame scanning: what a connection does with every read before it forwards
// bytes. Each benchmark iteration scans a buffer of exactly `framesPerBuffer` frames,
// and the scaling factor is the same number, so the scaled wallClock is ns per frame
// and throughput is frames per second. The buffers are built once, outside the
// measured closures, with PoolerWire's MessageWriter; the scan must not allocate
// (mallocCountTotal threshold 0, see Thresholds/ and README.md).

private let framesPerBuffer = 1_000
private let maxPacketSize = 2_147_483_647 // PgBouncer's default max_packet_size

/// A region that lives for the whole run: the benchmarks read it through an
/// UnsafeRawBufferPointer, as a connection reads its pooled I/O buffer.
private final class FrameBuffer: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let frames: Int

    init(_ array: [UInt8], frames: Int) {
        let region = UnsafeMutableRawBufferPointer.allocate(byteCount: array.count, alignment: 16)
        region.copyBytes(from: array)
        bytes = UnsafeRawBufferPointer(region)
        self.frames = frames
    }

    deinit { bytes.deallocate() }
}

// MARK: - Inputs

/// A result set as Postgres sends it for `SELECT aid, bid, abalance, filler FROM
/// pgbench_accounts LIMIT 998`: DataRows, CommandComplete, ReadyForQuery 'I'.
private func backendResultSet() -> FrameBuffer {
    let rows = framesPerBuffer - 2
    var writer = MessageWriter(reservingCapacity: rows * 128)
    let filler = String(repeating: " ", count: 84) // pgbench_accounts.filler is char(84)
    for row in 0..<rows {
        writer.dataRow(["\(row + 1)", "1", "\(row * 7 % 5000 - 2500)", filler])
    }
    writer.commandComplete("SELECT \(rows)")
    writer.readyForQuery(.idle)
    return FrameBuffer(writer.bytes, frames: framesPerBuffer)
}

/// What `pgbench -M extended -S` sends per query (libpq's PQsendQueryParams):
/// Parse (unnamed), Bind, Describe portal, Execute, Sync; 200 of them back to back.
private func clientExtendedPipeline() -> FrameBuffer {
    let queries = framesPerBuffer / 5
    var writer = MessageWriter(reservingCapacity: queries * 120)
    for query in 0..<queries {
        writer.begin(FrontendMessageID.parse)
        writer.cString("") // unnamed statement
        writer.cString("SELECT abalance FROM pgbench_accounts WHERE aid = $1;")
        writer.int16(0) // no parameter types given
        writer.end()

        writer.begin(FrontendMessageID.bind)
        writer.cString("") // unnamed portal
        writer.cString("") // unnamed statement
        writer.int16(0) // parameter formats: all text
        writer.int16(1)
        let aid = Array("\(query * 4_999 % 1_000_000 + 1)".utf8)
        writer.int32(Int32(aid.count))
        writer.raw(aid)
        writer.int16(0) // result formats: all text
        writer.end()

        writer.begin(FrontendMessageID.describe)
        writer.byte(UInt8(ascii: "P"))
        writer.cString("")
        writer.end()

        writer.begin(FrontendMessageID.execute)
        writer.cString("")
        writer.int32(0) // no row limit
        writer.end()

        writer.begin(FrontendMessageID.sync)
        writer.end()
    }
    return FrameBuffer(writer.bytes, frames: queries * 5)
}

// MARK: - Scanning loops (what the connection code does per read)

/// Server side: walk every frame; a ReadyForQuery with status 'I' is the point where
/// transaction pooling may release the server (TransactionTracker's check).
@inline(__always)
private func scanBackend(_ bytes: UnsafeRawBufferPointer) -> (frames: Int, idle: Int, consumed: Int) {
    var offset = 0
    var frames = 0
    var idle = 0
    scanning: while true {
        switch FrameScanner.scan(bytes, from: offset, maxPacketSize: maxPacketSize) {
        case .frame(let frame):
            frames += 1
            if frame.type == BackendMessageID.readyForQuery, frame.payloadLength == 1,
               bytes[frame.payloadStart] == TransactionStatus.idle.rawValue {
                idle += 1
            }
            offset = frame.end
        case .incomplete:
            break scanning
        case .invalidLength:
            fatalError("invalid frame length in benchmark input")
        }
    }
    return (frames, idle, offset)
}

/// The same walk, but the bytes arrive in reads of `readSize` bytes (an MSS-like size
/// that does not divide the frames), so the scanner keeps hitting `.incomplete` with
/// a header and resumes at the same offset once more bytes are there.
@inline(__always)
private func scanBackendInReads(_ bytes: UnsafeRawBufferPointer, readSize: Int) -> (frames: Int, idle: Int, partial: Int) {
    var received = 0
    var offset = 0
    var frames = 0
    var idle = 0
    var partial = 0
    while received < bytes.count {
        received = min(received + readSize, bytes.count)
        let window = UnsafeRawBufferPointer(rebasing: bytes[0..<received])
        scanning: while true {
            switch FrameScanner.scan(window, from: offset, maxPacketSize: maxPacketSize) {
            case .frame(let frame):
                frames += 1
                if frame.type == BackendMessageID.readyForQuery, frame.payloadLength == 1,
                   window[frame.payloadStart] == TransactionStatus.idle.rawValue {
                    idle += 1
                }
                offset = frame.end
            case .incomplete(let header):
                if header != nil { partial += 1 }
                break scanning
            case .invalidLength:
                fatalError("invalid frame length in benchmark input")
            }
        }
    }
    return (frames, idle, partial)
}

/// Client side: walk every frame and look at the ones the client state machine must
/// understand (Parse: statement name; Bind; Sync ends a transaction-mode unit of work).
@inline(__always)
private func scanClient(_ bytes: UnsafeRawBufferPointer) -> (frames: Int, unnamedParses: Int, binds: Int, syncs: Int) {
    var offset = 0
    var frames = 0
    var unnamedParses = 0
    var binds = 0
    var syncs = 0
    scanning: while true {
        switch FrameScanner.scan(bytes, from: offset, maxPacketSize: maxPacketSize) {
        case .frame(let frame):
            frames += 1
            switch frame.type {
            case FrontendMessageID.parse:
                if frame.payloadLength > 0, bytes[frame.payloadStart] == 0 { unnamedParses += 1 }
            case FrontendMessageID.bind:
                binds += 1
            case FrontendMessageID.sync:
                syncs += 1
            default:
                break
            }
            offset = frame.end
        case .incomplete:
            break scanning
        case .invalidLength:
            fatalError("invalid frame length in benchmark input")
        }
    }
    return (frames, unnamedParses, binds, syncs)
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
        scalingFactor: .kilo, // one scaled iteration = one frame
        maxDuration: .seconds(2),
        maxIterations: 20_000,
        thresholds: [.mallocCountTotal: zeroMallocs]
    )

    let backend = backendResultSet()
    let client = clientExtendedPipeline()

    // Check the inputs once, outside any measurement, so a change in MessageWriter or
    // the scanner cannot turn a benchmark into a measurement of nothing.
    let checkBackend = scanBackend(backend.bytes)
    precondition(checkBackend.frames == framesPerBuffer && checkBackend.idle == 1
        && checkBackend.consumed == backend.bytes.count)
    let checkReads = scanBackendInReads(backend.bytes, readSize: 1_448)
    precondition(checkReads.frames == framesPerBuffer && checkReads.idle == 1 && checkReads.partial > 0)
    let checkClient = scanClient(client.bytes)
    precondition(checkClient.frames == framesPerBuffer && checkClient.unnamedParses == framesPerBuffer / 5
        && checkClient.binds == framesPerBuffer / 5 && checkClient.syncs == framesPerBuffer / 5)

    Benchmark("BackendResultSet") { benchmark in
        let bytes = backend.bytes
        benchmark.startMeasurement()
        blackHole(scanBackend(bytes))
    }

    Benchmark("BackendResultSetInReads") { benchmark in
        let bytes = backend.bytes
        benchmark.startMeasurement()
        blackHole(scanBackendInReads(bytes, readSize: 1_448))
    }

    Benchmark("ClientExtendedPipeline") { benchmark in
        let bytes = client.bytes
        benchmark.startMeasurement()
        blackHole(scanClient(bytes))
    }
}
