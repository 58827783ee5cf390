import Testing

/// autodb_idle_timeout: a pool made from the "*" entry is freed (servers closed, gone
/// from SHOW POOLS/DATABASES) once it has had no client for that long; configured
/// databases keep theirs, and the database comes back on the next login.
@Suite struct AutoDatabaseTests {
    @Test func unusedAutomaticPoolIsFreed() throws {
        let pooler = try PoolerProcess(settings: ["autodb_idle_timeout = 1", "pool_mode = session"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let configured = try pooler.connect()
        defer { configured.close() }
        #expect(try configured.exec("SELECT 1").scalar == "1")
        do {
            let auto = try pooler.connect(database: "postgres")
            #expect(try auto.exec("SELECT current_database()").scalar == "postgres")
            auto.close()
        }
        #expect(try admin.exec("SHOW POOLS").row(where: ["database": "postgres"]) != nil)
        let freed = try waitUntil(timeout: 10, interval: 0.1) {
            try admin.exec("SHOW POOLS").row(where: ["database": "postgres"]) == nil
        }
        #expect(freed, "\(String(describing: try? admin.exec("SHOW POOLS").rows))\n\(pooler.diagnostics)")
        #expect(try admin.exec("SHOW DATABASES").row(where: ["name": "postgres"]) == nil)
        #expect(try admin.exec("SHOW SERVERS").rowIndices(where: ["database": "postgres"]).isEmpty)
        #expect(pooler.logText.contains("autodb_idle_timeout"))
        // The configured database keeps its pool (its client is still connected anyway).
        #expect(try admin.exec("SHOW POOLS").row(where: ["database": "app_db"]) != nil)
        // A new login brings the automatic database back.
        let again = try pooler.connect(database: "postgres")
        defer { again.close() }
        #expect(try again.exec("SELECT 1").scalar == "1")
    }

    @Test func automaticPoolWithAClientStays() throws {
        let pooler = try PoolerProcess(settings: ["autodb_idle_timeout = 1"])
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let auto = try pooler.connect(database: "postgres")
        defer { auto.close() }
        #expect(try auto.exec("SELECT 1").scalar == "1")
        // Well past the timeout, the pool is still there for its client.
        let freed = try waitUntil(timeout: 2.5, interval: 0.1) {
            try admin.exec("SHOW POOLS").row(where: ["database": "postgres"]) == nil
        }
        #expect(!freed)
        #expect(try auto.exec("SELECT 2").scalar == "2")
    }
}
