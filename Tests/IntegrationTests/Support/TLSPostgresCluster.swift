import CLibPQ
import Foundation
import Glibc

/// A second throwaway PostgreSQL cluster that only accepts TLS over TCP
/// (`hostssl ... scram-sha-256`, `host ... reject`), serving
/// `TestCertificates.server` (CN=localhost, signed by `TestCertificates.ca`).
/// Started on first use for the server-side TLS tests, in `tls-<pid>/` under
/// the shared cluster's directory, and stopped at process exit (or by its own
/// watchdog if the process dies).
///
/// Roles `postgres` and `app` get the very SCRAM verifiers the shared cluster
/// has, so the shared cluster's userlist (and SCRAM pass-through) works here
/// too. Database `app_db` owned by app. Local connections are trusted.
final class TLSPostgresCluster: @unchecked Sendable {
    let root: String
    let dataDirectory: String
    let port: Int

    var socketDirectory: String { root }
    var logPath: String { root + "/postgres.log" }

    static func shared() throws -> TLSPostgresCluster {
        try sharedResult.get()
    }

    private static let sharedResult: Result<TLSPostgresCluster, any Error> = Result {
        try TLSPostgresCluster.start()
    }

    nonisolated(unsafe) private static var running: TLSPostgresCluster?

    private init(root: String, port: Int) {
        self.root = root
        self.dataDirectory = root + "/data"
        self.port = port
    }

    /// A superuser connection over the unix socket (trust).
    func superuserConnection(database: String = "postgres") throws -> PQConnection {
        try PQ.connect(PQ.conninfo(host: socketDirectory, port: port, user: "postgres", password: nil,
                                   dbname: database))
    }

    private static func start() throws -> TLSPostgresCluster {
        let shared = try PostgresCluster.shared()
        let certificates = try TestCertificates.shared()
        let osUser = TestEnvironment.postgresOSUser
        let root = shared.root + "/tls-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o711)
        try TestEnvironment.chown(root, to: osUser)
        startWatchdog(root: root)

        try PostgresServerControl.initdb(dataDirectory: root + "/data", label: "TLS")

        let data = root + "/data"
        try writeTextFile(data + "/pg_hba.conf", """
            local   all all              trust
            hostssl all all 127.0.0.1/32 scram-sha-256
            host    all all 127.0.0.1/32 reject

            """, mode: 0o600)
        // PostgreSQL wants its key owned by itself and not group/world readable.
        try writeTextFile(data + "/server.crt", readTextFile(certificates.server.certificate), mode: 0o644)
        try writeTextFile(data + "/server.key", readTextFile(certificates.server.key), mode: 0o600)
        for file in ["pg_hba.conf", "server.crt", "server.key"] {
            try TestEnvironment.chown(data + "/" + file, to: osUser)
        }
        let configuration = """

            # --- IntegrationTests (TLSPostgresCluster) ---
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '\(root)'
            max_connections = 60
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            shared_buffers = 16MB
            password_encryption = 'scram-sha-256'
            log_min_messages = warning
            ssl = on
            ssl_cert_file = 'server.crt'
            ssl_key_file = 'server.key'

            """
        try PostgresServerControl.appendConfiguration(configuration, dataDirectory: data)

        let verifiers = try shared.superuserExec(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('app', 'postgres') ORDER BY rolname")
        var secrets: [String: String] = [:]
        for row in verifiers.rows { if let name = row[0], let secret = row[1] { secrets[name] = secret } }
        guard let appSecret = secrets["app"], let postgresSecret = secrets["postgres"] else {
            throw HarnessError("no SCRAM verifiers for app/postgres in the shared cluster: \(verifiers.rows)")
        }

        var lastError: any Error = HarnessError("not started")
        for _ in 0..<3 {
            let cluster = TLSPostgresCluster(root: root, port: try FreePort.pick())
            do {
                try cluster.startServer()
                running = cluster
                atexit { TLSPostgresCluster.stopAtExit() }
                let connection = try cluster.superuserConnection()
                defer { connection.close() }
                try connection.exec("""
                    ALTER ROLE postgres PASSWORD '\(postgresSecret)';
                    CREATE ROLE app LOGIN PASSWORD '\(appSecret)';
                    """)
                try connection.exec("CREATE DATABASE app_db OWNER app")
                return cluster
            } catch {
                lastError = error
                cluster.stopServer()
                running = nil
            }
        }
        throw lastError
    }

    private func startServer() throws {
        // A bad certificate or key stops it early.
        try PostgresServerControl.start(dataDirectory: dataDirectory, logPath: logPath, socketDirectory: socketDirectory,
                                        port: port, label: "TLS", failureMarkers: ["could not load", "private key file"])
    }

    private func stopServer() {
        PostgresServerControl.stop(dataDirectory: dataDirectory)
    }

    private static func stopAtExit() {
        guard let cluster = running else { return }
        running = nil
        cluster.stopServer()
        if !TestEnvironment.keepTemporaryFiles {
            try? FileManager.default.removeItem(atPath: cluster.root)
        }
    }

    /// Stops the cluster if we die without running exit handlers.
    private static func startWatchdog(root: String) {
        let pgCtl = TestEnvironment.command([TestEnvironment.pgBin + "/pg_ctl"], asUser: TestEnvironment.postgresOSUser)
            .map { "'\($0)'" }.joined(separator: " ")
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            [ -d '\(root)/data' ] && \(pgCtl) -D '\(root)/data' -m immediate stop
            """
        _ = try? Subprocess.spawn(["/bin/sh", "-c", script])
    }
}
