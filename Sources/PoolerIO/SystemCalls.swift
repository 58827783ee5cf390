import CLinuxShims
import Glibc

/// A failed system call: which call and its errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: StaticString
    public let errno: Int32

    public init(_ call: StaticString, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Every syscall the pooler makes, wrapped once: EINTR retried here, EAGAIN returned
/// as nil, anything else a typed `SystemError`.
public enum Syscall {
    @inline(__always)
    static func check(_ call: StaticString, _ body: () -> Int) throws(SystemError) -> Int? {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = pooler_errno()
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw SystemError(call, errno: code)
        }
    }

    /// Bytes read, 0 at end of stream, nil when the socket has nothing now.
    @inline(__always)
    public static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws(SystemError) -> Int? {
        try check("read") { pooler_read(fd, buffer, count) }
    }

    /// Bytes written, nil when the socket buffer is full.
    @inline(__always)
    public static func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) throws(SystemError) -> Int? {
        try check("send") { pooler_send(fd, buffer, count, Int32(MSG_NOSIGNAL)) }
    }

    /// Gathering send of two pieces in one syscall (`sendmsg`, MSG_NOSIGNAL): bytes queued
    /// first, then bytes still in a peer's read buffer. nil when the socket is full.
    public static func send(_ fd: Int32, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) throws(SystemError) -> Int? {
        var vectors = (iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count),
                       iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count))
        return try withUnsafeMutableBytes(of: &vectors) { raw throws(SystemError) -> Int? in
            var message = msghdr()
            message.msg_iov = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            message.msg_iovlen = 2
            return try check("sendmsg") { pooler_sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
        }
    }

    public static func accept(_ fd: Int32, address: UnsafeMutablePointer<sockaddr_storage>) throws(SystemError) -> Int32? {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try check("accept4") {
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) { Int(pooler_accept4(fd, $0, &length)) }
        }
        return result.map { Int32($0) }
    }

    public static func socket(domain: Int32, type: Int32) throws(SystemError) -> Int32 {
        let fd = pooler_socket(domain, type)
        if fd < 0 { throw SystemError("socket", errno: pooler_errno()) }
        return fd
    }

    /// Starts a non-blocking connect; true when already connected, false when in progress.
    public static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(SystemError) -> Bool {
        while true {
            if Glibc.connect(fd, address, length) == 0 { return true }
            let code = pooler_errno()
            if code == EINTR { continue }
            if code == EINPROGRESS { return false }
            throw SystemError("connect", errno: code)
        }
    }

    public static func bind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(SystemError) {
        if Glibc.bind(fd, address, length) != 0 { throw SystemError("bind", errno: pooler_errno()) }
    }

    public static func bind(_ fd: Int32, _ address: SocketAddress) throws(SystemError) {
        let result = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        if result != 0 { throw SystemError("bind", errno: pooler_errno()) }
    }

    /// Starts a non-blocking connect; true when already connected, false when in progress.
    public static func connect(_ fd: Int32, _ address: SocketAddress) throws(SystemError) -> Bool {
        while true {
            if address.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 { return true }
            let code = pooler_errno()
            if code == EINTR { continue }
            if code == EINPROGRESS { return false }
            throw SystemError("connect", errno: code)
        }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(SystemError) {
        if Glibc.listen(fd, backlog) != 0 { throw SystemError("listen", errno: pooler_errno()) }
    }

    public static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32) throws(SystemError) {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SystemError("setsockopt", errno: pooler_errno())
        }
    }

    /// The pending error of a socket (after a non-blocking connect).
    public static func socketError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0 { return pooler_errno() }
        return value
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    public static func epollCreate() throws(SystemError) -> Int32 {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if fd < 0 { throw SystemError("epoll_create1", errno: pooler_errno()) }
        return fd
    }

    public static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        if pooler_epoll_ctl(epfd, op, fd, events, data) != 0 {
            throw SystemError("epoll_ctl", errno: pooler_errno())
        }
    }

    public static func epollWait(_ epfd: Int32, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
                                 max: Int32, timeoutMilliseconds: Int32) throws(SystemError) -> Int {
        while true {
            let n = pooler_epoll_wait(epfd, events, data, max, timeoutMilliseconds)
            if n >= 0 { return Int(n) }
            let code = pooler_errno()
            if code == EINTR { return 0 }
            throw SystemError("epoll_wait", errno: code)
        }
    }

    public static func eventFD() throws(SystemError) -> Int32 {
        let fd = pooler_eventfd()
        if fd < 0 { throw SystemError("eventfd", errno: pooler_errno()) }
        return fd
    }

    public static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    /// A small file's text (at most 4 KB: /proc and cgroup files), or nil if it cannot be
    /// read.
    public static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var count = -1
        repeat {
            count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        } while count < 0 && errno == EINTR
        guard count >= 0 else { return nil }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }

    public static func monotonicMicroseconds() -> UInt64 { pooler_monotonic_usec() }

    /// The OS user id of a unix-socket peer.
    public static func peerUID(_ fd: Int32) -> UInt32? {
        var uid: UInt32 = 0
        return pooler_peer_uid(fd, &uid) == 0 ? uid : nil
    }
}
