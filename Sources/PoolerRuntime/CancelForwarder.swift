import Glibc
import PoolerIO
import PoolerWire

/// Delivers one CancelRequest to a server on a connection of its own. The server it
/// targets is not handed to another client until PostgreSQL has taken the request
/// (it closes the connection once it has signalled the backend), so a late cancel
/// never hits someone else's query.
final class CancelForwarder: EventHandler {
    unowned let pooler: Pooler
    private let fd: Int32
    /// UInt64.max until registered (unregister ignores it).
    private var token: UInt64 = .max
    private let packet: [UInt8]
    private let started: UInt64
    /// The request went out; the server (or peer) has yet to close the connection.
    private(set) var sent = false
    private(set) weak var target: ServerConnection?
    /// The peer pooler this request goes to (SHOW PEER_POOLS), nil for a server.
    let peerID: Int?
    /// Runs once when the request is done (taken, failed or expired).
    var onFinish: (() -> Void)?

    convenience init?(pooler: Pooler, target: ServerConnection) {
        self.init(pooler: pooler, address: target.remote, processID: target.backendProcessID,
                  secretKey: target.backendSecretKey, target: target, peerID: nil)
    }

    /// A cancel for `address` (a server, or a peer pooler that owns the client).
    init?(pooler: Pooler, address: SocketAddress, processID: Int32, secretKey: Int32, target: ServerConnection? = nil,
          peerID: Int?) {
        self.pooler = pooler
        self.target = target
        self.peerID = peerID
        var writer = MessageWriter()
        writer.cancelRequest(processID: processID, secretKey: secretKey)
        packet = writer.bytes
        started = pooler.loop.now
        guard let fd = try? Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue)) else { return nil }
        self.fd = fd
        super.init()
        do {
            token = try pooler.loop.register(fd: fd, events: EventMask.writable, handler: self)
            _ = try Syscall.connect(fd, address)
        } catch {
            pooler.log.warning("cancel request could not be forwarded: \(error)")
            pooler.loop.unregister(fd: fd, token: token) // registered before connect failed
            Syscall.close(fd)
            return nil
        }
        target?.cancelsInFlight += 1
        pooler.cancelForwarders.append(self)
    }

    override func handleEvents(_ events: UInt32) {
        if !sent {
            guard Syscall.socketError(fd) == 0,
                  packet.withUnsafeBytes({ (try? Syscall.send(fd, $0.baseAddress!, $0.count)) ?? nil }) == packet.count else {
                finish()
                return
            }
            sent = true
            try? pooler.loop.modify(fd: fd, token: token, events: EventMask.readable | EventMask.peerHangup)
            return
        }
        // The postmaster answers nothing and closes once the backend was signalled.
        finish()
    }

    /// Gives up on a server that does not answer in time.
    func expireIfOlder(than timeout: UInt64, now: UInt64) {
        if now &- started > timeout { finish() }
    }

    private func finish() {
        pooler.loop.unregister(fd: fd, token: token)
        Syscall.close(fd)
        pooler.cancelForwarders.removeAll { $0 === self }
        if let target {
            target.cancelsInFlight -= 1
            if target.cancelsInFlight == 0 { target.cancelsFinished() }
        }
        let done = onFinish
        onFinish = nil
        done?()
    }
}
