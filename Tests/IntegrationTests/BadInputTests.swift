import Glibc
import Testing

/// Broken, hostile and slow clients in each connection state: each costs the
/// pooler that one connection and nothing else.
@Suite struct BadInputTests {
    // MARK: helpers

    /// A bystander in an open transaction, to show that nobody else is hurt.
    private final class Bystander {
        let client: PQConnection
        let table: String
        let owner: PQConnection

        init(_ pooler: PoolerProcess, user: String = "app") throws {
            owner = try pooler.cluster.directConnection()
            table = TestEnvironment.uniqueName("badinput")
            try owner.exec("CREATE TABLE \(table) (n int); GRANT SELECT, INSERT ON \(table) TO app, md5app")
            client = try pooler.connect(user: user)
            try client.exec("BEGIN")
            try client.exec("INSERT INTO \(table) VALUES (1)")
        }

        /// Finishes the transaction and checks both rows arrived.
        func finish(sourceLocation: SourceLocation = #_sourceLocation) throws {
            try client.exec("INSERT INTO \(table) VALUES (2)", timeout: 10)
            try client.exec("COMMIT", timeout: 10)
            #expect(try owner.exec("SELECT string_agg(n::text, ',' ORDER BY n) FROM \(table)").scalar == "1,2",
                    sourceLocation: sourceLocation)
            client.close()
            owner.close()
        }
    }

    private static func expectHealthy(_ pooler: PoolerProcess, user: String = "app",
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(pooler.isRunning, "\(pooler.diagnostics)", sourceLocation: sourceLocation)
        let client = try pooler.connect(user: user, timeout: 10)
        defer { client.close() }
        #expect(try client.exec("SELECT 1", timeout: 10).scalar == "1", sourceLocation: sourceLocation)
    }

    /// Sends `bytes` and expects the pooler to close the connection, with an
    /// ErrorResponse 08P01 first when `expectError`.
    private static func expectClosed(_ socket: RawSocket, after bytes: [UInt8], expectError: Bool, _ what: String,
                                     pooler: PoolerProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        socket.send(bytes)
        let reply = socket.readUntilClosed(timeout: 5)
        #expect(socket.peerClosed, "\(what): the pooler should close the connection; got \(reply)\n\(pooler.diagnostics)",
                sourceLocation: sourceLocation)
        if expectError {
            let error = reply.first { $0.typeCharacter == "E" }
            #expect(error?.fields["C"] == "08P01", "\(what): expected ErrorResponse 08P01, got \(reply)",
                    sourceLocation: sourceLocation)
        }
    }

    /// A raw connection that completed a trust login as md5app (ReadyForQuery seen).
    private static func loggedIn(_ pooler: PoolerProcess) throws -> RawSocket {
        let socket = try RawSocket(port: pooler.port)
        socket.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var login: [BackendMessage] = []
        while let message = socket.readMessage(timeout: 10) {
            login.append(message)
            if message.typeCharacter == "Z" || message.typeCharacter == "E" { break }
        }
        try #require(login.last?.typeCharacter == "Z", "trust login should end in ReadyForQuery: \(login)")
        return socket
    }

    /// A raw connection in the middle of SCRAM authentication as app (AuthenticationSASL seen).
    private static func authenticating(_ pooler: PoolerProcess) throws -> RawSocket {
        let socket = try RawSocket(port: pooler.port)
        socket.send(FrontendPacket.startup([("user", "app"), ("database", "app_db")]))
        let request = socket.readMessage(timeout: 10)
        try #require(request?.typeCharacter == "R", "expected an authentication request, got \(String(describing: request))")
        return socket
    }

    /// SHOW CLIENTS rows other than the admin connection asking.
    private static func otherClients(_ admin: PQConnection) throws -> Int {
        try admin.exec("SHOW CLIENTS").rows.count - 1
    }

    // MARK: bad lengths in each state

    /// `SET x "to` (an unterminated quoted identifier) once trapped the session-command
    /// scanner and took the whole pooler down (found by fuzzing). PostgreSQL rejects it;
    /// the client and everyone else carry on.
    @Test func unterminatedQuoteInSetLeavesThePoolerRunning() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(throws: PQError.self) { try client.exec("SET x \"to") }
        #expect(try client.exec("SELECT 1").scalar == "1", "\(pooler.diagnostics)")
        let other = try pooler.connect()
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
    }

    @Test func badLengthsBeforeStartup() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let bystander = try Bystander(pooler)

        // Truncated startup, then close.
        let truncated = try RawSocket(port: pooler.port)
        truncated.send(FrontendPacket.bigEndian(40) + [0, 3, 0, 0] + Array("user\0a".utf8))
        truncated.close()
        Self.expectClosed(try RawSocket(port: pooler.port), after: FrontendPacket.bigEndian(0) + [0, 3, 0, 0],
                          expectError: true, "startup length 0", pooler: pooler)
        Self.expectClosed(try RawSocket(port: pooler.port), after: FrontendPacket.bigEndian(3) + [0, 3, 0, 0],
                          expectError: true, "startup length 3", pooler: pooler)
        Self.expectClosed(try RawSocket(port: pooler.port), after: FrontendPacket.bigEndian(0x7FFF_FFFF) + [0, 3, 0, 0],
                          expectError: true, "startup length 2^31-1", pooler: pooler)

        try bystander.finish()
        try Self.expectHealthy(pooler)
        let admin = try pooler.admin()
        defer { admin.close() }
        let gone = try waitUntil(timeout: 5) { try Self.otherClients(admin) == 0 }
        #expect(gone, "\(String(describing: try? admin.exec("SHOW CLIENTS").rows))")
    }

    @Test func badLengthsDuringAuthentication() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let bystander = try Bystander(pooler)

        // A SASLInitialResponse cut short, then close.
        let truncated = try Self.authenticating(pooler)
        truncated.send(FrontendPacket.message("p", length: 60, body: Array("SCRAM-SHA-256\0".utf8)))
        truncated.close()
        Self.expectClosed(try Self.authenticating(pooler), after: FrontendPacket.message("p", length: 0),
                          expectError: true, "password message length 0", pooler: pooler)
        Self.expectClosed(try Self.authenticating(pooler), after: FrontendPacket.message("p", length: 3),
                          expectError: true, "password message length 3", pooler: pooler)
        Self.expectClosed(try Self.authenticating(pooler),
                          after: FrontendPacket.message("p", length: 0x7FFF_FFFF, body: Array("SCRAM".utf8)),
                          expectError: true, "password message length 2^31-1", pooler: pooler)
        // A well-formed 'p' with garbage inside.
        Self.expectClosed(try Self.authenticating(pooler),
                          after: FrontendPacket.typed("p", Array("NOT-A-MECHANISM\0".utf8) + FrontendPacket.bigEndian(0xFFFF_FFF0)),
                          expectError: false, "garbage SASLInitialResponse", pooler: pooler)

        try bystander.finish()
        try Self.expectHealthy(pooler)
        let admin = try pooler.admin()
        defer { admin.close() }
        let gone = try waitUntil(timeout: 5) { try Self.otherClients(admin) == 0 }
        #expect(gone, "\(String(describing: try? admin.exec("SHOW CLIENTS").rows))")
    }

    @Test func badLengthsAfterLogin() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust", "default_pool_size = 2"])
        defer { pooler.stop() }
        let bystander = try Bystander(pooler, user: "md5app")

        // A Query cut short, then close (the pooler has already taken a server for it).
        let truncated = try Self.loggedIn(pooler)
        truncated.send(FrontendPacket.message("Q", length: 100, body: Array("SELECT ".utf8)))
        truncated.close()
        Self.expectClosed(try Self.loggedIn(pooler), after: FrontendPacket.message("Q", length: 0),
                          expectError: true, "Query length 0", pooler: pooler)
        Self.expectClosed(try Self.loggedIn(pooler), after: FrontendPacket.message("Q", length: 3),
                          expectError: true, "Query length 3", pooler: pooler)
        Self.expectClosed(try Self.loggedIn(pooler), after: FrontendPacket.message("Q", length: 0xFFFF_FFF0),
                          expectError: true, "Query length 0xFFFFFFF0", pooler: pooler)
        // Length 3 in the middle of a transaction: the server the client held must not be reused dirty.
        let inTransaction = try Self.loggedIn(pooler)
        inTransaction.send(FrontendPacket.query("BEGIN"))
        var replies: [BackendMessage] = []
        while let message = inTransaction.readMessage(timeout: 10) {
            replies.append(message)
            if message.typeCharacter == "Z" { break }
        }
        #expect(replies.last?.payload == [UInt8(ascii: "T")], "BEGIN should leave the client in a transaction: \(replies)")
        Self.expectClosed(inTransaction, after: FrontendPacket.message("Q", length: 3), expectError: true,
                          "Query length 3 inside a transaction", pooler: pooler)

        try bystander.finish()
        let admin = try pooler.admin()
        defer { admin.close() }
        let gone = try waitUntil(timeout: 5) { try Self.otherClients(admin) == 0 }
        #expect(gone, "\(String(describing: try? admin.exec("SHOW CLIENTS").rows))")
        // Pool size 2: both servers must be usable (none left linked to a dead client).
        let clients = try (0..<2).map { _ in try pooler.connect(user: "md5app") }
        defer { clients.forEach { $0.close() } }
        for client in clients { try client.exec("BEGIN"); #expect(try client.exec("SELECT 1").scalar == "1") }
        #expect(try admin.poolCount("sv_active", user: "md5app") == 2, "\(String(describing: try? admin.poolRow(user: "md5app")))")
        for client in clients { try client.exec("COMMIT") }
    }

    // MARK: wrong messages

    @Test func unknownMessageTypeAfterLoginIsAProtocolViolation() throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust"])
        defer { pooler.stop() }
        let bystander = try Bystander(pooler, user: "md5app")
        for type: Character in ["Z", "T", "\u{01}"] {
            Self.expectClosed(try Self.loggedIn(pooler), after: FrontendPacket.typed(type, []), expectError: true,
                              "message type \(type.unicodeScalars.first!.value)", pooler: pooler)
        }
        // The same inside a transaction (the client holds a server).
        let inTransaction = try Self.loggedIn(pooler)
        inTransaction.send(FrontendPacket.query("BEGIN"))
        while let message = inTransaction.readMessage(timeout: 10), message.typeCharacter != "Z" {}
        Self.expectClosed(inTransaction, after: FrontendPacket.typed("Z", []), expectError: true,
                          "'Z' inside a transaction", pooler: pooler)
        try bystander.finish()
        try Self.expectHealthy(pooler, user: "md5app")
    }

    @Test func queryBeforeAuthenticationCompletesIsRefused() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let bystander = try Bystander(pooler)
        let early = try Self.authenticating(pooler)
        early.send(FrontendPacket.query("SELECT 1"))
        let reply = early.readUntilClosed(timeout: 5)
        #expect(early.peerClosed, "got \(reply)\n\(pooler.diagnostics)")
        #expect(reply.contains { $0.typeCharacter == "E" }, "expected an ErrorResponse, got \(reply)")
        #expect(!reply.contains { $0.typeCharacter == "T" || $0.typeCharacter == "D" }, "the query must not run: \(reply)")

        // Startup and query in one write, no authentication at all.
        let eager = try RawSocket(port: pooler.port)
        eager.send(FrontendPacket.startup([("user", "app"), ("database", "app_db")]) + FrontendPacket.query("SELECT 1"))
        let eagerReply = eager.readUntilClosed(timeout: 5)
        #expect(eager.peerClosed, "got \(eagerReply)")
        #expect(!eagerReply.contains { $0.typeCharacter == "D" }, "the query must not run: \(eagerReply)")
        try bystander.finish()
        try Self.expectHealthy(pooler)
    }

    // MARK: slow and idle connections

    @Test func slowLorisStartupDoesNotDisturbOthers() throws {
        let pooler = try PoolerProcess(settings: ["client_login_timeout = 2"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("loris")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int)")

        // Others run transactions the whole time, each timed.
        let pooler2 = pooler
        let workers = (0..<2).map { worker in
            Background { () throws -> Double in
                let client = try pooler2.connect()
                defer { client.close() }
                var slowest = 0.0
                let deadline = Deadline(seconds: 3)
                var count = 0
                while !deadline.hasPassed || count < 10 {
                    let start = monotonicSeconds()
                    try client.exec("BEGIN", timeout: 5)
                    try client.exec("INSERT INTO \(table) VALUES (\(worker))", timeout: 5)
                    try client.exec("COMMIT", timeout: 5)
                    slowest = max(slowest, monotonicSeconds() - start)
                    count += 1
                }
                return slowest
            }
        }

        let loris = try RawSocket(port: pooler.port)
        let packet = FrontendPacket.startup([("user", "app"), ("database", "app_db"), ("application_name", "slowloris")])
        let start = monotonicSeconds()
        var sent = 0
        for byte in packet {
            guard loris.send([byte]) else { break }
            sent += 1
            if loris.readMessage(timeout: 0.2) != nil || loris.peerClosed { break }
        }
        let reply = loris.readUntilClosed(timeout: 5)
        let elapsed = monotonicSeconds() - start
        if sent < packet.count || loris.peerClosed {
            // Closed by client_login_timeout (2 s) part-way.
            #expect(elapsed < 6, "the slow client was closed only after \(elapsed) s")
            #expect(pooler.logText.contains("client_login_timeout") || loris.peerClosed, "\(pooler.diagnostics)")
        } else {
            Issue.record("the slow startup (\(packet.count) bytes at 200 ms) outlived client_login_timeout = 2: \(reply)")
        }
        for worker in workers {
            switch worker.wait(timeout: 20) {
            case .none: Issue.record("a worker did not finish\n\(pooler.diagnostics)")
            case .failure(let error)?: Issue.record("a worker failed: \(error)\n\(pooler.diagnostics)")
            case .success(let slowest)?: #expect(slowest < 1, "a transaction took \(slowest) s during the slow login")
            }
        }
        try Self.expectHealthy(pooler)
    }

    @Test func manyHalfOpenConnectionsAreHarmlessAndTimeOut() throws {
        // 5000 sockets here, as many in the pooler (which raises its own limit too).
        let count = 5000
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 11000 {
            limit.rlim_cur = min(max(limit.rlim_max, 11000), 65536)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        try #require(limit.rlim_cur >= UInt(count) + 500, "RLIMIT_NOFILE is \(limit.rlim_cur); need ~\(count + 500)")

        let pooler = try PoolerProcess(settings: ["client_login_timeout = 2", "max_client_conn = \(count + 1000)",
                                                  "default_pool_size = 5"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let table = TestEnvironment.uniqueName("halfopen")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int); GRANT INSERT ON \(table) TO app")

        let opened = monotonicSeconds()
        var halfOpen: [RawSocket] = []
        halfOpen.reserveCapacity(count)
        for _ in 0..<count { halfOpen.append(try RawSocket(port: pooler.port)) }
        let openTime = monotonicSeconds() - opened

        let pooler2 = pooler
        let results = Threads.run(count: 5) { worker -> String? in
            do {
                let client = try pooler2.connect(timeout: 10)
                defer { client.close() }
                for n in 0..<20 {
                    try client.exec("BEGIN", timeout: 10)
                    try client.exec("INSERT INTO \(table) VALUES (\(worker * 100 + n))", timeout: 10)
                    try client.exec("COMMIT", timeout: 10)
                }
                return nil
            } catch {
                return "worker \(worker): \(error)"
            }
        }
        let workTime = monotonicSeconds() - opened
        #expect(results.allSatisfy { $0 == nil }, "\(results.compactMap { $0 })\n\(pooler.diagnostics)")
        #expect(try owner.exec("SELECT count(*) FROM \(table)").scalar == "100")
        let stillOpen = halfOpen.prefix(50).filter { $0.readMessage(timeout: 0) == nil && !$0.peerClosed }.count
        if workTime < 1.5 {
            // The workers were done well before client_login_timeout: the half-open ones were there all along.
            #expect(stillOpen == 50, "half-open connections closed before client_login_timeout (opened in \(openTime) s)")
        }

        // client_login_timeout = 2 closes them all.
        var lastLists: [String: String] = [:]
        let gone = try waitUntil(timeout: 12, interval: 0.2) {
            let lists = try admin.exec("SHOW LISTS")
            lastLists = Dictionary(uniqueKeysWithValues: lists.rows.map { ($0[0] ?? "", $0[1] ?? "") })
            return lastLists["login_clients"] == "0" && (Int(lastLists["used_clients"] ?? "") ?? 9999) <= 1
        }
        #expect(gone, "SHOW LISTS after client_login_timeout: \(lastLists)\n\(pooler.diagnostics)")
        let remaining = try Self.otherClients(admin)
        #expect(remaining == 0, "SHOW CLIENTS: \(remaining) rows besides the admin")
        let closed = halfOpen.filter { _ = $0.readUntilClosed(timeout: 0.05); return $0.peerClosed }.count
        #expect(closed == count, "only \(closed) of \(count) half-open sockets saw the pooler close them")
        halfOpen.removeAll()
        try Self.expectHealthy(pooler)
    }
}
