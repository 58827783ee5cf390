import Testing

/// Client authentication against the auth_file, and database lookup.
@Suite struct AuthTests {
    @Test func scramLoginSucceeds() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect(user: "app", password: "app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
    }

    @Test func scramWrongPasswordIsRejected() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let error = #expect(throws: PQError.self) { try pooler.connect(user: "app", password: "wrong") }
        #expect(error?.sqlstate == "28P01", "\(String(describing: error))")
        #expect(error?.message == #"password authentication failed for user "app""#, "\(String(describing: error))")
    }

    @Test func md5LoginWithPlaintextSecretSucceeds() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = md5"])
        defer { pooler.stop() }
        let client = try pooler.connect(user: "md5app", password: "md5app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "md5app")
    }

    @Test func md5WrongPasswordIsRejected() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = md5"])
        defer { pooler.stop() }
        let error = #expect(throws: PQError.self) { try pooler.connect(user: "md5app", password: "wrong") }
        #expect(error?.sqlstate == "28P01", "\(String(describing: error))")
        #expect(error?.message == #"password authentication failed for user "md5app""#,
                "\(String(describing: error))")
    }

    /// auth_type=md5 with a SCRAM verifier in the auth_file: the pooler must
    /// fall back to SCRAM (an md5 challenge cannot be checked against it).
    @Test func md5AuthTypeUsesScramForScramSecrets() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = md5"])
        defer { pooler.stop() }
        let client = try pooler.connect(user: "app", password: "app")
        defer { client.close() }
        #expect(try client.exec("SELECT current_user").scalar == "app")
        let error = #expect(throws: PQError.self) { try pooler.connect(user: "app", password: "wrong") }
        #expect(error != nil)
    }

    @Test func unknownDatabaseIsReported() throws {
        let postgresPort = try PostgresCluster.shared().port
        let pooler = try PoolerProcess(databases: ["app_db = host=127.0.0.1 port=\(postgresPort) dbname=app_db"])
        defer { pooler.stop() }
        let error = #expect(throws: PQError.self) { try pooler.connect(database: "nosuch") }
        #expect(error?.message.contains("no such database: nosuch") == true, "\(String(describing: error))")
        // Known databases still work.
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT current_database()").scalar == "app_db")
    }

    /// libpq's default sslmode=prefer sends SSLRequest first; without TLS
    /// configured the pooler answers 'N' and the login continues in plaintext.
    @Test func sslRequestIsDeclinedWithoutTLS() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect(extra: ["sslmode": "prefer"])
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
    }
}
