/// Version strings: `SHOW VERSION`, `--version` and the admin console's server_version.
public enum PoolerVersion {
    public static let number = "0.1.0"
    public static let full = "pooler \(number) (PgBouncer 1.25 compatible)"
    public static let serverVersion = "1.25.0/pooler"
}
