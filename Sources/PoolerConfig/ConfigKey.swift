/// One `[pgbouncer]` setting: its name, value type, default, whether RELOAD may
/// change it, and whether this pooler acts on it yet.
public struct ConfigKey: @unchecked Sendable {  // immutable; the key paths inside are constants
    /// The type of a value, which decides how its text is read and shown.
    public enum Kind: Equatable, Sendable {
        case int
        /// PgBouncer stores these as ints: `0`/`1`; `yes`/`no`, `on`/`off`, `true`/`false` also accepted.
        case bool
        case string
        /// Seconds, a non-negative decimal number (PgBouncer 1.25 takes no unit suffix).
        case seconds
        /// Bytes, a plain integer (PgBouncer 1.25 takes no unit suffix).
        case size
        /// One of the listed words, matched case-insensitively.
        case enumeration([String])
        /// A comma-separated list of names.
        case list
    }

    public let name: String
    public let kind: Kind
    /// The default as PgBouncer shows it in the `default` column of SHOW CONFIG
    /// (`""` where PgBouncer has none).
    public let defaultValue: String
    /// PgBouncer's `changeable`: whether RELOAD or SET may change the value of a running pooler.
    public let reloadable: Bool
    /// The heading of PgBouncer's documentation this key appears under.
    public let group: String
    public let help: String
    /// Where the value lives in `Settings`; nil for keys accepted but not acted on yet.
    let binding: Binding?

    public var implemented: Bool { binding != nil }

    init(_ name: String, _ kind: Kind, _ defaultValue: String, _ binding: Binding? = nil,
         reloadable: Bool = true, group: String = "", help: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.binding = binding
        self.reloadable = reloadable
        self.group = group
        self.help = help
    }

    func inGroup(_ group: String) -> ConfigKey {
        ConfigKey(name, kind, defaultValue, binding, reloadable: reloadable, group: group, help: help)
    }

    /// The `Settings` property a key sets.
    enum Binding {
        case int(WritableKeyPath<Settings, Int>)
        case bool(WritableKeyPath<Settings, Bool>)
        case string(WritableKeyPath<Settings, String>)
        case seconds(WritableKeyPath<Settings, Double>)
        case list(WritableKeyPath<Settings, [String]>)
        case poolMode(WritableKeyPath<Settings, PoolMode>)
        case authType(WritableKeyPath<Settings, AuthType>)
        /// An enumeration value kept as its (lowercased) word.
        case word(WritableKeyPath<Settings, String>)
    }

    /// A value read from text, in the form its kind gives it.
    enum Value: Equatable {
        case int(Int)
        case bool(Bool)
        case string(String)
        case seconds(Double)
        case list([String])
        case word(String)

        /// The text SHOW CONFIG shows for it (PgBouncer prints ints with `%d`,
        /// times with `%g`, lookups by name, strings as written).
        var text: String {
            switch self {
            case .int(let value): return String(value)
            case .bool(let value): return value ? "1" : "0"
            case .string(let text), .word(let text): return text
            case .seconds(let value): return ValueParsing.formatSeconds(value)
            case .list(let items): return items.joined(separator: ",")
            }
        }
    }

    /// Reads a value of this key's kind, or explains what was expected.
    func parse(_ text: String) throws(ConfigError) -> Value {
        func invalid(_ expected: String) -> ConfigError {
            ConfigError("invalid value for \(name): '\(text)' (expected \(expected))")
        }
        switch kind {
        case .int:
            guard let value = ValueParsing.integer(text) else { throw invalid("an integer") }
            guard value >= Int(Int32.min), value <= Int(Int32.max) else {
                throw invalid("an integer between \(Int32.min) and \(Int32.max)")
            }
            return .int(value)
        case .size:
            guard let value = ValueParsing.integer(text), value >= 0, value <= Int(UInt32.max) else {
                throw invalid("a number of bytes between 0 and \(UInt32.max), without unit")
            }
            return .int(value)
        case .bool:
            guard let value = ValueParsing.boolean(text) else {
                throw invalid("a boolean: 1/0, yes/no, on/off or true/false")
            }
            return .bool(value)
        case .seconds:
            guard let value = ValueParsing.seconds(text) else {
                throw invalid("a non-negative number of seconds, without unit")
            }
            return .seconds(value)
        case .string:
            return .string(text)
        case .list:
            return .list(ValueParsing.list(text))
        case .enumeration(let words):
            guard let word = words.first(where: { $0.lowercased() == text.lowercased() }) else {
                throw invalid("one of: " + words.joined(separator: ", "))
            }
            return .word(word)
        }
    }
}
