import Testing
@testable import PoolerCore

@Suite struct PoolStateTests {
    let key = PoolKey(database: "db", user: "app")

    @Test func opensServersOnDemandUpToPoolSize() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 2))
        #expect(pool.serversToOpen(now: 0) == 0)
        for client in 1...5 { #expect(pool.request(client: client, now: 10) == .queued) }
        #expect(pool.serversToOpen(now: 10) == 2)
        pool.serverLoginStarted(100)
        pool.serverLoginStarted(101)
        #expect(pool.serversToOpen(now: 10) == 0)
    }

    @Test func waitingClientsAreServedFIFO() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 1))
        _ = pool.request(client: 1, now: 1)
        _ = pool.request(client: 2, now: 2)
        _ = pool.request(client: 3, now: 3)
        pool.serverLoginStarted(100)
        let r1 = pool.serverReady(100)
        #expect(r1 == 1)
        let r2 = pool.serverReady(100)
        #expect(r2 == 2)
        pool.cancelWait(client: 3)
        let r3 = pool.serverReady(100)
        #expect(r3 == nil)
        #expect(pool.idle == [100])
        let r4 = pool.request(client: 4, now: 9)
        #expect(r4 == .linked(server: 100))
        #expect(pool.active == [100])
    }

    @Test func idleServerIsNotHandedPastWaitingClients() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 1))
        pool.serverLoginStarted(100)
        _ = pool.serverReady(100)
        let r5 = pool.request(client: 1, now: 0)
        #expect(r5 == .linked(server: 100))
        let r6 = pool.request(client: 2, now: 1)
        #expect(r6 == .queued)
        let r7 = pool.serverReady(100)
        #expect(r7 == 2)
    }

    @Test func reservePoolOpensAfterTimeout() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 1, reservePoolSize: 2, reservePoolTimeout: 5_000_000))
        pool.serverLoginStarted(100)
        _ = pool.serverReady(100)
        _ = pool.request(client: 1, now: 0)
        _ = pool.request(client: 2, now: 0)
        _ = pool.request(client: 3, now: 0)
        #expect(pool.serversToOpen(now: 1_000_000) == 0)
        #expect(pool.serversToOpen(now: 5_000_000) == 2)
        #expect(pool.maxWait(now: 7_000_000) == 7_000_000)
    }

    @Test func minPoolSizeAndGlobalRoom() {
        let pool = PoolState(key: key, limits: PoolLimits(poolSize: 10, minPoolSize: 3))
        #expect(pool.serversToOpen(now: 0) == 3)
        #expect(pool.serversToOpen(now: 0, globalRoom: 1) == 1)
        #expect(pool.serversToOpen(now: 0, globalRoom: 0) == 0)
    }

    @Test func queryWaitTimeoutListsOnlyOldWaiters() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 1))
        _ = pool.request(client: 1, now: 0)
        _ = pool.request(client: 2, now: 4_000_000)
        #expect(pool.clientsWaiting(longerThan: 5_000_000, now: 6_000_000) == [1])
        #expect(pool.clientsWaiting(longerThan: 0, now: 6_000_000) == [])
    }

    @Test func closedServersLeaveEveryList() {
        var pool = PoolState(key: key, limits: PoolLimits(poolSize: 3))
        pool.serverLoginStarted(1); pool.serverLoginStarted(2); pool.serverLoginStarted(3)
        _ = pool.serverReady(2)
        _ = pool.request(client: 9, now: 0)
        pool.serverClosed(1); pool.serverClosed(2); pool.serverClosed(3)
        #expect(pool.serverCount == 0)
    }
}
