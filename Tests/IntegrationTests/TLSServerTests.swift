import Foundation
import Testing

/// TLS between the pooler and PostgreSQL: server_tls_sslmode against a
/// TLS-only cluster (`TLSPostgresCluster`, certificate CN/SAN localhost signed
/// by `TestCertificates.ca`) and against the shared cluster, which has no TLS.
@Suite struct TLSServerTests {
    /// A pooler whose `tlsdb` is app_db on the TLS-only cluster at `host`.
    static func pooler(_ settings: [String], host: String = "localhost") throws -> (PoolerProcess, TLSPostgresCluster) {
        let cluster = try TLSPostgresCluster.shared()
        let shared = try PostgresCluster.shared()
        let pooler = try PoolerProcess(settings: settings, databases: [
            "tlsdb = host=\(host) port=\(cluster.port) dbname=app_db",
            "app_db = host=127.0.0.1 port=\(shared.port) dbname=app_db",
        ])
        return (pooler, cluster)
    }

    static func connectError(_ body: () throws -> PQConnection) -> PQError? {
        TLSClientTests.connectError(body)
    }

    /// `ssl` of pg_stat_ssl for the backend serving `client`.
    static func backendUsesSSL(_ client: PQConnection) throws -> String? {
        try client.exec("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar
    }

    @Test func verifyFullWithTheRightCA() throws {
        let certificates = try TestCertificates.shared()
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = verify-full",
                                           "server_tls_ca_file = \(certificates.ca)"])
        defer { pooler.stop() }
        let client = try pooler.connect(database: "tlsdb", timeout: 15)
        defer { client.close() }
        #expect(try Self.backendUsesSSL(client) == "t", "\(pooler.diagnostics)")
        #expect(try client.exec("SELECT current_user").scalar == "app")
    }

    /// verify-full checks the name against the [databases] host; the server
    /// certificate carries SAN IP:127.0.0.1 too, so host=127.0.0.1 passes as
    /// libpq and PgBouncer (libtls) accept it.
    @Test func verifyFullMatchesAnIPAddressSAN() throws {
        let certificates = try TestCertificates.shared()
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = verify-full",
                                           "server_tls_ca_file = \(certificates.ca)"], host: "127.0.0.1")
        defer { pooler.stop() }
        let client = try pooler.connect(database: "tlsdb", timeout: 15)
        defer { client.close() }
        #expect(try Self.backendUsesSSL(client) == "t", "\(pooler.diagnostics)")
    }

    @Test func verifyCAWithTheRightCA() throws {
        let certificates = try TestCertificates.shared()
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = verify-ca",
                                           "server_tls_ca_file = \(certificates.ca)"], host: "127.0.0.1")
        defer { pooler.stop() }
        let client = try pooler.connect(database: "tlsdb", timeout: 15)
        defer { client.close() }
        #expect(try Self.backendUsesSSL(client) == "t", "\(pooler.diagnostics)")
    }

    /// A server certificate from a CA the pooler does not trust: the client
    /// gets an error promptly instead of waiting for a server.
    @Test func verifyFullWithAnotherCAFails() throws {
        let certificates = try TestCertificates.shared()
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = verify-full",
                                           "server_tls_ca_file = \(certificates.otherCA)"])
        defer { pooler.stop() }
        let started = monotonicSeconds()
        let error = Self.connectError { try pooler.connect(database: "tlsdb", timeout: 15) }
        let elapsed = monotonicSeconds() - started
        #expect(error != nil, "verify-full against an untrusted certificate must fail")
        #expect(error?.message.contains("timed out") != true, "\(String(describing: error))")
        #expect(elapsed < 10, "took \(elapsed) s")
        // e.g. "TLS with server failed: certificate verify failed: unable to get local issuer certificate (...)"
        #expect(error?.message.contains("certificate verify failed") == true,
                "\(String(describing: error))\n\(pooler.diagnostics)")
        #expect(error?.sqlstate == "08001", "\(String(describing: error))")
        // The pooler goes on; a second attempt fails the same way.
        let again = Self.connectError { try pooler.connect(database: "tlsdb", timeout: 15) }
        #expect(again != nil && again?.message.contains("timed out") != true, "\(String(describing: again))")
        #expect(pooler.isRunning)
    }

    /// Control for the suite: the TLS cluster rejects plaintext logins, so the
    /// successes above really went through TLS.
    @Test func disableAgainstTheTLSOnlyServerIsRejected() throws {
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = disable"])
        defer { pooler.stop() }
        let error = Self.connectError { try pooler.connect(database: "tlsdb", timeout: 15) }
        #expect(error?.message.contains("pg_hba.conf rejects connection") == true,
                "\(String(describing: error))\n\(pooler.diagnostics)")
    }

    /// server_tls_sslmode = prefer (the default) uses TLS where the server
    /// offers it and plaintext where it answers 'N'.
    @Test func preferUsesTLSWhereOfferedAndPlaintextElsewhere() throws {
        let (pooler, _) = try Self.pooler(["server_tls_sslmode = prefer"])
        defer { pooler.stop() }
        let tls = try pooler.connect(database: "tlsdb", timeout: 15)
        defer { tls.close() }
        #expect(try Self.backendUsesSSL(tls) == "t", "\(pooler.diagnostics)")
        let plain = try pooler.connect(timeout: 15)
        defer { plain.close() }
        #expect(try Self.backendUsesSSL(plain) == "f", "\(pooler.diagnostics)")
    }

    /// server_tls_sslmode = require against a server without TLS fails with an
    /// error that says so.
    @Test func requireAgainstAServerWithoutTLSFails() throws {
        let pooler = try PoolerProcess(settings: ["server_tls_sslmode = require"])
        defer { pooler.stop() }
        let started = monotonicSeconds()
        let error = Self.connectError { try pooler.connect(timeout: 15) }
        #expect(error != nil, "require against a server without TLS must fail")
        #expect(monotonicSeconds() - started < 10)
        #expect(error?.message.contains("TLS") == true || error?.message.contains("SSL") == true,
                "\(String(describing: error))\n\(pooler.diagnostics)")
    }
}
