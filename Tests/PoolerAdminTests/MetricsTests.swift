import Foundation
import Testing
@testable import PoolerAdmin

@Suite struct MetricsTests {
    static let snapshot = AdminSnapshot(
        now: 1_700_000_000_000_000,
        version: "PgBouncer 1.25.2",
        pauseState: .paused,
        databases: [
            AdminDatabase(name: "app", host: "db1", port: 5432, database: "appdb", poolSize: 20,
                          minPoolSize: 2, reservePoolSize: 5, poolMode: "transaction",
                          maxConnections: 100, currentConnections: 7, maxClientConnections: 50,
                          currentClientConnections: 9, paused: false, disabled: true),
            AdminDatabase(name: "pgbouncer", host: nil, port: 6432, database: "pgbouncer",
                          forceUser: "pgbouncer", poolSize: 2, poolMode: "statement"),
        ],
        pools: [
            AdminPool(database: "app", user: "alice", clientsActive: 3, clientsWaiting: 2,
                      clientsActiveCancelRequest: 1, serversActive: 3, serversIdle: 4, serversUsed: 1,
                      serversTested: 1, serversLogin: 1, maxWaitMicroseconds: 1_500_000),
            AdminPool(database: "app", user: "bob \"the\" builder\\\n"),
        ],
        sockets: [
            AdminSocket(state: .client(.active), user: "alice", database: "app", address: "127.0.0.1", port: 1,
                        localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0, ptr: 1,
                        link: 10, applicationName: "psql", id: 1),
            AdminSocket(state: .client(.active), user: "alice", database: "app", address: "127.0.0.1", port: 2,
                        localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0, ptr: 2,
                        link: 11, applicationName: "psql", id: 2),
            AdminSocket(state: .client(.active), user: "alice", database: "app", address: "127.0.0.1", port: 3,
                        localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0, ptr: 3,
                        applicationName: "psql", id: 3),
            AdminSocket(state: .client(.waiting), user: "alice", database: "app", address: "127.0.0.1", port: 4,
                        localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0, ptr: 4,
                        applicationName: "", id: 4),
            AdminSocket(state: .client(.login), user: nil, database: nil, address: "127.0.0.1", port: 5,
                        localAddress: "127.0.0.1", localPort: 6432, connectTime: 0, requestTime: 0, ptr: 5, id: 5),
            AdminSocket(state: .server(.active), user: "alice", database: "app", address: "10.0.0.1", port: 5432,
                        localAddress: "10.0.0.2", localPort: 40000, connectTime: 0, requestTime: 0, ptr: 10,
                        link: 1, id: 10),
            AdminSocket(state: .server(.idle), user: "alice", database: "app", address: "10.0.0.1", port: 5432,
                        localAddress: "10.0.0.2", localPort: 40001, connectTime: 0, requestTime: 0, ptr: 12, id: 12),
            AdminSocket(state: .server(.idle), user: "alice", database: "app", address: "10.0.0.1", port: 5432,
                        localAddress: "10.0.0.2", localPort: 40002, connectTime: 0, requestTime: 0, ptr: 13, id: 13),
        ],
        users: [AdminUser(name: "alice", maxUserConnections: 10, currentConnections: 3,
                          maxUserClientConnections: 0, currentClientConnections: 4)],
        stats: [
            AdminStats(database: "app",
                       totals: AdminStatCounters(serverAssignmentCount: 11, xactCount: 40, queryCount: 120,
                                                 received: 4096, sent: 8192, xactTime: 2_500_000,
                                                 queryTime: 1_000_001, waitTime: 250, clientParseCount: 6,
                                                 serverParseCount: 2, bindCount: 30),
                       averages: .zero),
        ],
        lists: AdminLists(databases: 2, users: 1, pools: 2, freeClients: 10, usedClients: 5, loginClients: 1,
                          freeServers: 3, usedServers: 4),
        config: [
            AdminConfigEntry(key: "max_client_conn", value: "100", defaultValue: "100", changeable: true),
            AdminConfigEntry(key: "max_user_connections", value: "0", defaultValue: "0", changeable: true),
            AdminConfigEntry(key: "listen_addr", value: "*", defaultValue: "", changeable: false),
        ])

    static let process = ProcessMetrics(cpuSeconds: 12.25, residentBytes: 8_388_608, openFDs: 17, maxFDs: 1024,
                                        startTimeSeconds: 1_699_999_000.5)

    static var text: String { MetricsRenderer.render(snapshot, process: process) }
    static var lines: [Substring] { text.split(separator: "\n") }

    @Test func expectedLines() {
        let lines = Set(Self.lines)
        let expected: [Substring] = [
            "# HELP pgbouncer_up The pgbouncer scrape succeeded",
            "# TYPE pgbouncer_up gauge",
            "pgbouncer_up 1",
            #"pgbouncer_version_info{version="PgBouncer 1.25.2"} 1"#,
            "pgbouncer_paused 1",
            "pgbouncer_suspended 0",
            "# TYPE pgbouncer_pools_client_active_connections gauge",
            #"pgbouncer_pools_client_active_connections{database="app",user="alice"} 3"#,
            #"pgbouncer_pools_client_waiting_connections{database="app",user="alice"} 2"#,
            #"pgbouncer_pools_client_active_cancel_connections{database="app",user="alice"} 1"#,
            #"pgbouncer_pools_server_active_connections{database="app",user="alice"} 3"#,
            #"pgbouncer_pools_server_idle_connections{database="app",user="alice"} 4"#,
            #"pgbouncer_pools_server_used_connections{database="app",user="alice"} 1"#,
            #"pgbouncer_pools_server_testing_connections{database="app",user="alice"} 1"#,
            #"pgbouncer_pools_server_login_connections{database="app",user="alice"} 1"#,
            #"pgbouncer_pools_client_maxwait_seconds{database="app",user="alice"} 1.5"#,
            "# TYPE pgbouncer_stats_totals_queries_pooled_total counter",
            #"pgbouncer_stats_totals_queries_pooled_total{database="app"} 120"#,
            #"pgbouncer_stats_totals_queries_duration_seconds_total{database="app"} 1.000001"#,
            #"pgbouncer_stats_totals_received_bytes_total{database="app"} 4096"#,
            #"pgbouncer_stats_totals_sent_bytes_total{database="app"} 8192"#,
            #"pgbouncer_stats_totals_sql_transactions_pooled_total{database="app"} 40"#,
            #"pgbouncer_stats_totals_server_in_transaction_seconds_total{database="app"} 2.5"#,
            #"pgbouncer_stats_totals_client_wait_seconds_total{database="app"} 0.00025"#,
            #"pgbouncer_stats_totals_client_parses_total{database="app"} 6"#,
            #"pgbouncer_stats_totals_server_parses_total{database="app"} 2"#,
            #"pgbouncer_stats_totals_binds_total{database="app"} 30"#,
            #"pgbouncer_stats_totals_server_assignments_total{database="app"} 11"#,
            #"pgbouncer_databases_pool_size{name="app",host="db1",port="5432",database="appdb",force_user="",pool_mode="transaction"} 20"#,
            #"pgbouncer_databases_reserve_pool{name="app",host="db1",port="5432",database="appdb",force_user="",pool_mode="transaction"} 5"#,
            #"pgbouncer_databases_current_connections{name="app",host="db1",port="5432",database="appdb",force_user="",pool_mode="transaction"} 7"#,
            #"pgbouncer_databases_disabled{name="app",host="db1",port="5432",database="appdb",force_user="",pool_mode="transaction"} 1"#,
            #"pgbouncer_databases_pool_size{name="pgbouncer",host="",port="6432",database="pgbouncer",force_user="pgbouncer",pool_mode="statement"} 2"#,
            #"pgbouncer_users_current_client_connections{user="alice"} 4"#,
            "pgbouncer_databases 2",
            "pgbouncer_pools 2",
            "pgbouncer_login_clients 1",
            "pgbouncer_used_servers 4",
            "pgbouncer_config_max_client_connections 100",
            "pgbouncer_config_max_user_connections 0",
            #"pgbouncer_client_connections{database="app",user="alice",application_name="psql",state="active"} 2"#,
            #"pgbouncer_client_connections{database="app",user="alice",application_name="psql",state="idle"} 1"#,
            #"pgbouncer_client_connections{database="app",user="alice",application_name="",state="waiting"} 1"#,
            #"pgbouncer_server_connections{database="app",user="alice",state="active"} 1"#,
            #"pgbouncer_server_connections{database="app",user="alice",state="idle"} 2"#,
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total 12.25",
            "process_resident_memory_bytes 8388608",
            "process_open_fds 17",
            "process_max_fds 1024",
            "process_start_time_seconds 1699999000.5",
        ]
        for line in expected {
            #expect(lines.contains(line), "missing: \(line)")
        }
        // Login clients are not in SHOW CLIENTS; config keys without a metric are skipped.
        #expect(!Self.text.contains("(nouser)"))
        #expect(!Self.text.contains("listen_addr"))
        #expect(Self.text.hasSuffix("\n"))
    }

    @Test func labelValuesAreEscaped() {
        #expect(MetricsRenderer.escapeLabelValue("a\\b\"c\nd") == #"a\\b\"c\nd"#)
        #expect(MetricsRenderer.escapeLabelValue("plain ünïcode") == "plain ünïcode")
        #expect(Self.lines.contains(
            #"pgbouncer_pools_client_active_connections{database="app",user="bob \"the\" builder\\\n"} 0"#))
        #expect(MetricsRenderer.escapeHelp("a\\b\nc\"") == #"a\\b\nc""#)
    }

    @Test func valueFormatting() {
        #expect(MetricsRenderer.seconds(microseconds: 0) == "0")
        #expect(MetricsRenderer.seconds(microseconds: 1) == "0.000001")
        #expect(MetricsRenderer.seconds(microseconds: 3_000_000) == "3")
        #expect(MetricsRenderer.seconds(microseconds: 12_340_000) == "12.34")
        #expect(MetricsRenderer.seconds(microseconds: UInt64.max) == "18446744073709.551615")
        #expect(MetricsRenderer.format(2) == "2")
        #expect(MetricsRenderer.format(0.5) == "0.5")
        #expect(MetricsRenderer.format(.nan) == "NaN")
        #expect(MetricsRenderer.format(.infinity) == "+Inf")
        #expect(MetricsRenderer.format(-.infinity) == "-Inf")
        #expect(Double(MetricsRenderer.format(1e300)) == 1e300)
    }

    @Test func structure() throws {
        let nameRegex = try Regex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")
        let labelRegex = try Regex("^[a-zA-Z_][a-zA-Z0-9_]*$")
        var familiesSeen: [String] = []
        var types: [String: String] = [:]
        var current: String?
        for line in Self.lines {
            if line.hasPrefix("# HELP ") {
                let name = String(line.dropFirst(7).prefix { $0 != " " })
                #expect(!familiesSeen.contains(name), "family twice: \(name)")
                familiesSeen.append(name)
                current = name
                #expect(try nameRegex.wholeMatch(in: name) != nil, "bad name \(name)")
                #expect(line.count > 8 + name.count, "empty help for \(name)")
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                #expect(parts.count == 4)
                #expect(String(parts[2]) == current, "TYPE must follow its HELP")
                types[String(parts[2])] = String(parts[3])
                #expect(["counter", "gauge"].contains(String(parts[3])))
            } else {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                // Each sample belongs to the family whose header came last: samples are grouped.
                #expect(name == current, "sample \(name) outside its family block")
                if let open = line.firstIndex(of: "{") {
                    let body = line[line.index(after: open)...].prefix { $0 != "}" }
                    for pair in body.split(separator: ",") where pair.contains("=\"") {
                        let label = String(pair.prefix { $0 != "=" })
                        if label.contains("\"") || label.contains(" ") { continue }  // inside an escaped value
                        #expect(try labelRegex.wholeMatch(in: label) != nil, "bad label \(label)")
                    }
                }
                let value = line.split(separator: " ").last.map(String.init) ?? ""
                #expect(Double(value) != nil || ["NaN", "+Inf", "-Inf"].contains(value), "bad value: \(line)")
            }
        }
        #expect(familiesSeen == familiesSeen.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        for (name, type) in types {
            #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
        }
        #expect(types.count == familiesSeen.count)
    }

    @Test func deterministic() {
        #expect(MetricsRenderer.render(Self.snapshot, process: Self.process) == Self.text)
    }

    @Test func emptySnapshotAndNoProcess() {
        let text = MetricsRenderer.render(AdminSnapshot(now: 0), process: nil)
        #expect(text.contains("pgbouncer_up 1\n"))
        #expect(!text.contains("pgbouncer_pools_"))
        #expect(!text.contains("process_"))
        #expect(!text.contains("pgbouncer_config_"))
    }

    static let promtool: String? = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: promtool != nil, "promtool is not installed (apt-get install prometheus)"))
    func promtoolCheckMetrics() throws {
        for text in [Self.text, MetricsRenderer.render(AdminSnapshot(now: 0), process: nil)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.promtool!)
            process.arguments = ["check", "metrics"]
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = output
            try process.run()
            input.fileHandleForWriting.write(Data(text.utf8))
            try input.fileHandleForWriting.close()
            let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "promtool check metrics: \(report)")
        }
    }
}
