import Foundation
import Glibc

/// A minimal HTTP/1.1 client for the metrics endpoint: one request, read to close.
enum HTTPGet {
    struct Response {
        var status: Int
        var headers: String
        var body: String
    }

    static func request(port: Int, raw: String, timeout: Double = 10) throws -> Response {
        let socket = try RawSocket(port: port)
        defer { socket.close() }
        socket.send(Array(raw.utf8))
        let bytes = socket.readAllBytes(timeout: timeout)
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError("no HTTP response: \(text.prefix(200))") }
        let head = String(text[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Response(status: status, headers: head, body: String(text[split.upperBound...]))
    }

    static func get(port: Int, path: String, timeout: Double = 10) throws -> Response {
        try request(port: port, raw: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout: timeout)
    }
}

extension RawSocket {
    /// Every byte until the peer closes (or the timeout).
    func readAllBytes(timeout: Double) -> [UInt8] {
        let deadline = Deadline(seconds: timeout)
        var collected: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !deadline.hasPassed {
            var descriptorSet = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptorSet, 1, deadline.remainingMilliseconds) > 0 else { break }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            collected.append(contentsOf: chunk[0..<count])
        }
        return collected
    }
}
