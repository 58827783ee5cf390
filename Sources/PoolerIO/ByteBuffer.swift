import CLinuxShims
/// A growable byte region with read and write indices. Storage is allocated lazily
/// and can be released while a connection is idle, so idle connections cost nothing.
public struct ByteBuffer {
    public var storage: UnsafeMutableRawPointer?
    public var capacity: Int = 0
    public var readIndex: Int = 0
    public var writeIndex: Int = 0

    public init() {}

    @inlinable public var readableCount: Int { writeIndex - readIndex }
    @inlinable public var isEmpty: Bool { writeIndex == readIndex }
    @inlinable public var writableCount: Int { capacity - writeIndex }

    /// The unread bytes.
    @inlinable public var readable: UnsafeRawBufferPointer {
        guard let storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: storage + readIndex, count: writeIndex - readIndex)
    }

    /// Makes room for at least `count` more bytes, compacting before growing.
    public mutating func reserveWritable(_ count: Int) {
        if writableCount >= count { return }
        if storage == nil {
            // The usual case: an idle connection borrows a buffer for its next read
            // (empty, so the indices are 0 and there is nothing to keep).
            let newCapacity = Self.sizeClass(for: count)
            storage = BufferFreeList.take(capacity: newCapacity)
            capacity = newCapacity
            return
        }
        if readIndex > 0 {
            let unread = readableCount
            if unread > 0, let storage { storage.copyMemory(from: storage + readIndex, byteCount: unread) }
            readIndex = 0
            writeIndex = unread
            if writableCount >= count { return }
        }
        let newCapacity = max(capacity, Self.sizeClass(for: writeIndex + count))
        let newStorage = BufferFreeList.take(capacity: newCapacity)
        if let storage {
            if writeIndex > 0 { newStorage.copyMemory(from: storage, byteCount: writeIndex) }
            BufferFreeList.give(storage, capacity: capacity)
        }
        storage = newStorage
        capacity = newCapacity
    }

    /// The next power of two holding `needed` (> 0) bytes, at least 1 KiB: the free
    /// list's size classes.
    @inline(__always)
    static func sizeClass(for needed: Int) -> Int {
        max(1024, 1 << (Int.bitWidth - (needed - 1).leadingZeroBitCount))
    }

    /// The writable tail after `reserveWritable`.
    @inlinable public var writablePointer: UnsafeMutableRawPointer { storage! + writeIndex }

    @inlinable public mutating func didWrite(_ count: Int) { writeIndex += count }

    @inlinable public mutating func consume(_ count: Int) {
        readIndex += count
        if readIndex == writeIndex {
            readIndex = 0
            writeIndex = 0
        }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserveWritable(bytes.count)
        writablePointer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        writeIndex += bytes.count
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Frees the storage when nothing is buffered (an idle connection).
    public mutating func releaseIfEmpty() {
        guard isEmpty, let storage else { return }
        BufferFreeList.give(storage, capacity: capacity)
        self.storage = nil
        capacity = 0
        readIndex = 0
        writeIndex = 0
    }

    /// Frees the storage unconditionally (connection closed).
    public mutating func deallocate() {
        if let storage { BufferFreeList.give(storage, capacity: capacity) }
        storage = nil
        capacity = 0
        readIndex = 0
        writeIndex = 0
    }
}

/// Recycled buffer storage, by power-of-two size class from 1 KiB to 64 KiB: a connection
/// borrows a buffer while it has bytes to hold and returns it when idle, without a
/// malloc/free pair per transaction. The lists are per thread (C thread-locals), so each
/// event loop has its own and no lock is taken; a block may go back on another thread.
public enum BufferFreeList {
    @inline(__always)
    public static func take(capacity: Int) -> UnsafeMutableRawPointer {
        pooler_buffer_take(capacity)
    }

    @inline(__always)
    public static func give(_ storage: UnsafeMutableRawPointer, capacity: Int) {
        pooler_buffer_give(storage, capacity)
    }
}
