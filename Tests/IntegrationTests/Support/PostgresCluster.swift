import CLibPQ
import Foundation
import Glibc

/// One throwaway PostgreSQL 15 cluster per test process, started on first use
/// and shared by every test; stopped (`pg_ctl stop -m immediate`) and deleted
/// at process exit, and by a watchdog shell if the process dies without
/// running its exit handlers.
///
/// Roles: `postgres`/`postgres` (superuser, SCRAM), `app`/`app` (SCRAM),
/// `md5app`/`md5app` (stored as md5, own `md5` pg_hba line). Database
/// `app_db` owned by app. Local (unix socket) connections are trusted.
final class PostgresCluster: @unchecked Sendable {
    /// Base directory: `data/`, the unix socket, `postgres.log`, `run/` for poolers.
    let root: String
    let dataDirectory: String
    let port: Int
    /// PgBouncer userlist.txt contents (see `AuthFile`).
    private(set) var userlist = ""

    var socketDirectory: String { root }
    var logPath: String { root + "/postgres.log" }

    static let passwords = ["postgres": "postgres", "app": "app", "md5app": "md5app"]

    /// The shared cluster, started on first call.
    static func shared() throws -> PostgresCluster {
        try sharedResult.get()
    }

    private static let sharedResult: Result<PostgresCluster, any Error> = Result {
        try PostgresCluster.start()
    }

    nonisolated(unsafe) private static var running: PostgresCluster?

    private init(root: String, port: Int) {
        self.root = root
        self.dataDirectory = root + "/data"
        self.port = port
    }

    // MARK: connections

    /// A superuser connection over the unix socket (trust).
    func superuserConnection(database: String = "postgres") throws -> PQConnection {
        try PQ.connect(PQ.conninfo(host: socketDirectory, port: port, user: "postgres", password: nil,
                                   dbname: database))
    }

    /// A password connection over TCP, bypassing any pooler.
    func directConnection(user: String = "app", database: String = "app_db") throws -> PQConnection {
        try PQ.connect(PQ.conninfo(port: port, user: user, password: Self.passwords[user], dbname: database))
    }

    /// Runs `sql` as superuser in `database`.
    @discardableResult
    func superuserExec(_ sql: String, database: String = "postgres") throws -> PQResult {
        let connection = try superuserConnection(database: database)
        defer { connection.close() }
        return try connection.exec(sql)
    }

    /// Creates a fresh database with a unique name and returns the name.
    func createDatabase(prefix: String = "db", owner: String = "app") throws -> String {
        let name = TestEnvironment.uniqueName(prefix)
        try superuserExec("CREATE DATABASE \(name) OWNER \(owner)")
        return name
    }

    /// A new empty directory for one pooler, writable by `user` (nil: us).
    func makeRunDirectory(owner user: String?) throws -> String {
        let path = root + "/run/" + TestEnvironment.uniqueName("p")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
        try TestEnvironment.chown(path, to: user)
        return path
    }

    // MARK: start and stop

    private static func start() throws -> PostgresCluster {
        let osUser = TestEnvironment.postgresOSUser
        if let osUser { try TestEnvironment.ensureOSUser(osUser) }

        var template = Array("/tmp/pooler-it-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        let root = String(cString: template)
        // Traversable by the pooler's OS user (POOLER_RUN_AS); data/ itself is 0700.
        chmod(root, 0o711)
        try FileManager.default.createDirectory(atPath: root + "/run", withIntermediateDirectories: true)
        chmod(root + "/run", 0o711)
        try TestEnvironment.chown(root, to: osUser)
        startWatchdog(root: root)

        try PostgresServerControl.initdb(dataDirectory: root + "/data", label: "")

        try writeTextFile(root + "/data/pg_hba.conf", """
            local all all                 trust
            host  all md5app 127.0.0.1/32 md5
            host  all md5app ::1/128      md5
            host  all all    127.0.0.1/32 scram-sha-256
            host  all all    ::1/128      scram-sha-256
            host  replication all 127.0.0.1/32 scram-sha-256

            """, mode: 0o600)
        let configuration = """

            # --- IntegrationTests (PostgresCluster) ---
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '\(root)'
            max_connections = 300
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            shared_buffers = 64MB
            password_encryption = 'scram-sha-256'
            log_min_messages = warning

            """
        try PostgresServerControl.appendConfiguration(configuration, dataDirectory: root + "/data")
        try TestEnvironment.chown(root + "/data/pg_hba.conf", to: osUser)

        var lastError: any Error = HarnessError("not started")
        for _ in 0..<3 {
            let cluster = PostgresCluster(root: root, port: try FreePort.pick())
            do {
                try cluster.startServer()
                running = cluster
                atexit { PostgresCluster.stopAtExit() }
                try cluster.createRolesAndDatabase()
                cluster.userlist = try AuthFile.userlist(from: cluster)
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
        try PostgresServerControl.start(dataDirectory: dataDirectory, logPath: logPath, socketDirectory: socketDirectory,
                                        port: port, label: "")
    }

    private func createRolesAndDatabase() throws {
        let connection = try superuserConnection()
        defer { connection.close() }
        try connection.exec("""
            SET password_encryption = 'scram-sha-256';
            ALTER ROLE postgres PASSWORD 'postgres';
            CREATE ROLE app LOGIN PASSWORD 'app';
            SET password_encryption = 'md5';
            CREATE ROLE md5app LOGIN PASSWORD 'md5app';
            """)
        try connection.exec("CREATE DATABASE app_db OWNER app")
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

    /// A shell that outlives us if we crash: once our pid is gone it kills
    /// the poolers still recorded in run/*/child.pid, stops the cluster and
    /// removes the directory. After a normal exit it finds nothing to do.
    private static func startWatchdog(root: String) {
        let pgCtl = TestEnvironment.command([TestEnvironment.pgBin + "/pg_ctl"], asUser: TestEnvironment.postgresOSUser)
            .map { "'\($0)'" }.joined(separator: " ")
        let remove = TestEnvironment.keepTemporaryFiles ? "true" : "rm -rf '\(root)'"
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            for f in '\(root)'/run/*/child.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")"; done
            [ -d '\(root)/data' ] && \(pgCtl) -D '\(root)/data' -m immediate stop
            \(remove)
            """
        _ = try? Subprocess.spawn(["/bin/sh", "-c", script])
    }
}
