import Foundation
import Glibc
import Testing

/// The Prometheus endpoint (metrics_listen_port): valid exposition format while
/// pgbench runs through the pooler, and nothing but GET /metrics and /healthz.
@Suite struct MetricsEndpointTests {
    static let promtool: String? = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { access($0, X_OK) == 0 }

    @Test func scrapedUnderLoadPassesPromtool() throws {
        let metricsPort = try FreePort.pick()
        let pooler = try PoolerProcess(settings: ["metrics_listen_port = \(metricsPort)", "default_pool_size = 3"])
        defer { pooler.stop() }
        let cluster = pooler.cluster
        let database = try cluster.createDatabase(prefix: "metrics")
        let initialise = try ClientTools.pgbench(
            ["-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", "app", database], password: "app")
        try #require(initialise.status == 0, "pgbench -i failed: \(initialise)")

        // Scrape from another thread for as long as pgbench runs.
        let scraper = Scraper(port: metricsPort)
        let thread = Thread { scraper.run() }
        thread.start()
        let run = try ClientTools.pgbench(["-n", "-S", "-c", "10", "-j", "2", "-T", "3",
                                           "-h", "127.0.0.1", "-p", String(pooler.port), "-U", "app", database],
                                          password: "app")
        let scrapes = scraper.stop()
        #expect(run.status == 0 && PgbenchReport(output: run.stdout).failed ?? 0 == 0, "\(run)")
        #expect(scrapes.count >= 3, "only \(scrapes.count) scrapes during the run")
        let underLoad = scrapes.contains {
            $0.body.contains("pgbouncer_pools_server_active_connections{database=\"\(database)\",user=\"app\"}")
        }
        #expect(underLoad, "no pool for \(database) in the metrics\n\(scrapes.last?.body.prefix(2000) ?? "")")

        let last = try #require(scrapes.last)
        #expect(scrapes.allSatisfy { $0.status == 200 })
        #expect(last.headers.contains("text/plain; version=0.0.4"))
        #expect(last.body.contains("# TYPE pgbouncer_stats_totals_queries_pooled_total counter"))
        #expect(last.body.contains("pgbouncer_up 1"))
        #expect(last.body.contains("process_open_fds "))

        if let promtool = Self.promtool {
            let file = NSTemporaryDirectory() + "/" + TestEnvironment.uniqueName("metrics") + ".txt"
            defer { unlink(file) }
            try last.body.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try Subprocess.run(["/bin/sh", "-c", "\(promtool) check metrics < \(file)"])
            #expect(check.status == 0, "promtool check metrics: \(check)")
        }
    }

    @Test func onlyMetricsAndHealthzAreAnswered() throws {
        let metricsPort = try FreePort.pick()
        let pooler = try PoolerProcess(settings: ["metrics_listen_port = \(metricsPort)"])
        defer { pooler.stop() }
        #expect(try HTTPGet.get(port: metricsPort, path: "/healthz").status == 200)
        #expect(try HTTPGet.get(port: metricsPort, path: "/").status == 404)
        #expect(try HTTPGet.request(port: metricsPort, raw: "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status == 405)
        #expect(try HTTPGet.request(port: metricsPort, raw: "garbage\r\n\r\n").status == 400)
        let huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 20000) + "\r\n\r\n"
        #expect(try HTTPGet.request(port: metricsPort, raw: huge).status == 431)
        // The pooler itself is unaffected.
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }
}

/// Scrapes /metrics in a loop until stopped.
private final class Scraper: @unchecked Sendable {
    private let port: Int
    private let lock = NSLock()
    private var responses: [HTTPGet.Response] = []
    private var stopped = false

    init(port: Int) { self.port = port }

    func run() {
        while true {
            lock.lock()
            let done = stopped
            lock.unlock()
            if done { return }
            if let response = try? HTTPGet.get(port: port, path: "/metrics") {
                lock.lock()
                responses.append(response)
                lock.unlock()
            }
            usleep(100_000) // pacing between scrapes, not a wait for a condition
        }
    }

    func stop() -> [HTTPGet.Response] {
        lock.lock()
        stopped = true
        let result = responses
        lock.unlock()
        return result
    }
}
