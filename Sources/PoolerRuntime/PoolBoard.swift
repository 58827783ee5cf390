import CLinuxShims

/// What each loop shows the others about one pool (workers > 1): how many idle servers
/// it has and since when its oldest client waits. The owning loop writes its own slot
/// (an atomic store when the pool changes); other loops read it to decide where a
/// released server should go and whom to ask for an idle one. A stale value costs at
/// most a message answered "none" or a decision made again at the next janitor tick.
final class PoolBoard: @unchecked Sendable {
    let loops: Int
    /// One 64-byte line per loop (no false sharing): [0] idle servers, [1] loop time the
    /// oldest waiting client queued (0: nobody waits).
    private let slots: UnsafeMutablePointer<UInt64>
    private static let stride = 8

    init(loops: Int) {
        self.loops = loops
        slots = .allocate(capacity: loops * Self.stride)
        slots.initialize(repeating: 0, count: loops * Self.stride)
    }

    deinit { slots.deallocate() }

    @inline(__always)
    func publish(loop: Int, idle: Int, oldestWait: UInt64) {
        let slot = slots + loop * Self.stride
        pooler_atomic_store(slot, UInt64(idle))
        pooler_atomic_store(slot + 1, oldestWait)
    }

    @inline(__always)
    func idle(loop: Int) -> Int { Int(pooler_atomic_load(slots + loop * Self.stride)) }

    @inline(__always)
    func oldestWait(loop: Int) -> UInt64 { pooler_atomic_load(slots + loop * Self.stride + 1) }

    /// The other loop whose oldest client has waited longest (-1: nobody waits on
    /// another loop), and when that client queued. Called at every release: a load per loop.
    @inline(__always)
    func longestWaiting(except own: Int, since: inout UInt64) -> Int {
        var best = -1
        since = .max
        for loop in 0..<loops where loop != own {
            let queued = oldestWait(loop: loop)
            if queued != 0 && queued < since {
                since = queued
                best = loop
            }
        }
        return best
    }

    /// The other loop with the most idle servers, if any has one.
    func loopWithIdle(except own: Int) -> Int? {
        var best: (loop: Int, idle: Int)?
        for loop in 0..<loops where loop != own {
            let idle = idle(loop: loop)
            if idle > 0 && idle > (best?.idle ?? 0) { best = (loop, idle) }
        }
        return best?.loop
    }
}
