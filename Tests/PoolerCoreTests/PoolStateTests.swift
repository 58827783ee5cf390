import Testing
@testable import PoolerCore

/// Stand-ins for the runtime's connection objects.
final class TestServer: PoolMember {
    var poolMembership = PoolMembership.none
}
final class TestClient {}

@Suite struct PoolStateTests {
    typealias State = PoolState<TestServer, TestClient>
    let key = PoolKey(database: "db", user: "app")

    static func isQueued(_ assignment: State.Assignment) -> Bool {
        if case .queued = assignment { return true }
        return false
    }

    static func linkedServer(_ assignment: State.Assignment) -> TestServer? {
        if case .linked(let server) = assignment { return server }
        return nil
    }

    @Test func opensServersOnDemandUpToPoolSize() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 2))
        #expect(pool.serversToOpen(now: 0) == 0)
        for _ in 1...5 {
            let assignment = pool.request(client: TestClient(), now: 10)
            #expect(Self.isQueued(assignment))
        }
        #expect(pool.serversToOpen(now: 10) == 2)
        pool.serverLoginStarted(TestServer())
        pool.serverLoginStarted(TestServer())
        #expect(pool.serversToOpen(now: 10) == 0)
    }

    @Test func poolSizeZeroMeansNoLimit() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 0, reservePoolSize: 3))
        for _ in 1...500 { _ = pool.request(client: TestClient(), now: 10) }
        #expect(pool.serversToOpen(now: 10) == 500)
        #expect(pool.serversToOpen(now: 10_000_000, globalRoom: 7) == 7)
        for _ in 1...200 { pool.serverLoginStarted(TestServer()) }
        #expect(pool.serversToOpen(now: 10) == 300)
    }

    /// SUSPEND: a released server parks idle although a client waits; the waiter stays
    /// first in line and gets the server once it is offered again (RESUME).
    @Test func parkedServerServesNobody() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1))
        let (c1, c2) = (TestClient(), TestClient())
        let server = TestServer()
        _ = pool.request(client: c1, now: 1)
        pool.serverLoginStarted(server)
        #expect(pool.serverReady(server) === c1)
        _ = pool.request(client: c2, now: 2)
        #expect(pool.activeCount == 1 && pool.waiting.count == 1)
        pool.park(server)
        #expect(pool.activeCount == 0 && pool.idle.count == 1 && pool.idle[0] === server)
        #expect(pool.waiting.count == 1 && pool.waiting[0].client === c2)
        let removed = pool.removeIdle(server)
        #expect(removed)
        let next = pool.serverReady(server)
        #expect(next === c2)
    }

    @Test func waitingClientsAreServedFIFO() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1))
        let (c1, c2, c3, c4) = (TestClient(), TestClient(), TestClient(), TestClient())
        let server = TestServer()
        _ = pool.request(client: c1, now: 1)
        _ = pool.request(client: c2, now: 2)
        _ = pool.request(client: c3, now: 3)
        pool.serverLoginStarted(server)
        #expect(pool.serverReady(server) === c1)
        #expect(pool.serverReady(server) === c2)
        pool.cancelWait(client: c3)
        #expect(pool.serverReady(server) == nil)
        #expect(pool.idle.count == 1 && pool.idle[0] === server)
        let assignment = pool.request(client: c4, now: 9)
        #expect(Self.linkedServer(assignment) === server)
        #expect(pool.activeCount == 1)
    }

    @Test func idleServerIsNotHandedPastWaitingClients() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1))
        let server = TestServer()
        let (c1, c2) = (TestClient(), TestClient())
        pool.serverLoginStarted(server)
        _ = pool.serverReady(server)
        let first = pool.request(client: c1, now: 0)
        #expect(Self.linkedServer(first) === server)
        let second = pool.request(client: c2, now: 1)
        #expect(Self.isQueued(second))
        #expect(pool.serverReady(server) === c2)
    }

    @Test func reservePoolOpensAfterTimeout() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1, reservePoolSize: 2, reservePoolTimeout: 5_000_000))
        let server = TestServer()
        pool.serverLoginStarted(server)
        _ = pool.serverReady(server)
        for _ in 0..<3 { _ = pool.request(client: TestClient(), now: 0) }
        #expect(pool.serversToOpen(now: 1_000_000) == 0)
        #expect(pool.serversToOpen(now: 5_000_000) == 2)
        #expect(pool.maxWait(now: 7_000_000) == 7_000_000)
    }

    @Test func minPoolSizeAndGlobalRoom() {
        let pool = State(key: key, limits: PoolLimits(poolSize: 10, minPoolSize: 3))
        #expect(pool.serversToOpen(now: 0) == 3)
        #expect(pool.serversToOpen(now: 0, globalRoom: 1) == 1)
        #expect(pool.serversToOpen(now: 0, globalRoom: 0) == 0)
    }

    @Test func queryWaitTimeoutListsOnlyOldWaiters() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1))
        let (old, young) = (TestClient(), TestClient())
        _ = pool.request(client: old, now: 0)
        _ = pool.request(client: young, now: 4_000_000)
        let late = pool.clientsWaiting(longerThan: 5_000_000, now: 6_000_000)
        #expect(late.count == 1 && late[0] === old)
        #expect(pool.clientsWaiting(longerThan: 0, now: 6_000_000).isEmpty)
    }

    @Test func closedServersLeaveEveryList() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 3))
        let servers = [TestServer(), TestServer(), TestServer()]
        for server in servers { pool.serverLoginStarted(server) }
        _ = pool.serverReady(servers[1])
        _ = pool.request(client: TestClient(), now: 0)
        for server in servers { pool.serverClosed(server) }
        #expect(pool.serverCount == 0)
    }

    /// A released server that runs a check query (server_check_delay = 0) leaves the
    /// active count for the check and is counted once throughout; membership follows it.
    @Test func checkedServerIsCountedOnce() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 2))
        let server = TestServer()
        pool.serverLoginStarted(server)
        #expect(server.poolMembership == .loggingIn)
        let parked = pool.serverReady(server)
        #expect(parked == nil && server.poolMembership == .idle)
        let assignment = pool.request(client: TestClient(), now: 0)
        #expect(Self.linkedServer(assignment) === server)
        #expect(server.poolMembership == .active && pool.activeCount == 1)
        let removed = pool.removeIdle(server)
        #expect(!removed)
        pool.serverLoginStarted(server)
        #expect(pool.serverCount == 1 && pool.activeCount == 0 && pool.loggingIn.count == 1)
        let checked = pool.serverReady(server)
        #expect(checked == nil)
        #expect(pool.serverCount == 1 && pool.idle.count == 1)
        pool.serverClosed(server)
        pool.serverClosed(server)
        #expect(pool.serverCount == 0 && server.poolMembership == PoolMembership.none)
    }

    @Test func pausedPoolQueuesEvenWithIdleServers() {
        var pool = State(key: key, limits: PoolLimits(poolSize: 1))
        let server = TestServer()
        pool.serverLoginStarted(server)
        _ = pool.serverReady(server)
        let client = TestClient()
        pool.enqueue(client: client, now: 0)
        #expect(pool.isWaiting(client: client))
        #expect(pool.idle.count == 1)
    }

    @Test func roundRobinHandsOutTheLeastRecentlyUsedServer() {
        for roundRobin in [false, true] {
            var pool = State(key: key, limits: PoolLimits(poolSize: 2, roundRobin: roundRobin))
            let (first, second) = (TestServer(), TestServer())
            for server in [first, second] {
                pool.serverLoginStarted(server)
                _ = pool.serverReady(server)
            }
            let assignment = pool.request(client: TestClient(), now: 0)
            #expect(Self.linkedServer(assignment) === (roundRobin ? first : second))
        }
    }
}

/// workers > 1: pool_size and min_pool_size apply to the pool's servers on every loop.
@Suite struct PoolStateSharedLimitTests {
    typealias State = PoolState<TestServer, TestClient>

    @Test func serversOfOtherLoopsCountAgainstPoolSize() {
        var pool = State(key: PoolKey(database: "db", user: "app"), limits: PoolLimits(poolSize: 3, minPoolSize: 2))
        for _ in 1...5 { _ = pool.request(client: TestClient(), now: 10) }
        #expect(pool.serversToOpen(now: 10) == 3)
        #expect(pool.serversToOpen(now: 10, totalServers: 2) == 1)
        #expect(pool.serversToOpen(now: 10, totalServers: 3) == 0)
    }

    @Test func minPoolSizeCountsEveryLoop() {
        let pool = State(key: PoolKey(database: "db", user: "app"), limits: PoolLimits(poolSize: 5, minPoolSize: 2))
        #expect(pool.serversToOpen(now: 0) == 2)
        #expect(pool.serversToOpen(now: 0, totalServers: 2) == 0)
    }

    @Test func effectiveLimitAddsTheReserveAfterTheTimeout() {
        var pool = State(key: PoolKey(database: "db", user: "app"),
                         limits: PoolLimits(poolSize: 2, reservePoolSize: 1, reservePoolTimeout: 100))
        #expect(pool.effectiveLimit(now: 0) == 2)
        _ = pool.request(client: TestClient(), now: 0)
        #expect(pool.effectiveLimit(now: 50) == 2)
        #expect(pool.effectiveLimit(now: 100) == 3)
        let unlimited = State(key: PoolKey(database: "db", user: "app"), limits: PoolLimits(poolSize: 0))
        #expect(unlimited.effectiveLimit(now: 0) == 0)
    }
}
