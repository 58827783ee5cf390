import Testing

/// pgbench's select-only workload through the pooler, in both query protocols.
@Suite struct PgbenchTests {
    @Test(arguments: ["simple", "extended"])
    func selectOnlyRunsWithoutFailures(protocolMode: String) throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let cluster = pooler.cluster
        let database = try cluster.createDatabase(prefix: "bench")

        // Initialise directly on Postgres; only the benchmark goes through the pooler.
        let initialise = try ClientTools.pgbench(
            ["-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", "app", database],
            password: "app")
        try #require(initialise.status == 0, "pgbench -i failed: \(initialise)")

        let run = try ClientTools.pgbench(
            ["-n", "-S", "-M", protocolMode, "-c", "20", "-j", "2", "-t", "200",
             "-h", "127.0.0.1", "-p", String(pooler.port), "-U", "app", database],
            password: "app")
        let report = PgbenchReport(output: run.stdout)
        #expect(run.status == 0, "pgbench -M \(protocolMode) failed: \(run)\n\(pooler.diagnostics)")
        #expect(report.processed == 4000, "\(run)")
        #expect(report.expected == 4000)
        #expect(report.failed ?? 0 == 0, "failed transactions: \(run.stdout)")
        #expect(!run.stderr.contains("error"), "pgbench reported errors: \(run.stderr)")
    }
}
