import Testing
@testable import PoolerConfig

@Suite struct UserAndPeerTests {
    @Test func users() throws {
        let config = try Config.parse(text: """
            [pgbouncer]
            [users]
            app = pool_mode=transaction max_user_connections=50 pool_size=5 reserve_pool_size=1 query_timeout=3 idle_transaction_timeout=4 transaction_timeout=5 client_idle_timeout=6 max_user_client_connections=7
            other =
            """, fileName: "pooler.ini")
        let app = try #require(config.users["app"])
        #expect(app.poolMode == .transaction && app.maxUserConnections == 50 && app.poolSize == 5)
        #expect(app.reservePoolSize == 1 && app.queryTimeout == 3 && app.idleTransactionTimeout == 4)
        #expect(app.transactionTimeout == 5 && app.clientIdleTimeout == 6 && app.maxUserClientConnections == 7)
        #expect(config.users["other"] == UserEntry(name: "other"))
        #expect(throws: ConfigError(file: "u.ini", line: 3, "unrecognized user parameter: pool")) {
            try Config.parse(text: "[pgbouncer]\n[users]\nx = pool=1\n", fileName: "u.ini")
        }
        #expect(throws: ConfigError(file: "u.ini", line: 3, "syntax error in user settings")) {
            try Config.parse(text: "[pgbouncer]\n[users]\nx = pool_mode\n", fileName: "u.ini")
        }
    }

    @Test func peers() throws {
        let config = try Config.parse(text: "[pgbouncer]\n[peers]\n1 = host=/tmp/p1\n2 = host=h port=5555 pool_size=3\n", fileName: "p.ini")
        #expect(config.peers[1] == PeerEntry(id: 1, host: "/tmp/p1"))
        #expect(config.peers[2]?.port == 5555 && config.peers[2]?.poolSize == 3)
        #expect(throws: ConfigError(file: "p.ini", line: 3, "host was not provided for peer 3")) {
            try Config.parse(text: "[pgbouncer]\n[peers]\n3 = port=1\n", fileName: "p.ini")
        }
        #expect(throws: ConfigError(file: "p.ini", line: 3, "ids of peers must be a number larger than 0 and at most 65536")) {
            try Config.parse(text: "[pgbouncer]\n[peers]\n0 = host=x\n", fileName: "p.ini")
        }
    }
}
