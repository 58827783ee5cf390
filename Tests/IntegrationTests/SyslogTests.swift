import Glibc
import Testing

/// `syslog = 1`: log lines also go to syslog(3) with syslog_ident and
/// syslog_facility. The test binds its own listener at /dev/log, so it runs only
/// as root where no syslog daemon owns /dev/log (containers).
@Suite struct SyslogTests {
    @Test(.enabled(if: SyslogListener.unavailableReason == nil,
                   "needs root and no /dev/log (a syslog daemon's socket is left alone)"))
    func logLinesReachSyslogWithIdentAndFacility() throws {
        let listener = try SyslogListener()
        defer { listener.stop() }
        let pooler = try PoolerProcess(settings: ["syslog = 1", "syslog_ident = pooltest", "syslog_facility = daemon"])
        defer { pooler.stop() }
        let pid = try #require(pooler.processID)
        func context() -> String {
            "--- syslog datagrams ---\n\(listener.messages.suffix(20).joined(separator: "\n"))\n\(pooler.diagnostics)"
        }

        let tag = "pooltest[\(pid)]: "
        let up = waitUntil(timeout: 5) { listener.messages.contains { $0.contains(tag + "process up") } }
        #expect(up, "no `\(tag)process up` datagram\n\(context())")

        let client = try pooler.connect()
        #expect(try client.exec("SELECT 1").scalar == "1")
        client.close()
        let login = waitUntil(timeout: 5) {
            listener.messages.contains { $0.contains(tag) && $0.contains("login attempt: db=app_db user=app") }
        }
        #expect(login, "no login attempt in syslog\n\(context())")

        // daemon (3) * 8 + info (6) = <30>; warnings (4) are <28>.
        let info = listener.messages.first { $0.contains(tag + "process up") }
        #expect(info?.hasPrefix("<30>") == true, "LOG lines should be daemon.info (<30>): \(info ?? "none")")
        #expect(throws: PQError.self) { try pooler.connect(password: "wrong").close() }
        let warning = waitUntil(timeout: 5) {
            listener.messages.contains { $0.hasPrefix("<28>") && $0.contains(tag) && $0.contains("pooler error") }
        }
        #expect(warning, "a failed login should reach syslog as daemon.warning (<28>)\n\(context())")
        #expect(pooler.logText.contains("process up"), "the logfile is still written\n\(context())")
    }
}
