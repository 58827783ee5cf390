import PoolerAdmin
import PoolerConfig
import PoolerWire

/// Pause state of the whole pooler (PAUSE / SUSPEND), as PgBouncer's cf_pause_mode.
enum PauseMode { case none, pause, suspend }

/// An admin command whose reply waits for the pooler to reach a state.
struct PendingAdminReply {
    enum Condition {
        /// PAUSE: no server of the database (nil: any) is active.
        case paused(String?)
        /// WAIT_CLOSE: no server of the database (nil: any) still has to close.
        case closed(String?)
        /// SUSPEND: every client's output is flushed.
        case suspended
    }

    weak var client: ClientConnection?
    let condition: Condition
    let tag: String
    /// Loop time the command was issued (suspend_timeout).
    var since: UInt64 = 0
}

/// The admin commands that change state: PAUSE, RESUME, SUSPEND, KILL, KILL_CLIENT,
/// DISABLE, ENABLE, RECONNECT, WAIT_CLOSE, RELOAD, SET and SHUTDOWN, with PgBouncer's
/// semantics and error texts.
extension AdminService {
    /// Performs `command`; writes its reply, or nothing when the reply is deferred.
    func perform(_ command: AdminCommand, client: ClientConnection, into writer: inout MessageWriter) {
        let tag = command.completionTag
        func fail(_ error: AdminError) {
            writer.errorResponse(severity: error.severity, code: error.code, message: error.message)
        }
        switch command {
        case .show:
            fail(.invalidCommand("\(command)"))
        case .reload:
            pooler.log.info("RELOAD command issued")
            if pooler.reload() { writer.commandComplete(tag) } else { fail(.reloadFailed) }
        case .shutdown(let mode):
            switch mode {
            case .immediate:
                pooler.log.info("SHUTDOWN command issued")
                pooler.beginShutdown(.immediate)
            case .waitForServers:
                pooler.log.info("SHUTDOWN WAIT_FOR_SERVERS command issued")
                pooler.beginShutdown(.waitForServers)
            case .waitForClients:
                pooler.log.info("SHUTDOWN WAIT_FOR_CLIENTS command issued")
                pooler.beginShutdown(.waitForClients)
            }
            writer.commandComplete(tag)
        case .pause(let database):
            guard pooler.pauseMode == .none else { return fail(.alreadySuspendedOrPaused) }
            if let database {
                pooler.log.info("PAUSE '\(database)' command issued")
                guard database != "pgbouncer" else { return fail(.cannotPauseAdminDatabase(database)) }
                guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            } else {
                pooler.log.info("PAUSE command issued")
            }
            pooler.everyLoop { pooler in
                if let database { pooler.pausedDatabases.insert(database) } else { pooler.pauseMode = .pause }
                pooler.applyPause()
            }
            replyWhen(client, .paused(database), tag, into: &writer)
        case .resume(let database):
            if let database {
                pooler.log.info("RESUME '\(database)' command issued")
                guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
                guard pooler.pausedDatabases.contains(database) else { return fail(.databaseNotPaused(database)) }
            } else {
                pooler.log.info("RESUME command issued")
                guard pooler.acceptingClients else { return fail(.poolerIsShuttingDown) }
                guard pooler.pauseMode != .none else { return fail(.poolerNotPaused) }
            }
            pooler.everyLoop { pooler in
                if let database {
                    pooler.pausedDatabases.remove(database)
                    for pool in pooler.orderedPools where !pool.isPaused { pool.resumed() }
                } else {
                    pooler.resume(clearingPausedDatabases: false)
                }
            }
            writer.commandComplete(tag)
        case .suspend:
            guard pooler.pauseMode == .none else { return fail(.alreadySuspendedOrPaused) }
            guard pooler.pausedDatabases.isEmpty else { return fail(.cannotSuspendWithPausedDatabases) }
            pooler.log.info("SUSPEND command issued")
            pooler.everyLoop { pooler in
                pooler.pauseMode = .suspend
                pooler.suspendReading(except: client)
                pooler.stopAccepting()
            }
            replyWhen(client, .suspended, tag, into: &writer)
        case .kill(let database):
            guard pooler.pauseMode == .none else { return fail(.alreadySuspendedOrPaused) }
            if let database {
                pooler.log.info("KILL '\(database)' command issued")
                guard database != "pgbouncer" else { return fail(.cannotKillAdminDatabase(database)) }
                guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            } else {
                pooler.log.info("KILL command issued")
            }
            pooler.everyLoop { pooler in
                if let database { pooler.pausedDatabases.insert(database) }
                for pool in pooler.orderedPools where database == nil || pool.key.database == database {
                    pooler.pausedDatabases.insert(pool.key.database)
                    pool.kill()
                }
            }
            writer.commandComplete(tag)
        case .killClient:
            guard let id = command.clientID else { return fail(.invalidClientID) }
            var found = false
            pooler.everyLoop { pooler in
                guard let target = pooler.clients[Int(truncatingIfNeeded: id)] else { return }
                target.fail(message: "admin forced disconnect", code: SQLState.adminShutdown)
                found = true
            }
            guard found else { return fail(.clientNotFound) }
            writer.commandComplete(tag)
        case .disable(let database):
            guard database != "pgbouncer" else { return fail(.cannotDisableAdminDatabase(database)) }
            guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            pooler.log.info("DISABLE '\(database)' command issued")
            pooler.everyLoop { $0.disabledDatabases.insert(database) }
            writer.commandComplete(tag)
        case .enable(let database):
            guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            pooler.log.info("ENABLE '\(database)' command issued")
            pooler.everyLoop { $0.disabledDatabases.remove(database) }
            writer.commandComplete(tag)
        case .reconnect(let database):
            if let database {
                pooler.log.info("RECONNECT '\(database)' command issued")
                guard database != "pgbouncer" else { return fail(.cannotReconnectAdminDatabase(database)) }
                guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            } else {
                pooler.log.info("RECONNECT command issued")
            }
            pooler.everyLoop { pooler in
                for pool in pooler.orderedPools where database == nil || pool.key.database == database { pool.reconnect() }
            }
            writer.commandComplete(tag)
        case .waitClose(let database):
            if let database {
                pooler.log.info("WAIT_CLOSE '\(database)' command issued")
                guard database != "pgbouncer" else { return fail(.cannotWaitInAdminDatabase(database)) }
                guard pooler.config.database(named: database) != nil else { return fail(.noSuchDatabase(database)) }
            } else {
                pooler.log.info("WAIT_CLOSE command issued")
            }
            replyWhen(client, .closed(database), tag, into: &writer)
        case .set(let key, let value):
            switch pooler.set(key: key, value: value) {
            case .none:
                writer.commandComplete(tag)
            case .some(let message):
                writer.errorResponse(code: SQLState.protocolViolation, message: message)
            }
        }
    }

    /// Replies now if the condition already holds, else when it does.
    private func replyWhen(_ client: ClientConnection, _ condition: PendingAdminReply.Condition, _ tag: String,
                       into writer: inout MessageWriter) {
        if pooler.holdsEverywhere(condition) {
            writer.commandComplete(tag)
        } else {
            pooler.workers.setAdminRepliesWaiting(loop: pooler.workerIndex, true)
            pooler.pendingAdminReplies.append(PendingAdminReply(client: client, condition: condition, tag: tag,
                                                                since: pooler.loop.now))
            client.awaitingAdminReply = true
        }
    }
}

extension Pooler {
    func isPaused(database: String) -> Bool {
        pauseMode != .none || pausedDatabases.contains(database)
    }

    func closesServersWhilePaused(database: String) -> Bool {
        pauseMode == .pause || pausedDatabases.contains(database)
    }

    /// Idle servers of paused pools close now; active ones when released.
    func applyPause() {
        for pool in orderedPools where pool.isPaused { pool.maintain(now: loop.now) }
    }

    /// `condition` holds on every loop (looked at while the others wait).
    func holdsEverywhere(_ condition: PendingAdminReply.Condition) -> Bool {
        var result = true
        everyLoop { pooler in result = result && pooler.holds(condition) }
        return result
    }

    func holds(_ condition: PendingAdminReply.Condition) -> Bool {
        switch condition {
        case .paused(let database):
            return pools.values.allSatisfy { pool in
                (database != nil && pool.key.database != database) || pool.state.activeCount == 0
            }
        case .closed(let database):
            // A server between two loops is in no list: wait until it has arrived.
            return workers.serversInTransit == 0 && pools.values.allSatisfy { pool in
                (database != nil && pool.key.database != database) || !pool.servers.values.contains { $0.closeWhenReleased }
            }
        case .suspended:
            return clients.values.allSatisfy { $0.output.isEmpty } && pools.values.allSatisfy { pool in
                pool.servers.values.allSatisfy { $0.output.isEmpty }
            }
        }
    }

    /// suspend_timeout: connections that have not flushed their buffers that long after
    /// SUSPEND are dropped, as PgBouncer does, so the SUSPEND can complete.
    private func dropUnflushedAfterSuspendTimeout() {
        let timeout = UInt64(settings.suspendTimeout * 1_000_000)
        guard timeout > 0, pendingAdminReplies.contains(where: { pending in
            if case .suspended = pending.condition { return loop.now &- pending.since >= timeout }
            return false
        }) else { return }
        everyLoop { pooler in
            for client in Array(pooler.clients.values) where !client.output.isEmpty && !client.awaitingAdminReply {
                client.close(reason: "suspend_timeout")
            }
            for pool in pooler.orderedPools {
                for server in Array(pool.servers.values) where !server.output.isEmpty {
                    if let client = server.client, !client.closed { client.serverFailed(message: "suspend_timeout") }
                    server.close(reason: "suspend_timeout")
                }
            }
        }
    }

    /// Sends the deferred admin replies whose condition now holds.
    func completePendingAdminReplies() {
        guard !pendingAdminReplies.isEmpty else { return }
        dropUnflushedAfterSuspendTimeout()
        var still: [PendingAdminReply] = []
        for pending in pendingAdminReplies {
            guard let client = pending.client, !client.closed else { continue }
            if holdsEverywhere(pending.condition) {
                var writer = MessageWriter()
                writer.commandComplete(pending.tag)
                writer.readyForQuery(.idle)
                client.output.append(writer.bytes)
                client.awaitingAdminReply = false
                client.flush()
                if !client.input.isEmpty { client.processInput() }
            } else {
                still.append(pending)
            }
        }
        pendingAdminReplies = still
        if still.isEmpty { workers.setAdminRepliesWaiting(loop: workerIndex, false) }
    }

    /// SUSPEND: stop reading every client but the admin that asked.
    func suspendReading(except admin: ClientConnection) {
        for client in clients.values where client !== admin && !client.isAdmin {
            client.suspended = true
            client.updateInterest()
        }
    }

    /// RESUME (SIGUSR2 also forgets paused databases): this loop serves again, and after
    /// SUSPEND reads its clients and accepts again.
    func resume(clearingPausedDatabases: Bool) {
        let wasSuspended = pauseMode == .suspend
        pauseMode = .none
        if clearingPausedDatabases { pausedDatabases.removeAll() }
        if wasSuspended {
            resumeReading()
            resumeAccepting()
        }
        for pool in orderedPools where !pool.isPaused { pool.resumed() }
    }

    /// As PgBouncer's admin_pause_done: once a SUSPEND has flushed everything and no
    /// admin console connection is left (nobody can connect to say RESUME while the
    /// listeners are off), the pooler resumes by itself. Loop 0's janitor, while suspended.
    func resumeIfSuspendedWithoutAdmin() {
        var adminLeft = false
        var flushed = true
        everyLoop { pooler in
            adminLeft = adminLeft || pooler.clients.values.contains { $0.isAdmin }
            flushed = flushed && pooler.holds(.suspended)
        }
        guard !adminLeft && flushed else { return }
        log.info("admin disappeared when suspended, doing RESUME")
        everyLoop { $0.resume(clearingPausedDatabases: false) }
    }

    func resumeReading() {
        for client in clients.values where client.suspended {
            client.suspended = false
            client.updateInterest()
            if !client.input.isEmpty { client.processInput() }
        }
    }

    /// SET key = value from the admin console; nil on success, else the error text.
    /// PgBouncer silently ignores keys it cannot change at run time; we say so.
    func set(key: String, value: String) -> String? {
        guard let definition = ConfigKeys.named(key.lowercased()) else { return "unknown parameter: \(key)" }
        guard definition.reloadable else { return "parameter \(definition.name) cannot be changed at run time (needs a restart)" }
        var candidate = config
        do {
            try candidate.settings.set(definition.name, to: value)
        } catch {
            return "\(error)"
        }
        if definition.name.hasPrefix("client_tls") || definition.name.hasPrefix("server_tls") {
            do {
                tlsSetup = try TLSSetup.make(candidate.settings)
            } catch {
                return "SET \(definition.name) failed: \(error)"
            }
        }
        log.info("SET \(definition.name) = \(value)")
        let tls = tlsSetup
        everyLoop { pooler in
            pooler.tlsSetup = tls
            pooler.apply(candidate)
        }
        return nil
    }
}
