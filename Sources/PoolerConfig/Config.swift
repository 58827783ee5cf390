/// A whole configuration file: `[pgbouncer]` settings, `[databases]`, `[users]`
/// and `[peers]`.
public struct Config: Equatable, Sendable {
    public var settings = Settings()
    /// Entries by name; `"*"` is the fallback for names not listed.
    public var databases: [String: DatabaseEntry] = [:]
    /// Database names in the order they first appear in the file.
    public var databaseOrder: [String] = []
    public var users: [String: UserEntry] = [:]
    public var peers: [Int: PeerEntry] = [:]
    /// One line per documented key that the file sets but this pooler ignores.
    public var warnings: [String] = []

    public init() {}

    /// Reads and parses a configuration file. `%include` paths are relative to
    /// the working directory, as in PgBouncer.
    public static func load(path: String) throws(ConfigError) -> Config {
        var config = try parse(text: FileReading.read(path), fileName: path)
        // As PgBouncer: conffile shows the file in use unless the file names another,
        // which the next RELOAD then reads.
        if config.settings.conffile.isEmpty { config.settings.conffile = path }
        return config
    }

    /// Parses configuration text; `fileName` is used in error messages.
    public static func parse(text: String, fileName: String) throws(ConfigError) -> Config {
        try parse(text: text, fileName: fileName, parser: IniParser())
    }

    static func parse(text: String, fileName: String, parser: IniParser) throws(ConfigError) -> Config {
        var builder = ConfigBuilder()
        try parser.parse(text: text, fileName: fileName) { (event, file, line) throws(ConfigError) in
            do throws(ConfigError) {
                try builder.apply(event, file: file, line: line)
            } catch {
                throw error.located(file: file, line: line)
            }
        }
        guard builder.sawMainSection else {
            throw ConfigError(file: fileName, "main section missing from config file")
        }
        return builder.config
    }

    /// The entry for a database a client asks for: its own entry, or else one made
    /// from the `"*"` fallback, whose server database defaults to the requested name.
    @inlinable // callers reach `databases` without copying the whole Config
    public func database(named name: String) -> DatabaseEntry? {
        if let entry = databases[name] { return entry }
        guard var entry = databases["*"] else { return nil }
        entry.name = name
        entry.dbname = entry.dbname ?? name
        return entry
    }
}

/// Collects parser events into a `Config`, section by section.
struct ConfigBuilder {
    private enum Section { case pgbouncer, databases, users, peers }

    var config = Config()
    private(set) var sawMainSection = false
    private var section: Section?
    private var warnedKeys: Set<String> = []

    mutating func apply(_ event: IniParser.Event, file: String, line: Int) throws(ConfigError) {
        switch event {
        case .section(let name):
            switch name {
            case "pgbouncer":
                section = .pgbouncer
                sawMainSection = true
                // PgBouncer fills in every default when the section starts, so a
                // second [pgbouncer] section undoes the first.
                config.settings = Settings()
            case "databases": section = .databases
            case "users": section = .users
            case "peers": section = .peers
            default: throw ConfigError("invalid section \"\(name)\" in configuration")
            }
        case let .entry(key, value):
            try set(key, value, file: file, line: line)
        }
    }

    private mutating func set(_ key: String, _ value: String, file: String, line: Int) throws(ConfigError) {
        switch section {
        case nil:
            throw ConfigError("value without section: \(key)")
        case .pgbouncer:
            try config.settings.set(key, to: value)
            if ConfigKeys.named(key)?.implemented == false, warnedKeys.insert(key).inserted {
                config.warnings.append("\(file):\(line): parameter \(key) is not supported by this pooler yet, ignored")
            }
        case .databases:
            let entry = try DatabaseEntry(name: key, connectionString: value)
            if config.databases.updateValue(entry, forKey: key) == nil {
                config.databaseOrder.append(key)
            }
        case .users:
            config.users[key] = try UserEntry(name: key, settings: value)
        case .peers:
            let peer = try PeerEntry(name: key, connectionString: value)
            config.peers[peer.id] = peer
        }
    }
}
