import Foundation
import Testing

/// `workers = 2`: two event loops, each owning the clients it accepted and its own
/// servers. Pool limits are global, an idle server moves to the loop where a client
/// waits, admin SHOW commands aggregate every loop, cancels and PAUSE/RESUME reach
/// every loop. A client's loop is read from its connection id: loop i hands out ids
/// i+1, i+1+N, ..., so with two loops odd ids belong to loop 0 and even ids to loop 1.
///
/// Each test points app_db at a database of its own, so the backends it opens can be
/// counted on the server (pg_stat_activity) without seeing other tests' connections.
@Suite struct WorkersTests {
    private static let loops = 2

    /// A client connected with its own application_name, and the loop that owns it.
    private struct LoopClient {
        let connection: PQConnection
        let name: String
        let id: Int
        var loop: Int { (id - 1) % WorkersTests.loops }
    }

    /// Starts a pooler whose app_db is a fresh database on the shared cluster.
    private static func start(_ settings: [String]) throws -> (pooler: PoolerProcess, database: String) {
        let cluster = try PostgresCluster.shared()
        let database = try cluster.createDatabase(prefix: "workers")
        let pooler = try PoolerProcess(settings: settings,
                                       databases: ["app_db = host=127.0.0.1 port=\(cluster.port) dbname=\(database)"])
        return (pooler, database)
    }

    /// Backends connected to `database` on the real server.
    private static func backends(_ watcher: PQConnection, database: String) throws -> Int {
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)' "
            + "AND usename = 'app' AND backend_type = 'client backend'"
        return Int(try watcher.exec(sql).scalar ?? "") ?? -1
    }

    /// SHOW CLIENTS ids of the app clients, by application_name. Also checks that
    /// `ptr` (hex) names the same connection as `id` (decimal).
    private static func clientIDs(_ admin: PQConnection) throws -> [String: Int] {
        let clients = try admin.exec("SHOW CLIENTS")
        var ids: [String: Int] = [:]
        for row in clients.rowIndices(where: ["user": "app", "database": "app_db"]) {
            let name = clients.value(row, "application_name") ?? ""
            let id = Int(clients.value(row, "id") ?? "") ?? -1
            let ptr = clients.value(row, "ptr") ?? ""
            #expect(ptr.hasPrefix("0x") && Int(ptr.dropFirst(2), radix: 16) == id,
                    "SHOW CLIENTS ptr \(ptr) and id \(id) should name the same connection")
            ids[name] = id
        }
        return ids
    }

    /// The loop of each client (per SHOW CLIENTS), by application_name.
    private static func locate(_ admin: PQConnection, _ connection: PQConnection, name: String) throws -> LoopClient {
        let id = try #require(try clientIDs(admin)[name], "\(name) is not in SHOW CLIENTS")
        return LoopClient(connection: connection, name: name, id: id)
    }

    /// Opens `count` app clients at the same time (each with its own application_name),
    /// as a burst of clients arrives in production.
    private static func connectTogether(_ pooler: PoolerProcess, count: Int) throws -> [(PQConnection, String)] {
        let names = (0..<count).map { _ in TestEnvironment.uniqueName("w") }
        let ready = Barrier(parties: count)
        let opened = Threads.run(count: count) { index in
            ready.arriveAndWait(timeout: 10)
            return Result { try pooler.connect(extra: ["application_name": names[index]]) }
        }
        var connections: [(PQConnection, String)] = []
        var firstError: Error?
        for (index, outcome) in opened.enumerated() {
            switch outcome {
            case .success(let connection): connections.append((connection, names[index]))
            case .failure(let error): firstError = firstError ?? error
            }
        }
        if let firstError {
            connections.forEach { $0.0.close() }
            throw firstError
        }
        return connections
    }

    /// Exactly `count` app clients, at least `perLoop` of them on each loop: connects
    /// batches of simultaneous clients until the loops have enough (at most 12 batches),
    /// then closes the surplus of the busiest loop. Nil, with an issue recorded, if the
    /// connections never reached every loop.
    private static func connectOnEveryLoop(_ pooler: PoolerProcess, _ admin: PQConnection, count: Int = 2,
                                           perLoop: Int = 1) throws -> [LoopClient]? {
        var clients: [LoopClient] = []
        func perLoopCounts() -> [Int] { (0..<loops).map { loop in clients.filter { $0.loop == loop }.count } }
        for _ in 0..<12 {
            if clients.count >= count && perLoopCounts().allSatisfy({ $0 >= perLoop }) { break }
            for (connection, name) in try connectTogether(pooler, count: max(count - clients.count, 8)) {
                clients.append(try locate(admin, connection, name: name))
                #expect(try connection.exec("SELECT 1").scalar == "1")
            }
        }
        guard clients.count >= count && perLoopCounts().allSatisfy({ $0 >= perLoop }) else {
            Issue.record("""
                \(clients.count) connections did not give \(perLoop) client(s) on each of \(loops) loops: \
                ids \(clients.map(\.id)), per loop \(perLoopCounts())
                \(pooler.diagnostics)
                """)
            clients.forEach { $0.connection.close() }
            return nil
        }
        while clients.count > count {
            let counts = perLoopCounts()
            let busiest = counts.indices.max { counts[$0] < counts[$1] }!
            let index = clients.lastIndex { $0.loop == busiest }!
            clients.remove(at: index).connection.close()
        }
        // The closed ones are gone from SHOW CLIENTS before the test counts anything.
        var listed: [String: Int] = [:]
        let settled = try waitUntil(timeout: 5) {
            listed = try clientIDs(admin)
            return listed.count == count
        }
        #expect(settled, "SHOW CLIENTS still lists closed clients: \(listed)")
        return clients
    }

    private static func describe<T>(_ outcome: Result<T, Error>?) -> String {
        switch outcome {
        case .none: return "still running"
        case .success(let value)?: return "success(\(value))"
        case .failure(let error)?: return "failure(\(error))"
        }
    }

    // MARK: one server, two loops

    /// default_pool_size = 1 and one client on each loop: the single server goes to
    /// whichever loop has a waiting client (same backend pid), in both directions,
    /// and the server never sees a second backend for the pool.
    /// Clients that connect one at a time (an idle loop accepts each of them) still end
    /// up spread over the loops: each goes to the loop with the fewest clients.
    /// The CPUs a task may run on, from /proc (Cpus_allowed_list, e.g. "0-1,4").
    private static func allowedCPUs(statusPath: String) -> [Int] {
        guard let line = readTextFile(statusPath).split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return [] }
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
            .split(separator: ",").flatMap { range -> [Int] in
                let ends = range.split(separator: "-").compactMap { Int($0) }
                return ends.count == 2 ? Array(ends[0]...ends[1]) : ends
            }
    }

    /// worker_cpu_affinity = 1: each loop's thread runs on one CPU of the process's
    /// set, loop i on the i-th; without it no thread is narrowed.
    @Test func workerCpuAffinityPinsEachLoopToItsOwnCPU() throws {
        let cpus = Self.allowedCPUs(statusPath: "/proc/self/status")
        try #require(!cpus.isEmpty, "no Cpus_allowed_list in /proc/self/status")
        for pinned in [true, false] {
            let (pooler, _) = try Self.start(["workers = \(Self.loops)", "worker_cpu_affinity = \(pinned ? 1 : 0)"])
            defer { pooler.stop() }
            let client = try pooler.connect()
            defer { client.close() }
            #expect(try client.exec("SELECT 1").scalar == "1")
            let pid = try #require(pooler.processID)
            let expected = Set((0..<Self.loops).map { cpus[$0 % cpus.count] })
            // Each loop pins itself as it starts running: wait for both log lines.
            if pinned {
                #expect(waitUntil(timeout: 10) {
                    (0..<Self.loops).allSatisfy { pooler.logText.contains("event loop \($0) pinned to CPU \(cpus[$0 % cpus.count])") }
                }, "\(pooler.diagnostics)")
            }
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let affinities = tasks.map { Self.allowedCPUs(statusPath: "/proc/\(pid)/task/\($0)/status") }
            let single = Set(affinities.filter { $0.count == 1 }.map { $0[0] })
            if pinned {
                #expect(single == expected, "threads on one CPU: \(affinities), expected loops on \(expected)")
            } else {
                #expect(affinities.allSatisfy { $0 == cpus }, "unpinned threads: \(affinities), process set \(cpus)")
            }
        }
    }

    @Test func clientsConnectingOneAtATimeSpreadOverTheLoops() throws {
        let (pooler, _) = try Self.start(["workers = 2"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        var clients: [LoopClient] = []
        defer { clients.forEach { $0.connection.close() } }
        for _ in 0..<6 {
            let name = TestEnvironment.uniqueName("seq")
            let connection = try pooler.connect(extra: ["application_name": name])
            #expect(try connection.exec("SELECT 1").scalar == "1")
            clients.append(try Self.locate(admin, connection, name: name))
        }
        let perLoop = (0..<Self.loops).map { loop in clients.filter { $0.loop == loop }.count }
        #expect(perLoop.allSatisfy { $0 >= 2 }, "6 clients connected one by one, per loop \(perLoop)\n\(pooler.diagnostics)")
    }

    @Test func clientsOnBothLoopsShareOneServer() throws {
        let (pooler, database) = try Self.start(["workers = 2", "default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let watcher = try pooler.cluster.superuserConnection()
        defer { watcher.close() }
        guard let clients = try Self.connectOnEveryLoop(pooler, admin) else { return }
        defer { clients.forEach { $0.connection.close() } }
        let a = try #require(clients.first { $0.loop == 0 })
        let b = try #require(clients.first { $0.loop == 1 })

        var pids: Set<String> = []
        for (holder, waiter) in [(a, b), (b, a)] {
            let context = "holder on loop \(holder.loop) (id \(holder.id)), waiter on loop \(waiter.loop) (id \(waiter.id))"
            try holder.connection.exec("BEGIN", timeout: 10)
            let held = try #require(try holder.connection.exec("SELECT pg_backend_pid()", timeout: 10).scalar)
            pids.insert(held)
            let waiterConnection = waiter.connection
            let waiting = Background { try waiterConnection.exec("SELECT pg_backend_pid()", timeout: 20).scalar }
            let queued = try waitUntil(timeout: 5) { try admin.poolCount("cl_waiting") == 1 }
            #expect(queued, "\(context): SHOW POOLS \(String(describing: try? admin.poolRow()))\n\(pooler.diagnostics)")
            #expect(!waiting.isDone,
                    "\(context): the waiter ran while the only server was held: \(Self.describe(waiting.wait(timeout: 0)))")
            #expect(try Self.backends(watcher, database: database) == 1, "\(context)")
            #expect(try admin.exec("SHOW SERVERS").rowIndices(where: ["database": "app_db"]).count == 1, "\(context)")

            try holder.connection.exec("COMMIT", timeout: 10)
            let outcome = waiting.wait(timeout: 10)
            #expect((try? outcome?.get()) == held,
                    "\(context): the waiter should get the holder's server (pid \(held)): \(Self.describe(outcome))\n\(pooler.diagnostics)")
            #expect(try Self.backends(watcher, database: database) <= 1, "\(context)")
        }
        #expect(pids.count == 1, "one server for the pool, whichever loop held it: \(pids)")
        #expect(try admin.poolCount("cl_waiting") == 0)
        #expect(try Self.backends(watcher, database: database) == 1)
    }

    // MARK: global pool size

    /// default_pool_size = 3 with 24 clients on both loops running transactions
    /// concurrently: every transaction succeeds and the pool never has more than three
    /// servers, per SHOW POOLS, SHOW SERVERS and the server's pg_stat_activity.
    @Test func poolSizeIsGlobalUnderLoad() throws {
        let (pooler, database) = try Self.start(["workers = 2", "default_pool_size = 3"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let watcher = try pooler.cluster.superuserConnection()
        defer { watcher.close() }
        guard let clients = try Self.connectOnEveryLoop(pooler, admin, count: 24, perLoop: 2) else { return }
        defer { clients.forEach { $0.connection.close() } }
        let connections = clients.map(\.connection)
        let transactions = 30
        let minimumLooks = 40

        // Each client runs at least `transactions` transactions and keeps going until the
        // test thread has looked at the pool `minimumLooks` times.
        let looked = AtomicFlag()
        let start = Barrier(parties: connections.count)
        let load = Background { () -> [(count: Int, error: String?)] in
            Threads.run(count: connections.count) { index -> (count: Int, error: String?) in
                let client = connections[index]
                start.arriveAndWait(timeout: 20)
                let deadline = Deadline(seconds: 30)
                var count = 0
                do {
                    while count < transactions || (!looked.isSet && !deadline.hasPassed) {
                        try client.exec("BEGIN", timeout: 20)
                        guard try client.exec("SELECT 1", timeout: 20).scalar == "1" else {
                            return (count, "wrong answer")
                        }
                        try client.exec("COMMIT", timeout: 20)
                        count += 1
                    }
                    return (count, nil)
                } catch {
                    return (count, "\(error)")
                }
            }
        }

        var looks = 0
        var worst: (servers: Int, backends: Int) = (0, 0)
        var over: [String] = []
        while !load.isDone {
            let row = try admin.poolRow()
            let servers = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
                .map { Int(row[$0] ?? "") ?? 0 }.reduce(0, +)
            let backends = try Self.backends(watcher, database: database)
            looks += 1
            if looks >= minimumLooks { looked.set() }
            worst = (max(worst.servers, servers), max(worst.backends, backends))
            if servers > 3 || backends > 3, over.count < 5 {
                over.append("look \(looks): SHOW POOLS \(row), pg_stat_activity backends \(backends)")
            }
        }
        let results = try #require(load.wait(timeout: 0)).get()
        let failures = results.enumerated().filter { $0.element.error != nil }
        #expect(failures.isEmpty, "failed clients: \(failures.prefix(5).map { "\($0.offset): \($0.element.error ?? "")" })\n\(pooler.diagnostics)")
        #expect(results.allSatisfy { $0.count >= transactions }, "transactions per client: \(results.map(\.count))")
        #expect(looks >= minimumLooks, "only \(looks) looks at the pool while the load ran")
        #expect(over.isEmpty, "more than default_pool_size = 3 servers (worst \(worst)):\n\(over.joined(separator: "\n"))\n\(pooler.diagnostics)")
        let servers = try admin.exec("SHOW SERVERS").rowIndices(where: ["database": "app_db"]).count
        #expect(servers >= 1 && servers <= 3, "SHOW SERVERS lists \(servers) servers")
        #expect(try Self.backends(watcher, database: database) <= 3)
    }

    // MARK: global max_client_conn

    /// max_client_conn = 4 counts the clients of both loops: with four clients spread
    /// over the loops the fifth is refused, and a slot freed on either loop is reusable.
    @Test func maxClientConnIsGlobal() throws {
        let (pooler, _) = try Self.start(["workers = 2", "max_client_conn = 4"])
        defer { pooler.stop() }
        // The admin console does not count against max_client_conn.
        let admin = try pooler.admin()
        defer { admin.close() }

        /// Connects (retrying while the pooler has not yet noticed a disconnect).
        func admit() -> LoopClient? {
            var admitted: LoopClient?
            _ = waitUntil(timeout: 5, interval: 0.05) {
                let name = TestEnvironment.uniqueName("mcc")
                guard let connection = try? pooler.connect(extra: ["application_name": name]) else { return false }
                admitted = try? Self.locate(admin, connection, name: name)
                return admitted != nil
            }
            return admitted
        }

        // Four clients at once (so that both loops accept some), as often as it takes
        // to have both loops own clients; each time all four must be admitted.
        var clients: [LoopClient] = []
        defer { clients.forEach { $0.connection.close() } }
        var attempts = 0
        while Set(clients.map(\.loop)).count < Self.loops && attempts < 30 {
            attempts += 1
            clients.forEach { $0.connection.close() }
            clients = []
            var lists: [[String?]] = []
            let gone = try waitUntil(timeout: 5) {
                let result = try admin.exec("SHOW LISTS")
                lists = result.rows
                return result.row(where: ["list": "used_clients"])?["items"] == "1"
            }
            try #require(gone, "closed clients are still counted: \(lists)\n\(pooler.diagnostics)")
            for (connection, name) in try Self.connectTogether(pooler, count: 4) {
                clients.append(try Self.locate(admin, connection, name: name))
            }
        }
        #expect(Set(clients.map(\.loop)).count == Self.loops, "ids \(clients.map(\.id)) after \(attempts) attempts")
        for client in clients {
            #expect(try client.connection.exec("SELECT 1").scalar == "1")
        }

        for _ in 0..<2 {
            let error = #expect(throws: PQError.self) { try pooler.connect() }
            #expect(error?.message.contains("max_client_conn") == true, "\(String(describing: error))\n\(pooler.diagnostics)")
            #expect(error?.sqlstate == "53300", "\(String(describing: error))")
        }

        // A slot freed on either loop can be taken.
        for loop in 0..<Self.loops {
            let index = try #require(clients.firstIndex { $0.loop == loop })
            clients.remove(at: index).connection.close()
            let replacement = admit()
            #expect(replacement != nil, "closing a client on loop \(loop) should free a slot\n\(pooler.diagnostics)")
            guard let replacement else { return }
            clients.append(replacement)
            #expect(try replacement.connection.exec("SELECT 2").scalar == "2")
            #expect(throws: PQError.self) { try pooler.connect() }
        }
    }

    // MARK: admin views

    /// SHOW POOLS, CLIENTS, LISTS, DATABASES and STATS count the clients and
    /// transactions of both loops, in one row per pool/database.
    @Test func adminViewsCoverEveryLoop() throws {
        let (pooler, _) = try Self.start(["workers = 2"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        guard let clients = try Self.connectOnEveryLoop(pooler, admin, count: 8, perLoop: 2) else { return }
        defer { clients.forEach { $0.connection.close() } }
        let total = clients.count

        let pools = try admin.exec("SHOW POOLS")
        #expect(pools.rowIndices(where: ["database": "app_db", "user": "app"]).count == 1, "\(pools.rows)")
        let active = try waitUntil(timeout: 5) { try admin.poolCount("cl_active") == total }
        #expect(active, "SHOW POOLS cl_active should be \(total): \(String(describing: try? admin.poolRow()))")

        let ids = try Self.clientIDs(admin)
        #expect(ids.count == total, "SHOW CLIENTS: \(ids)")
        #expect(Set(clients.map(\.name)) == Set(ids.keys))
        #expect(Set(ids.values.map { ($0 - 1) % Self.loops }) == [0, 1], "SHOW CLIENTS ids \(ids.values.sorted())")

        // Every app client plus this admin connection.
        var lists: [String: String] = [:]
        let counted = try waitUntil(timeout: 5) {
            let result = try admin.exec("SHOW LISTS")
            lists = Dictionary(result.rows.map { ($0[0] ?? "", $0[1] ?? "") }, uniquingKeysWith: { first, _ in first })
            return lists["used_clients"] == String(total + 1)
        }
        #expect(counted, "SHOW LISTS used_clients should be \(total + 1): \(lists)")

        let databases = try admin.exec("SHOW DATABASES")
        #expect(databases.rowIndices(where: ["name": "app_db"]).count == 1)
        #expect(databases.row(where: ["name": "app_db"])?["current_client_connections"] == String(total),
                "\(String(describing: databases.row(where: ["name": "app_db"])))")

        let perClient = 10
        for client in clients {
            for _ in 0..<perClient {
                try client.connection.exec("BEGIN")
                #expect(try client.connection.exec("SELECT 1").scalar == "1")
                try client.connection.exec("COMMIT")
            }
        }
        var row: [String: String] = [:]
        let tallied = try waitUntil(timeout: 10, interval: 0.1) {
            let stats = try admin.exec("SHOW STATS")
            guard stats.rowIndices(where: ["database": "app_db"]).count == 1 else { return false }
            row = stats.row(where: ["database": "app_db"]) ?? [:]
            return (Int(row["total_xact_count"] ?? "") ?? -1) >= total * perClient
        }
        #expect(tallied, "SHOW STATS total_xact_count should reach \(total * perClient): \(row)\n\(pooler.diagnostics)")
        #expect((Int(row["total_query_count"] ?? "") ?? -1) >= total * perClient, "\(row)")
    }

    // MARK: cancel

    /// A cancel request reaches the client's loop whichever loop takes it. Each round
    /// runs a pg_sleep on a client of each loop and cancels both at the same moment (the
    /// request connections go to whichever loop has fewer clients then, so over the
    /// rounds requests are both served locally and passed on to the other loop): both
    /// queries end with query_canceled (57014).
    @Test func cancelReachesClientOnEitherLoop() throws {
        let (pooler, database) = try Self.start(["workers = 2"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let watcher = try pooler.cluster.superuserConnection(database: database)
        defer { watcher.close() }
        guard let clients = try Self.connectOnEveryLoop(pooler, admin) else { return }
        defer { clients.forEach { $0.connection.close() } }
        let targets = (0..<Self.loops).compactMap { loop in clients.first { $0.loop == loop } }

        for round in 0..<3 {
            let marker = TestEnvironment.uniqueName("workers_cancel")
            let cancellers = try targets.map { try #require($0.connection.makeCanceller()) }
            let started = monotonicSeconds()
            let sleepers = targets.map { target in
                let connection = target.connection
                return Background { () throws -> String? in
                    try connection.exec("SELECT pg_sleep(30) /* \(marker) */", timeout: 35).scalar
                }
            }
            let running = waitUntil(timeout: 10) {
                let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    + "AND pid <> pg_backend_pid() AND query LIKE '%\(marker)%'"
                return sleepers.contains { $0.isDone } || (try? watcher.exec(sql).scalar) == String(targets.count)
            }
            // Nothing has cancelled this round's sleeps yet: one that already ended was hit
            // by a cancel meant for an earlier query.
            let early = sleepers.indices.filter { sleepers[$0].isDone }
            #expect(early.isEmpty, """
                round \(round): a pg_sleep ended before its cancel was sent (a late signal from an \
                earlier round's cancel request?): \
                \(early.map { "loop \(targets[$0].loop): \(Self.describe(sleepers[$0].wait(timeout: 0)))" })
                \(pooler.diagnostics)
                """)
            guard running, early.isEmpty else {
                if !running { Issue.record("round \(round): the sleeps never all showed up as active\n\(pooler.diagnostics)") }
                return
            }
            let cancelErrors = Threads.run(count: cancellers.count) { index in
                Threads.runWithTimeout(10) { cancellers[index].cancel() } ?? "hung: PQcancel did not return within 10 s"
            }
            for (index, target) in targets.enumerated() {
                let context = "round \(round), client on loop \(target.loop) (id \(target.id))"
                #expect(cancelErrors[index] == nil, "\(context): PQcancel failed: \(cancelErrors[index] ?? "")\n\(pooler.diagnostics)")
                let outcome = sleepers[index].wait(timeout: 10)
                let elapsed = monotonicSeconds() - started
                switch outcome {
                case .failure(let error as PQError)?:
                    #expect(error.sqlstate == "57014", "\(context): expected query_canceled, got \(error)")
                default:
                    Issue.record("\(context): the sleep was not cancelled: \(Self.describe(outcome))\n\(pooler.diagnostics)")
                }
                #expect(elapsed < 10, "\(context): cancelled after \(elapsed) s")
            }
            guard sleepers.allSatisfy({ $0.isDone }) else { return }
            // PQcancel has returned and the query has ended: the cancel is over, and the
            // client's next query must not be cancelled too.
            for target in targets {
                do {
                    #expect(try target.connection.exec("SELECT \(round)").scalar == String(round))
                } catch {
                    Issue.record("""
                        round \(round), client on loop \(target.loop): the query after a finished cancel \
                        failed: \(error)
                        \(pooler.diagnostics)
                        """)
                }
            }
        }
    }

    // MARK: PAUSE / RESUME

    /// PAUSE waits for the open transactions of both loops, then holds new queries on
    /// both loops until RESUME.
    @Test func pauseAndResumeApplyToEveryLoop() throws {
        let (pooler, _) = try Self.start(["workers = 2"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let monitor = try pooler.admin()
        defer { monitor.close() }
        guard let clients = try Self.connectOnEveryLoop(pooler, admin) else { return }
        defer { clients.forEach { $0.connection.close() } }
        let targets = (0..<Self.loops).compactMap { loop in clients.first { $0.loop == loop } }

        // A transaction open on each loop: PAUSE answers only once both have ended.
        for target in targets {
            try target.connection.exec("BEGIN")
            #expect(try target.connection.exec("SELECT 1").scalar == "1")
        }
        let pause = Background { try admin.exec("PAUSE", timeout: 20) }
        let issued = waitUntil(timeout: 5) { pooler.logText.contains("PAUSE command issued") }
        #expect(issued, "no PAUSE in the log\n\(pooler.diagnostics)")
        for (index, target) in targets.enumerated() {
            #expect(!waitUntil(timeout: 0.5) { pause.isDone },
                    "PAUSE answered while clients on loops \(targets[index...].map(\.loop)) were in a transaction: \(Self.describe(pause.wait(timeout: 0)))")
            try target.connection.exec("COMMIT", timeout: 10)
        }
        switch pause.wait(timeout: 5) {
        case .none: Issue.record("PAUSE did not answer after both loops committed\n\(pooler.diagnostics)")
        case .failure(let error)?: Issue.record("PAUSE failed: \(error)\n\(pooler.diagnostics)")
        case .success?: break
        }

        // New queries on both loops wait.
        let queries = targets.enumerated().map { index, target in
            let connection = target.connection
            return Background { try connection.exec("SELECT \(index + 40)", timeout: 20).scalar }
        }
        let waiting = try waitUntil(timeout: 5) { try monitor.poolCount("cl_waiting") == targets.count }
        #expect(waiting, "SHOW POOLS: \(String(describing: try? monitor.poolRow()))\n\(pooler.diagnostics)")
        #expect(!waitUntil(timeout: 0.3) { queries.contains { $0.isDone } },
                "a query ran while paused: \(queries.map { Self.describe($0.wait(timeout: 0)) })")

        try admin.exec("RESUME", timeout: 10)
        for (index, query) in queries.enumerated() {
            let answer = query.wait(timeout: 10)
            #expect((try? answer?.get()) == String(index + 40),
                    "after RESUME the query on loop \(targets[index].loop) should run: \(Self.describe(answer))\n\(pooler.diagnostics)")
        }
        #expect(try monitor.poolCount("cl_waiting") == 0)
    }
}
