import Foundation

/// Real OS threads, one per task: blocking libpq clients that must all be
/// connected at the same time cannot share a fixed-width pool.
enum Threads {
    /// Runs `body(i)` for i in 0..<count, each on its own thread, and returns
    /// the results in order once all have finished. Test expectations belong
    /// on the calling thread: return what to check.
    static func run<T>(count: Int, stackSize: Int = 1 << 20, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        let results = ResultSlots<T>(count: count)
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                results.set(index, body(index))
                group.leave()
            }
            thread.stackSize = stackSize
            thread.start()
        }
        group.wait()
        return results.values
    }
}

private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: T) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}

/// Lets `parties` threads wait until all of them have arrived (or a timeout:
/// a thread that failed early must still arrive, or the others time out).
final class Barrier: @unchecked Sendable {
    private let condition = NSCondition()
    private let parties: Int
    private var arrived = 0

    init(parties: Int) { self.parties = parties }

    /// True if everybody arrived within `timeout` seconds.
    @discardableResult
    func arriveAndWait(timeout: Double = 60) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        if arrived >= parties {
            condition.broadcast()
            return true
        }
        let limit = Date(timeIntervalSinceNow: timeout)
        while arrived < parties {
            if !condition.wait(until: limit) { return arrived >= parties }
        }
        return true
    }
}

extension Threads {
    /// Runs `body` on its own thread and waits up to `timeout` seconds for it:
    /// its result, or nil if it is still running then (the thread is left to
    /// finish on its own, so a hang fails the test instead of the run).
    static func runWithTimeout<T>(_ timeout: Double, stackSize: Int = 1 << 20,
                                  _ body: @escaping @Sendable () -> T) -> T? {
        let results = ResultSlots<T>(count: 1)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            results.set(0, body())
            done.signal()
        }
        thread.stackSize = stackSize
        thread.start()
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return results.values[0]
    }
}
