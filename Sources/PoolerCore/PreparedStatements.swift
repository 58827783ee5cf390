/// One distinct prepared statement, shared by every client that prepared the same
/// query with the same parameter types, under a pooler-wide server name.
public struct PreparedStatement: Sendable {
    public let id: Int
    /// Name used on servers (PgBouncer uses the same scheme).
    public var serverName: String { Self.serverName(id) }

    public static func serverName(_ id: Int) -> String { "PGBOUNCER_\(id)" }

    /// Room `writeServerName` needs: the prefix, the digits of any Int, the NUL.
    public static let serverNameCapacity = 32

    /// Writes `serverName(id)` and a NUL into `buffer` (at least `serverNameCapacity`
    /// bytes) without building a String; returns the bytes written.
    public static func writeServerName(_ id: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let prefix: StaticString = "PGBOUNCER_"
        var count = prefix.utf8CodeUnitCount
        buffer.baseAddress!.copyMemory(from: prefix.utf8Start, byteCount: count)
        if id < 0 { buffer[count] = UInt8(ascii: "-"); count += 1 }
        let first = count
        var rest = id.magnitude
        repeat {
            buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            count += 1
        } while rest > 0
        var low = first, high = count - 1
        while low < high {
            buffer.swapAt(low, high)
            low += 1
            high -= 1
        }
        buffer[count] = 0
        return count + 1
    }
    /// Parse payload after the name: query text NUL, Int16 count, Int32 type OIDs.
    public let body: [UInt8]
    /// Clients referring to it; the registry forgets it at zero.
    public var references: Int
}

/// The pooler-wide table of distinct statements (one per event loop for now).
public struct PreparedStatementRegistry: Sendable {
    private var byBody: [[UInt8]: Int] = [:]
    private var statements: [Int: PreparedStatement] = [:]
    private var nextID = 1

    public init() {}

    public var count: Int { statements.count }

    public func statement(_ id: Int) -> PreparedStatement? { statements[id] }

    /// The id for this Parse body, creating it if new; counts one more reference.
    public mutating func retain(body: [UInt8]) -> Int {
        if let id = byBody[body] {
            statements[id]!.references += 1
            return id
        }
        let id = nextID
        nextID += 1
        byBody[body] = id
        statements[id] = PreparedStatement(id: id, body: body, references: 1)
        return id
    }

    public mutating func release(_ id: Int) {
        guard var statement = statements[id] else { return }
        statement.references -= 1
        if statement.references <= 0 {
            statements[id] = nil
            byBody[statement.body] = nil
        } else {
            statements[id] = statement
        }
    }
}

/// A client's own statement names mapped to registry ids.
public struct ClientStatements: Sendable {
    private(set) public var byName: [String: Int] = [:]
    /// The name `id(named:)` found last and its id (-1: none): drivers bind the same few
    /// names over and over, so most lookups need neither a String nor a hash.
    private var lastName: [UInt8] = []
    private var lastID = -1

    public init() {}

    public var count: Int { byName.count }

    public subscript(name: String) -> Int? { byName[name] }

    /// The id bound to the name in `bytes` (UTF-8, no NUL).
    public mutating func id(named bytes: UnsafeRawBufferPointer) -> Int? {
        if lastID >= 0, lastName.count == bytes.count, lastName.withUnsafeBytes({ $0.elementsEqual(bytes) }) {
            return lastID
        }
        guard let id = byName[String(decoding: bytes, as: UTF8.self)] else { return nil }
        lastName = Array(bytes)
        lastID = id
        return id
    }

    /// Binds `name` to `id`; returns the id it replaced (to release), if any.
    public mutating func set(_ name: String, to id: Int) -> Int? {
        lastID = -1
        return byName.updateValue(id, forKey: name)
    }

    public mutating func remove(_ name: String) -> Int? {
        lastID = -1
        return byName.removeValue(forKey: name)
    }

    public mutating func removeAll() -> [Int] {
        lastID = -1
        defer { byName.removeAll() }
        return Array(byName.values)
    }
}

/// What one server has prepared, least recently used evicted first.
public struct ServerStatementCache: Sendable {
    private var lastUse: [Int: UInt64] = [:]
    private var clock: UInt64 = 0
    public let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public var count: Int { lastUse.count }

    public func contains(_ id: Int) -> Bool { lastUse[id] != nil }

    /// Marks `id` as used now.
    public mutating func touch(_ id: Int) {
        clock += 1
        lastUse[id] = clock
    }

    /// `contains` and `touch` in one lookup (every execution of a prepared statement):
    /// false when the server lacks `id`, which is then left out.
    public mutating func touchIfPresent(_ id: Int) -> Bool {
        guard let index = lastUse.index(forKey: id) else { return false }
        clock += 1
        lastUse.values[index] = clock
        return true
    }

    /// Adds `id`; returns the id evicted to make room (the caller closes it on the server).
    public mutating func insert(_ id: Int) -> Int? {
        var evicted: Int?
        if lastUse[id] == nil, capacity > 0, lastUse.count >= capacity,
           let victim = lastUse.min(by: { $0.value < $1.value })?.key {
            lastUse[victim] = nil
            evicted = victim
        }
        touch(id)
        return evicted
    }

    public mutating func remove(_ id: Int) { lastUse[id] = nil }

    public mutating func removeAll() { lastUse.removeAll() }
}
