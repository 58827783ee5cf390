import Glibc
import PoolerIO

/// Accepts client connections on one listening socket.
final class ListenerHandler: ListeningSocket {
    let isUnix: Bool
    let port: Int
    let path: String?

    init(pooler: Pooler, fd: Int32, isUnix: Bool, port: Int, path: String?) {
        self.isUnix = isUnix
        self.port = port
        self.path = path
        super.init(pooler: pooler, fd: fd)
    }

    override func handleEvents(_ events: UInt32) {
        var storage = sockaddr_storage()
        // Accept a bounded batch so one busy listener cannot starve the loop.
        // With several loops, a few per wakeup: the next connections wake another loop.
        for _ in 0..<(pooler.workers.count > 1 ? 4 : 64) {
            guard let clientFD = acceptNext(&storage) else { return }
            let remote = SocketAddress(storage: storage)
            pooler.accept(fd: clientFD, remote: remote, localPort: port, isUnix: isUnix)
        }
    }

    override func close() {
        super.close()
        if let path { Syscall.unlink(path) }
    }
}
