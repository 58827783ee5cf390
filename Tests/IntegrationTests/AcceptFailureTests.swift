import Glibc
import Testing

/// accept() failing (here EMFILE: the pooler's descriptor limit is used up) must not
/// spin the event loop. As PgBouncer, the pooler logs "accept() failed", stops
/// accepting for a few seconds and tries again; connected clients carry on.
@Suite struct AcceptFailureTests {
    @Test(arguments: [1, 2])
    func descriptorExhaustionPausesAcceptingThenRecovers(workers: Int) throws {
        let pooler = try PoolerProcess(settings: ["tcp_defer_accept = 0", "workers = \(workers)"], fileLimit: 48)
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        // Connections (each sent a byte) until accept() fails for want of descriptors.
        var raw: [RawSocket] = []
        defer { for socket in raw { socket.close() } }
        for _ in 0..<80 {
            let socket = try RawSocket(port: pooler.port)
            _ = socket.send([0])
            raw.append(socket)
        }
        let failed = waitUntil(timeout: 10) { pooler.logText.contains("accept() failed") }
        try #require(failed, "accept() never failed\n\(pooler.diagnostics)")
        // It does not spin on the failing accept: one report per pause, not thousands.
        _ = waitUntil(timeout: 1) { false }
        let reports = pooler.logText.components(separatedBy: "accept() failed").count - 1
        #expect(reports <= 2 * workers, "accept() failed \(reports) times in about a second\n\(pooler.diagnostics)")
        #expect(try client.exec("SELECT 2", timeout: 10).scalar == "2", "a connected client carries on")

        // Descriptors free again: new clients get in after the pause.
        for socket in raw { socket.close() }
        raw = []
        let fresh = try pooler.connect(timeout: 30)
        defer { fresh.close() }
        #expect(try fresh.exec("SELECT 3").scalar == "3")
        #expect(pooler.isRunning)
    }
}
