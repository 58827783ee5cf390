import CLinuxShims
import Glibc

/// Opens listening sockets.
public enum ListenSocket {
    public static func tcp(_ address: SocketAddress, backlog: Int32, reusePort: Bool) throws(SystemError) -> Int32 {
        let fd = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        do throws(SystemError) {
            try Syscall.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            if reusePort { try Syscall.setOption(fd, level: SOL_SOCKET, name: SO_REUSEPORT, value: 1) }
            if address.family == AF_INET6 {
                try Syscall.setOption(fd, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 1)
            }
            try Syscall.bind(fd, address)
            try Syscall.listen(fd, backlog: backlog)
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    public static func unix(path: String, mode: Int, backlog: Int32) throws(SystemError) -> Int32 {
        guard let address = SocketAddress.unix(path: path) else { throw SystemError("bind", errno: ENAMETOOLONG) }
        Syscall.unlink(path)
        let fd = try Syscall.socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        do throws(SystemError) {
            try Syscall.bind(fd, address)
            _ = chmod(path, mode_t(mode))
            try Syscall.listen(fd, backlog: backlog)
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    /// Options every data socket gets.
    public static func configureDataSocket(_ fd: Int32, isTCP: Bool, keepalive: Bool) {
        if isTCP {
            try? Syscall.setOption(fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            if keepalive { try? Syscall.setOption(fd, level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1) }
        }
    }
}
