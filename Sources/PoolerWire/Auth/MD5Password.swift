/// PostgreSQL's md5 password scheme.
///
/// A stored md5 secret is `"md5" + md5hex(password + user)`; for
/// AuthenticationMD5Password the client answers
/// `"md5" + md5hex(md5hex(password + user) + salt)` with the 4-byte salt from
/// the server, so either the plaintext or the stored hash is enough to answer.
public enum MD5Password {
    /// Length of `"md5"` + 32 hex digits.
    public static let storedLength = 35

    /// The stored form of a password: `"md5" + md5hex(password + user)`.
    public static func encrypt(user: String, password: String) -> String {
        "md5" + Crypto.md5Hex(Array(password.utf8) + Array(user.utf8))
    }

    /// True when `secret` is an md5 hash as PostgreSQL stores one: `"md5"`
    /// followed by exactly 32 lowercase hex digits.
    public static func isMD5Hash(_ secret: String) -> Bool {
        let bytes = Array(secret.utf8)
        guard bytes.count == storedLength, bytes.starts(with: Array("md5".utf8)) else { return false }
        return bytes[3...].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// What a client sends in reply to AuthenticationMD5Password.
    /// `passwordOrStoredHash` may be the plaintext or an already stored
    /// `"md5..."` hash (which is then used as is, as PgBouncer and libpq do).
    public static func response(user: String, passwordOrStoredHash: String, salt: [UInt8]) -> String {
        let inner: String
        if isMD5Hash(passwordOrStoredHash) {
            inner = String(passwordOrStoredHash.dropFirst(3))
        } else {
            inner = String(encrypt(user: user, password: passwordOrStoredHash).dropFirst(3))
        }
        return "md5" + Crypto.md5Hex(Array(inner.utf8) + salt)
    }

    /// Server-side check of a client's md5 response against a stored secret
    /// that is either plaintext or an md5 hash. A SCRAM secret cannot answer
    /// an md5 challenge, so it never verifies (PostgreSQL refuses it too).
    public static func verify(response: String, storedSecret: String, user: String, salt: [UInt8]) -> Bool {
        if SCRAMSecret.parse(storedSecret) != nil { return false }
        if storedSecret.isEmpty { return false }
        let expected = self.response(user: user, passwordOrStoredHash: storedSecret, salt: salt)
        return Crypto.constantTimeEquals(Array(expected.utf8), Array(response.utf8))
    }
}
