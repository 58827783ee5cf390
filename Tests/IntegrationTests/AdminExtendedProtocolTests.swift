import Foundation
import Glibc
import Testing

/// The admin console over the extended query protocol (psycopg 3 with
/// prepared statements, libpq PQexecParams), and the passwordless `pgbouncer`
/// admin login over the unix socket by the pooler's own OS user.
@Suite struct AdminExtendedProtocolTests {
    // MARK: extended protocol

    /// psycopg 3: `execute(..., prepare=True)` (named Parse/Bind/Execute),
    /// unnamed statements, an invalid command raising an error after which
    /// the connection still works.
    @Test func psycopgPreparedAdminCommands() throws {
        let venv = try PythonVenv.prepare(key: PsycopgTests.venvKey, requirements: PsycopgTests.requirements,
                                          probe: "import psycopg; psycopg.pq.version()")
        guard case .ready(let python) = venv else {
            if case .unavailable(let why) = venv { try Test.cancel("psycopg venv unavailable: \(why)") }
            return
        }
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        // A pool to list.
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        let script = pooler.runDirectory + "/psycopg_admin.py"
        try writeTextFile(script, Self.script)
        let run = try Subprocess.run([python, script, pooler.conninfo(user: "postgres", database: "pgbouncer")],
                                     timeout: 60)
        #expect(run.status == 0, "\(run)\n\(pooler.diagnostics)")
        #expect(run.stdout.contains("OK admin extended"), "\(run)")
        #expect(pooler.isRunning)
    }

    static let script = #"""
        import sys

        import psycopg

        dsn = sys.argv[1]


        def check(condition, message):
            if not condition:
                raise AssertionError(message)


        with psycopg.connect(dsn, autocommit=True) as conn:
            for attempt in range(3):
                cur = conn.execute("SHOW POOLS", prepare=True)
                columns = [d.name for d in cur.description]
                rows = cur.fetchall()
                check("database" in columns and "user" in columns, f"SHOW POOLS columns: {columns}")
                pools = [(r[columns.index("database")], r[columns.index("user")]) for r in rows]
                check(("app_db", "app") in pools, f"attempt {attempt}: SHOW POOLS rows: {rows}")

            cur = conn.execute("SHOW VERSION", prepare=True)
            version = cur.fetchall()
            check(len(version) == 1 and len(version[0]) == 1 and version[0][0], f"SHOW VERSION: {version}")
            cur = conn.execute("SHOW VERSION", prepare=False)
            check(cur.fetchall() == version, "unnamed SHOW VERSION differs")

            for prepare in (True, False):
                try:
                    conn.execute("SHOW NO_SUCH_THING", prepare=prepare).fetchall()
                except psycopg.Error as error:
                    print(f"error as expected (prepare={prepare}): {type(error).__name__} {error.sqlstate}: {error}")
                    check(error.sqlstate is not None, f"no SQLSTATE: the error did not come from the pooler: {error}")
                else:
                    raise AssertionError(f"SHOW NO_SUCH_THING succeeded (prepare={prepare})")
                check(conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE,
                      f"transaction status after the error: {conn.info.transaction_status}")
                row = conn.execute("SHOW VERSION", prepare=prepare).fetchone()
                check(row == version[0], f"SHOW VERSION after the error: {row}")

            cur = conn.execute("SHOW POOLS", prepare=True)
            check(len(cur.fetchall()) >= 1, "SHOW POOLS after the errors")
            # Several statements, one Sync, in pipeline mode.
            with conn.pipeline():
                a = conn.execute("SHOW VERSION", prepare=True)
                b = conn.execute("SHOW DATABASES", prepare=True)
            check(a.fetchone() == version[0], "pipelined SHOW VERSION")
            check(len(b.fetchall()) >= 1, "pipelined SHOW DATABASES")
        print("OK admin extended")
        """#

    /// libpq PQexecParams (Parse/Bind/Describe/Execute/Sync) on the admin console.
    @Test func libpqExecParamsOnAdminConsole() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")

        let admin = try pooler.admin()
        defer { admin.close() }
        let pools = try admin.execParams("SHOW POOLS", [])
        #expect(pools.columns.contains("database") && pools.columns.contains("cl_active"), "\(pools.columns)")
        #expect(!pools.rowIndices(where: ["database": "app_db", "user": "app"]).isEmpty,
                "SHOW POOLS rows: \(pools.rows)\n\(pooler.diagnostics)")
        let simple = try admin.exec("SHOW POOLS")
        #expect(simple.columns == pools.columns)

        let version = try admin.execParams("SHOW VERSION", [])
        #expect(version.rows.count == 1 && !(version.scalar ?? "").isEmpty, "\(version)")

        let error = #expect(throws: PQError.self) { try admin.execParams("SHOW NO_SUCH_THING", []) }
        #expect(error != nil)
        #expect(try admin.execParams("SHOW VERSION", []).scalar == version.scalar, "usable after an error")
        #expect(try admin.exec("SHOW VERSION").scalar == version.scalar)
    }

    // MARK: peer admin login

    static func unixAdminConninfo(_ pooler: PoolerProcess, user: String = "pgbouncer",
                                  password: String? = nil) -> String {
        PQ.conninfo(host: pooler.runDirectory, port: pooler.port, user: user, password: password, dbname: "pgbouncer")
    }

    static func requirePoolerIsUs() throws {
        if let runAs = TestEnvironment.poolerRunAs, runAs != TestEnvironment.currentUserName() {
            try Test.cancel("the pooler runs as \(runAs), not as the test's OS user")
        }
    }

    /// The pooler's OS user logs in as `pgbouncer` over the unix socket without
    /// a password, with admin rights, though admin_users is empty and
    /// auth_type is scram-sha-256; over TCP the same login is refused.
    @Test func pgbouncerUserOverUnixSocketNeedsNoPassword() throws {
        try Self.requirePoolerIsUs()
        let pooler = try PoolerProcess(settings: ["admin_users = ", "stats_users = ", "auth_type = scram-sha-256"])
        defer { pooler.stop() }

        let admin = try PQ.connect(Self.unixAdminConninfo(pooler))
        defer { admin.close() }
        #expect(try !(admin.exec("SHOW VERSION").scalar ?? "").isEmpty, "\(pooler.diagnostics)")
        #expect(try admin.exec("SHOW POOLS").columns.contains("database"))
        // An admin-only command (not just stats): the login has admin rights.
        #expect(try admin.exec("RELOAD").commandTag == "RELOAD")
        #expect(try admin.execParams("SHOW CLIENTS", []).columns.contains("user"))

        // Over TCP: no passwordless path; wrong password refused; no secret exists.
        let tcpNoPassword = Self.loginError(pooler.conninfo(user: "pgbouncer", password: nil, database: "pgbouncer"))
        #expect(tcpNoPassword != nil, "pgbouncer over TCP without a password must fail")
        let tcp = Self.loginError(PQ.conninfo(port: pooler.port, user: "pgbouncer", password: "pgbouncer",
                                              dbname: "pgbouncer"))
        #expect(tcp?.sqlstate == "28P01", "\(String(describing: tcp))\n\(pooler.diagnostics)")
        // Other users over the unix socket still need their password, and
        // need to be in admin_users/stats_users.
        let app = Self.loginError(Self.unixAdminConninfo(pooler, user: "app", password: "wrong"))
        #expect(app?.sqlstate == "28P01", "\(String(describing: app))")
        let notAllowed = Self.loginError(Self.unixAdminConninfo(pooler, user: "postgres", password: "postgres"))
        #expect(notAllowed?.message == "not allowed", "\(String(describing: notAllowed))")
    }

    /// With auth_type = trust, `pgbouncer` over TCP authenticates but is not an
    /// admin (admin_users is empty): only the unix-socket peer path grants it.
    @Test func pgbouncerUserOverTCPIsNotAnAdmin() throws {
        try Self.requirePoolerIsUs()
        let pooler = try PoolerProcess(settings: ["admin_users = ", "stats_users = ", "auth_type = trust"])
        defer { pooler.stop() }
        let tcp = Self.loginError(pooler.conninfo(user: "pgbouncer", password: nil, database: "pgbouncer"))
        #expect(tcp?.message == "not allowed", "\(String(describing: tcp))\n\(pooler.diagnostics)")
        let unix = try PQ.connect(Self.unixAdminConninfo(pooler))
        defer { unix.close() }
        #expect(try unix.exec("SHOW DATABASES").columns.contains("name"))
    }

    /// The peer admin path comes before auth_type = hba: a file rejecting
    /// everything does not lock the pooler's own OS user out.
    @Test func pgbouncerPeerLoginBypassesHBA() throws {
        try Self.requirePoolerIsUs()
        let pooler = try PoolerProcess(settings: ["admin_users = "]) { directory in
            try writeTextFile(directory + "/hba.conf", "local all all reject\nhost all all 0.0.0.0/0 reject\n")
            return ["auth_type = hba", "auth_hba_file = \(directory)/hba.conf"]
        }
        defer { pooler.stop() }
        let admin = try PQ.connect(Self.unixAdminConninfo(pooler))
        defer { admin.close() }
        #expect(try !(admin.exec("SHOW VERSION").scalar ?? "").isEmpty, "\(pooler.diagnostics)")
        let other = Self.loginError(Self.unixAdminConninfo(pooler, user: "postgres", password: "postgres"))
        #expect(other?.message == "login rejected", "\(String(describing: other))")
    }

    static func loginError(_ conninfo: String) -> PQError? {
        do {
            let connection = try PQ.connect(conninfo)
            defer { connection.close() }
            _ = try connection.exec("SHOW VERSION")
            return nil
        } catch let error as PQError {
            return error
        } catch {
            return PQError(message: "\(error)", sqlstate: nil, fullMessage: "\(error)")
        }
    }
}
