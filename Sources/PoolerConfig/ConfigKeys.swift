/// Every `[pgbouncer]` key PgBouncer 1.25 documents, in the order of its
/// documentation (doc/config.md), with PgBouncer's defaults (src/main.c), then this
/// pooler's own keys (`extensions`), which PgBouncer would refuse.
/// Parsing, SET, SHOW CONFIG and pooler.ini.example all derive from this table.
public enum ConfigKeys {
    public static let all: [ConfigKey] =
        generic + authentication + logging + console + sanity + tls + dangerousTimeouts + network + extensions

    /// Keys PgBouncer does not have.
    public static let extensionNames: Set<String> = Set(extensions.map(\.name))

    /// The keys this pooler acts on.
    public static var implemented: [ConfigKey] { all.filter(\.implemented) }

    public static func named(_ name: String) -> ConfigKey? { index[name] }

    private static let index: [String: ConfigKey] =
        Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    private typealias K = ConfigKey

    private static let generic: [ConfigKey] = [
        K("logfile", .string, "", .string(\.logfile), help: "Log file. Logging to stderr continues unless -q or -d is given."),
        K("pidfile", .string, "", .string(\.pidfile), reloadable: false, help: "PID file. Without it, daemonization (-d) is not allowed."),
        K("listen_addr", .string, "", .string(\.listenAddr), reloadable: false,
          help: "Comma-separated addresses to listen on for TCP; * means all addresses. When empty, only the Unix socket is used."),
        K("listen_port", .int, "6432", .int(\.listenPort), reloadable: false, help: "Port to listen on, for both TCP and the Unix socket."),
        K("unix_socket_dir", .string, "/tmp", .string(\.unixSocketDir), reloadable: false,
          help: "Directory of the Unix socket (for listening and for server connections). Empty disables Unix sockets."),
        K("unix_socket_mode", .int, "0777", .int(\.unixSocketMode), reloadable: false, help: "File system mode of the Unix socket (octal with a leading 0)."),
        K("unix_socket_group", .string, "", .string(\.unixSocketGroup), reloadable: false, help: "Group name of the Unix socket."),
        K("user", .string, "", .string(\.user), reloadable: false, help: "Unix user to switch to after startup (when started as root)."),
        K("pool_mode", .enumeration(PoolMode.allCases.map(\.rawValue)), "session", .poolMode(\.poolMode),
          help: "When a server connection can be reused by other clients: session (after the client disconnects), transaction (after the transaction ends) or statement (after each query)."),
        K("max_client_conn", .int, "100", .int(\.maxClientConn), help: "Maximum number of client connections allowed."),
        K("default_pool_size", .int, "20", .int(\.defaultPoolSize),
          help: "Server connections allowed per user/database pair, unless pool_size is set for the database or user."),
        K("min_pool_size", .int, "0", .int(\.minPoolSize),
          help: "Open more server connections when a pool has fewer than this (only for pools with a forced user or a connected client). 0 disables."),
        K("reserve_pool_size", .int, "0", .int(\.reservePoolSize), help: "Additional connections a pool may open after reserve_pool_timeout. 0 disables."),
        K("reserve_pool_timeout", .seconds, "5", .seconds(\.reservePoolTimeout),
          help: "Use the reserve pool when a client has waited this long. 0 disables. [seconds]"),
        K("max_db_connections", .int, "0", .int(\.maxDbConnections), help: "Maximum server connections per database, whatever the user. 0 means unlimited."),
        K("max_db_client_connections", .int, "0", .int(\.maxDbClientConnections), help: "Maximum client connections per database, whatever the user. 0 means unlimited."),
        K("max_user_connections", .int, "0", .int(\.maxUserConnections), help: "Maximum server connections per user, whatever the database. 0 means unlimited."),
        K("max_user_client_connections", .int, "0", .int(\.maxUserClientConnections), help: "Maximum client connections per user, whatever the database. 0 means unlimited."),
        K("server_round_robin", .bool, "0", .bool(\.serverRoundRobin),
          help: "Reuse server connections round-robin instead of LIFO, for load-balanced servers behind one address."),
        K("track_extra_parameters", .list, "IntervalStyle", .list(\.trackExtraParameters), reloadable: false,
          help: "Comma-separated parameters (beyond client_encoding, datestyle, timezone, standard_conforming_strings and application_name) tracked per client and restored on the server it gets."),
        K("ignore_startup_parameters", .list, "", .list(\.ignoreStartupParameters),
          help: "Comma-separated startup parameters to ignore instead of rejecting the connection (e.g. extra_float_digits,options)."),
        K("peer_id", .int, "0", .int(\.peerID), help: "Id of this process in a group of peered poolers. 0 disables peering."),
        K("disable_pqexec", .bool, "0", .bool(\.disablePqexec), reloadable: false,
          help: "Reject the simple query protocol; only the extended protocol is allowed."),
        K("application_name_add_host", .bool, "0", .bool(\.applicationNameAddHost),
          help: "Append the client's address and port to application_name at connection start."),
        K("conffile", .string, "", .string(\.conffile), help: "Location of the current configuration file; RELOAD reads this file."),
        K("service_name", .string, "", .string(\.serviceName), reloadable: false, help: "Windows service name (Windows only; no effect here, as with PgBouncer on Linux)."),
        K("job_name", .string, "pgbouncer", .string(\.jobName), reloadable: false, help: "Alias for service_name (Windows only; no effect here)."),
        K("stats_period", .int, "60", .int(\.statsPeriod), help: "How often the averages in SHOW STATS are updated and statistics are logged. [seconds]"),
        K("max_prepared_statements", .int, "200", .int(\.maxPreparedStatements),
          help: "Protocol-level prepared statements kept per server connection in transaction and statement pooling. 0 disables prepared statement support."),
        K("scram_iterations", .int, "4096", .int(\.scramIterations), help: "Iterations used when computing SCRAM-SHA-256 secrets."),
    ].map { $0.inGroup("Generic settings") }

    private static let authentication: [ConfigKey] = [
        K("auth_type", .enumeration(AuthType.allCases.map(\.rawValue)), "md5", .authType(\.authType),
          help: "How to authenticate clients: md5, scram-sha-256, plain, trust or any (cert, hba, pam and ldap are not supported yet)."),
        K("auth_hba_file", .string, "", .string(\.authHBAFile), help: "HBA file used when auth_type is hba."),
        K("auth_ident_file", .string, "", .string(\.authIdentFile), help: "Ident map file (map-name system-user database-user) for map= in auth_hba_file peer and cert lines."),
        K("auth_file", .string, "", .string(\.authFile), help: "File with user names and passwords (\"user\" \"password\" per line)."),
        K("auth_user", .string, "", .string(\.authUser),
          help: "User that looks up passwords of users missing from auth_file with auth_query; its own password comes from auth_file."),
        K("auth_query", .string,
          "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin",
          .string(\.authQuery), help: "Query that loads a user's password from the database."),
        K("auth_dbname", .string, "", .string(\.authDbname), help: "Database from [databases] used for auth_query."),
        K("auth_ldap_options", .string, "", help: "LDAP connection options when auth_type is ldap."),
    ].map { $0.inGroup("Authentication settings") }

    private static let logging: [ConfigKey] = [
        K("syslog", .bool, "0", .bool(\.syslog), help: "Log to syslog."),
        K("syslog_ident", .string, "pgbouncer", .string(\.syslogIdent), help: "Program name used in syslog."),
        K("syslog_facility", .string, "daemon", .string(\.syslogFacility), help: "Syslog facility: auth, authpriv, daemon, user or local0-7."),
        K("log_connections", .bool, "1", .bool(\.logConnections), help: "Log successful logins."),
        K("log_disconnections", .bool, "1", .bool(\.logDisconnections), help: "Log disconnections with reasons."),
        K("log_pooler_errors", .bool, "1", .bool(\.logPoolerErrors), help: "Log error messages the pooler sends to clients."),
        K("log_stats", .bool, "1", .bool(\.logStats), help: "Log aggregated statistics every stats_period."),
        K("verbose", .int, "", .int(\.verbose), help: "Verbosity, like repeating -v on the command line (0 to 3)."),
    ].map { $0.inGroup("Log settings") }

    private static let console: [ConfigKey] = [
        K("admin_users", .list, "", .list(\.adminUsers), help: "Comma-separated users allowed to run every command on the admin console."),
        K("stats_users", .list, "", .list(\.statsUsers), help: "Comma-separated users allowed to run read-only SHOW commands on the admin console."),
    ].map { $0.inGroup("Console access control") }

    private static let sanity: [ConfigKey] = [
        K("server_reset_query", .string, "DISCARD ALL", .string(\.serverResetQuery),
          help: "Query sent to a server when its client releases it in session pooling."),
        K("server_reset_query_always", .bool, "0", .bool(\.serverResetQueryAlways),
          help: "Send server_reset_query in every pooling mode, not only in session pooling."),
        K("server_check_delay", .seconds, "30", .seconds(\.serverCheckDelay),
          help: "Released servers idle longer than this are checked with server_check_query before reuse. 0 always checks. [seconds]"),
        K("server_check_query", .string, "<empty>", .string(\.serverCheckQuery),
          help: "Query that checks a server is alive. Empty disables the check; <empty> sends an empty query."),
        K("server_fast_close", .bool, "0", .bool(\.serverFastClose), help: "Close servers marked for reconnection at the end of the transaction even in session pooling."),
        K("server_lifetime", .seconds, "3600", .seconds(\.serverLifetime),
          help: "Close an unused server connection older than this. 0 uses each connection once. [seconds]"),
        K("server_idle_timeout", .seconds, "600", .seconds(\.serverIdleTimeout), help: "Close server connections idle longer than this. 0 disables. [seconds]"),
        K("server_connect_timeout", .seconds, "15", .seconds(\.serverConnectTimeout),
          help: "Give up on a server connection whose connect and login take longer than this. [seconds]"),
        K("server_login_retry", .seconds, "15", .seconds(\.serverLoginRetry),
          help: "After a failed server login, wait this long before trying again; clients get an error meanwhile. [seconds]"),
        K("client_login_timeout", .seconds, "60", .seconds(\.clientLoginTimeout), help: "Disconnect clients that have not logged in within this time. [seconds]"),
        K("autodb_idle_timeout", .seconds, "3600", .seconds(\.autodbIdleTimeout), help: "Free pools of databases created from the \"*\" entry after this idle time. [seconds]"),
        K("dns_max_ttl", .seconds, "15", .seconds(\.dnsMaxTTL), help: "How long DNS lookups are cached. [seconds]"),
        K("dns_nxdomain_ttl", .seconds, "15", .seconds(\.dnsNXDomainTTL), help: "How long DNS errors and NXDOMAIN answers are cached. [seconds]"),
        K("dns_zone_check_period", .seconds, "0", help: "Period of DNS zone serial checks (c-ares only). 0 disables. [seconds]"),
        K("resolv_conf", .string, "", reloadable: false, help: "Custom resolv.conf file for DNS lookups."),
        K("query_wait_notify", .int, "5", .int(\.queryWaitNotify), help: "Tell a queued client it is waiting after this long. 0 disables. [seconds]"),
    ].map { $0.inGroup("Connection sanity checks, timeouts") }

    private static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    private static let tls: [ConfigKey] = [
        K("client_tls_sslmode", .enumeration(sslModes), "disable", .word(\.clientTLSSSLMode), help: "TLS mode for client connections."),
        K("client_tls_key_file", .string, "", .string(\.clientTLSKeyFile), help: "Private key for client connections."),
        K("client_tls_cert_file", .string, "", .string(\.clientTLSCertFile), help: "Certificate for client connections."),
        K("client_tls_ca_file", .string, "", .string(\.clientTLSCAFile), help: "Root certificates that validate client certificates."),
        K("client_tls_protocols", .string, "secure", .string(\.clientTLSProtocols), help: "TLS versions allowed for clients."),
        K("client_tls_ciphers", .string, "default", .string(\.clientTLSCiphers), help: "TLS 1.2 and older ciphers allowed for clients."),
        K("client_tls13_ciphers", .string, "", .string(\.clientTLS13Ciphers), help: "TLS 1.3 ciphers allowed for clients."),
        K("client_tls_ecdhcurve", .string, "auto", .string(\.clientTLSECDHCurve), help: "Elliptic curve for ECDH key exchange with clients."),
        K("client_tls_dheparams", .string, "auto", .string(\.clientTLSDHEParams), help: "DHE key exchange type with clients."),
        K("server_tls_sslmode", .enumeration(sslModes), "prefer", .word(\.serverTLSSSLMode), help: "TLS mode for server connections."),
        K("server_tls_ca_file", .string, "", .string(\.serverTLSCAFile), help: "Root certificates that validate server certificates."),
        K("server_tls_key_file", .string, "", .string(\.serverTLSKeyFile), help: "Private key for authenticating to servers."),
        K("server_tls_cert_file", .string, "", .string(\.serverTLSCertFile), help: "Certificate for authenticating to servers."),
        K("server_tls_protocols", .string, "secure", .string(\.serverTLSProtocols), help: "TLS versions allowed for servers."),
        K("server_tls_ciphers", .string, "default", .string(\.serverTLSCiphers), help: "TLS 1.2 and older ciphers allowed for servers."),
        K("server_tls13_ciphers", .string, "", .string(\.serverTLS13Ciphers), help: "TLS 1.3 ciphers allowed for servers."),
    ].map { $0.inGroup("TLS settings") }

    private static let dangerousTimeouts: [ConfigKey] = [
        K("query_timeout", .seconds, "0", .seconds(\.queryTimeout), help: "Cancel queries running longer than this. 0 disables. [seconds]"),
        K("query_wait_timeout", .seconds, "120", .seconds(\.queryWaitTimeout),
          help: "Disconnect a client whose query waited this long for a server. 0 disables. [seconds]"),
        K("cancel_wait_timeout", .seconds, "10", .seconds(\.cancelWaitTimeout), help: "Drop cancel requests that waited this long for a server. 0 disables. [seconds]"),
        K("client_idle_timeout", .seconds, "0", .seconds(\.clientIdleTimeout), help: "Close client connections idle longer than this. 0 disables. [seconds]"),
        K("idle_transaction_timeout", .seconds, "0", .seconds(\.idleTransactionTimeout),
          help: "Disconnect clients idle in a transaction longer than this. 0 disables. [seconds]"),
        K("transaction_timeout", .seconds, "0", .seconds(\.transactionTimeout), help: "Disconnect clients in a transaction longer than this. 0 disables. [seconds]"),
        K("suspend_timeout", .seconds, "10", .seconds(\.suspendTimeout),
          help: "How long to wait for buffers to flush during SUSPEND; connections that have not flushed by then are dropped. [seconds]"),
    ].map { $0.inGroup("Dangerous timeouts") }

    private static let network: [ConfigKey] = [
        K("pkt_buf", .size, "4096", .int(\.pktBuf), reloadable: false, help: "Internal buffer size for packets. [bytes]"),
        K("max_packet_size", .size, "2147483647", .int(\.maxPacketSize), help: "Largest PostgreSQL packet allowed through. [bytes]"),
        K("listen_backlog", .int, "128", .int(\.listenBacklog), reloadable: false, help: "Backlog argument for listen(2)."),
        K("sbuf_loopcnt", .int, "5", help: "How many times to process data on one connection before moving on. 0 means no limit."),
        K("so_reuseport", .bool, "0", .bool(\.soReuseport), reloadable: false,
          help: "Set SO_REUSEPORT on TCP listening sockets, so several processes can share the port."),
        K("tcp_defer_accept", .bool, "1", .bool(\.tcpDeferAccept),
          help: "Set TCP_DEFER_ACCEPT (45 s) on TCP listening sockets: a connection reaches the pooler with its first bytes. Applies to sockets opened at start-up."),
        K("tcp_socket_buffer", .int, "0", .int(\.tcpSocketBuffer), help: "Socket buffer size. 0 keeps the system default."),
        K("tcp_keepalive", .bool, "1", .bool(\.tcpKeepalive), help: "Turn on TCP keepalive with the system defaults."),
        K("tcp_keepcnt", .int, "0", .int(\.tcpKeepcnt), help: "TCP_KEEPCNT. 0 keeps the system default."),
        K("tcp_keepidle", .int, "0", .int(\.tcpKeepidle), help: "TCP_KEEPIDLE. 0 keeps the system default."),
        K("tcp_keepintvl", .int, "0", .int(\.tcpKeepintvl), help: "TCP_KEEPINTVL. 0 keeps the system default."),
        K("tcp_user_timeout", .int, "0", .int(\.tcpUserTimeout), help: "TCP_USER_TIMEOUT in milliseconds. 0 keeps the system default."),
    ].map { $0.inGroup("Low-level network settings") }

    private static let extensions: [ConfigKey] = [
        K("workers", .int, "0", .int(\.workers), reloadable: false,
          help: "Event loops (threads), each serving its share of the clients with its own servers; pool limits stay global. 0 means one per CPU the process may run on (its affinity mask), at most its cgroup CPU limit rounded up (a container's CPU limit); 1 runs a single loop as PgBouncer does."),
        K("worker_cpu_affinity", .bool, "0", .bool(\.workerCpuAffinity), reloadable: false,
          help: "Pin each event loop to one CPU (loop i to the i-th CPU the process may run on, round robin) instead of letting the kernel move it. Helps when the pooler shares a few cores with busy neighbours such as PostgreSQL itself (pgbench -S on 2 cores shared with PostgreSQL: 3-5% more tps at 50 and 200 clients, no clear change at 10); leave it off where other tenants may keep a core busy."),
        K("metrics_listen_addr", .string, "", .string(\.metricsListenAddr), reloadable: false,
          help: "Address for the Prometheus endpoint (GET /metrics, GET /healthz). Empty with metrics_listen_port 0 disables it; * means all addresses."),
        K("metrics_listen_port", .int, "0", .int(\.metricsListenPort), reloadable: false,
          help: "Port for the Prometheus endpoint. 0 disables it."),
        K("server_tls_direct", .bool, "0", .bool(\.serverTLSDirect),
          help: "Open TLS to servers directly (PostgreSQL 17 sslnegotiation=direct, ALPN postgresql) instead of SSLRequest first. Needs PostgreSQL 17 or later."),
    ].map { $0.inGroup("Pooler extensions (not in PgBouncer)") }
}
