import Testing
@testable import PoolerAdmin

@Suite struct AdminConsoleTests {
    // 2008-11-07 11:56:46.841546 UTC (PgBouncer's own format_time_s test value)
    static let now: UInt64 = 1_226_059_006_841_546

    static func sampleSnapshot() -> AdminSnapshot {
        let client = AdminSocket(
            state: .client(.active), poolIndex: 1, user: "alice", database: "app",
            address: "127.0.0.1", port: 50000, localAddress: "127.0.0.1", localPort: 6432,
            connectTime: now - 3_600_000_000, requestTime: now - 1_000_000,
            ptr: 0x55d0_c0ff_ee00, link: 0x55d0_c0ff_ef00, remotePid: 0,
            tls: "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519", applicationName: "psql",
            preparedStatements: 2, id: 7)
        let waiting = AdminSocket(
            state: .client(.waiting), poolIndex: 0, user: "bob", database: "app",
            address: "unix", port: 6432, localAddress: "unix", localPort: 6432,
            connectTime: now - 10_000_000, requestTime: now - 2_500_000, queryStart: now - 2_500_000,
            ptr: 0x1000, remotePid: 4242, id: 8)
        let idleClient = AdminSocket(
            state: .client(.active), poolIndex: 0, user: "bob", database: "app",
            address: "10.0.0.2", port: 40000, localAddress: "10.0.0.1", localPort: 6432,
            connectTime: 0, requestTime: 0, ptr: 0x2000, id: 9)
        let login = AdminSocket(
            state: .client(.login), poolIndex: 0, user: nil, database: nil,
            address: "10.0.0.3", port: 40001, localAddress: "10.0.0.1", localPort: 6432,
            connectTime: now, requestTime: now, ptr: 0x3000, id: 10)
        let server = AdminSocket(
            state: .server(.active), poolIndex: 1, user: "alice", database: "app",
            address: "127.0.0.1", port: 5432, localAddress: "127.0.0.1", localPort: 51000,
            connectTime: now - 7_200_000_000, requestTime: now - 1_000_000,
            ptr: 0x55d0_c0ff_ef00, link: 0x55d0_c0ff_ee00, remotePid: 31337, id: 3)
        let idleServer = AdminSocket(
            state: .server(.idle), poolIndex: 0, user: "bob", database: "app",
            address: "127.0.0.1", port: 5432, localAddress: "127.0.0.1", localPort: 51001,
            connectTime: now - 5_000_000, requestTime: now - 4_000_000, closeNeeded: true,
            ptr: 0x4000, remotePid: 999, id: 4)
        return AdminSnapshot(
            now: now, timeZone: AdminTimeZone(name: "GMT"), version: "PgBouncer 1.25.2",
            pauseState: .paused,
            databases: [
                AdminDatabase(name: "app", host: "db1,db2", port: 5432, database: "appdb", forceUser: nil,
                              poolSize: 20, minPoolSize: 0, reservePoolSize: 0, serverLifetimeSeconds: 3600,
                              poolMode: nil, loadBalanceHosts: "round-robin", maxConnections: 0,
                              currentConnections: 2, maxClientConnections: 0, currentClientConnections: 3,
                              paused: false, disabled: true),
                AdminDatabase(name: "pgbouncer", host: nil, port: 6432, database: "pgbouncer",
                              forceUser: "pgbouncer", poolSize: 2, serverLifetimeSeconds: 3600,
                              poolMode: "statement"),
            ],
            pools: [
                AdminPool(database: "app", user: "bob", clientsActive: 1, clientsWaiting: 1, serversIdle: 1,
                          maxWaitMicroseconds: 2_500_000, poolMode: "transaction", databaseHost: "db1,db2",
                          loadBalanceHosts: "round-robin"),
                AdminPool(database: "app", user: "alice", clientsActive: 1, serversActive: 1,
                          poolMode: "session", databaseHost: "localhost"),
            ],
            sockets: [login, client, server, waiting, idleServer, idleClient],
            users: [
                AdminUser(name: "alice", poolSize: 30, reservePoolSize: nil, poolMode: "transaction",
                          maxUserConnections: 100, currentConnections: 1, maxUserClientConnections: 0,
                          currentClientConnections: 1),
                AdminUser(name: "bob", maxUserConnections: 0, currentConnections: 1),
            ],
            stats: [
                AdminStats(database: "app",
                           totals: AdminStatCounters(serverAssignmentCount: 10, xactCount: 20, queryCount: 30,
                                                     received: 4000, sent: 5000, xactTime: 6000, queryTime: 7000,
                                                     waitTime: 800, clientParseCount: 1, serverParseCount: 2,
                                                     bindCount: 3),
                           averages: AdminStatCounters(serverAssignmentCount: 1, xactCount: 2, queryCount: 3,
                                                       received: 400, sent: 500, xactTime: 300, queryTime: 233,
                                                       waitTime: 80)),
            ],
            lists: AdminLists(databases: 2, users: 2, pools: 3, usedClients: 4, loginClients: 1, usedServers: 2),
            config: [AdminConfigEntry(key: "admin_users", value: "admin", defaultValue: "", changeable: true),
                     AdminConfigEntry(key: "listen_port", value: "6432", defaultValue: "6432", changeable: false)])
    }

    func table(_ query: String, admin: Bool = true, snapshot: AdminSnapshot = sampleSnapshot()) -> AdminTable? {
        if case .table(let t) = AdminConsole.handle(query: query, snapshot: snapshot, isAdmin: admin) { return t }
        return nil
    }

    // MARK: column lists

    static let socketColumns = [
        "type", "user", "database", "replication", "state", "addr", "port", "local_addr", "local_port",
        "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid",
        "tls", "application_name", "prepared_statements", "id",
    ]

    @Test func columnNamesInOrder() throws {
        let expected: [String: [String]] = [
            "CLIENTS": Self.socketColumns,
            "SERVERS": Self.socketColumns,
            "SOCKETS": Self.socketColumns + ["recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain",
                                              "pkt_avail", "send_avail"],
            "POOLS": ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
                      "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle",
                      "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode",
                      "load_balance_hosts"],
            "DATABASES": ["name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                          "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                          "max_connections", "current_connections", "max_client_connections",
                          "current_client_connections", "paused", "disabled"],
            "STATS": ["database", "total_server_assignment_count", "total_xact_count", "total_query_count",
                      "total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
                      "total_client_parse_count", "total_server_parse_count", "total_bind_count",
                      "avg_server_assignment_count", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
                      "avg_xact_time", "avg_query_time", "avg_wait_time", "avg_client_parse_count",
                      "avg_server_parse_count", "avg_bind_count"],
            "STATS_TOTALS": ["database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
                             "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
                             "server_parse_count", "bind_count"],
            "STATS_AVERAGES": ["database", "server_assignment_count", "xact_count", "query_count",
                               "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
                               "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"],
            "TOTALS": ["name", "value"],
            "LISTS": ["list", "items"],
            "USERS": ["name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
                      "current_connections", "max_user_client_connections", "current_client_connections"],
            "CONFIG": ["key", "value", "default", "changeable"],
            "VERSION": ["version"],
            "STATE": ["key", "value"],
            "FDS": ["fd", "task", "user", "database", "addr", "port", "cancel", "link", "client_encoding",
                    "std_strings", "datestyle", "timezone", "password", "scram_client_key", "scram_server_key"],
            "MEM": ["name", "size", "used", "free", "memtotal"],
            "DNS_HOSTS": ["hostname", "ttl", "addrs"],
            "DNS_ZONES": ["zonename", "serial", "count"],
            "PEERS": ["peer_id", "host", "port", "pool_size"],
            "PEER_POOLS": ["peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel",
                           "sv_login"],
        ]
        for (subject, names) in expected {
            let t = try #require(table("SHOW \(subject);"), "SHOW \(subject)")
            #expect(t.columnNames == names, "SHOW \(subject)")
            #expect(t.tag == "SHOW")
        }
        #expect(table("SHOW ACTIVE_SOCKETS")?.columnNames == expected["SOCKETS"])
    }

    @Test func columnTypes() throws {
        let pools = try #require(table("SHOW POOLS"))
        #expect(pools.columns.map(\.type.oid) == [25, 25] + Array(repeating: 23, count: 13) + [25, 25])
        let stats = try #require(table("SHOW STATS"))
        #expect(stats.columns[0].type == .text)
        #expect(stats.columns.dropFirst().allSatisfy { $0.type == .numeric && $0.type.oid == 1700 })
        let clients = try #require(table("SHOW CLIENTS"))
        #expect(clients.columns.map(\.type) == [
            .text, .text, .text, .text, .text, .text, .int4, .text, .int4, .text, .text, .int4, .int4, .int4,
            .text, .text, .int4, .text, .text, .int4, .int4,
        ])
        #expect(table("SHOW DNS_HOSTS")?.columns[1].type == .int8)
        #expect(AdminColumnType.int8.oid == 20 && AdminColumnType.int8.typeSize == 8)
        #expect(AdminColumnType.int4.typeSize == 4 && AdminColumnType.text.typeSize == -1)
        #expect(table("SHOW FDS")?.columns.last?.type.oid == 17)
    }

    // MARK: rows

    @Test func clientRows() throws {
        let t = try #require(table("SHOW CLIENTS"))
        // pool 0 first (active, then waiting), then pool 1; login clients are not listed
        #expect(t.rows.count == 3)
        #expect(t.rows.map { $0[1] } == ["bob", "bob", "alice"])
        let idle = t.rows[0]
        #expect(idle[4] == "idle")  // active but unlinked
        #expect(idle[9] == "2008-11-07 11:56:46 GMT")  // zero timestamps render as now
        #expect(idle[15] == "")
        let waiting = t.rows[1]
        #expect(waiting[4] == "waiting")
        #expect(waiting[5] == "unix")
        #expect(waiting[11] == "2" && waiting[12] == "500000")
        #expect(waiting[16] == "4242")
        let alice = t.rows[2]
        #expect(alice == [
            "C", "alice", "app", "none", "active", "127.0.0.1", "50000", "127.0.0.1", "6432",
            "2008-11-07 10:56:46 GMT", "2008-11-07 11:56:45 GMT", "0", "0", "0",
            "0x55d0c0ffee00", "0x55d0c0ffef00", "0", "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519", "psql",
            "2", "7",
        ])
    }

    @Test func serverRows() throws {
        let t = try #require(table("SHOW SERVERS"))
        #expect(t.rows.count == 2)
        #expect(t.rows[0][0] == "S")
        #expect(t.rows[0][4] == "idle")
        #expect(t.rows[0][13] == "1")  // close_needed
        #expect(t.rows[1][4] == "active")
        #expect(t.rows[1][14] == "0x55d0c0ffef00")
        #expect(t.rows[1][15] == "0x55d0c0ffee00")
        #expect(t.rows[1][16] == "31337")
        #expect(t.rows[1][9] == "2008-11-07 09:56:46 GMT")
    }

    @Test func socketRows() throws {
        let t = try #require(table("SHOW SOCKETS"))
        #expect(t.rows.map { $0[4] } == ["cl_active", "cl_waiting", "sv_idle", "cl_active", "sv_active", "cl_login"])
        #expect(t.rows.last?[1] == "(nouser)")
        #expect(t.rows.last?[2] == "(nodb)")
        #expect(t.rows[0].count == 28)
        #expect(table("SHOW ACTIVE_SOCKETS")?.rows.isEmpty == true)
    }

    @Test func poolRows() throws {
        let t = try #require(table("SHOW POOLS"))
        #expect(t.rows[0] == ["app", "bob", "1", "1", "0", "0", "0", "0", "0", "1", "0", "0", "0", "2", "500000",
                              "transaction", "round-robin"])
        #expect(t.rows[1][15] == "session")
        #expect(t.rows[1][16] == nil)  // single host: NULL
    }

    @Test func databaseRows() throws {
        let t = try #require(table("SHOW DATABASES"))
        #expect(t.rows[0] == ["app", "db1,db2", "5432", "appdb", nil, "20", "0", "0", "3600", nil, "round-robin",
                              "0", "2", "0", "3", "0", "1"])
        #expect(t.rows[1] == ["pgbouncer", nil, "6432", "pgbouncer", "pgbouncer", "2", "0", "0", "3600",
                              "statement", nil, "0", "0", "0", "0", "0", "0"])
    }

    @Test func userRows() throws {
        let t = try #require(table("SHOW USERS"))
        #expect(t.rows[0] == ["alice", "       30", "", "transaction", "100", "1", "0", "1"])
        // PgBouncer's buffers carry over to the next user without an override
        #expect(t.rows[1] == ["bob", "       30", "", nil, "0", "1", "0", "0"])
    }

    @Test func statsRows() throws {
        let t = try #require(table("SHOW STATS"))
        #expect(t.rows == [["app", "10", "20", "30", "4000", "5000", "6000", "7000", "800", "1", "2", "3",
                            "1", "2", "3", "400", "500", "300", "233", "80", "0", "0", "0"]])
        #expect(table("SHOW STATS_TOTALS")?.rows == [["app", "10", "20", "30", "4000", "5000", "6000", "7000",
                                                      "800", "1", "2", "3"]])
        #expect(table("SHOW STATS_AVERAGES")?.rows == [["app", "1", "2", "3", "400", "500", "300", "233", "80",
                                                        "0", "0", "0"]])
        let totals = try #require(table("SHOW TOTALS"))
        #expect(totals.rows.count == 22)
        #expect(totals.rows[0] == ["total_server_assignment_count", "10"])
        #expect(totals.rows[3] == ["total_client_bytes", "4000"])
        #expect(totals.rows[10] == ["total_ps_bind_count", "3"])
        #expect(totals.rows[11] == ["avg_server_assignment_count", "1"])
        #expect(totals.rows[16] == ["avg_xact_time", "300"])
    }

    @Test func averagesFollowCalcAverage() {
        let older = AdminStatCounters(serverAssignmentCount: 10, xactCount: 100, queryCount: 200, received: 1000,
                                      xactTime: 5_000, queryTime: 8_000, waitTime: 100)
        let current = AdminStatCounters(serverAssignmentCount: 30, xactCount: 400, queryCount: 800, received: 61000,
                                        xactTime: 35_000, queryTime: 20_000, waitTime: 700)
        let avg = AdminStatCounters.averages(current: current, older: older, elapsedMicroseconds: 30_000_000)
        #expect(avg.xactCount == 10)
        #expect(avg.queryCount == 20)
        #expect(avg.received == 2000)
        #expect(avg.xactTime == 100)
        #expect(avg.queryTime == 20)
        #expect(avg.waitTime == 30)
        #expect(AdminStatCounters.averages(current: current, older: older, elapsedMicroseconds: 0) == .zero)
    }

    @Test func listsStateConfigVersion() throws {
        let lists = try #require(table("SHOW LISTS"))
        #expect(lists.rows.map { $0[0] } == ["databases", "users", "peers", "pools", "peer_pools", "free_clients",
                                             "used_clients", "login_clients", "free_servers", "used_servers",
                                             "dns_names", "dns_zones", "dns_queries", "dns_pending"])
        #expect(lists.rows[3] == ["pools", "3"])
        #expect(table("SHOW STATE")?.rows == [["active", "no"], ["paused", "yes"], ["suspended", "no"]])
        #expect(table("SHOW CONFIG")?.rows == [["admin_users", "admin", "", "yes"],
                                               ["listen_port", "6432", "6432", "no"]])
        #expect(table("SHOW VERSION")?.rows == [["PgBouncer 1.25.2"]])
        #expect(table("SHOW MEM")?.rows.isEmpty == true)
        #expect(table("SHOW DNS_HOSTS")?.rows.isEmpty == true)
        #expect(table("SHOW DNS_ZONES")?.rows.isEmpty == true)
    }

    @Test func fakeShow() {
        #expect(table("SHOW client_encoding") == AdminTable(
            columns: [AdminColumn(name: "client_encoding", type: .text)], rows: [["UTF-8"]]))
        #expect(table("SHOW TIMEZONE", admin: false)?.rows == [["GMT"]])
    }

    @Test func help() {
        let reply = AdminConsole.handle(query: "SHOW HELP;", snapshot: Self.sampleSnapshot(), isAdmin: false)
        guard case .command(let tag, let notices) = reply else {
            Issue.record("expected notices, got \(reply)")
            return
        }
        #expect(tag == "SHOW")
        #expect(notices.count == 1)
        #expect(notices[0].severity == "NOTICE" && notices[0].code == "00000")
        #expect(notices[0].message == "Console usage")
        #expect(notices[0].detail?.hasPrefix("\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n") == true)
        #expect(notices[0].detail?.hasSuffix("\tWAIT_CLOSE [<db>]") == true)
    }

    // MARK: permissions and actions

    @Test func statsUserMayShowButNotControl() {
        let s = Self.sampleSnapshot()
        for q in ["PAUSE", "RESUME db", "SUSPEND", "RELOAD", "KILL", "KILL_CLIENT 1", "DISABLE db", "ENABLE db",
                  "RECONNECT", "WAIT_CLOSE", "SHUTDOWN", "SHUTDOWN WAIT_FOR_CLIENTS", "SET log_connections = 0",
                  "SHOW FDS"] {
            #expect(AdminConsole.handle(query: q, snapshot: s, isAdmin: false) == .error(.adminAccessNeeded), "\(q)")
        }
        #expect(AdminError.adminAccessNeeded.message == "admin access needed")
        #expect(AdminError.adminAccessNeeded.code == "08P01")
        for q in ["SHOW POOLS", "SHOW CLIENTS", "SHOW STATS", "SHOW CONFIG", "SHOW LISTS", "SHOW USERS"] {
            #expect(table(q, admin: false) != nil, "\(q)")
        }
        // syntax errors come before the permission check
        if case .error(let e) = AdminConsole.handle(query: "RELOAD x", snapshot: s, isAdmin: false) {
            #expect(e.message == "invalid command 'RELOAD x', use SHOW HELP;")
        } else {
            Issue.record("expected an error")
        }
    }

    @Test func adminActions() {
        let s = Self.sampleSnapshot()
        #expect(AdminConsole.handle(query: "PAUSE app;", snapshot: s, isAdmin: true) == .action(.pause("app")))
        #expect(AdminConsole.handle(query: "shutdown wait_for_servers", snapshot: s, isAdmin: true)
                    == .action(.shutdown(.waitForServers)))
        #expect(AdminConsole.handle(query: "SET log_connections = 0", snapshot: s, isAdmin: true)
                    == .action(.set(key: "log_connections", value: "0")))
        #expect(AdminConsole.handle(query: "KILL_CLIENT 99", snapshot: s, isAdmin: true) == .action(.killClient("99")))
        #expect(AdminConsole.handle(query: "KILL_CLIENT abc", snapshot: s, isAdmin: true)
                    == .error(AdminError(message: "invalid client pointer supplied")))
        #expect(AdminConsole.handle(query: "DISABLE", snapshot: s, isAdmin: true)
                    == .error(AdminError(message: "a database is required")))
        // faked parameters are acknowledged even for stats users
        #expect(AdminConsole.handle(query: "SET client_encoding = 'UTF8'", snapshot: s, isAdmin: false)
                    == .command(tag: "SET", notices: [AdminNotice(message: "SET ignored")]))
        #expect(AdminError.reloadFailed.code == "F0000")
    }

    // MARK: formatting

    @Test func timestampFormatting() {
        #expect(AdminFormat.timestamp(1_226_059_006_841_546, now: 0, timeZone: AdminTimeZone(name: "GMT"))
                    == "2008-11-07 11:56:46 GMT")
        #expect(AdminFormat.timestamp(1_000_000, now: 0) == "1970-01-01 00:00:01 UTC")
        #expect(AdminFormat.timestamp(951_782_400_000_000, now: 0) == "2000-02-29 00:00:00 UTC")
        #expect(AdminFormat.timestamp(1_767_225_599_000_000, now: 0) == "2025-12-31 23:59:59 UTC")
        #expect(AdminFormat.timestamp(1_767_225_599_000_000, now: 0,
                                      timeZone: AdminTimeZone(name: "CET", offsetSeconds: 3600))
                    == "2026-01-01 00:59:59 CET")
        #expect(AdminFormat.timestamp(0, now: 86_400_000_000) == "1970-01-02 00:00:00 UTC")
    }

    @Test func pointerAndIntFormatting() {
        #expect(AdminFormat.pointer(0x7f00_dead_beef) == "0x7f00deadbeef")
        #expect(AdminFormat.pointer(0) == "(nil)")
        #expect(AdminFormat.int4(42) == "42")
        #expect(AdminFormat.int4(-1) == "-1")
        #expect(AdminFormat.tlsInfo(protocolVersion: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384",
                                    keyExchange: "ECDH=X25519") == "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519")
    }
}
