import Glibc
import PoolerIO
import PoolerWire

/// Delivers one CancelRequest to a server on a connection of its own, then closes:
/// the client's cancel key maps to the backend its transaction runs on right now.
final class CancelForwarder: EventHandler {
    unowned let pooler: Pooler
    private let fd: Int32
    private var token: UInt64 = 0
    private let packet: [UInt8]
    private let started: UInt64

    init?(pooler: Pooler, address: SocketAddress, processID: Int32, secretKey: Int32) {
        self.pooler = pooler
        var writer = MessageWriter()
        writer.cancelRequest(processID: processID, secretKey: secretKey)
        packet = writer.bytes
        started = pooler.loop.now
        guard let fd = try? Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue)) else { return nil }
        self.fd = fd
        do {
            token = try pooler.loop.register(fd: fd, events: EventMask.writable, handler: self)
            _ = try Syscall.connect(fd, address)
        } catch {
            pooler.log.warning("cancel request could not be forwarded: \(error)")
            finish()
            return nil
        }
        pooler.cancelForwarders.append(self)
    }

    func handleEvents(_ events: UInt32) {
        if Syscall.socketError(fd) == 0 {
            _ = packet.withUnsafeBytes { try? Syscall.send(fd, $0.baseAddress!, $0.count) }
        }
        finish()
    }

    /// Gives up on a server that does not answer the connect in time.
    func expireIfOlder(than timeout: UInt64, now: UInt64) {
        if now &- started > timeout { finish() }
    }

    private func finish() {
        pooler.loop.unregister(fd: fd, token: token)
        Syscall.close(fd)
        pooler.cancelForwarders.removeAll { $0 === self }
    }
}
