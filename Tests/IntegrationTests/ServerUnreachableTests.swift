import Glibc
import Testing

@Suite struct ServerUnreachableTests {
    /// A database whose server refuses connections: the client gets an
    /// ErrorResponse within server_connect_timeout, not a hang.
    @Test func clientGetsAnErrorInsteadOfHanging() throws {
        let closed = try FreePort.closedPort()
        defer { close(closed.descriptor) }
        let cluster = try PostgresCluster.shared()
        let connectTimeout = 2.0
        let pooler = try PoolerProcess(
            settings: ["server_connect_timeout = \(Int(connectTimeout))", "server_login_retry = 1"],
            databases: [
                "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
                "dead = host=127.0.0.1 port=\(closed.port) dbname=app_db",
            ])
        defer { pooler.stop() }

        let started = monotonicSeconds()
        var failure: PQError?
        do {
            let client = try pooler.connect(database: "dead", timeout: connectTimeout + 8)
            defer { client.close() }
            try client.exec("SELECT 1", timeout: connectTimeout + 8)
        } catch let error as PQError {
            failure = error
        }
        let elapsed = monotonicSeconds() - started
        #expect(failure != nil, "a database on a closed port cannot answer SELECT 1")
        #expect(failure?.message.contains("timed out") != true, "\(String(describing: failure))")
        #expect(elapsed < connectTimeout + 3, "error after \(elapsed)s: \(String(describing: failure))")

        // The other database is unaffected.
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }
}
