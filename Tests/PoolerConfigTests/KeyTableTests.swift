import Testing
@testable import PoolerConfig

@Suite struct KeyTableTests {
    @Test func namesAreUniqueAndDefaultsParse() throws {
        let names = ConfigKeys.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.count == 99 + ConfigKeys.extensionNames.count)
        for key in ConfigKeys.all where !key.defaultValue.isEmpty {
            #expect(throws: Never.self, "\(key.name)") { _ = try key.parse(key.defaultValue) }
        }
    }

    @Test func docOrderStartsAndEndsLikePgBouncer() {
        let names = ConfigKeys.all.map(\.name)
        #expect(names.prefix(4) == ["logfile", "pidfile", "listen_addr", "listen_port"])
        #expect(names.filter { !ConfigKeys.extensionNames.contains($0) }.last == "tcp_user_timeout")
        #expect(names.firstIndex(of: "auth_type")! > names.firstIndex(of: "scram_iterations")!)
    }

    @Test func implementedKeysAreTheAgreedSet() {
        let implemented = Set(ConfigKeys.implemented.map(\.name))
        #expect(implemented == [
            "listen_addr", "listen_port", "unix_socket_dir", "unix_socket_mode", "auth_type", "auth_file",
            "admin_users", "stats_users", "pool_mode", "max_client_conn", "default_pool_size", "min_pool_size",
            "reserve_pool_size", "reserve_pool_timeout", "max_db_connections", "max_user_connections",
            "server_reset_query", "server_reset_query_always", "server_check_query", "server_check_delay",
            "server_lifetime", "server_idle_timeout", "server_connect_timeout", "server_login_retry",
            "client_login_timeout", "query_wait_timeout", "query_timeout", "idle_transaction_timeout",
            "client_idle_timeout", "ignore_startup_parameters", "logfile", "pidfile", "log_connections",
            "log_disconnections", "log_pooler_errors", "verbose", "max_packet_size", "pkt_buf", "so_reuseport",
            "tcp_keepalive", "stats_period", "application_name_add_host", "max_prepared_statements",
            "track_extra_parameters", "server_round_robin", "disable_pqexec", "user", "auth_user", "auth_query",
            "auth_dbname", "listen_backlog", "max_db_client_connections", "max_user_client_connections", "syslog",
            "syslog_ident", "syslog_facility", "log_stats", "cancel_wait_timeout", "transaction_timeout",
            "metrics_listen_addr", "metrics_listen_port", "workers", "worker_cpu_affinity", "server_tls_direct", "auth_hba_file", "peer_id", "query_wait_notify", "dns_max_ttl", "dns_nxdomain_ttl", "server_fast_close",
            "tcp_keepcnt", "tcp_keepidle", "tcp_keepintvl", "tcp_user_timeout", "tcp_socket_buffer",
            "unix_socket_group", "scram_iterations", "conffile", "service_name", "job_name", "autodb_idle_timeout", "tcp_defer_accept", "suspend_timeout", "auth_ident_file",
            "client_tls_sslmode", "client_tls_key_file", "client_tls_cert_file", "client_tls_ca_file",
            "client_tls_protocols", "client_tls_ciphers", "client_tls13_ciphers", "client_tls_ecdhcurve",
            "client_tls_dheparams", "server_tls_sslmode", "server_tls_ca_file", "server_tls_key_file",
            "server_tls_cert_file", "server_tls_protocols", "server_tls_ciphers", "server_tls13_ciphers",
        ])
    }

    @Test func reloadableMatchesPgBouncer() {
        let fixed = Set(ConfigKeys.all.filter { !$0.reloadable && !ConfigKeys.extensionNames.contains($0.name) }.map(\.name))
        #expect(fixed == [
            "disable_pqexec", "job_name", "service_name", "listen_addr", "listen_backlog", "listen_port", "pidfile",
            "pkt_buf", "resolv_conf", "so_reuseport", "track_extra_parameters", "unix_socket_dir",
            "unix_socket_group", "unix_socket_mode", "user",
        ])
    }

    @Test func defaultsMatchTheDocumentation() {
        let s = Settings()
        #expect(s.listenAddr == "")
        #expect(s.listenPort == 6432)
        #expect(s.unixSocketDir == "/tmp")
        #expect(s.unixSocketMode == 0o777)
        #expect(s.authType == .md5)
        #expect(s.authFile == "")
        #expect(s.adminUsers == [] && s.statsUsers == [])
        #expect(s.poolMode == .session)
        #expect(s.maxClientConn == 100)
        #expect(s.defaultPoolSize == 20)
        #expect(s.minPoolSize == 0 && s.reservePoolSize == 0)
        #expect(s.reservePoolTimeout == 5)
        #expect(s.maxDbConnections == 0 && s.maxUserConnections == 0)
        #expect(s.serverResetQuery == "DISCARD ALL")
        #expect(s.serverResetQueryAlways == false)
        #expect(s.serverCheckQuery == "<empty>" && s.serverCheckSendsEmptyQuery)
        #expect(s.serverCheckDelay == 30)
        #expect(s.serverLifetime == 3600)
        #expect(s.serverIdleTimeout == 600)
        #expect(s.serverConnectTimeout == 15)
        #expect(s.serverLoginRetry == 15)
        #expect(s.clientLoginTimeout == 60)
        #expect(s.queryWaitTimeout == 120)
        #expect(s.queryTimeout == 0 && s.idleTransactionTimeout == 0 && s.clientIdleTimeout == 0)
        #expect(s.ignoreStartupParameters == [])
        #expect(s.logfile == "" && s.pidfile == "")
        #expect(s.logConnections && s.logDisconnections && s.logPoolerErrors)
        #expect(s.verbose == 0)
        #expect(s.maxPacketSize == 2_147_483_647)
        #expect(s.pktBuf == 4096)
        #expect(s.soReuseport == false)
        #expect(s.tcpKeepalive == true)
        #expect(s.statsPeriod == 60)
        #expect(s.applicationNameAddHost == false)
        #expect(s.maxPreparedStatements == 200)
        #expect(s.trackExtraParameters == ["IntervalStyle"])
        #expect(s.serverRoundRobin == false && s.disablePqexec == false)
        #expect(s.user == "" && s.authUser == "" && s.authDbname == "")
        #expect(s.authQuery.hasPrefix("SELECT rolname, CASE WHEN rolvaliduntil < now()"))
    }

    @Test func showConfigTextOfDefaults() {
        let s = Settings()
        #expect(s.value(of: "listen_port") == "6432")
        #expect(s.value(of: "unix_socket_mode") == "511")  // PgBouncer prints the int with %d
        #expect(s.value(of: "reserve_pool_timeout") == "5")
        #expect(s.value(of: "log_connections") == "1")
        #expect(s.value(of: "auth_type") == "md5")
        #expect(s.value(of: "track_extra_parameters") == "IntervalStyle")
        #expect(s.value(of: "verbose") == "0")
        #expect(s.value(of: "syslog_facility") == "daemon")
        #expect(s.value(of: "dns_max_ttl") == "15")
        #expect(s.value(of: "auth_file") == "")
        #expect(s.value(of: "no_such_key") == nil)
        #expect(ConfigKeys.named("unix_socket_mode")?.defaultValue == "0777")
        #expect(ConfigKeys.named("verbose")?.defaultValue == "")
    }
}
