import Foundation
import Testing

/// libpq pipeline mode in transaction pooling: several Syncs in flight on one
/// client while another client shares the only server.
@Suite struct PipelinePoolingTests {
    @Test func pipelinedSyncsArriveInOrderOnASharedServer() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let table = TestEnvironment.uniqueName("pipe")
        let owner = try pooler.cluster.directConnection()
        defer { owner.close() }
        try owner.exec("CREATE TABLE \(table) (n int PRIMARY KEY)")

        let piped = try pooler.connect()
        defer { piped.close() }
        let other = try pooler.connect()
        defer { other.close() }

        // The other client keeps the single server busy in short transactions
        // until the pipelining client is done.
        let done = AtomicFlag()
        let outcomes = Threads.run(count: 2) { index -> String? in
            if index == 1 {
                var count = 0
                defer { _ = count }
                do {
                    while !done.isSet || count < 20 {
                        try other.exec("BEGIN")
                        guard try other.execParams("SELECT $1::int * 3", [String(count)]).scalar == String(count * 3)
                        else { return "other client: wrong answer in round \(count)" }
                        try other.exec("COMMIT")
                        count += 1
                        if count > 100_000 { return "other client: never told to stop" }
                    }
                    return nil
                } catch {
                    return "other client, round \(count): \(error)"
                }
            }
            defer { done.set() }
            var results: [String] = []
            for round in 0..<5 {
                do {
                    let items = try piped.pipeline(Self.steps(table: table, round: round), timeout: 30)
                    let expected = Self.expected(round: round)
                    if items != expected {
                        results.append("round \(round): got\n  \(items)\nexpected\n  \(expected)")
                    }
                } catch {
                    results.append("round \(round): \(error)")
                    break
                }
            }
            return results.isEmpty ? nil : results.joined(separator: "\n")
        }
        #expect(outcomes[0] == nil, "\(outcomes[0] ?? "")\n\(pooler.diagnostics)")
        #expect(outcomes[1] == nil, "\(outcomes[1] ?? "")\n\(pooler.diagnostics)")

        // Committed rows: rounds insert 10*round+1 and +2 (the failed part
        // inserts nothing).
        let rows = try owner.exec("SELECT count(*), sum(n) FROM \(table)").rows.first
        #expect(rows == ["10", String((0..<5).map { 20 * $0 + 3 }.reduce(0, +))], "\(String(describing: rows))")
        #expect(try piped.exec("SELECT 'after'").scalar == "after")
    }

    /// One round: four syncs sent back to back before any result is read.
    private static func steps(table: String, round: Int) -> [PQConnection.PipelineStep] {
        var steps: [PQConnection.PipelineStep] = []
        // 1: prepare (first round only: the name lives on) + parameterised queries.
        if round == 0 { steps.append(.prepare("p1", "SELECT $1::int * 2, $2::text")) }
        for i in 0..<4 { steps.append(.query("SELECT $1::int + \(round)", [String(i)])) }
        steps.append(.executePrepared("p1", [String(round), "r\(round)"]))
        steps.append(.sync)
        // 2: an explicit transaction spread over one sync.
        steps.append(.query("BEGIN", []))
        steps.append(.query("INSERT INTO \(table) VALUES ($1)", [String(10 * round + 1)]))
        steps.append(.executePrepared("p1", ["21", "in-tx"]))
        steps.append(.query("INSERT INTO \(table) VALUES ($1)", [String(10 * round + 2)]))
        steps.append(.query("COMMIT", []))
        steps.append(.sync)
        // 3: an error aborts the rest of its sync.
        steps.append(.query("INSERT INTO \(table) VALUES ($1)", [String(10 * round + 5)]))
        steps.append(.query("SELECT 1 / $1::int", ["0"]))
        steps.append(.query("SELECT 'skipped'", []))
        steps.append(.executePrepared("p1", ["1", "skipped"]))
        steps.append(.sync)
        // 4: the pipeline recovers after the sync.
        steps.append(.executePrepared("p1", ["100", "after-error"]))
        steps.append(.query("SELECT count(*) FROM \(table) WHERE n = $1", [String(10 * round + 5)]))
        steps.append(.sync)
        return steps
    }

    private static func expected(round: Int) -> [PQConnection.PipelineItem] {
        var items: [PQConnection.PipelineItem] = []
        if round == 0 { items.append(.command("")) }
        for i in 0..<4 { items.append(.rows([[String(i + round)]])) }
        items.append(.rows([[String(round * 2), "r\(round)"]]))
        items.append(.sync)
        items += [.command("BEGIN"), .command("INSERT 0 1"), .rows([["42", "in-tx"]]), .command("INSERT 0 1"),
                  .command("COMMIT"), .sync]
        items += [.command("INSERT 0 1"), .error(sqlstate: "22012", message: "division by zero"), .aborted, .aborted,
                  .sync]
        items += [.rows([["200", "after-error"]]), .rows([["0"]]), .sync]
        return items
    }
}
