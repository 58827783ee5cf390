import Testing

/// A pool whose server login fails (wrong password in the [databases] entry):
/// the first client gets the server's error; while server_login_retry runs,
/// later clients fail fast with the cached error instead of waiting.
@Suite struct ServerLoginRetryTests {
    private static func attempt(_ pooler: PoolerProcess, database: String) -> (error: PQError?, elapsed: Double) {
        let started = monotonicSeconds()
        do {
            let client = try pooler.connect(database: database, timeout: 15)
            defer { client.close() }
            try client.exec("SELECT 1", timeout: 15)
            return (nil, monotonicSeconds() - started)
        } catch let error as PQError {
            return (error, monotonicSeconds() - started)
        } catch {
            return (PQError(message: "\(error)", sqlstate: nil, fullMessage: ""), monotonicSeconds() - started)
        }
    }

    @Test func wrongServerPasswordFailsFastWhileRetryIsPending() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(
            settings: ["server_login_retry = 30"],
            databases: [
                "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
                "badpw = host=127.0.0.1 port=\(cluster.port) dbname=app_db user=app password=wrong",
            ])
        defer { pooler.stop() }

        let first = Self.attempt(pooler, database: "badpw")
        let firstError = try #require(first.error, "login with password=wrong must fail")
        #expect(firstError.fullMessage.contains("password authentication failed")
                    || firstError.message.contains("password authentication failed"),
                "\(firstError)\n\(pooler.diagnostics)")
        #expect(first.elapsed < 10, "first failure after \(first.elapsed) s")

        let second = Self.attempt(pooler, database: "badpw")
        let secondError = try #require(second.error, "the second client must fail too")
        let text = secondError.message + "\n" + secondError.fullMessage
        #expect(text.contains("server_login_retry") || text.contains("password authentication failed"),
                "\(secondError)\n\(pooler.diagnostics)")
        #expect(second.elapsed < 3,
                "the second client waited \(second.elapsed) s instead of failing fast: \(secondError)\n\(pooler.diagnostics)")

        // Other pools are unaffected.
        let good = try pooler.connect()
        defer { good.close() }
        #expect(try good.exec("SELECT 1").scalar == "1")
    }
}
