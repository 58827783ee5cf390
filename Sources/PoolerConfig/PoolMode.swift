/// When a server connection goes back to its pool (`pool_mode`).
public enum PoolMode: String, CaseIterable, Sendable {
    case session, transaction, statement

    /// PgBouncer compares lookup values case-insensitively.
    public init?(configValue: String) {
        self.init(rawValue: configValue.lowercased())
    }
}

/// How clients authenticate (`auth_type`).
public enum AuthType: String, CaseIterable, Sendable {
    case any, trust, plain, md5
    case scramSHA256 = "scram-sha-256"
    case cert, hba, pam, ldap

    /// The methods this pooler can perform today; the others are rejected at load time
    /// rather than silently weakened.
    public static let implemented: [AuthType] = [.any, .trust, .plain, .md5, .scramSHA256, .cert, .hba]

    public var isImplemented: Bool { AuthType.implemented.contains(self) }

    public init?(configValue: String) {
        self.init(rawValue: configValue.lowercased())
    }
}

/// How a host list in a `[databases]` entry is used (`load_balance_hosts`).
public enum LoadBalanceHosts: String, CaseIterable, Sendable {
    case disable
    case roundRobin = "round-robin"

    public init?(configValue: String) {
        self.init(rawValue: configValue.lowercased())
    }
}
