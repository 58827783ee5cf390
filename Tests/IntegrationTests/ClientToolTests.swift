import Testing

/// Stock PostgreSQL client programs through the pooler.
@Suite struct ClientToolTests {
    /// psql runs a script with a transaction, a multi-statement query and
    /// \gset variables through transaction pooling.
    @Test func psqlScriptRunsThroughPooler() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("psql")
        let script = """
            \\set ON_ERROR_STOP on
            CREATE TABLE \(table) (n int);
            BEGIN;
            INSERT INTO \(table) SELECT generate_series(1, 10);
            COMMIT;
            SELECT count(*) AS rows FROM \(table) \\gset
            SELECT :rows * 2 AS doubled; SELECT 'done';
            DROP TABLE \(table);
            """
        let file = pooler.runDirectory + "/script.sql"
        try writeTextFile(file, script + "\n")
        let run = try ClientTools.psql(
            ["-h", "127.0.0.1", "-p", String(pooler.port), "-U", "app", "-d", "app_db", "-tA", "-f", file],
            password: "app")
        #expect(run.status == 0, "\(run)\n\(pooler.diagnostics)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("20"), "\(run)")
        #expect(lines.contains("done"), "\(run)")
    }
}
