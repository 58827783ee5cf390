import Testing
@testable import PoolerConfig

@Suite struct IniSyntaxTests {
    private func parse(_ text: String) throws -> Config {
        try Config.parse(text: text, fileName: "pooler.ini")
    }

    private func failure(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func commentsBlankLinesAndSpacing() throws {
        let config = try parse("""
            ; a comment
            # another comment

              [pgbouncer]
            listen_port=7000
               max_client_conn   =   50
            \tpool_mode\t=\ttransaction\t
            logfile = /var/log/pooler.log ; not a comment
            ;listen_addr = 1.2.3.4
            """)
        #expect(config.settings.listenPort == 7000)
        #expect(config.settings.maxClientConn == 50)
        #expect(config.settings.poolMode == .transaction)
        #expect(config.settings.logfile == "/var/log/pooler.log ; not a comment")
        #expect(config.settings.listenAddr == "")
        #expect(config.warnings.isEmpty)
    }

    @Test func crlfLineEndings() throws {
        let config = try parse("[pgbouncer]\r\nlisten_port = 7001\r\nadmin_users = a,b\r\n")
        #expect(config.settings.listenPort == 7001)
        #expect(config.settings.adminUsers == ["a", "b"])
    }

    @Test func laterDuplicateWins() throws {
        let config = try parse("[pgbouncer]\nlisten_port = 1\nlisten_port = 2\n")
        #expect(config.settings.listenPort == 2)
    }

    @Test func emptyValues() throws {
        let config = try parse("[pgbouncer]\npidfile =\nserver_reset_query =   \n")
        #expect(config.settings.pidfile == "")
        #expect(config.settings.serverResetQuery == "")
    }

    @Test func restOfSectionLineIsReadAsALine() throws {
        #expect(try parse("[pgbouncer] ; comment\nlisten_port = 5\n").settings.listenPort == 5)
        #expect(try parse("[pgbouncer] listen_port = 6\n").settings.listenPort == 6)
    }

    @Test func secondMainSectionRestoresDefaults() throws {
        // PgBouncer fills in every default when a [pgbouncer] section starts.
        let config = try parse("[pgbouncer]\nlisten_port = 1\nmax_client_conn = 7\n[databases]\n[pgbouncer]\nmax_client_conn = 8\n")
        #expect(config.settings.listenPort == 6432)
        #expect(config.settings.maxClientConn == 8)
    }

    @Test func unknownParameter() {
        #expect(failure("[pgbouncer]\nlisten_port = 1\n\nlisten_prot = 2\n") == "pooler.ini:4: unknown parameter: pgbouncer/listen_prot")
        #expect(failure("[pgbouncer]\nListen_Port = 1\n") == "pooler.ini:2: unknown parameter: pgbouncer/Listen_Port")
    }

    @Test func invalidValueNamesFileLineKeyAndForm() {
        #expect(failure("; x\n\n[pgbouncer]\nlisten_port = abc\n") == "pooler.ini:4: invalid value for listen_port: 'abc' (expected an integer)")
    }

    @Test func syntaxErrors() {
        #expect(failure("[pgbouncer]\nlisten port = 1\n") == "pooler.ini:2: syntax error in configuration, stopping loading")
        #expect(failure("[pgbouncer]\nlisten_port\n") == "pooler.ini:2: syntax error in configuration, stopping loading")
        #expect(failure("[pgbouncer\nlisten_port = 1\n") == "pooler.ini:1: syntax error in configuration, stopping loading")
        #expect(failure("[pgbouncer]\n%include\n") == "pooler.ini:2: syntax error in configuration, stopping loading")
        #expect(failure("[pgbouncer]\n\"x\" = 1\n") == "pooler.ini:2: syntax error in configuration, stopping loading")
    }

    @Test func sectionErrors() {
        #expect(failure("listen_port = 1\n[pgbouncer]\n") == "pooler.ini:1: value without section: listen_port")
        #expect(failure("[pgbouncer]\n[database]\n") == "pooler.ini:2: invalid section \"database\" in configuration")
        #expect(failure("[databases]\nfoo = host=x\n") == "pooler.ini: main section missing from config file")
    }

    @Test func quotedKeys() throws {
        let config = try parse("[pgbouncer]\n[databases]\n'my db' = host=x\n")
        #expect(config.databases["my db"]?.host == "x")
    }

    @Test func unsupportedKeysWarnOnce() throws {
        let config = try parse("[pgbouncer]\nsbuf_loopcnt = 1\nlisten_port = 1\nsbuf_loopcnt = 0\nresolv_conf = /x\n")
        #expect(config.warnings == [
            "pooler.ini:2: parameter sbuf_loopcnt is not supported by this pooler yet, ignored",
            "pooler.ini:5: parameter resolv_conf is not supported by this pooler yet, ignored",
        ])
        #expect(config.settings.value(of: "sbuf_loopcnt") == "0")
        #expect(config.settings.value(of: "resolv_conf") == "/x")
    }
}
