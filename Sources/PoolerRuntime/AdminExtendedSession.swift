import PoolerAdmin
import PoolerWire

/// The admin console over the extended query protocol, for drivers (psycopg 3, pgJDBC)
/// that send SHOW through Parse/Bind/Describe/Execute/Sync. Statements and portals hold
/// the command text; Describe and Execute answer from the same console reply, which a
/// portal keeps so both see one snapshot. After an error, messages are skipped until
/// Sync, as PostgreSQL does.
struct AdminExtendedSession {
    private var statements: [String: String] = [:]
    private var portals: [String: (sql: String, reply: AdminReply?)] = [:]
    private var failed = false

    /// Handles one message; false for a type the console does not accept.
    mutating func handle(type: UInt8, payload: UnsafeRawBufferPointer, client: ClientConnection) -> Bool {
        var reader = MessageReader(payload)
        var writer = MessageWriter()
        if failed && type != FrontendMessageID.sync { return true }
        switch type {
        case FrontendMessageID.parse:
            guard let name = reader.cString(), let sql = reader.cString() else { return false }
            statements[name] = sql
            writer.begin(BackendMessageID.parseComplete); writer.end()
        case FrontendMessageID.bind:
            guard let portal = reader.cString(), let statement = reader.cString() else { return false }
            guard let sql = statements[statement] else {
                writer.errorResponse(code: "26000", message: "prepared statement \"\(statement)\" does not exist")
                failed = true
                break
            }
            portals[portal] = (sql, nil)
            writer.begin(BackendMessageID.bindComplete); writer.end()
        case FrontendMessageID.describe:
            guard let kind = reader.uint8(), let name = reader.cString() else { return false }
            let sql: String?
            if kind == UInt8(ascii: "S") {
                sql = statements[name]
                writer.begin(BackendMessageID.parameterDescription); writer.int16(0); writer.end()
            } else {
                sql = portals[name]?.sql
            }
            guard let sql else {
                writer.errorResponse(code: "26000", message: "\(kind == UInt8(ascii: "S") ? "prepared statement" : "portal") \"\(name)\" does not exist")
                failed = true
                break
            }
            let reply = client.pooler.admin.reply(for: sql, client: client)
            if kind != UInt8(ascii: "S") { portals[name]?.reply = reply }
            if case .table(let table) = reply {
                AdminService.rowDescription(table, into: &writer)
            } else {
                writer.begin(BackendMessageID.noData); writer.end()
            }
        case FrontendMessageID.execute:
            guard let portal = reader.cString(), let bound = portals[portal] else {
                writer.errorResponse(code: "34000", message: "portal does not exist")
                failed = true
                break
            }
            let reply = bound.reply ?? client.pooler.admin.reply(for: bound.sql, client: client)
            client.pooler.admin.encode(reply, client: client, into: &writer, describe: false)
            if case .error = reply { failed = true }
        case FrontendMessageID.sync:
            failed = false
            portals.removeAll()
            if !client.awaitingAdminReply { writer.readyForQuery(.idle) }
        case FrontendMessageID.close:
            guard let kind = reader.uint8(), let name = reader.cString() else { return false }
            if kind == UInt8(ascii: "S") { statements[name] = nil } else { portals[name] = nil }
            writer.begin(BackendMessageID.closeComplete); writer.end()
        case FrontendMessageID.flush:
            break
        default:
            return false
        }
        client.output.append(writer.bytes)
        return true
    }
}
