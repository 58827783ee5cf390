import Foundation
import Glibc

/// Certificates for the TLS tests, made once per test process with the
/// `openssl` CLI in a temporary directory (removed at exit unless
/// POOLER_KEEP_TMP=1). EC P-256 keys, so generation takes well under a second.
///
/// - `ca`: "pooler test CA"; it signs `server` (CN=localhost, SAN DNS:localhost,
///   IP:127.0.0.1), `expiredServer` (same names, valid only 2020-01-01..02),
///   `appClient` (CN=app) and `malloryClient` (CN=mallory).
/// - `otherCA`: an unrelated CA that signs `otherServer` (same names as `server`).
///
/// Keys are mode 0600 (given to POOLER_RUN_AS when set, so the pooler can read
/// the server keys; client keys stay ours, as libpq insists).
final class TestCertificates: Sendable {
    struct Pair: Sendable {
        let certificate: String
        let key: String
    }

    let directory: String
    let ca: String
    let otherCA: String
    let server: Pair
    let expiredServer: Pair
    let otherServer: Pair
    let appClient: Pair
    let malloryClient: Pair

    static func shared() throws -> TestCertificates {
        try sharedResult.get()
    }

    private static let sharedResult: Result<TestCertificates, any Error> = Result {
        try TestCertificates.generate()
    }

    nonisolated(unsafe) private static var createdDirectory: String?

    private init(directory: String) {
        self.directory = directory
        ca = directory + "/ca.crt"
        otherCA = directory + "/other-ca.crt"
        server = Pair(certificate: directory + "/server.crt", key: directory + "/server.key")
        expiredServer = Pair(certificate: directory + "/expired-server.crt", key: directory + "/expired-server.key")
        otherServer = Pair(certificate: directory + "/other-server.crt", key: directory + "/other-server.key")
        appClient = Pair(certificate: directory + "/app-client.crt", key: directory + "/app-client.key")
        malloryClient = Pair(certificate: directory + "/mallory-client.crt", key: directory + "/mallory-client.key")
    }

    private static func generate() throws -> TestCertificates {
        var template = Array("/tmp/pooler-it-certs-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        let directory = String(cString: template)
        chmod(directory, 0o711)
        createdDirectory = directory
        atexit {
            if let directory = TestCertificates.createdDirectory, !TestEnvironment.keepTemporaryFiles {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        let certificates = TestCertificates(directory: directory)
        try certificates.build()
        return certificates
    }

    private static let serverExtensions = """
        basicConstraints = CA:FALSE
        keyUsage = digitalSignature, keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1

        """

    private static let clientExtensions = """
        basicConstraints = CA:FALSE
        keyUsage = digitalSignature, keyEncipherment
        extendedKeyUsage = clientAuth

        """

    private func build() throws {
        try writeTextFile(directory + "/server.ext", Self.serverExtensions)
        try writeTextFile(directory + "/client.ext", Self.clientExtensions)
        try makeCA(name: "ca", subject: "/CN=pooler test CA")
        try makeCA(name: "other-ca", subject: "/CN=pooler other test CA")
        try makeLeaf(server, subject: "/CN=localhost", ca: "ca", serial: 2, extensions: "server.ext")
        try makeLeaf(appClient, subject: "/CN=app", ca: "ca", serial: 3, extensions: "client.ext")
        try makeLeaf(malloryClient, subject: "/CN=mallory", ca: "ca", serial: 4, extensions: "client.ext")
        try makeLeaf(otherServer, subject: "/CN=localhost", ca: "other-ca", serial: 5, extensions: "server.ext")
        try makeExpiredServer()

        for pair in [server, expiredServer, otherServer, appClient, malloryClient] {
            chmod(pair.key, 0o600)
            chmod(pair.certificate, 0o644)
        }
        chmod(ca, 0o644)
        chmod(otherCA, 0o644)
        if let runAs = TestEnvironment.poolerRunAs {
            for pair in [server, expiredServer, otherServer] { try TestEnvironment.chown(pair.key, to: runAs) }
        }
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try Subprocess.run(["openssl"] + arguments, timeout: 60)
        guard result.status == 0 else {
            throw HarnessError("openssl \(arguments.joined(separator: " ")) failed: \(result)")
        }
    }

    private static let keyOptions = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    private func makeCA(name: String, subject: String) throws {
        try openssl(["req", "-x509"] + Self.keyOptions + [
            "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt", "-days", "3650",
            "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        chmod("\(directory)/\(name).key", 0o600)
    }

    private func makeRequest(_ pair: Pair, subject: String) throws -> String {
        let request = pair.certificate + ".csr"
        try openssl(["req", "-new"] + Self.keyOptions + ["-keyout", pair.key, "-out", request, "-subj", subject])
        return request
    }

    private func makeLeaf(_ pair: Pair, subject: String, ca: String, serial: Int, extensions: String) throws {
        let request = try makeRequest(pair, subject: subject)
        try openssl(["x509", "-req", "-in", request, "-CA", "\(directory)/\(ca).crt",
                     "-CAkey", "\(directory)/\(ca).key", "-set_serial", String(serial), "-days", "3650",
                     "-extfile", "\(directory)/\(extensions)", "-out", pair.certificate])
    }

    /// `openssl x509 -req` in OpenSSL 3.0 has no way to backdate; `openssl ca`
    /// takes explicit -startdate/-enddate.
    private func makeExpiredServer() throws {
        let request = try makeRequest(expiredServer, subject: "/CN=localhost")
        let database = directory + "/ca-db"
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true)
        try writeTextFile(database + "/index.txt", "")
        try writeTextFile(database + "/serial", "10\n")
        try writeTextFile(directory + "/ca.cnf", """
            [ca]
            default_ca = test_ca
            [test_ca]
            database = \(database)/index.txt
            new_certs_dir = \(database)
            serial = \(database)/serial
            default_md = sha256
            policy = any
            unique_subject = no
            copy_extensions = none
            [any]
            commonName = supplied

            """)
        try openssl(["ca", "-batch", "-config", directory + "/ca.cnf", "-cert", ca, "-keyfile", directory + "/ca.key",
                     "-in", request, "-out", expiredServer.certificate, "-notext",
                     "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
                     "-extfile", directory + "/server.ext"])
    }

    // MARK: libpq parameters

    /// conninfo entries for a TLS connection to 127.0.0.1 that libpq verifies
    /// as "localhost" (hostaddr connects, host is what the certificate must name).
    static func libpqTLS(mode: String = "verify-full", rootCertificate: String?,
                         client: Pair? = nil) -> [String: String] {
        var extra = ["sslmode": mode, "host": "localhost", "hostaddr": "127.0.0.1"]
        extra["sslrootcert"] = rootCertificate ?? "/nonexistent/root.crt"
        if let client {
            extra["sslcert"] = client.certificate
            extra["sslkey"] = client.key
        } else {
            // Never pick up ~/.postgresql/postgresql.crt.
            extra["sslcert"] = "/nonexistent/client.crt"
            extra["sslkey"] = "/nonexistent/client.key"
        }
        return extra
    }

    /// `[pgbouncer]` lines serving clients with `pair`.
    static func clientTLSSettings(mode: String, _ pair: Pair, caFile: String? = nil) -> [String] {
        var lines = ["client_tls_sslmode = \(mode)", "client_tls_cert_file = \(pair.certificate)",
                     "client_tls_key_file = \(pair.key)"]
        if let caFile { lines.append("client_tls_ca_file = \(caFile)") }
        return lines
    }
}
