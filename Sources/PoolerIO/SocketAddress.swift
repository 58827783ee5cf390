import CLinuxShims
import Glibc

/// A resolved socket address (IPv4, IPv6 or unix path).
public struct SocketAddress: CustomStringConvertible, Sendable {
    public var storage = sockaddr_storage()
    public var length: socklen_t = 0

    public init() {}

    public var family: Int32 { Int32(storage.ss_family) }

    public static func unix(path: String) -> SocketAddress? {
        var address = SocketAddress()
        var un = sockaddr_un()
        un.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: un.sun_path)
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &un.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        withUnsafeMutableBytes(of: &address.storage) { dst in
            withUnsafeBytes(of: un) { src in dst.copyMemory(from: src) }
        }
        address.length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return address
    }

    /// A PostgreSQL-style host: a directory (or empty: the default /var/run/postgresql)
    /// means the unix socket `<dir>/.s.PGSQL.<port>`; nil for a TCP host name.
    public static func postgresSocket(host: String, port: Int) -> SocketAddress? {
        guard host.isEmpty || host.hasPrefix("/") else { return nil }
        return unix(path: "\(host.isEmpty ? "/var/run/postgresql" : host)/.s.PGSQL.\(port)")
    }

    /// The unix socket for `host` when it names a directory, else the first address a
    /// blocking lookup gives (for rare connections only: cancel forwarding, auth_query).
    public static func postgres(host: String, port: Int) -> SocketAddress? {
        if host.isEmpty || host.hasPrefix("/") { return postgresSocket(host: host, port: port) }
        return resolve(host: host, port: port).first
    }

    /// Resolves a numeric or named host (blocking getaddrinfo; hosts are resolved at
    /// connect time, which is rare: only when a pool opens a server connection).
    public static func resolve(host: String, port: Int, passive: Bool = false, numericOnly: Bool = false) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        // A numeric host never touches DNS, so this form is safe on the event loop.
        if numericOnly { hints.ai_flags |= AI_NUMERICHOST }
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &result)
        guard status == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var address = SocketAddress()
            withUnsafeMutableBytes(of: &address.storage) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: entry.pointee.ai_addr, count: Int(entry.pointee.ai_addrlen)))
            }
            address.length = entry.pointee.ai_addrlen
            addresses.append(address)
            cursor = entry.pointee.ai_next
        }
        return addresses
    }

    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// The raw address: 4 bytes for IPv4 (also for IPv4-mapped IPv6), 16 for IPv6,
    /// nil for unix sockets.
    public var addressBytes: [UInt8]? {
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: storage) { raw in
                withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { Array($0) }
            }
        case AF_INET6:
            let bytes = withUnsafeBytes(of: storage) { raw in
                withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { Array($0) }
            }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        default:
            return nil
        }
    }

    /// Host text without port ("127.0.0.1", "::1", "unix").
    public var host: String {
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: storage) { raw -> String in
                var sin = raw.load(as: sockaddr_in.self)
                var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                inet_ntop(AF_INET, &sin.sin_addr, &buffer, socklen_t(buffer.count))
                return String(cString: buffer)
            }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { raw -> String in
                var sin6 = raw.load(as: sockaddr_in6.self)
                var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(AF_INET6, &sin6.sin6_addr, &buffer, socklen_t(buffer.count))
                return String(cString: buffer)
            }
        default:
            return "unix"
        }
    }

    public var port: Int {
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: storage) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port)) }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port)) }
        default:
            return 0
        }
    }

    public var description: String { family == AF_UNIX ? "unix:\(port)" : "\(host):\(port)" }
}
