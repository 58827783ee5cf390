import CLibPQ
import Foundation
import Glibc

/// An error from libpq or from the server: the primary message and, when the
/// server sent one, the SQLSTATE.
struct PQError: Error, CustomStringConvertible {
    /// The server's primary message (`M` field), or libpq's text without the
    /// "connection to server ... failed:" prefix.
    var message: String
    var sqlstate: String?
    /// Everything libpq reported, for failure messages.
    var fullMessage: String

    var description: String {
        "PQError(sqlstate: \(sqlstate ?? "none"), message: \(message))\n\(fullMessage)"
    }

    /// Extracts severity, SQLSTATE and message from libpq's connection error
    /// text. Connections are started with PQERRORS_VERBOSE, so a server error
    /// reads `... failed: FATAL:  28P01: password authentication failed ...`;
    /// the last such error in the text wins (libpq concatenates attempts).
    static func fromConnectionMessage(_ text: String) -> PQError {
        var result = PQError(message: text.trimmingCharacters(in: .whitespacesAndNewlines), sqlstate: nil,
                             fullMessage: text)
        for line in text.split(separator: "\n") {
            for severity in ["FATAL:  ", "ERROR:  ", "PANIC:  "] {
                guard let range = line.range(of: severity) else { continue }
                var rest = line[range.upperBound...]
                let code = rest.prefix(5)
                if code.count == 5, code.allSatisfy({ $0.isUppercase || $0.isNumber }),
                   rest.dropFirst(5).hasPrefix(": ") {
                    result.sqlstate = String(code)
                    rest = rest.dropFirst(7)
                } else {
                    result.sqlstate = nil
                }
                result.message = String(rest)
            }
        }
        return result
    }
}

/// Rows of a result as text (nil for NULL), with the column names.
struct PQResult {
    let columns: [String]
    let rows: [[String?]]
    let commandTag: String

    func columnIndex(_ name: String) -> Int? { columns.firstIndex(of: name) }

    /// The value in `row` under column `column` (nil: NULL or no such column).
    func value(_ row: Int, _ column: String) -> String? {
        guard let index = columnIndex(column) else { return nil }
        return rows[row][index]
    }

    /// Indices of the rows whose columns have the given values.
    func rowIndices(where conditions: [String: String]) -> [Int] {
        rows.indices.filter { row in conditions.allSatisfy { value(row, $0.key) == $0.value } }
    }

    /// The single value of a one-row, one-column result.
    var scalar: String? { rows.first?.first ?? nil }
}

/// Thin wrapper over libpq. Blocking from the caller's point of view, but
/// every wait is bounded (`timeout` seconds), so a pooler that never answers
/// fails the test instead of hanging it.
enum PQ {
    static func connect(_ conninfo: String, timeout: Double = 20) throws -> PQConnection {
        try PQConnection(conninfo: conninfo, timeout: timeout)
    }

    /// Quotes a value for a conninfo string.
    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// `host=... port=... user=... password=... dbname=...` plus `extra`;
    /// sslmode/gssencmode disabled unless `extra` says otherwise.
    static func conninfo(host: String = "127.0.0.1", port: Int, user: String, password: String?,
                         dbname: String, extra: [String: String] = [:]) -> String {
        var parts: [String: String] = ["host": host, "port": String(port), "user": user, "dbname": dbname,
                                       "sslmode": "disable", "gssencmode": "disable"]
        if let password { parts["password"] = password }
        for (key, value) in extra { parts[key] = value }
        return parts.sorted { $0.key < $1.key }.map { "\($0.key)=\(quote($0.value))" }.joined(separator: " ")
    }
}

final class PQConnection: @unchecked Sendable {
    /// The libpq handle (nil once closed), for the helpers in PQExtended.swift.
    private(set) var connection: OpaquePointer?
    let defaultTimeout: Double

    fileprivate init(conninfo: String, timeout: Double) throws {
        defaultTimeout = max(timeout, 30)
        guard let connection = PQconnectStart(conninfo) else {
            throw PQError(message: "PQconnectStart: out of memory", sqlstate: nil, fullMessage: "")
        }
        PQsetErrorVerbosity(connection, PQERRORS_VERBOSE)
        if PQstatus(connection) == CONNECTION_BAD {
            let error = PQError.fromConnectionMessage(String(cString: PQerrorMessage(connection)))
            PQfinish(connection)
            throw error
        }
        let deadline = Deadline(seconds: timeout)
        var status = PGRES_POLLING_WRITING
        while true {
            if status == PGRES_POLLING_OK { break }
            if status == PGRES_POLLING_FAILED {
                let error = PQError.fromConnectionMessage(String(cString: PQerrorMessage(connection)))
                PQfinish(connection)
                throw error
            }
            let events = status == PGRES_POLLING_READING ? Int16(POLLIN) : Int16(POLLOUT)
            if !Self.waitForSocket(PQsocket(connection), events: events, deadline: deadline) {
                PQfinish(connection)
                throw PQError(message: "timed out after \(timeout)s while connecting", sqlstate: nil,
                              fullMessage: conninfo.replacingOccurrences(of: "password=", with: "pw="))
            }
            status = PQconnectPoll(connection)
        }
        PQsetErrorVerbosity(connection, PQERRORS_DEFAULT)
        self.connection = connection
    }

    deinit { close() }

    var isOpen: Bool { connection != nil }

    func close() {
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// The server process id the pooler reported in BackendKeyData.
    var backendPID: Int32 { connection.map { PQbackendPID($0) } ?? 0 }

    func parameterStatus(_ name: String) -> String? {
        guard let connection, let value = PQparameterStatus(connection, name) else { return nil }
        return String(cString: value)
    }

    /// Simple query protocol (several statements allowed; the last result wins).
    @discardableResult
    func exec(_ sql: String, timeout: Double? = nil) throws -> PQResult {
        try run(timeout: timeout) { PQsendQuery($0, sql) }
    }

    /// Extended query protocol (Parse/Bind/Describe/Execute/Sync, unnamed
    /// statement) with text parameters.
    @discardableResult
    func execParams(_ sql: String, _ parameters: [String?], timeout: Double? = nil) throws -> PQResult {
        let cStrings = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        return try run(timeout: timeout) { connection in
            cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
                PQsendQueryParams(connection, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0)
            }
        }
    }

    func run(timeout: Double?, send: (OpaquePointer) -> Int32) throws -> PQResult {
        guard let connection else {
            throw PQError(message: "connection is closed", sqlstate: nil, fullMessage: "")
        }
        guard send(connection) == 1 else { throw connectionError() }
        let limit = timeout ?? defaultTimeout
        let deadline = Deadline(seconds: limit)
        var last: PQResult?
        var firstError: PQError?
        while true {
            while PQisBusy(connection) == 1 {
                guard Self.waitForSocket(PQsocket(connection), events: Int16(POLLIN), deadline: deadline) else {
                    close()
                    throw PQError(message: "timed out after \(limit)s waiting for a result", sqlstate: nil,
                                  fullMessage: "")
                }
                guard PQconsumeInput(connection) == 1 else { throw connectionError() }
            }
            guard let result = PQgetResult(connection) else { break }
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY {
                last = Self.convert(result)
            } else if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                close()
                throw PQError(message: "COPY is not supported by this wrapper", sqlstate: nil, fullMessage: "")
            } else if firstError == nil {
                firstError = Self.error(from: result, connection: connection)
            }
        }
        if let firstError { throw firstError }
        return last ?? PQResult(columns: [], rows: [], commandTag: "")
    }

    func connectionError() -> PQError {
        let text = connection.map { String(cString: PQerrorMessage($0)) } ?? "connection is closed"
        return PQError(message: text.trimmingCharacters(in: .whitespacesAndNewlines), sqlstate: nil,
                       fullMessage: text)
    }

    static func error(from result: OpaquePointer, connection: OpaquePointer) -> PQError {
        func field(_ code: UInt8) -> String? {
            guard let value = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: value)
        }
        var full = String(cString: PQresultErrorMessage(result))
        if full.isEmpty { full = String(cString: PQerrorMessage(connection)) }
        let message = field(UInt8(ascii: "M")) ?? full.trimmingCharacters(in: .whitespacesAndNewlines)
        return PQError(message: message, sqlstate: field(UInt8(ascii: "C")), fullMessage: full)
    }

    static func convert(_ result: OpaquePointer) -> PQResult {
        let columnCount = PQnfields(result), rowCount = PQntuples(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let rows: [[String?]] = (0..<rowCount).map { row in
            (0..<columnCount).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
        return PQResult(columns: columns, rows: rows, commandTag: String(cString: PQcmdStatus(result)))
    }

    /// poll(2) on the libpq socket until `events` or the deadline.
    /// Waits until the socket is ready, or at most 50 ms: true means "let libpq look
    /// again", false that the deadline passed. Over TLS, data can wait inside OpenSSL
    /// (a record decrypted beyond what PQconsumeInput took) with nothing left on the
    /// socket, so poll alone would wait forever at the end of a large result; libpq's
    /// own blocking calls check SSL_pending for that, and this checks again every 50 ms.
    static func waitForSocket(_ socket: Int32, events: Int16, deadline: Deadline) -> Bool {
        guard socket >= 0 else { return true }  // let libpq report the broken connection
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        while true {
            let remaining = deadline.remainingMilliseconds
            if remaining <= 0 { return false }
            let rc = poll(&descriptor, 1, min(remaining, 50))
            if rc >= 0 { return true }
            if errno != EINTR { return true }
        }
    }
}

/// libpq's cancel handle (PQgetCancel), for cancelling a query from another
/// thread while the connection's owner waits for its result.
final class PQCanceller: @unchecked Sendable {
    private let handle: OpaquePointer

    fileprivate init(handle: OpaquePointer) { self.handle = handle }

    deinit { PQfreeCancel(handle) }

    /// Sends a CancelRequest (PQcancel, which blocks until the receiver
    /// closes the cancel connection): nil on success, else libpq's error text.
    func cancel() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let ok = buffer.withUnsafeMutableBufferPointer { PQcancel(handle, $0.baseAddress, Int32($0.count)) }
        return ok == 1 ? nil : String(cString: buffer)
    }
}

extension PQConnection {
    /// A cancel handle for this connection (nil when closed).
    func makeCanceller() -> PQCanceller? {
        guard let connection, let handle = PQgetCancel(connection) else { return nil }
        return PQCanceller(handle: handle)
    }

    /// Drops the connection without a Terminate message: the socket is shut
    /// down first, so the peer sees EOF as from a client that died.
    func abort() {
        if let connection {
            let socket = PQsocket(connection)
            if socket >= 0 { shutdown(socket, Int32(SHUT_RDWR)) }
        }
        close()
    }
}
