import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// A logged-in client's traffic: frames forwarded to the linked server (asking the
/// pool for one when needed), release at the end of each transaction, backpressure.
extension ClientConnection {
    // MARK: traffic

    var maxPacketSize: Int { pooler.settings.maxPacketSize }

    /// Forwards complete frames (and big frames piecewise) to the linked server,
    /// asking the pool for one first when needed.
    func forwardToServer() {
        // Frames passed on unchanged go out as one run from `input` (see BorrowedRun);
        // whatever the pooler adds for the server flushes the run first.
        var run = BorrowedRun()
        while true {
            if let link = serverLink {
                // The server is lent, not retained: the event loop keeps every connection
                // alive until no handler runs (unregistered ones are released before the
                // next wait).
                guard link._withUnsafeGuaranteedRef({ forwardFrames(to: $0, run: &run) }) else { return }
            } else {
                guard forwardUnlinked() else { return }
            }
        }
    }

    /// Input while no server is linked: a frame that needs one asks the pool. True when a
    /// server was linked at once and the rest goes to it.
    private func forwardUnlinked() -> Bool {
        loop: while !input.isEmpty && !closed {
            let bytes = input.readable
            if passthroughRemaining > 0 {
                // Stray copy data being discarded.
                let take = min(passthroughRemaining, bytes.count)
                input.consume(take)
                passthroughRemaining -= take
                continue
            }
            switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
            case .invalidLength(_, let length):
                failBadLength(length)
                return false
            case .incomplete(let header):
                guard let header, !inspected(header.type) else { break loop }
                if refusesQuery(header.type) { return false }
                guard TransactionTracker.isCopyStream(header.type) else { break loop }
                passthroughRemaining = header.end - bytes.count
                input.consume(bytes.count)
            case .frame(let frame):
                if refusesQuery(frame.type) { return false }
                if frame.type == FrontendMessageID.parse, answerPrepareLocally(frame, in: bytes) { continue }
                switch TransactionTracker.effect(of: frame.type) {
                case .forward where TransactionTracker.isCopyStream(frame.type):
                    // Copy data after the server ended the COPY (it failed): the server
                    // would ignore it, so it needs no server at all.
                    input.consume(frame.end)
                    continue
                case .forward:
                    acquiringInline = true
                    acquireServer()
                    acquiringInline = false
                    return serverLink != nil && !closed // linked at once: forward it now
                case .terminate:
                    close(reason: "client close request")
                case .invalid:
                    failInvalidMessage(frame.type)
                }
                return false
            }
        }
        if !output.isEmpty { flush() }
        return false
    }

    /// Input while `server` is linked. True when the link changed with input left (the
    /// caller goes on with the new state).
    private func forwardFrames(to server: ServerConnection, run: inout BorrowedRun) -> Bool {
        defer { if !run.isEmpty, !closed, isLinked(to: server) { run.flush(to: server) } }
        loop: while !input.isEmpty && !closed {
            let bytes = input.readable
            if passthroughRemaining > 0 {
                let take = min(passthroughRemaining, bytes.count)
                run.add(UnsafeRawBufferPointer(rebasing: bytes[0..<take]), peer: server)
                server.pool.stats.bytesReceived += UInt64(take)
                input.consume(take)
                passthroughRemaining -= take
                if passthroughRemaining == 0 && releaseAfterPassthrough {
                    run.send(to: server)
                    server.flush()
                    serverFinishedTransaction(server)
                    return false
                }
                continue
            }
            switch FrameScanner.scan(bytes, from: 0, maxPacketSize: maxPacketSize) {
            case .invalidLength(_, let length):
                failBadLength(length)
                return false
            case .incomplete(let header):
                guard let header, !inspected(header.type) else { break loop }
                if refusesQuery(header.type) { return false }
                server.clientWillSend()
                guard server.tracker.clientSent(header.type) == .forward else {
                    failInvalidMessage(header.type)
                    return false
                }
                // Large frames we need not understand stream through as they arrive.
                expectResponse(to: header.type, on: server)
                run.add(bytes, peer: server)
                server.pool.stats.bytesReceived += UInt64(bytes.count)
                passthroughRemaining = header.end - bytes.count
                input.consume(bytes.count)
            case .frame(let frame):
                if refusesQuery(frame.type) { return false }
                server.clientWillSend()
                switch server.tracker.clientSent(frame.type) {
                case .forward:
                    break
                case .terminate:
                    input.consume(frame.end)
                    close(reason: "client close request")
                    return false
                case .invalid:
                    failInvalidMessage(frame.type)
                    return false
                }
                let frameBytes = UnsafeRawBufferPointer(rebasing: bytes[0..<frame.end])
                let payload = UnsafeRawBufferPointer(rebasing: bytes[frame.payloadStart..<frame.end])
                if !forwardExtended(frame.type, frame: frameBytes, payload: payload, to: server, run: &run) {
                    expectResponse(to: frame.type, on: server)
                    if frame.type == FrontendMessageID.query { noteSessionCommands(in: payload, on: server) }
                    run.add(frameBytes, peer: server)
                    server.pool.stats.bytesReceived += UInt64(frameBytes.count)
                }
                input.consume(frame.end)
            }
            // Nothing above unlinks the server without closing; if it ever does, the
            // caller starts over with the new state.
            if !isLinked(to: server) { return !closed }
        }
        if !output.isEmpty { flush() }
        run.send(to: server)
        server.flush()
        let paused = server.bufferedOutput > pooler.backpressureLimit
        if paused == wantsRead {
            wantsRead = !paused
            if paused { server.peerPausedForBackpressure = true }
            updateInterest()
        }
        return false
    }

    /// disable_pqexec: a simple Query fails the client (true: it was refused).
    @inline(__always)
    private func refusesQuery(_ type: UInt8) -> Bool {
        guard type == FrontendMessageID.query && pooler.settings.disablePqexec else { return false }
        failPQexec()
        return true
    }

    private func failBadLength(_ length: Int) {
        fail(message: "bad packet header: length \(length)", code: SQLState.protocolViolation)
    }

    /// Frames that must arrive whole before anything is done with them: Terminate, and
    /// the extended-protocol messages that name prepared statements when the pooler
    /// tracks them.
    func inspected(_ type: UInt8) -> Bool {
        switch type {
        case FrontendMessageID.terminate: return true
        case FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.describe, FrontendMessageID.close:
            return tracksPreparedStatements
        default: return false
        }
    }

    func acquireServer() {
        guard let poolLink else { return }
        state = .waiting
        requestTime = pooler.loop.now
        // The socket stays readable while the client waits: most clients send nothing
        // more until answered, so a wait costs no epoll_ctl (two per wait when reading
        // stopped and resumed); one that goes on sending is read until its input passes
        // the backpressure limit (see readable).
        poolLink._withUnsafeGuaranteedRef { $0.requestServer(for: self) }
    }

    /// The pool linked `server`; the caller's reference is taken over (no retain when it
    /// came out of the idle list).
    func linked(to server: consuming ServerConnection) {
        Unmanaged.replaceRetained(&serverLink, with: consume server)
        sentWaitNotice = false
        state = .active
        wantsRead = true
        updateInterest()
        if !acquiringInline { processInput() }
    }

    /// The server answered the last request and is clean: hand it back, unless a
    /// client frame is still half forwarded (e.g. CopyData after a failed COPY): the
    /// rest of it must reach this server, so the release waits for its end.
    func serverFinishedTransaction(_ server: ServerConnection) {
        guard let link = serverLink, isLinked(to: server) else { return }
        if passthroughRemaining > 0 {
            releaseAfterPassthrough = true
            return
        }
        releaseAfterPassthrough = false
        serverLink = nil // its reference goes to the pool with the server
        state = .idle
        if let poolLink {
            poolLink._withUnsafeGuaranteedRef { $0.serverReleased(taking: link) }
        } else {
            link.release()
        }
        input.releaseIfEmpty()
        if !input.isEmpty { processInput() }
    }

    /// The server took what we forwarded: read the client again.
    func resumeReading() {
        if !wantsRead && state == .active {
            wantsRead = true
            updateInterest()
            if !input.isEmpty { processInput() }
        }
    }

    func statementModeViolation() {
        fail(message: "transaction blocks not allowed in statement pooling mode", code: SQLState.featureNotSupported,
             detachServer: true)
    }

    func serverFailed(message: String) {
        fail(message: message, code: SQLState.connectionFailure, detachServer: true)
    }
}
