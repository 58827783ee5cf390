// Value types exchanged between the admin console and the runtime.
// Column names, types and wording follow PgBouncer 1.25 (src/admin.c, src/stats.c).

/// Column type of an admin result set, as PgBouncer declares it in RowDescription.
/// PgBouncer's tuple descriptors: 's' text, 'i' int4, 'q' int8, 'N' numeric,
/// 'b' bytea, 'T' (timestamp rendered as text, declared as text).
public enum AdminColumnType: Equatable, Sendable {
    case text
    case int4
    case int8
    case numeric
    case bytea

    /// PostgreSQL type OID written in RowDescription.
    public var oid: Int32 {
        switch self {
        case .text: return 25
        case .int4: return 23
        case .int8: return 20
        case .numeric: return 1700
        case .bytea: return 17
        }
    }

    /// Type size written in RowDescription (PgBouncer: -1 for varlena, 4/8 for ints).
    public var typeSize: Int16 {
        switch self {
        case .text, .numeric, .bytea: return -1
        case .int4: return 4
        case .int8: return 8
        }
    }

    /// Type modifier written in RowDescription (always -1 in PgBouncer).
    public var typeModifier: Int32 { -1 }
}

public struct AdminColumn: Equatable, Sendable {
    public var name: String
    public var type: AdminColumnType
    public init(name: String, type: AdminColumnType) {
        self.name = name
        self.type = type
    }
}

/// A result set: RowDescription, one DataRow per row (nil = SQL NULL), CommandComplete(tag).
public struct AdminTable: Equatable, Sendable {
    public var columns: [AdminColumn]
    public var rows: [[String?]]
    public var tag: String

    public init(columns: [AdminColumn], rows: [[String?]] = [], tag: String = "SHOW") {
        self.columns = columns
        self.rows = rows
        self.tag = tag
    }

    public var columnNames: [String] { columns.map { $0.name } }

    /// Value of `column` in row `row`, for tests and logging.
    public func value(_ column: String, row: Int = 0) -> String?? {
        guard row < rows.count, let index = columns.firstIndex(where: { $0.name == column }) else { return nil }
        return .some(rows[row][index])
    }
}

/// A NoticeResponse as PgBouncer sends it: fields S, C, M and optionally D (no V field).
public struct AdminNotice: Equatable, Sendable {
    public var severity: String
    public var code: String
    public var message: String
    public var detail: String?

    public init(severity: String = "NOTICE", code: String = "00000", message: String, detail: String? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.detail = detail
    }
}

/// An ErrorResponse (severity ERROR) followed by ReadyForQuery; the console stays open.
/// PgBouncer's admin errors all use SQLSTATE 08P01 except a failed RELOAD (F0000).
public struct AdminError: Error, Equatable, Sendable {
    public var code: String
    public var message: String
    public var severity: String { "ERROR" }

    public init(code: String = AdminError.defaultCode, message: String) {
        self.code = code
        self.message = message
    }

    /// send_pooler_error() with sqlstate NULL uses 08P01 (protocol_violation).
    public static let defaultCode = "08P01"

    // PgBouncer's wording, for the console itself and for the runtime when it validates an action.
    public static func invalidCommand(_ query: String) -> AdminError {
        AdminError(message: "invalid command '\(query)', use SHOW HELP;")
    }
    public static let badArguments = AdminError(message: "bad arguments")
    public static let adminAccessNeeded = AdminError(message: "admin access needed")
    public static let alreadySuspendedOrPaused = AdminError(message: "already suspended/paused")
    public static let cannotSuspendWithPausedDatabases = AdminError(message: "cannot suspend with paused databases")
    public static let poolerIsShuttingDown = AdminError(message: "pooler is shutting down")
    public static let poolerNotPaused = AdminError(message: "pooler is not paused/suspended")
    public static let databaseRequired = AdminError(message: "a database is required")
    public static let invalidClientID = AdminError(message: "invalid client pointer supplied")
    public static let clientNotFound = AdminError(message: "client not found")
    public static let setFailed = AdminError(message: "SET failed")
    public static let reloadFailed = AdminError(code: "F0000", message: "RELOAD failed, see logs for additional details")
    public static let extendedProtocolNotSupported =
        AdminError(message: "extended query protocol not supported by admin console")
    public static func noSuchDatabase(_ name: String) -> AdminError {
        AdminError(message: "no such database: \(name)")
    }
    public static func databaseNotPaused(_ name: String) -> AdminError {
        AdminError(message: "database \(name) is not paused")
    }
    public static func cannotPauseAdminDatabase(_ name: String) -> AdminError {
        AdminError(message: "cannot pause admin db: \(name)")
    }
    public static func cannotReconnectAdminDatabase(_ name: String) -> AdminError {
        AdminError(message: "cannot reconnect admin db: \(name)")
    }
    public static func cannotKillAdminDatabase(_ name: String) -> AdminError {
        AdminError(message: "cannot kill admin db: \(name)")
    }
    public static func cannotWaitInAdminDatabase(_ name: String) -> AdminError {
        AdminError(message: "cannot wait in admin db: \(name)")
    }
    /// PgBouncer uses this wording for both DISABLE and ENABLE of the admin db.
    public static func cannotDisableAdminDatabase(_ name: String) -> AdminError {
        AdminError(message: "cannot disable admin db: \(name)")
    }
}

public enum AdminShutdownMode: Equatable, Sendable {
    case immediate
    case waitForServers
    case waitForClients
}

/// A parsed console command. Database names and SET keys/values are kept as typed
/// (PgBouncer looks databases up case-sensitively); SHOW subjects are lowercased.
/// An empty optional database argument (`PAUSE ""`) is nil, as in PgBouncer.
public enum AdminCommand: Equatable, Sendable {
    case show(String)
    case pause(String?)
    case resume(String?)
    case suspend
    case reload
    case kill(String?)
    case killClient(String)
    case disable(String)
    case enable(String)
    case reconnect(String?)
    case waitClose(String?)
    case shutdown(AdminShutdownMode)
    case set(key: String, value: String)

    /// CommandComplete tag PgBouncer sends when the command succeeds.
    public var completionTag: String {
        switch self {
        case .show: return "SHOW"
        case .pause: return "PAUSE"
        case .resume: return "RESUME"
        case .suspend: return "SUSPEND"
        case .reload: return "RELOAD"
        case .kill: return "KILL"
        case .killClient: return "KILL_CLIENT"
        case .disable: return "DISABLE"
        case .enable: return "ENABLE"
        case .reconnect: return "RECONNECT"
        case .waitClose: return "WAIT_CLOSE"
        case .shutdown: return "SHUTDOWN"
        case .set(let key, let value): return "SET \(key)=\(value)"
        }
    }

    /// The client id of `KILL_CLIENT <id>`, parsed like sscanf("%llu"): optional leading
    /// whitespace and sign, then leading decimal digits; trailing garbage is ignored.
    public var clientID: UInt64? {
        guard case .killClient(let argument) = self else { return nil }
        return AdminCommand.parseClientID(argument)
    }

    static func parseClientID(_ text: String) -> UInt64? {
        var bytes = Substring(text).utf8[...]
        while let b = bytes.first, b == 0x20 || (b >= 0x09 && b <= 0x0d) { bytes = bytes.dropFirst() }
        var negative = false
        if let b = bytes.first, b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
            negative = b == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var value: UInt64 = 0
        var digits = 0
        var overflow = false
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { break }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 { overflow = true }
            value = s
            digits += 1
        }
        guard digits > 0 else { return nil }
        if overflow { value = UInt64.max }
        return negative ? 0 &- value : value
    }
}

/// What the console answers.
public enum AdminReply: Equatable, Sendable {
    /// RowDescription + DataRows + CommandComplete(table.tag) + ReadyForQuery.
    case table(AdminTable)
    /// NoticeResponses (in order), then CommandComplete(tag) + ReadyForQuery, no RowDescription.
    /// SHOW HELP is `.command(tag: "SHOW", notices: [help])`.
    case command(tag: String, notices: [AdminNotice])
    /// ErrorResponse + ReadyForQuery.
    case error(AdminError)
    /// A permitted non-SHOW command the runtime performs; it validates against its state
    /// (use the AdminError factories) and answers CommandComplete(command.completionTag).
    case action(AdminCommand)
}
