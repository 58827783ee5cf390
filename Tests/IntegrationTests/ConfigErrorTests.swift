import Foundation
import Glibc
import Testing

/// Start-up with a broken or partly supported ini, as PgBouncer 1.25: unknown
/// keys and invalid values are fatal (with file and line), keys PgBouncer
/// documents but this pooler does not implement start with a warning.
@Suite struct ConfigErrorTests {
    /// Writes the standard ini plus `extra` settings into a fresh run directory
    /// and runs the pooler on it, expecting it to exit by itself.
    private static func runPooler(extra: [String]) throws -> (output: Subprocess.Output, ini: String, iniPath: String) {
        let cluster = try PostgresCluster.shared()
        let directory = try cluster.makeRunDirectory(owner: TestEnvironment.poolerRunAs)
        try writeTextFile(directory + "/userlist.txt", cluster.userlist, mode: 0o600)
        try TestEnvironment.chown(directory + "/userlist.txt", to: TestEnvironment.poolerRunAs)
        var ini = PoolerIni.standard(listenPort: try FreePort.pick(), runDirectory: directory,
                                     authFile: directory + "/userlist.txt", postgresPort: cluster.port)
        ini.apply(extra)
        let text = ini.render()
        let path = directory + "/pooler.ini"
        try writeTextFile(path, text)
        let argv = TestEnvironment.command([try TestEnvironment.poolerBinary(), path],
                                           asUser: TestEnvironment.poolerRunAs)
        // A pooler that wrongly starts would run until the timeout kills it.
        let output = try Subprocess.run(argv, timeout: 10)
        return (output, text, path)
    }

    /// The 1-based line of `text` that starts with `prefix`.
    private static func lineNumber(of prefix: String, in text: String) -> Int? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.firstIndex { $0.hasPrefix(prefix) }.map { $0 + 1 }
    }

    @Test func unknownKeyIsFatalWithFileAndLine() throws {
        let run = try Self.runPooler(extra: ["listen_prot = 1"])
        let output = run.output.stdout + run.output.stderr
        #expect(!run.output.timedOut, "the pooler started despite an unknown key: \(run.output)")
        #expect(run.output.status != 0, "\(run.output)")
        #expect(output.contains("unknown parameter: pgbouncer/listen_prot"), "\(run.output)")
        let line = try #require(Self.lineNumber(of: "listen_prot", in: run.ini))
        #expect(output.contains("pooler.ini:\(line)"), "expected file name and line \(line) in:\n\(run.output)")
    }

    @Test func invalidValueIsFatalNamingTheKey() throws {
        let run = try Self.runPooler(extra: ["listen_port = abc"])
        let output = run.output.stdout + run.output.stderr
        #expect(!run.output.timedOut, "the pooler started despite listen_port = abc: \(run.output)")
        #expect(run.output.status != 0, "\(run.output)")
        #expect(output.contains("listen_port"), "the error should name the key:\n\(run.output)")
        #expect(output.contains("abc"), "the error should quote the value:\n\(run.output)")
    }

    /// Keys PgBouncer documents but this pooler does not act on are accepted,
    /// each with a WARNING naming it, and the pooler serves clients.
    @Test func unimplementedKeysStartWithAWarning() throws {
        let pooler = try PoolerProcess(settings: ["sbuf_loopcnt = 3", "dns_zone_check_period = 10"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        let text = pooler.logText + "\n" + pooler.outputText
        let warnings = text.split(separator: "\n").filter { $0.contains("WARNING") }
        for key in ["sbuf_loopcnt", "dns_zone_check_period"] {
            #expect(warnings.contains { $0.contains(key) }, "no WARNING naming \(key):\n\(pooler.diagnostics)")
        }
    }
}
