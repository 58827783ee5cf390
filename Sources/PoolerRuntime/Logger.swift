import CLinuxShims
import Glibc

/// PgBouncer-style log lines: `2026-11-25 15:30:00.123 UTC [pid] LOG message`,
/// to the logfile and to stderr (unless quiet or daemonized).
final class Logger {
    enum Level: Int { case error = 0, warning, info, debug }

    private var file: UnsafeMutablePointer<FILE>?
    var toStderr: Bool
    var verbose: Int
    /// Re-read after daemonizing: the child has a new pid.
    var pid = getpid()
    var logConnections = true

    init(path: String, toStderr: Bool, verbose: Int) {
        self.toStderr = toStderr
        self.verbose = verbose
        reopen(path: path)
    }

    private var syslogOpen = false

    /// syslog = 1: lines also go to syslog with syslog_ident and syslog_facility.
    func configureSyslog(enabled: Bool, ident: String, facility: String) {
        if syslogOpen { pooler_closelog() }
        syslogOpen = enabled
        if enabled { pooler_openlog(ident, facility) }
    }

    func reopen(path: String) {
        lock.withLock {
            if let file { fclose(file) }
            file = path.isEmpty ? nil : fopen(path, "a")
        }
    }

    func error(_ message: @autoclosure () -> String) { write(.error, "ERROR", message()) }
    func warning(_ message: @autoclosure () -> String) { write(.warning, "WARNING", message()) }
    func info(_ message: @autoclosure () -> String) { write(.info, "LOG", message()) }
    func connection(_ message: @autoclosure () -> String) { write(.info, "LOG", message()) }
    func debug(_ message: @autoclosure () -> String) {
        if verbose > 0 { write(.debug, "DEBUG", message()) }
    }

    /// Lines come from every event loop's thread; one at a time.
    private let lock = Lock()

    private func write(_ level: Level, _ label: String, _ message: String) {
        lock.withLock { writeLocked(level, label, message) }
    }

    private func writeLocked(_ level: Level, _ label: String, _ message: String) {
        if syslogOpen { pooler_syslog(Int32(level.rawValue), message) }
        var line = timestampText()
        line.reserveCapacity(line.utf8.count + message.utf8.count + 32)
        line += " ["
        line += pidText
        line += "] "
        line += label
        line += " "
        line += message
        line += "\n"
        if let file {
            fputs(line, file)
            fflush(file)
        }
        if toStderr { fputs(line, stderr) }
    }

    private var pidText: String {
        if cachedPid != pid {
            cachedPid = pid
            cachedPidText = String(pid)
        }
        return cachedPidText
    }
    private var cachedPid: pid_t = -1
    private var cachedPidText = ""
    /// `YYYY-MM-DD HH:MM:SS` of the last line's second: formatted once per second.
    private var cachedSecond = -1
    private var cachedSecondText = ""

    private func timestampText() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != cachedSecond {
            cachedSecond = ts.tv_sec
            cachedSecondText = Self.secondText(ts.tv_sec)
        }
        let millis = Int(ts.tv_nsec / 1_000_000)
        var text = cachedSecondText
        text += millis < 10 ? ".00" : millis < 100 ? ".0" : "."
        text += String(millis)
        text += " UTC"
        return text
    }

    private static func pad(_ v: Int32, _ width: Int = 2) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    private static func secondText(_ seconds: Int) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday)) "
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec))"
    }
}
