/// PgBouncer `auth_file` (userlist.txt): one `"user" "secret"` line per user.
///
/// app and postgres get their SCRAM verifiers from pg_authid, so the pooler
/// can do SCRAM with clients and, with the client's proof, with the server.
/// md5app is stored as md5 in Postgres; an md5 hash cannot serve SCRAM to
/// clients, so it gets its plaintext password (as shared/bench/userlist.sh
/// does), which serves md5 with clients and with the server.
enum AuthFile {
    static func userlist(from cluster: PostgresCluster) throws -> String {
        let result = try cluster.superuserExec("""
            SELECT rolname, rolpassword FROM pg_authid
             WHERE rolname IN ('app', 'md5app', 'postgres') ORDER BY rolname
            """)
        var entries: [(user: String, secret: String)] = []
        for row in result.rows {
            guard let user = row[0], let stored = row[1] else { continue }
            if stored.hasPrefix("md5") {
                guard let password = PostgresCluster.passwords[user] else {
                    throw HarnessError("no known plaintext password for md5 user \(user)")
                }
                entries.append((user, password))
            } else {
                entries.append((user, stored))
            }
        }
        guard entries.count == 3 else { throw HarnessError("expected 3 secrets in pg_authid, got \(entries)") }
        return render(entries)
    }

    static func render(_ entries: [(user: String, secret: String)]) -> String {
        entries.map { "\(quote($0.user)) \(quote($0.secret))\n" }.joined()
    }

    private static func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
