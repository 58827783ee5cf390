import Glibc
import PoolerIO
import PoolerWire

/// What client and server connections share: the socket, its registration, the two
/// buffers, TLS when negotiated, and the write-interest bookkeeping. Subclasses parse
/// what they read; `input` and `output` always hold plaintext.
class Connection: EventHandler {
    /// The pooler lives until the process exits. A strong `let`: the compiler knows it
    /// stays alive while `self` does, so uses need no retain (unowned(unsafe) loads do).
    let pooler: Pooler
    /// The loop registration; UInt64.max until registered (never a valid token).
    var token: UInt64 = .max
    /// Unique id used in pools and in SHOW output.
    let id: Int
    var input = ByteBuffer()
    var output = ByteBuffer()
    let connectTime: UInt64
    var requestTime: UInt64
    let remote: SocketAddress
    /// TLS state, allocated only for connections that negotiate TLS (most idle clients
    /// carry just this pointer): the session, and ciphertext waiting for the socket.
    private final class TLSLink {
        let session: TLSSession
        var cipherOut = ByteBuffer()
        init(_ session: TLSSession) { self.session = session }
    }
    private var tlsLink: TLSLink?
    /// The TLS session once negotiated.
    var tls: TLSSession? { tlsLink?.session }
    // Small fields last, packed (every client carries them).
    let fd: Int32
    private var registeredEvents: UInt32 = 0
    private let localPortValue: UInt16
    var localPort: Int { Int(localPortValue) }
    private(set) var closed = false
    /// When false the loop stops reading this socket (backpressure or waiting for a server).
    var wantsRead = true
    /// The linked peer stopped reading because this connection's output was full: it
    /// resumes when the output drains (checked without touching the peer otherwise).
    var peerPausedForBackpressure = false

    init(pooler: Pooler, fd: Int32, remote: SocketAddress, localPort: Int) {
        self.pooler = pooler
        self.fd = fd
        self.remote = remote
        self.localPortValue = UInt16(truncatingIfNeeded: localPort)
        self.id = pooler.nextConnectionID()
        self.connectTime = pooler.loop.now
        self.requestTime = pooler.loop.now
    }

    /// workers > 1: a connection on `pooler`'s loop for the socket, TLS session and
    /// buffers of `other`, which was unregistered from its own loop and gives them up.
    init(adopting other: Connection, pooler: Pooler) {
        self.pooler = pooler
        fd = other.fd
        remote = other.remote
        localPortValue = other.localPortValue
        id = other.id
        connectTime = other.connectTime
        requestTime = other.requestTime
        input = other.input
        output = other.output
        tlsLink = other.tlsLink
        other.input = ByteBuffer()
        other.output = ByteBuffer()
        other.tlsLink = nil
        other.closed = true
    }

    /// Nothing waits to be written or encrypted: the socket and TLS session can move to
    /// another loop (workers > 1).
    var canMoveToOtherLoop: Bool {
        guard output.isEmpty else { return false }
        guard let link = tlsLink else { return true }
        return link.cipherOut.isEmpty && link.session.isHandshakeComplete && link.session.pendingCiphertextCount == 0
    }

    /// Leaves this loop's epoll set without closing the socket (it moves to another loop).
    func unregisterForHandOver() {
        pooler.loop.unregister(fd: fd, token: token)
        registeredEvents = 0
    }

    func register() throws(SystemError) {
        registeredEvents = desiredEvents
        token = try pooler.loop.register(fd: fd, events: registeredEvents, handler: self)
    }

    @inline(__always)
    private var desiredEvents: UInt32 {
        var events = EventMask.peerHangup
        if wantsRead && !readingSuspended { events |= EventMask.readable }
        if wantsWritable || (tlsLink == nil ? !output.isEmpty : hasPendingWrite) { events |= EventMask.writable }
        return events
    }

    /// Bytes that wait for the socket. With TLS, plaintext the handshake holds back
    /// does not count: it moves once the peer answers, which a read reports.
    private var hasPendingWrite: Bool {
        guard let link = tlsLink else { return !output.isEmpty }
        return !link.cipherOut.isEmpty
    }

    /// Everything buffered toward the peer, plaintext and ciphertext (for backpressure).
    var bufferedOutput: Int { output.readableCount + (tlsLink?.cipherOut.readableCount ?? 0) }

    /// SUSPEND stops reading clients until RESUME.
    /// Stored (not overridden) so the check on every interest update is a load.
    var readingSuspended = false

    /// Subclasses set this while a non-blocking connect is in progress.
    var wantsWritable = false

    /// Several times per transaction, and almost always without a change: inlined down
    /// to a few loads and a compare.
    @inline(__always)
    final func updateInterest() {
        let desired = desiredEvents
        if desired != registeredEvents && !closed { applyInterest(desired) }
    }

    private func applyInterest(_ desired: UInt32) {
        registeredEvents = desired
        try? pooler.loop.modify(fd: fd, token: token, events: desired)
    }

    override func handleEvents(_ events: UInt32) {
        if closed { return }
        if events & EventMask.writable != 0 {
            writable()
            if closed { return }
        }
        if events & EventMask.readable != 0 || events & EventMask.hangup != 0 {
            readable()
        }
    }

    func writable() {
        flush()
    }

    /// Reads what the socket has into `input` (decrypting when TLS is on); returns false
    /// when the connection was closed.
    func readAvailable() -> Bool {
        if tlsLink != nil { return readTLS() } // (not `tls`: no retain of the session per read)
        let chunk = max(pooler.settings.pktBuf, 4096)
        input.reserveWritable(chunk)
        do {
            guard let count = try Syscall.read(fd, input.writablePointer, input.writableCount) else { return true }
            if count == 0 {
                peerClosed()
                return false
            }
            input.didWrite(count)
            return true
        } catch {
            ioFailed(error)
            return false
        }
    }

    private func readTLS() -> Bool {
        guard let tls else { return true }
        let scratch = pooler.readScratch
        do {
            guard let count = try Syscall.read(fd, scratch.baseAddress!, scratch.count) else { return true }
            if count == 0 {
                peerClosed()
                return false
            }
            tls.feedCiphertext(UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        } catch {
            ioFailed(error)
            return false
        }
        if !tls.isHandshakeComplete {
            switch tls.handshake() {
            case .complete:
                sendCiphertext()
                guard !closed else { return false }
                tlsHandshakeCompleted()
                if closed { return false }
            case .wantsMore:
                sendCiphertext()
                return !closed
            case .failed(let error):
                sendCiphertext()
                tlsFailed(error)
                return false
            }
        }
        switch tls.readPlaintext(into: &input) {
        case .bytes, .wantsMore:
            break
        case .closed:
            peerClosed()
            return false
        case .failed(let error):
            tlsFailed(error)
            return false
        }
        // Pending plaintext may move now, and TLS may have records of its own to send.
        flush()
        return !closed
    }

    /// Starts TLS on this socket; `initialCiphertext` is what was already read (direct TLS).
    func startTLS(_ session: TLSSession, initialCiphertext: UnsafeRawBufferPointer? = nil) {
        tlsLink = TLSLink(session)
        if let initialCiphertext, initialCiphertext.count > 0 { session.feedCiphertext(initialCiphertext) }
        switch session.handshake() {
        case .complete:
            sendCiphertext()
            tlsHandshakeCompleted()
        case .wantsMore:
            sendCiphertext()
        case .failed(let error):
            sendCiphertext()
            tlsFailed(error)
        }
    }

    /// The handshake finished (subclasses check the peer and carry on).
    func tlsHandshakeCompleted() {}

    func tlsFailed(_ error: TLSError) { close(reason: "TLS: \(error.message)") }

    func readable() {}

    /// Sends buffered output (through TLS when on); keeps write interest while something is left.
    @inline(__always)
    final func flush() {
        if output.storage == nil && tlsLink == nil && !closed {
            // Nothing was buffered (the usual case after a direct send, twice per
            // transaction): no syscall, no call, only a peer paused for backpressure and
            // the interest to look at. (Whoever set something up for outputDrained, e.g.
            // close-after-flush, buffered output and goes the long way.)
            if peerPausedForBackpressure { outputDrained() }
            updateInterest()
            return
        }
        flushBuffered()
    }

    private func flushBuffered() {
        guard !closed else { return }
        if let link = tlsLink {
            let tls = link.session
            var stalled = false
            while true {
                // Encrypt only as much as the socket is likely to take soon.
                var encrypted = false
                while !output.isEmpty && link.cipherOut.readableCount < 256 * 1024 {
                    let chunk = UnsafeRawBufferPointer(rebasing: output.readable.prefix(64 * 1024))
                    switch tls.writePlaintext(chunk) {
                    case .written(let count):
                        output.consume(count)
                        encrypted = true
                        continue
                    case .wantsMore:
                        break
                    case .failed(let error):
                        tlsFailed(error)
                        return
                    }
                    break
                }
                sendCiphertext()
                guard !closed else { return }
                // The socket took all of it and plaintext is left: the next part. The write
                // interest follows the ciphertext only, so that plaintext would wait for
                // nothing. (A pass that can encrypt nothing ends it.)
                guard link.cipherOut.isEmpty && !output.isEmpty && !stalled else { break }
                stalled = !encrypted
            }
        } else if let error = drain(&output) {
            ioFailed(error)
            return
        }
        if output.isEmpty && tlsLink?.cipherOut.isEmpty ?? true {
            output.releaseIfEmpty()
            tlsLink?.cipherOut.releaseIfEmpty()
            outputDrained()
        }
        updateInterest()
    }

    /// Moves TLS records to the socket.
    private func sendCiphertext() {
        guard let link = tlsLink else { return }
        link.session.takeCiphertext(into: &link.cipherOut)
        if let error = drain(&link.cipherOut) {
            ioFailed(error)
            return
        }
        updateInterest()
    }

    /// Sends `buffer` until it is empty or the socket is full; the error when sending
    /// failed (the caller closes, outside the access to the buffer).
    private func drain(_ buffer: inout ByteBuffer) -> SystemError? {
        while !buffer.isEmpty {
            let pending = buffer.readable
            do {
                guard let sent = try Syscall.send(fd, pending.baseAddress!, pending.count) else { return nil }
                buffer.consume(sent)
            } catch {
                return error
            }
        }
        return nil
    }

    /// Sends bytes held elsewhere (a peer's read buffer): straight to the socket when
    /// nothing is queued ahead of them and there is no TLS, whatever the socket does not
    /// take is buffered. A send error is left for the `flush` that follows to report.
    func sendBorrowed(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        if tlsLink == nil && !closed {
            if output.isEmpty {
                if let sent = try? Syscall.send(fd, bytes.baseAddress!, bytes.count) {
                    rest = UnsafeRawBufferPointer(rebasing: bytes[sent...])
                }
            } else {
                // Queued bytes first, then these, in one gathering send: what the socket
                // takes of them needs no copy.
                let queued = output.readable
                if let sent = try? Syscall.send(fd, queued, bytes) {
                    let fromQueue = min(sent, queued.count)
                    output.consume(fromQueue)
                    rest = UnsafeRawBufferPointer(rebasing: bytes[(sent - fromQueue)...])
                }
            }
        }
        if !rest.isEmpty { output.append(rest) }
    }

    /// Output fell to empty: a peer paused for backpressure may resume.
    func outputDrained() {}

    func send(_ writer: MessageWriter) {
        output.append(writer.bytes)
    }

    /// Writes what is buffered right now without waiting (before an error close).
    func sendNowBestEffort() {
        if tls != nil {
            flush()
            return
        }
        let pending = output.readable
        if pending.count > 0 { _ = try? Syscall.send(fd, pending.baseAddress!, pending.count) }
    }

    /// `C-0x1f: db/user@host:port` (`kind` C or S), PgBouncer's log prefix, built as
    /// bytes: a login logs two lines, and String interpolation of the parts cost more
    /// than the rest of the login's bookkeeping.
    func logPrefix(_ kind: Unicode.Scalar, database: String, user: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(48 + database.utf8.count + user.utf8.count)
        bytes.append(UInt8(ascii: kind))
        bytes.append(contentsOf: "-0x".utf8)
        Self.appendHex(UInt(bitPattern: id), to: &bytes)
        bytes.append(contentsOf: ": ".utf8)
        bytes.append(contentsOf: database.utf8)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: user.utf8)
        bytes.append(UInt8(ascii: "@"))
        remote.appendDescription(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendHex(_ value: UInt, to bytes: inout [UInt8]) {
        if value >= 16 { appendHex(value / 16, to: &bytes) }
        let digit = UInt8(truncatingIfNeeded: value % 16)
        bytes.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
    }

    func peerClosed() { close(reason: "client close request") }
    func ioFailed(_ error: SystemError) { close(reason: "\(error)") }

    func close(reason: String) {
        guard !closed else { return }
        pooler.loop.unregister(fd: fd, token: token)
        releaseSocketAndBuffers()
    }

    /// Closes the socket and frees the buffers and TLS state. The registration is the
    /// caller's business: a handed-over connection that cannot be adopted has none on
    /// the loop that closes it this way.
    func releaseSocketAndBuffers() {
        closed = true
        Syscall.close(fd)
        input.deallocate()
        output.deallocate()
        tlsLink?.cipherOut.deallocate()
        tlsLink = nil
    }
}
