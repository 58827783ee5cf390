/// Reading the typed values of connection-string pairs. Numbers here are plain
/// decimal integers (PgBouncer uses `atoi`, which silently reads junk as 0; this
/// pooler rejects it instead).
struct EntryFields {
    let key: String
    let value: String

    func integer() throws(ConfigError) -> Int {
        guard let number = ValueParsing.decimal(value), number >= Int(Int32.min), number <= Int(Int32.max) else {
            throw ConfigError("invalid value for \(key): '\(value)' (expected an integer)")
        }
        return number
    }

    func seconds() throws(ConfigError) -> Double {
        guard let number = ValueParsing.decimal(value), number >= 0 else {
            throw ConfigError("invalid value for \(key): '\(value)' (expected a whole number of seconds)")
        }
        return Double(number)
    }

    func poolMode() throws(ConfigError) -> PoolMode {
        guard let mode = PoolMode(configValue: value) else { throw ConfigError("invalid pool mode: \(value)") }
        return mode
    }

    static func pairs(_ text: String, syntaxError: String) throws(ConfigError) -> [EntryFields] {
        do {
            return try ConnectionString.pairs(text).map { EntryFields(key: $0.key, value: $0.value) }
        } catch {
            throw ConfigError(syntaxError)
        }
    }
}
