import Testing
@testable import PoolerAdmin

@Suite struct AdminParseTests {
    func parsed(_ sql: String) -> AdminCommand? {
        if case .success(let c) = AdminParse.parse(sql) { return c }
        return nil
    }

    func error(_ sql: String) -> AdminError? {
        if case .failure(let e) = AdminParse.parse(sql) { return e }
        return nil
    }

    @Test func showIsCaseInsensitiveAndAcceptsSemicolonAndWhitespace() {
        #expect(parsed("SHOW POOLS") == .show("pools"))
        #expect(parsed("show pools;") == .show("pools"))
        #expect(parsed("  Show\tStats_Totals \n ;  ") == .show("stats_totals"))
        #expect(parsed("SHOW \"POOLS\"") == .show("pools"))
        #expect(parsed("\"show\" clients") == .show("clients"))
        #expect(parsed("select version") == .show("version"))
        #expect(parsed("SELECT servers;") == .show("servers"))
    }

    @Test func fakeParametersAreShowable() {
        #expect(parsed("SHOW client_encoding") == .show("client_encoding"))
        #expect(parsed("show TimeZone") == .show("timezone"))
    }

    @Test func unknownCommandsUsePgBouncerWording() {
        let e = error("FOO")
        #expect(e?.code == "08P01")
        #expect(e?.message == "invalid command 'FOO', use SHOW HELP;")
        #expect(error("SHOW nothing;")?.message == "invalid command 'SHOW nothing;', use SHOW HELP;")
        #expect(error("SHOW")?.message == "invalid command 'SHOW', use SHOW HELP;")
        #expect(error("SELECT 1 + 1")?.message == "invalid command 'SELECT 1 + 1', use SHOW HELP;")
        #expect(error("show pools;;") != nil)
        #expect(error("show pools; show clients") != nil)
        #expect(error("") != nil)
        #expect(error("SET x")?.message == "invalid command 'SET x', use SHOW HELP;")
        #expect(error("PAUSE my-db") != nil)  // unquoted names are [0-9a-z_]+
    }

    @Test func controlCommands() {
        #expect(parsed("PAUSE") == .pause(nil))
        #expect(parsed("pause MyDb;") == .pause("MyDb"))  // database names keep their case
        #expect(parsed("PAUSE \"my-db\"") == .pause("my-db"))
        #expect(parsed("PAUSE \"a\"\"b\"") == .pause("a\"b"))
        #expect(parsed("PAUSE \"\"") == .pause(nil))
        #expect(parsed("RESUME") == .resume(nil))
        #expect(parsed("resume db1") == .resume("db1"))
        #expect(parsed("SUSPEND;") == .suspend)
        #expect(parsed("RELOAD") == .reload)
        #expect(parsed("KILL") == .kill(nil))
        #expect(parsed("KILL db1") == .kill("db1"))
        #expect(parsed("KILL_CLIENT 1234") == .killClient("1234"))
        #expect(parsed("DISABLE db1") == .disable("db1"))
        #expect(parsed("DISABLE") == .disable(""))
        #expect(parsed("ENABLE db1") == .enable("db1"))
        #expect(parsed("RECONNECT") == .reconnect(nil))
        #expect(parsed("reconnect db1") == .reconnect("db1"))
        #expect(parsed("WAIT_CLOSE") == .waitClose(nil))
        #expect(parsed("wait_close db1") == .waitClose("db1"))
        #expect(parsed("SHUTDOWN") == .shutdown(.immediate))
        #expect(parsed("shutdown wait_for_servers") == .shutdown(.waitForServers))
        #expect(parsed("SHUTDOWN WAIT_FOR_CLIENTS;") == .shutdown(.waitForClients))
    }

    @Test func argumentsWherePgBouncerTakesNone() {
        #expect(error("RELOAD now")?.message == "invalid command 'RELOAD now', use SHOW HELP;")
        #expect(error("SUSPEND x") != nil)
        #expect(error("SHUTDOWN later")?.message == "invalid command 'SHUTDOWN later', use SHOW HELP;")
    }

    @Test func overlongTokensAreBadArguments() {
        #expect(error("abcdefghijklmnop")?.message == "bad arguments")  // 16 bytes >= 16
        #expect(parsed("PAUSE " + String(repeating: "a", count: 63)) == .pause(String(repeating: "a", count: 63)))
        #expect(error("PAUSE " + String(repeating: "a", count: 64))?.message == "bad arguments")
    }

    @Test func setForms() {
        #expect(parsed("SET log_connections = 1") == .set(key: "log_connections", value: "1"))
        #expect(parsed("set log_connections=1;") == .set(key: "log_connections", value: "1"))
        #expect(parsed("SET log_connections TO 0") == .set(key: "log_connections", value: "0"))
        #expect(parsed("SET server_check_query = 'select 2';") == .set(key: "server_check_query", value: "select 2"))
        #expect(parsed("SET application_name_add_host = 'it''s'") == .set(key: "application_name_add_host", value: "it's"))
        #expect(parsed("SET \"Key\" = \"a b\"") == .set(key: "Key", value: "a b"))
        #expect(parsed("set x = ''") == .set(key: "x", value: ""))
        #expect(parsed("SET default_pool_size to 'abc' ; ") == .set(key: "default_pool_size", value: "abc"))
        // the regex's own corner case: the key may run straight into TO
        #expect(parsed("SET keyTO value") == .set(key: "key", value: "value"))
        #expect(error("SET \"\" = 1")?.message == "bad arguments")
        #expect(error("SET x = 'a' 'b'") != nil)
        #expect(error("SET x = a b") != nil)
        let long = String(repeating: "v", count: 254)
        #expect(parsed("SET k = '\(long)'") == nil)  // 256 bytes with quotes
        #expect(parsed("SET k = '\(long.dropLast())'") == .set(key: "k", value: String(long.dropLast())))
    }

    @Test func completionTags() {
        #expect(AdminCommand.set(key: "log_connections", value: "1").completionTag == "SET log_connections=1")
        #expect(AdminCommand.killClient("5").completionTag == "KILL_CLIENT")
        #expect(AdminCommand.waitClose(nil).completionTag == "WAIT_CLOSE")
        #expect(AdminCommand.shutdown(.waitForClients).completionTag == "SHUTDOWN")
    }

    @Test func clientIDParsesLikeScanf() {
        #expect(AdminCommand.killClient("1234").clientID == 1234)
        #expect(AdminCommand.killClient("12abc").clientID == 12)
        #expect(AdminCommand.killClient("abc").clientID == nil)
        #expect(AdminCommand.killClient("").clientID == nil)
    }
}

@Suite struct AdminParseLimitTests {
    @Test func oversizeQueriesAreRefusedEarly() {
        let long = "set " + String(repeating: "to", count: 20_000) + "!"
        guard case .failure(let error) = AdminParse.parse(long) else {
            Issue.record("a 40 KB console query must be refused"); return
        }
        #expect(error.message.hasPrefix("invalid command"))
        #expect(error.message.count < 200)
    }
}
