import Glibc
import Testing
@testable import PoolerIO

@Suite struct TCPOptionsTests {
    typealias Option = (level: Int32, name: Int32, value: Int32)

    private static func names(_ options: [Option]) -> [Int32] { options.map(\.name) }

    @Test func defaultsAreNoDelayAndKeepalive() {
        let options = ListenSocket.TCPOptions().socketOptions
        #expect(Self.names(options) == [TCP_NODELAY, SO_KEEPALIVE])
    }

    @Test func everyTCPKeyBecomesItsOption() {
        let options = ListenSocket.TCPOptions(keepalive: true, keepcnt: 4, keepidle: 7, keepintvl: 3,
                                              userTimeout: 9000, socketBuffer: 65536).socketOptions
        #expect(Self.names(options) == [TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL,
                                        TCP_USER_TIMEOUT, SO_SNDBUF, SO_RCVBUF])
        #expect(options.map(\.value) == [1, 1, 4, 7, 3, 9000, 65536, 65536])
    }

    @Test func keepaliveOffDropsTheKeepaliveTimers() {
        let options = ListenSocket.TCPOptions(keepalive: false, keepcnt: 4, keepidle: 7, keepintvl: 3).socketOptions
        #expect(Self.names(options) == [TCP_NODELAY])
    }

    /// The options really apply to a socket (read back with getsockopt).
    @Test func appliedToASocket() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        ListenSocket.configureDataSocket(fd, isTCP: true, options: ListenSocket.TCPOptions(keepidle: 7, userTimeout: 9000))
        func read(_ level: Int32, _ name: Int32) -> Int32 {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, level, name, &value, &length)
            return value
        }
        #expect(read(SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(read(Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 7)
        #expect(read(Int32(IPPROTO_TCP), TCP_USER_TIMEOUT) == 9000)
        #expect(read(Int32(IPPROTO_TCP), TCP_NODELAY) == 1)
    }
}
