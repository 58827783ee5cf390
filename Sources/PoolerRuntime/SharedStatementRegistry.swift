import PoolerCore

/// The prepared-statement registry all loops share: ids stay valid when a server moves
/// to another loop. Used on Parse and Close of named statements, not per Bind.
final class SharedStatementRegistry: @unchecked Sendable {
    private var registry = PreparedStatementRegistry()
    private let lock = Lock()

    var count: Int { lock.withLock { registry.count } }

    func statement(_ id: Int) -> PreparedStatement? { lock.withLock { registry.statement(id) } }

    func retain(body: [UInt8]) -> Int { lock.withLock { registry.retain(body: body) } }

    func release(_ id: Int) { lock.withLock { registry.release(id) } }
}
