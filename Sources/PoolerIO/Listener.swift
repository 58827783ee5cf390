import CLinuxShims
import Glibc

/// Opens listening sockets.
public enum ListenSocket {
    /// `deferAccept` (tcp_defer_accept): the kernel hands a connection over only once its
    /// first bytes arrived (the startup packet), or after 45 s, as PgBouncer sets it.
    public static func tcp(_ address: SocketAddress, backlog: Int32, reusePort: Bool,
                           deferAccept: Bool = false) throws(SystemError) -> Int32 {
        let fd = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        do throws(SystemError) {
            try Syscall.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            if deferAccept { try Syscall.setOption(fd, level: Int32(IPPROTO_TCP), name: TCP_DEFER_ACCEPT, value: 45) }
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

    /// `group` (unix_socket_group): the socket file's group, by name; empty keeps it.
    public static func unix(path: String, mode: Int, group: String = "", backlog: Int32) throws(SystemError) -> Int32 {
        guard let address = SocketAddress.unix(path: path) else { throw SystemError("bind", errno: ENAMETOOLONG) }
        Syscall.unlink(path)
        let fd = try Syscall.socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        do throws(SystemError) {
            try Syscall.bind(fd, address)
            if !group.isEmpty {
                guard let entry = getgrnam(group) else { throw SystemError("getgrnam", errno: ENOENT) }
                if chown(path, uid_t.max, entry.pointee.gr_gid) != 0 { throw SystemError("chown", errno: pooler_errno()) }
            }
            _ = chmod(path, mode_t(mode))
            try Syscall.listen(fd, backlog: backlog)
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    /// The tcp_* settings, applied to every TCP data socket (clients and servers), as
    /// PgBouncer's tune_socket does; 0 keeps the system default.
    public struct TCPOptions: Equatable, Sendable {
        public var keepalive = true
        public var keepcnt = 0
        public var keepidle = 0
        public var keepintvl = 0
        /// Milliseconds.
        public var userTimeout = 0
        /// SO_SNDBUF and SO_RCVBUF.
        public var socketBuffer = 0

        public init(keepalive: Bool = true, keepcnt: Int = 0, keepidle: Int = 0, keepintvl: Int = 0,
                    userTimeout: Int = 0, socketBuffer: Int = 0) {
            self.keepalive = keepalive
            self.keepcnt = keepcnt
            self.keepidle = keepidle
            self.keepintvl = keepintvl
            self.userTimeout = userTimeout
            self.socketBuffer = socketBuffer
        }

        /// (level, option, value) to set, in order.
        public var socketOptions: [(level: Int32, name: Int32, value: Int32)] {
            let tcp = Int32(IPPROTO_TCP)
            var options: [(level: Int32, name: Int32, value: Int32)] = [(tcp, TCP_NODELAY, 1)]
            if keepalive {
                options.append((SOL_SOCKET, SO_KEEPALIVE, 1))
                if keepcnt > 0 { options.append((tcp, TCP_KEEPCNT, Int32(clamping: keepcnt))) }
                if keepidle > 0 { options.append((tcp, TCP_KEEPIDLE, Int32(clamping: keepidle))) }
                if keepintvl > 0 { options.append((tcp, TCP_KEEPINTVL, Int32(clamping: keepintvl))) }
            }
            if userTimeout > 0 { options.append((tcp, TCP_USER_TIMEOUT, Int32(clamping: userTimeout))) }
            if socketBuffer > 0 {
                options.append((SOL_SOCKET, SO_SNDBUF, Int32(clamping: socketBuffer)))
                options.append((SOL_SOCKET, SO_RCVBUF, Int32(clamping: socketBuffer)))
            }
            return options
        }
    }

    /// Options every data socket gets.
    public static func configureDataSocket(_ fd: Int32, isTCP: Bool, options: TCPOptions) {
        guard isTCP else { return }
        for option in options.socketOptions {
            try? Syscall.setOption(fd, level: option.level, name: option.name, value: option.value)
        }
    }
}
