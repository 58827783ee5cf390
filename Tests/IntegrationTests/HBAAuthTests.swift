import Foundation
import Glibc
import Testing

/// `auth_type = hba` with an `auth_hba_file` written into the pooler's run
/// directory: per-line methods, first match wins, hostssl/hostnossl, local
/// lines (trust, peer), database and user lists, unmatched addresses, and a
/// changed file put in force by SIGHUP.
///
/// Logins that need a server connection without a client SCRAM proof (trust,
/// password, md5) use `md5app`, whose auth_file secret is its plaintext
/// password; `app` only has a SCRAM verifier there.
@Suite struct HBAAuthTests {
    // MARK: helpers

    /// A pooler with `auth_type = hba` reading `hba` from `<run dir>/hba.conf`;
    /// `files` are written next to it (for `@file` lists).
    static func pooler(hba: String, settings: [String] = [], files: [String: String] = [:]) throws -> PoolerProcess {
        try PoolerProcess(settings: settings) { directory in
            try writeTextFile(directory + "/hba.conf", hba)
            for (name, text) in files { try writeTextFile(directory + "/" + name, text) }
            return ["auth_type = hba", "auth_hba_file = \(directory)/hba.conf", "log_connections = 1"]
        }
    }

    /// What the pooler first answers to a StartupMessage over TCP: `R<code>`
    /// for an authentication request (0 ok/trust, 3 cleartext, 5 md5, 10 SASL)
    /// or `E:<message>` for an error.
    static func firstReply(_ pooler: PoolerProcess, user: String, database: String = "app_db") throws -> String {
        let socket = try RawSocket(port: pooler.port)
        defer { socket.close() }
        socket.send(FrontendPacket.startup([("user", user), ("database", database)]))
        guard let message = socket.readMessage(timeout: 10) else { return "nothing (closed: \(socket.peerClosed))" }
        switch message.typeCharacter {
        case "R":
            guard message.payload.count >= 4 else { return "R?" }
            let code = message.payload.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            return "R\(code)"
        case "E":
            return "E:" + (message.fields["M"] ?? "")
        default:
            return "\(message)"
        }
    }

    /// The error a connection attempt ends with, or nil if it connected (and ran SELECT 1).
    static func loginError(_ conninfo: String) -> PQError? {
        do {
            let connection = try PQ.connect(conninfo)
            defer { connection.close() }
            _ = try connection.exec("SELECT 1")
            return nil
        } catch let error as PQError {
            return error
        } catch {
            return PQError(message: "\(error)", sqlstate: nil, fullMessage: "\(error)")
        }
    }

    static func unixConninfo(_ pooler: PoolerProcess, user: String, password: String?,
                             database: String = "app_db") -> String {
        PQ.conninfo(host: pooler.runDirectory, port: pooler.port, user: user, password: password, dbname: database)
    }

    // MARK: host lines and methods

    /// Each method of a `host` line is what the client is asked for, and the
    /// login works (or fails) accordingly.
    @Test func hostLinesSelectTheirMethod() throws {
        let pooler = try Self.pooler(hba: """
            # TYPE  DATABASE  USER      ADDRESS        METHOD
            host    app_db    md5app    127.0.0.1/32   md5
            host    postgres  md5app    127.0.0.1/32   password
            host    app_db    app       127.0.0.1/32   scram-sha-256
            host    app_db    postgres  127.0.0.1/32   reject
            host    postgres  app       127.0.0.1/32   trust

            """)
        defer { pooler.stop() }

        #expect(try Self.firstReply(pooler, user: "md5app") == "R5", "md5 line\n\(pooler.diagnostics)")
        #expect(try Self.firstReply(pooler, user: "md5app", database: "postgres") == "R3", "password line")
        #expect(try Self.firstReply(pooler, user: "app") == "R10", "scram-sha-256 line")
        #expect(try Self.firstReply(pooler, user: "postgres") == "E:login rejected", "reject line")
        #expect(try Self.firstReply(pooler, user: "app", database: "postgres") == "R0", "trust line")

        // md5: right password in, wrong one out.
        let md5 = try pooler.connect(user: "md5app", password: "md5app")
        #expect(try md5.exec("SELECT current_user").scalar == "md5app")
        md5.close()
        let md5Wrong = Self.loginError(pooler.conninfo(user: "md5app", password: "wrong"))
        #expect(md5Wrong?.sqlstate == "28P01", "\(String(describing: md5Wrong))")

        // password (cleartext).
        let cleartext = try pooler.connect(user: "md5app", password: "md5app", database: "postgres")
        #expect(try cleartext.exec("SELECT current_user, current_database()").rows.first == ["md5app", "postgres"])
        cleartext.close()
        let cleartextWrong = Self.loginError(pooler.conninfo(user: "md5app", password: "wrong", database: "postgres"))
        #expect(cleartextWrong?.sqlstate == "28P01", "\(String(describing: cleartextWrong))")

        // scram-sha-256.
        let scram = try pooler.connect(user: "app", password: "app")
        #expect(try scram.exec("SELECT current_user").scalar == "app")
        scram.close()
        let scramWrong = Self.loginError(pooler.conninfo(user: "app", password: "wrong"))
        #expect(scramWrong?.sqlstate == "28P01", "\(String(describing: scramWrong))")

        // reject.
        let rejected = Self.loginError(pooler.conninfo(user: "postgres", password: "postgres"))
        #expect(rejected?.message == "login rejected", "\(String(describing: rejected))")
        #expect(rejected?.sqlstate == "28000", "\(String(describing: rejected))")
        #expect(pooler.isRunning)
    }

    /// The first matching line decides, even when a later line would allow the login.
    @Test func firstMatchingLineWins() throws {
        let pooler = try Self.pooler(hba: """
            host all md5app 127.0.0.1/32 reject
            host all all    127.0.0.1/32 trust
            host all md5app 127.0.0.1/32 trust
            host app_db all 0.0.0.0/0    reject

            """)
        defer { pooler.stop() }
        #expect(try Self.firstReply(pooler, user: "md5app") == "E:login rejected", "\(pooler.diagnostics)")
        // app matches line 2 (trust) before line 4 (reject): no password asked.
        #expect(try Self.firstReply(pooler, user: "app") == "R0")
        let error = Self.loginError(pooler.conninfo(user: "md5app", password: "md5app"))
        #expect(error?.message == "login rejected", "\(String(describing: error))")
    }

    /// A connection no line covers (the client's 127.0.0.1 is outside every
    /// network) is refused with "no authentication method is found".
    @Test func uncoveredAddressFindsNoMethod() throws {
        let pooler = try Self.pooler(hba: """
            host      all all 10.0.0.0/8               trust
            host      all all 127.0.0.2/32             trust
            host      all all 127.0.0.0 255.255.255.254 md5
            hostnossl all all ::1/128                  trust
            local     all all                          trust

            """)
        defer { pooler.stop() }
        // 127.0.0.0/31 covers 127.0.0.1: only the explicit-mask line matches.
        #expect(try Self.firstReply(pooler, user: "md5app") == "R5", "\(pooler.diagnostics)")

        let narrow = try Self.pooler(hba: """
            host  all all 10.0.0.0/8   trust
            host  all all 127.0.0.2/32 trust
            host  all all ::1/128      trust
            local all all              trust

            """)
        defer { narrow.stop() }
        #expect(try Self.firstReply(narrow, user: "md5app") == "E:no authentication method is found", "\(narrow.diagnostics)")
        let error = Self.loginError(narrow.conninfo(user: "md5app", password: "md5app"))
        #expect(error?.message == "no authentication method is found", "\(String(describing: error))")
        #expect(error?.sqlstate == "28000", "\(String(describing: error))")
        // The admin console is subject to the same rules.
        let admin = Self.loginError(narrow.conninfo(user: "postgres", password: "postgres", database: "pgbouncer"))
        #expect(admin?.message == "no authentication method is found", "\(String(describing: admin))")
        // An empty file (comments only) matches nothing.
        let empty = try Self.pooler(hba: "# nothing allowed\n\n")
        defer { empty.stop() }
        #expect(try Self.firstReply(empty, user: "app") == "E:no authentication method is found", "\(empty.diagnostics)")
    }

    /// Comma lists, quoted names and `@file` lists in the database and user columns.
    @Test func databaseAndUserLists() throws {
        let pooler = try Self.pooler(hba: """
            host "app_db",nosuchdb  md5app,"someone"  127.0.0.1/32 md5
            host postgres           @users.txt        127.0.0.1/32 password
            host sameuser           all               127.0.0.1/32 trust
            host all                all               127.0.0.1/32 reject

            """, files: ["users.txt": "# users allowed into postgres\nmd5app\nnobody, app\n"])
        defer { pooler.stop() }
        #expect(try Self.firstReply(pooler, user: "md5app") == "R5", "\(pooler.diagnostics)")
        #expect(try Self.firstReply(pooler, user: "app") == "E:login rejected", "app is not in line 1's list")
        #expect(try Self.firstReply(pooler, user: "md5app", database: "postgres") == "R3", "@users.txt")
        #expect(try Self.firstReply(pooler, user: "app", database: "postgres") == "R3", "@users.txt")
        #expect(try Self.firstReply(pooler, user: "postgres", database: "postgres") == "R0", "sameuser")
        #expect(try Self.firstReply(pooler, user: "postgres", database: "app_db") == "E:login rejected")

        let md5 = try pooler.connect(user: "md5app", password: "md5app")
        #expect(try md5.exec("SELECT current_database()").scalar == "app_db")
        md5.close()
        let listed = try pooler.connect(user: "md5app", password: "md5app", database: "postgres")
        #expect(try listed.exec("SELECT current_database()").scalar == "postgres")
        listed.close()
    }

    // MARK: hostssl / hostnossl

    /// hostssl lines match only TLS clients, hostnossl lines only plain ones.
    @Test func hostsslAndHostnosslFollowTheTransport() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try Self.pooler(hba: """
            hostssl   all app    127.0.0.1/32 scram-sha-256
            hostnossl all app    127.0.0.1/32 reject
            hostnossl all md5app 127.0.0.1/32 md5
            hostssl   all md5app 127.0.0.1/32 reject

            """, settings: TestCertificates.clientTLSSettings(mode: "allow", certificates.server))
        defer { pooler.stop() }

        func tlsConninfo(user: String, password: String) -> String {
            PQ.conninfo(port: pooler.port, user: user, password: password, dbname: "app_db",
                        extra: TestCertificates.libpqTLS(mode: "verify-full", rootCertificate: certificates.ca))
        }

        let tls = try PQ.connect(tlsConninfo(user: "app", password: "app"))
        #expect(try tls.exec("SELECT current_user").scalar == "app", "\(pooler.diagnostics)")
        tls.close()
        let plainApp = Self.loginError(pooler.conninfo(user: "app", password: "app"))
        #expect(plainApp?.message == "login rejected", "\(String(describing: plainApp))\n\(pooler.diagnostics)")

        let plain = try pooler.connect(user: "md5app", password: "md5app")
        #expect(try plain.exec("SELECT current_user").scalar == "md5app")
        plain.close()
        let tlsMD5 = Self.loginError(tlsConninfo(user: "md5app", password: "md5app"))
        #expect(tlsMD5?.message == "login rejected", "\(String(describing: tlsMD5))")
        #expect(pooler.isRunning)
    }

    // MARK: local lines

    /// `local` lines govern the unix socket only; `host` lines do not apply there.
    @Test func localTrustAppliesToTheUnixSocketOnly() throws {
        let pooler = try Self.pooler(hba: """
            local all md5app              trust
            local all app                 scram-sha-256
            host  all all    127.0.0.1/32 reject

            """)
        defer { pooler.stop() }
        // trust: no password needed (a wrong one is never asked for).
        let trusted = try PQ.connect(Self.unixConninfo(pooler, user: "md5app", password: "wrong"))
        #expect(try trusted.exec("SELECT current_user").scalar == "md5app", "\(pooler.diagnostics)")
        trusted.close()
        let scram = try PQ.connect(Self.unixConninfo(pooler, user: "app", password: "app"))
        #expect(try scram.exec("SELECT current_user").scalar == "app")
        scram.close()
        let scramWrong = Self.loginError(Self.unixConninfo(pooler, user: "app", password: "wrong"))
        #expect(scramWrong?.sqlstate == "28P01", "\(String(describing: scramWrong))")
        // No local line for postgres.
        let unmatched = Self.loginError(Self.unixConninfo(pooler, user: "postgres", password: "postgres"))
        #expect(unmatched?.message == "no authentication method is found", "\(String(describing: unmatched))")
        // Over TCP the local lines do not match and the host line rejects.
        let tcp = Self.loginError(pooler.conninfo(user: "md5app", password: "md5app"))
        #expect(tcp?.message == "login rejected", "\(String(describing: tcp))")
    }

    /// `local ... peer`: the connecting OS user (root here, like the pooler)
    /// must be the user logging in. `app` is refused; `root` passes the peer
    /// check but has no role or secret, so its login fails later.
    @Test func localPeerRequiresTheSameOSUser() throws {
        try Self.requirePoolerIsUs()
        let me = TestEnvironment.currentUserName() ?? "?"
        let pooler = try Self.pooler(hba: """
            local all all peer
            host  all all 127.0.0.1/32 trust

            """)
        defer { pooler.stop() }
        let app = Self.loginError(Self.unixConninfo(pooler, user: "app", password: "app"))
        #expect(app?.message == #"peer authentication failed for user "app""#,
                "\(String(describing: app))\n\(pooler.diagnostics)")
        #expect(app?.sqlstate == "28000", "\(String(describing: app))")

        let same = Self.loginError(Self.unixConninfo(pooler, user: me, password: nil))
        #expect(same != nil, "there is no role \(me), so the login must fail somewhere")
        #expect(same?.message.contains("peer authentication failed") == false,
                "OS user \(me) logging in as \(me) passes the peer check: \(String(describing: same))")

        // The same users over TCP hit the trust line.
        let tcp = try pooler.connect(user: "md5app", password: "wrong")
        #expect(try tcp.exec("SELECT current_user").scalar == "md5app")
        tcp.close()
    }

    /// `local ... peer map=NAME` with auth_ident_file: the OS user logs in as the
    /// database users the map lists for it, and only those.
    @Test func peerWithIdentMap() throws {
        try Self.requirePoolerIsUs()
        let me = TestEnvironment.currentUserName() ?? "?"
        let pooler = try PoolerProcess(settings: []) { directory in
            try writeTextFile(directory + "/hba.conf", "local all all peer map=staff\nhost all all 127.0.0.1/32 trust\n")
            try writeTextFile(directory + "/ident.conf", "# map  system  database\nstaff  \(me)  md5app\nother  \(me)  app\n")
            return ["auth_type = hba", "auth_hba_file = \(directory)/hba.conf",
                    "auth_ident_file = \(directory)/ident.conf"]
        }
        defer { pooler.stop() }
        // md5app's plaintext userlist entry serves the server login after peer auth.
        let mapped = try PQ.connect(Self.unixConninfo(pooler, user: "md5app", password: nil))
        #expect(try mapped.exec("SELECT current_user").scalar == "md5app", "\(pooler.diagnostics)")
        mapped.close()
        // app is in another map only: refused.
        let refused = Self.loginError(Self.unixConninfo(pooler, user: "app", password: "app"))
        #expect(refused?.message == #"peer authentication failed for user "app""#, "\(String(describing: refused))")
        #expect(try pooler.admin().exec("SHOW CONFIG").row(where: ["key": "auth_ident_file"])?["value"]
                == pooler.runDirectory + "/ident.conf")
    }

    @Test func unknownMapInTheHBAFileIsAStartupError() throws {
        let me = TestEnvironment.currentUserName() ?? "?"
        #expect(throws: (any Error).self) {
            let pooler = try PoolerProcess(settings: []) { directory in
                try writeTextFile(directory + "/hba.conf", "local all all peer map=nosuchmap\n")
                try writeTextFile(directory + "/ident.conf", "staff \(me) md5app\n")
                return ["auth_type = hba", "auth_hba_file = \(directory)/hba.conf",
                        "auth_ident_file = \(directory)/ident.conf"]
            }
            pooler.stop()
        }
    }

    // MARK: reload

    /// A changed hba file is read on SIGHUP and applies to new connections;
    /// an established connection is not affected.
    @Test func sighupReloadsTheHBAFile() throws {
        let pooler = try Self.pooler(hba: "host all all 127.0.0.1/32 md5\n")
        defer { pooler.stop() }
        let hbaPath = pooler.runDirectory + "/hba.conf"
        #expect(try Self.firstReply(pooler, user: "md5app") == "R5", "\(pooler.diagnostics)")
        let established = try pooler.connect(user: "md5app", password: "md5app")
        defer { established.close() }

        try writeTextFile(hbaPath, """
            host all md5app 127.0.0.1/32 reject
            host all all    127.0.0.1/32 trust

            """)
        #expect(pooler.send(signal: SIGHUP))
        var reply = ""
        let changed = waitUntil(timeout: 10, interval: 0.05) {
            reply = (try? Self.firstReply(pooler, user: "md5app")) ?? "?"
            return reply == "E:login rejected"
        }
        #expect(changed, "after SIGHUP md5app should be rejected; last reply \(reply)\n\(pooler.diagnostics)")
        #expect(try Self.firstReply(pooler, user: "app") == "R0")
        #expect(try established.exec("SELECT 'still here'").scalar == "still here")
        let error = Self.loginError(pooler.conninfo(user: "md5app", password: "md5app"))
        #expect(error?.message == "login rejected", "\(String(describing: error))")

        // A broken file is refused whole: the previous rules stay in force.
        try writeTextFile(hbaPath, "host all all 127.0.0.1/32 trust\nbogus line here\n")
        #expect(pooler.send(signal: SIGHUP))
        let logged = waitUntil(timeout: 10, interval: 0.05) { pooler.logText.contains("config reload failed") }
        #expect(logged, "\(pooler.diagnostics)")
        #expect(try Self.firstReply(pooler, user: "md5app") == "E:login rejected")
        #expect(pooler.isRunning)
    }

    /// The pooler's OS user must be ours for peer checks to be meaningful.
    static func requirePoolerIsUs() throws {
        if let runAs = TestEnvironment.poolerRunAs, runAs != TestEnvironment.currentUserName() {
            try Test.cancel("the pooler runs as \(runAs), not as the test's OS user")
        }
    }
}
