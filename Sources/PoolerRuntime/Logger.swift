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

    /// The line being written, reused: a login logs two lines, and building them as
    /// Strings cost more than the rest of the login's bookkeeping.
    private var line: [UInt8] = []

    private func writeLocked(_ level: Level, _ label: String, _ message: String) {
        if syslogOpen { pooler_syslog(Int32(level.rawValue), message) }
        guard file != nil || toStderr else { return }
        line.removeAll(keepingCapacity: true)
        appendTimestamp()
        line.append(contentsOf: " [".utf8)
        if cachedPid != pid {
            cachedPid = pid
            cachedPidText = Array(String(pid).utf8)
        }
        line.append(contentsOf: cachedPidText)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: label.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: message.utf8)
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { bytes in
            if let file {
                fwrite(bytes.baseAddress, 1, bytes.count, file)
                fflush(file)
            }
            if toStderr { fwrite(bytes.baseAddress, 1, bytes.count, stderr) }
        }
    }

    private var cachedPid: pid_t = -1
    private var cachedPidText: [UInt8] = []
    /// `YYYY-MM-DD HH:MM:SS` of the last line's second: formatted once per second.
    private var cachedSecond = -1
    private var cachedSecondText: [UInt8] = []

    /// `YYYY-MM-DD HH:MM:SS.mmm UTC`
    private func appendTimestamp() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != cachedSecond {
            cachedSecond = ts.tv_sec
            cachedSecondText = Array(Self.secondText(ts.tv_sec).utf8)
        }
        let millis = Int(ts.tv_nsec / 1_000_000)
        line.append(contentsOf: cachedSecondText)
        line.append(UInt8(ascii: "."))
        line.append(UInt8(ascii: "0") + UInt8(millis / 100))
        line.append(UInt8(ascii: "0") + UInt8(millis / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(millis % 10))
        line.append(contentsOf: " UTC".utf8)
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
