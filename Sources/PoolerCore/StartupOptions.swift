/// The `options` startup parameter (libpq's `options='-c key=value ...'`): a list of
/// `-c key=value` or `--key=value` words, backslash escaping spaces. Other switches
/// are refused (nil), as PgBouncer refuses them.
public enum StartupOptions {
    public static func parse(_ text: String) -> [(String, String)]? {
        var words: [String] = []
        var current = ""
        var escaped = false
        var inWord = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                inWord = true
            } else if character == "\\" {
                escaped = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        var settings: [(String, String)] = []
        var index = 0
        while index < words.count {
            var assignment: Substring
            if words[index] == "-c" {
                index += 1
                guard index < words.count else { return nil }
                assignment = Substring(words[index])
            } else if words[index].hasPrefix("-c") {
                assignment = words[index].dropFirst(2)
            } else if words[index].hasPrefix("--") {
                assignment = words[index].dropFirst(2)
            } else {
                return nil
            }
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else { return nil }
            let name = String(assignment[..<equals]).replacingDashes()
            settings.append((name, String(assignment[assignment.index(after: equals)...])))
            index += 1
        }
        return settings
    }
}

private extension String {
    /// PostgreSQL accepts `--search-path=x` for `search_path`.
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
