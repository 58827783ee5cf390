import PoolerIO
import Testing

/// Sizing `workers = 0`: allowed CPUs capped by a cgroup CPU limit, and the parsing of
/// /proc/self/cgroup and the cgroup v1/v2 quota files.
@Suite struct CPUBudgetTests {
    @Test func workersAreTheAllowedCPUsCappedByTheQuotaRoundedUp() {
        #expect(CPUBudget.workers(allowedCPUs: 64, quota: nil) == 64)
        #expect(CPUBudget.workers(allowedCPUs: 64, quota: 2) == 2)
        #expect(CPUBudget.workers(allowedCPUs: 64, quota: 1.5) == 2)
        #expect(CPUBudget.workers(allowedCPUs: 64, quota: 0.25) == 1)
        #expect(CPUBudget.workers(allowedCPUs: 2, quota: 8) == 2)
        #expect(CPUBudget.workers(allowedCPUs: 0, quota: nil) == 1)
    }

    @Test func cgroupV2CPUMax() {
        #expect(CPUBudget.parseCPUMax("max 100000\n") == nil)
        #expect(CPUBudget.parseCPUMax("200000 100000\n") == 2)
        #expect(CPUBudget.parseCPUMax("150000 100000") == 1.5)
        #expect(CPUBudget.parseCPUMax("50000 200000\n") == 0.25)
        #expect(CPUBudget.parseCPUMax("") == nil)
        #expect(CPUBudget.parseCPUMax("garbage") == nil)
    }

    @Test func cgroupV1CFSQuota() {
        #expect(CPUBudget.parseCFS(quota: "-1\n", period: "100000\n") == nil)
        #expect(CPUBudget.parseCFS(quota: "300000\n", period: "100000\n") == 3)
        #expect(CPUBudget.parseCFS(quota: "50000", period: "100000") == 0.5)
        #expect(CPUBudget.parseCFS(quota: "100000", period: "0") == nil)
        #expect(CPUBudget.parseCFS(quota: "x", period: "100000") == nil)
    }

    @Test func cgroupPathsOfV2V1AndHybrid() {
        let v2 = CPUBudget.cgroupPaths("0::/kubepods/pod1/container2\n")
        #expect(v2.unified == "/kubepods/pod1/container2" && v2.cpu == nil)
        let v1 = CPUBudget.cgroupPaths("""
            12:memory:/docker/abc
            4:cpu,cpuacct:/docker/abc
            1:name=systemd:/docker/abc
            """)
        #expect(v1.unified == nil && v1.cpu == "/docker/abc")
        let hybrid = CPUBudget.cgroupPaths("9:name=systemd:/\n1:cpu:/limited\n0::/\n")
        #expect(hybrid.unified == "/" && hybrid.cpu == "/limited")
        // "cpuset" is not "cpu".
        #expect(CPUBudget.cgroupPaths("3:cpuset:/x\n").cpu == nil)
    }

    @Test func pathAndAncestorsDeepestFirst() {
        #expect(CPUBudget.pathAndAncestors("/a/b") == ["/a/b", "/a", "/"])
        #expect(CPUBudget.pathAndAncestors("/") == ["/"])
        #expect(CPUBudget.pathAndAncestors("") == ["/"])
    }

    /// On the machine running the tests: whatever the cgroup setup, the answer is either
    /// no limit or a positive number of CPUs.
    @Test func currentQuotaIsNilOrPositive() {
        if let quota = CPUBudget.currentQuota() { #expect(quota > 0) }
        let cpus = CPUBudget.allowedCPUs() ?? []
        #expect(!cpus.isEmpty && cpus == cpus.sorted())
    }
}
