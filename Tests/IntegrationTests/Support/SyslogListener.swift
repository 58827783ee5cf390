import Foundation
import Glibc

/// A stand-in syslog daemon: a unix datagram socket bound at /dev/log (where
/// syslog(3) sends) that keeps every message it receives, for tests of `syslog = 1`.
/// Only usable as root when /dev/log does not exist (see `unavailableReason`);
/// `stop()` removes the socket again.
final class SyslogListener: @unchecked Sendable {
    static let path = "/dev/log"

    /// Why the listener cannot run here, or nil when it can. A /dev/log that
    /// exists is left alone, whether a daemon answers on it or not.
    static var unavailableReason: String? {
        guard geteuid() == 0 else { return "binding /dev/log needs root" }
        var status = stat()
        if lstat(path, &status) == 0 {
            return (status.st_mode & S_IFMT) == S_IFSOCK && acceptsDatagrams()
                ? "/dev/log belongs to a running syslog daemon"
                : "/dev/log exists (not ours to replace)"
        }
        return nil
    }

    private static func acceptsDatagrams() -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = unixAddress(path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        } == 0
    }

    private static func unixAddress(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private let stopped = AtomicFlag()
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        if let reason = Self.unavailableReason { throw HarnessError("no syslog listener: \(reason)") }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = Self.unixAddress(Self.path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("bind \(Self.path): \(message)")
        }
        chmod(Self.path, 0o666)  // the pooler may run as another user
        let thread = Thread { [self] in receiveLoop() }
        thread.start()
    }

    deinit { stop() }

    /// Stops receiving and removes /dev/log. Idempotent.
    func stop() {
        guard !stopped.isSet else { return }
        stopped.set()
        _ = finished.wait(timeout: .now() + 2)
        unlink(Self.path)
        close(fd)
    }

    /// Every datagram so far, as text (`<PRI>Mmm dd hh:mm:ss ident[pid]: message`).
    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    private func receiveLoop() {
        defer { finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !stopped.isSet {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            lock.lock()
            received.append(text)
            lock.unlock()
        }
    }
}
