import Glibc
import Testing
@testable import PoolerConfig

@Suite struct HBATests {
    static let v4: (UInt8, UInt8, UInt8, UInt8) -> [UInt8] = { [$0, $1, $2, $3] }

    static func tcp(_ address: [UInt8], db: String = "app", user: String = "alice", tls: Bool = false,
                    replication: Bool = false) -> HBAConnection {
        HBAConnection(isUnixSocket: false, address: address, isTLS: tls, database: db, user: user,
                      isReplication: replication)
    }

    static func unix(db: String = "app", user: String = "alice", replication: Bool = false) -> HBAConnection {
        HBAConnection(isUnixSocket: true, address: nil, isTLS: false, database: db, user: user,
                      isReplication: replication)
    }

    static func ipv6(_ text: String) -> [UInt8] { HBAParser.ipAddress(text, family: 16)! }

    static func parse(_ text: String, identMaps: HBAIdentMaps? = nil,
                      files: [String: String] = [:]) throws(ConfigError) -> HBA {
        try HBA.parse(text: text, fileName: "/etc/pooler/hba.conf", identMaps: identMaps) { (path: String) throws(ConfigError) -> String in
            guard let text = files[path] else { throw ConfigError("could not load file \"\(path)\": No such file or directory") }
            return text
        }
    }

    static func error(_ text: String, identMaps: HBAIdentMaps? = nil, files: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try parse(text, identMaps: identMaps, files: files)
            return nil
        } catch {
            return error
        }
    }

    // MARK: record types

    @Test func recordTypes() throws {
        let hba = try Self.parse("""
            local     all all              peer
            hostssl   all all 10.0.0.0/8   scram-sha-256
            hostnossl all all 10.0.0.0/8   md5
            host      all all all          password
            """)
        #expect(hba.rules.map(\.type) == [.local, .hostSSL, .hostNoSSL, .host])
        #expect(hba.rules.map(\.lineNumber) == [1, 2, 3, 4])
        #expect(hba.warnings.isEmpty)
        #expect(hba.match(connection: Self.unix()) == .peer)
        #expect(hba.match(connection: Self.tcp([10, 1, 2, 3], tls: true)) == .scramSHA256)
        #expect(hba.match(connection: Self.tcp([10, 1, 2, 3], tls: false)) == .md5)
        #expect(hba.match(connection: Self.tcp([192, 168, 0, 1], tls: true)) == .password)
        #expect(hba.matchingRule(connection: Self.tcp([192, 168, 0, 1]))?.lineNumber == 4)
    }

    @Test func localOnlyMatchesUnixSockets() throws {
        let hba = try Self.parse("local all all trust\n")
        #expect(hba.rules[0].address == .unixSocket)
        #expect(hba.match(connection: Self.unix()) == .trust)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 1])) == nil)
        let hosts = try Self.parse("host all all all trust\n")
        #expect(hosts.match(connection: Self.unix()) == nil)
    }

    @Test func noMatchIsNil() throws {
        let hba = try Self.parse("host app alice 127.0.0.1/32 md5\n")
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 1], db: "other")) == nil)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 1], user: "bob")) == nil)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 2])) == nil)
        #expect(try Self.parse("").match(connection: Self.unix()) == nil)
    }

    @Test func firstMatchingLineWins() throws {
        let hba = try Self.parse("""
            host all bob     all          reject
            host all all     10.0.0.0/8   trust
            host all all     0.0.0.0/0    md5
            """)
        #expect(hba.match(connection: Self.tcp([10, 0, 0, 1], user: "bob")) == .reject)
        #expect(hba.match(connection: Self.tcp([10, 0, 0, 1])) == .trust)
        #expect(hba.match(connection: Self.tcp([11, 0, 0, 1])) == .md5)
    }

    // MARK: methods and options

    @Test func methods() throws {
        let names: [(String, HBAMethod)] = [
            ("trust", .trust), ("reject", .reject), ("md5", .md5), ("password", .password),
            ("peer", .peer), ("cert", .cert), ("scram-sha-256", .scramSHA256), ("ldap", .ldap),
        ]
        for (name, method) in names {
            let hba = try Self.parse("local all all \(name)")
            #expect(hba.rules.first?.method == method)
        }
        for bad in ["ident", "gss", "sspi", "pam", "radius", "any", "MD5", "scram"] {
            #expect(Self.error("local all all \(bad)") == ConfigError(file: "/etc/pooler/hba.conf", line: 1,
                                                                         "unsupported method: \(bad)"))
        }
        #expect(Self.error("local all all")?.message == "missing authentication method")
    }

    @Test func ldapTakesTheRestOfTheLine() throws {
        let hba = try Self.parse(#"host all all all ldap ldapserver=ldap.example.net ldapprefix="cn=" ldapsuffix=", dc=example, dc=net"   "#)
        #expect(hba.rules[0].method == .ldap)
        #expect(hba.rules[0].ldapOptions == #"ldapserver=ldap.example.net ldapprefix="cn=" ldapsuffix=", dc=example, dc=net""#)
        #expect(try Self.parse("local all all ldap").rules[0].ldapOptions == "")
    }

    @Test func peerOnHostLineIsAcceptedWithWarning() throws {
        let hba = try Self.parse("\nhost all all all peer\n")
        #expect(hba.rules.count == 1)
        #expect(hba.warnings == [ConfigError(file: "/etc/pooler/hba.conf", line: 2,
                                             "peer authentication is only supported on local sockets")])
    }

    @Test func identMapOption() throws {
        let maps = try HBAIdentMaps.parse(text: """
            # MAPNAME  SYSTEM-USERNAME  PG-USERNAME
            omicron    root             postgres
            omicron    "ann smith"      ann
            admins     carol            all
            """, fileName: "ident.map")
        #expect(maps.mapNames == ["omicron", "admins"])
        #expect(maps.maps["omicron"] == [.init(systemUser: "root", databaseUser: "postgres"),
                                         .init(systemUser: "ann smith", databaseUser: "ann")])
        #expect(maps.allows(map: "omicron", systemUser: "root", databaseUser: "postgres"))
        #expect(!maps.allows(map: "omicron", systemUser: "root", databaseUser: "ann"))
        #expect(maps.allows(map: "admins", systemUser: "carol", databaseUser: "anyone"))
        #expect(!maps.allows(map: "nosuch", systemUser: "carol", databaseUser: "carol"))

        let hba = try Self.parse("""
            local    all all          peer map=omicron
            hostssl  all all all      cert map=admins
            """, identMaps: maps)
        #expect(hba.rules.map(\.identMap) == ["omicron", "admins"])
        #expect(Self.error("local all all peer map=missing", identMaps: maps)?.message
                    == "Ident map missing is not found in ident config file")
        #expect(Self.error("local all all peer map=omicron")?.message
                    == "Ident map omicron is not found in ident config file")
        #expect(Self.error("local all all peer mapx=omicron", identMaps: maps)?.message
                    == "Ident map mapx=omicron is malformed. It is not in map=value format.")
        #expect(Self.error("local all all peer map=omicron extra", identMaps: maps)?.message
                    == "unsupported parameters")
    }

    @Test func identMapErrors() {
        func error(_ text: String) -> ConfigError? {
            do { _ = try HBAIdentMaps.parse(text: text, fileName: "ident.map"); return nil } catch { return error }
        }
        #expect(error("m root") == ConfigError(file: "ident.map", line: 1, "missing database user name"))
        #expect(error("\nm root +admins") == ConfigError(file: "ident.map", line: 2,
                                                          "group names are not supported: +admins"))
        #expect(error("m root pg extra")?.message == "unsupported parameters")
        #expect(error("\"m\" root pg")?.message == "invalid map name")
    }

    // MARK: database and user columns

    @Test func nameLists() throws {
        let hba = try Self.parse("host app,reports alice,bob all md5\n")
        #expect(hba.rules[0].databases == HBANames(names: ["app", "reports"]))
        #expect(hba.rules[0].users == HBANames(names: ["alice", "bob"]))
        for (db, user, expected) in [("app", "alice", true), ("reports", "bob", true),
                                     ("other", "alice", false), ("app", "carol", false)] {
            #expect((hba.match(connection: Self.tcp([1, 2, 3, 4], db: db, user: user)) != nil) == expected)
        }
        // Spaces around commas are allowed; a trailing comma needs another name.
        let spaced = try Self.parse("host app , reports alice ,bob all md5")
        #expect(spaced.rules[0].databases.names == ["app", "reports"])
        #expect(spaced.rules[0].users.names == ["alice", "bob"])
        #expect(Self.error("host app, all")?.message == "missing user name")  // `all` is the second database
        #expect(Self.error("local app,")?.message == "missing database name")
    }

    @Test func quotedNames() throws {
        let hba = try Self.parse(#"host "all","My DB","a""b",sameuser "+group","@file",x all trust"#)
        let rule = hba.rules[0]
        // Quoted keywords are plain names.
        #expect(rule.databases == HBANames(sameUser: true, names: ["all", "My DB", "a\"b"]))
        #expect(rule.users == HBANames(names: ["+group", "@file", "x"]))
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], db: "My DB", user: "x")) == .trust)
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], db: "a\"b", user: "+group")) == .trust)
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], db: "my db", user: "x")) == nil)
        #expect(Self.error(#"host "unterminated all all trust"#)?.message == "unterminated quoted string")
    }

    @Test func keywordsAreCaseSensitive() throws {
        let hba = try Self.parse("host ALL All all trust")
        #expect(hba.rules[0].databases == HBANames(names: ["ALL"]))
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], db: "ALL", user: "All")) == .trust)
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1])) == nil)
        #expect(Self.error("HOST all all all trust")?.message == "unknown type: HOST")
    }

    @Test func sameUser() throws {
        let hba = try Self.parse("local sameuser all md5\nlocal all all reject\n")
        #expect(hba.match(connection: Self.unix(db: "alice", user: "alice")) == .md5)
        #expect(hba.match(connection: Self.unix(db: "app", user: "alice")) == .reject)
        // PgBouncer reads the user column with the same keywords: sameuser there means user == database.
        let users = try Self.parse("local all sameuser md5")
        #expect(users.match(connection: Self.unix(db: "bob", user: "bob")) == .md5)
        #expect(users.match(connection: Self.unix(db: "app", user: "bob")) == nil)
    }

    @Test func replication() throws {
        let hba = try Self.parse("""
            local replication repl      trust
            local all         all       md5
            host  all         all   all md5
            """)
        #expect(hba.rules[0].databases == HBANames(replication: true))
        #expect(hba.match(connection: Self.unix(user: "repl", replication: true)) == .trust)
        // A physical replication connection only matches lines with `replication`, not `all`.
        #expect(hba.match(connection: Self.unix(user: "other", replication: true)) == nil)
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], user: "repl", replication: true)) == nil)
        // A normal connection to a database named "replication" does not match the keyword.
        #expect(hba.match(connection: Self.unix(db: "replication", user: "repl")) == .md5)
        #expect(try Self.parse("local \"replication\" all trust").match(
            connection: Self.unix(db: "replication")) == .trust)
    }

    @Test func unsupportedNameForms() {
        #expect(Self.error("local samerole all trust") == ConfigError(file: "/etc/pooler/hba.conf", line: 1,
                                                                         "samerole is not supported"))
        #expect(Self.error("local samegroup all trust")?.message == "samegroup is not supported")
        #expect(Self.error("\n\nlocal all +admins trust") == ConfigError(file: "/etc/pooler/hba.conf", line: 3,
                                                                           "group names are not supported: +admins"))
        #expect(Self.error("local all")?.message == "missing user name")
    }

    @Test func nameFiles() throws {
        let files = [
            "/etc/pooler/dbs.txt": "# databases\napp, reports\n\nanalytics  warehouse # trailing\n",
            "/etc/pooler/users/admins": "alice\n\"bob smith\",@more\n",
            "/etc/pooler/users/more": "carol\n",
            "/abs/list": "dave",
        ]
        let hba = try Self.parse("""
            host @dbs.txt @users/admins,@/abs/list,erin all md5
            """, files: files)
        let rule = hba.rules[0]
        #expect(rule.databases.names == ["app", "reports", "analytics", "warehouse"])
        // Nested @files resolve against the including file's directory.
        #expect(rule.users.names == ["alice", "bob smith", "carol", "dave", "erin"])
        #expect(hba.match(connection: Self.tcp([1, 1, 1, 1], db: "warehouse", user: "bob smith")) == .md5)

        #expect(Self.error("local @missing all trust", files: files)
                    == ConfigError(file: "/etc/pooler/hba.conf", line: 1,
                                   "could not load file \"/etc/pooler/missing\": No such file or directory"))
        // Errors inside an @file point at that file.
        #expect(Self.error("local all @bad trust", files: ["/etc/pooler/bad": "ok\n+group\n"])
                    == ConfigError(file: "/etc/pooler/bad", line: 2, "group names are not supported: +group"))
        #expect(Self.error("local all @loop trust", files: ["/etc/pooler/loop": "@loop"])?.message
                    .hasPrefix("@file nesting too deep") == true)
    }

    @Test func nameFileFromDisk() throws {
        let directory = "/tmp/pooler-hba-test-\(getpidValue())"
        try? FileManagerless.mkdir(directory)
        try FileManagerless.write("\(directory)/users", "alice,bob\n")
        try FileManagerless.write("\(directory)/hba.conf", "local all @users trust\nlocal all all reject\n")
        let hba = try HBA.load(path: "\(directory)/hba.conf")
        #expect(hba.match(connection: Self.unix(user: "bob")) == .trust)
        #expect(hba.match(connection: Self.unix(user: "carol")) == .reject)
        #expect(throws: ConfigError.self) { try HBA.load(path: "\(directory)/nonexistent.conf") }
    }

    // MARK: addresses

    @Test func ipv4Cidr() throws {
        let hba = try Self.parse("""
            host all all 192.168.12.0/24 trust
            host all all 10.0.0.0/8 md5
            host all all 172.16.0.0/12 password
            host all all 127.0.0.1/32 cert
            host all all 0.0.0.0/0 reject
            """)
        #expect(hba.rules[0].address == .network(address: [192, 168, 12, 0], mask: [255, 255, 255, 0]))
        #expect(hba.rules[2].address == .network(address: [172, 16, 0, 0], mask: [255, 240, 0, 0]))
        #expect(hba.match(connection: Self.tcp([192, 168, 12, 200])) == .trust)
        #expect(hba.match(connection: Self.tcp([192, 168, 13, 1])) == .reject)
        #expect(hba.match(connection: Self.tcp([10, 255, 255, 255])) == .md5)
        #expect(hba.match(connection: Self.tcp([172, 31, 1, 1])) == .password)
        #expect(hba.match(connection: Self.tcp([172, 32, 1, 1])) == .reject)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 1])) == .cert)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 2])) == .reject)
        // IPv4 rules never match IPv6 clients, including IPv4-mapped ones (as in PgBouncer).
        #expect(hba.match(connection: Self.tcp(Self.ipv6("::ffff:10.0.0.1"))) == nil)
    }

    @Test func addressAndSeparateMask() throws {
        let hba = try Self.parse("""
            host all all 192.168.0.0 255.255.0.0 trust
            host all all fe80:: ffff:ffff:ffff:ffff:: md5
            """)
        #expect(hba.rules[0].address == .network(address: [192, 168, 0, 0], mask: [255, 255, 0, 0]))
        #expect(hba.match(connection: Self.tcp([192, 168, 77, 1])) == .trust)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("fe80::1:2"))) == .md5)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("fe81::1"))) == nil)
        #expect(Self.error("host all all 192.168.0.0 trust")?.message == "failed to parse mask: trust")
        #expect(Self.error("host all all 192.168.0.0")?.message == "did not find mask")
        // The mask must be of the address's family.
        #expect(Self.error("host all all 10.0.0.0 ffff:: trust")?.message == "failed to parse mask: ffff::")
    }

    @Test func ipv6() throws {
        let hba = try Self.parse("""
            host all all ::1/128 trust
            host all all 2001:db8::/32 md5
            host all all 2001:db9:0:0:0:0:0:0/31 password
            host all all ::/0 reject
            """)
        #expect(hba.rules[0].address == .network(address: Self.ipv6("::1"), mask: [UInt8](repeating: 255, count: 16)))
        #expect(hba.match(connection: Self.tcp(Self.ipv6("::1"))) == .trust)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:db8:ffff::42"))) == .md5)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:db9::1"))) == .reject)  // the /31 line has a host bit set: never matches
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:dba::1"))) == .reject)
        #expect(hba.match(connection: Self.tcp([127, 0, 0, 1])) == nil)
        #expect(hba.warnings.count == 1)  // 2001:db9::/31 has a bit outside its mask
        #expect(hba.warnings.first?.message == "address does not match mask: 2001:db9:: / ffff:fffe::")
    }

    @Test func oddPrefixLengths() throws {
        let hba = try Self.parse("host all all 10.1.2.128/25 trust\nhost all all 2001:db8::/33 md5")
        #expect(hba.rules[0].address == .network(address: [10, 1, 2, 128], mask: [255, 255, 255, 128]))
        #expect(hba.match(connection: Self.tcp([10, 1, 2, 200])) == .trust)
        #expect(hba.match(connection: Self.tcp([10, 1, 2, 127])) == nil)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:db8:7fff::1"))) == .md5)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:db8:8000::1"))) == nil)
    }

    @Test func addressWithHostBitsNeverMatches() throws {
        let hba = try Self.parse("host all all 10.0.0.1/8 trust")
        #expect(hba.warnings == [ConfigError(file: "/etc/pooler/hba.conf", line: 1,
                                             "address does not match mask: 10.0.0.1 / 255.0.0.0")])
        #expect(hba.match(connection: Self.tcp([10, 0, 0, 1])) == nil)
    }

    @Test func addressAll() throws {
        let hba = try Self.parse("hostssl all all all trust")
        #expect(hba.rules[0].address == .all)
        #expect(hba.match(connection: Self.tcp([8, 8, 8, 8], tls: true)) == .trust)
        #expect(hba.match(connection: Self.tcp(Self.ipv6("2001:db8::1"), tls: true)) == .trust)
        #expect(hba.match(connection: HBAConnection(isTLS: true, database: "app", user: "alice")) == .trust)
        #expect(hba.match(connection: Self.tcp([8, 8, 8, 8], tls: false)) == nil)
        // Without an address a host rule with a network cannot match.
        let net = try Self.parse("host all all 0.0.0.0/0 trust")
        #expect(net.match(connection: HBAConnection(database: "app", user: "alice")) == nil)
    }

    @Test func addressErrors() {
        let cases: [(String, String)] = [
            ("host all all", "did not find address"),
            ("host all all \"10.0.0.0/8\" trust", "did not find address"),
            ("host all all db.example.com md5", "failed to parse address - db.example.com"),
            ("host all all .example.com md5", "failed to parse address - .example.com"),
            ("host all all samehost md5", "samehost is not supported"),
            ("host all all samenet md5", "samenet is not supported"),
            ("host all all 10.0.0.0/33 md5", "invalid mask"),
            ("host all all ::/129 md5", "invalid mask"),
            ("host all all 10.0.0.0/ md5", "invalid mask"),
            ("host all all 10.0.0.0/-1 md5", "invalid mask"),
            ("host all all 10.0.0.0/8x md5", "invalid mask"),
            ("host all all 10.0.0/8 md5", "failed to parse address - 10.0.0"),
            ("host all all 10.0.0.0/8 md5 extra", "Ident map extra is malformed. It is not in map=value format."),
            ("host all all 10.0.0.0/8 md5 \"map=x\"", "unsupported parameters"),
            ("host all all 10.0.0.0/8 md5 ,", "unsupported parameters"),
        ]
        for (line, message) in cases {
            #expect(Self.error(line) == ConfigError(file: "/etc/pooler/hba.conf", line: 1, message), "\(line)")
        }
    }

    // MARK: file syntax

    @Test func commentsAndBlankLines() throws {
        let hba = try Self.parse("""
            # TYPE  DATABASE  USER  ADDRESS  METHOD

               \t
            local all all trust # trailing comment
            host all all all md5#c
            """)
        #expect(hba.rules.map(\.lineNumber) == [4, 5])
        #expect(hba.rules.map(\.method) == [.trust, .md5])
    }

    @Test func crlfAndTabs() throws {
        let hba = try Self.parse("local\tall\tall\ttrust\r\nhost all all 10.0.0.0/8 md5\r\n")
        #expect(hba.rules.map(\.method) == [.trust, .md5])
    }

    @Test func noLineContinuation() {
        // PgBouncer reads one line at a time; a trailing backslash is not a continuation.
        #expect(Self.error("host all all 10.0.0.0/8 \\\n  md5") == ConfigError(file: "/etc/pooler/hba.conf", line: 1,
                                                                                  "unsupported method: \\"))
        #expect(Self.error("local all all trust \\\n")?.message == "Ident map \\ is malformed. It is not in map=value format.")
    }

    @Test func errorsCarryLineNumbers() {
        let text = """
            # comment
            local all all trust
            hostssl all all 10.0.0.0/8 scram-sha-256
            hots all all all md5
            host all all all bogus
            """
        #expect(Self.error(text) == ConfigError(file: "/etc/pooler/hba.conf", line: 4, "unknown type: hots"))
        #expect(Self.error(text)?.description == "/etc/pooler/hba.conf:4: unknown type: hots")
        #expect(Self.error("include other.conf")?.message == "unknown type: include")
    }

    @Test func skippingInvalidLinesLikePgBouncer() {
        let (hba, errors) = HBA.parseSkippingInvalidLines(text: """
            local all all trust
            host all +admins all reject
            host all all all md5
            bogus
            """, fileName: "hba.conf")
        #expect(hba.rules.map(\.lineNumber) == [1, 3])
        #expect(errors == [ConfigError(file: "hba.conf", line: 2, "group names are not supported: +admins"),
                           ConfigError(file: "hba.conf", line: 4, "unknown type: bogus")])
    }

    @Test func tokenizer() {
        func tokens(_ text: String) -> [HBATokenizer.Token] {
            var tokenizer = HBATokenizer(Array(text.utf8)[...])
            var result: [HBATokenizer.Token] = []
            while tokenizer.current != .end {
                result.append(tokenizer.current)
                if tokenizer.current == .fail { break }
                tokenizer.advance()
            }
            return result
        }
        #expect(tokens(#"a,b "c d",e"f"g # x"#) == [.ident("a"), .comma, .ident("b"), .string("c d"), .comma,
                                                       .ident("e"), .string("f"), .ident("g")])
        #expect(tokens(#""""""#) == [.string("\"")])
        #expect(tokens(#""""""""#) == [.string("\"\"")])
        #expect(tokens(#""""#) == [.string("")])
        #expect(tokens(#""abc"#) == [.fail])
        #expect(tokens("   ") == [])
    }
}

// Small file helpers without Foundation.

private func getpidValue() -> Int32 { getpid() }

private enum FileManagerless {
    static func mkdir(_ path: String) throws { _ = Glibc.mkdir(path, 0o755) }
    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ConfigError("open failed: \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
