import CLibPQ
import Foundation
import Glibc
import Testing

/// PgBouncer 1.25 drop-in requirement: an ini that sets every documented key
/// starts cleanly. The keys come from `pooler.ini.example` (generated from the
/// key table the parser uses): every `;key = default` line of `[pgbouncer]`, the
/// keys it lists as "accepted ... but not acted on yet", and the `[databases]` and
/// `[users]` fields its comments name. Each key gets a value that lets the
/// pooler start and serve queries here (mostly not the default, so SHOW CONFIG
/// proves the value was read); then the test checks that the pooler stays up,
/// serves queries through the configured database and the `*` fallback, shows
/// every key in SHOW CONFIG with the value set, logs no ERROR/FATAL, and logs
/// exactly one warning for each key documented as not acted on (and for no other).
@Suite struct EveryKeyConfigTests {
    // MARK: what pooler.ini.example documents

    struct DocumentedKeys {
        /// `[pgbouncer]` keys the pooler acts on, with the example's value (the default).
        var implemented: [(key: String, value: String)] = []
        /// `[pgbouncer]` keys accepted with a warning.
        var unimplemented: [String] = []
        /// Fields of a `[databases]` connection string.
        var databaseFields: [String] = []
        /// Fields of a `[users]` line.
        var userFields: [String] = []

        var allKeys: [String] { implemented.map(\.key) + unimplemented }
    }

    static var examplePath: String {
        // Tests/IntegrationTests/EveryKeyConfigTests.swift -> repository root.
        let url = URL(fileURLWithPath: #filePath)
        return url.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("pooler.ini.example").path
    }

    /// Reads the example: `;key = value` lines under `[pgbouncer]`, and the `;;`
    /// comment paragraphs that list database fields, user fields and the keys not
    /// acted on.
    static func documentedKeys(_ text: String) throws -> DocumentedKeys {
        var result = DocumentedKeys()
        var section = ""
        var paragraph: [String] = []
        var paragraphs: [(section: String, text: String)] = []
        func flush() {
            if !paragraph.isEmpty { paragraphs.append((section, paragraph.joined(separator: " "))) }
            paragraph = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix(";;") {
                paragraph.append(line.dropFirst(2).trimmingCharacters(in: .whitespaces))
                continue
            }
            flush()
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard section == "pgbouncer", line.hasPrefix(";"), let equals = line.range(of: " =") else { continue }
            let key = String(line[line.index(after: line.startIndex)..<equals.lowerBound])
            guard !key.isEmpty, key.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) else { continue }
            let value = line[equals.upperBound...].trimmingCharacters(in: .whitespaces)
            result.implemented.append((key, value))
        }
        flush()

        /// The comma-separated names between `marker` and the next ". ".
        func names(after marker: String, in section: String) throws -> [String] {
            let found = paragraphs.first { $0.section == section && $0.text.contains(marker) }
            let paragraphText = try #require(found?.text, "pooler.ini.example has no [\(section)] comment with \"\(marker)\"")
            let start = paragraphText.range(of: marker)!.upperBound
            var list = String(paragraphText[start...])
            if let end = list.range(of: ".") { list = String(list[..<end.lowerBound]) }
            return list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        result.databaseFields = try names(after: "connection string:", in: "databases")
        result.userFields = try names(after: "settings:", in: "users")
        result.unimplemented = try names(after: "not acted on yet (setting one logs a warning):", in: "pgbouncer")
        return result
    }

    // MARK: the values

    /// One `[pgbouncer]` value: as written in the ini, and as SHOW CONFIG shows it.
    struct Value {
        var ini: String
        var shown: String
        init(_ ini: String, shown: String? = nil) {
            self.ini = ini
            self.shown = shown ?? ini
        }
    }

    /// Values for `[pgbouncer]` keys; implemented keys missing here keep the
    /// example's default. `listen_port` is PoolerProcess's (it picks a free port).
    static func values(runDirectory: String, iniPath: String, runAs: String, group: String,
                       metricsPort: Int) -> [String: Value] {
        let run = runDirectory
        return [
            // Generic settings
            "logfile": Value(run + "/pooler.log"),
            "pidfile": Value(run + "/pooler.pid"),
            "listen_addr": Value("127.0.0.1"),
            "unix_socket_dir": Value(run),
            "unix_socket_mode": Value("0700", shown: "448"),  // strtol base 0, shown with %d
            "unix_socket_group": Value(group),
            "user": Value(runAs),  // the user the pooler already runs as, so root and non-root both work
            "pool_mode": Value("session"),
            "max_client_conn": Value("200"),
            "default_pool_size": Value("4"),
            "min_pool_size": Value("1"),
            "reserve_pool_size": Value("1"),
            "reserve_pool_timeout": Value("2.5"),
            "max_db_connections": Value("40"),
            "max_db_client_connections": Value("150"),
            "max_user_connections": Value("40"),
            "max_user_client_connections": Value("150"),
            "server_round_robin": Value("1"),
            "track_extra_parameters": Value("IntervalStyle"),
            "ignore_startup_parameters": Value("extra_float_digits, options"),
            "peer_id": Value("1"),
            "disable_pqexec": Value("0"),  // 1 would refuse the simple queries libpq sends
            "application_name_add_host": Value("1"),
            "conffile": Value(iniPath),
            "service_name": Value("pooler_everykey"),
            "job_name": Value("pooler_everykey"),
            "stats_period": Value("30"),
            "max_prepared_statements": Value("100"),
            "scram_iterations": Value("8192"),
            // Authentication settings
            "auth_type": Value("scram-sha-256"),
            "auth_hba_file": Value(run + "/hba.conf"),
            "auth_ident_file": Value(run + "/ident.map"),
            "auth_file": Value(run + "/userlist.txt"),
            "auth_user": Value("postgres"),
            "auth_query": Value("SELECT usename, passwd FROM pg_shadow WHERE usename=$1"),
            "auth_dbname": Value("app_db"),
            "auth_ldap_options": Value("host=ldap.invalid basedn=dc=example,dc=invalid"),
            // Log settings
            "syslog": Value("0"),  // 1 needs a syslog daemon; SyslogTests cover it
            "syslog_ident": Value("pooler_everykey"),
            "syslog_facility": Value("local3"),
            "log_connections": Value("0"),
            "log_disconnections": Value("0"),
            "log_pooler_errors": Value("1"),
            "log_stats": Value("0"),
            "verbose": Value("1"),
            // Console access control
            "admin_users": Value("postgres"),
            "stats_users": Value("app, md5app"),
            // Connection sanity checks, timeouts
            "server_reset_query": Value("RESET ALL"),
            "server_reset_query_always": Value("0"),
            "server_check_delay": Value("10"),
            "server_check_query": Value("SELECT 1"),
            "server_fast_close": Value("1"),
            "server_lifetime": Value("1200"),
            "server_idle_timeout": Value("300"),
            "server_connect_timeout": Value("5"),
            "server_login_retry": Value("3"),
            "client_login_timeout": Value("30"),
            "autodb_idle_timeout": Value("1800"),
            "dns_max_ttl": Value("20"),
            "dns_nxdomain_ttl": Value("10"),
            "dns_zone_check_period": Value("60"),
            "resolv_conf": Value(run + "/resolv.conf"),
            "query_wait_notify": Value("3"),
            // TLS settings
            "client_tls_sslmode": Value("allow"),
            "client_tls_key_file": Value(run + "/client-tls.key"),
            "client_tls_cert_file": Value(run + "/client-tls.crt"),
            "client_tls_ca_file": Value(run + "/ca.crt"),
            "client_tls_protocols": Value("tlsv1.2,tlsv1.3"),
            "client_tls_ciphers": Value("normal"),
            "client_tls13_ciphers": Value("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
            "client_tls_ecdhcurve": Value("prime256v1"),
            "client_tls_dheparams": Value("none"),
            "server_tls_sslmode": Value("allow"),  // the cluster has no TLS: allow falls back to plaintext
            "server_tls_ca_file": Value(run + "/ca.crt"),
            "server_tls_key_file": Value(run + "/server-tls.key"),
            "server_tls_cert_file": Value(run + "/server-tls.crt"),
            "server_tls_protocols": Value("tlsv1.3"),
            "server_tls_ciphers": Value("fast"),
            "server_tls13_ciphers": Value("TLS_AES_128_GCM_SHA256"),
            // Dangerous timeouts
            "query_timeout": Value("60"),
            "query_wait_timeout": Value("30"),
            "cancel_wait_timeout": Value("5"),
            "client_idle_timeout": Value("600"),
            "idle_transaction_timeout": Value("120"),
            "transaction_timeout": Value("300"),
            "suspend_timeout": Value("20"),
            // Low-level network settings
            "pkt_buf": Value("8192"),
            "max_packet_size": Value("1048576"),
            "listen_backlog": Value("64"),
            "sbuf_loopcnt": Value("10"),
            "so_reuseport": Value("0"),  // 1 could share the port with another test's pooler
            "tcp_defer_accept": Value("0"),
            "tcp_socket_buffer": Value("65536"),
            "tcp_keepalive": Value("1"),
            "tcp_keepcnt": Value("5"),
            "tcp_keepidle": Value("60"),
            "tcp_keepintvl": Value("10"),
            "tcp_user_timeout": Value("30000"),
            // Pooler extensions
            "metrics_listen_addr": Value("127.0.0.1"),
            "metrics_listen_port": Value(String(metricsPort)),
            "workers": Value("2"),
            "worker_cpu_affinity": Value("1"),
            "server_tls_direct": Value("0"),  // needs PostgreSQL 17; the cluster is 15
        ]
    }

    /// The `[databases]` entry that uses every documented field.
    static func databaseFields(postgresPort: Int) -> [String: String] {
        [
            "host": "127.0.0.1",
            "port": String(postgresPort),
            "dbname": "app_db",
            "user": "app",
            "password": "app",
            "auth_user": "postgres",
            "auth_query": "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
            "auth_dbname": "app_db",
            "pool_size": "3",
            "min_pool_size": "1",
            "reserve_pool_size": "1",
            "pool_mode": "transaction",
            "max_db_connections": "8",
            "max_db_client_connections": "50",
            "server_lifetime": "1800",
            "load_balance_hosts": "disable",
            "connect_query": "SET work_mem = 7777",
            "client_encoding": "LATIN1",
            "datestyle": "SQL, DMY",
            "timezone": "Asia/Tokyo",
            "application_name": "everykey_app",
        ]
    }

    /// The `[users]` entry for `app` that uses every documented field.
    static let userFields: [String: String] = [
        "pool_mode": "transaction",
        "pool_size": "4",
        "reserve_pool_size": "1",
        "max_user_connections": "20",
        "max_user_client_connections": "20",
        "query_timeout": "60",
        "idle_transaction_timeout": "120",
        "transaction_timeout": "300",
        "client_idle_timeout": "600",
    ]

    /// `key=value ...` in `order`, quoting values with spaces or quotes as PgBouncer reads them.
    static func connectionString(_ fields: [String: String], order: [String]) -> String {
        order.compactMap { key -> String? in
            guard let value = fields[key] else { return nil }
            let needsQuotes = value.contains(" ") || value.contains("'") || value.isEmpty
            return key + "=" + (needsQuotes ? "'" + value.replacingOccurrences(of: "'", with: "''") + "'" : value)
        }.joined(separator: " ")
    }

    static func copy(_ source: String, to destination: String, mode: mode_t, owner: String?) throws {
        try writeTextFile(destination, readTextFile(source), mode: mode)
        try TestEnvironment.chown(destination, to: owner)
    }

    /// Log lines with the given level label (`... [pid] LABEL message`).
    static func lines(_ log: String, label: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains("] \(label) ") }
    }

    /// True when `line` names `key` as a whole word.
    static func names(_ line: Substring, _ key: String) -> Bool {
        var searchRange = line.startIndex..<line.endIndex
        while let found = line.range(of: key, range: searchRange) {
            let before = found.lowerBound == line.startIndex ? nil : line[line.index(before: found.lowerBound)]
            let after = found.upperBound == line.endIndex ? nil : line[found.upperBound]
            func isWordCharacter(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false }
            if !isWordCharacter(before) && !isWordCharacter(after) { return true }
            searchRange = found.upperBound..<line.endIndex
        }
        return false
    }

    // MARK: the test

    @Test func iniWithEveryDocumentedKeyStartsCleanly() throws {
        let documented = try Self.documentedKeys(readTextFile(Self.examplePath))
        try #require(documented.implemented.count > 50, "too few keys read from \(Self.examplePath)")
        try #require(!documented.unimplemented.isEmpty, "no unimplemented keys read from \(Self.examplePath)")
        #expect(Set(documented.allKeys).count == documented.allKeys.count,
                "pooler.ini.example documents a key twice: \(documented.allKeys)")
        #expect(documented.databaseFields.contains("host") && documented.userFields.contains("pool_mode"),
                "\(documented.databaseFields) \(documented.userFields)")

        let cluster = try PostgresCluster.shared()
        let certificates = try TestCertificates.shared()
        let runAs = TestEnvironment.poolerRunAs
        let runAsName = try #require(runAs ?? TestEnvironment.currentUserName())
        let account = try #require(getpwnam(runAsName), "no OS user \(runAsName)")
        let group = try #require(getgrgid(account.pointee.pw_gid).map { String(cString: $0.pointee.gr_name) })
        let metricsPort = try FreePort.pick()
        let peerPort = try FreePort.pick()

        // [databases]: one entry with every documented field, app_db (auth_dbname)
        // and the "*" fallback. PoolerIni has no [users] section, so it follows the
        // database lines (the renderer writes them verbatim).
        let databaseValues = Self.databaseFields(postgresPort: cluster.port)
        let missingDatabaseFields = documented.databaseFields.filter { databaseValues[$0] == nil }
        #expect(missingDatabaseFields.isEmpty, "no test value for documented [databases] fields \(missingDatabaseFields)")
        let undocumentedDatabaseFields = databaseValues.keys.filter { !documented.databaseFields.contains($0) }
        #expect(undocumentedDatabaseFields.isEmpty, "[databases] fields not in pooler.ini.example: \(undocumentedDatabaseFields)")
        let missingUserFields = documented.userFields.filter { Self.userFields[$0] == nil }
        #expect(missingUserFields.isEmpty, "no test value for documented [users] fields \(missingUserFields)")
        let databases = [
            "everykey = " + Self.connectionString(databaseValues, order: documented.databaseFields),
            "app_db = host=127.0.0.1 port=\(cluster.port) dbname=app_db",
            "* = host=127.0.0.1 port=\(cluster.port)",
            "",
            "[users]",
            "app = " + Self.connectionString(Self.userFields, order: documented.userFields),
        ]
        let peers = ["2 = host=127.0.0.1 port=\(peerPort) pool_size=3"]

        var expected: [String: Value] = [:]
        var missingValues: [String] = []
        let pooler = try PoolerProcess(databases: databases, peers: peers) { runDirectory in
            try writeTextFile(runDirectory + "/hba.conf", """
                local all all                 scram-sha-256
                host  all all 127.0.0.1/32    scram-sha-256

                """, mode: 0o600)
            try writeTextFile(runDirectory + "/ident.map", "# map  system-user  pg-user\n", mode: 0o600)
            try writeTextFile(runDirectory + "/resolv.conf", "nameserver 127.0.0.1\n")
            for file in ["/hba.conf", "/ident.map", "/resolv.conf"] {
                try TestEnvironment.chown(runDirectory + file, to: runAs)
            }
            try Self.copy(certificates.ca, to: runDirectory + "/ca.crt", mode: 0o644, owner: runAs)
            try Self.copy(certificates.server.certificate, to: runDirectory + "/client-tls.crt", mode: 0o644, owner: runAs)
            try Self.copy(certificates.server.key, to: runDirectory + "/client-tls.key", mode: 0o600, owner: runAs)
            try Self.copy(certificates.appClient.certificate, to: runDirectory + "/server-tls.crt", mode: 0o644, owner: runAs)
            try Self.copy(certificates.appClient.key, to: runDirectory + "/server-tls.key", mode: 0o600, owner: runAs)

            let chosen = Self.values(runDirectory: runDirectory, iniPath: runDirectory + "/pooler.ini",
                                     runAs: runAsName, group: group, metricsPort: metricsPort)
            var lines: [String] = []
            for (key, defaultValue) in documented.implemented where key != "listen_port" {
                let value = chosen[key] ?? Value(defaultValue)
                expected[key] = value
                lines.append("\(key) = \(value.ini)")
            }
            for key in documented.unimplemented {
                guard let value = chosen[key] else {
                    missingValues.append(key)
                    continue
                }
                expected[key] = value
                lines.append("\(key) = \(value.ini)")
            }
            return lines
        }
        defer { pooler.stop() }
        expected["listen_port"] = Value(String(pooler.port))
        #expect(missingValues.isEmpty, "no test value for documented keys \(missingValues); add them to values(...)")
        let chosen = Self.values(runDirectory: pooler.runDirectory, iniPath: pooler.iniPath, runAs: runAsName,
                                 group: group, metricsPort: metricsPort)
        let undocumented = chosen.keys.filter { !documented.allKeys.contains($0) }
        #expect(undocumented.isEmpty, "test values for keys pooler.ini.example does not document: \(undocumented)")
        let ini = readTextFile(pooler.iniPath)
        for key in documented.allKeys {
            #expect(ini.contains("\n\(key) = "), "the ini does not set \(key):\n\(ini)")
        }

        // A real query through the configured database, over TLS verified
        // against the CA, with the entry's startup parameters and connect_query.
        let tls = TestCertificates.libpqTLS(mode: "verify-full", rootCertificate: certificates.ca)
        let client = try pooler.connect(user: "app", database: "everykey", extra: tls)
        defer { client.close() }
        #expect(client.connection.map { PQsslInUse($0) } == 1, "the client connection should use TLS")
        let answer = try client.exec("SELECT 6 * 7, current_user, current_database()")
        #expect(answer.rows.first == ["42", "app", "app_db"], "\(answer.rows)\n\(pooler.diagnostics)")
        #expect(try client.exec("SHOW TimeZone").scalar == "Asia/Tokyo")
        #expect(try client.exec("SHOW DateStyle").scalar == "SQL, DMY")
        #expect(try client.exec("SHOW client_encoding").scalar == "LATIN1")
        #expect(try client.exec("SHOW work_mem").scalar == "7777kB", "connect_query should have run on the server")

        // The "*" fallback, without TLS (client_tls_sslmode = allow).
        let fallback = try pooler.connect(user: "app", database: "postgres")
        defer { fallback.close() }
        #expect(try fallback.exec("SELECT current_database()").scalar == "postgres")

        // SHOW CONFIG lists every documented key once, with the value set.
        let admin = try pooler.admin()
        defer { admin.close() }
        let config = try admin.exec("SHOW CONFIG")
        var shown: [String: [String]] = [:]
        for row in config.rows.indices {
            guard let key = config.value(row, "key") else { continue }
            shown[key, default: []].append(config.value(row, "value") ?? "")
        }
        let documentedSet = Set(documented.allKeys)
        #expect(Set(shown.keys) == documentedSet,
                "SHOW CONFIG keys vs pooler.ini.example: missing \(documentedSet.subtracting(shown.keys).sorted()), undocumented \(Set(shown.keys).subtracting(documentedSet).sorted())")
        for key in documented.allKeys {
            guard let want = expected[key] else { continue }
            #expect(shown[key] == [want.shown], "SHOW CONFIG \(key): \(shown[key] ?? []), expected \(want.shown)")
        }

        // The [databases], [users] and [peers] entries as the console shows them.
        let databaseRows = try admin.exec("SHOW DATABASES")
        let everykey = databaseRows.rowIndices(where: ["name": "everykey"])
        try #require(everykey.count == 1, "\(databaseRows.rows)")
        let wantDatabase = [
            "host": "127.0.0.1", "port": String(cluster.port), "database": "app_db", "force_user": "app",
            "pool_size": "3", "min_pool_size": "1", "reserve_pool_size": "1", "server_lifetime": "1800",
            "pool_mode": "transaction", "max_connections": "8", "max_client_connections": "50",
        ]
        for (column, want) in wantDatabase.sorted(by: { $0.key < $1.key }) {
            #expect(databaseRows.value(everykey[0], column) == want,
                    "SHOW DATABASES everykey.\(column): \(databaseRows.value(everykey[0], column) ?? "NULL"), expected \(want)")
        }
        let users = try admin.exec("SHOW USERS")
        let appUser = users.rowIndices(where: ["name": "app"])
        try #require(appUser.count == 1, "\(users.rows)")
        let wantUser = ["pool_size": "4", "reserve_pool_size": "1", "pool_mode": "transaction",
                        "max_user_connections": "20", "max_user_client_connections": "20"]
        for (column, want) in wantUser.sorted(by: { $0.key < $1.key }) {
            let got = users.value(appUser[0], column)?.trimmingCharacters(in: .whitespaces)
            #expect(got == want, "SHOW USERS app.\(column): \(got ?? "NULL"), expected \(want)")
        }
        let peerRows = try admin.exec("SHOW PEERS")
        #expect(peerRows.rowIndices(where: ["peer_id": "2", "host": "127.0.0.1", "port": String(peerPort),
                                            "pool_size": "3"]).count == 1, "\(peerRows.rows)")

        // The listeners and files the keys name.
        #expect(try HTTPGet.get(port: metricsPort, path: "/healthz").status == 200, "metrics_listen_port")
        var socketStatus = stat()
        #expect(stat(pooler.runDirectory + "/.s.PGSQL.\(pooler.port)", &socketStatus) == 0, "no unix socket in unix_socket_dir")
        #expect(socketStatus.st_mode & 0o777 == 0o700, "unix_socket_mode: \(String(socketStatus.st_mode & 0o777, radix: 8))")
        let pidText = readTextFile(pooler.runDirectory + "/pooler.pid").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pidText == pooler.processID.map { String($0) }, "pidfile: \(pidText)")

        // Still up, and the log is clean: no ERROR/FATAL, one warning for each key
        // documented as not acted on, and a "not supported" warning for no other key.
        #expect(pooler.isRunning, "the pooler exited\n\(pooler.diagnostics)")
        let log = pooler.logText
        #expect(log.contains("process up"), "logfile: \(pooler.logPath)\n\(pooler.diagnostics)")
        let failures = ["ERROR", "FATAL", "PANIC"].flatMap { Self.lines(log, label: $0) }
        #expect(failures.isEmpty, "errors in the log:\n\(failures.joined(separator: "\n"))")
        let warnings = Self.lines(log, label: "WARNING")
        for key in documented.unimplemented {
            let naming = warnings.filter { Self.names($0, key) }
            #expect(naming.count == 1, "expected exactly one WARNING naming \(key), got \(naming.count):\n\(naming.joined(separator: "\n"))")
        }
        let notSupported = warnings.filter {
            let text = $0.lowercased()
            return text.contains("not supported") || text.contains("not implemented") || text.contains("ignored")
        }
        for (key, _) in documented.implemented {
            let naming = notSupported.filter { Self.names($0, key) }
            #expect(naming.isEmpty, "\(key) is documented as supported, but the log says otherwise:\n\(naming.joined(separator: "\n"))")
        }
    }
}
