import Glibc
import PoolerAdmin
import PoolerIO

/// The Prometheus endpoint: `GET /metrics` (text format 0.0.4) and `GET /healthz`,
/// served on the event loop from the same snapshot as SHOW. Requests are bounded
/// (8 KiB of headers), one per connection, answered from memory.
final class MetricsConnection: Connection {
    static let maxRequest = 8192

    override func readable() {
        guard readAvailable() else { return }
        let bytes = input.readable
        guard let end = Self.headerEnd(bytes) else {
            if bytes.count > Self.maxRequest { respond(status: "431 Request Header Fields Too Large", body: "") }
            return
        }
        let requestLine = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
            .split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        input.consume(bytes.count)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            respond(status: "400 Bad Request", body: "bad request\n")
            return
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            respond(status: "405 Method Not Allowed", body: "only GET\n", extraHeaders: "Allow: GET, HEAD\r\n")
            return
        }
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        switch path {
        case "/metrics":
            let body = MetricsRenderer.render(pooler.admin.snapshot(), process: ProcessMetricsReader.read(startTime: pooler.startTime))
            respond(status: "200 OK", body: body, contentType: MetricsRenderer.contentType, headOnly: parts[0] == "HEAD")
        case "/healthz":
            respond(status: pooler.acceptingClients ? "200 OK" : "503 Service Unavailable",
                    body: pooler.acceptingClients ? "ok\n" : "shutting down\n", headOnly: parts[0] == "HEAD")
        default:
            respond(status: "404 Not Found", body: "not found\n")
        }
    }

    private static func headerEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    private var closeAfterFlush = false

    private func respond(status: String, body: String, contentType: String = "text/plain; charset=utf-8",
                         extraHeaders: String = "", headOnly: Bool = false) {
        let bodyBytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        output.append(Array(head.utf8))
        if !headOnly { output.append(bodyBytes) }
        closeAfterFlush = true
        wantsRead = false
        flush()
    }

    override func outputDrained() {
        if closeAfterFlush { close(reason: "metrics response sent") }
    }

    override func close(reason: String) {
        guard !closed else { return }
        super.close(reason: reason)
        pooler.metricsConnections[id] = nil
    }
}

/// Process figures for the process_* metrics, from /proc.
enum ProcessMetricsReader {
    static func read(startTime: Int) -> ProcessMetrics {
        var cpu = 0.0
        if let stat = Syscall.readSmallFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // fields[0] is the state; utime and stime are the 14th and 15th fields overall.
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
                cpu = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        var resident = 0
        if let statm = Syscall.readSmallFile("/proc/self/statm") {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Int(fields[1]) { resident = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        }
        var fds = 0
        if let dir = opendir("/proc/self/fd") {
            while let entry = readdir(dir) {
                if entry.pointee.d_name.0 != UInt8(ascii: ".") { fds += 1 }
            }
            closedir(dir)
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessMetrics(cpuSeconds: cpu, residentBytes: resident, openFDs: max(fds - 1, 0),
                              maxFDs: Int(limit.rlim_cur), startTimeSeconds: Double(startTime))
    }
}

/// Accepts metrics connections.
final class MetricsListener: ListeningSocket {
    override func handleEvents(_ events: UInt32) {
        var storage = sockaddr_storage()
        for _ in 0..<16 {
            guard let clientFD = acceptNext(&storage) else { return }
            let remote = SocketAddress(storage: storage)
            let connection = MetricsConnection(pooler: pooler, fd: clientFD, remote: remote, localPort: 0)
            do {
                try connection.register()
                pooler.metricsConnections[connection.id] = connection
            } catch {
                Syscall.close(clientFD)
            }
        }
    }
}
