import PoolerCore
import PoolerWire

/// Protocol-level prepared statements in transaction and statement mode: a client's
/// named statements map to pooler-wide server names; a server that lacks one gets the
/// Parse injected before the client's Bind/Describe, with its ParseComplete hidden; Parse
/// of a statement the server has, and Close, are answered by the pooler in order.
extension ClientConnection {
    static let parseComplete: [UInt8] = [BackendMessageID.parseComplete, 0, 0, 0, 4]
    static let closeComplete: [UInt8] = [BackendMessageID.closeComplete, 0, 0, 0, 4]

    var tracksPreparedStatements: Bool {
        guard let poolLink, replication == .none else { return false }
        return poolLink._withUnsafeGuaranteedRef { $0.mode } != .session && pooler.settings.maxPreparedStatements > 0
    }

    /// Records the response a forwarded message of `type` will get.
    @inline(__always)
    func expectResponse(to type: UInt8, on server: ServerConnection) {
        // A Sync during an extended-protocol COPY FROM STDIN is ignored by the server.
        if type == FrontendMessageID.sync && server.tracker.inCopyIn { return }
        if type == FrontendMessageID.copyDone || type == FrontendMessageID.copyFail {
            // Ahead of the CopyInResponse: copyInStarted needs to know where.
            if server.tracker.copyEndedEarly { server.responses.clientEndedCopy() }
            return
        }
        server.responses.expectResponse(toClientMessage: type)
    }

    /// SET/RESET/DISCARD in the client's query text take effect at its ReadyForQuery.
    func noteSessionCommands(in queryPayload: UnsafeRawBufferPointer, on server: ServerConnection) {
        guard SessionCommandScanner.mightContainSessionCommand(queryPayload) else { return }
        var reader = MessageReader(queryPayload)
        guard let text = reader.cString() else { return }
        server.pendingCommands.append(contentsOf: SessionCommandScanner.scan(text))
    }

    /// Handles Parse/Bind/Describe/Close that name statements; false means "forward as is".
    /// What it sends the server itself goes after `run` (flushed first); unnamed
    /// statements and portals are recognized without building a String.
    func forwardExtended(_ type: UInt8, frame: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                         to server: ServerConnection, run: inout BorrowedRun) -> Bool {
        switch type {
        case FrontendMessageID.parse:
            var reader = MessageReader(payload)
            if reader.nextCStringIsEmpty {
                noteSessionCommands(in: UnsafeRawBufferPointer(rebasing: payload[1...]), on: server)
                server.pool.stats.serverParseCount += 1
                return false
            }
            let name = reader.cString() ?? ""
            noteSessionCommands(in: UnsafeRawBufferPointer(rebasing: payload[reader.offset...]), on: server)
            server.pool.stats.serverParseCount += name.isEmpty || !tracksPreparedStatements ? 1 : 0
            guard tracksPreparedStatements, !name.isEmpty else { return false }
            run.flush(to: server)
            server.pool.stats.clientParseCount += 1
            let body = reader.rest()
            if let existing = statements[name] {
                // PostgreSQL refuses a name in use (42P05) and keeps the old statement. The
                // server is made to fail the same way, so the rest of the batch and the
                // transaction state follow; the client sees its own statement's name.
                prepare(existing, on: server)
                var error = MessageWriter()
                error.errorResponse(code: "42P05", message: "prepared statement \"\(name)\" already exists")
                sendParse(id: existing, body: body, to: server)
                server.responses.append(.failingParse(error.bytes))
                return true
            }
            let id = pooler.statementRegistry.retain(body: body)
            _ = statements.set(name, to: id)
            if server.statementCache.contains(id) {
                server.statementCache.touch(id)
                emitOwnResponse(Self.parseComplete, server: server)
            } else {
                evictIfNeeded(adding: id, on: server)
                sendParse(id: id, body: body, to: server)
                server.responses.append(.parse(statement: id))
            }
            return true
        case FrontendMessageID.bind:
            server.pool.stats.bindCount += 1
            guard tracksPreparedStatements else { return false }
            var reader = MessageReader(payload)
            guard reader.skipCString(), !reader.nextCStringIsEmpty else { return false }
            let portalEnd = reader.offset
            guard reader.skipCString(),
                  let id = statements.id(named: UnsafeRawBufferPointer(rebasing: payload[portalEnd..<reader.offset - 1]))
            else { return false }
            run.flush(to: server)
            prepare(id, on: server)
            sendRenamed(FrontendMessageID.bind, prefix: UnsafeRawBufferPointer(rebasing: payload[..<portalEnd]), id: id,
                        rest: UnsafeRawBufferPointer(rebasing: payload[reader.offset...]), to: server)
            server.responses.append(.bind)
            return true
        case FrontendMessageID.describe:
            guard tracksPreparedStatements else { return false }
            var reader = MessageReader(payload)
            guard reader.uint8() == UInt8(ascii: "S"), !reader.nextCStringIsEmpty, reader.skipCString(),
                  let id = statements.id(named: UnsafeRawBufferPointer(rebasing: payload[1..<reader.offset - 1]))
            else { return false }
            run.flush(to: server)
            prepare(id, on: server)
            sendRenamed(FrontendMessageID.describe, prefix: UnsafeRawBufferPointer(rebasing: payload[..<1]), id: id,
                        rest: UnsafeRawBufferPointer(start: nil, count: 0), to: server)
            server.responses.append(.describe)
            return true
        case FrontendMessageID.close:
            guard tracksPreparedStatements else { return false }
            var reader = MessageReader(payload)
            guard reader.uint8() == UInt8(ascii: "S"), !reader.nextCStringIsEmpty, let name = reader.cString() else { return false }
            run.flush(to: server)
            // Servers keep the statement for other clients; only this client's name goes.
            if let id = statements.remove(name) { pooler.statementRegistry.release(id) }
            emitOwnResponse(Self.closeComplete, server: server)
            return true
        default:
            return false
        }
    }

    /// A client outside any transaction that only prepares (Parse of a named statement,
    /// then Sync: libpq's PQprepare) is answered without a server. A client blocked
    /// in a synchronous prepare cannot then hold up others that wait for its
    /// server (pgbench -M prepared would deadlock a small pool otherwise). The
    /// statement is parsed on a server at its first use, so a syntax error surfaces
    /// there. Returns true when both frames were consumed.
    func answerPrepareLocally(_ parse: Frame, in bytes: UnsafeRawBufferPointer) -> Bool {
        guard tracksPreparedStatements,
              case .frame(let sync) = FrameScanner.scan(bytes, from: parse.end, maxPacketSize: pooler.settings.maxPacketSize),
              sync.type == FrontendMessageID.sync else { return false }
        var reader = MessageReader(UnsafeRawBufferPointer(rebasing: bytes[parse.payloadStart..<parse.end]))
        guard let name = reader.cString(), !name.isEmpty else { return false }
        var writer = MessageWriter()
        if statements[name] != nil {
            writer.errorResponse(code: "42P05", message: "prepared statement \"\(name)\" already exists")
        } else {
            pool?.stats.clientParseCount += 1
            let id = pooler.statementRegistry.retain(body: reader.rest())
            _ = statements.set(name, to: id)
            writer.raw(Self.parseComplete)
        }
        writer.readyForQuery(.idle)
        output.append(writer.bytes)
        input.consume(sync.end)
        return true
    }

    /// Makes sure `server` has statement `id`, injecting a hidden Parse if not.
    private func prepare(_ id: Int, on server: ServerConnection) {
        if server.statementCache.touchIfPresent(id) { return }
        guard let statement = pooler.statementRegistry.statement(id) else { return }
        evictIfNeeded(adding: id, on: server)
        sendParse(id: id, body: statement.body, to: server)
        server.responses.append(.hiddenParse(statement: id))
    }

    private func sendParse(id: Int, body: [UInt8], to server: ServerConnection) {
        body.withUnsafeBytes { body in
            sendRenamed(FrontendMessageID.parse, prefix: UnsafeRawBufferPointer(start: nil, count: 0), id: id,
                        rest: body, to: server)
        }
        server.pool.stats.serverParseCount += 1
    }

    /// Appends a message of `type` to the server's output: `prefix`, the server name of
    /// statement `id` (NUL-terminated), `rest`. Written in place (no message built on the
    /// heap): a Bind of a named statement is rewritten at every execution.
    private func sendRenamed(_ type: UInt8, prefix: UnsafeRawBufferPointer, id: Int, rest: UnsafeRawBufferPointer,
                             to server: ServerConnection) {
        withUnsafeTemporaryAllocation(byteCount: PreparedStatement.serverNameCapacity + 5, alignment: 1) { scratch in
            let name = UnsafeMutableRawBufferPointer(rebasing: scratch[5...])
            let nameCount = PreparedStatement.writeServerName(id, into: name)
            let length = 4 + prefix.count + nameCount + rest.count
            scratch[0] = type
            scratch.storeBytes(of: UInt32(length).bigEndian, toByteOffset: 1, as: UInt32.self)
            server.forwardFromClient(UnsafeRawBufferPointer(rebasing: scratch[..<5]))
            if !prefix.isEmpty { server.forwardFromClient(prefix) }
            server.forwardFromClient(UnsafeRawBufferPointer(rebasing: name[..<nameCount]))
            if !rest.isEmpty { server.forwardFromClient(rest) }
        }
    }

    /// Adds `id` to the server's cache, closing the least recently used statement when full.
    private func evictIfNeeded(adding id: Int, on server: ServerConnection) {
        guard let evicted = server.statementCache.insert(id) else { return }
        withUnsafeBytes(of: UInt8(ascii: "S")) { statement in
            sendRenamed(FrontendMessageID.close, prefix: statement, id: evicted,
                        rest: UnsafeRawBufferPointer(start: nil, count: 0), to: server)
        }
        server.responses.append(.hiddenClose)
    }

    /// A response the pooler gives itself, after everything the server still owes.
    private func emitOwnResponse(_ bytes: [UInt8], server: ServerConnection) {
        if server.responses.isEmpty {
            output.append(bytes)
        } else {
            server.responses.append(.synthetic(bytes))
        }
    }

    /// The client's Parse of statement `id` failed (or was skipped): the name is gone.
    func statementFailed(_ id: Int) {
        for (name, mapped) in statements.byName where mapped == id {
            _ = statements.remove(name)
            pooler.statementRegistry.release(id)
        }
    }

    func forgetAllStatements() {
        for id in statements.removeAll() { pooler.statementRegistry.release(id) }
    }
}
