import Testing

@Suite struct MaxClientConnTests {
    /// max_client_conn = 3: the fourth client is refused with PgBouncer's
    /// message and SQLSTATE 53300; the admin console stays reachable; a slot
    /// freed by disconnects can be used again.
    @Test func fourthClientIsRefused() throws {
        let pooler = try PoolerProcess(settings: ["max_client_conn = 3"])
        defer { pooler.stop() }
        var clients = try (0..<3).map { _ in try pooler.connect() }
        defer { clients.forEach { $0.close() } }
        for client in clients {
            #expect(try client.exec("SELECT 1").scalar == "1")
        }

        let error = #expect(throws: PQError.self) { try pooler.connect() }
        #expect(error?.message.contains("no more connections allowed (max_client_conn)") == true,
                "\(String(describing: error))")
        #expect(error?.sqlstate == "53300", "\(String(describing: error))")

        // Admin connections are exempt from the limit (but, as in PgBouncer, counted).
        let admin = try pooler.admin()
        let pools = try admin.exec("SHOW POOLS")
        #expect(!pools.rowIndices(where: ["database": "app_db", "user": "app"]).isEmpty)
        admin.close()

        // Closing a client frees its slot (the pooler notices asynchronously).
        clients.removeLast().close()
        var replacement: PQConnection?
        let admitted = waitUntil(timeout: 5, interval: 0.05) {
            replacement = try? pooler.connect()
            return replacement != nil
        }
        #expect(admitted, "a client slot should be free again after a disconnect")
        #expect(try replacement?.exec("SELECT 2").scalar == "2")
        replacement?.close()
    }
}
