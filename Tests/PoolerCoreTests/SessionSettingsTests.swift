import Testing
@testable import PoolerCore

@Suite struct SessionCommandScannerTests {
    @Test func recognisesSessionCommands() {
        #expect(SessionCommandScanner.scan("SET search_path TO a, public") == [.set(name: "search_path", value: "a, public")])
        #expect(SessionCommandScanner.scan("set SESSION statement_timeout = '5s';") == [.set(name: "statement_timeout", value: "'5s'")])
        #expect(SessionCommandScanner.scan("SET TIME ZONE 'UTC'") == [.set(name: "timezone", value: "'UTC'")])
        #expect(SessionCommandScanner.scan("SET work_mem TO DEFAULT") == [.reset(name: "work_mem")])
        #expect(SessionCommandScanner.scan("RESET search_path") == [.reset(name: "search_path")])
        #expect(SessionCommandScanner.scan("RESET ALL") == [.resetAll])
        #expect(SessionCommandScanner.scan("DISCARD ALL") == [.discardAll])
        #expect(SessionCommandScanner.scan("DEALLOCATE PREPARE ALL") == [.deallocateAll])
        #expect(SessionCommandScanner.scan("SELECT set_config('myapp.user', 'o''brien', false)")
                == [.setConfig(name: "myapp.user", value: "o'brien")])
    }

    @Test func ignoresTransactionScopedAndOrdinaryStatements() {
        #expect(SessionCommandScanner.scan("SET LOCAL search_path TO x").isEmpty)
        #expect(SessionCommandScanner.scan("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").isEmpty)
        #expect(SessionCommandScanner.scan("SELECT set_config('a', 'b', true)").isEmpty)
        #expect(SessionCommandScanner.scan("SELECT 'SET x = 1'").isEmpty)
        #expect(SessionCommandScanner.scan("UPDATE t SET x = 1").isEmpty)
        #expect(SessionCommandScanner.scan("\"reset\"*").isEmpty) // a quoted name is no keyword
        // An unterminated quoted identifier where TO would be: no command, and no trap.
        #expect(SessionCommandScanner.scan("set tsat\"to").isEmpty)
        #expect(SessionCommandScanner.scan("SET x \"to").isEmpty)
    }

    @Test func splitsStatementsOutsideQuotesAndComments() {
        let text = "SELECT ';'; /* SET a = 1; */ SET b = 2; -- SET c = 3\nSET d = $$x;y$$"
        #expect(SessionCommandScanner.scan(text) == [.set(name: "b", value: "2"), .set(name: "d", value: "$$x;y$$")])
    }

    @Test func cheapPrecheck() {
        let yes = Array("  set x = 1".utf8), no = Array("select 1".utf8), multi = Array("select 1; set x = 1".utf8)
        yes.withUnsafeBytes { #expect(SessionCommandScanner.mightContainSessionCommand($0)) }
        multi.withUnsafeBytes { #expect(SessionCommandScanner.mightContainSessionCommand($0)) }
        no.withUnsafeBytes { #expect(!SessionCommandScanner.mightContainSessionCommand($0)) }
        Array("SELECT abalance FROM t WHERE aid = 1;\0".utf8).withUnsafeBytes {
            #expect(!SessionCommandScanner.mightContainSessionCommand($0))
        }
        Array("select set_config('a', 'b', false)".utf8).withUnsafeBytes {
            #expect(SessionCommandScanner.mightContainSessionCommand($0))
        }
        Array("settle".utf8).withUnsafeBytes { #expect(!SessionCommandScanner.mightContainSessionCommand($0)) }
        for text in ["SELECT Set_Config('a', 'b', false)", "-- c\n  RESET x", "Discard all", "DEALLOCATE ALL",
                     "select 1 ;  select 2", "/* c */ set x = 1", "SELECT \"set_config\"('a', 'b', false)",
                     "select /* c */ set_config('a', 'b', false)", "select\n\tSET_CONFIG('a', 'b', false)"] {
            Array(text.utf8).withUnsafeBytes { #expect(SessionCommandScanner.mightContainSessionCommand($0), "\(text)") }
        }
        for text in ["select pgbench_accounts.x from pgbench_accounts", "select x_config, set_configs from t",
                     "select 1;;\0", "   ", "select set_", "deallocat", "resets",
                     "select upset_config(1), set_config('a', 'b', false)", "select set_configs('a')"] {
            Array(text.utf8).withUnsafeBytes { #expect(!SessionCommandScanner.mightContainSessionCommand($0), "\(text)") }
        }
        Array("insert into t values (1)".utf8).withUnsafeBytes { #expect(!SessionCommandScanner.mightContainSessionCommand($0)) }
    }
}

@Suite struct SessionSettingsTests {
    @Test func alignmentSetsDifferencesAndResetsLeftovers() {
        var server = SessionSettings()
        server.reported(name: "TimeZone", value: "UTC")
        server.reported(name: "application_name", value: "")
        server.apply(.set(name: "search_path", value: "other"))
        var client = SessionSettings()
        client.reported(name: "TimeZone", value: "UTC")
        client.requested(name: "application_name", value: "psql")
        let statements = SessionSettings.alignment(server: server, client: client)
        #expect(statements == ["SELECT pg_catalog.set_config('application_name', 'psql', false)", "RESET \"search_path\""])
        server.aligned(to: client)
        #expect(SessionSettings.alignment(server: server, client: client) == nil)
    }

    @Test func reportedParametersFollowParameterStatusNotSQLText() {
        var client = SessionSettings()
        client.reported(name: "DateStyle", value: "ISO, MDY")
        client.apply(.set(name: "datestyle", value: "German"))
        #expect(client["datestyle"] == .reported("ISO, MDY"))
        client.reported(name: "DateStyle", value: "German, DMY")
        #expect(client["DateStyle"]?.statement(for: "datestyle")
                == "SELECT pg_catalog.set_config('datestyle', 'German, DMY', false)")
    }

    @Test func resetAllDropsUntrackedSettings() {
        var client = SessionSettings(extraTracked: ["search_path"])
        client.apply(.set(name: "work_mem", value: "'64MB'"))
        client.apply(.set(name: "search_path", value: "x"))
        client.apply(.resetAll)
        #expect(client["work_mem"] == nil)
        #expect(client["search_path"] == nil)
    }

    @Test func unreportedTrackedParameterIsKeptAsSQL() {
        // search_path is not reported before PostgreSQL 18: the SET text is what we have.
        var client = SessionSettings(extraTracked: ["search_path"])
        client.apply(.set(name: "search_path", value: "a, public"))
        #expect(client["search_path"] == .sql("a, public"))
    }
}

@Suite struct StartupOptionsTests {
    @Test func parsesDashCAndDoubleDash() {
        let parsed = StartupOptions.parse("-c search_path=a,b --statement-timeout=5s -cTimeZone=UTC -c application_name=my\\ app")
        #expect(parsed?.map(\.0) == ["search_path", "statement_timeout", "TimeZone", "application_name"])
        #expect(parsed?.map(\.1) == ["a,b", "5s", "UTC", "my app"])
    }

    @Test func refusesOtherSwitches() {
        #expect(StartupOptions.parse("-d 5") == nil)
        #expect(StartupOptions.parse("-c") == nil)
        #expect(StartupOptions.parse("-c novalue") == nil)
    }
}

@Suite struct SetConfigReplayTests {
    @Test func listValuesReplayThroughSetConfig() {
        var client = SessionSettings()
        client.apply(.setConfig(name: "search_path", value: "a, public"))
        #expect(SessionSettings.alignment(server: SessionSettings(), client: client)
                == ["SELECT pg_catalog.set_config('search_path', 'a, public', false)"])
    }
}

@Suite struct QuoteLiteralTests {
    @Test func quoteBeforeACombiningMarkIsDoubled() {
        // "'" + U+0301 is a single Character; the quote must still be doubled.
        let value = "a'\u{0301}b"
        #expect(SessionCommandScanner.quoteLiteral(value) == "'a''\u{0301}b'")
        #expect(SessionCommandScanner.scan("SELECT set_config('x', \(SessionCommandScanner.quoteLiteral(value)), false)")
                == [.setConfig(name: "x", value: value)])
    }
}

@Suite struct QuotedNameTests {
    @Test func reservedWordsAreQuoted() {
        #expect(SessionSettings.quotedName("myapp.user") == "\"myapp\".\"user\"")
        #expect(SessionSettings.quotedName("a\"b") == "\"a\"\"b\"")
    }
}

@Suite struct CancelKeyTests {
    @Test func peerIDAndTTLAreEncodedAndRouted() {
        let key = CancelKey.make(peerID: 7)
        let bytes = CancelKey.bytes(processID: key.processID, secretKey: key.secretKey)
        #expect(CancelKey.peerID(of: bytes) == 7)
        #expect(bytes[7] & CancelKey.ttlMask == CancelKey.ttlMask)
        #expect(key.processID > 0)
        // At its own instance the key is local, unchanged.
        #expect(CancelKey.route(processID: key.processID, secretKey: key.secretKey, ownPeerID: 7)
                == .local(processID: key.processID, secretKey: key.secretKey))
        // Elsewhere it goes to peer 7 with one TTL step less, until the TTL runs out.
        guard case .peer(let id, let pid, let secret) = CancelKey.route(processID: key.processID, secretKey: key.secretKey, ownPeerID: 3) else {
            Issue.record("expected forwarding"); return
        }
        #expect(id == 7 && pid == key.processID && secret == key.secretKey - 1)
        var hops = 0
        var current = (key.processID, key.secretKey)
        while case .peer(_, let p, let s) = CancelKey.route(processID: current.0, secretKey: current.1, ownPeerID: 3) {
            current = (p, s); hops += 1
        }
        #expect(hops == 3)
        #expect(CancelKey.route(processID: current.0, secretKey: current.1, ownPeerID: 3) == .expired)
    }

    @Test func withoutPeeringEveryKeyIsLocal() {
        #expect(CancelKey.route(processID: 1, secretKey: 2, ownPeerID: 0) == .local(processID: 1, secretKey: 2))
    }
}

@Suite struct ScannerHardeningTests {
    @Test func dollarInsideAnIdentifierStartsNoQuote() {
        #expect(SessionCommandScanner.scan("SET x TO a$b$; INSERT INTO t VALUES (1); SET y TO c$b$")
                == [.set(name: "x", value: "a$b$"), .set(name: "y", value: "c$b$")])
    }

    @Test func escapeStringsHideTheirQuotes() {
        #expect(SessionCommandScanner.scan("SELECT E'\\'; SET search_path TO evil; --'").isEmpty)
        #expect(SessionCommandScanner.scan("SELECT e'\\\\'; SET a = 1") == [.set(name: "a", value: "1")])
    }
}
