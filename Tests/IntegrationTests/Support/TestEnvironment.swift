import Foundation
import Glibc

/// Where the tools are and who runs them; every knob the harness reads from
/// the environment is here.
///
/// - `POOLER_BIN`: the pooler binary (default: `pooler` next to the test bundle).
/// - `POOLER_RUN_AS`: OS user that runs the pooler (via setpriv); PgBouncer refuses root.
/// - `PG_BIN`: PostgreSQL server binaries (default /usr/lib/postgresql/15/bin).
/// - `POOLER_KEEP_TMP=1`: keep the cluster and pooler directories after the run.
/// - `POOLER_SKIP_EXACT_COLUMNS=1`: admin tests skip exact column lists
///   (for running the suite against older PgBouncer releases).
enum TestEnvironment {
    static let variables = ProcessInfo.processInfo.environment

    static func variable(_ name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    static func flag(_ name: String) -> Bool {
        guard let value = variable(name) else { return false }
        return !["0", "false", "no"].contains(value.lowercased())
    }

    static let isRoot = geteuid() == 0

    static var pgBin: String { variable("PG_BIN") ?? "/usr/lib/postgresql/15/bin" }

    /// OS user that runs initdb/postgres: `postgres` when we are root (Postgres
    /// refuses to run as root), otherwise ourselves.
    static var postgresOSUser: String? { isRoot ? "postgres" : nil }

    static var poolerRunAs: String? { variable("POOLER_RUN_AS") }

    static var keepTemporaryFiles: Bool { flag("POOLER_KEEP_TMP") }

    static var skipExactColumnLists: Bool { flag("POOLER_SKIP_EXACT_COLUMNS") }

    /// The binary under test: `$POOLER_BIN`, else `pooler` in the directory of
    /// the running test executable (SwiftPM builds it there because the test
    /// target depends on the executable product).
    static func poolerBinary() throws -> String {
        if let path = variable("POOLER_BIN") {
            guard access(path, X_OK) == 0 else { throw HarnessError("POOLER_BIN=\(path) is not executable") }
            return path
        }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let candidate = (executable as NSString).deletingLastPathComponent + "/pooler"
        guard access(candidate, X_OK) == 0 else {
            throw HarnessError("no pooler binary at \(candidate); build the `pooler` product or set POOLER_BIN")
        }
        return candidate
    }

    /// `argv` prefixed so that it runs as `user` (nil: as ourselves).
    static func command(_ argv: [String], asUser user: String?) -> [String] {
        guard let user, user != currentUserName() else { return argv }
        return ["setpriv", "--reuid", user, "--regid", user, "--init-groups"] + argv
    }

    static func currentUserName() -> String? {
        guard let entry = getpwuid(geteuid()) else { return nil }
        return String(cString: entry.pointee.pw_name)
    }

    /// Creates the OS user (as shared/bench/lib.sh does) when it is missing.
    static func ensureOSUser(_ user: String) throws {
        if getpwnam(user) != nil { return }
        let result = try Subprocess.run(["useradd", "--system", "--user-group",
                                         "--home-dir", "/var/lib/postgresql", "--shell", "/bin/bash", user])
        guard result.status == 0 || getpwnam(user) != nil else {
            throw HarnessError("useradd \(user) failed: \(result.stderr)")
        }
    }

    /// Gives `path` to `user` (no-op for nil).
    static func chown(_ path: String, to user: String?) throws {
        guard let user else { return }
        guard let entry = getpwnam(user) else { throw HarnessError("no OS user \(user)") }
        guard Glibc.chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw HarnessError("chown \(path) to \(user): \(String(cString: strerror(errno)))")
        }
    }

    private static let counterLock = NSLock()
    nonisolated(unsafe) private static var counter = 0

    /// A lower-case name unique in this test process and across processes
    /// sharing the machine, usable as an SQL identifier.
    static func uniqueName(_ prefix: String) -> String {
        counterLock.lock()
        counter += 1
        let n = counter
        counterLock.unlock()
        return "\(prefix)_\(getpid())_\(n)"
    }
}

/// Reads a text file, or "" when it does not exist (for log excerpts in messages).
func readTextFile(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

func writeTextFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    try text.write(toFile: path, atomically: false, encoding: .utf8)
    chmod(path, mode)
}

/// The last `lines` lines of a text, for failure messages.
func tail(_ text: String, lines: Int = 30) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
}
