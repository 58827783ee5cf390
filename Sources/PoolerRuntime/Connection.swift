import Glibc
import PoolerIO
import PoolerWire

/// What client and server connections share: the socket, its registration, the two
/// buffers and the write-interest bookkeeping. Subclasses parse what they read.
class Connection: EventHandler {
    unowned let pooler: Pooler
    let fd: Int32
    var token: UInt64 = 0
    /// Unique id used in pools and in SHOW output.
    let id: Int
    var input = ByteBuffer()
    var output = ByteBuffer()
    private(set) var closed = false
    private var registeredEvents: UInt32 = 0
    /// When false the loop stops reading this socket (backpressure or waiting for a server).
    var wantsRead = true
    let connectTime: UInt64
    let connectWallTime: Int
    var requestTime: UInt64
    let localPort: Int
    let remote: SocketAddress

    init(pooler: Pooler, fd: Int32, remote: SocketAddress, localPort: Int) {
        self.pooler = pooler
        self.fd = fd
        self.remote = remote
        self.localPort = localPort
        self.id = pooler.nextConnectionID()
        self.connectTime = pooler.loop.now
        self.connectWallTime = Int(time(nil))
        self.requestTime = pooler.loop.now
    }

    func register() throws(SystemError) {
        registeredEvents = desiredEvents
        token = try pooler.loop.register(fd: fd, events: registeredEvents, handler: self)
    }

    private var desiredEvents: UInt32 {
        var events = EventMask.peerHangup
        if wantsRead && !readingSuspended { events |= EventMask.readable }
        if !output.isEmpty || wantsWritable { events |= EventMask.writable }
        return events
    }

    /// SUSPEND stops reading clients until RESUME.
    var readingSuspended: Bool { false }

    /// Subclasses set this while a non-blocking connect is in progress.
    var wantsWritable: Bool { false }

    func updateInterest() {
        guard !closed else { return }
        let desired = desiredEvents
        if desired != registeredEvents {
            registeredEvents = desired
            try? pooler.loop.modify(fd: fd, token: token, events: desired)
        }
    }

    func handleEvents(_ events: UInt32) {
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

    /// Reads what the socket has; returns false when the connection was closed.
    func readAvailable() -> Bool {
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

    func readable() {}

    /// Sends buffered output; keeps write interest while something is left.
    func flush() {
        guard !closed else { return }
        while !output.isEmpty {
            let pending = output.readable
            do {
                guard let sent = try Syscall.send(fd, pending.baseAddress!, pending.count) else { break }
                output.consume(sent)
            } catch {
                ioFailed(error)
                return
            }
        }
        if output.isEmpty { output.releaseIfEmpty(); outputDrained() }
        updateInterest()
    }

    /// Output fell to empty: a peer paused for backpressure may resume.
    func outputDrained() {}

    func send(_ writer: MessageWriter) {
        output.append(writer.bytes)
    }

    func peerClosed() { close(reason: "client close request") }
    func ioFailed(_ error: SystemError) { close(reason: "\(error)") }

    func close(reason: String) {
        guard !closed else { return }
        closed = true
        pooler.loop.unregister(fd: fd, token: token)
        Syscall.close(fd)
        input.deallocate()
        output.deallocate()
    }
}
