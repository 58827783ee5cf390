import Foundation
import Glibc

/// TCP ports on 127.0.0.1 for the cluster and the poolers. Picked below the
/// kernel's ephemeral range (32768+), so that our own outgoing connections
/// cannot take a port between picking it and the server binding it; never
/// handed out twice in one process. Callers still retry on EADDRINUSE, as
/// other processes on the machine pick ports too.
enum FreePort {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut = Set<Int>()

    static func pick() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        for _ in 0..<500 {
            let port = Int.random(in: 20_000..<32_000)
            if handedOut.contains(port) { continue }
            if let fd = try? bindSocket(port: port) {
                close(fd)
                handedOut.insert(port)
                return port
            }
        }
        throw HarnessError("no free TCP port found in 20000..<32000")
    }

    /// A port where nothing listens, held as a bound but not listening socket
    /// (connects get ECONNREFUSED) until the returned descriptor is closed.
    static func closedPort() throws -> (port: Int, descriptor: Int32) {
        let port = try pick()
        return (port, try bindSocket(port: port))
    }

    private static func bindSocket(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in.loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("bind 127.0.0.1:\(port): \(message)")
        }
        return fd
    }

    /// True when a TCP socket listens on `port` (IPv4 or IPv6, any address),
    /// read from /proc/net so that the check leaves no trace in the server's
    /// client statistics; falls back to connecting.
    static func isListening(port: Int) -> Bool {
        let hexPort = String(format: ":%04X", port)
        var sawTable = false
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = readTextFile(table)
            if text.isEmpty { continue }
            sawTable = true
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count > 3, fields[1].hasSuffix(hexPort), fields[3] == "0A" { return true }
            }
        }
        return sawTable ? false : isAccepting(port: port)
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    static func isAccepting(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in.loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return rc == 0
    }
}

extension sockaddr_in {
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        return address
    }
}
