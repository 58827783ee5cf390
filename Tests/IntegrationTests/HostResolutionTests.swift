import Testing

/// Host names in [databases] resolve off the event loop and are cached (SHOW DNS_HOSTS).
@Suite struct HostResolutionTests {
    @Test func namedHostResolvesAndIsCached() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(databases: ["app_db = host=localhost port=\(cluster.port) dbname=app_db"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        let admin = try pooler.admin()
        defer { admin.close() }
        let hosts = try admin.exec("SHOW DNS_HOSTS")
        #expect(hosts.rows.contains { $0.first == "localhost" }, "\(hosts.rows)\n\(pooler.diagnostics)")
    }

    /// dns_max_ttl = 0 and dns_nxdomain_ttl = 0 (no caching): every server connection
    /// resolves afresh, and an answer serves the connection it was asked for instead of
    /// expiring on arrival (which started the next lookup at once, forever). min_pool_size
    /// keeps demand on both pools.
    @Test func zeroTTLsResolveEachTimeWithoutSpinning() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(settings: ["dns_max_ttl = 0", "dns_nxdomain_ttl = 0", "min_pool_size = 1"],
                                       databases: [
                                           "app_db = host=localhost port=\(cluster.port) dbname=app_db",
                                           "nowhere = host=no-such-host.invalid port=5432 dbname=app_db",
                                       ])
        defer { pooler.stop() }
        let client = try pooler.connect(timeout: 20)
        defer { client.close() }
        #expect(try client.exec("SELECT 1", timeout: 10).scalar == "1")
        var failure: PQError?
        do {
            let lost = try pooler.connect(database: "nowhere", timeout: 20)
            lost.close()
        } catch let error as PQError {
            failure = error
        }
        let error = try #require(failure, "a login to an unresolvable host must fail")
        #expect((error.message + error.fullMessage).contains("could not resolve host"), "\(error)\n\(pooler.diagnostics)")
        let pid = try #require(pooler.processID)
        let cpu = processCPUSecondsOverASecond(pid)
        #expect(cpu < 0.3, "the pooler used \(cpu) s of CPU in a second with nothing to do\n\(pooler.diagnostics)")
    }

    @Test func unknownHostFailsTheLoginWithoutHangingOthers() throws {
        let cluster = try PostgresCluster.shared()
        let pooler = try PoolerProcess(databases: [
            "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
            "nowhere = host=no-such-host.invalid port=5432 dbname=app_db",
        ])
        defer { pooler.stop() }
        var failure: PQError?
        do {
            let client = try pooler.connect(database: "nowhere", timeout: 20)
            client.close()
        } catch let error as PQError {
            failure = error
        }
        let error = try #require(failure, "a login to an unresolvable host must fail")
        #expect((error.message + error.fullMessage).contains("could not resolve host"), "\(error)\n\(pooler.diagnostics)")
        let other = try pooler.connect()
        defer { other.close() }
        #expect(try other.exec("SELECT 1").scalar == "1")
    }
}
