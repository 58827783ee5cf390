/// Version strings. `SHOW VERSION` and the first line of `--version` are the same text;
/// it starts with "PgBouncer 1.25.2" because monitoring tools parse that prefix.
public enum PoolerVersion {
    public static let number = "0.1.0"
    public static let compatible = "1.25.2"
    public static let full = "PgBouncer \(compatible) (pooler \(number))"
}
