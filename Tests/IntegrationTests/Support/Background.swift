import Foundation

/// Work started on its own thread whose completion the test can observe while
/// it does other things (e.g. checking that an admin PAUSE has not answered yet).
///
///     let pause = Background { try admin.exec("PAUSE app_db") }
///     #expect(!pause.isDone)
///     let result = pause.wait(timeout: 5)   // nil: still running
final class Background<T>: @unchecked Sendable {
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(stackSize: Int = 1 << 20, _ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            let outcome = Result { try body() }
            lock.lock()
            result = outcome
            lock.unlock()
            done.signal()
        }
        thread.stackSize = stackSize
        thread.start()
    }

    var isDone: Bool {
        lock.lock()
        defer { lock.unlock() }
        return result != nil
    }

    /// The outcome once the body finished within `timeout` seconds; nil if it still runs.
    func wait(timeout: Double) -> Result<T, Error>? {
        let deadline = Deadline(seconds: timeout)
        while !isDone {
            if deadline.hasPassed { return nil }
            _ = done.wait(timeout: .now() + min(deadline.remaining, 0.05))
        }
        lock.lock()
        defer { lock.unlock() }
        return result
    }
}

/// One row of an admin SHOW result as a dictionary, for compact checks.
extension PQResult {
    func row(where conditions: [String: String]) -> [String: String]? {
        guard let index = rowIndices(where: conditions).first else { return nil }
        var values: [String: String] = [:]
        for (position, column) in columns.enumerated() { values[column] = rows[index][position] ?? "" }
        return values
    }
}

extension PQConnection {
    /// The app_db/app (or given) row of SHOW POOLS, as integers where numeric.
    func poolRow(database: String = "app_db", user: String = "app") throws -> [String: String] {
        try exec("SHOW POOLS").row(where: ["database": database, "user": user]) ?? [:]
    }

    /// `column` of the SHOW POOLS row as an Int (-1 when there is no such row).
    func poolCount(_ column: String, database: String = "app_db", user: String = "app") throws -> Int {
        Int(try poolRow(database: database, user: user)[column] ?? "") ?? -1
    }
}
