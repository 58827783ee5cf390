import Foundation

/// Extended-query frontend messages built by hand (for what libpq 15 cannot
/// send, such as a protocol-level Close of a statement).
extension FrontendPacket {
    static func typed(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        message(type, length: UInt32(4 + body.count), body: body)
    }

    private static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

    private static func int16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    static func query(_ sql: String) -> [UInt8] { typed("Q", cString(sql)) }

    /// Parse with no parameter types given.
    static func parse(_ name: String, _ sql: String) -> [UInt8] { typed("P", cString(name) + cString(sql) + int16(0)) }

    /// Bind with text parameters and text results.
    static func bind(portal: String = "", statement: String, _ parameters: [String?]) -> [UInt8] {
        var body = cString(portal) + cString(statement) + int16(0) + int16(parameters.count)
        for parameter in parameters {
            if let parameter {
                let bytes = Array(parameter.utf8)
                body += bigEndian(UInt32(bytes.count)) + bytes
            } else {
                body += bigEndian(UInt32.max)
            }
        }
        return typed("B", body + int16(0))
    }

    /// Describe of a statement ("S") or portal ("P").
    static func describe(_ kind: Character, _ name: String) -> [UInt8] { typed("D", [kind.asciiValue!] + cString(name)) }

    static func execute(portal: String = "", maxRows: UInt32 = 0) -> [UInt8] {
        typed("E", cString(portal) + bigEndian(maxRows))
    }

    /// Close of a statement ("S") or portal ("P").
    static func close(_ kind: Character, _ name: String) -> [UInt8] { typed("C", [kind.asciiValue!] + cString(name)) }

    static var sync: [UInt8] { typed("S", []) }
    static var flush: [UInt8] { typed("H", []) }
    static var terminate: [UInt8] { typed("X", []) }
}

extension BackendMessage {
    /// DataRow columns as text (nil for NULL).
    var dataRowValues: [String?] {
        guard type == UInt8(ascii: "D"), payload.count >= 2 else { return [] }
        let count = Int(payload[0]) << 8 | Int(payload[1])
        var values: [String?] = []
        var index = 2
        for _ in 0..<count {
            guard index + 4 <= payload.count else { break }
            let length = Int32(bitPattern: UInt32(payload[index]) << 24 | UInt32(payload[index + 1]) << 16
                                | UInt32(payload[index + 2]) << 8 | UInt32(payload[index + 3]))
            index += 4
            if length < 0 {
                values.append(nil)
            } else {
                let end = min(index + Int(length), payload.count)
                values.append(String(decoding: payload[index..<end], as: UTF8.self))
                index = end
            }
        }
        return values
    }

    /// ParameterDescription: the number of parameters.
    var parameterCount: Int? {
        guard type == UInt8(ascii: "t"), payload.count >= 2 else { return nil }
        return Int(payload[0]) << 8 | Int(payload[1])
    }
}

/// A hand-driven protocol client: logs in without a password (the pooler
/// must run with `auth_type = trust`) and reads replies up to ReadyForQuery.
final class RawClient {
    let socket: RawSocket

    init(port: Int, user: String = "md5app", database: String = "app_db",
         parameters: [(String, String)] = []) throws {
        socket = try RawSocket(port: port)
        socket.send(FrontendPacket.startup([("user", user), ("database", database)] + parameters))
        let login = readUntilReady(timeout: 10)
        guard login.last?.typeCharacter == "Z" else {
            throw HarnessError("raw login did not end in ReadyForQuery: \(login)")
        }
    }

    func send(_ messages: [UInt8]...) { socket.send(messages.flatMap { $0 }) }

    /// Messages up to and including the next ReadyForQuery (or whatever came
    /// before the timeout / the peer closing).
    func readUntilReady(timeout: Double = 10) -> [BackendMessage] {
        var messages: [BackendMessage] = []
        let deadline = Deadline(seconds: timeout)
        while !deadline.hasPassed, let message = socket.readMessage(timeout: deadline.remaining) {
            messages.append(message)
            if message.typeCharacter == "Z" { break }
        }
        return messages
    }

    func close() {
        socket.send(FrontendPacket.terminate)
        socket.close()
    }
}
