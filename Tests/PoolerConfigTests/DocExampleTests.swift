import Testing
@testable import PoolerConfig

/// The example configurations of PgBouncer 1.25's doc/config.md load unchanged.
@Suite struct DocExampleTests {
    @Test func smallExample() throws {
        let config = try Config.parse(text: """
            [databases]
            template1 = host=localhost dbname=template1 auth_user=someuser

            [pgbouncer]
            pool_mode = session
            listen_port = 6432
            listen_addr = localhost
            auth_type = md5
            auth_file = users.txt
            logfile = pgbouncer.log
            pidfile = pgbouncer.pid
            admin_users = someuser
            stats_users = stat_collector
            """, fileName: "pgbouncer.ini")
        #expect(config.warnings.isEmpty)
        #expect(config.settings.listenAddr == "localhost" && config.settings.authFile == "users.txt")
        #expect(config.settings.adminUsers == ["someuser"] && config.settings.statsUsers == ["stat_collector"])
        #expect(config.databases["template1"]?.authUser == "someuser")
    }

    @Test func databaseExamples() throws {
        let config = try Config.parse(text: """
            [pgbouncer]
            [databases]

            ; foodb over Unix socket
            foodb =

            ; redirect bardb to bazdb on localhost
            bardb = host=localhost dbname=bazdb

            ; access to destination database will go with single user
            forcedb = host=localhost port=300 user=baz password=foo client_encoding=UNICODE datestyle=ISO
            """, fileName: "pgbouncer.ini")
        #expect(config.databaseOrder == ["foodb", "bardb", "forcedb"])
        #expect(config.databases["forcedb"]?.port == 300 && config.databases["forcedb"]?.clientEncoding == "UNICODE")
    }

    @Test func peeringExample() throws {
        let config = try Config.parse(text: """
            [databases]
            postgres = host=localhost dbname=postgres

            [peers]
            1 = host=/tmp/pgbouncer1
            2 = host=/tmp/pgbouncer2

            [pgbouncer]
            listen_addr=127.0.0.1
            auth_file=auth_file.conf
            so_reuseport=1
            ; only unix_socket_dir and peer_id are different
            unix_socket_dir=/tmp/pgbouncer2
            peer_id=2
            """, fileName: "pgbouncer.ini")
        #expect(config.peers.count == 2 && config.settings.soReuseport)
        #expect(config.warnings.isEmpty)
        #expect(config.settings.peerID == 2)
        #expect(config.settings.value(of: "peer_id") == "2")
    }
}
