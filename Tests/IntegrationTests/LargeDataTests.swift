import Foundation
import Glibc
import Testing

/// Large results, parameters and COPY streams through transaction pooling.
@Suite struct LargeDataTests {
    /// 20 000 rows of 1000 bytes (about 20 MB) come back complete and in order.
    @Test func twentyMegabyteResultArrivesComplete() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }

        let plain = try client.exec("SELECT repeat('x', 1000) FROM generate_series(1, 20000)", timeout: 60)
        #expect(plain.rows.count == 20000)
        #expect(plain.rows.reduce(0) { $0 + ($1[0]?.utf8.count ?? 0) } == 20_000_000)

        let rows = try client.exec("SELECT i, repeat(chr(97 + i % 26), 1000) FROM generate_series(1, 20000) i",
                                   timeout: 60).rows
        try #require(rows.count == 20000, "got \(rows.count) rows\n\(pooler.diagnostics)")
        var bad: [Int] = []
        for (index, row) in rows.enumerated() {
            let i = index + 1
            let letter = Character(UnicodeScalar(UInt8(97 + i % 26)))
            if row[0] != String(i) || row[1] != String(repeating: letter, count: 1000) { bad.append(i) }
        }
        #expect(bad.isEmpty, "\(bad.count) rows wrong, first: \(bad.prefix(5))")
        #expect(try client.exec("SELECT 1").scalar == "1")
    }

    /// A 5 MB text parameter reaches the server intact (extended protocol) and
    /// comes back intact.
    @Test func fiveMegabyteParameterRoundTrips() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let client = try pooler.connect()
        defer { client.close() }

        // 500 000 zero-padded numbers of 10 digits: 5 000 000 bytes, no repeats.
        var parameter = ""
        parameter.reserveCapacity(5_000_000)
        for i in 1...500_000 {
            let digits = String(i)
            parameter += String(repeating: "0", count: 10 - digits.count) + digits
        }
        #expect(parameter.utf8.count == 5_000_000)

        let check = try client.execParams("""
            SELECT length($1), $1 = (SELECT string_agg(lpad(i::text, 10, '0'), '' ORDER BY i)
                                       FROM generate_series(1, 500000) i)
            """, [parameter], timeout: 20)
        #expect(check.rows.first == ["5000000", "t"], "\(check.rows)\n\(pooler.diagnostics)")

        let echo = try client.execParams("SELECT $1::text", [parameter], timeout: 20)
        let echoedIntact = echo.scalar == parameter
        #expect(echoedIntact, "the echoed parameter differs (\(echo.scalar?.utf8.count ?? -1) bytes)")

        try client.exec("BEGIN")
        #expect(try client.execParams("SELECT length($1)", [parameter], timeout: 20).scalar == "5000000")
        try client.exec("COMMIT")
        #expect(try client.exec("SELECT 1").scalar == "1")
    }

    /// psql's \copy (COPY FROM STDIN / TO STDOUT on the wire) with 10 000 rows.
    @Test func copyInAndOutThroughPsql() throws {
        let pooler = try PoolerProcess()
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copy")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int PRIMARY KEY, note text NOT NULL)")

        var input = ""
        for n in 1...10_000 { input += "\(n)\trow \(n) \(String(repeating: "abc", count: n % 50))\n" }
        let inPath = pooler.runDirectory + "/copy-in.tsv"
        let outPath = pooler.runDirectory + "/copy-out.tsv"
        try writeTextFile(inPath, input)

        func psql(_ command: String) throws -> Subprocess.Output {
            try ClientTools.psql(["-h", "127.0.0.1", "-p", String(pooler.port), "-U", "app", "-d", "app_db",
                                  "-v", "ON_ERROR_STOP=1", "-c", command], password: "app", timeout: 60)
        }

        let copyIn = try psql("\\copy \(table) FROM '\(inPath)'")
        #expect(copyIn.status == 0, "\(copyIn)\n\(pooler.diagnostics)")
        #expect(copyIn.stdout.contains("COPY 10000"), "\(copyIn)")
        #expect(try owner.exec("SELECT count(*), sum(n) FROM \(table)").rows.first == ["10000", "50005000"])

        let copyOut = try psql("\\copy (SELECT * FROM \(table) ORDER BY n) TO '\(outPath)'")
        #expect(copyOut.status == 0, "\(copyOut)\n\(pooler.diagnostics)")
        #expect(copyOut.stdout.contains("COPY 10000"), "\(copyOut)")
        let output = readTextFile(outPath)
        #expect(output.split(separator: "\n").count == 10000)
        let sameRows = output == input
        #expect(sameRows, "COPY TO output differs from what COPY FROM loaded")

        // A COPY that fails midway (duplicate key) leaves the pooler and the pool usable.
        let duplicate = try psql("\\copy \(table) FROM '\(inPath)'")
        #expect(duplicate.status != 0, "duplicate keys must fail: \(duplicate)")
        #expect(duplicate.stderr.contains("23505") || duplicate.stderr.contains("duplicate key"), "\(duplicate)")
        let client = try pooler.connect()
        defer { client.close() }
        do {
            #expect(try client.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "10000")
        } catch {
            Issue.record("after the failed COPY, a new client's query failed: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// A 20 MB Query queued behind a query that keeps the server from reading
    /// for a second: the pooler must stop at the full server socket and go on
    /// when it drains (not drop or stall the rest of the message).
    @Test func bigMessageToABusyServerIsForwardedWhole() throws {
        // trust: the raw client logs in without SCRAM; md5app's plaintext
        // secret lets the pooler log in to Postgres.
        let pooler = try PoolerProcess(settings: ["auth_type = trust"])
        defer { pooler.stop() }
        let socket = try RawSocket(port: pooler.port)
        socket.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var login: [BackendMessage] = []
        while let message = socket.readMessage(timeout: 10) {
            login.append(message)
            if message.typeCharacter == "Z" || message.typeCharacter == "E" { break }
        }
        try #require(login.last?.typeCharacter == "Z", "trust login should end in ReadyForQuery: \(login)")

        func query(_ sql: String) -> [UInt8] {
            FrontendPacket.message("Q", length: UInt32(4 + sql.utf8.count + 1), body: Array(sql.utf8) + [0])
        }
        let size = 20_000_000
        let bytes = query("SELECT pg_sleep(1)") + query("SELECT length('" + String(repeating: "x", count: size) + "')")
        let descriptor = socket.descriptor
        let sent = Threads.runWithTimeout(15) { () -> Bool in
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
        #expect(sent == true, "sending 20 MB did not finish within 15 s (nil) or failed (false)\n\(pooler.diagnostics)")

        var replies: [BackendMessage] = []
        var readyCount = 0
        let deadline = Deadline(seconds: 15)
        while readyCount < 2, !deadline.hasPassed, let message = socket.readMessage(timeout: deadline.remaining) {
            replies.append(message)
            if message.typeCharacter == "Z" { readyCount += 1 }
        }
        #expect(readyCount == 2, "expected two ReadyForQuery, got \(replies)\n\(pooler.diagnostics)")
        #expect(!replies.contains { $0.typeCharacter == "E" }, "\(replies)")
        let values = replies.filter { $0.typeCharacter == "D" }.compactMap { row -> String? in
            // DataRow: Int16 column count, then Int32 length + bytes per column.
            guard row.payload.count >= 6 else { return nil }
            let length = Int(row.payload[2]) << 24 | Int(row.payload[3]) << 16 | Int(row.payload[4]) << 8
                | Int(row.payload[5])
            guard length >= 0, row.payload.count >= 6 + length else { return nil }
            return String(decoding: row.payload[6..<(6 + length)], as: UTF8.self)
        }
        #expect(values.last == String(size), "DataRows: \(values)")
    }
}
