import Foundation

/// psql and pgbench from the PostgreSQL installation, run to completion with
/// their output captured. The password goes in PGPASSWORD.
enum ClientTools {
    static func psql(_ arguments: [String], password: String?, timeout: Double = 60) throws -> Subprocess.Output {
        try Subprocess.run([tool("psql"), "-X"] + arguments, environment: environment(password: password),
                           timeout: timeout)
    }

    static func pgbench(_ arguments: [String], password: String?, timeout: Double = 120) throws -> Subprocess.Output {
        try Subprocess.run([tool("pgbench")] + arguments, environment: environment(password: password),
                           timeout: timeout)
    }

    /// Any other client program of the installation (pg_basebackup, pg_receivewal, ...).
    static func run(_ name: String, _ arguments: [String], password: String?, timeout: Double = 120) throws -> Subprocess.Output {
        try Subprocess.run([tool(name)] + arguments, environment: environment(password: password), timeout: timeout)
    }

    private static func tool(_ name: String) -> String {
        let path = TestEnvironment.pgBin + "/" + name
        return FileManager.default.isExecutableFile(atPath: path) ? path : name
    }

    private static func environment(password: String?) -> [String: String] {
        var environment = ["PGSSLMODE": "disable", "PGGSSENCMODE": "disable", "PGCONNECT_TIMEOUT": "20"]
        if let password { environment["PGPASSWORD"] = password }
        return environment
    }
}

/// The summary pgbench prints after a run.
struct PgbenchReport {
    var processed: Int?
    var expected: Int?
    /// `number of failed transactions` (pgbench 15+); nil if not printed.
    var failed: Int?
    var tps: Double?

    init(output: String) {
        for line in output.split(separator: "\n") {
            if line.hasPrefix("number of transactions actually processed:") {
                let numbers = line.split(separator: ":")[1].split(separator: "/")
                    .map { Int($0.trimmingCharacters(in: .whitespaces)) }
                processed = numbers.first ?? nil
                expected = numbers.count > 1 ? numbers[1] : nil
            } else if line.hasPrefix("number of failed transactions:") {
                let rest = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
                failed = Int(rest.split(separator: " ").first ?? "")
            } else if line.hasPrefix("tps =") {
                tps = Double(line.dropFirst(5).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
            }
        }
    }
}
