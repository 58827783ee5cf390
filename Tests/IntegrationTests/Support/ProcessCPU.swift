import Glibc

/// CPU seconds a process has used (utime + stime from /proc/PID/stat): to tell a
/// spinning event loop (a whole core) from an idle one (next to nothing).
func processCPUSeconds(_ pid: pid_t) -> Double {
    let stat = readTextFile("/proc/\(pid)/stat")
    guard let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds `pid` uses during about a second of wall time.
func processCPUSecondsOverASecond(_ pid: pid_t) -> Double {
    let before = processCPUSeconds(pid)
    _ = waitUntil(timeout: 1) { false }
    return processCPUSeconds(pid) - before
}
