import PoolerWire

/// Answers admin console queries (filled in once PoolerAdmin lands).
final class AdminService {
    unowned let pooler: Pooler
    init(pooler: Pooler) { self.pooler = pooler }

    func execute(_ sql: String, client: ClientConnection) -> [UInt8] {
        var writer = MessageWriter()
        writer.errorResponse(code: SQLState.featureNotSupported, message: "admin console not ready")
        writer.readyForQuery(.idle)
        return writer.bytes
    }
}
