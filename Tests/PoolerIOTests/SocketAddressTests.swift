import Glibc
import Testing
@testable import PoolerIO

@Suite struct SocketAddressTests {
    @Test func compactEnoughForEveryConnection() {
        #expect(MemoryLayout<SocketAddress>.size <= 48)
    }

    @Test func ipv4RoundTrip() throws {
        let address = try #require(SocketAddress.resolve(host: "127.0.0.1", port: 6432, numericOnly: true).first)
        #expect(address.family == AF_INET)
        #expect(address.host == "127.0.0.1")
        #expect(address.port == 6432)
        #expect(address.addressBytes == [127, 0, 0, 1])
        #expect(address.withPort(5432).port == 5432)
        let raw = address.withSockaddr { pointer, length -> (Int32, Int, UInt16) in
            let sin = UnsafeRawPointer(pointer).load(as: sockaddr_in.self)
            return (Int32(sin.sin_family), Int(length), UInt16(bigEndian: sin.sin_port))
        }
        #expect(raw.0 == AF_INET && raw.1 == MemoryLayout<sockaddr_in>.size && raw.2 == 6432)
    }

    @Test func ipv6RoundTrip() throws {
        let address = try #require(SocketAddress.resolve(host: "::1", port: 7000, numericOnly: true).first)
        #expect(address.family == AF_INET6)
        #expect(address.host == "::1")
        #expect(address.port == 7000)
        #expect(address.withPort(7001).port == 7001)
        #expect(address.addressBytes == Array(repeating: 0, count: 15) + [1])
        let length = address.withSockaddr { _, length in Int(length) }
        #expect(length == MemoryLayout<sockaddr_in6>.size)
    }

    @Test func unixPathIsKeptAndRebuilt() throws {
        let address = try #require(SocketAddress.postgresSocket(host: "/tmp/pg", port: 5433))
        #expect(address.family == AF_UNIX)
        #expect(address.unixPath == "/tmp/pg/.s.PGSQL.5433")
        #expect(address.host == "unix")
        let path = address.withSockaddr { pointer, length -> String in
            #expect(Int(length) == MemoryLayout<sockaddr_un>.size)
            var un = UnsafeRawPointer(pointer).load(as: sockaddr_un.self)
            #expect(Int32(un.sun_family) == AF_UNIX)
            return withUnsafeBytes(of: &un.sun_path) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        }
        #expect(path == "/tmp/pg/.s.PGSQL.5433")
        let tooLong = String(repeating: "x", count: 200)
        #expect(SocketAddress.unix(path: tooLong) == nil)
    }

    @Test func fromAcceptedStorage() {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(4321).bigEndian
            sin.sin_addr.s_addr = UInt32(0x0A00_0001).bigEndian
            withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
        }
        let address = SocketAddress(storage: storage)
        #expect(address.host == "10.0.0.1" && address.port == 4321)
        var unnamed = sockaddr_storage()
        unnamed.ss_family = sa_family_t(AF_UNIX)
        let peer = SocketAddress(storage: unnamed)
        #expect(peer.family == AF_UNIX && peer.unixPath == nil && peer.description == "unix:0")
    }
}
