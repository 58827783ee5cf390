/// A run of consecutive frames in a connection's read buffer, forwarded without copying
/// them into the peer's output buffer when the peer has nothing queued (see
/// `ServerConnection.forwardToClient`). Valid only until the read buffer changes.
struct BorrowedRun {
    private var start: UnsafeRawPointer?
    private var count = 0

    /// Nothing pending (checked before loading the peer, which costs a retain).
    var isEmpty: Bool { count == 0 }

    /// Adds bytes that follow the run (or starts a new one after flushing a gap).
    @inline(__always)
    mutating func add(_ bytes: UnsafeRawBufferPointer, peer: Connection) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if let start, start + count == base {
            count += bytes.count
            return
        }
        flush(to: peer)
        start = base
        count = bytes.count
    }

    /// Copies the run into the peer's output buffer (something else follows it).
    mutating func flush(to peer: Connection) {
        guard let start, count > 0 else { return }
        defer { self.start = nil; count = 0 }
        guard !peer.closed else { return }
        peer.output.append(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The end of a batch: straight to the socket when possible, the rest buffered.
    mutating func send(to peer: Connection) {
        guard let start, count > 0 else { return }
        peer.sendBorrowed(UnsafeRawBufferPointer(start: start, count: count))
        self.start = nil
        count = 0
    }
}
