/// The `replication` startup parameter: physical (`true`/`on`/`yes`/`1`), logical
/// (`database`) or none. A replication client gets a server of its own, opened with the
/// same parameter, for as long as it stays connected (PgBouncer 1.21+).
public enum ReplicationMode: Sendable, Equatable {
    case none, logical, physical

    /// nil for a value PostgreSQL would refuse.
    public init?(startupValue: String) {
        switch startupValue.lowercased() {
        case "database": self = .logical
        case "true", "on", "yes", "1", "t", "y": self = .physical
        case "false", "off", "no", "0", "f", "n": self = .none
        default: return nil
        }
    }

    /// What the server's StartupMessage carries.
    public var startupValue: String? {
        switch self {
        case .none: return nil
        case .logical: return "database"
        case .physical: return "true"
        }
    }

    /// `replication=` of the login log line, in PgBouncer's words.
    public var logValue: String {
        switch self {
        case .none: return "no"
        case .logical: return "database"
        case .physical: return "yes"
        }
    }
}
