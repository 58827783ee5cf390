import Testing
@testable import PoolerConfig

@Suite struct ValueTests {
    private func settings(_ key: String, _ value: String) throws -> Settings {
        var s = Settings()
        try s.set(key, to: value)
        return s
    }

    private func error(_ key: String, _ value: String) -> String? {
        var s = Settings()
        do {
            try s.set(key, to: value)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func integersReadLikeStrtolBaseZero() throws {
        #expect(try settings("listen_port", "7000").listenPort == 7000)
        #expect(try settings("unix_socket_mode", "0700").unixSocketMode == 0o700)
        #expect(try settings("max_client_conn", "0x10").maxClientConn == 16)
        #expect(try settings("verbose", "-1").verbose == -1)
        #expect(try settings("max_client_conn", "+5").maxClientConn == 5)
        #expect(error("listen_port", "abc") == "invalid value for listen_port: 'abc' (expected an integer)")
        #expect(error("listen_port", "12abc") != nil)
        #expect(error("listen_port", "") != nil)
        #expect(error("unix_socket_mode", "0789") != nil)
        #expect(error("listen_port", "99999999999")?.contains("between") == true)
    }

    @Test func booleans() throws {
        for yes in ["1", "2", "yes", "On", "TRUE"] { #expect(try settings("so_reuseport", yes).soReuseport, "\(yes)") }
        for no in ["0", "no", "off", "False"] { #expect(try !settings("tcp_keepalive", no).tcpKeepalive, "\(no)") }
        #expect(error("tcp_keepalive", "maybe")?.hasPrefix("invalid value for tcp_keepalive: 'maybe' (expected a boolean") == true)
        #expect(try settings("so_reuseport", "yes").value(of: "so_reuseport") == "1")
    }

    @Test func secondsAreDecimalWithoutUnits() throws {
        #expect(try settings("query_timeout", "1.5").queryTimeout == 1.5)
        #expect(try settings("query_timeout", ".25").queryTimeout == 0.25)
        #expect(try settings("query_timeout", "1e2").queryTimeout == 100)
        #expect(try settings("query_timeout", "0.0000015").queryTimeout == 0.000001)  // whole microseconds
        #expect(try settings("server_lifetime", "90").value(of: "server_lifetime") == "90")
        #expect(try settings("server_lifetime", "0.5").value(of: "server_lifetime") == "0.5")
        for bad in ["5s", "1min", "-1", "abc", "", "inf", "nan", "1e"] {
            #expect(error("query_timeout", bad) != nil, "\(bad)")
        }
        #expect(error("query_timeout", "5s") == "invalid value for query_timeout: '5s' (expected a non-negative number of seconds, without unit)")
    }

    @Test func sizesAreBytes() throws {
        #expect(try settings("pkt_buf", "8192").pktBuf == 8192)
        #expect(try settings("max_packet_size", "4294967295").maxPacketSize == 4_294_967_295)
        #expect(error("pkt_buf", "8kB") != nil)
        #expect(error("max_packet_size", "-1") != nil)
    }

    @Test func enumerationsIgnoreCase() throws {
        #expect(try settings("pool_mode", "Transaction").poolMode == .transaction)
        #expect(try settings("auth_type", "SCRAM-SHA-256").authType == .scramSHA256)
        #expect(try settings("auth_type", "trust").value(of: "auth_type") == "trust")
        #expect(error("pool_mode", "sessions") == "invalid value for pool_mode: 'sessions' (expected one of: session, transaction, statement)")
        #expect(error("auth_type", "pam")?.contains("not supported by this pooler yet") == true)
        #expect(error("client_tls_sslmode", "maybe") != nil)
        #expect(try settings("client_tls_sslmode", "REQUIRE").value(of: "client_tls_sslmode") == "require")
    }

    @Test func listsSplitAtCommasAndSpaces() throws {
        let s = try settings("admin_users", "alice, bob,carol  dave")
        #expect(s.adminUsers == ["alice", "bob", "carol", "dave"])
        #expect(s.value(of: "admin_users") == "alice, bob,carol  dave")
        var changed = s
        changed.adminUsers = ["eve"]
        #expect(changed.value(of: "admin_users") == "eve")
        #expect(try settings("track_extra_parameters", "").trackExtraParameters == [])
    }

    @Test func stringsAreRaw() throws {
        #expect(try settings("server_reset_query", "DEALLOCATE ALL; -- x").serverResetQuery == "DEALLOCATE ALL; -- x")
        #expect(try settings("pidfile", "").pidfile == "")
        #expect(error("auth_dbname", "pgbouncer") == "cannot use the reserved \"pgbouncer\" database as an auth_dbname")
    }

    @Test func unsupportedKeysKeepTheirValueForShowConfig() throws {
        let s = try settings("dns_max_ttl", "2.50")
        #expect(s.value(of: "dns_max_ttl") == "2.5")
        #expect(error("syslog", "x") != nil)
        #expect(error("listen_prot", "1") == "unknown parameter: pgbouncer/listen_prot")
    }
}
