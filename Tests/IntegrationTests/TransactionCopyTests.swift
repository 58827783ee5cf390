import Foundation
import Testing

/// COPY through libpq (PQputCopyData / PQgetCopyData) in transaction mode.
@Suite struct TransactionCopyTests {
    static let rowCount = 100_000

    /// Row n of the data set: `n<TAB>text` with a length varying from 20 to
    /// 179 bytes; about 10.5 MB in all.
    static func row(_ n: Int) -> [UInt8] {
        let letter = UInt8(97 + n % 26)
        return Array("\(n)\t".utf8) + [UInt8](repeating: letter, count: 20 + (n * 7919) % 160) + [10]
    }

    /// FNV-1a over the bytes.
    static func checksum(_ bytes: [UInt8], into hash: inout UInt64) {
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
    }

    @Test func tenMegabytesInAndOutOnOneServer() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copytx")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int PRIMARY KEY, note text NOT NULL)")

        // The input, in 64 KB chunks, with its checksum and size.
        var chunks: [[UInt8]] = []
        var chunk: [UInt8] = []
        var inputHash: UInt64 = 0xcbf2_9ce4_8422_2325
        var inputBytes = 0
        var lengthSum = 0
        for n in 1...Self.rowCount {
            let line = Self.row(n)
            Self.checksum(line, into: &inputHash)
            inputBytes += line.count
            lengthSum += line.count - "\(n)\t".utf8.count - 1
            chunk += line
            if chunk.count >= 65536 {
                chunks.append(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { chunks.append(chunk) }
        #expect(inputBytes >= 10_000_000)

        let writer = try pooler.connect()
        defer { writer.close() }
        // A second client shares the single server between the COPYs.
        let other = try pooler.connect()
        defer { other.close() }

        let started = monotonicSeconds()
        let tag = try writer.copyIn("COPY \(table) FROM STDIN", chunks: chunks, timeout: 60)
        #expect(tag == "COPY \(Self.rowCount)", "\(tag)\n\(pooler.diagnostics)")
        #expect(try other.exec("SELECT count(*) FROM \(table)").scalar == String(Self.rowCount))
        let sums = try owner.exec("SELECT count(*), sum(n), sum(length(note)) FROM \(table)").rows.first
        #expect(sums == [String(Self.rowCount), String(Self.rowCount * (Self.rowCount + 1) / 2), String(lengthSum)])

        // Out again, inside an explicit transaction, with the other client in between.
        try writer.exec("BEGIN")
        var outputHash: UInt64 = 0xcbf2_9ce4_8422_2325
        var outputBytes = 0
        var outputRows = 0
        let outTag = try writer.copyOut("COPY (SELECT n, note FROM \(table) ORDER BY n) TO STDOUT", timeout: 60) { row in
            outputRows += 1
            outputBytes += row.count
            for byte in row {
                outputHash ^= UInt64(byte)
                outputHash = outputHash &* 0x100_0000_01b3
            }
        }
        try writer.exec("COMMIT")
        #expect(outTag == "COPY \(Self.rowCount)")
        #expect(outputRows == Self.rowCount)
        #expect(outputBytes == inputBytes)
        #expect(outputHash == inputHash, "COPY TO STDOUT differs from what COPY FROM STDIN loaded")
        #expect(monotonicSeconds() - started < 60)
        #expect(try other.exec("SELECT 'other'").scalar == "other")
    }

    /// COPY FROM STDIN in the extended protocol (PQexecParams, tokio-postgres' copy_in):
    /// the client sends Sync after Execute and again after CopyDone, PostgreSQL ignores
    /// the first (it is in copy-in) and answers one ReadyForQuery. The server must be
    /// released at that ReadyForQuery (PgBouncer issue 1023): with one server, the next
    /// client gets it.
    @Test func extendedProtocolCopyInReleasesTheServer() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "query_wait_timeout = 10"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copyext")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int PRIMARY KEY, note text NOT NULL)")
        let client = try pooler.connect()
        defer { client.close() }
        for round in 0..<2 {
            let rows = (1...100).map { Self.row(round * 100 + $0) }
            let tag = try client.copyIn("COPY \(table) FROM STDIN", chunks: rows, timeout: 20, extended: true)
            #expect(tag == "COPY 100", "\(tag)\n\(pooler.diagnostics)")
            #expect(try client.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "\((round + 1) * 100)")
        }
        // One that the server fails half-way (a bad row): still one ReadyForQuery.
        var copyError: PQError?
        do {
            _ = try client.copyIn("COPY \(table) FROM STDIN", chunks: [Self.row(1000), Array("bad\trow\n".utf8)],
                                  timeout: 20, extended: true)
        } catch let error as PQError {
            copyError = error
        }
        #expect(copyError?.sqlstate == "22P02", "\(String(describing: copyError))\n\(pooler.diagnostics)")
        #expect(try client.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "200")
        let next = try pooler.connect()
        defer { next.close() }
        do {
            #expect(try next.exec("SELECT 'next'", timeout: 15).scalar == "next")
        } catch {
            Issue.record("the next client did not get the only server after an extended COPY: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// A client that leaves in the middle of an extended-protocol COPY FROM STDIN (after
    /// the CopyInResponse, its Sync ignored by the server): the server is still in the
    /// copy and must not serve the next client; and one that sends CopyDone and the
    /// last Sync before the CopyInResponse arrives is answered once and leaves the
    /// server clean.
    @Test func extendedCopyInLeftOrPipelined() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "auth_type = trust", "query_wait_timeout = 10"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copyleft")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int)")
        try owner.exec("GRANT ALL ON \(table) TO md5app")
        func rawClient() throws -> RawSocket {
            let client = try RawSocket(port: pooler.port)
            client.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
            var ready = false
            while !ready, let message = client.readMessage(timeout: 10) { ready = message.typeCharacter == "Z" }
            try #require(ready, "the raw client did not log in\n\(pooler.diagnostics)")
            return client
        }
        let leaver = try rawClient()
        leaver.send(FrontendPacket.extendedQuery("COPY \(table) FROM STDIN"))
        var copying = false
        while !copying, let message = leaver.readMessage(timeout: 10) { copying = message.typeCharacter == "G" }
        try #require(copying, "no CopyInResponse\n\(pooler.diagnostics)")
        leaver.close()

        let pipeliner = try rawClient()
        defer { pipeliner.close() }
        pipeliner.send(FrontendPacket.extendedQuery("COPY \(table) FROM STDIN")
                       + FrontendPacket.message("d", Array("7\n".utf8)) + FrontendPacket.message("c", [])
                       + FrontendPacket.message("S", []))
        var types: [Character] = []
        while let message = pipeliner.readMessage(timeout: 10) {
            types.append(message.typeCharacter)
            if message.typeCharacter == "Z" { break }
        }
        #expect(types.last == "Z" && types.contains("C") && !types.contains("E"), "\(types)\n\(pooler.diagnostics)")
        #expect(pipeliner.readMessage(timeout: 0.3) == nil, "a second ReadyForQuery or more came")

        let next = try pooler.connect(user: "md5app")
        defer { next.close() }
        do {
            #expect(try next.exec("SELECT count(*) FROM \(table)", timeout: 15).scalar == "1")
        } catch {
            Issue.record("the next client failed after a client left an extended COPY: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// A client that dies half-way through a large CopyData frame after PostgreSQL
    /// already failed the COPY (and said ReadyForQuery): the rest of that frame never
    /// comes, so the server is not reused (the next client's bytes would be read as the
    /// frame's tail).
    @Test func clientDyingInsideACopyDataFrameDoesNotPoisonTheServer() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1", "auth_type = trust"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copyhalf")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int)")
        try owner.exec("GRANT ALL ON \(table) TO md5app")
        let client = try RawSocket(port: pooler.port)
        client.send(FrontendPacket.startup([("user", "md5app"), ("database", "app_db")]))
        var ready = false
        while !ready, let message = client.readMessage(timeout: 10) { ready = message.typeCharacter == "Z" }
        try #require(ready, "the raw client did not log in\n\(pooler.diagnostics)")
        let sql = Array("COPY \(table) FROM STDIN".utf8) + [0]
        client.send(FrontendPacket.message("Q", length: UInt32(4 + sql.count), body: sql))
        var copying = false
        while !copying, let message = client.readMessage(timeout: 10) { copying = message.typeCharacter == "G" }
        try #require(copying, "no CopyInResponse\n\(pooler.diagnostics)")
        // A bad row, then the start of a 100 kB CopyData frame.
        let bad = Array("not-a-number\n".utf8)
        client.send(FrontendPacket.message("d", length: UInt32(4 + bad.count), body: bad))
        client.send(FrontendPacket.message("d", length: 4 + 100_000, body: Array(repeating: UInt8(ascii: "1"), count: 5_000)))
        var failed = false
        var answered = false
        while let message = client.readMessage(timeout: 10) {
            if message.typeCharacter == "E" { failed = true }
            if message.typeCharacter == "Z" { answered = true; break }
        }
        try #require(failed && answered, "the COPY did not fail\n\(pooler.diagnostics)")
        client.close()
        let next = try pooler.connect(user: "md5app")
        defer { next.close() }
        do {
            #expect(try next.exec("SELECT 'clean'", timeout: 10).scalar == "clean")
        } catch {
            Issue.record("the next client failed after a client died inside a CopyData frame: \(error)\n\(pooler.diagnostics)")
        }
    }

    /// A COPY FROM STDIN that fails on a bad row half-way through 10 MB: the
    /// client gets the error and the pool's single server serves the next
    /// clients.
    @Test func failedCopyLeavesTheSingleServerUsable() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("copybad")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int PRIMARY KEY, note text NOT NULL)")

        var chunks: [[UInt8]] = []
        var chunk: [UInt8] = []
        for n in 1...Self.rowCount {
            chunk += n == Self.rowCount / 2 ? Array("not-a-number\tbad row\n".utf8) : Self.row(n)
            if chunk.count >= 65536 {
                chunks.append(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { chunks.append(chunk) }

        let client = try pooler.connect()
        defer { client.close() }
        var copyError: PQError?
        do {
            _ = try client.copyIn("COPY \(table) FROM STDIN", chunks: chunks, timeout: 60)
        } catch let error as PQError {
            copyError = error
        }
        #expect(copyError?.sqlstate == "22P02", "bad row: \(String(describing: copyError))\n\(pooler.diagnostics)")
        #expect(try client.exec("SELECT 'same client'").scalar == "same client")

        let next = try pooler.connect()
        defer { next.close() }
        do {
            #expect(try next.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "0")
            #expect(try next.execParams("SELECT $1::text", ["next client"], timeout: 10).scalar == "next client")
        } catch {
            Issue.record("after the failed COPY, the next client failed: \(error)\n\(pooler.diagnostics)")
        }

        // A client that abandons a COPY half-way (PQputCopyEnd with an error
        // message = CopyFail) also leaves the server clean.
        let quitter = try pooler.connect()
        defer { quitter.close() }
        var failError: PQError?
        do {
            _ = try quitter.copyIn("COPY \(table) FROM STDIN", chunks: [Self.row(1), Self.row(2)], timeout: 10,
                                   failMessage: "client gave up")
        } catch let error as PQError {
            failError = error
        }
        #expect(failError?.sqlstate == "57014", "CopyFail: \(String(describing: failError))")
        #expect(try next.exec("SELECT count(*) FROM \(table)", timeout: 10).scalar == "0")
        #expect(try quitter.exec("SELECT 'quitter'").scalar == "quitter")
    }
}
