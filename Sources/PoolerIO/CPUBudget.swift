import CLinuxShims
import Glibc

/// How many CPUs' worth of time this process may use, for sizing `workers = 0`: the CPUs
/// in its affinity mask (a cpuset or taskset), capped by the smallest CFS quota on its
/// cgroup path (a container's CPU limit: cgroup v2 `cpu.max`, or v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us`), as Go's GOMAXPROCS and the JVM do. A pod
/// limited to 2 CPUs on a 64-core node then runs 2 loops, not 64.
public enum CPUBudget {
    /// The CPUs this process may run on (its affinity mask, which a container's cpuset or
    /// taskset narrows), in order; nil if the kernel would not say.
    public static func allowedCPUs() -> [Int32]? {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = cpus.withUnsafeMutableBufferPointer { pooler_allowed_cpus($0.baseAddress, Int32($0.count)) }
        guard count > 0 else { return nil }
        return Array(cpus.prefix(Int(count)))
    }

    /// Loops for `workers = 0`: the allowed CPUs, at most the quota rounded up, at least 1.
    public static func workers(allowedCPUs: Int, quota: Double?) -> Int {
        var count = max(allowedCPUs, 1)
        if let quota, quota > 0 { count = min(count, Int(quota.rounded(.up))) }
        return max(count, 1)
    }

    /// cgroup v2 `cpu.max`: "max 100000" (no limit) or "QUOTA PERIOD" in microseconds.
    public static func parseCPUMax(_ text: String) -> Double? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 1, fields[0] != "max", let quota = Double(fields[0]), quota > 0 else { return nil }
        let period = fields.count >= 2 ? Double(fields[1]) ?? 100_000 : 100_000
        return period > 0 ? quota / period : nil
    }

    /// cgroup v1: `cpu.cfs_quota_us` (-1: no limit) over `cpu.cfs_period_us`.
    public static func parseCFS(quota: String, period: String) -> Double? {
        guard let quota = Double(quota.trimmingWhitespace), quota > 0,
              let period = Double(period.trimmingWhitespace), period > 0 else { return nil }
        return quota / period
    }

    /// From /proc/self/cgroup: the unified (v2) path ("0::/path") and the path in the v1
    /// hierarchy that has the cpu controller ("N:cpu,cpuacct:/path").
    public static func cgroupPaths(_ procSelfCgroup: String) -> (unified: String?, cpu: String?) {
        var unified: String?
        var cpu: String?
        for line in procSelfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                unified = String(parts[2])
            } else if parts[1].split(separator: ",").contains("cpu") {
                cpu = String(parts[2])
            }
        }
        return (unified, cpu)
    }

    /// A cgroup path and its ancestors, deepest first: "/a/b" → ["/a/b", "/a", "/"].
    public static func pathAndAncestors(_ path: String) -> [String] {
        var components = path.split(separator: "/").map(String.init)
        var result: [String] = []
        while true {
            result.append("/" + components.joined(separator: "/"))
            if components.isEmpty { break }
            components.removeLast()
        }
        return result
    }

    /// The smallest quota on the process's cgroup path, read from /sys/fs/cgroup; nil
    /// when there is none or the files are not there.
    public static func currentQuota() -> Double? {
        guard let text = Syscall.readSmallFile("/proc/self/cgroup") else { return nil }
        let paths = cgroupPaths(text)
        var smallest: Double?
        func consider(_ quota: Double?) {
            if let quota { smallest = min(smallest ?? quota, quota) }
        }
        if let unified = paths.unified {
            // Pure v2 mounts the hierarchy at /sys/fs/cgroup; hybrid at .../unified.
            let root = Syscall.readSmallFile("/sys/fs/cgroup/cgroup.controllers") != nil ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified"
            for path in pathAndAncestors(unified) {
                if let text = Syscall.readSmallFile(root + (path == "/" ? "" : path) + "/cpu.max") { consider(parseCPUMax(text)) }
            }
        }
        if let cpu = paths.cpu {
            for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
                var found = false
                for path in pathAndAncestors(cpu) {
                    let directory = root + (path == "/" ? "" : path)
                    if let quota = Syscall.readSmallFile(directory + "/cpu.cfs_quota_us"),
                       let period = Syscall.readSmallFile(directory + "/cpu.cfs_period_us") {
                        found = true
                        consider(parseCFS(quota: quota, period: period))
                    }
                }
                if found { break }
            }
        }
        return smallest
    }
}

private extension String {
    var trimmingWhitespace: Substring {
        var text = Substring(self)
        while let last = text.last, last == " " || last == "\n" || last == "\t" { text.removeLast() }
        while let first = text.first, first == " " || first == "\n" || first == "\t" { text.removeFirst() }
        return text
    }
}
