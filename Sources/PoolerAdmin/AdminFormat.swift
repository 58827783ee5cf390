// Text renderings PgBouncer uses in admin result sets.

public enum AdminFormat {
    /// format_time_s(): "YYYY-MM-DD HH:MM:SS TZNAME" of a unix-epoch microsecond time,
    /// shifted by the zone's offset. PgBouncer renders 0 as the current time.
    public static func timestamp(_ microseconds: UInt64, now: UInt64, timeZone: AdminTimeZone = .utc) -> String {
        let usec = microseconds == 0 ? now : microseconds
        let seconds = Int(usec / 1_000_000) + timeZone.offsetSeconds
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + " "
            + pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
            + " " + timeZone.name
    }

    /// glibc's "%p": "0x" + lowercase hex, "(nil)" for 0.
    public static func pointer(_ value: Int) -> String {
        if value == 0 { return "(nil)" }
        return "0x" + String(UInt(bitPattern: value), radix: 16)
    }

    /// A PgBouncer 'i' (int4) column value: printed with "%d" from a C int.
    public static func int4(_ value: Int) -> String {
        String(Int32(truncatingIfNeeded: value))
    }

    /// "%9d" as SHOW USERS prints pool_size / reserve_pool_size.
    static func padded9(_ value: Int) -> String {
        let s = int4(value)
        return s.utf8.count >= 9 ? s : String(repeating: " ", count: 9 - s.utf8.count) + s
    }

    /// tls_get_connection_info(): "<proto>/<cipher>[/DH=<bits>|/ECDH=<curve>][/OCSP=<result>]".
    public static func tlsInfo(protocolVersion: String, cipher: String, keyExchange: String? = nil,
                               ocspResult: String? = nil) -> String {
        var s = protocolVersion + "/" + cipher
        if let keyExchange, !keyExchange.isEmpty { s += "/" + keyExchange }
        if let ocspResult { s += "/OCSP=" + ocspResult }
        return s
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.utf8.count >= width ? s : String(repeating: "0", count: width - s.utf8.count) + s
    }

    /// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
    static func civilDate(daysSinceEpoch: Int) -> (Int, Int, Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
