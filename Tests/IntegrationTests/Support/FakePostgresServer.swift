import Foundation
import Glibc

/// A TCP "PostgreSQL" on 127.0.0.1 that speaks just enough of the protocol to be
/// a pooler's server, and can misbehave on purpose: it trusts every login, answers
/// queries with one row `1` (or `SET` for non-SELECTs), holds back the answer to
/// any query containing `hang` until `releaseHeldQueries()`, and accepts cancel
/// requests without ever answering or closing them (a real postmaster closes the
/// cancel connection once it has signalled the backend).
///
///     let fake = try FakePostgresServer()
///     // [databases] fake = host=127.0.0.1 port=\(fake.port) dbname=fake
///     _ = fake.waitForCancel(timeout: 5)          // time the cancel arrived
///     _ = fake.waitForCancelClosed(timeout: 5)    // time the pooler dropped it
final class FakePostgresServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private let stopped = AtomicFlag()
    private var events: [String] = []
    private var cancelArrivals: [Double] = []
    private var cancelCloses: [Double] = []
    private var heldQueries: [String] = []
    private var releaseRequested = 0
    private var nextBackend: Int32 = 4242

    init() throws {
        var lastError = ""
        for _ in 0..<5 {
            let port = try FreePort.pick()
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in.loopback(port: port)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc == 0, listen(fd, 64) == 0 {
                self.port = port
                listener = fd
                let thread = Thread { [self] in acceptLoop() }
                thread.start()
                return
            }
            lastError = String(cString: strerror(errno))
            close(fd)
        }
        throw HarnessError("fake server could not listen: \(lastError)")
    }

    deinit { stop() }

    /// Closes the listener; connection threads end within ~0.1 s.
    func stop() {
        guard !stopped.isSet else { return }
        stopped.set()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// What happened, in order (for failure messages).
    var log: [String] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }

    /// Queries received and not yet answered.
    var held: [String] {
        lock.lock()
        defer { lock.unlock() }
        return heldQueries
    }

    /// Answers the held queries with `canceling statement due to user request`.
    func releaseHeldQueries() {
        lock.lock()
        releaseRequested += 1
        lock.unlock()
    }

    /// Monotonic time the first cancel request arrived, waiting up to `timeout`.
    func waitForCancel(timeout: Double) -> Double? {
        var result: Double?
        _ = waitUntil(timeout: timeout) {
            lock.lock()
            defer { lock.unlock() }
            result = cancelArrivals.first
            return result != nil
        }
        return result
    }

    /// Monotonic time the pooler closed the first cancel connection, waiting up to `timeout`.
    func waitForCancelClosed(timeout: Double) -> Double? {
        var result: Double?
        _ = waitUntil(timeout: timeout) {
            lock.lock()
            defer { lock.unlock() }
            result = cancelCloses.first
            return result != nil
        }
        return result
    }

    private func record(_ event: String) {
        lock.lock()
        events.append(String(format: "%.3f ", monotonicSeconds()) + event)
        lock.unlock()
    }

    private func acceptLoop() {
        while !stopped.isSet {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0, !stopped.isSet else { continue }
            let connection = accept(listener, nil, nil)
            if connection < 0 { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
    }

    // MARK: one connection

    private final class Peer {
        let fd: Int32
        var buffer: [UInt8] = []
        var closed = false
        init(fd: Int32) { self.fd = fd }
    }

    /// Reads more bytes (waiting up to 100 ms); false once the peer closed.
    private func fill(_ peer: Peer) -> Bool {
        var descriptor = pollfd(fd: peer.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 100) > 0 else { return !peer.closed }
        var chunk = [UInt8](repeating: 0, count: 8192)
        let count = chunk.withUnsafeMutableBytes { recv(peer.fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            peer.buffer += chunk[0..<count]
        } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
            peer.closed = true
        }
        return !peer.closed
    }

    private func send(_ peer: Peer, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(peer.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }

    private static func int32(_ bytes: [UInt8], _ at: Int) -> Int {
        Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
    }

    private static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue!] + FrontendPacket.bigEndian(UInt32(body.count + 4)) + body
    }

    private static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

    private static let readyForQuery = message("Z", [UInt8(ascii: "I")])

    private func serve(_ fd: Int32) {
        let peer = Peer(fd: fd)
        defer { close(fd) }
        // Startup phase: SSL/GSS requests, a cancel request, or the startup message.
        while true {
            while peer.buffer.count < 8 { if stopped.isSet || !fill(peer) { return } }
            let length = Self.int32(peer.buffer, 0)
            guard length >= 8, length < 10_000 else { record("bad startup length \(length)"); return }
            while peer.buffer.count < length { if stopped.isSet || !fill(peer) { return } }
            let code = Self.int32(peer.buffer, 4)
            let packet = Array(peer.buffer[0..<length])
            peer.buffer.removeFirst(length)
            switch code {
            case 80_877_103, 80_877_104:  // SSLRequest, GSSENCRequest: no
                send(peer, [UInt8(ascii: "N")])
                continue
            case 80_877_102:  // CancelRequest: take it, never answer, never close
                lock.lock()
                cancelArrivals.append(monotonicSeconds())
                lock.unlock()
                record("cancel request for backend \(Self.int32(packet, 8))")
                while !stopped.isSet && fill(peer) {}
                if peer.closed {
                    lock.lock()
                    cancelCloses.append(monotonicSeconds())
                    lock.unlock()
                    record("cancel connection closed by the pooler")
                }
                return
            default:
                record("startup (\(length) bytes)")
            }
            break
        }
        lock.lock()
        nextBackend += 1
        let backend = nextBackend
        lock.unlock()
        var hello = Self.message("R", [0, 0, 0, 0])
        for (key, value) in [("server_version", "15.0"), ("server_encoding", "UTF8"), ("client_encoding", "UTF8"),
                             ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC"), ("IntervalStyle", "postgres"),
                             ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                             ("is_superuser", "off"), ("application_name", "")] {
            hello += Self.message("S", Self.cString(key) + Self.cString(value))
        }
        hello += Self.message("K", FrontendPacket.bigEndian(UInt32(backend)) + FrontendPacket.bigEndian(0x5EC2E7))
        hello += Self.readyForQuery
        send(peer, hello)

        var held = 0
        var releasesSeen = releaseCount()
        while !stopped.isSet {
            let releases = releaseCount()
            if held > 0, releases != releasesSeen {
                releasesSeen = releases
                let error = Self.message("E", Self.cString("SERROR") + Self.cString("VERROR") + Self.cString("C57014")
                                         + Self.cString("Mcanceling statement due to user request") + [0])
                for _ in 0..<held { send(peer, error + Self.readyForQuery) }
                lock.lock()
                heldQueries.removeAll()
                lock.unlock()
                record("released \(held) held queries")
                held = 0
            }
            guard peer.buffer.count >= 5 else {
                if !fill(peer) { record("server connection closed by the pooler"); return }
                continue
            }
            let length = Self.int32(peer.buffer, 1)
            guard length >= 4 else { record("bad message length"); return }
            guard peer.buffer.count >= 1 + length else {
                if !fill(peer) { return }
                continue
            }
            let type = Character(UnicodeScalar(peer.buffer[0]))
            let body = Array(peer.buffer[5..<(1 + length)])
            peer.buffer.removeFirst(1 + length)
            switch type {
            case "Q":
                let sql = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                record("query: \(sql)")
                if sql.contains("hang") {
                    held += 1
                    lock.lock()
                    heldQueries.append(sql)
                    lock.unlock()
                } else if sql.uppercased().hasPrefix("SELECT") {
                    let column = Self.cString("?column?") + [0, 0, 0, 0, 0, 0] + FrontendPacket.bigEndian(25)
                        + [0xff, 0xff] + FrontendPacket.bigEndian(0xffff_ffff) + [0, 0]
                    var reply = Self.message("T", [0, 1] + column)
                    reply += Self.message("D", [0, 1] + FrontendPacket.bigEndian(1) + [UInt8(ascii: "1")])
                    reply += Self.message("C", Self.cString("SELECT 1")) + Self.readyForQuery
                    send(peer, reply)
                } else {
                    send(peer, Self.message("C", Self.cString("SET")) + Self.readyForQuery)
                }
            case "X":
                record("terminate")
                return
            default:
                record("unexpected message '\(type)'; answering ReadyForQuery")
                if type == "S" { send(peer, Self.readyForQuery) }
            }
        }
    }

    private func releaseCount() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return releaseRequested
    }
}
