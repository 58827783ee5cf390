import CLibPQ
import Foundation
import Glibc

/// Named prepared statements, pipeline mode and COPY over libpq, every wait
/// bounded like the rest of `PQConnection`.
extension PQConnection {
    // MARK: prepared statements

    /// PQsendPrepare: Parse of a named statement (+ Sync).
    func prepare(_ name: String, _ sql: String, timeout: Double? = nil) throws {
        _ = try run(timeout: timeout) { PQsendPrepare($0, name, sql, 0, nil) }
    }

    /// PQsendQueryPrepared: Bind/Describe/Execute of a named statement (+ Sync),
    /// text parameters.
    @discardableResult
    func execPrepared(_ name: String, _ parameters: [String?], timeout: Double? = nil) throws -> PQResult {
        let cStrings = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        return try run(timeout: timeout) { connection in
            cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
                PQsendQueryPrepared(connection, name, Int32(parameters.count), values.baseAddress, nil, nil, 0)
            }
        }
    }

    /// PQdescribePrepared: the statement's parameter and result column counts.
    func describePrepared(_ name: String, timeout: Double? = nil) throws -> (parameters: Int, columns: Int) {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        guard PQsendDescribePrepared(connection, name) == 1 else { throw connectionError() }
        var answer: (Int, Int)?
        var firstError: PQError?
        try drainResults(timeout: timeout) { result in
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                answer = (Int(PQnparams(result)), Int(PQnfields(result)))
            } else if firstError == nil {
                firstError = Self.error(from: result, connection: connection)
            }
        }
        if let firstError { throw firstError }
        guard let answer else { throw PQError(message: "no describe result", sqlstate: nil, fullMessage: "") }
        return answer
    }

    /// Calls `body` with every result of the command in flight until
    /// PQgetResult returns NULL.
    private func drainResults(timeout: Double?, _ body: (OpaquePointer) throws -> Void) throws {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        let limit = timeout ?? defaultTimeout
        let deadline = Deadline(seconds: limit)
        while true {
            try waitWhileBusy(connection, deadline: deadline, limit: limit)
            guard let result = PQgetResult(connection) else { return }
            defer { PQclear(result) }
            try body(result)
        }
    }

    private func waitWhileBusy(_ connection: OpaquePointer, deadline: Deadline, limit: Double) throws {
        while PQisBusy(connection) == 1 {
            guard Self.waitForSocket(PQsocket(connection), events: Int16(POLLIN), deadline: deadline) else {
                close()
                throw PQError(message: "timed out after \(limit)s waiting for a result", sqlstate: nil,
                              fullMessage: "")
            }
            guard PQconsumeInput(connection) == 1 else { throw connectionError() }
        }
    }

    /// PQERRORS_VERBOSE from now on: error texts carry the SQLSTATE, so
    /// `PQError.fromConnectionMessage` can recover it from errors libpq
    /// reports as connection failures (a FATAL that arrived unasked).
    func setVerboseErrors() {
        if let connection { PQsetErrorVerbosity(connection, PQERRORS_VERBOSE) }
    }

    /// PQstatus is CONNECTION_OK (false once the server side has gone and
    /// libpq noticed, or after close()).
    var statusIsOK: Bool { connection.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// PQtransactionStatus as a letter: I (idle), T (in transaction), E
    /// (failed transaction), A (active), U (unknown/bad).
    var transactionStatus: Character {
        guard let connection else { return "U" }
        switch PQtransactionStatus(connection) {
        case PQTRANS_IDLE: return "I"
        case PQTRANS_INTRANS: return "T"
        case PQTRANS_INERROR: return "E"
        case PQTRANS_ACTIVE: return "A"
        default: return "U"
        }
    }

    // MARK: pipeline mode

    enum PipelineStep {
        /// PQsendQueryParams (unnamed statement).
        case query(String, [String?])
        /// PQsendPrepare.
        case prepare(String, String)
        /// PQsendQueryPrepared.
        case executePrepared(String, [String?])
        /// PQpipelineSync.
        case sync
    }

    enum PipelineItem: Equatable, CustomStringConvertible {
        case rows([[String?]])
        case command(String)
        case error(sqlstate: String?, message: String)
        case aborted
        case sync

        var description: String {
            switch self {
            case .rows(let rows): return "rows\(rows)"
            case .command(let tag): return "command(\(tag))"
            case .error(let sqlstate, let message): return "error(\(sqlstate ?? "-"): \(message))"
            case .aborted: return "aborted"
            case .sync: return "sync"
            }
        }
    }

    /// Enters pipeline mode, sends all `steps` before reading anything, then
    /// collects one item per step (in order) and leaves pipeline mode.
    func pipeline(_ steps: [PipelineStep], timeout: Double? = nil) throws -> [PipelineItem] {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        guard PQenterPipelineMode(connection) == 1 else { throw connectionError() }
        for step in steps {
            let ok: Int32
            switch step {
            case .query(let sql, let parameters):
                ok = Self.withCStrings(parameters) { values in
                    PQsendQueryParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, 0)
                }
            case .prepare(let name, let sql):
                ok = PQsendPrepare(connection, name, sql, 0, nil)
            case .executePrepared(let name, let parameters):
                ok = Self.withCStrings(parameters) { values in
                    PQsendQueryPrepared(connection, name, Int32(parameters.count), values, nil, nil, 0)
                }
            case .sync:
                ok = PQpipelineSync(connection)
            }
            guard ok == 1 else { throw connectionError() }
        }
        let limit = timeout ?? defaultTimeout
        let deadline = Deadline(seconds: limit)
        // Blocking mode: PQpipelineSync flushed, but a trailing step without a
        // sync may still sit in libpq's buffer.
        guard PQflush(connection) == 0 else { throw connectionError() }
        var items: [PipelineItem] = []
        while items.count < steps.count {
            try waitWhileBusy(connection, deadline: deadline, limit: limit)
            guard let result = PQgetResult(connection) else {
                // The NULL that ends one query's results.
                if deadline.hasPassed {
                    throw PQError(message: "pipeline: only \(items.count) of \(steps.count) results: \(items)",
                                  sqlstate: nil, fullMessage: "")
                }
                continue
            }
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC {
                items.append(.sync)
            } else if status == PGRES_PIPELINE_ABORTED {
                items.append(.aborted)
            } else if status == PGRES_TUPLES_OK {
                items.append(.rows(Self.convert(result).rows))
            } else if status == PGRES_COMMAND_OK {
                items.append(.command(String(cString: PQcmdStatus(result))))
            } else {
                let error = Self.error(from: result, connection: connection)
                items.append(.error(sqlstate: error.sqlstate, message: error.message))
            }
        }
        guard PQexitPipelineMode(connection) == 1 else { throw connectionError() }
        return items
    }

    private static func withCStrings<R>(_ values: [String?],
                                        _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let cStrings = values.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        return cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    // MARK: COPY

    /// Runs `sql` (a `COPY ... FROM STDIN`), sends `chunks` with
    /// PQputCopyData, ends with PQputCopyEnd (CopyFail when `failMessage` is
    /// given), and returns the command tag. `extended`: the COPY goes as
    /// Parse/Bind/Describe/Execute/Sync (PQsendQueryParams), and libpq then ends the
    /// copy with CopyDone and a second Sync, as tokio-postgres does.
    func copyIn<S: Sequence>(_ sql: String, chunks: S, timeout: Double? = nil,
                             failMessage: String? = nil, extended: Bool = false) throws -> String
    where S.Element == [UInt8] {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        let limit = timeout ?? defaultTimeout
        let deadline = Deadline(seconds: limit)
        let sent = extended ? PQsendQueryParams(connection, sql, 0, nil, nil, nil, nil, 0) : PQsendQuery(connection, sql)
        guard sent == 1 else { throw connectionError() }
        try waitWhileBusy(connection, deadline: deadline, limit: limit)
        guard let start = PQgetResult(connection) else {
            throw PQError(message: "no result for COPY", sqlstate: nil, fullMessage: "")
        }
        let startStatus = PQresultStatus(start)
        if startStatus != PGRES_COPY_IN {
            let error = Self.error(from: start, connection: connection)
            PQclear(start)
            try drainResults(timeout: deadline.remaining) { _ in }
            throw error
        }
        PQclear(start)
        for chunk in chunks {
            let ok = chunk.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32($0.count)) }
            }
            guard ok == 1 else { throw connectionError() }
            if deadline.hasPassed {
                close()
                throw PQError(message: "COPY IN: timed out after \(limit)s sending", sqlstate: nil, fullMessage: "")
            }
        }
        guard PQputCopyEnd(connection, failMessage) == 1 else { throw connectionError() }
        var tag = ""
        var firstError: PQError?
        try drainResults(timeout: deadline.remaining) { result in
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                tag = String(cString: PQcmdStatus(result))
            } else if firstError == nil {
                firstError = Self.error(from: result, connection: connection)
            }
        }
        if let firstError { throw firstError }
        return tag
    }

    /// Runs `sql` (a `COPY ... TO STDOUT`), hands every PQgetCopyData row to
    /// `row`, and returns the command tag.
    func copyOut(_ sql: String, timeout: Double? = nil, row: (UnsafeBufferPointer<UInt8>) -> Void) throws -> String {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        let limit = timeout ?? defaultTimeout
        let deadline = Deadline(seconds: limit)
        guard PQsendQuery(connection, sql) == 1 else { throw connectionError() }
        try waitWhileBusy(connection, deadline: deadline, limit: limit)
        guard let start = PQgetResult(connection) else {
            throw PQError(message: "no result for COPY", sqlstate: nil, fullMessage: "")
        }
        if PQresultStatus(start) != PGRES_COPY_OUT {
            let error = Self.error(from: start, connection: connection)
            PQclear(start)
            try drainResults(timeout: deadline.remaining) { _ in }
            throw error
        }
        PQclear(start)
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let count = PQgetCopyData(connection, &buffer, 1)
            if count > 0, let buffer {
                buffer.withMemoryRebound(to: UInt8.self, capacity: Int(count)) {
                    row(UnsafeBufferPointer(start: $0, count: Int(count)))
                }
                PQfreemem(buffer)
            } else if count == 0 {
                guard Self.waitForSocket(PQsocket(connection), events: Int16(POLLIN), deadline: deadline) else {
                    close()
                    throw PQError(message: "COPY OUT: timed out after \(limit)s", sqlstate: nil, fullMessage: "")
                }
                guard PQconsumeInput(connection) == 1 else { throw connectionError() }
            } else if count == -1 {
                break
            } else {
                throw connectionError()
            }
        }
        var tag = ""
        var firstError: PQError?
        try drainResults(timeout: deadline.remaining) { result in
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                tag = String(cString: PQcmdStatus(result))
            } else if firstError == nil {
                firstError = Self.error(from: result, connection: connection)
            }
        }
        if let firstError { throw firstError }
        return tag
    }
}
