import Testing

/// auth_user + auth_query: users missing from auth_file are looked up in PostgreSQL
/// and logged in with SCRAM (pass-through to the server, no password stored).
@Suite struct AuthQueryTests {
    /// An auth file that knows only the auth_user, with a plaintext password.
    static let userlist = "\"postgres\" \"postgres\"\n"

    @Test func userFromAuthQueryLogsInWithScram() throws {
        let pooler = try PoolerProcess(settings: ["auth_user = postgres", "default_pool_size = 2"], userlist: Self.userlist)
        defer { pooler.stop() }
        let client = try pooler.connect(user: "app", password: "app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
        // A second login is served from the cache and shares the pool.
        let second = try pooler.connect(user: "app", password: "app")
        defer { second.close() }
        #expect(try second.exec("SELECT 1").scalar == "1")
    }

    /// The auth database named by a host name: the lookup waits for the name to resolve
    /// off the event loop (SHOW DNS_HOSTS has it), then logs in; an auth database whose
    /// host does not resolve fails the login like an unknown user, and others carry on.
    @Test func authDatabaseByHostName() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(settings: ["auth_user = postgres"], databases: [
            "app_db = host=localhost port=\(cluster.port) dbname=app_db",
            "lost_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db auth_dbname=nowhere",
            "nowhere = host=no-such-host.invalid port=\(cluster.port) dbname=app_db",
        ], userlist: Self.userlist)
        defer { pooler.stop() }
        let client = try pooler.connect(user: "app", password: "app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
        let admin = try pooler.admin()
        defer { admin.close() }
        let hosts = try admin.exec("SHOW DNS_HOSTS")
        #expect(hosts.rows.contains { $0.first == "localhost" }, "\(hosts.rows)\n\(pooler.diagnostics)")
        do {
            let lost = try pooler.connect(user: "app", password: "app", database: "lost_db", timeout: 20)
            lost.close()
            Issue.record("logged in although the auth database's host does not resolve")
        } catch let error as PQError {
            #expect((error.message + error.fullMessage).contains("password authentication failed"), "\(error)")
        }
        #expect(pooler.logText.contains("could not resolve host \"no-such-host.invalid\""), "\(pooler.diagnostics)")
        #expect(try client.exec("SELECT 2").scalar == "2")
    }

    /// A client that sends on and on while its auth_query lookup runs (not logged in
    /// yet): the pooler holds at most about the backpressure limit of it, reading the
    /// rest only once the login goes on (it then fails on the garbage).
    @Test func inputDuringALookupIsBounded() throws {
        let pooler = try PoolerProcess(settings: [
            "auth_user = postgres",
            "auth_query = SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = $1 AND (SELECT pg_sleep(6) IS NOT NULL)",
        ], userlist: Self.userlist)
        defer { pooler.stop() }
        let client = try RawSocket(port: pooler.port)
        defer { client.close() }
        client.send(FrontendPacket.startup([("user", "app"), ("database", "app_db")]))
        let started = monotonicSeconds()
        _ = client.sendUntilStalled(Array(repeating: 0x41, count: 16 * 1_048_576), stall: 1)
        let admin = try pooler.admin()
        defer { admin.close() }
        let sockets = try admin.exec("SHOW SOCKETS")
        let held = sockets.rowIndices(where: ["user": "app"]).compactMap { Int(sockets.value($0, "pkt_avail") ?? "") }.max() ?? -1
        let during = monotonicSeconds() - started < 5 // the lookup sleeps 6 s
        #expect(!during || (held >= 0 && held < 1_048_576),
                "the pooler holds \(held) bytes from a client that is not logged in\n\(pooler.diagnostics)")
        #expect(during, "the flood outlasted the lookup; nothing was measured")
        let other = try pooler.connect(user: "app", password: "app", timeout: 20)
        defer { other.close() }
        #expect(try other.exec("SELECT 1", timeout: 10).scalar == "1")
    }

    @Test func wrongPasswordAndUnknownUserLookTheSame() throws {
        let pooler = try PoolerProcess(settings: ["auth_user = postgres"], userlist: Self.userlist)
        defer { pooler.stop() }
        var errors: [PQError] = []
        for (user, password) in [("app", "wrong"), ("nobody_here", "x")] {
            do {
                let client = try pooler.connect(user: user, password: password)
                client.close()
                Issue.record("\(user) logged in")
            } catch let error as PQError {
                errors.append(error)
            }
        }
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { ($0.message + $0.fullMessage).contains("password authentication failed") },
                "\(errors)\n\(pooler.diagnostics)")
        #expect(errors.allSatisfy { $0.sqlstate == nil || $0.sqlstate == "28P01" }, "\(errors)")
    }

    /// workers = 2: the auth_query cache is shared by the loops, so logins of one user
    /// on both loops look the secret up once (the lookup function counts its calls).
    @Test func lookupCacheIsSharedByTheLoops() throws {
        let cluster = try PostgresCluster.shared()
        let counter = TestEnvironment.uniqueName("lookups")
        _ = try cluster.superuserExec("""
            CREATE TABLE public.\(counter) (n int);
            CREATE FUNCTION public.\(counter)_fn(p_user text, OUT uname text, OUT phash text)
            RETURNS record LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS
            $$ BEGIN
                 INSERT INTO public.\(counter) VALUES (1);
                 SELECT rolname::text, rolpassword INTO uname, phash FROM pg_authid
                  WHERE rolname = p_user AND rolcanlogin;
               END $$
            """, database: "app_db")
        let pooler = try PoolerProcess(settings: ["workers = 2", "auth_user = postgres",
                                                  "auth_query = SELECT uname, phash FROM public.\(counter)_fn($1)"],
                                       userlist: Self.userlist)
        defer { pooler.stop() }
        var clients: [PQConnection] = []
        defer { clients.forEach { $0.close() } }
        for _ in 0..<6 {
            let client = try pooler.connect(user: "app", password: "app")
            #expect(try client.exec("SELECT current_user").scalar == "app")
            clients.append(client)
        }
        // The clients sit on both loops (each loop's id is 1 + its index, modulo 2).
        let admin = try pooler.connect(user: "postgres", password: "postgres", database: "pgbouncer")
        defer { admin.close() }
        let shown = try admin.exec("SHOW CLIENTS")
        let loops = Set(shown.rowIndices(where: ["user": "app"]).compactMap { Int(shown.value($0, "id") ?? "") }
            .map { ($0 - 1) % 2 })
        #expect(loops == [0, 1], "app clients on loops \(loops)\n\(pooler.diagnostics)")
        let calls = try cluster.superuserExec("SELECT count(*) FROM public.\(counter)", database: "app_db").scalar
        #expect(calls == "1", "auth_query ran \(calls ?? "?") times\n\(pooler.diagnostics)")
    }

    @Test func lookupThroughSecurityDefinerFunction() throws {
        let cluster = try PostgresCluster.shared()
        try cluster.superuserExec("""
            CREATE OR REPLACE FUNCTION public.pooler_lookup(p_user text, OUT uname text, OUT phash text)
            RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS
            $$ SELECT rolname::text, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
               FROM pg_authid WHERE rolname = p_user AND rolcanlogin $$
            """, database: "app_db")
        let pooler = try PoolerProcess(settings: ["auth_user = postgres",
                                                  "auth_query = SELECT uname, phash FROM public.pooler_lookup($1)"],
                                       userlist: Self.userlist)
        defer { pooler.stop() }
        let client = try pooler.connect(user: "app", password: "app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
    }
}
