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
