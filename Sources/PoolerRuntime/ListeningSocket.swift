import Glibc
import PoolerIO

/// A listening socket on one loop's epoll set that can leave it for a while and come
/// back: for SUSPEND (client listeners) and after accept() failed (every listener).
/// EPOLLEXCLUSIVE registrations cannot be modified, only removed and added again.
class ListeningSocket: EventHandler {
    unowned let pooler: Pooler
    let fd: Int32
    /// UInt64.max while off the loop's epoll set.
    private(set) var token: UInt64 = .max
    /// The epoll events it is registered with.
    private var events: UInt32 = 0

    init(pooler: Pooler, fd: Int32) {
        self.pooler = pooler
        self.fd = fd
    }

    func register(events: UInt32) throws {
        self.events = events
        token = try pooler.loop.register(fd: fd, events: events, handler: self)
    }

    /// Off the epoll set: new connections wait in the kernel's listen backlog.
    func stopAccepting() {
        pooler.loop.unregister(fd: fd, token: token)
        token = .max
    }

    func resumeAccepting() throws {
        guard token == .max else { return }
        try register(events: events)
    }

    /// The next connection in the backlog: nil when there is none now or accepting
    /// failed (then the pooler stops accepting for a while, see Pooler.acceptFailed).
    /// A connection reset while it waited in the backlog is skipped.
    func acceptNext(_ storage: inout sockaddr_storage) -> Int32? {
        while true {
            do {
                return try Syscall.accept(fd, address: &storage)
            } catch {
                if error.errno == ECONNABORTED { continue }
                pooler.acceptFailed(error)
                return nil
            }
        }
    }

    func close() {
        stopAccepting()
        Syscall.close(fd)
    }
}
