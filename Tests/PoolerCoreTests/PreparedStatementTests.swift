import Testing
@testable import PoolerCore

@Suite struct PreparedStatementTests {
    @Test func registrySharesIdenticalStatementsAndForgetsUnused() {
        var registry = PreparedStatementRegistry()
        let a = registry.retain(body: Array("select 1\0\0\0".utf8))
        let b = registry.retain(body: Array("select 1\0\0\0".utf8))
        let c = registry.retain(body: Array("select 2\0\0\0".utf8))
        #expect(a == b)
        #expect(a != c)
        #expect(registry.statement(a)?.serverName == "PGBOUNCER_\(a)")
        registry.release(a)
        #expect(registry.statement(a) != nil)
        registry.release(a)
        #expect(registry.statement(a) == nil)
        // A new statement never reuses an id a server may still hold.
        let d = registry.retain(body: Array("select 1\0\0\0".utf8))
        #expect(d != a)
    }

    @Test func serverCacheEvictsLeastRecentlyUsed() {
        var cache = ServerStatementCache(capacity: 2)
        #expect(cache.insert(1) == nil)
        #expect(cache.insert(2) == nil)
        cache.touch(1)
        #expect(cache.insert(3) == 2)
        #expect(cache.contains(1) && cache.contains(3) && !cache.contains(2))
        #expect(cache.insert(3) == nil)
        #expect(cache.count == 2)
    }

    @Test func clientNamesRebind() {
        var statements = ClientStatements()
        #expect(statements.set("s1", to: 1) == nil)
        #expect(statements.set("s1", to: 2) == 1)
        #expect(statements["s1"] == 2)
        #expect(statements.remove("s1") == 2)
        #expect(statements.count == 0)
    }

    @Test func serverNameBytesMatchTheString() {
        for id in [0, 1, 9, 10, 4711, Int.max, -3] {
            let bytes = withUnsafeTemporaryAllocation(byteCount: PreparedStatement.serverNameCapacity, alignment: 1) { buffer in
                Array(buffer[..<PreparedStatement.writeServerName(id, into: buffer)])
            }
            #expect(bytes == Array(PreparedStatement.serverName(id).utf8) + [0])
        }
    }

    @Test func lookupByBytesFollowsEveryChange() {
        var statements = ClientStatements()
        func id(_ name: String) -> Int? {
            Array(name.utf8).withUnsafeBytes { statements.id(named: $0) }
        }
        #expect(id("P_0") == nil)
        _ = statements.set("P_0", to: 7)
        #expect(id("P_0") == 7)
        #expect(id("P_0") == 7) // the remembered name
        #expect(id("P_1") == nil)
        _ = statements.set("P_0", to: 8)
        #expect(id("P_0") == 8)
        _ = statements.remove("P_0")
        #expect(id("P_0") == nil)
        _ = statements.set("P_0", to: 9)
        #expect(id("P_0") == 9)
        _ = statements.removeAll()
        #expect(id("P_0") == nil)
    }

    @Test func touchIfPresentRefreshesOnlyKnownStatements() {
        var cache = ServerStatementCache(capacity: 2)
        _ = cache.insert(1)
        _ = cache.insert(2)
        let known = cache.touchIfPresent(1)
        let unknown = cache.touchIfPresent(5)
        #expect(known && !unknown)
        #expect(!cache.contains(5))
        let evicted = cache.insert(3)
        #expect(evicted == 2) // 1 was used after 2
    }
}
