import PoolerCore
import PoolerIO

/// workers > 1: servers move between loops so that a pool's limit is shared, not split.
/// A released server goes to another loop when nobody waits for it here and a client
/// there has waited a little (idleHandOverDelay), or when a client there has waited
/// clearly longer than any here (so no loop starves behind a busy one); a loop whose
/// clients wait while the pool is full asks a loop with idle servers for one. The server object is rebuilt on the new loop around
/// the same socket, TLS session and session state.
extension PoolRuntime {
    /// How much longer a client on another loop must have waited than this loop's
    /// oldest for a released server to cross over: moving costs a few syscalls, so under
    /// even load servers stay, and a loop that falls behind catches up.
    static let crossLoopWaitSlack: UInt64 = 5_000
    /// At most one server crosses over per pool and loop in this time while clients wait
    /// here too. With many more clients than servers the oldest waits of two loops
    /// differ by more than the slack by chance, again and again, and servers went back
    /// and forth: pgbench -S, 200 clients on 20 servers, one release in ten crossed over
    /// (0.2 eventfd writes per transaction); with this limit one in a thousand, 2-3% more
    /// tps. A loop without servers still gets one every 5 ms.
    static let crossLoopInterval: UInt64 = 5_000
    /// How long a client on another loop must have waited for a server released here,
    /// with nobody waiting here, to take it rather than let it park idle here. Measured
    /// with pgbench -S, 50 and 200 clients on 20 servers, 2 loops: 19% of releases crossed
    /// over at 0, 11% at 1 ms, 4% at 5 ms, at the same tps.
    static let idleHandOverDelay: UInt64 = 2_000

    /// A server parked idle here while a client waits on loop `target` (too briefly to
    /// take it over, see shouldHandOver): that loop is told to ask for it, at most once
    /// per idleHandOverDelay, so its client does not wait for its janitor tick.
    func nudgeWaitingLoop(_ target: Int) {
        let now = pooler.loop.now
        guard now &- lastNudge >= Self.idleHandOverDelay else { return }
        lastNudge = now
        let key = self.key
        pooler.workers.post(to: target) { $0.pools[key]?.launchServers() }
    }

    /// Publishes this loop's idle count and oldest wait for the other loops.
    @inline(__always)
    func publish() {
        guard let boardView else { return }
        boardView.publish(loop: pooler.workerIndex, idle: state.idle.count, oldestWait: state.oldestWaitSince)
    }

    /// For a server just released clean while a client on another loop has queued since
    /// `waitingSince` (the longest waiting one, read from the board once per release):
    /// whether the server should go there instead of serving here.
    @inline(__always)
    func shouldHandOver(_ server: ServerConnection, waitingSince since: UInt64) -> Bool {
        // Compared with this loop's oldest waiter, or with now when nobody waits here:
        // a client elsewhere that has just queued is usually served by its own loop's
        // next release (moving costs a few syscalls), one that has waited a while is not.
        let local = state.oldestWaitSince
        let now = pooler.loop.now
        if local == 0 {
            if since &+ Self.idleHandOverDelay > now { return false }
        } else {
            if since &+ Self.crossLoopWaitSlack > local || now &- lastCrossOver < Self.crossLoopInterval { return false }
        }
        guard server.replication == .none && !server.closeWhenReleased && server.cancelsInFlight == 0
            && server.canMoveToOtherLoop else { return false }
        if local != 0 { lastCrossOver = now }
        return true
    }

    /// Moves an idle or just-released server (not linked, nothing in flight) to loop
    /// `target`: it leaves this pool now, and this loop's epoll set once the event being
    /// handled is over (the caller may be inside this server's own handler: a login,
    /// reset or check that just finished), then is adopted there.
    func handOver(_ server: ServerConnection, to target: Int) {
        pooler.workers.serverLeftLoop()
        state.serverClosed(server)
        servers[server.id] = nil
        server.becameIdle()
        publish()
        let key = self.key
        if !pooler.workers.post(to: pooler.workerIndex, { $0.completeHandOver(server, key: key, to: target) }) {
            pooler.completeHandOver(server, key: key, to: target) // this loop is stopping: it closes
        }
    }

    /// A replication client here needs a server of its own and the pool is full: a loop
    /// with an idle server of this pool closes it and tells this loop to try again (one
    /// request at a time; the janitor allows the next).
    func evictIdleServerElsewhere() {
        guard let board, let source = board.loopWithIdle(except: pooler.workerIndex) else { return }
        let key = self.key
        requestEviction(on: source) { other in
            guard let pool = other.pools[key], let idle = pool.state.idle.first, pool.state.removeIdle(idle) else { return 0 }
            idle.terminate(reason: "evicted")
            return 1
        }
    }

    /// Asks loop `target` to close idle servers (`evict` runs there and says how many it
    /// closed); this pool tries to open its servers again when they are gone. One
    /// request at a time: the next waits for the answer, or for the janitor's tick.
    func requestEviction(on target: Int, _ evict: @escaping (Pooler) -> Int) {
        guard !evictionPending else { return }
        let key = self.key, requester = pooler.workerIndex
        evictionPending = pooler.workers.post(to: target) { other in
            let closed = evict(other)
            other.workers.post(to: requester) { pooler in
                guard let pool = pooler.pools[key] else { return }
                pool.evictionPending = false
                if closed > 0 { pool.launchServers() }
            }
        }
    }

    /// Clients here wait and the pool is full: ask a loop with idle servers for one
    /// (one request at a time; the janitor asks again if the answer was "none").
    func requestServerFromOtherLoop() {
        guard let board, !pullPending, !isPaused, uncoveredDemand > 0,
              let source = board.loopWithIdle(except: pooler.workerIndex) else { return }
        let key = self.key, requester = pooler.workerIndex
        pullPending = pooler.workers.post(to: source) { $0.giveIdleServer(key: key, to: requester) }
    }
}

extension Pooler {
    /// Another loop asked for an idle server of `key`: hand one over unless this loop's
    /// own clients need it; else say there is none.
    func giveIdleServer(key: PoolKey, to requester: Int) {
        if let pool = pools[key], pool.state.waiting.isEmpty, let server = pool.state.idle.last,
           server.cancelsInFlight == 0, server.canMoveToOtherLoop {
            pool.handOver(server, to: requester)
            return
        }
        workers.post(to: requester) { $0.pools[key]?.pullPending = false }
    }

    /// Second half of PoolRuntime.handOver, from this loop's inbox (no handler of the
    /// server is running): the socket leaves this loop and the object goes to `target`,
    /// which touches it only after this.
    func completeHandOver(_ server: ServerConnection, key: PoolKey, to target: Int) {
        guard !server.closed else { return arrivedNowhere() } // closed meanwhile (its close did the accounting)
        guard !exiting, server.state == .idle, server.client == nil, server.canMoveToOtherLoop else {
            // In no pool list any more and not movable now: it closes.
            server.terminate(reason: "could not move to another event loop")
            return arrivedNowhere()
        }
        server.unregisterForHandOver()
        if !workers.post(to: target, { $0.adoptServer(server, key: key) }) {
            server.terminate(reason: "shutting down") // the target loop has stopped
            arrivedNowhere()
        }
    }

    /// A server handed over closed on its way.
    private func arrivedNowhere() {
        workers.serverArrived()
        adminRepliesMayBeDue()
    }

    /// A server handed over by another loop joins this loop's pool as if it had just
    /// logged in: the first waiting client gets it, else it is idle here.
    func adoptServer(_ old: ServerConnection, key: PoolKey) {
        guard let pool = pools[key], !exiting else {
            // The pool is gone here (freed automatic database) or this loop is stopping.
            old.releaseSocketAndBuffers()
            workers.serverClosed(key)
            return arrivedNowhere()
        }
        pool.pullPending = false
        let server = ServerConnection(adopting: old, pool: pool)
        if server.generation < workers.generation(database: key.database) {
            // RECONNECT or a changed entry while it was on its way: retired when released.
            server.closeWhenReleased = true
        }
        pool.servers[server.id] = server
        workers.serverArrived()
        adminRepliesMayBeDue()
        pool.state.serverLoginStarted(server)
        do {
            try server.register()
        } catch {
            server.close(reason: "could not register handed-over server: \(error)")
            return
        }
        pool.serverLoggedIn(server)
        // More clients may wait than this one server serves.
        pool.requestServerFromOtherLoop()
    }
}
