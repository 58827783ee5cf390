import Foundation
import Testing

/// psycopg 3 (its own bundled libpq) through transaction pooling with
/// server-side prepared statements for every query (prepare_threshold=0)
/// and pipeline mode.
@Suite struct PsycopgTests {
    static let requirements = ["psycopg[binary]>=3.1,<4"]
    /// Names the venv; change it when the requirements change.
    static let venvKey = "psycopg3-binary-v1"

    @Test func preparedAndPipelinedQueriesFromSeveralConnections() throws {
        let venv = try PythonVenv.prepare(key: Self.venvKey, requirements: Self.requirements,
                                          probe: "import psycopg; psycopg.pq.version()")
        guard case .ready(let python) = venv else {
            if case .unavailable(let why) = venv { try Test.cancel("psycopg venv unavailable: \(why)") }
            return
        }
        let pooler = try PoolerProcess(settings: ["default_pool_size = 2"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("psy")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (worker int NOT NULL, n int NOT NULL, note text, PRIMARY KEY (worker, n))")

        let script = pooler.runDirectory + "/psycopg_check.py"
        try writeTextFile(script, Self.script)
        let dsn = pooler.conninfo()
        let run = try Subprocess.run([python, script, dsn, table, "8"], timeout: 120)
        #expect(run.status == 0, "\(run)\n\(pooler.diagnostics)")
        let okLine = run.stdout.split(separator: "\n").first { $0.hasPrefix("OK ") }
        #expect(okLine == "OK workers=8 rows=400", "\(run)")

        let rows = try owner.exec("SELECT count(*), count(DISTINCT worker) FROM \(table)").rows.first
        #expect(rows == ["400", "8"])
        let stats = try pooler.admin().exec("SHOW STATS")
        if let row = stats.rowIndices(where: ["database": "app_db"]).first {
            let parses = Int(stats.value(row, "total_client_parse_count") ?? "") ?? 0
            #expect(parses >= 8, "psycopg with prepare_threshold=0 should Parse named statements; saw \(parses)")
        }
    }

    static let script = #"""
        import sys
        import threading
        import traceback

        import psycopg
        from psycopg import errors

        dsn, table, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
        failures = []
        inserted = [0] * workers


        def check(condition, message):
            if not condition:
                raise AssertionError(message)


        def worker(i):
            try:
                with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as conn:
                    for r in range(20):
                        # Explicit transactions: prepared statements land on
                        # whichever server the pooler picks.
                        with conn.transaction():
                            row = conn.execute("SELECT %s::int + %s::int, %s::text", (i, r, f"w{i}")).fetchone()
                            check(row == (i + r, f"w{i}"), f"worker {i} round {r}: {row}")
                            conn.execute(f"INSERT INTO {table} (worker, n, note) VALUES (%s, %s, %s)",
                                         (i, r, f"tx{r}"))
                        # Autocommit: one statement per transaction.
                        row = conn.execute("SELECT %s::int * %s::int", (i, r)).fetchone()
                        check(row == (i * r,), f"worker {i} round {r} autocommit: {row}")
                    # Pipeline mode: many queries, one sync, results in order.
                    with conn.pipeline():
                        cursors = [conn.execute("SELECT %s::int * 1000 + %s::int", (i, k)) for k in range(30)]
                    for k, cur in enumerate(cursors):
                        row = cur.fetchone()
                        check(row == (i * 1000 + k,), f"worker {i} pipeline {k}: {row}")

                    # Pipeline with a transaction and executemany.
                    with conn.pipeline():
                        with conn.transaction():
                            with conn.cursor() as cur:
                                cur.executemany(f"INSERT INTO {table} (worker, n, note) VALUES (%s, %s, %s)",
                                                [(i, 100 + k, f"many{k}") for k in range(30)])
                            count = conn.execute(f"SELECT count(*) FROM {table} WHERE worker = %s", (i,))
                    check(count.fetchone() == (50,), f"worker {i}: count after executemany")

                    # An error inside a pipeline is raised, and the connection
                    # stays usable afterwards.
                    try:
                        with conn.pipeline():
                            conn.execute("SELECT %s::int / 0", (i,))
                            conn.execute("SELECT 'never'")
                        raise AssertionError(f"worker {i}: division by zero not raised")
                    except errors.DivisionByZero:
                        pass
                    row = conn.execute("SELECT %s::text", (f"after-error-{i}",)).fetchone()
                    check(row == (f"after-error-{i}",), f"worker {i}: after error {row}")

                    # Server-side errors from prepared statements keep their SQLSTATE.
                    try:
                        conn.execute(f"INSERT INTO {table} (worker, n) VALUES (%s, %s)", (i, 0))
                        raise AssertionError(f"worker {i}: duplicate key not raised")
                    except errors.UniqueViolation:
                        pass
                    row = conn.execute(f"SELECT count(*) FROM {table} WHERE worker = %s", (i,)).fetchone()
                    inserted[i] = row[0]
            except Exception as error:  # noqa: BLE001 - reported to the Swift test
                failures.append(f"worker {i}: {type(error).__name__}: {error}\n{traceback.format_exc()}")


        threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        if any(thread.is_alive() for thread in threads):
            failures.append("some workers did not finish within 90 s")
        if failures:
            print("FAILED")
            for failure in failures:
                print(failure)
            sys.exit(1)
        print(f"OK workers={workers} rows={sum(inserted)}")
        """#
}
