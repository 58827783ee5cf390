import CLinuxShims

/// What each loop shows the others about one pool (workers > 1): how many idle servers
/// it has and since when its oldest client waits. The owning loop writes its own slot
/// (an atomic store when the pool changes); other loops read it to decide where a
/// released server should go and whom to ask for an idle one. A stale value costs at
/// most a message answered "none" or a decision made again at the next janitor tick.
final class PoolBoard: @unchecked Sendable {
    /// The slots, read and written through a plain value: the hot paths (every request
    /// and release) use it without retaining the board.
    let view: PoolBoardView
    var loops: Int { view.loops }

    init(loops: Int) {
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: loops * PoolBoardView.stride)
        slots.initialize(repeating: 0, count: loops * PoolBoardView.stride)
        view = PoolBoardView(slots: slots, loops: loops)
    }

    deinit { view.slots.deallocate() }

    @inline(__always)
    func idle(loop: Int) -> Int { view.idle(loop: loop) }

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

/// A board's slots (owned by its PoolBoard, which lives as long as the process).
struct PoolBoardView {
    /// One 64-byte line per loop (no false sharing): [0] idle servers, [1] loop time the
    /// oldest waiting client queued (0: nobody waits).
    let slots: UnsafeMutablePointer<UInt64>
    let loops: Int
    static let stride = 8

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
}
