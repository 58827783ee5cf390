import Testing
@testable import PoolerConfig

@Suite struct DatabaseTests {
    private func parse(_ databases: String) throws -> Config {
        try Config.parse(text: "[pgbouncer]\n[databases]\n" + databases, fileName: "pooler.ini")
    }

    private func failure(_ databases: String) -> String? {
        do {
            _ = try parse(databases)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func connectionStringFields() throws {
        let config = try parse("""
            foodb = host=host1.example.com port=5433 dbname=bazdb user=app password='it''s a secret' pool_size=10
            bardb =
            sockdb = host=/var/run/postgresql   pool_mode=Transaction min_pool_size=2 reserve_pool=3 max_db_connections=4
            extradb = auth_user=au auth_query='SELECT 1' auth_dbname=x connect_query='SET x = 1' client_encoding=UTF8 datestyle=ISO timezone=UTC application_name=app server_lifetime=30 load_balance_hosts=disable max_db_client_connections=9
            """)
        #expect(config.databaseOrder == ["foodb", "bardb", "sockdb", "extradb"])
        let foo = try #require(config.databases["foodb"])
        #expect(foo.host == "host1.example.com" && foo.port == 5433 && foo.dbname == "bazdb")
        #expect(foo.user == "app" && foo.password == "it's a secret" && foo.poolSize == 10)
        let bar = try #require(config.databases["bardb"])
        #expect(bar == DatabaseEntry(name: "bardb"))
        #expect(bar.host == nil && bar.port == 5432 && bar.serverDatabase == "bardb")
        let sock = try #require(config.databases["sockdb"])
        #expect(sock.host == "/var/run/postgresql" && sock.poolMode == .transaction)
        #expect(sock.minPoolSize == 2 && sock.reservePoolSize == 3 && sock.maxDbConnections == 4)
        let extra = try #require(config.databases["extradb"])
        #expect(extra.authUser == "au" && extra.authQuery == "SELECT 1" && extra.authDbname == "x")
        #expect(extra.connectQuery == "SET x = 1" && extra.clientEncoding == "UTF8")
        #expect(extra.datestyle == "ISO" && extra.timezone == "UTC" && extra.applicationName == "app")
        #expect(extra.serverLifetime == 30 && extra.loadBalanceHosts == .disable && extra.maxDbClientConnections == 9)
    }

    @Test func laterEntryReplacesButKeepsPosition() throws {
        let config = try parse("a = host=1\nb = host=2\na = host=3\n")
        #expect(config.databaseOrder == ["a", "b"])
        #expect(config.databases["a"]?.host == "3")
    }

    @Test func errors() {
        #expect(failure("db = hots=x\n") == "pooler.ini:3: unrecognized connection parameter: hots")
        #expect(failure("db = host\n") == "pooler.ini:3: syntax error in connection string")
        #expect(failure("db = host=\n") == "pooler.ini:3: syntax error in connection string")
        #expect(failure("db = password='abc\n") == "pooler.ini:3: syntax error in connection string")
        #expect(failure("db = port=abc\n") == "pooler.ini:3: invalid port: abc")
        #expect(failure("db = pool_mode=sometimes\n") == "pooler.ini:3: invalid pool mode: sometimes")
        #expect(failure("db = pool_size=ten\n") == "pooler.ini:3: invalid value for pool_size: 'ten' (expected an integer)")
        #expect(failure("pgbouncer = host=x\n") == "pooler.ini:3: database name \"pgbouncer\" is reserved")
    }

    @Test func fallbackDatabase() throws {
        let config = try parse("known = host=a dbname=real\n* = host=fallback port=6000\n")
        #expect(config.database(named: "known")?.dbname == "real")
        let other = try #require(config.database(named: "other"))
        #expect(other.name == "other" && other.dbname == "other" && other.host == "fallback" && other.port == 6000)
        #expect(try parse("a = host=x\n").database(named: "b") == nil)
    }
}
