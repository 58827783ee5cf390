import PoolerIO

/// Work that needs a host's address (auth_query's database, a peer for a cancel) without
/// a blocking getaddrinfo on the event loop: names resolve on the loop's HostResolver
/// (cached for dns_max_ttl, as for server connections) and the work runs once they have.
struct HostWaiter {
    let host: String
    let port: Int
    /// Loop time it began waiting (server_connect_timeout counts from here).
    let since: UInt64
    let run: (SocketAddress?) -> Void
}

extension Pooler {
    /// Runs `body` with the address of `host`: at once for a unix socket directory, a
    /// numeric address or a cached name, else when the name has resolved. nil when it
    /// does not resolve, or has not within server_connect_timeout.
    func withAddress(host: String, port: Int, _ body: @escaping (SocketAddress?) -> Void) {
        if let local = SocketAddress.postgresSocket(host: host, port: port) { return body(local) }
        switch resolver.lookup(host: host, port: port, now: loop.now) {
        case .addresses(let addresses):
            body(addresses.first)
        case .unknown:
            log.warning("could not resolve host \"\(host)\"")
            body(nil)
        case .pending:
            hostWaiters.append(HostWaiter(host: host, port: port, since: loop.now, run: body))
        }
    }

    /// Names arrived (resolvedHostsArrived): the work waiting for them runs.
    func hostsResolved(_ hosts: [String]) {
        let ready = hostWaiters.filter { hosts.contains($0.host) }
        guard !ready.isEmpty else { return }
        hostWaiters.removeAll { hosts.contains($0.host) }
        for waiter in ready { withAddress(host: waiter.host, port: waiter.port, waiter.run) }
    }

    /// Janitor: work waiting longer than server_connect_timeout for a name gives up.
    func expireHostWaiters(now: UInt64) {
        let timeout = UInt64(max(settings.serverConnectTimeout, 1) * 1_000_000)
        let expired = hostWaiters.filter { now &- $0.since > timeout }
        guard !expired.isEmpty else { return }
        hostWaiters.removeAll { now &- $0.since > timeout }
        for waiter in expired {
            log.warning("timed out resolving host \"\(waiter.host)\"")
            waiter.run(nil)
        }
    }
}
