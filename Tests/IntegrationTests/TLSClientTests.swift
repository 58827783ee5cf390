import Foundation
import Glibc
import Testing

/// TLS between clients and the pooler: verified server certificates, sslmode
/// require, auth_type = cert, SCRAM channel binding, PostgreSQL 17 direct TLS,
/// load, garbage instead of a handshake, and certificates replaced by SIGHUP.
@Suite struct TLSClientTests {
    // MARK: helpers

    /// A libpq connection through the pooler over TLS, verified as "localhost".
    static func tlsConnect(_ pooler: PoolerProcess, mode: String = "verify-full", root: String?,
                           client: TestCertificates.Pair? = nil, user: String = "app", password: String? = "app",
                           database: String = "app_db", extra: [String: String] = [:],
                           timeout: Double = 20) throws -> PQConnection {
        var parameters = TestCertificates.libpqTLS(mode: mode, rootCertificate: root, client: client)
        for (key, value) in extra { parameters[key] = value }
        return try PQ.connect(PQ.conninfo(port: pooler.port, user: user, password: password, dbname: database,
                                          extra: parameters), timeout: timeout)
    }

    /// The error a connection attempt ends with, or nil if it connected.
    static func connectError(_ body: () throws -> PQConnection) -> PQError? {
        do {
            let connection = try body()
            connection.close()
            return nil
        } catch let error as PQError {
            return error
        } catch {
            return PQError(message: "\(error)", sqlstate: nil, fullMessage: "\(error)")
        }
    }

    /// The admin console over the pooler's unix socket (no TLS needed there).
    static func unixAdmin(_ pooler: PoolerProcess) throws -> PQConnection {
        try PQ.connect(PQ.conninfo(host: pooler.runDirectory, port: pooler.port, user: "postgres",
                                   password: "postgres", dbname: "pgbouncer"))
    }

    /// SHOW CLIENTS rows of `user` in `database`, as dictionaries.
    static func clientRows(_ admin: PQConnection, user: String = "app", database: String = "app_db") throws
        -> [[String: String]] {
        let result = try admin.exec("SHOW CLIENTS")
        return result.rowIndices(where: ["user": user, "database": database]).map { index in
            var values: [String: String] = [:]
            for (position, column) in result.columns.enumerated() { values[column] = result.rows[index][position] ?? "" }
            return values
        }
    }

    static func conninfo(_ pooler: PoolerProcess, root: String?, mode: String = "verify-full",
                         extra: [String: String] = [:]) -> String {
        var parameters = TestCertificates.libpqTLS(mode: mode, rootCertificate: root)
        for (key, value) in extra { parameters[key] = value }
        return pooler.conninfo(extra: parameters)
    }

    // MARK: verified server certificate

    /// psql with sslmode=verify-full accepts the pooler's certificate (CN and
    /// SAN localhost, signed by the CA it trusts); SHOW CLIENTS reports the
    /// TLS version and cipher of a TLS client; a client trusting another CA
    /// refuses the pooler.
    @Test func verifyFullClientConnectsAndShowClientsReportsTLS() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "prefer", certificates.server))
        defer { pooler.stop() }

        let psql = try ClientTools.psql(["-d", Self.conninfo(pooler, root: certificates.ca), "-At",
                                         "-c", "SELECT 'tls ok'", "-c", "\\conninfo"], password: nil, timeout: 30)
        #expect(psql.status == 0, "\(psql)\n\(pooler.diagnostics)")
        #expect(psql.stdout.contains("tls ok"), "\(psql)")
        #expect(psql.stdout.contains("SSL connection (protocol: TLSv1."), "psql \\conninfo: \(psql.stdout)")

        let client = try Self.tlsConnect(pooler, root: certificates.ca)
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
        let plain = try pooler.connect()  // sslmode=disable: allowed under prefer
        defer { plain.close() }
        #expect(try plain.exec("SELECT 2").scalar == "2")

        let admin = try Self.unixAdmin(pooler)
        defer { admin.close() }
        let rows = try Self.clientRows(admin)
        #expect(rows.count == 2, "SHOW CLIENTS app/app_db rows: \(rows)")
        let tlsValues = rows.map { $0["tls"] ?? "<no tls column>" }
        #expect(tlsValues.filter { $0.hasPrefix("TLSv1.") }.count == 1,
                "one TLS client (tls = protocol/cipher) and one plain client (empty tls): \(tlsValues)")
        #expect(tlsValues.filter { $0.isEmpty }.count == 1, "tls values: \(tlsValues)")

        let wrongCA = try ClientTools.psql(["-d", Self.conninfo(pooler, root: certificates.otherCA), "-At",
                                            "-c", "SELECT 1"], password: nil, timeout: 30)
        #expect(wrongCA.status != 0, "a client trusting another CA must refuse the pooler: \(wrongCA)")
        #expect(wrongCA.stderr.contains("certificate verify failed"), "\(wrongCA)")
        #expect(pooler.isRunning)
    }

    /// A large result over TLS with a large pkt_buf (so the buffer toward the client may
    /// hold more than the 256 KiB the pooler encrypts at a time): when the socket takes
    /// all that was encrypted, the rest of the plaintext is encrypted and sent too
    /// (it waited for a write interest nobody had asked for, and the server, paused for
    /// backpressure, never sent more: the client hung).
    @Test func largeResultOverTLSWithLargePktBuf() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require", certificates.server)
                                       + ["pkt_buf = 65536"])
        defer { pooler.stop() }
        let client = try Self.tlsConnect(pooler, root: certificates.ca)
        defer { client.close() }
        for _ in 0..<3 {
            let total = try client.exec("SELECT sum(length(r)) FROM (SELECT repeat('x', 1048576) AS r FROM generate_series(1, 64)) s",
                                        timeout: 30).scalar
            #expect(total == "67108864")
            let rows = try client.exec("SELECT repeat('y', 1048576) FROM generate_series(1, 48)", timeout: 30)
            #expect(rows.rows.count == 48 && rows.rows.allSatisfy { $0.first??.count == 1_048_576 },
                    "\(rows.rows.count) rows\n\(pooler.diagnostics)")
        }
    }

    /// A pooler serving an expired certificate still starts and serves
    /// sslmode=require clients (which do not verify), but verify-full clients
    /// refuse it.
    @Test func expiredCertificateIsRefusedByVerifyingClients() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require",
                                                                                    certificates.expiredServer))
        defer { pooler.stop() }
        #expect(pooler.isRunning)

        let error = Self.connectError { try Self.tlsConnect(pooler, root: certificates.ca) }
        #expect(error != nil, "verify-full must refuse an expired certificate")
        if let error {
            #expect(error.fullMessage.contains("certificate verify failed") || error.fullMessage.contains("expired"),
                    "\(error)")
        }
        let unverified = try Self.tlsConnect(pooler, mode: "require", root: nil)
        defer { unverified.close() }
        #expect(try unverified.exec("SELECT 'still serving'").scalar == "still serving", "\(pooler.diagnostics)")
    }

    // MARK: sslmode require

    /// client_tls_sslmode = require: a plaintext TCP client gets "SSL required"
    /// (08P01); a unix-socket client logs in without TLS; a TLS client works.
    @Test func requireRefusesPlainTCPButNotUnixSockets() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require", certificates.server))
        defer { pooler.stop() }

        let error = Self.connectError { try pooler.connect() }
        #expect(error?.message.contains("SSL required") == true, "plain TCP client: \(String(describing: error))")
        #expect(error?.sqlstate == "08P01", "\(String(describing: error))")

        let unix = try PQ.connect(PQ.conninfo(host: pooler.runDirectory, port: pooler.port, user: "app",
                                              password: "app", dbname: "app_db"))
        defer { unix.close() }
        #expect(try unix.exec("SELECT 'unix ok'").scalar == "unix ok", "\(pooler.diagnostics)")

        let tls = try Self.tlsConnect(pooler, root: certificates.ca)
        defer { tls.close() }
        #expect(try tls.exec("SELECT 'tls ok'").scalar == "tls ok")

        let admin = try Self.unixAdmin(pooler)
        defer { admin.close() }
        let tlsValues = try Self.clientRows(admin).map { $0["tls"] ?? "<no tls column>" }
        #expect(tlsValues.sorted { $0.count < $1.count }.map { $0.hasPrefix("TLSv1.") } == [false, true],
                "unix client without TLS, TCP client with: \(tlsValues)")
    }

    // MARK: auth_type = cert

    /// auth_type = cert: a client certificate signed by client_tls_ca_file whose
    /// CN is the user logs in without a password; a certificate for another
    /// name, or none, gets "certificate authentication failed".
    @Test func certificateAuthentication() throws {
        let certificates = try TestCertificates.shared()
        // The pooler logs into PostgreSQL as app by itself, so it needs the password.
        let userlist = AuthFile.render([("app", "app"), ("postgres", "postgres")])
        let pooler = try PoolerProcess(
            settings: ["auth_type = cert"]
                + TestCertificates.clientTLSSettings(mode: "require", certificates.server, caFile: certificates.ca),
            userlist: userlist)
        defer { pooler.stop() }

        let app = try Self.tlsConnect(pooler, root: certificates.ca, client: certificates.appClient, password: nil)
        defer { app.close() }
        #expect(try app.exec("SELECT current_user").scalar == "app", "\(pooler.diagnostics)")

        let mallory = Self.connectError {
            try Self.tlsConnect(pooler, root: certificates.ca, client: certificates.malloryClient, password: nil)
        }
        #expect(mallory?.message.contains("certificate authentication failed") == true,
                "CN=mallory logging in as app: \(String(describing: mallory))")
        #expect(mallory?.sqlstate == "28000", "\(String(describing: mallory))")

        let withoutCertificate = Self.connectError { try Self.tlsConnect(pooler, root: certificates.ca, password: nil) }
        #expect(withoutCertificate?.message.contains("certificate authentication failed") == true,
                "no client certificate: \(String(describing: withoutCertificate))")

        // A password does not replace the certificate.
        let passwordOnly = Self.connectError { try Self.tlsConnect(pooler, root: certificates.ca, password: "app") }
        #expect(passwordOnly != nil, "a password without a certificate must not log in under auth_type = cert")
        #expect(try app.exec("SELECT 'still here'").scalar == "still here")
    }

    /// client_tls_sslmode = verify-ca: clients must present a certificate from
    /// client_tls_ca_file (and still authenticate with their password).
    @Test func verifyCARequiresAClientCertificate() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(
            mode: "verify-ca", certificates.server, caFile: certificates.ca))
        defer { pooler.stop() }

        let withCertificate = try Self.tlsConnect(pooler, root: certificates.ca, client: certificates.appClient)
        defer { withCertificate.close() }
        #expect(try withCertificate.exec("SELECT current_user").scalar == "app", "\(pooler.diagnostics)")

        let wrongPassword = Self.connectError {
            try Self.tlsConnect(pooler, root: certificates.ca, client: certificates.appClient, password: "wrong")
        }
        #expect(wrongPassword?.sqlstate == "28P01", "a certificate does not replace the password: \(String(describing: wrongPassword))")

        let withoutCertificate = Self.connectError { try Self.tlsConnect(pooler, root: certificates.ca) }
        #expect(withoutCertificate != nil, "verify-ca must refuse a client without a certificate")
        #expect(pooler.isRunning)
    }

    // MARK: SCRAM channel binding

    /// libpq's channel_binding=require insists on SCRAM-SHA-256-PLUS, which the
    /// pooler offers to TLS clients; without TLS libpq refuses by itself.
    @Test func scramChannelBindingOverTLS() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "prefer", certificates.server))
        defer { pooler.stop() }

        let bound = try Self.tlsConnect(pooler, root: certificates.ca, extra: ["channel_binding": "require"])
        defer { bound.close() }
        #expect(try bound.exec("SELECT current_user").scalar == "app", "\(pooler.diagnostics)")
        let wrongPassword = Self.connectError {
            try Self.tlsConnect(pooler, root: certificates.ca, password: "wrong", extra: ["channel_binding": "require"])
        }
        #expect(wrongPassword?.sqlstate == "28P01", "SCRAM-PLUS with a wrong password: \(String(describing: wrongPassword))")

        let admin = try Self.unixAdmin(pooler)
        defer { admin.close() }
        let rows = try Self.clientRows(admin)
        #expect(rows.count == 1 && rows[0]["tls"]?.hasPrefix("TLSv1.") == true, "SHOW CLIENTS: \(rows)")

        let plain = Self.connectError { try pooler.connect(extra: ["channel_binding": "require"]) }
        #expect(plain?.fullMessage.contains("channel binding") == true,
                "libpq refuses channel_binding=require without TLS: \(String(describing: plain))")
    }

    // MARK: direct TLS

    /// PostgreSQL 17's sslnegotiation=direct (psycopg's bundled libpq 18) starts
    /// with a ClientHello carrying ALPN "postgresql"; a ClientHello without that
    /// ALPN is closed after the handshake.
    @Test func directTLSNeedsALPN() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require", certificates.server))
        defer { pooler.stop() }

        let venv = try PythonVenv.prepare(key: PsycopgTests.venvKey, requirements: PsycopgTests.requirements,
                                          probe: "import psycopg; psycopg.pq.version()")
        if case .ready(let python) = venv {
            let script = pooler.runDirectory + "/direct_tls.py"
            try writeTextFile(script, """
                import sys
                import psycopg
                print("libpq", psycopg.pq.version())
                with psycopg.connect(sys.argv[1]) as conn:
                    row = conn.execute("SELECT current_user, 40 + 2").fetchone()
                    print("OK", row[0], row[1], conn.pgconn.ssl_in_use)

                """)
            let dsn = Self.conninfo(pooler, root: certificates.ca, extra: ["sslnegotiation": "direct"])
            let run = try Subprocess.run([python, script, dsn], timeout: 60)
            #expect(run.status == 0, "\(run)\n\(pooler.diagnostics)")
            #expect(run.stdout.contains("OK app 42 True"), "\(run)")
        } else if case .unavailable(let why) = venv {
            Issue.record("psycopg venv unavailable, direct TLS with ALPN not checked: \(why)")
        }

        // No ALPN: the pooler completes the handshake, sees no "postgresql" and closes.
        let noALPN = try Subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:\(pooler.port)",
                                         "-servername", "localhost", "-quiet"], timeout: 10)
        #expect(!noALPN.timedOut, "the pooler must close a direct TLS connection without ALPN: \(noALPN)\n\(pooler.diagnostics)")
        #expect(noALPN.stderr.contains("CN = localhost"), "the handshake itself should complete: \(noALPN)")

        // Control: with ALPN postgresql the same client is kept, waiting for a startup packet.
        let withALPN = try Subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:\(pooler.port)",
                                           "-servername", "localhost", "-alpn", "postgresql", "-quiet"],
                                          timeout: 1.5)
        #expect(withALPN.timedOut, "with ALPN postgresql the connection should stay open: \(withALPN)")
        #expect(pooler.isRunning)
    }

    // MARK: load

    static let loadClients = 50
    static let loadTransactions = 20

    /// 50 TLS clients, all connected at once, run 20 transactions each through
    /// 5 server connections, each reading its own uncommitted row on the
    /// backend that inserted it.
    @Test func fiftyTLSClientsShareFiveServers() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: ["default_pool_size = 5"]
            + TestCertificates.clientTLSSettings(mode: "require", certificates.server))
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("tlsload")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (client_id int NOT NULL, seq int NOT NULL, backend_pid int NOT NULL)")

        let barrier = Barrier(parties: Self.loadClients)
        let ca = certificates.ca
        let failures: [String?] = Threads.run(count: Self.loadClients) { client in
            let connection: PQConnection
            do {
                connection = try Self.tlsConnect(pooler, root: ca, timeout: 60)
            } catch {
                barrier.arriveAndWait()
                return "client \(client): connect failed: \(error)"
            }
            defer { connection.close() }
            guard barrier.arriveAndWait(timeout: 90) else { return "client \(client): not all clients connected" }
            do {
                for seq in 0..<Self.loadTransactions {
                    if let problem = try Self.transaction(on: connection, table: table, client: client, seq: seq) {
                        return "client \(client), transaction \(seq): \(problem)"
                    }
                }
                return nil
            } catch {
                return "client \(client): \(error)"
            }
        }
        let failed = failures.compactMap { $0 }
        #expect(failed.isEmpty, "\(failed.count) clients failed, first: \(failed.prefix(3))\n\(pooler.diagnostics)")
        let total = try owner.exec("SELECT count(*), count(DISTINCT client_id) FROM \(table)").rows.first
        #expect(total == [String(Self.loadClients * Self.loadTransactions), String(Self.loadClients)])

        let admin = try Self.unixAdmin(pooler)
        defer { admin.close() }
        let pool = try admin.poolRow()
        let servers = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"].map { Int(pool[$0] ?? "") ?? 0 }
        #expect(servers.reduce(0, +) <= 5 && servers.reduce(0, +) >= 1, "SHOW POOLS: \(pool)")
    }

    /// One transaction; a description of what went wrong, or nil.
    private static func transaction(on connection: PQConnection, table: String, client: Int, seq: Int) throws -> String? {
        try connection.exec("BEGIN")
        let inserted: PQResult
        let check: PQResult
        if client % 2 == 1 {
            inserted = try connection.execParams(
                "INSERT INTO \(table) VALUES ($1, $2, pg_backend_pid()) RETURNING backend_pid",
                [String(client), String(seq)])
            check = try connection.execParams(
                "SELECT count(*), max(seq), pg_backend_pid() FROM \(table) WHERE client_id = $1", [String(client)])
        } else {
            inserted = try connection.exec(
                "INSERT INTO \(table) VALUES (\(client), \(seq), pg_backend_pid()) RETURNING backend_pid")
            check = try connection.exec(
                "SELECT count(*), max(seq), pg_backend_pid() FROM \(table) WHERE client_id = \(client)")
        }
        try connection.exec("COMMIT")
        let expected: [String?] = [String(seq + 1), String(seq), inserted.scalar]
        if check.rows.first != expected {
            return "expected (count, max seq, backend) = \(expected), got \(check.rows)"
        }
        return nil
    }

    // MARK: garbage instead of a handshake

    static let sslRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]

    /// After answering 'S' the pooler expects a ClientHello; garbage closes
    /// that connection, and TLS clients running at the same time carry on.
    @Test func garbageAfterSSLRequestIsClosed() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require", certificates.server))
        defer { pooler.stop() }

        let clients = try (0..<4).map { _ in try Self.tlsConnect(pooler, root: certificates.ca) }
        defer { clients.forEach { $0.close() } }
        let workers = clients.enumerated().map { index, client in
            Background { () throws -> Int in
                for round in 0..<60 {
                    let value = index * 1000 + round
                    let answer = try client.execParams("SELECT $1::int", [String(value)], timeout: 20).scalar
                    guard answer == String(value) else { throw HarnessError("client \(index) got \(String(describing: answer)) for \(value)") }
                }
                return 60
            }
        }

        var outcomes: [String] = []
        for (name, garbage) in [("text", Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)),
                                ("zeros", [UInt8](repeating: 0, count: 600)),
                                ("startup packet", FrontendPacket.startup([("user", "app"), ("database", "app_db")]))] {
            let socket = try RawSocket(port: pooler.port)
            defer { socket.close() }
            socket.send(Self.sslRequest)
            let answer = socket.readBytes(1)
            #expect(answer == [UInt8(ascii: "S")], "\(name): answer to SSLRequest: \(answer)")
            socket.send(garbage)
            _ = socket.readUntilClosed(timeout: 5)
            #expect(socket.peerClosed, "\(name): garbage instead of a ClientHello must close the connection\n\(pooler.diagnostics)")
            outcomes.append("\(name): closed=\(socket.peerClosed)")
        }

        // Plaintext sent in the same packet as SSLRequest (CVE-2021-23214) is refused too.
        let injected = try RawSocket(port: pooler.port)
        defer { injected.close() }
        injected.send(Self.sslRequest + FrontendPacket.startup([("user", "app"), ("database", "app_db")]))
        let reply = injected.readUntilClosed(timeout: 5)
        #expect(injected.peerClosed, "SSLRequest followed by plaintext in one packet: \(reply)")
        #expect(!reply.contains { $0.type == UInt8(ascii: "R") }, "no authentication may start: \(reply)")

        for (index, worker) in workers.enumerated() {
            let result = worker.wait(timeout: 60)
            #expect((try? result?.get()) == 60, "TLS client \(index): \(String(describing: result))\n\(pooler.diagnostics)")
        }
        let fresh = try Self.tlsConnect(pooler, root: certificates.ca)
        defer { fresh.close() }
        #expect(try fresh.exec("SELECT 'after garbage'").scalar == "after garbage")
        #expect(pooler.isRunning, "\(outcomes)")
    }

    // MARK: reload

    /// SIGHUP with a new client_tls_cert_file/key_file: new connections get the
    /// new certificate (trusted through the other CA), the open one keeps working.
    @Test func sighupSwapsTheCertificateForNewConnections() throws {
        let certificates = try TestCertificates.shared()
        let pooler = try PoolerProcess(settings: TestCertificates.clientTLSSettings(mode: "require", certificates.server))
        defer { pooler.stop() }

        let old = try Self.tlsConnect(pooler, root: certificates.ca)
        defer { old.close() }
        #expect(try old.exec("SELECT 'before reload'").scalar == "before reload")
        let refusedBefore = Self.connectError { try Self.tlsConnect(pooler, root: certificates.otherCA) }
        #expect(refusedBefore != nil, "the other CA must not verify the first certificate")

        var ini = pooler.ini
        ini.apply(TestCertificates.clientTLSSettings(mode: "require", certificates.otherServer))
        try writeTextFile(pooler.iniPath, ini.render())
        #expect(pooler.send(signal: SIGHUP))

        var lastError: PQError?
        let switched = waitUntil(timeout: 10, interval: 0.1) {
            lastError = Self.connectError { try Self.tlsConnect(pooler, root: certificates.otherCA) }
            return lastError == nil
        }
        #expect(switched, "after SIGHUP a client trusting the other CA should connect: \(String(describing: lastError))\n\(pooler.diagnostics)")

        let new = try Self.tlsConnect(pooler, root: certificates.otherCA)
        defer { new.close() }
        #expect(try new.exec("SELECT 'new certificate'").scalar == "new certificate")
        let oldCA = Self.connectError { try Self.tlsConnect(pooler, root: certificates.ca) }
        #expect(oldCA?.fullMessage.contains("certificate verify failed") == true,
                "a client trusting only the first CA must now refuse: \(String(describing: oldCA))")

        #expect(try old.exec("SELECT 'after reload'").scalar == "after reload", "\(pooler.diagnostics)")
        try old.exec("BEGIN")
        #expect(try old.execParams("SELECT $1::text", ["in a transaction"]).scalar == "in a transaction")
        try old.exec("COMMIT")
    }
}
