import CLinuxShims
import Glibc

/// Resolves host names off the event loop: getaddrinfo runs on a short-lived thread per
/// name, the answer is cached for a TTL, and the loop is woken through its eventfd to
/// pick it up. Numeric addresses are answered at once. Only the loop thread calls
/// `lookup` and `takeFinished`; the worker threads touch only the locked inbox.
public final class HostResolver: @unchecked Sendable {
    private struct Entry {
        var addresses: [SocketAddress]
        var expires: UInt64
    }

    private var cache: [String: Entry] = [:]
    private var inFlight: Set<String> = []
    private var inbox: [(host: String, addresses: [SocketAddress])] = []
    private var mutex = pthread_mutex_t()
    private let wakeFD: Int32
    public var ttl: UInt64
    public var negativeTTL: UInt64

    /// `wakeFD`: the event loop's eventfd; TTLs in microseconds.
    public init(wakeFD: Int32, ttl: UInt64, negativeTTL: UInt64) {
        self.wakeFD = wakeFD
        self.ttl = ttl
        self.negativeTTL = negativeTTL
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    public enum Answer {
        case addresses([SocketAddress])
        /// Being resolved: call again after `takeFinished` reports the host.
        case pending
        /// The name does not resolve (cached for `negativeTTL`).
        case unknown
    }

    /// Addresses of `host` (port applied), from the cache or numerically; otherwise
    /// starts a background lookup and answers `.pending`.
    public func lookup(host: String, port: Int, now: UInt64) -> Answer {
        let numeric = SocketAddress.resolve(host: host, port: port, numericOnly: true)
        if !numeric.isEmpty { return .addresses(numeric) }
        // `<=`: with a TTL of 0 (no caching) an answer still serves the pass it arrived
        // in (takeFinished and the launches it triggers share `now`); with `<` it expired
        // on arrival and the next lookup started at once, forever.
        if let entry = cache[host], now <= entry.expires {
            return entry.addresses.isEmpty ? .unknown : .addresses(entry.addresses.map { $0.withPort(port) })
        }
        if !inFlight.contains(host) {
            inFlight.insert(host)
            start(host)
        }
        return .pending
    }

    /// Hosts whose lookups finished since the last call (now in the cache).
    public func takeFinished(now: UInt64) -> [String] {
        pthread_mutex_lock(&mutex)
        let finished = inbox
        inbox.removeAll()
        pthread_mutex_unlock(&mutex)
        for (host, addresses) in finished {
            inFlight.remove(host)
            cache[host] = Entry(addresses: addresses, expires: now + (addresses.isEmpty ? negativeTTL : ttl))
        }
        return finished.map(\.host)
    }

    /// Names cached, for SHOW DNS_HOSTS.
    public var cachedHosts: [(host: String, addresses: [SocketAddress], expires: UInt64)] {
        cache.map { ($0.key, $0.value.addresses, $0.value.expires) }
    }

    private final class Job {
        let host: String
        unowned(unsafe) let resolver: HostResolver
        init(host: String, resolver: HostResolver) {
            self.host = host
            self.resolver = resolver
        }
    }

    private func start(_ host: String) {
        let job = Unmanaged.passRetained(Job(host: host, resolver: self)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
            let addresses = SocketAddress.resolve(host: job.host, port: 0)
            job.resolver.finish(job.host, addresses)
            return nil
        }, job)
        if started == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Job>.fromOpaque(job).release()
            finish(host, SocketAddress.resolve(host: host, port: 0)) // no thread: resolve inline
        }
    }

    private func finish(_ host: String, _ addresses: [SocketAddress]) {
        pthread_mutex_lock(&mutex)
        inbox.append((host, addresses))
        pthread_mutex_unlock(&mutex)
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }
}
