import Foundation
import Glibc
import Testing

/// PgBouncer's command line: -V, -h, and -d (daemon, which needs a pidfile).
@Suite struct CommandLineTests {
    @Test func versionPrintsALineAndExitsZero() throws {
        for flag in ["-V", "--version"] {
            let run = try Subprocess.run([try TestEnvironment.poolerBinary(), flag], timeout: 10)
            #expect(run.status == 0, "\(flag): \(run)")
            let first = run.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(!first.trimmingCharacters(in: .whitespaces).isEmpty, "\(flag) printed nothing: \(run)")
        }
    }

    @Test func helpExitsZero() throws {
        for flag in ["-h", "--help"] {
            let run = try Subprocess.run([try TestEnvironment.poolerBinary(), flag], timeout: 10)
            #expect(run.status == 0, "\(flag): \(run)")
            #expect(run.stdout.lowercased().contains("usage"), "\(flag): \(run)")
        }
    }

    /// An ini for a pooler started by hand, in a fresh run directory.
    private static func prepare(pidfile: Bool) throws -> (directory: String, ini: PoolerIni, path: String) {
        let cluster = try PostgresCluster.shared()
        let directory = try cluster.makeRunDirectory(owner: TestEnvironment.poolerRunAs)
        try writeTextFile(directory + "/userlist.txt", cluster.userlist, mode: 0o600)
        try TestEnvironment.chown(directory + "/userlist.txt", to: TestEnvironment.poolerRunAs)
        let ini = PoolerIni.standard(listenPort: try FreePort.pick(), runDirectory: directory,
                                     authFile: directory + "/userlist.txt", postgresPort: cluster.port)
        var text = ini.render()
        if !pidfile {
            text = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("pidfile") }.joined(separator: "\n")
        }
        let path = directory + "/pooler.ini"
        try writeTextFile(path, text)
        return (directory, ini, path)
    }

    @Test func daemonWithoutPidfileFails() throws {
        let setup = try Self.prepare(pidfile: false)
        let argv = TestEnvironment.command([try TestEnvironment.poolerBinary(), "-d", setup.path],
                                           asUser: TestEnvironment.poolerRunAs)
        let run = try Subprocess.run(argv, timeout: 10)
        // If it daemonized after all, stop the process we started.
        defer { Self.killProcesses(runningConfig: setup.path) }
        #expect(!run.timedOut)
        #expect(run.status != 0, "-d without pidfile should fail: \(run)")
        #expect((run.stdout + run.stderr).contains("pidfile"), "\(run)")
        let port = Int(setup.ini.value("listen_port") ?? "") ?? 0
        #expect(!FreePort.isListening(port: port), "a pooler is listening on \(port) although -d failed")
    }

    /// SIGKILL to processes whose command line names `path` (an ini in our
    /// own run directory, so only poolers this test started).
    private static func killProcesses(runningConfig path: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            let arguments = readTextFile("/proc/\(entry)/cmdline").split(separator: "\0").map(String.init)
            if arguments.contains(path) { kill(pid, SIGKILL) }
        }
    }

    /// Alive and not a zombie (a daemon is not our child, so nobody here reaps it).
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = readTextFile("/proc/\(pid)/stat")
        guard let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    @Test func daemonRunsInBackgroundUntilSIGINT() throws {
        let setup = try Self.prepare(pidfile: true)
        let pidfile = try #require(setup.ini.value("pidfile"))
        let port = try #require(Int(setup.ini.value("listen_port") ?? ""))
        let argv = TestEnvironment.command([try TestEnvironment.poolerBinary(), "-d", setup.path],
                                           asUser: TestEnvironment.poolerRunAs)
        let run = try Subprocess.run(argv, timeout: 15)
        #expect(!run.timedOut, "pooler -d did not return: \(run)")
        #expect(run.status == 0, "\(run)\n\(readTextFile(setup.directory + "/pooler.log"))")

        var daemon: pid_t = 0
        let wrotePid = waitUntil(timeout: 10) {
            guard let pid = Int32(readTextFile(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)),
                  pid > 0 else { return false }
            daemon = pid
            return true
        }
        try #require(wrotePid, "no pid in \(pidfile)\n\(readTextFile(setup.directory + "/pooler.log"))")
        // Let the harness watchdog kill it if this process dies; kill it here if the test fails.
        try writeTextFile(setup.directory + "/child.pid", "\(daemon)\n")
        defer {
            if Self.isAlive(daemon) { kill(daemon, SIGKILL) }
            unlink(setup.directory + "/child.pid")
        }
        #expect(Self.isAlive(daemon), "pid \(daemon) from the pidfile is not running")

        #expect(waitUntil(timeout: 10) { FreePort.isListening(port: port) }, "the daemon does not listen on \(port)")
        let client = try PQ.connect(PQ.conninfo(port: port, user: "app", password: "app", dbname: "app_db"))
        #expect(try client.exec("SELECT 1").scalar == "1")
        client.close()

        #expect(kill(daemon, SIGINT) == 0)
        let exited = waitUntil(timeout: 10) { !Self.isAlive(daemon) }
        #expect(exited, "the daemon (pid \(daemon)) did not exit after SIGINT")
        #expect(waitUntil(timeout: 5) { access(pidfile, F_OK) != 0 }, "the pidfile \(pidfile) was not removed")
        #expect(!FreePort.isListening(port: port))
    }
}
