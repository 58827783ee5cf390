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
}
