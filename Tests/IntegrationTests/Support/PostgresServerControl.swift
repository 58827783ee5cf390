import CLibPQ
import Foundation

/// What both throwaway clusters (PostgresCluster, TLSPostgresCluster) do with
/// PostgreSQL's own tools, as the `postgres` OS user when running as root: initdb,
/// extra postgresql.conf lines, `pg_ctl start` (ready once it answers a ping, failed
/// as soon as its log says so) and an immediate stop. `label` names the cluster in
/// errors ("" for the shared one).
enum PostgresServerControl {
    static func initdb(dataDirectory: String, label: String) throws {
        let result = try Subprocess.run(TestEnvironment.command(
            [TestEnvironment.pgBin + "/initdb", "-D", dataDirectory, "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"], asUser: TestEnvironment.postgresOSUser))
        guard result.status == 0 else { throw HarnessError("initdb\(suffix(label)) failed: \(result)") }
    }

    static func appendConfiguration(_ text: String, dataDirectory: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(text.data(using: .utf8)!)
        handle.closeFile()
    }

    /// `failureMarkers`: log text that means the server will not come up, besides the
    /// bind and shutdown messages every cluster watches for.
    static func start(dataDirectory: String, logPath: String, socketDirectory: String, port: Int,
                      label: String, failureMarkers: [String] = []) throws {
        let pgCtl = try Subprocess.run(TestEnvironment.command(
            [TestEnvironment.pgBin + "/pg_ctl", "-D", dataDirectory, "-l", logPath, "-o", "-p \(port)", "-W",
             "start"], asUser: TestEnvironment.postgresOSUser))
        guard pgCtl.status == 0 else { throw HarnessError("pg_ctl start\(suffix(label)) failed: \(pgCtl)") }
        let conninfo = PQ.conninfo(host: socketDirectory, port: port, user: "postgres", password: nil,
                                   dbname: "postgres", extra: ["connect_timeout": "2"])
        let markers = ["could not bind", "database system is shut down", "could not create any TCP/IP sockets"]
            + failureMarkers
        var died = false
        let ready = waitUntil(timeout: 60, interval: 0.05) {
            if PQping(conninfo) == PQPING_OK { return true }
            let log = readTextFile(logPath)
            died = markers.contains { log.contains($0) }
            return died
        }
        guard ready, !died else {
            let name = label.isEmpty ? "postgres" : "\(label) postgres"
            throw HarnessError("\(name) did not become ready on port \(port):\n\(tail(readTextFile(logPath)))")
        }
    }

    static func stop(dataDirectory: String) {
        _ = try? Subprocess.run(TestEnvironment.command(
            [TestEnvironment.pgBin + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop"],
            asUser: TestEnvironment.postgresOSUser), timeout: 30)
    }

    private static func suffix(_ label: String) -> String { label.isEmpty ? "" : " (\(label) cluster)" }
}
