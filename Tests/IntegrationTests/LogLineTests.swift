import Foundation
import Glibc
import Testing

/// The pooler's log file has PgBouncer's lines for operator events, in PgBouncer's
/// format (`2026-01-02 03:04:05.678 UTC [pid] LOG C-0x...: db/user@addr:port ...`),
/// so that log scrapers and alerts written for PgBouncer keep working.
@Suite struct LogLineTests {
    /// `^timestamp zone [pid] ` of every line.
    private static func linePrefix(pid: pid_t) -> String {
        #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [A-Z]{2,5} \[\#(pid)\] "#
    }

    /// Lines of the log that match `pattern` (a regex).
    private static func lines(_ pooler: PoolerProcess, matching pattern: String) -> [String] {
        guard let regex = try? Regex(pattern) else { return [] }
        return pooler.logText.split(separator: "\n").filter { $0.contains(regex) }.map(String.init)
    }

    /// Waits up to `timeout` for a line matching `pattern`; records an issue if none comes.
    @discardableResult
    private static func expectLine(_ pooler: PoolerProcess, _ pattern: String, _ what: String, timeout: Double = 5,
                                   sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        var found: [String] = []
        _ = waitUntil(timeout: timeout, interval: 0.05) {
            found = lines(pooler, matching: pattern)
            return !found.isEmpty
        }
        #expect(!found.isEmpty, "no log line for \(what), wanted /\(pattern)/\n\(pooler.diagnostics)",
                sourceLocation: sourceLocation)
        return found
    }

    private static let clientPrefix = #"C-0x[0-9a-f]+: app_db/app@127\.0\.0\.1:\d+ "#

    @Test func operatorEventsAreLoggedLikePgBouncer() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let pid = try #require(pooler.processID)
        let start = Self.linePrefix(pid: pid)
        let socketPath = NSRegularExpression.escapedPattern(for: "\(pooler.runDirectory)/.s.PGSQL.\(pooler.port)")

        Self.expectLine(pooler, start + #"LOG process up: PgBouncer \d+\.\d+"#, "process up")
        Self.expectLine(pooler, start + #"LOG listening on 127\.0\.0\.1:\#(pooler.port)$"#, "the TCP listener")
        Self.expectLine(pooler, start + "LOG listening on unix:\(socketPath)$", "the unix socket")

        // A login and a normal disconnect, tagged with the same C-0x... and port.
        let client = try pooler.connect()
        #expect(try client.exec("SELECT 1").scalar == "1")
        client.close()
        let logins = Self.expectLine(pooler, start + "LOG " + Self.clientPrefix
                                     + "login attempt: db=app_db user=app tls=no replication=no$", "login attempt")
        let closes = Self.expectLine(pooler, start + "LOG " + Self.clientPrefix
                                     + #"closing because: client close request \(age=\d+s\)$"#, "client close")
        if let login = logins.first, let tagEnd = login.range(of: " login attempt") {
            let tag = login[login.index(login.firstIndex(of: "]")!, offsetBy: 6)..<tagEnd.lowerBound]  // "C-0x..: db/user@addr:port"
            #expect(closes.contains { $0.contains(tag + " closing because") },
                    "login and close should name the same client (\(tag)): \(closes)")
        }

        // A wrong password: a WARNING with the client's prefix.
        #expect(throws: PQError.self) { try pooler.connect(password: "wrong").close() }
        Self.expectLine(pooler, start + "WARNING " + Self.clientPrefix + "pooler error: password authentication failed",
                        "a failed login")

        // RELOAD from the admin console.
        let admin = try pooler.admin()
        try admin.exec("RELOAD")
        admin.close()
        Self.expectLine(pooler, start + "LOG RELOAD command issued$", "RELOAD")

        // SIGINT: PgBouncer's safe shutdown.
        #expect(pooler.send(signal: SIGINT))
        let status = pooler.waitForExit(timeout: 10)
        #expect(status == 0, "exit status after SIGINT: \(String(describing: status))\n\(pooler.diagnostics)")
        Self.expectLine(pooler, start + "LOG got SIGINT, shutting down", "SIGINT", timeout: 1)
    }

    /// stats_period = 1: PgBouncer 1.25 logs one total line per period (even
    /// with no traffic): `stats: N xacts/s, N queries/s, N client parses/s,
    /// N server parses/s, N binds/s, in N B/s, out N B/s, xact N us, query N us, wait N us`.
    @Test func statsLineEveryStatsPeriod() throws {
        let pooler = try PoolerProcess(settings: ["stats_period = 1"])
        defer { pooler.stop() }
        let pid = try #require(pooler.processID)
        let stats = Self.linePrefix(pid: pid) + #"LOG stats: (\d+) xacts/s, \d+ queries/s, \d+ client parses/s, "#
            + #"\d+ server parses/s, \d+ binds/s, in \d+ B/s, out \d+ B/s, xact \d+ us, query \d+ us, wait \d+ us$"#
        Self.expectLine(pooler, stats, "stats with no traffic yet", timeout: 4)

        let client = try pooler.connect()
        defer { client.close() }
        let busyUntil = monotonicSeconds() + 2.5
        while monotonicSeconds() < busyUntil {
            #expect(try client.exec("SELECT 1").scalar == "1")
            sleepSeconds(0.01)
        }
        let busy = Self.linePrefix(pid: pid) + #"LOG stats: [1-9]\d* xacts/s, [1-9]\d* queries/s, "#
        Self.expectLine(pooler, busy, "stats with non-zero xacts/s", timeout: 3)
        #expect(Self.lines(pooler, matching: #" LOG stats: "#).count >= 2, "\(pooler.diagnostics)")
    }
}
