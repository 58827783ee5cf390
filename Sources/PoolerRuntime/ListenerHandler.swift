import Glibc
import PoolerIO

/// Accepts connections on one listening socket.
final class ListenerHandler: EventHandler {
    unowned let pooler: Pooler
    let fd: Int32
    let isUnix: Bool
    let port: Int
    /// UInt64.max while off the loop's epoll set (SUSPEND, see stopAccepting).
    var token: UInt64 = .max
    let path: String?
    /// The epoll events it is registered with.
    private(set) var events: UInt32 = 0

    init(pooler: Pooler, fd: Int32, isUnix: Bool, port: Int, path: String?) {
        self.pooler = pooler
        self.fd = fd
        self.isUnix = isUnix
        self.port = port
        self.path = path
    }

    override func handleEvents(_ events: UInt32) {
        var storage = sockaddr_storage()
        // Accept a bounded batch so one busy listener cannot starve the loop.
        // With several loops, a few per wakeup: the next connections wake another loop.
        for _ in 0..<(pooler.workers.count > 1 ? 4 : 64) {
            let accepted: Int32?
            do {
                accepted = try Syscall.accept(fd, address: &storage)
            } catch {
                // Reset while it waited in the backlog: on to the next one.
                if error.errno == ECONNABORTED { continue }
                pooler.acceptFailed(error)
                return
            }
            guard let clientFD = accepted else { return }
            let remote = SocketAddress(storage: storage)
            pooler.accept(fd: clientFD, remote: remote, localPort: port, isUnix: isUnix)
        }
    }

    func register(events: UInt32) throws {
        self.events = events
        token = try pooler.loop.register(fd: fd, events: events, handler: self)
    }

    /// SUSPEND, as PgBouncer's suspend_pooler: off the epoll set, so that new connections
    /// wait in the kernel's listen backlog until RESUME. (EPOLLEXCLUSIVE registrations
    /// cannot be modified, only removed and added again.)
    func stopAccepting() {
        pooler.loop.unregister(fd: fd, token: token)
        token = .max
    }

    func resumeAccepting() throws {
        guard token == .max else { return }
        try register(events: events)
    }

    func close() {
        pooler.loop.unregister(fd: fd, token: token)
        Syscall.close(fd)
        if let path { Syscall.unlink(path) }
    }
}
