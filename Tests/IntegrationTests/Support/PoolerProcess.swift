import Foundation
import Glibc

/// The binary under test (or PgBouncer, for checking the tests themselves),
/// started as `BIN INI` with its own port and run directory, and stopped with
/// SIGINT (then SIGTERM, then SIGKILL) by `stop()` or deinit.
///
///     let pooler = try PoolerProcess(settings: ["pool_mode = session"])
///     let client = try pooler.connect()                 // app/app to app_db
///     let admin = try pooler.connect(user: "postgres", database: "pgbouncer")
final class PoolerProcess: @unchecked Sendable {
    let cluster: PostgresCluster
    let runDirectory: String
    private(set) var port: Int
    private(set) var ini: PoolerIni
    private var pid: pid_t?
    private let lock = NSLock()

    var iniPath: String { runDirectory + "/pooler.ini" }
    var authFilePath: String { runDirectory + "/userlist.txt" }
    var logPath: String { ini.value("logfile") ?? runDirectory + "/pooler.log" }
    var stderrPath: String { runDirectory + "/stderr.log" }

    /// The pooler's log file (`logfile` in the ini).
    var logText: String { readTextFile(logPath) }
    /// What the process wrote to stdout/stderr.
    var outputText: String { readTextFile(stderrPath) }

    /// - settings: `key = value` lines for `[pgbouncer]`, replacing defaults.
    /// - databases: `[databases]` lines replacing the defaults (app_db and `*`).
    /// - userlist: auth_file contents replacing the cluster's userlist.
    /// - peers: `[peers]` lines.
    /// - users: `[users]` lines.
    /// - fixedPort: listen on this port (e.g. a second instance with so_reuseport).
    /// - prepare: called with the run directory before the pooler starts (to write
    ///   files such as an auth_hba_file there); returns more `key = value` lines.
    /// - fileLimit: the pooler's RLIMIT_NOFILE (soft and hard), set with prlimit.
    init(settings: [String] = [], databases: [String]? = nil, userlist: String? = nil,
         arguments: [String] = [], peers: [String] = [], users: [String] = [], fixedPort: Int? = nil,
         fileLimit: Int? = nil, prepare: ((_ runDirectory: String) throws -> [String])? = nil) throws {
        self.fileLimit = fileLimit
        let binary = try TestEnvironment.poolerBinary()
        cluster = try PostgresCluster.shared()
        let runAs = TestEnvironment.poolerRunAs
        runDirectory = try cluster.makeRunDirectory(owner: runAs)
        try writeTextFile(runDirectory + "/userlist.txt", userlist ?? cluster.userlist, mode: 0o600)
        try TestEnvironment.chown(runDirectory + "/userlist.txt", to: runAs)
        let settings = try settings + (prepare?(runDirectory) ?? [])
        port = 0
        ini = PoolerIni(databases: [])

        var failures: [String] = []
        for _ in 0..<(fixedPort == nil ? 3 : 1) {
            port = try fixedPort ?? FreePort.pick()
            ini = PoolerIni.standard(listenPort: port, runDirectory: runDirectory,
                                     authFile: runDirectory + "/userlist.txt", postgresPort: cluster.port)
            if let databases { ini.databases = databases }
            ini.peers = peers
            ini.users = users
            ini.apply(settings)
            try writeTextFile(iniPath, ini.render())
            switch try launch(binary: binary, arguments: arguments, runAs: runAs, sharedPort: fixedPort != nil) {
            case .ready:
                return
            case .portTaken(let why):
                failures.append(why)
            }
        }
        throw HarnessError("pooler could not bind a port after 3 attempts:\n" + failures.joined(separator: "\n"))
    }

    private let fileLimit: Int?

    deinit { stop() }

    private enum LaunchOutcome {
        case ready
        case portTaken(String)
    }

    private func launch(binary: String, arguments: [String], runAs: String?, sharedPort: Bool) throws -> LaunchOutcome {
        let limit = fileLimit.map { ["prlimit", "--nofile=\($0):\($0)", "--"] } ?? []
        let argv = TestEnvironment.command(limit + [binary] + arguments + [iniPath], asUser: runAs)
        unlink(stderrPath)
        unlink(logPath)
        let child = try Subprocess.spawn(argv, stdoutPath: stderrPath, stderrPath: stderrPath)
        lock.lock()
        pid = child
        lock.unlock()
        try? writeTextFile(runDirectory + "/child.pid", "\(child)\n")

        let deadline = Deadline(seconds: 15)
        while !deadline.hasPassed {
            if let status = Subprocess.exitStatus(of: child) {
                lock.lock()
                pid = nil
                lock.unlock()
                unlink(runDirectory + "/child.pid")
                let output = outputText + "\n" + logText
                if output.contains("Address already in use") || output.contains("EADDRINUSE") {
                    return .portTaken("port \(port): \(tail(output, lines: 3))")
                }
                throw HarnessError("""
                    pooler exited with status \(status) during start-up: \(argv.joined(separator: " "))
                    --- output ---
                    \(tail(outputText))
                    --- log ---
                    \(tail(logText))
                    --- ini ---
                    \(ini.render())
                    """)
            }
            // A shared port (so_reuseport) is already listening through the first
            // instance: this one is ready once it says so itself.
            if FreePort.isListening(port: port) && (!sharedPort || logText.contains("process up")) { return .ready }
            sleepSeconds(0.01)
        }
        stop()
        throw HarnessError("""
            pooler did not listen on 127.0.0.1:\(port) within 15 s
            --- output ---
            \(tail(outputText))
            --- log ---
            \(tail(logText))
            """)
    }

    /// True while the process has not exited.
    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let pid else { return false }
        if let status = Subprocess.exitStatus(of: pid) {
            self.pid = nil
            exitStatus = status
            return false
        }
        return true
    }

    /// The exit status (see `Subprocess.Output.status`) once the process has
    /// been seen to exit on its own; nil while it runs or after `stop()`.
    private(set) var exitStatus: Int32?

    /// The process id while it runs.
    var processID: pid_t? {
        lock.lock()
        defer { lock.unlock() }
        return pid
    }

    /// `pidfile` from the ini (nil when unset).
    var pidfilePath: String? { ini.value("pidfile") }

    /// Sends `signal` to the process; false if it has already exited.
    @discardableResult
    func send(signal: Int32) -> Bool {
        guard isRunning, let child = processID else { return false }
        return kill(child, signal) == 0
    }

    /// Waits up to `timeout` seconds for the process to exit on its own: its
    /// exit status, or nil if it still runs (or was stopped by `stop()`).
    func waitForExit(timeout: Double) -> Int32? {
        lock.lock()
        let child = pid
        let known = exitStatus
        lock.unlock()
        guard let child else { return known }
        guard let status = Subprocess.wait(for: child, timeout: timeout) else { return nil }
        lock.lock()
        if pid == child { pid = nil }
        exitStatus = status
        lock.unlock()
        unlink(runDirectory + "/child.pid")
        return status
    }

    /// SIGINT, SIGTERM, SIGKILL, with `grace` seconds after each. Idempotent.
    func stop(grace: Double = 2) {
        lock.lock()
        let child = pid
        pid = nil
        lock.unlock()
        guard let child else { return }
        Subprocess.terminate(child, signals: [SIGINT, SIGTERM], grace: grace)
        unlink(runDirectory + "/child.pid")
    }

    // MARK: clients

    func conninfo(user: String = "app", password: String? = nil, database: String = "app_db",
                  extra: [String: String] = [:]) -> String {
        PQ.conninfo(port: port, user: user, password: password ?? PostgresCluster.passwords[user],
                    dbname: database, extra: extra)
    }

    /// A libpq connection through the pooler (password defaults to the user's).
    func connect(user: String = "app", password: String? = nil, database: String = "app_db",
                 extra: [String: String] = [:], timeout: Double = 20) throws -> PQConnection {
        try PQ.connect(conninfo(user: user, password: password, database: database, extra: extra), timeout: timeout)
    }

    /// The admin console (`pgbouncer` database) as `user`.
    func admin(user: String = "postgres") throws -> PQConnection {
        try connect(user: user, database: "pgbouncer")
    }

    /// The log and output, for failure messages.
    var diagnostics: String {
        "--- pooler output (\(stderrPath)) ---\n\(tail(outputText))\n--- pooler log (\(logPath)) ---\n\(tail(logText))"
    }
}
