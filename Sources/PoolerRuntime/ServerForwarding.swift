import Glibc
import PoolerCore
import PoolerIO
import PoolerWire

/// What a linked server sends, forwarded to its client: responses hidden or added
/// (ResponseQueue), ReadyForQuery and the release it allows, backpressure.
extension ServerConnection {
    /// Forwards what the server sent to the linked client, watching ReadyForQuery and
    /// the responses the pooler must hide or add.
    func forwardToClient() {
        guard let link = clientLink else {
            close(reason: "client gone")
            return
        }
        // The client is lent, not retained: the event loop keeps every connection alive
        // until no handler runs (unregistered ones are released before the next wait).
        link._withUnsafeGuaranteedRef { forwardToClient($0) }
    }

    private func forwardToClient(_ client: ClientConnection) {
        guard !client.closed else {
            close(reason: "client gone")
            return
        }
        let limit = pooler.settings.maxPacketSize
        var released = false
        // Frames forwarded unchanged are not copied one by one: they lie consecutively in
        // `input` (consumed, but in memory until the next read), so they go out as one
        // run, straight from there when the client has nothing queued. Anything else
        // for the client (a synthetic or replaced response, an error) flushes the run first.
        var run = BorrowedRun()
        defer { if !closed { run.flush(to: client) } } // early exits; the normal end sent it
        loop: while !input.isEmpty {
            let bytes = input.readable
            if passthroughRemaining > 0 {
                let take = min(passthroughRemaining, bytes.count)
                if !passthroughDrop { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), peer: client) }
                input.consume(take)
                passthroughRemaining -= take
                continue
            }
            switch FrameScanner.scan(bytes, from: 0, maxPacketSize: limit) {
            case .frame(let frame):
                let type = frame.type
                let hidden = responses.inHiddenQuery
                if !hidden, case let simple = responses.inSimpleQuery,
                   Self.skipsResponseQueue(type, simpleQuery: simple) || (!simple && responses.passesPlain(type)) {
                    // The bulk of a result set changes no expectation, nor does a simple
                    // query's RowDescription or CommandComplete: they skip the response
                    // queue (serverSent would answer .forward and change nothing); in the
                    // extended protocol, ParseComplete, BindComplete and the like just
                    // answer the oldest expectation. The complete frames of those kinds
                    // right behind go in the same pass (no per-frame bookkeeping), until
                    // one of them makes a response of the pooler's own due (or a hidden
                    // query's turn come).
                    var end = frame.end
                    if simple {
                        while let next = Self.plainFrameEnd(bytes, at: end, simpleQuery: true, maxPacketSize: limit) {
                            end = next
                        }
                    } else {
                        while responses.allowsPlainRun,
                              let next = answeringFrameEnd(bytes, at: end, maxPacketSize: limit) {
                            end = next
                        }
                    }
                    run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), peer: client)
                    input.consume(end)
                    pool.stats.bytesSent += UInt64(end)
                    if !simple && responses.hasDueWork {
                        run.flush(to: client)
                        emitDueResponses(to: client)
                    }
                    continue
                }
                if (type == BackendMessageID.copyInResponse || type == BackendMessageID.copyBothResponse)
                    && !hidden && responses.executeIsNext {
                    let copy = responses.copyInStarted()
                    tracker.copyInStarted(ignoredSyncs: copy.ignoredSyncs, ended: copy.ended)
                }
                let disposition = responses.serverSent(type)
                if responses.parseUnexpectedlyAccepted {
                    // The server's statements are not what the cache says, and the client's
                    // batch went on where it expected an error: neither can continue.
                    run.flush(to: client)
                    client.serverFailed(message: "prepared statement state of the server in doubt")
                    close(reason: "a Parse of an existing statement name was accepted")
                    return
                }
                let forward = disposition == .forward
                switch type {
                case BackendMessageID.readyForQuery:
                    let status = TransactionStatus(rawValue: bytes[frame.payloadStart]) ?? .failed
                    if !hidden && pool.mode == .statement && status != .idle {
                        // The client must not see its transaction block start.
                        run.flush(to: client)
                        client.statementModeViolation()
                        close(reason: "transaction blocks not allowed in statement pooling mode")
                        return
                    }
                    if forward { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client) }
                    input.consume(frame.end)
                    if responses.takeSkippedEviction() {
                        // An error made PostgreSQL skip the Close that evicted a statement:
                        // it is still there while the cache counts it gone, and preparing
                        // it again would fail with "already exists".
                        retireWhenReleased("prepared statement eviction skipped after an error")
                    }
                    if !hidden { batchFinished(client) }
                    if readyForQuery(status, counted: !hidden) { released = true }
                case BackendMessageID.parameterStatus:
                    var reader = MessageReader(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end]))
                    if let name = reader.cString(), let value = reader.cString() {
                        settings.reported(name: name, value: value)
                        client.settings.reported(name: name, value: value)
                    }
                    run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client)
                    input.consume(frame.end)
                default:
                    if type == BackendMessageID.errorResponse {
                        if hidden {
                            let fields = ErrorFields.parse(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end]))
                            // None of the statements took effect: this server's settings are
                            // unknown now, so it is not reused.
                            pooler.log.warning("\(logPrefix) setting session parameters failed: \(fields.message)")
                            retireWhenReleased("setting session parameters failed")
                        } else {
                            batchFailed = true
                        }
                    }
                    if forward { run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end]), peer: client) }
                    if disposition == .replace {
                        run.flush(to: client)
                        client.output.append(responses.replacement)
                    }
                    input.consume(frame.end)
                }
                if forward { pool.stats.bytesSent += UInt64(frame.end) }
                if responses.hasDueWork {
                    run.flush(to: client)
                    emitDueResponses(to: client)
                }
            case .incomplete(let header):
                // Stream big frames through instead of buffering them whole; the few
                // frames we inspect (ReadyForQuery, ParameterStatus) are small.
                guard let header, header.type != BackendMessageID.readyForQuery,
                      header.type != BackendMessageID.parameterStatus else { break loop }
                if header.type == BackendMessageID.errorResponse && !responses.inHiddenQuery { batchFailed = true }
                passthroughDrop = responses.serverSent(header.type) == .drop // a replaced error is never this big
                if !passthroughDrop {
                    run.add(bytes, peer: client)
                    pool.stats.bytesSent += UInt64(bytes.count)
                }
                passthroughRemaining = header.end - bytes.count
                input.consume(bytes.count)
                if responses.hasDueWork {
                    run.flush(to: client)
                    emitDueResponses(to: client)
                }
            case .invalidLength:
                run.flush(to: client)
                client.serverFailed(message: "server conn crashed?")
                close(reason: "bad packet length from server")
                return
            }
            if released || closed { break }
        }
        run.send(to: client)
        client.flush()
        if closeAfterForwarding {
            closeForFastClose()
            return
        }
        if released && cancelsInFlight > 0 {
            // The cancel may still land: hold the server (and its client) until it has.
            releaseAfterCancels = true
        } else if released {
            client.serverFinishedTransaction(self)
        } else {
            applyBackpressure(client: client)
        }
    }

    /// Sends the client the responses the pooler produced that are now due, and forgets
    /// statements whose Parse did not happen.
    func emitDueResponses(to client: ClientConnection) {
        while let bytes = responses.nextDueSynthetic() { client.output.append(bytes) }
        for failed in responses.takeFailedStatements() {
            statementCache.remove(failed.statement)
            if failed.clientVisible { client.statementFailed(failed.statement) }
        }
    }

    /// A client batch (Query or Sync) ended: its session commands take effect unless it failed.
    /// DataRow, and a simple query's RowDescription and CommandComplete: frames that
    /// change no expectation of the response queue.
    @inline(__always)
    static func skipsResponseQueue(_ type: UInt8, simpleQuery: Bool) -> Bool {
        type == BackendMessageID.dataRow
            || (simpleQuery && (type == BackendMessageID.rowDescription || type == BackendMessageID.commandComplete))
    }

    /// The end of the complete frame at `offset` when it is one that skips the response
    /// queue (DataRow; RowDescription and CommandComplete in a simple query), else nil
    /// (anything else, incomplete or malformed goes through the frame scanner).
    @inline(__always)
    static func plainFrameEnd(_ bytes: UnsafeRawBufferPointer, at offset: Int, simpleQuery: Bool,
                              maxPacketSize: Int) -> Int? {
        guard offset + 5 <= bytes.count, skipsResponseQueue(bytes[offset], simpleQuery: simpleQuery) else { return nil }
        let length = Int(FrameScanner.readUInt32(bytes, at: offset + 1))
        guard length >= 4, length <= maxPacketSize, offset + 1 + length <= bytes.count else { return nil }
        return offset + 1 + length
    }

    /// In the extended protocol, the end of the complete frame at `offset` when it is a
    /// DataRow or plainly answers the oldest expectation (popped then: see
    /// ResponseQueue.passesPlain); else nil.
    @inline(__always)
    func answeringFrameEnd(_ bytes: UnsafeRawBufferPointer, at offset: Int, maxPacketSize: Int) -> Int? {
        guard offset + 5 <= bytes.count else { return nil }
        let length = Int(FrameScanner.readUInt32(bytes, at: offset + 1))
        guard length >= 4, length <= maxPacketSize, offset + 1 + length <= bytes.count else { return nil }
        let type = bytes[offset]
        guard type == BackendMessageID.dataRow || responses.passesPlain(type) else { return nil }
        return offset + 1 + length
    }

    @inline(__always)
    func batchFinished(_ client: ClientConnection) {
        if !pendingCommands.isEmpty {
            if !batchFailed {
                for command in pendingCommands {
                    client.settings.apply(command)
                    if command == .discardAll || command == .deallocateAll { client.forgetAllStatements() }
                }
                forgetSession(for: pendingCommands)
            }
            pendingCommands.removeAll()
        }
        batchFailed = false
    }

    /// server_fast_close in session mode: the server closes and its client, whose session
    /// it was, is told why.
    func closeForFastClose() {
        if let client, !client.closed {
            client.fail(message: "database configuration changed", code: SQLState.adminShutdown, detachServer: true)
        }
        terminate(reason: "database configuration changed")
    }

    /// The client is about to send a message: a query (and perhaps a transaction)
    /// starts now if nothing was in flight, for query/transaction times and timeouts.
    @inline(__always)
    func clientWillSend() {
        guard tracker.outstanding == 0 else { return }
        queryStart = pooler.loop.now
        if tracker.isClean { transactionStart = queryStart }
    }

    /// Every cancel request for this backend was delivered.
    func cancelsFinished() {
        guard releaseAfterCancels else { return }
        releaseAfterCancels = false
        if let client, !client.closed, tracker.isClean { client.serverFinishedTransaction(self) }
    }

    /// Stops reading the server while the client cannot keep up.
    func applyBackpressure(client: ClientConnection) {
        let paused = client.bufferedOutput > pooler.backpressureLimit
        if paused == wantsRead {
            wantsRead = !paused
            if paused { client.peerPausedForBackpressure = true }
            updateInterest()
        }
    }

    /// The client drained its output: read from the server again.
    func resumeReading() {
        if !wantsRead {
            wantsRead = true
            updateInterest()
            if !input.isEmpty { processInput() }
        }
    }

    /// Returns true when the server is clean and may be released (transaction/statement mode).
    func readyForQuery(_ status: TransactionStatus, counted: Bool) -> Bool {
        let now = pooler.loop.now
        guard counted else {
            lastReadyTime = now
            return tracker.serverReady(status) && pool.mode != .session && replication == .none
        }
        pool.stats.queryCount += 1
        pool.stats.queryTime += now &- queryStart
        queryStart = now
        if status == .idle {
            pool.stats.transactionCount += 1
            pool.stats.transactionTime += now &- transactionStart
        }
        lastReadyTime = now
        let clean = tracker.serverReady(status)
        if replication != .none { return false } // bound to its client until either closes
        switch pool.mode {
        case .session:
            // server_fast_close: a server marked for reconnection leaves at the end of
            // the transaction, and its session with it.
            if clean && closeWhenReleased && pooler.settings.serverFastClose { closeAfterForwarding = true }
            return false
        case .statement, .transaction:
            return clean
        }
    }
}
