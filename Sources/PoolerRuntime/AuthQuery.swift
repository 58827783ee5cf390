import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// auth_user / auth_query / auth_dbname: secrets of users missing from auth_file are
/// looked up in PostgreSQL, cached for `cacheTTL`, and used exactly like auth_file
/// secrets (a SCRAM verifier lets the pooler log in with the client's keys, so no
/// password is stored anywhere). Concurrent logins of one user share a lookup.
extension Pooler {
    static let authCacheTTL: UInt64 = 60_000_000

    /// The auth_user for logins to `database`, when auth_query applies there.
    func authUser(for database: String) -> String? {
        let entry = config.database(named: database)
        let user = entry?.authUser ?? (settings.authUser.isEmpty ? nil : settings.authUser)
        return user
    }

    /// A cached auth_query secret, if fresh (shared by all loops, see Workers).
    func cachedAuthSecret(user: String, database: String) -> String?? {
        workers.cachedAuthSecret(key: authCacheKey(user: user, database: database), now: loop.now)
    }

    private func authCacheKey(user: String, database: String) -> String { "\(database)\u{0}\(user)" }

    /// Starts (or joins) a lookup of `user`'s secret for a login to `database`.
    func lookUpSecret(user: String, database: String, for client: ClientConnection) {
        let key = authCacheKey(user: user, database: database)
        let running = authLookups[key] != nil || authLookupsAwaitingHost.contains(key)
        authLookupWaiters[key, default: []].append(client)
        if !running { startAuthLookup(key: key, user: user, database: database) }
    }

    /// Opens the lookup's connection once the auth database's address is known (a host
    /// name resolves off the loop, see withAddress: a blocking getaddrinfo here would stall
    /// every client of the loop); the waiters hear nil when it cannot start.
    private func startAuthLookup(key: String, user: String, database: String) {
        guard let authUser = authUser(for: database) else { return tellAuthWaiters(key, nil) }
        let entry = config.database(named: database)
        let authDatabaseName = entry?.authDbname ?? (settings.authDbname.isEmpty ? database : settings.authDbname)
        guard let authDatabase = config.database(named: authDatabaseName) else {
            log.warning("auth_dbname \(authDatabaseName) is not a configured database")
            return tellAuthWaiters(key, nil)
        }
        authLookupsAwaitingHost.insert(key)
        withAddress(host: authDatabase.host ?? "", port: authDatabase.port) { [unowned self] address in
            authLookupsAwaitingHost.remove(key)
            guard let address else { return tellAuthWaiters(key, nil) }
            connectAuthLookup(key: key, user: user, address: address, authUser: authUser, authDatabase: authDatabase,
                              authDatabaseName: authDatabaseName, query: entry?.authQuery ?? settings.authQuery)
        }
    }

    private func connectAuthLookup(key: String, user: String, address: SocketAddress, authUser: String,
                                   authDatabase: DatabaseEntry, authDatabaseName: String, query: String) {
        let credential: ServerCredential
        if let password = authDatabase.password {
            credential = .plaintext(password)
        } else if let secret = authSecrets[authUser], SCRAMSecret.parse(secret) == nil {
            credential = MD5Password.isMD5Hash(secret) ? .md5Hash(secret) : .plaintext(secret)
        } else {
            credential = .none
        }
        guard let connection = AuthQueryConnection(pooler: self, lookupKey: key, user: user, address: address,
                                                   database: authDatabase, databaseName: authDatabaseName,
                                                   authUser: authUser, credential: credential, query: query) else {
            return tellAuthWaiters(key, nil)
        }
        authLookups[key] = connection
    }

    /// The clients waiting for `key` hear the answer (nil: log in as an unknown user).
    private func tellAuthWaiters(_ key: String, _ secret: String?) {
        let waiters = authLookupWaiters.removeValue(forKey: key) ?? []
        for client in waiters where !client.closed { client.secretLookedUp(secret) }
    }

    func authLookupFinished(_ connection: AuthQueryConnection, secret: String?, failed: Bool) {
        let key = connection.lookupKey
        authLookups[key] = nil
        // Failures are not cached: the next login tries again.
        if !failed { workers.cacheAuthSecret(key: key, secret: secret, expires: loop.now + Self.authCacheTTL) }
        tellAuthWaiters(key, secret)
    }

    /// Lookups that take longer than server_connect_timeout fail.
    func maintainAuthLookups(now: UInt64) {
        let timeout = UInt64(max(settings.serverConnectTimeout, 1) * 1_000_000)
        for connection in authLookups.values { connection.expireIfOlder(than: timeout, now: now) }
    }
}
