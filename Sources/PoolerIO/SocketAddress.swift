import CLinuxShims
import Glibc

/// A resolved socket address (IPv4, IPv6 or unix path). Every connection carries one,
/// so it is compact: an IPv4/IPv6 address lives in a `sockaddr_in6` (28 bytes, not
/// `sockaddr_storage`'s 128) and a unix socket keeps only its path.
public struct SocketAddress: CustomStringConvertible, Sendable {
    /// sockaddr_in or sockaddr_in6 (both start with the family); for AF_UNIX only the
    /// family is set.
    private var inet = sockaddr_in6()
    public private(set) var length: socklen_t = 0
    /// AF_UNIX: the socket path (nil for an unnamed peer, e.g. an accepted client).
    public private(set) var unixPath: String?

    public init() {}

    /// From what accept(2), getsockname(2) or getaddrinfo(3) filled in.
    public init(raw: UnsafeRawPointer, length: socklen_t) {
        let family = Int32(raw.load(as: sa_family_t.self))
        self.length = length
        switch family {
        case AF_INET:
            withUnsafeMutableBytes(of: &inet) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: MemoryLayout<sockaddr_in>.size)) }
        case AF_INET6:
            withUnsafeMutableBytes(of: &inet) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: MemoryLayout<sockaddr_in6>.size)) }
        case AF_UNIX:
            inet.sin6_family = sa_family_t(AF_UNIX)
            let un = raw.load(as: sockaddr_un.self)
            let path = withUnsafeBytes(of: un.sun_path) { bytes -> String in
                let end = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: bytes[0..<end], as: UTF8.self)
            }
            unixPath = path.isEmpty ? nil : path
        default:
            inet.sin6_family = sa_family_t(family)
        }
    }

    public init(storage: sockaddr_storage, length: socklen_t = 0) {
        var copy = storage
        self = withUnsafeBytes(of: &copy) { SocketAddress(raw: $0.baseAddress!, length: length) }
    }

    public var family: Int32 { Int32(inet.sin6_family) }

    public static func unix(path: String) -> SocketAddress? {
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard path.utf8.count < capacity else { return nil }
        var address = SocketAddress()
        address.inet.sin6_family = sa_family_t(AF_UNIX)
        address.unixPath = path
        address.length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return address
    }

    /// A PostgreSQL-style host: a directory (or empty: the default /var/run/postgresql)
    /// means the unix socket `<dir>/.s.PGSQL.<port>`; nil for a TCP host name.
    public static func postgresSocket(host: String, port: Int) -> SocketAddress? {
        guard host.isEmpty || host.hasPrefix("/") else { return nil }
        return unix(path: "\(host.isEmpty ? "/var/run/postgresql" : host)/.s.PGSQL.\(port)")
    }

    /// Resolves a numeric or named host (blocking getaddrinfo: names only at start-up for
    /// the listeners, or on HostResolver's threads, never on a running event loop).
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
            addresses.append(SocketAddress(raw: entry.pointee.ai_addr, length: entry.pointee.ai_addrlen))
            cursor = entry.pointee.ai_next
        }
        return addresses
    }

    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        if family == AF_UNIX {
            var un = sockaddr_un()
            un.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &un.sun_path) { raw in
                let bytes = Array((unixPath ?? "").utf8.prefix(raw.count - 1))
                for (i, b) in bytes.enumerated() { raw[i] = b }
                raw[bytes.count] = 0
            }
            return try withUnsafeBytes(of: un) { raw in
                try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let size = family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
        return try withUnsafeBytes(of: inet) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(size))
        }
    }

    /// The same address with another port (IPv4/IPv6; unix paths unchanged).
    public func withPort(_ port: Int) -> SocketAddress {
        var copy = self
        let networkPort = UInt16(truncatingIfNeeded: port).bigEndian
        switch family {
        case AF_INET, AF_INET6: copy.inet.sin6_port = networkPort // same offset in sockaddr_in
        default: break
        }
        return copy
    }

    /// The raw address: 4 bytes for IPv4 (also for IPv4-mapped IPv6), 16 for IPv6,
    /// nil for unix sockets.
    public var addressBytes: [UInt8]? {
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: inet) { raw in
                withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { Array($0) }
            }
        case AF_INET6:
            let bytes = withUnsafeBytes(of: inet) { raw in
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
            var sin = withUnsafeBytes(of: inet) { $0.load(as: sockaddr_in.self) }
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET_ADDRSTRLEN)) { buffer in
                inet_ntop(AF_INET, &sin.sin_addr, buffer.baseAddress, socklen_t(buffer.count))
                return String(cString: buffer.baseAddress!)
            }
        case AF_INET6:
            var address = inet.sin6_addr
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buffer in
                inet_ntop(AF_INET6, &address, buffer.baseAddress, socklen_t(buffer.count))
                return String(cString: buffer.baseAddress!)
            }
        default:
            return "unix"
        }
    }

    public var port: Int {
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: inet) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port)) }
        case AF_INET6:
            return withUnsafeBytes(of: inet) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port)) }
        default:
            return 0
        }
    }

    public var description: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendDescription(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `description` ("host:port", "unix:port") as UTF-8: log lines name the
    /// peer once or twice per login, and inet_ntop plus String steps cost thousands of
    /// instructions where formatting four bytes costs a few dozen.
    public func appendDescription(to out: inout [UInt8]) {
        switch family {
        case AF_INET:
            let address = withUnsafeBytes(of: inet) { $0.load(as: sockaddr_in.self).sin_addr }
            withUnsafeBytes(of: address) { octets in // network order: first octet first
                for index in 0..<4 {
                    if index > 0 { out.append(UInt8(ascii: ".")) }
                    Self.appendDecimal(Int(octets[index]), to: &out)
                }
            }
        case AF_INET6:
            out.append(contentsOf: host.utf8)
        default:
            out.append(contentsOf: "unix".utf8)
        }
        out.append(UInt8(ascii: ":"))
        Self.appendDecimal(port, to: &out)
    }

    /// Decimal digits of a non-negative value.
    private static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        guard value >= 10 else {
            out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: max(value, 0)))
            return
        }
        appendDecimal(value / 10, to: &out)
        out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
    }
}
