import PoolerConfig

/// Keys the config parser knows and stores but the runtime does not act on yet.
/// Setting one to anything but its default earns a start-up warning, so nobody
/// believes a limit or a feature is in force when it is not.
enum PendingKeys {
    static let names: Set<String> = [
        "query_timeout", "client_idle_timeout", "idle_transaction_timeout", "server_check_delay",
        "server_check_query", "server_round_robin", "track_extra_parameters", "disable_pqexec",
        "application_name_add_host", "auth_user", "auth_query", "auth_dbname", "unix_socket_group",
    ]

    static func warnings(for settings: Settings) -> [String] {
        var result: [String] = []
        for key in ConfigKeys.all where names.contains(key.name) {
            if let value = settings.value(of: key.name), value != key.defaultValue {
                result.append("parameter \(key.name) is not supported by this pooler yet, ignored")
            }
        }
        if settings.maxPreparedStatements > 0 && settings.poolMode != .session {
            result.append("max_prepared_statements: protocol-level named prepared statements are not tracked yet; "
                          + "in transaction mode use unnamed statements or session mode")
        }
        return result
    }
}
