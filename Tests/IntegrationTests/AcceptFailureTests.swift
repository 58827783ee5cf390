import Glibc
import Testing

/// accept() failing (here EMFILE: the pooler's descriptor limit is used up) must not
/// spin the event loop. As PgBouncer, the pooler logs "accept() failed", stops
/// accepting for a few seconds and tries again; connected clients carry on. The
/// metrics listener does the same.
@Suite struct AcceptFailureTests {
    /// Connections flood the client port (with one and two loops), or the metrics port.
    @Test(arguments: [(1, "clients"), (2, "clients"), (1, "metrics")])
    func descriptorExhaustionPausesAcceptingThenRecovers(workers: Int, flooded: String) throws {
        let metricsPort = try FreePort.pick()
        let pooler = try PoolerProcess(settings: ["tcp_defer_accept = 0", "workers = \(workers)",
                                                  "metrics_listen_port = \(metricsPort)"], fileLimit: 48)
        defer { pooler.stop() }
        let pid = try #require(pooler.processID)
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        // Connections (each sent a byte) until accept() fails for want of descriptors.
        // The metrics listener's backlog is 16: a few more than the free descriptors.
        var raw: [RawSocket] = []
        defer { for socket in raw { socket.close() } }
        for _ in 0..<(flooded == "metrics" ? 45 : 80) {
            let socket = try RawSocket(port: flooded == "metrics" ? metricsPort : pooler.port)
            _ = socket.send([0])
            raw.append(socket)
        }
        let failed = waitUntil(timeout: 10) { pooler.logText.contains("accept() failed") }
        try #require(failed, "accept() never failed\n\(pooler.diagnostics)")
        // It does not spin on the failing accept: one report per loop and pause, and
        // next to no CPU (a spinning loop burns a whole core).
        let cpuUsed = processCPUSecondsOverASecond(pid)
        #expect(cpuUsed < 0.3, "the pooler used \(cpuUsed) s of CPU in a second of exhausted descriptors")
        let reports = pooler.logText.components(separatedBy: "accept() failed").count - 1
        #expect(reports <= 2 * workers, "accept() failed \(reports) times in about a second\n\(pooler.diagnostics)")
        #expect(try client.exec("SELECT 2", timeout: 10).scalar == "2", "a connected client carries on")

        // Descriptors free again: new clients get in after the pause, and metrics answer.
        for socket in raw { socket.close() }
        raw = []
        let fresh = try pooler.connect(timeout: 30)
        defer { fresh.close() }
        #expect(try fresh.exec("SELECT 3").scalar == "3")
        let metricsBack = waitUntil(timeout: 15, interval: 0.2) {
            (try? HTTPGet.get(port: metricsPort, path: "/healthz", timeout: 2).status) == 200
        }
        #expect(metricsBack, "the metrics endpoint did not answer again\n\(pooler.diagnostics)")
        #expect(pooler.isRunning)
    }
}
