import Foundation
import Glibc

/// A plain TCP connection for speaking bytes the protocol forbids. Sends never
/// raise SIGPIPE; reads are bounded by a timeout.
final class RawSocket {
    private(set) var descriptor: Int32
    private var buffer: [UInt8] = []
    /// Set once the peer has closed (EOF or reset).
    private(set) var peerClosed = false

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in.loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw HarnessError("connect 127.0.0.1:\(port): \(message)")
        }
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Writes all of `bytes`; false if the peer has gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Writes `bytes` until done or until the socket has stayed full for `stall` seconds;
    /// returns how many bytes went out (the peer stopped reading if fewer than all).
    func sendUntilStalled(_ bytes: [UInt8], stall: Double = 1) -> Int {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if written > 0 {
                offset += written
                continue
            }
            if written < 0 && errno == EINTR { continue }
            guard written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) else { break }
            var writable = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            if poll(&writable, 1, Int32(stall * 1000)) <= 0 { break }
        }
        return offset
    }

    /// Reads whatever arrives within `timeout` seconds into the buffer;
    /// returns false on timeout with nothing read.
    private func fill(deadline: Deadline) -> Bool {
        guard !peerClosed else { return false }
        var descriptorSet = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let rc = poll(&descriptorSet, 1, deadline.remainingMilliseconds)
        guard rc > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 8192)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffer += chunk[0..<count]
            return true
        }
        if count < 0, errno == EINTR || errno == EAGAIN { return true }
        peerClosed = true  // 0: EOF; < 0: reset
        return false
    }

    /// The next complete backend message, or nil if none arrives in time (or
    /// the peer closed first).
    func readMessage(timeout: Double = 5) -> BackendMessage? {
        let deadline = Deadline(seconds: timeout)
        while true {
            if let message = BackendMessage.take(from: &buffer) { return message }
            if peerClosed || deadline.hasPassed { return nil }
            _ = fill(deadline: deadline)
        }
    }

    /// Reads messages until the peer closes or `timeout` passes.
    func readUntilClosed(timeout: Double = 5) -> [BackendMessage] {
        let deadline = Deadline(seconds: timeout)
        var messages: [BackendMessage] = []
        while !peerClosed && !deadline.hasPassed {
            _ = fill(deadline: deadline)
        }
        while let message = BackendMessage.take(from: &buffer) { messages.append(message) }
        return messages
    }

    /// Bytes received that do not form a complete message.
    var leftoverBytes: Int { buffer.count }

    /// Up to `count` raw bytes (fewer if the peer closes or `timeout` passes
    /// first), for one-byte answers such as the reply to SSLRequest.
    func readBytes(_ count: Int, timeout: Double = 5) -> [UInt8] {
        let deadline = Deadline(seconds: timeout)
        while buffer.count < count && !peerClosed && !deadline.hasPassed {
            _ = fill(deadline: deadline)
        }
        let taken = Array(buffer.prefix(count))
        buffer.removeFirst(taken.count)
        return taken
    }
}

/// One message from server to client: type byte and payload (length stripped).
struct BackendMessage: CustomStringConvertible {
    let type: UInt8
    let payload: [UInt8]

    var typeCharacter: Character { Character(UnicodeScalar(type)) }

    /// Removes the first complete message from `buffer`.
    static func take(from buffer: inout [UInt8]) -> BackendMessage? {
        guard buffer.count >= 5 else { return nil }
        let length = Int(buffer[1]) << 24 | Int(buffer[2]) << 16 | Int(buffer[3]) << 8 | Int(buffer[4])
        guard length >= 4 else {
            // Not a valid message; hand it over whole so the caller sees it.
            let message = BackendMessage(type: buffer[0], payload: Array(buffer[1...]))
            buffer.removeAll()
            return message
        }
        guard buffer.count >= 1 + length else { return nil }
        let message = BackendMessage(type: buffer[0], payload: Array(buffer[5..<(1 + length)]))
        buffer.removeFirst(1 + length)
        return message
    }

    /// ErrorResponse/NoticeResponse fields by code (`C` SQLSTATE, `M` message, `S` severity).
    var fields: [Character: String] {
        var result: [Character: String] = [:]
        var index = 0
        while index < payload.count, payload[index] != 0 {
            let code = Character(UnicodeScalar(payload[index]))
            index += 1
            guard let end = payload[index...].firstIndex(of: 0) else { break }
            result[code] = String(decoding: payload[index..<end], as: UTF8.self)
            index = end + 1
        }
        return result
    }

    var description: String {
        if type == UInt8(ascii: "E") || type == UInt8(ascii: "N") { return "\(typeCharacter)\(fields)" }
        return "\(typeCharacter)(\(payload.count) bytes)"
    }
}

/// Frontend packets built by hand.
enum FrontendPacket {
    /// StartupMessage, protocol 3.0, with the given parameters.
    static func startup(_ parameters: [(String, String)]) -> [UInt8] {
        var body: [UInt8] = [0, 3, 0, 0]
        for (key, value) in parameters {
            body += Array(key.utf8) + [0] + Array(value.utf8) + [0]
        }
        body.append(0)
        return bigEndian(UInt32(body.count + 4)) + body
    }

    /// A typed message with an explicit length field (which may lie).
    static func message(_ type: Character, length: UInt32, body: [UInt8] = []) -> [UInt8] {
        [type.asciiValue!] + bigEndian(length) + body
    }

    /// A typed message whose length field is right.
    static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        message(type, length: UInt32(4 + body.count), body: body)
    }

    /// Parse, Bind, Execute (unnamed statement and portal, no parameters) and Sync: a
    /// query in the extended protocol, as PQexecParams sends it.
    static func extendedQuery(_ sql: String) -> [UInt8] {
        message("P", [0] + Array(sql.utf8) + [0, 0, 0])
            + message("B", [0, 0, 0, 0, 0, 0, 0, 0])
            + message("E", [0, 0, 0, 0, 0])
            + message("S", [])
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}
