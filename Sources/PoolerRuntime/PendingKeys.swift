import PoolerConfig

/// Keys the config parser knows and stores but the runtime does not act on yet.
/// Setting one to anything but its default earns a start-up warning, so nobody
/// believes a limit or a feature is in force when it is not.
enum PendingKeys {
    static let names: Set<String> = [
        "disable_pqexec",
        "auth_user", "auth_query", "auth_dbname", "unix_socket_group",
    ]

    static func warnings(for settings: Settings) -> [String] {
        var result: [String] = []
        for key in ConfigKeys.all where names.contains(key.name) {
            if let value = settings.value(of: key.name), value != key.defaultValue {
                result.append("parameter \(key.name) is not supported by this pooler yet, ignored")
            }
        }
        return result
    }
}
