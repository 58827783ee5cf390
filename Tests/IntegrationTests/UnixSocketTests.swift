import Glibc
import Testing

/// The pooler listens on `unix_socket_dir/.s.PGSQL.<listen_port>` as well as TCP.
@Suite struct UnixSocketTests {
    @Test func libpqAndPsqlConnectOverTheUnixSocket() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let socketPath = pooler.runDirectory + "/.s.PGSQL.\(pooler.port)"
        var info = stat()
        #expect(stat(socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK,
                "no unix socket at \(socketPath)\n\(pooler.diagnostics)")

        let client = try PQ.connect(PQ.conninfo(host: pooler.runDirectory, port: pooler.port, user: "app",
                                                password: "app", dbname: "app_db"))
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        #expect(try client.execParams("SELECT $1::int + 1", ["41"]).scalar == "42")

        let run = try ClientTools.psql(
            ["-h", pooler.runDirectory, "-p", String(pooler.port), "-U", "app", "-d", "app_db", "-tA",
             "-c", "SELECT 'over-unix-socket'"],
            password: "app", timeout: 30)
        #expect(run.status == 0, "\(run)\n\(pooler.diagnostics)")
        #expect(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "over-unix-socket", "\(run)")
    }
}
