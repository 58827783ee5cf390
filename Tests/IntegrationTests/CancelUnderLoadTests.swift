import Foundation
import Testing

/// A cancel request reaches the backend running the cancelled client's query
/// and nobody else's, while other clients keep the remaining servers busy.
@Suite struct CancelUnderLoadTests {
    @Test func cancelHitsOnlyTheSleeperWhileTenClientsRun() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 3"])
        defer { pooler.stop() }
        let busyClients = 10
        let sleeper = try pooler.connect()
        defer { sleeper.close() }
        #expect(try sleeper.exec("SELECT 1").scalar == "1")
        let canceller = try #require(sleeper.makeCanceller())
        let marker = TestEnvironment.uniqueName("cancel_under_load")
        let watcher = try pooler.cluster.superuserConnection(database: "app_db")
        defer { watcher.close() }
        let busy = try (0..<busyClients).map { _ in try pooler.connect() }
        defer { busy.forEach { $0.close() } }

        let stop = AtomicFlag()
        // Index 0: the sleeper; 1: the canceller; 2...: the busy clients.
        let outcomes: [String] = Threads.run(count: busyClients + 2) { index -> String in
            switch index {
            case 0:
                let started = monotonicSeconds()
                defer { stop.set() }
                do {
                    try sleeper.exec("SELECT pg_sleep(30) /* \(marker) */", timeout: 35)
                    return "sleeper: finished without error after \(monotonicSeconds() - started) s"
                } catch let error as PQError {
                    let elapsed = monotonicSeconds() - started
                    return "sleeper: \(error.sqlstate ?? "none") after \(elapsed < 10 ? "<10" : String(elapsed)) s"
                } catch {
                    return "sleeper: \(error)"
                }
            case 1:
                let running = waitUntil(timeout: 10) {
                    let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        + "AND pid <> pg_backend_pid() AND query LIKE '%\(marker)%'"
                    return (try? watcher.exec(sql).scalar) == "1"
                }
                guard running else { return "canceller: the sleep never showed up as active" }
                let result = Threads.runWithTimeout(10) { canceller.cancel() } ?? "hung"
                return "canceller: \(result ?? "sent")"
            default:
                let client = busy[index - 2]
                var count = 0
                do {
                    while !stop.isSet || count < 20 {
                        if count % 3 == 0 {
                            try client.exec("BEGIN")
                            _ = try client.exec("SELECT pg_sleep(0.002)")
                            guard try client.execParams("SELECT $1::int + 1", [String(count)]).scalar == String(count + 1)
                            else { return "busy \(index): wrong answer" }
                            try client.exec("COMMIT")
                        } else {
                            guard try client.exec("SELECT \(count)").scalar == String(count)
                            else { return "busy \(index): wrong answer" }
                        }
                        count += 1
                        if count > 200_000 { return "busy \(index): never told to stop" }
                    }
                    return "busy: ok"
                } catch {
                    return "busy \(index) after \(count) queries: \(error)"
                }
            }
        }
        #expect(outcomes[0] == "sleeper: 57014 after <10 s", "\(outcomes[0])\n\(pooler.diagnostics)")
        #expect(outcomes[1] == "canceller: sent", "\(outcomes[1])\n\(pooler.diagnostics)")
        let busyFailures = outcomes.dropFirst(2).filter { $0 != "busy: ok" }
        #expect(busyFailures.isEmpty, "\(busyFailures)\n\(pooler.diagnostics)")

        #expect(try sleeper.exec("SELECT 'still usable'").scalar == "still usable")
    }
}
