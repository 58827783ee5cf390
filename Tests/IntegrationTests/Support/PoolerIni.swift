import Foundation

/// A PgBouncer-compatible ini for one pooler: `[databases]` lines and ordered
/// `[pgbouncer]` settings. `set` replaces a key in place (so the file never
/// relies on "later keys win").
struct PoolerIni {
    var databases: [String]
    private(set) var settings: [(key: String, value: String)] = []
    /// `[peers]` lines (`id = host=... port=...`), rendered last when present.
    var peers: [String] = []
    /// `[users]` lines (`name = pool_size=... pool_mode=...`).
    var users: [String] = []

    /// The defaults every test starts from: transaction pooling, pool size 5,
    /// SCRAM, `app_db` plus a `*` fallback to the cluster.
    static func standard(listenPort: Int, runDirectory: String, authFile: String, postgresPort: Int) -> PoolerIni {
        var ini = PoolerIni(databases: [
            "app_db = host=127.0.0.1 port=\(postgresPort) dbname=app_db",
            "* = host=127.0.0.1 port=\(postgresPort)",
        ])
        ini.set("listen_addr", "127.0.0.1")
        ini.set("listen_port", String(listenPort))
        ini.set("unix_socket_dir", runDirectory)
        ini.set("auth_type", "scram-sha-256")
        ini.set("auth_file", authFile)
        ini.set("admin_users", "postgres")
        ini.set("stats_users", "app")
        ini.set("pool_mode", "transaction")
        ini.set("default_pool_size", "5")
        ini.set("max_client_conn", "1000")
        ini.set("logfile", runDirectory + "/pooler.log")
        ini.set("pidfile", runDirectory + "/pooler.pid")
        // Tests open silent sockets on purpose (client_login_timeout, half-open floods):
        // the kernel must hand them over at once. DeferAcceptTests covers the default.
        ini.set("tcp_defer_accept", "0")
        return ini
    }

    mutating func set(_ key: String, _ value: String) {
        if let index = settings.firstIndex(where: { $0.key == key }) {
            settings[index].value = value
        } else {
            settings.append((key, value))
        }
    }

    /// Applies `key = value` lines.
    mutating func apply(_ lines: [String]) {
        for line in lines {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            set(key, value)
        }
    }

    func value(_ key: String) -> String? {
        settings.first { $0.key == key }?.value
    }

    func render() -> String {
        var text = ";; written by IntegrationTests (PoolerIni)\n[databases]\n"
        for line in databases { text += line + "\n" }
        text += "\n[pgbouncer]\n"
        for (key, value) in settings { text += "\(key) = \(value)\n" }
        if !users.isEmpty {
            text += "\n[users]\n"
            for line in users { text += line + "\n" }
        }
        if !peers.isEmpty {
            text += "\n[peers]\n"
            for line in peers { text += line + "\n" }
        }
        return text
    }
}
