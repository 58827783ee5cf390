import Foundation
import Testing

/// Session parameters follow the client, not the server, in transaction
/// mode: on a single shared server each client keeps seeing what it SET (or
/// asked for at startup), and never what another client SET.
@Suite struct SessionParameterSyncTests {
    @Test func setValuesStayWithTheirClientOnOneSharedServer() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let direct = try pooler.cluster.directConnection()
        defer { direct.close() }
        let defaultPath = try #require(try direct.exec("SHOW search_path").scalar)
        let defaultZone = try #require(try direct.exec("SHOW TimeZone").scalar)
        #expect(defaultPath == "\"$user\", public")
        try #require(defaultZone != "Asia/Tokyo")

        let a = try pooler.connect()
        defer { a.close() }
        let b = try pooler.connect()
        defer { b.close() }
        #expect(try a.exec("SELECT pg_backend_pid()").scalar == b.exec("SELECT pg_backend_pid()").scalar,
                "a pool of 1 should put both clients on one backend")

        try a.exec("SET search_path TO a_schema, public")
        try a.exec("SET TimeZone TO 'Asia/Tokyo'")
        try a.exec("SELECT set_config('myapp.user', 'alice', false)")

        var problems: [String] = []
        func check(_ what: String, _ actual: String?, _ expected: [String?]) {
            if !expected.contains(where: { $0 == actual }) {
                problems.append("\(what): got \(actual.map { "'\($0)'" } ?? "NULL"), expected \(expected)")
            }
        }
        for round in 0..<4 {
            check("round \(round) A search_path", try a.exec("SHOW search_path").scalar, ["a_schema, public"])
            check("round \(round) B search_path", try b.exec("SHOW search_path").scalar, [defaultPath])
            check("round \(round) A TimeZone", try a.exec("SHOW TimeZone").scalar, ["Asia/Tokyo"])
            check("round \(round) B TimeZone", try b.exec("SHOW TimeZone").scalar, [defaultZone])
            check("round \(round) A myapp.user",
                  try a.execParams("SELECT current_setting($1, true)", ["myapp.user"]).scalar, ["alice"])
            // Once the placeholder exists on a backend, RESET leaves '' rather than NULL.
            check("round \(round) B myapp.user",
                  try b.execParams("SELECT current_setting($1, true)", ["myapp.user"]).scalar, [nil, ""])
            // Inside a transaction too, and with the extended protocol.
            try b.exec("BEGIN")
            check("round \(round) B in tx TimeZone", try b.execParams("SELECT current_setting('TimeZone')", []).scalar,
                  [defaultZone])
            try b.exec("COMMIT")
            try a.exec("BEGIN")
            check("round \(round) A in tx search_path",
                  try a.execParams("SELECT current_setting('search_path')", []).scalar, ["a_schema, public"])
            try a.exec("COMMIT")
        }
        // What the clients were told (ParameterStatus) follows too.
        check("A's reported TimeZone", a.parameterStatus("TimeZone"), ["Asia/Tokyo"])
        check("B's reported TimeZone", b.parameterStatus("TimeZone"), [defaultZone])

        // RESET brings A back to the default; B is unaffected.
        try a.exec("RESET search_path")
        check("A search_path after RESET", try a.exec("SHOW search_path").scalar, [defaultPath])
        check("B search_path after A's RESET", try b.exec("SHOW search_path").scalar, [defaultPath])
        check("A TimeZone after RESET search_path", try a.exec("SHOW TimeZone").scalar, ["Asia/Tokyo"])

        // SET LOCAL and set_config(..., true) end with their transaction.
        try b.exec("BEGIN")
        try b.exec("SET LOCAL TimeZone TO 'America/New_York'")
        try b.exec("SELECT set_config('myapp.user', 'mallory', true)")
        check("B SET LOCAL", try b.exec("SHOW TimeZone").scalar, ["America/New_York"])
        try b.exec("COMMIT")
        check("B after SET LOCAL", try b.exec("SHOW TimeZone").scalar, [defaultZone])
        check("A after B's SET LOCAL", try a.exec("SHOW TimeZone").scalar, ["Asia/Tokyo"])
        check("A myapp.user after B's local set_config",
              try a.execParams("SELECT current_setting($1, true)", ["myapp.user"]).scalar, ["alice"])
        check("B myapp.user after its local set_config",
              try b.execParams("SELECT current_setting($1, true)", ["myapp.user"]).scalar, [nil, ""])

        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))\n\(pooler.diagnostics)")
    }

    /// application_name from the startup packet is per client even though
    /// the clients share one backend.
    @Test func startupApplicationNameIsPerClient() throws {
        let pooler = try PoolerProcess(settings: ["default_pool_size = 1"])
        defer { pooler.stop() }
        let foo = try pooler.connect(extra: ["application_name": "foo"])
        defer { foo.close() }
        let bar = try pooler.connect(extra: ["application_name": "bar"])
        defer { bar.close() }
        let unnamed = try pooler.connect()
        defer { unnamed.close() }

        var problems: [String] = []
        for round in 0..<4 {
            for (client, name) in [(foo, "foo"), (bar, "bar"), (unnamed, "")] {
                let seen = try client.exec("SELECT current_setting('application_name'), pg_backend_pid()").rows.first
                if seen?.first != name {
                    problems.append("round \(round): client '\(name)' sees application_name \(String(describing: seen))")
                }
            }
            // The backend's own view (pg_stat_activity) while foo runs.
            let activity = try foo.exec("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            if activity.scalar != "foo" { problems.append("round \(round): pg_stat_activity shows \(activity.rows)") }
        }
        let pids = Set(try [foo, bar, unnamed].map { try $0.exec("SELECT pg_backend_pid()").scalar })
        #expect(pids.count == 1, "expected one shared backend, got \(pids)")
        #expect(foo.parameterStatus("application_name") == "foo")
        #expect(bar.parameterStatus("application_name") == "bar")
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))\n\(pooler.diagnostics)")
    }
}
