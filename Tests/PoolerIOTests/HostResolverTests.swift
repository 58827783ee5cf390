import Glibc
import Testing
@testable import PoolerIO

@Suite struct HostResolverTests {
    /// Waits (bounded) for the resolver's wake-up on the eventfd, then drains it.
    static func waitForWake(_ fd: Int32, seconds: Int32 = 10) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, seconds * 1000) == 1 else { return false }
        var counter: UInt64 = 0
        _ = read(fd, &counter, 8)
        return true
    }

    @Test func numericAddressesAnswerAtOnce() throws {
        let fd = try Syscall.eventFD()
        defer { close(fd) }
        let resolver = HostResolver(wakeFD: fd, ttl: 15_000_000, negativeTTL: 15_000_000)
        guard case .addresses(let addresses) = resolver.lookup(host: "127.0.0.1", port: 5432, now: 0) else {
            Issue.record("numeric host should not wait"); return
        }
        #expect(addresses.first?.port == 5432)
    }

    @Test func namesResolveInTheBackgroundAndAreCached() throws {
        let fd = try Syscall.eventFD()
        defer { close(fd) }
        let resolver = HostResolver(wakeFD: fd, ttl: 15_000_000, negativeTTL: 15_000_000)
        guard case .pending = resolver.lookup(host: "localhost", port: 6432, now: 0) else {
            Issue.record("a name should resolve in the background"); return
        }
        #expect(Self.waitForWake(fd))
        #expect(resolver.takeFinished(now: 1) == ["localhost"])
        guard case .addresses(let addresses) = resolver.lookup(host: "localhost", port: 6432, now: 2) else {
            Issue.record("cached answer expected"); return
        }
        #expect(!addresses.isEmpty && addresses.allSatisfy { $0.port == 6432 })
        // After the TTL the name is looked up again.
        guard case .pending = resolver.lookup(host: "localhost", port: 6432, now: 20_000_000) else {
            Issue.record("expired entry should be refreshed"); return
        }
        #expect(Self.waitForWake(fd))
        _ = resolver.takeFinished(now: 20_000_001)
    }

    /// TTL 0 (dns_max_ttl = 0: no caching): the answer serves the pass it arrived in,
    /// and the next pass resolves again.
    @Test func zeroTTLAnswerServesItsArrivalOnly() throws {
        let fd = try Syscall.eventFD()
        defer { close(fd) }
        let resolver = HostResolver(wakeFD: fd, ttl: 0, negativeTTL: 0)
        _ = resolver.lookup(host: "localhost", port: 6432, now: 0)
        #expect(Self.waitForWake(fd))
        #expect(resolver.takeFinished(now: 5) == ["localhost"])
        guard case .addresses = resolver.lookup(host: "localhost", port: 6432, now: 5) else {
            Issue.record("the answer should serve the pass it arrived in"); return
        }
        guard case .pending = resolver.lookup(host: "localhost", port: 6432, now: 6) else {
            Issue.record("a later pass should resolve again"); return
        }
        #expect(Self.waitForWake(fd))
        _ = resolver.takeFinished(now: 7)
    }

    @Test func unknownNamesAreCachedAsUnknown() throws {
        let fd = try Syscall.eventFD()
        defer { close(fd) }
        let resolver = HostResolver(wakeFD: fd, ttl: 15_000_000, negativeTTL: 15_000_000)
        _ = resolver.lookup(host: "no-such-host.invalid", port: 1, now: 0)
        #expect(Self.waitForWake(fd))
        _ = resolver.takeFinished(now: 1)
        guard case .unknown = resolver.lookup(host: "no-such-host.invalid", port: 1, now: 2) else {
            Issue.record("expected a cached failure"); return
        }
    }
}
