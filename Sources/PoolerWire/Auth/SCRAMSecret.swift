/// A SCRAM-SHA-256 verifier as PostgreSQL stores it in `pg_authid.rolpassword`:
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
public struct SCRAMSecret: Sendable, Hashable {
    public static let prefix = "SCRAM-SHA-256$"
    /// PostgreSQL's defaults (`scram_iterations`, `SCRAM_DEFAULT_SALT_LEN`).
    public static let defaultIterations = 4096
    public static let defaultSaltLength = 16

    public let iterations: Int
    public let salt: [UInt8]
    public let storedKey: [UInt8]
    public let serverKey: [UInt8]
    /// HMAC under StoredKey and under ServerKey, prepared once per secret (verifiers are
    /// cached per user, so logins reuse them).
    public let storedKeyMAC: Crypto.HMACKey
    public let serverKeyMAC: Crypto.HMACKey

    public init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
        storedKeyMAC = Crypto.HMACKey(key: storedKey)
        serverKeyMAC = Crypto.HMACKey(key: serverKey)
    }

    /// Equal when the verifier is (the prepared HMAC keys follow from it).
    public static func == (lhs: SCRAMSecret, rhs: SCRAMSecret) -> Bool {
        lhs.iterations == rhs.iterations && lhs.salt == rhs.salt && lhs.storedKey == rhs.storedKey
            && lhs.serverKey == rhs.serverKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(iterations)
        hasher.combine(salt)
        hasher.combine(storedKey)
        hasher.combine(serverKey)
    }

    /// Parses PostgreSQL's text form; nil unless every part is well formed
    /// (positive iteration count, non-empty salt, 32-byte keys).
    public static func parse(_ text: String) -> SCRAMSecret? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) } // contiguous bytes: no generic String walking
    }

    private static let prefixBytes = Array(prefix.utf8)

    private static func parse(bytes: UnsafeBufferPointer<UInt8>) -> SCRAMSecret? {
        guard bytes.count > prefixBytes.count, bytes.starts(with: prefixBytes) else { return nil }
        let body = bytes[prefixBytes.count...]
        guard let dollar = body.firstIndex(of: UInt8(ascii: "$")) else { return nil }
        let parameters = body[..<dollar]
        let keys = body[(dollar + 1)...]
        guard !keys.contains(UInt8(ascii: "$")),
              let colon1 = parameters.firstIndex(of: UInt8(ascii: ":")),
              let colon2 = keys.firstIndex(of: UInt8(ascii: ":")),
              !parameters[(colon1 + 1)...].contains(UInt8(ascii: ":")),
              !keys[(colon2 + 1)...].contains(UInt8(ascii: ":")),
              let iterations = SCRAMSecret.parsePositiveInt(parameters[..<colon1]),
              let salt = Crypto.base64Decode(bytes: parameters[(colon1 + 1)...]), !salt.isEmpty,
              let storedKey = Crypto.base64Decode(bytes: keys[..<colon2]), storedKey.count == Crypto.sha256Length,
              let serverKey = Crypto.base64Decode(bytes: keys[(colon2 + 1)...]), serverKey.count == Crypto.sha256Length
        else { return nil }
        return SCRAMSecret(iterations: iterations, salt: salt, storedKey: storedKey, serverKey: serverKey)
    }

    /// Builds the verifier for `password`.
    ///
    /// PostgreSQL runs SASLprep over the password and falls back to the raw
    /// bytes when that fails; this uses the raw UTF-8 bytes always, which
    /// agrees with PostgreSQL for every password SASLprep leaves unchanged
    /// (all printable ASCII among them) but not for passwords SASLprep would
    /// normalise (for example non-ASCII spaces or compatibility characters).
    public static func make(password: String, salt: [UInt8], iterations: Int) -> SCRAMSecret {
        let keys = SCRAMKeys(saltedPassword: Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt,
                                                                  iterations: iterations))
        return SCRAMSecret(iterations: iterations, salt: salt, storedKey: Crypto.sha256(keys.clientKey),
                           serverKey: keys.serverKey)
    }

    /// `make` with a fresh random salt and PostgreSQL's default iteration count.
    public static func make(password: String) -> SCRAMSecret {
        make(password: password, salt: Crypto.randomBytes(count: defaultSaltLength), iterations: defaultIterations)
    }

    /// PostgreSQL's text form.
    public var text: String {
        "\(SCRAMSecret.prefix)\(iterations):\(Crypto.base64Encode(salt))$"
            + "\(Crypto.base64Encode(storedKey)):\(Crypto.base64Encode(serverKey))"
    }

    /// Decimal digits only, no sign, at least 1, fits an `Int32` (what
    /// PBKDF2 accepts).
    static func parsePositiveInt(_ digits: some Collection<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 10 else { return nil }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        guard value >= 1, value <= Int(Int32.max) else { return nil }
        return value
    }
}

extension SCRAMSecret: CustomStringConvertible {
    /// Never prints key material.
    public var description: String { "SCRAMSecret(iterations: \(iterations), salt: \(salt.count) bytes)" }
}

/// ClientKey and ServerKey derived from a SaltedPassword.
struct SCRAMKeys {
    var clientKey: [UInt8]
    var serverKey: [UInt8]

    init(saltedPassword: [UInt8]) {
        clientKey = Crypto.hmacSHA256(key: saltedPassword, data: Array("Client Key".utf8))
        serverKey = Crypto.hmacSHA256(key: saltedPassword, data: Array("Server Key".utf8))
    }
}
