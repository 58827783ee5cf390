import Glibc
import PoolerConfig

/// At start-up: raise the soft RLIMIT_NOFILE to the hard limit and warn, as PgBouncer
/// does, when it cannot hold max_client_conn plus every pool's server connections.
enum FileDescriptorLimit {
    static func check(settings: Settings, config: Config, log: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let databases = max(config.databases.count, 1)
        let users = max(config.users.count, 1)
        let maxPool = config.databases.values.map { $0.poolSize ?? settings.defaultPoolSize }.max() ?? settings.defaultPoolSize
        let needed = UInt64(settings.maxClientConn) + UInt64(maxPool + settings.reservePoolSize) * UInt64(databases * users) + 32
        if UInt64(limit.rlim_cur) < needed {
            log.warning("file descriptor limit: \(limit.rlim_cur) (H:\(limit.rlim_max)), max_client_conn: \(settings.maxClientConn), "
                        + "max fds possible: \(needed); raise it (ulimit -n) or lower max_client_conn")
        } else {
            log.info("file descriptor limit: \(limit.rlim_cur) (H:\(limit.rlim_max)), max_client_conn: \(settings.maxClientConn), "
                     + "max fds possible: \(needed)")
        }
    }
}
