import Glibc

/// Monotonic seconds, for deadlines that wall-clock jumps cannot stretch.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// A point in time some seconds from now; every wait in the harness has one,
/// so a misbehaving pooler turns into a failed test instead of a hung run.
struct Deadline {
    let end: Double

    init(seconds: Double) {
        end = monotonicSeconds() + seconds
    }

    var remaining: Double { max(0, end - monotonicSeconds()) }
    var hasPassed: Bool { monotonicSeconds() >= end }

    /// Milliseconds left, for poll(2).
    var remainingMilliseconds: Int32 { Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up)) }
}

func sleepSeconds(_ seconds: Double) {
    usleep(useconds_t(seconds * 1_000_000))
}

/// Re-evaluates `condition` every `interval` seconds until it holds (true) or
/// `timeout` passes (false).
func waitUntil(timeout: Double, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Deadline(seconds: timeout)
    while true {
        if try condition() { return true }
        if deadline.hasPassed { return false }
        sleepSeconds(min(interval, max(deadline.remaining, 0.001)))
    }
}
