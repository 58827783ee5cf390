import CLinuxShims
import Glibc
import PoolerCore
import PoolerIO

/// The event loops of one pooler process (`workers`): each loop owns its clients and
/// servers and runs on its own thread. What they share is here, behind one lock that is
/// never held across a syscall: the counts that make pool limits global (servers per
/// pool, database and user; clients), a message inbox per loop (work another loop hands
/// over: a server, a cancel, a request for an idle server), and "stop the world" for the
/// rare operations that read or change every loop at once (admin console, signals,
/// reload), which run while the other loops wait at a safe point.
final class Workers: @unchecked Sendable {
    let count: Int
    /// Filled before any loop thread starts, read-only afterwards.
    private(set) var loops: [Pooler] = []
    private let lock = Lock()

    init(count: Int) {
        self.count = max(count, 1)
        inboxes = Array(repeating: [], count: self.count)
        parkRequested = Array(repeating: false, count: self.count)
        exited = Array(repeating: false, count: self.count)
    }

    func add(_ pooler: Pooler) { loops.append(pooler) }

    // MARK: threads

    private var threads: [UInt] = []
    /// Loops whose `run` has returned: they take no more work and never park.
    private var exited: [Bool]
    private var exitedCount = 0

    /// worker_cpu_affinity: the CPU each loop pins itself to (loop i: cpus[i % count]);
    /// empty: the kernel places the loops.
    var pinnedCPUs: [Int32] = []

    /// Called by each loop on its own thread before it runs: pins it when configured.
    func pinCurrentThread(loop index: Int, log: Logger) {
        guard !pinnedCPUs.isEmpty else { return }
        let cpu = pinnedCPUs[index % pinnedCPUs.count]
        let result = pooler_pin_thread(cpu)
        if result == 0 {
            log.info("event loop \(index) pinned to CPU \(cpu)")
        } else {
            log.warning("event loop \(index) could not be pinned to CPU \(cpu): \(SystemError("pthread_setaffinity_np", errno: result))")
        }
    }

    /// Runs loops 1..<count on threads of their own (loop 0 runs on the caller's).
    func startThreads() throws {
        for pooler in loops.dropFirst() {
            let context = Unmanaged.passRetained(pooler).toOpaque()
            var thread: UInt = 0
            let result = pooler_thread_start({ context in
                let pooler = Unmanaged<Pooler>.fromOpaque(context!).takeRetainedValue()
                pooler.runWorker()
                pooler_buffer_drain() // this thread's free list would be lost with it
                return nil
            }, context, &thread)
            guard result == 0 else { throw StartupError("could not start event loop thread: \(SystemError("pthread_create", errno: result))") }
            threads.append(thread)
        }
    }

    /// After loop 0 has stopped (last, see Pooler.stopForShutdown): the threads end.
    func joinOthers() {
        for thread in threads { _ = pooler_thread_join(thread) }
    }

    /// Loop `index` has stopped: no more work is posted to it. Returns what was posted
    /// and not run yet (servers and clients on their way to it, cancel lookups), for the
    /// loop to settle.
    func markExited(_ index: Int) -> [(Pooler) -> Void] {
        lock.withLock {
            exited[index] = true
            exitedCount += 1
            let pending = inboxes[index]
            inboxes[index] = []
            lock.broadcast()
            return pending
        }
    }

    /// Every loop but 0 has stopped.
    var othersExited: Bool { lock.withLock { exitedCount == count - 1 } }

    /// Loops still running, the caller's included.
    var runningLoops: [Pooler] {
        lock.withLock { loops.filter { !exited[$0.workerIndex] } }
    }

    // MARK: messages

    private var inboxes: [[(Pooler) -> Void]]

    /// Runs `work` on loop `index`'s thread, soon; false if that loop has stopped.
    @discardableResult
    func post(to index: Int, _ work: @escaping (Pooler) -> Void) -> Bool {
        let posted: Bool = lock.withLock {
            guard !exited[index] else { return false }
            inboxes[index].append(work)
            return true
        }
        if posted { wake(index) }
        return posted
    }

    private func wake(_ index: Int) {
        var one: UInt64 = 1
        _ = Glibc.write(loops[index].loop.wakeDescriptor, &one, 8)
    }

    /// Called by each loop when its eventfd fires: parks if the world is being stopped,
    /// then runs the work other loops posted to it.
    func serviceInbox(of pooler: Pooler) {
        guard count > 1 else { return }
        let index = pooler.workerIndex
        let work: [(Pooler) -> Void] = lock.withLock {
            if parkRequested[index] { parkLocked(index) }
            let pending = inboxes[index]
            inboxes[index] = []
            return pending
        }
        for item in work { item(pooler) }
    }

    // MARK: stop the world

    private var worldOwner = -1
    private var worldOwnerThread = pthread_t()
    private var worldGeneration = 0
    private var parkRequested: [Bool]
    private var parkedCount = 0

    /// Runs `body` on the calling loop's thread while every other loop waits between two
    /// events; `body` may then read and change any loop's state. With one loop, just runs it.
    func stopTheWorld<T>(from index: Int, _ body: () throws -> T) rethrows -> T {
        // One loop, or called again from inside a stopped world (a command's effect on
        // another loop that wants the world too): just run.
        guard count > 1, !lock.withLock({ worldOwner != -1 && pthread_equal(worldOwnerThread, pthread_self()) != 0 }) else {
            return try body()
        }
        lock.withLock {
            // Another loop holds the world: wait, parking for it when it asks.
            while worldOwner != -1 {
                if parkRequested[index] { parkLocked(index) } else { lock.wait() }
            }
            worldOwner = index
            worldOwnerThread = pthread_self()
            parkedCount = 0
            for other in 0..<count where other != index { parkRequested[other] = true }
        }
        for other in 0..<count where other != index { wake(other) }
        lock.withLock {
            // A loop that has stopped for good counts as parked (it never touches its state again).
            while parkedCount + exitedCount < count - 1 { lock.wait() }
        }
        defer {
            lock.withLock {
                worldOwner = -1
                for other in 0..<count { parkRequested[other] = false }
                worldGeneration &+= 1
                lock.broadcast()
            }
        }
        return try body()
    }

    /// With the lock held: report parked and wait until the owner releases the world.
    private func parkLocked(_ index: Int) {
        parkRequested[index] = false
        parkedCount += 1
        lock.broadcast()
        let generation = worldGeneration
        while worldGeneration == generation { lock.wait() }
    }

    // MARK: global limits

    private var serverCounts: [PoolKey: Int] = [:]

    /// Servers of `key` on all loops (logging in, idle or active).
    func serverCount(_ key: PoolKey) -> Int { lock.withLock { serverCounts[key] ?? 0 } }

    func serverCount(database: String) -> Int { lock.withLock { serversLocked { $0.database == database } } }

    func serverCount(user: String) -> Int { lock.withLock { serversLocked { $0.user == user } } }

    /// Servers of the pools `matches` picks; with the lock held.
    private func serversLocked(_ matches: (PoolKey) -> Bool) -> Int {
        serverCounts.reduce(0) { $0 + (matches($1.key) ? $1.value : 0) }
    }

    /// Counts one more server of `key` if pool (`poolLimit`, 0 = none), database and user
    /// limits all allow it; false if any is reached. Check and count are one step, so
    /// loops opening servers at once never exceed a limit together.
    func reserveServer(_ key: PoolKey, poolLimit: Int, databaseLimit: Int, userLimit: Int) -> Bool {
        lock.withLock {
            let own = serverCounts[key] ?? 0
            if poolLimit > 0 && own >= poolLimit { return false }
            if databaseLimit > 0 && serversLocked({ $0.database == key.database }) >= databaseLimit { return false }
            if userLimit > 0 && serversLocked({ $0.user == key.user }) >= userLimit { return false }
            serverCounts[key] = own + 1
            return true
        }
    }

    func serverClosed(_ key: PoolKey) {
        lock.withLock {
            let left = (serverCounts[key] ?? 1) - 1
            serverCounts[key] = left > 0 ? left : nil
        }
    }

    private var clientTotal = 0
    private var clientsByDatabase: [String: Int] = [:]
    private var clientsByUser: [String: Int] = [:]

    /// Non-admin clients connected to any loop (max_client_conn).
    var clientCount: Int { lock.withLock { clientTotal } }

    func clientCountChanged(by delta: Int) { lock.withLock { clientTotal += delta } }

    // MARK: auth_query cache

    /// auth_query results by database and user, shared by the loops so each secret is
    /// looked up once per TTL, whichever loop the logins land on. Expiry in loop time
    /// (CLOCK_MONOTONIC microseconds, the same on every loop).
    private var authSecrets: [String: (secret: String?, expires: UInt64)] = [:]

    /// A fresh cached secret: .some(nil) caches "no such user".
    func cachedAuthSecret(key: String, now: UInt64) -> String?? {
        lock.withLock {
            guard let entry = authSecrets[key], now < entry.expires else { return nil }
            return .some(entry.secret)
        }
    }

    func cacheAuthSecret(key: String, secret: String?, expires: UInt64) {
        lock.withLock { authSecrets[key] = (secret, expires) }
    }

    /// Drops expired entries (loop 0's janitor).
    func pruneAuthSecrets(now: UInt64) {
        lock.withLock {
            if !authSecrets.isEmpty { authSecrets = authSecrets.filter { now < $0.value.expires } }
        }
    }

    /// Clients each loop holds (admin ones too), for placing new ones.
    private var clientsPerLoop: [Int] = []

    /// Counts a client just accepted by loop `index` and says which loop it should live
    /// on: the one with the fewest clients, or `index` when it has about as few.
    /// Whichever loop accepts (an idle loop takes every connection when they come one at
    /// a time), clients end up spread evenly, so steady traffic from long-lived clients
    /// uses every core.
    func placeNewClient(acceptedOn index: Int) -> Int {
        lock.withLock {
            if clientsPerLoop.count != count { clientsPerLoop = Array(repeating: 0, count: count) }
            var best = index
            for loop in 0..<count where !exited[loop] && clientsPerLoop[loop] < clientsPerLoop[best] { best = loop }
            // The accepting loop keeps the client unless another has clearly fewer (by
            // more than one, or an eighth): a hop costs a wakeup and a registration on the
            // other loop, which a storm of short connections would pay at every login.
            if best != index && !exited[index]
                && clientsPerLoop[index] - clientsPerLoop[best] <= max(1, clientsPerLoop[index] / 8) {
                best = index
            }
            clientsPerLoop[best] += 1
            clientTotal += 1
            return best
        }
    }

    /// A client counted by `placeNewClient` went away (or never started) on `loop`.
    func clientLeft(loop: Int, countedInTotal: Bool) {
        lock.withLock {
            if loop < clientsPerLoop.count { clientsPerLoop[loop] -= 1 }
            if countedInTotal { clientTotal -= 1 }
        }
    }

    /// A client placed on `from` stays on `to` instead (`from` has stopped).
    func moveClient(from: Int, to: Int) {
        lock.withLock {
            clientsPerLoop[from] -= 1
            clientsPerLoop[to] += 1
        }
    }

    /// Counts a client for its database and user unless that passes a limit (0 = none);
    /// returns which limit would be passed.
    enum ClientLimit { case database, user }
    func reserveClient(database: String, user: String, databaseLimit: Int, userLimit: Int) -> ClientLimit? {
        lock.withLock {
            if databaseLimit > 0 && (clientsByDatabase[database] ?? 0) >= databaseLimit { return .database }
            if userLimit > 0 && (clientsByUser[user] ?? 0) >= userLimit { return .user }
            clientsByDatabase[database, default: 0] += 1
            clientsByUser[user, default: 0] += 1
            return nil
        }
    }

    func releaseClient(database: String, user: String) {
        lock.withLock {
            clientsByDatabase[database, default: 1] -= 1
            clientsByUser[user, default: 1] -= 1
            if clientsByDatabase[database] == 0 { clientsByDatabase[database] = nil }
            if clientsByUser[user] == 0 { clientsByUser[user] = nil }
        }
    }

    let statementRegistry = SharedStatementRegistry()

    private var boards: [PoolKey: PoolBoard] = [:]
    private var welcomes: [PoolKey: [(String, String)]] = [:]

    /// Loops with admin replies waiting for a state (PAUSE, WAIT_CLOSE, SUSPEND), one
    /// bit each; written under the lock, read without it when a server closes.
    private let adminWaitingLoops = Workers.atomicWord()

    /// Servers handed over by one loop and not yet adopted by another: in no pool's
    /// list, so WAIT_CLOSE, which looks at the lists, waits until they have arrived.
    private let inTransit = Workers.atomicWord()

    /// A zeroed word for pooler_atomic_* (lives as long as the process, like Workers).
    private static func atomicWord() -> UnsafeMutablePointer<UInt64> {
        let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        word.initialize(to: 0)
        return word
    }

    var serversInTransit: Int { Int(truncatingIfNeeded: pooler_atomic_load(inTransit)) }

    func serverLeftLoop() { pooler_atomic_add(inTransit, 1) }

    /// The server handed over has joined its new loop's pool, or closed on the way (the
    /// caller then tells the replies waiting: Pooler.adminRepliesMayBeDue).
    func serverArrived() { pooler_atomic_add(inTransit, UInt64.max) } // minus one

    func setAdminRepliesWaiting(loop: Int, _ waiting: Bool) {
        guard count > 1, loop < 64 else { return }
        lock.withLock {
            let old = pooler_atomic_load(adminWaitingLoops)
            let bit = UInt64(1) << UInt64(loop)
            pooler_atomic_store(adminWaitingLoops, waiting ? old | bit : old & ~bit)
        }
    }

    /// Something on loop `index` that an admin reply may wait for happened: a server
    /// closed (PAUSE closes servers as they are released, WAIT_CLOSE waits for retired
    /// ones) or arrived, or a server was released while suspended (SUSPEND waits for
    /// flushed buffers). Loops whose replies wait on every loop look again now, not at
    /// their next janitor tick. This costs one atomic load when no reply waits, and
    /// while one does these events are few (at most one per server, or per transaction
    /// in flight when SUSPEND came).
    @inline(__always)
    func pokeAdminReplies(from index: Int) {
        guard count > 1 else { return }
        let waiting = pooler_atomic_load(adminWaitingLoops) & ~(UInt64(1) << UInt64(index))
        guard waiting != 0 else { return }
        for loop in 0..<min(count, 64) where waiting & (UInt64(1) << UInt64(loop)) != 0 {
            post(to: loop) { $0.completePendingAdminReplies() }
        }
    }
    private var generations: [String: Int] = [:]

    /// Bumped by RECONNECT (and a changed database entry): servers opened before are retired.
    func bumpGeneration(database: String) { lock.withLock { generations[database, default: 0] += 1 } }

    func generation(database: String) -> Int { lock.withLock { generations[database] ?? 0 } }

    /// The ParameterStatus set of a pool's first server login on any loop, so a client
    /// logging in on another loop does not wait for a server of its own.
    func welcome(for key: PoolKey) -> [(String, String)]? { lock.withLock { welcomes[key] } }

    func forgetWelcome(for key: PoolKey) { lock.withLock { welcomes[key] = nil } }

    func setWelcome(_ parameters: [(String, String)], for key: PoolKey) {
        lock.withLock { if welcomes[key] == nil { welcomes[key] = parameters } }
    }

    /// The shared board of a pool (workers > 1), created on first use.
    func board(for key: PoolKey) -> PoolBoard {
        lock.withLock {
            if let board = boards[key] { return board }
            let board = PoolBoard(loops: count)
            boards[key] = board
            return board
        }
    }

    // MARK: ids

    /// Connection ids unique across loops (SHOW CLIENTS, KILL_CLIENT): loop `index` hands
    /// out index + 1, index + 1 + count, ... without taking the lock.
    static func connectionID(counter: Int, index: Int, count: Int) -> Int { counter * count + index + 1 }
}
