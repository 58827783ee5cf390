import Glibc

/// Value syntax shared by the ini keys and the connection strings.
///
/// PgBouncer reads integers with `strtol(value, &end, 0)` and times with `strtod`,
/// rejecting partial parses; these functions accept the same texts.
enum ValueParsing {
    /// An integer as `strtol` with base 0 reads it: optional sign, then `0x` hex,
    /// leading-`0` octal or decimal. The whole text must be consumed.
    static func integer(_ text: String) -> Int? {
        var bytes = Substring(text).utf8.drop(while: isSpace)
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var radix = 10
        if bytes.starts(with: "0x".utf8) || bytes.starts(with: "0X".utf8),
           let digit = bytes.dropFirst(2).first, digitValue(digit, radix: 16) != nil {
            radix = 16
            bytes = bytes.dropFirst(2)
        } else if bytes.first == UInt8(ascii: "0"), bytes.count > 1 {
            radix = 8
        }
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard let digit = digitValue(byte, radix: radix) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflow2) = times.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return negative ? -value : value
    }

    /// A plain decimal integer, as used for numbers inside connection strings.
    static func decimal(_ text: String) -> Int? {
        guard let first = text.utf8.first, first != UInt8(ascii: "+") else { return nil }
        return Int(text)
    }

    /// A non-negative number of seconds, as PgBouncer's `parse_time` reads it
    /// (a decimal number with optional fraction and exponent; no unit suffix).
    static func seconds(_ text: String) -> Double? {
        var sawDigit = false, sawDot = false, sawExponent = false, exponentDigits = true
        var previous: UInt8? = nil
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if sawExponent { exponentDigits = true } else { sawDigit = true }
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard previous == nil || previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return nil }
            case UInt8(ascii: "."):
                guard !sawDot, !sawExponent else { return nil }
                sawDot = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard sawDigit, !sawExponent else { return nil }
                sawExponent = true
                exponentDigits = false
            default:
                return nil
            }
            previous = byte
        }
        guard sawDigit, exponentDigits, let value = Double(text), value.isFinite, value >= 0 else { return nil }
        // PgBouncer keeps times as whole microseconds.
        return (value * 1_000_000).rounded(.towardZero) / 1_000_000
    }

    /// A boolean: any integer (non-zero is true, as PgBouncer stores these as ints)
    /// or one of the usual words.
    static func boolean(_ text: String) -> Bool? {
        if let number = integer(text) { return number != 0 }
        switch text.lowercased() {
        case "yes", "on", "true": return true
        case "no", "off", "false": return false
        default: return nil
        }
    }

    /// Items of a comma-separated list. Like PgBouncer's `strlist_contains`, spaces
    /// also separate items, and empty items are dropped.
    static func list(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// `printf("%g")` of a time value, as SHOW CONFIG prints it.
    static func formatSeconds(_ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%g", $0) }
        return String(cString: buffer)
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    private static func digitValue(_ byte: UInt8, radix: Int) -> Int? {
        let value: Int
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return value < radix ? value : nil
    }
}
