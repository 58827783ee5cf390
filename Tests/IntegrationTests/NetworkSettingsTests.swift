import Foundation
import Glibc
import Testing

/// tcp_* keepalive settings on client sockets, unix_socket_group, scram_iterations and
/// conffile, as PgBouncer applies them.
@Suite struct NetworkSettingsTests {
    /// /proc/net/tcp shows the keepalive timer of the pooler's end of a client
    /// connection (timer 2, time left in USER_HZ ticks): with tcp_keepidle = 7 it runs
    /// from 7 s, where the system default is 7200 s (libpq's own end shows 7200 s).
    @Test func keepaliveSettingsReachClientSockets() throws {
        let pooler = try PoolerProcess(settings: ["tcp_keepalive = 1", "tcp_keepidle = 7", "tcp_keepintvl = 3",
                                                  "tcp_keepcnt = 4", "tcp_user_timeout = 9000"])
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }
        #expect(try client.exec("SELECT 1").scalar == "1")
        // Right after a reply the socket may still wait for the client's (delayed) ACK,
        // with the retransmit timer armed instead: poll until the keepalive timer shows.
        var timers: [Double] = []
        _ = waitUntil(timeout: 5, interval: 0.05) {
            timers = Self.keepaliveSeconds(localPort: pooler.port)
            return !timers.isEmpty
        }
        #expect(!timers.isEmpty, "no keepalive timer on the pooler's client sockets:\n\(Self.procFile("/proc/net/tcp"))")
        #expect(timers.allSatisfy { $0 <= 7.0 }, "tcp_keepidle = 7 not applied: \(timers)")
    }

    /// A /proc file read to its end (its size shows as 0, so size-based readers get nothing).
    private static func procFile(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Seconds left on the keepalive timers of established sockets bound to `localPort`.
    private static func keepaliveSeconds(localPort: Int) -> [Double] {
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let portHex = String(format: "%04X", localPort)
        var result: [Double] = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = procFile(file)
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local rem st tx:rx tr:when ...
                guard fields.count > 5, fields[1].hasSuffix(":" + portHex), fields[3] == "01" else { continue }
                let timer = fields[5].split(separator: ":")
                guard timer.count == 2, timer[0] == "02", let ticks = Int(timer[1], radix: 16) else { continue }
                result.append(Double(ticks) / ticksPerSecond)
            }
        }
        return result
    }

    @Test func unixSocketGetsTheConfiguredGroup() throws {
        // The primary group of the user the pooler runs as (it may always chown to it).
        let runAs = TestEnvironment.poolerRunAs
        let gid: gid_t = runAs.flatMap { getpwnam($0)?.pointee.pw_gid } ?? getgid()
        let group = try #require(getgrgid(gid).map { String(cString: $0.pointee.gr_name) })
        let pooler = try PoolerProcess(settings: ["unix_socket_group = \(group)", "unix_socket_mode = 0770"])
        defer { pooler.stop() }
        var info = stat()
        let path = pooler.runDirectory + "/.s.PGSQL.\(pooler.port)"
        try #require(stat(path, &info) == 0, "no unix socket at \(path)")
        #expect(info.st_gid == gid)
        #expect(info.st_mode & 0o777 == 0o770)
    }

    @Test func unknownUnixSocketGroupIsAStartupError() throws {
        #expect(throws: (any Error).self) {
            let pooler = try PoolerProcess(settings: ["unix_socket_group = no_such_group_xyz"])
            pooler.stop()
        }
    }

    /// A plaintext userlist entry gets a SCRAM secret made with scram_iterations: the
    /// server-first message says so.
    @Test func scramIterationsForPlaintextSecrets() throws {
        let pooler = try PoolerProcess(settings: ["scram_iterations = 1234"])
        defer { pooler.stop() }
        let socket = try RawSocket(port: pooler.port)
        defer { socket.close() }
        // md5app's userlist entry is its plaintext password.
        socket.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        let sasl = try #require(socket.readMessage(timeout: 10), "no authentication request\n\(pooler.diagnostics)")
        #expect(sasl.typeCharacter == "R")
        let clientFirst = Array("n,,n=,r=abcdefghijklmnopqrstuvwx".utf8)
        let body = Array("SCRAM-SHA-256".utf8) + [0] + FrontendPacket.bigEndian(UInt32(clientFirst.count)) + clientFirst
        socket.send(FrontendPacket.message("p", length: UInt32(4 + body.count), body: body))
        let serverFirst = try #require(socket.readMessage(timeout: 10), "no SASLContinue\n\(pooler.diagnostics)")
        #expect(serverFirst.typeCharacter == "R")
        let text = String(decoding: serverFirst.payload.dropFirst(4), as: UTF8.self)
        #expect(text.hasSuffix(",i=1234"), "server-first-message: \(text)")
    }

    @Test func conffileShowsTheFileInUse() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let admin = try pooler.admin()
        defer { admin.close() }
        let row = try admin.exec("SHOW CONFIG").row(where: ["key": "conffile"])
        #expect(row?["value"] == pooler.iniPath, "\(String(describing: row))")
    }
}
