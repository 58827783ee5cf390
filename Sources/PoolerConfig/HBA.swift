// Host-based access control for `auth_type = hba`: the subset of pg_hba.conf that
// PgBouncer's src/hba.c understands, with its matching rules (first matching line wins).
//
// What PgBouncer supports, and so do we:
// - record types `local`, `host`, `hostssl`, `hostnossl` (case-sensitive keywords);
// - database column: `all`, `sameuser`, `replication`, `@file`, comma lists, "quoted"
//   names (`""` is a quote; a quoted keyword is a plain name); `samerole`/`samegroup`
//   are errors;
// - user column: `all`, `@file`, comma lists, quoted names; `+group` is an error.
//   PgBouncer parses this column with the database column's keywords too, so `sameuser`
//   there matches when the user name equals the database name, and `replication`
//   never matches; kept for compatibility;
// - address: `all`, IPv4/IPv6 `addr/bits` or `addr mask`; no host names, `samehost`,
//   `samenet`. As in PgBouncer a client matches when `client & mask == addr`, so an
//   address with bits outside its mask never matches (reported in `warnings`); an
//   IPv4-mapped IPv6 client address does not match IPv4 rules;
// - methods `trust`, `reject`, `md5`, `password`, `peer`, `cert`, `scram-sha-256`,
//   `ldap` (the rest of the line is its options); then optionally `map=NAME`, which
//   must name a map of the ident file (`auth_ident_file`);
// - `#` comments; no line continuation (a trailing `\` is read as a method or
//   parameter and rejected), no `include` directives.
//
// PgBouncer logs a bad line and skips it; `HBA.parse` rejects the file instead (a skipped
// `reject` line could let a later `trust` line match), and `HBA.parseSkippingInvalidLines`
// behaves like PgBouncer for callers that want that.

/// The record type, first column of a line.
public enum HBARecordType: String, Equatable, Sendable {
    case local
    case host
    case hostSSL = "hostssl"
    case hostNoSSL = "hostnossl"
}

/// The authentication method a matching line selects.
public enum HBAMethod: String, Equatable, Sendable {
    case trust
    case reject
    case md5
    case password
    case peer
    case cert
    case scramSHA256 = "scram-sha-256"
    case ldap
}

/// A database or user column: keywords plus literal names.
public struct HBANames: Equatable, Sendable {
    /// `all`.
    public var all: Bool
    /// `sameuser`: the database name equals the user name (in the user column: the
    /// user name equals the database name).
    public var sameUser: Bool
    /// `replication`: matches physical replication connections (database column only).
    public var replication: Bool
    /// Literal names in file order, without duplicates (from the line and `@file`s).
    public var names: [String]

    public init(all: Bool = false, sameUser: Bool = false, replication: Bool = false, names: [String] = []) {
        self.all = all
        self.sameUser = sameUser
        self.replication = replication
        self.names = names
    }

    /// PgBouncer's name_match(): `pair` is the other name of the connection.
    func matches(_ name: String, pair: String) -> Bool {
        if all { return true }
        if sameUser && HBANames.same(name, pair) { return true }
        return names.contains { HBANames.same($0, name) }
    }

    /// Byte-wise equality, as PgBouncer's strcmp (no Unicode normalization).
    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    mutating func add(_ name: String) {
        if !names.contains(where: { HBANames.same($0, name) }) { names.append(name) }
    }
}

/// The address column.
public enum HBAAddress: Equatable, Sendable {
    /// `local` lines: Unix-domain sockets.
    case unixSocket
    /// `all`.
    case all
    /// Network address and mask, both 4 (IPv4) or 16 (IPv6) bytes.
    case network(address: [UInt8], mask: [UInt8])

    func matches(_ client: [UInt8]?) -> Bool {
        switch self {
        case .unixSocket: return false
        case .all: return true
        case .network(let address, let mask):
            guard let client, client.count == address.count else { return false }
            for index in 0..<address.count where client[index] & mask[index] != address[index] {
                return false
            }
            return true
        }
    }
}

/// One parsed line of the HBA file.
public struct HBARule: Equatable, Sendable {
    public var type: HBARecordType
    public var databases: HBANames
    public var users: HBANames
    public var address: HBAAddress
    public var method: HBAMethod
    /// `map=NAME`: the ident map to apply (peer, cert).
    public var identMap: String?
    /// For `ldap`: everything after the method keyword, trimmed.
    public var ldapOptions: String?
    /// 1-based line number in the HBA file (PgBouncer logs "HBA Line %d is matched").
    public var lineNumber: Int

    public init(type: HBARecordType, databases: HBANames, users: HBANames, address: HBAAddress,
                method: HBAMethod, identMap: String? = nil, ldapOptions: String? = nil, lineNumber: Int) {
        self.type = type
        self.databases = databases
        self.users = users
        self.address = address
        self.method = method
        self.identMap = identMap
        self.ldapOptions = ldapOptions
        self.lineNumber = lineNumber
    }

    /// PgBouncer's hba_eval() test for one rule.
    public func matches(_ connection: HBAConnection) -> Bool {
        if connection.isUnixSocket {
            guard type == .local else { return false }
        } else {
            switch type {
            case .local: return false
            case .host: break
            case .hostSSL: guard connection.isTLS else { return false }
            case .hostNoSSL: guard !connection.isTLS else { return false }
            }
            guard address.matches(connection.address) else { return false }
        }
        if connection.isReplication {
            guard databases.replication else { return false }
        } else {
            guard databases.matches(connection.database, pair: connection.user) else { return false }
        }
        return users.matches(connection.user, pair: connection.database)
    }
}

/// What the HBA rules are evaluated against for one login.
public struct HBAConnection: Equatable, Sendable {
    public var isUnixSocket: Bool
    /// Client address in network byte order: 4 bytes (IPv4) or 16 (IPv6); nil for Unix sockets.
    public var address: [UInt8]?
    public var isTLS: Bool
    public var database: String
    public var user: String
    /// A physical replication connection (`replication=true`). Logical replication
    /// (`replication=database`) is matched by database name like a normal login, so
    /// pass false for it.
    public var isReplication: Bool

    public init(isUnixSocket: Bool = false, address: [UInt8]? = nil, isTLS: Bool = false,
                database: String, user: String, isReplication: Bool = false) {
        self.isUnixSocket = isUnixSocket
        self.address = address
        self.isTLS = isTLS
        self.database = database
        self.user = user
        self.isReplication = isReplication
    }
}

/// A parsed `auth_hba_file`.
public struct HBA: Equatable, Sendable {
    public var rules: [HBARule]
    /// Problems PgBouncer only warns about (an address with bits outside its mask, which
    /// then never matches; `peer` on a non-local line, which always fails at login).
    public var warnings: [ConfigError]

    public init(rules: [HBARule] = [], warnings: [ConfigError] = []) {
        self.rules = rules
        self.warnings = warnings
    }

    /// Reads `path`, resolving `@file` names relative to its directory.
    public static func load(path: String, identMaps: HBAIdentMaps? = nil) throws(ConfigError) -> HBA {
        try parse(text: FileReading.read(path, what: "hba config file"), fileName: path, identMaps: identMaps)
    }

    /// Parses an HBA file; the first bad line throws `FILE:LINE: message`.
    /// `fileName` is used in errors and to resolve `@file` names (relative to its directory).
    public static func parse(text: String, fileName: String, identMaps: HBAIdentMaps? = nil,
                             readFile: @escaping (String) throws(ConfigError) -> String = HBA.readNameFile)
        throws(ConfigError) -> HBA
    {
        var parser = HBAParser(fileName: fileName, identMaps: identMaps, readFile: readFile)
        return try parser.parseFile(text, skipInvalidLines: false).hba
    }

    /// PgBouncer's behaviour: invalid lines are reported and left out, the rest is used.
    public static func parseSkippingInvalidLines(
        text: String, fileName: String, identMaps: HBAIdentMaps? = nil,
        readFile: @escaping (String) throws(ConfigError) -> String = HBA.readNameFile
    ) -> (hba: HBA, errors: [ConfigError]) {
        var parser = HBAParser(fileName: fileName, identMaps: identMaps, readFile: readFile)
        do {
            return try parser.parseFile(text, skipInvalidLines: true)
        } catch {
            return (HBA(), [error])  // unreachable: nothing throws when skipping
        }
    }

    /// Default reader for `@file` name lists.
    public static func readNameFile(_ path: String) throws(ConfigError) -> String {
        try FileReading.read(path, what: "file")
    }

    /// The method of the first matching rule; nil when no rule matches (login rejected
    /// with "no authentication method is found").
    public func match(connection: HBAConnection) -> HBAMethod? {
        matchingRule(connection: connection)?.method
    }

    /// The first matching rule, for its line number, ident map and LDAP options.
    public func matchingRule(connection: HBAConnection) -> HBARule? {
        rules.first { $0.matches(connection) }
    }
}

/// `auth_ident_file`: lines of `map-name system-username database-username`, where the
/// database user may be `all`. As in PgBouncer: no regular expressions, no `+group`,
/// no includes. Mappings of one map keep file order.
public struct HBAIdentMaps: Equatable, Sendable {
    public struct Mapping: Equatable, Sendable {
        public var systemUser: String
        /// nil for `all`.
        public var databaseUser: String?
        public init(systemUser: String, databaseUser: String?) {
            self.systemUser = systemUser
            self.databaseUser = databaseUser
        }
    }

    /// Map names in order of first appearance.
    public var mapNames: [String]
    public var maps: [String: [Mapping]]

    public init(maps: [(name: String, mappings: [Mapping])] = []) {
        mapNames = []
        self.maps = [:]
        for (name, mappings) in maps {
            for mapping in mappings { add(name, mapping) }
        }
    }

    mutating func add(_ name: String, _ mapping: Mapping) {
        if maps[name] == nil { mapNames.append(name) }
        maps[name, default: []].append(mapping)
    }

    public func contains(map name: String) -> Bool { maps[name] != nil }

    /// Whether `map` lets OS/certificate user `systemUser` log in as `databaseUser`.
    public func allows(map name: String, systemUser: String, databaseUser: String) -> Bool {
        (maps[name] ?? []).contains { mapping in
            HBANames.same(mapping.systemUser, systemUser)
                && (mapping.databaseUser.map { HBANames.same($0, databaseUser) } ?? true)
        }
    }

    public static func load(path: String) throws(ConfigError) -> HBAIdentMaps {
        try parse(text: FileReading.read(path, what: "ident config file"), fileName: path)
    }

    public static func parse(text: String, fileName: String) throws(ConfigError) -> HBAIdentMaps {
        var result = HBAIdentMaps()
        for (index, line) in HBAParser.lines(text).enumerated() {
            var tokens = HBATokenizer(line)
            func fail(_ message: String) -> ConfigError { ConfigError(file: fileName, line: index + 1, message) }
            guard case .ident(let mapName) = tokens.current else {
                if tokens.current == .end { continue }
                throw fail("invalid map name")
            }
            tokens.advance()
            let systemUser: String
            switch tokens.current {
            case .ident(let name), .string(let name): systemUser = name
            default: throw fail("missing system user name")
            }
            tokens.advance()
            let databaseUser: String?
            switch tokens.current {
            case .ident("all"): databaseUser = nil
            case .ident(let name) where name.utf8.first == UInt8(ascii: "+"):
                throw fail("group names are not supported: \(name)")
            case .ident(let name), .string(let name): databaseUser = name
            default: throw fail("missing database user name")
            }
            tokens.advance()
            guard tokens.current == .end else { throw fail("unsupported parameters") }
            result.add(mapName, Mapping(systemUser: systemUser, databaseUser: databaseUser))
        }
        return result
    }
}
