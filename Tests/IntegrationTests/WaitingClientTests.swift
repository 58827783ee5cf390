import Testing

/// A client waiting for a server stays readable (no epoll_ctl per wait): what it sends
/// meanwhile is kept in order for the server it gets, a client that sends a lot is
/// paused at the backpressure limit and served in full, and one that leaves stops
/// waiting at once.
@Suite struct WaitingClientTests {
    private static func waiting(_ admin: PQConnection) throws -> Int {
        try admin.poolCount("cl_waiting", user: "md5app")
    }

    /// A pooler with one server, held in a transaction by `holder`, and a raw client
    /// whose first query ("SELECT 0") waits behind it.
    private static func withQueuedClient(
        _ body: (PoolerProcess, PQConnection, PQConnection, RawClient) throws -> Void) throws {
        let pooler = try PoolerProcess(settings: ["auth_type = trust", "default_pool_size = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let holder = try pooler.connect(user: "md5app")
        defer { holder.close() }
        try holder.exec("BEGIN")
        try holder.exec("SELECT 1")
        let raw = try RawClient(port: pooler.port)
        defer { raw.socket.close() }
        raw.send(FrontendPacket.query("SELECT 0"))
        let queued = try waitUntil(timeout: 5) { try waiting(admin) == 1 }
        #expect(queued, "SHOW POOLS: \(String(describing: try? admin.poolRow(user: "md5app")))\n\(pooler.diagnostics)")
        try body(pooler, admin, holder, raw)
    }

    private static func value(_ messages: [BackendMessage]) -> String? {
        messages.first { $0.typeCharacter == "D" }?.dataRowValues.first ?? nil
    }

    @Test func queriesSentWhileWaitingRunInOrder() throws {
        try Self.withQueuedClient { pooler, admin, holder, raw in
            raw.send(FrontendPacket.query("SELECT 1"))
            raw.send(FrontendPacket.query("SELECT 2"))
            // Still one waiting client, nothing answered yet.
            #expect(try Self.waiting(admin) == 1)
            #expect(raw.socket.readMessage(timeout: 0.2) == nil)
            try holder.exec("COMMIT")
            for expected in ["0", "1", "2"] {
                let reply = raw.readUntilReady()
                #expect(reply.last?.typeCharacter == "Z" && Self.value(reply) == expected,
                        "expected \(expected): \(reply)\n\(pooler.diagnostics)")
            }
            #expect(try holder.exec("SELECT 3").scalar == "3")
        }
    }

    @Test func aClientSendingMuchWhileWaitingIsServedInFull() throws {
        try Self.withQueuedClient { pooler, _, holder, raw in
            // About 210 KB of queries, past the 64 KB the pooler reads ahead for a waiting
            // client before it stops reading it.
            let count = 6000
            let queries = (1...count).flatMap { FrontendPacket.query("SELECT \($0) AS padding_padding") }
            #expect(queries.count > 3 * 64 * 1024, "\(queries.count) bytes")
            let sender = Background { raw.send(queries) }
            try holder.exec("COMMIT")
            var last: String?
            var answered = 0
            for _ in 0...count {
                let reply = raw.readUntilReady(timeout: 20)
                guard reply.last?.typeCharacter == "Z" else {
                    Issue.record("reply \(answered) incomplete: \(reply)\n\(pooler.diagnostics)")
                    break
                }
                if let value = Self.value(reply) { last = value }
                answered += 1
            }
            _ = sender.wait(timeout: 10)
            #expect(answered == count + 1)
            #expect(last == String(count))
            #expect(try holder.exec("SELECT 1").scalar == "1")
        }
    }

    @Test func aWaitingClientThatLeavesStopsWaiting() throws {
        try Self.withQueuedClient { pooler, admin, holder, raw in
            raw.socket.close()
            let gone = try waitUntil(timeout: 5) { try Self.waiting(admin) == 0 }
            #expect(gone, "SHOW POOLS: \(String(describing: try? admin.poolRow(user: "md5app")))\n\(pooler.diagnostics)")
            try holder.exec("COMMIT")
            #expect(try holder.exec("SELECT 1").scalar == "1")
        }
    }
}
