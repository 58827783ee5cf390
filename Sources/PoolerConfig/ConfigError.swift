/// An error in a configuration or auth file, or in a value given to `SET`.
///
/// `description` reads `FILE:LINE: message` when the position is known, in the
/// style of PgBouncer's log lines, e.g.
/// `pooler.ini:12: unknown parameter: pgbouncer/listen_prot`.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String?
    public var line: Int?
    public var message: String

    public init(file: String? = nil, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        switch (file, line) {
        case let (file?, line?): return "\(file):\(line): \(message)"
        case let (file?, nil): return "\(file): \(message)"
        case (nil, _): return message
        }
    }

    /// The same error, placed at a position unless it already has one.
    func located(file: String, line: Int) -> ConfigError {
        guard self.file == nil else { return self }
        return ConfigError(file: file, line: line, message)
    }
}
