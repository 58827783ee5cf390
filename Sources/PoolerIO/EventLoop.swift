import CLinuxShims
import Glibc

/// Something registered with the event loop. A class rather than a protocol: the loop
/// holds each handler unmanaged and calls it through its vtable, with no retain and
/// release per event (see `EventLoop.retired` for why that is safe).
open class EventHandler {
    public init() {}

    open func handleEvents(_ events: UInt32) {}
}

public enum EventMask {
    public static let readable = UInt32(EPOLLIN.rawValue)
    public static let writable = UInt32(EPOLLOUT.rawValue)
    public static let peerHangup = UInt32(EPOLLRDHUP.rawValue)
    /// EPOLLEXCLUSIVE: of several epoll sets waiting on one fd, wake only one.
    public static let exclusive = UInt32(1) << 28
    public static let hangup = UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLERR.rawValue) | UInt32(EPOLLRDHUP.rawValue)
}

/// One epoll loop. Handlers live in a slab; epoll's data carries slot index and a
/// generation, so an event for a slot that was reused in the same batch is dropped.
public final class EventLoop {
    private let epollFD: Int32
    private let wakeFD: Int32
    /// Registered handlers, each retained once by the loop (passRetained at register).
    private var slots: [Unmanaged<EventHandler>?] = []
    /// Handlers unregistered since the loop last waited, still retained: released only
    /// when no handler code is running, so a handler that closes itself or its peer
    /// while handling an event is never freed under its own feet, and dispatch needs no
    /// retain/release. Code called from the loop may rely on it: a handler registered on
    /// this loop stays allocated until the loop waits again.
    private var retired: [Unmanaged<EventHandler>] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    private var stopped = false
    /// Monotonic microseconds, read once per loop iteration.
    public private(set) var now: UInt64
    private var wakeHandler: (() -> Void)?

    public init() throws(SystemError) {
        epollFD = try Syscall.epollCreate()
        wakeFD = try Syscall.eventFD()
        now = Syscall.monotonicMicroseconds()
        try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, wakeFD, events: EventMask.readable, data: UInt64.max)
    }

    deinit {
        Syscall.close(epollFD)
        Syscall.close(wakeFD)
        releaseRetired()
        for slot in slots { slot?.release() }
    }

    private func releaseRetired() {
        for handler in retired { handler.release() }
        retired.removeAll(keepingCapacity: true)
    }

    /// The eventfd that wakes the loop (signal handlers write to it).
    public var wakeDescriptor: Int32 { wakeFD }

    /// Called on the loop when the eventfd fires.
    public func onWake(_ handler: @escaping () -> Void) { wakeHandler = handler }

    /// Registers `fd`; returns the token to modify or remove it.
    public func register(fd: Int32, events: UInt32, handler: EventHandler) throws(SystemError) -> UInt64 {
        let index: Int
        let retained = Unmanaged.passRetained(handler)
        if let free = freeSlots.popLast() {
            index = free
            slots[index] = retained
        } else {
            index = slots.count
            slots.append(retained)
            generations.append(0)
        }
        let token = UInt64(generations[index]) << 32 | UInt64(index)
        do {
            try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, fd, events: events, data: token)
        } catch {
            slots[index] = nil
            freeSlots.append(index)
            retired.append(retained)
            throw error
        }
        return token
    }

    public func modify(fd: Int32, token: UInt64, events: UInt32) throws(SystemError) {
        try Syscall.epollControl(epollFD, EPOLL_CTL_MOD, fd, events: events, data: token)
    }

    /// Removes the registration; the caller closes the fd afterwards.
    public func unregister(fd: Int32, token: UInt64) {
        guard token != UInt64.max else { return } // never registered
        try? Syscall.epollControl(epollFD, EPOLL_CTL_DEL, fd, events: 0, data: 0)
        let index = Int(token & 0xFFFF_FFFF)
        guard index < slots.count, generations[index] == UInt32(token >> 32) else { return }
        if let handler = slots[index] { retired.append(handler) }
        slots[index] = nil
        generations[index] &+= 1
        freeSlots.append(index)
    }

    public func stop() { stopped = true }

    /// Runs until `stop()`. `tick` runs at least every `tickMilliseconds` and after each batch.
    public func run(tickMilliseconds: Int32, tick: () -> Void) throws(SystemError) {
        let capacity = 256
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        defer { events.deallocate(); data.deallocate() }
        var lastTick = now
        while !stopped {
            if !retired.isEmpty { releaseRetired() }
            let count = try Syscall.epollWait(epollFD, events: events, data: data, max: Int32(capacity),
                                              timeoutMilliseconds: tickMilliseconds)
            now = Syscall.monotonicMicroseconds()
            for i in 0..<count {
                let token = data[i]
                if token == UInt64.max {
                    var counter: UInt64 = 0
                    _ = Glibc.read(wakeFD, &counter, 8)
                    wakeHandler?()
                    continue
                }
                let index = Int(token & 0xFFFF_FFFF)
                guard index < slots.count, generations[index] == UInt32(token >> 32),
                      let handler = slots[index] else { continue }
                let mask = events[i]
                handler._withUnsafeGuaranteedRef { $0.handleEvents(mask) }
            }
            if count == 0 || now &- lastTick >= UInt64(tickMilliseconds) * 1000 {
                lastTick = now
                tick()
            }
        }
    }
}
