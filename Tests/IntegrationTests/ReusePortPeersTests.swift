import Glibc
import Testing

/// Two instances on one port (so_reuseport) with [peers]: the kernel spreads clients over
/// both, and a cancel request, whichever instance it lands on, reaches the query it names.
@Suite struct ReusePortPeersTests {
    @Test func cancelsWorkWhicheverInstanceTheyReach() throws {
        let first = try PoolerProcess(settings: ["so_reuseport = 1", "peer_id = 1"])
        defer { first.stop() }
        let second = try PoolerProcess(settings: ["so_reuseport = 1", "peer_id = 2"], fixedPort: first.port)
        defer { second.stop() }
        // Each instance's unix socket lives in its own run directory: list both as peers
        // in both files, then reload.
        let peers = "\n[peers]\n1 = host=\(first.runDirectory) port=\(first.port)\n"
            + "2 = host=\(second.runDirectory) port=\(second.port)\n"
        for instance in [first, second] {
            try writeTextFile(instance.iniPath, readTextFile(instance.iniPath) + peers)
            #expect(instance.send(signal: SIGHUP))
            #expect(waitUntil(timeout: 10) { instance.logText.contains("re-reading config") })
        }
        let watcher = try first.cluster.superuserConnection(database: "app_db")
        defer { watcher.close() }

        var cancelled = 0
        for round in 0..<6 {
            let client = try first.connect() // the shared port: either instance
            defer { client.close() }
            let canceller = try #require(client.makeCanceller())
            let marker = TestEnvironment.uniqueName("peer_cancel_\(round)")
            let outcomes = Threads.run(count: 2) { index -> String? in
                if index == 0 {
                    do {
                        try client.exec("SELECT pg_sleep(30) /* \(marker) */", timeout: 25)
                        return "not cancelled"
                    } catch let error as PQError {
                        return error.sqlstate
                    } catch {
                        return "\(error)"
                    }
                }
                let running = waitUntil(timeout: 10, interval: 0.02) {
                    let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        + "AND pid <> pg_backend_pid() AND query LIKE '%\(marker)%'"
                    return (try? watcher.exec(sql).scalar) == "1"
                }
                guard running else { return "query never ran" }
                // PQcancel connects to the shared port too: the kernel picks the instance.
                return Threads.runWithTimeout(10) { canceller.cancel() } ?? "PQcancel hung"
            }
            #expect(outcomes[1] == nil, "round \(round): cancel: \(outcomes[1] ?? "")")
            #expect(outcomes[0] == "57014",
                    "round \(round): query ended with \(outcomes[0] ?? "nil")\n\(first.diagnostics)\n\(second.diagnostics)")
            if outcomes[0] == "57014" { cancelled += 1 }
        }
        #expect(cancelled == 6)
        // Both instances take logins on the one port (26 connections all landing on one of
        // two listeners would be a 2^-25 event, not luck the test relies on).
        for _ in 0..<20 { try first.connect().close() }
        #expect(first.logText.contains("login attempt") && second.logText.contains("login attempt"),
                "the kernel sent every client to one instance")
    }
}
