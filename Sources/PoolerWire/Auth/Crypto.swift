import COpenSSL

/// The few primitives authentication needs, over OpenSSL's libcrypto.
///
/// Every function here is a one-shot call: the inputs are small (passwords,
/// nonces, SCRAM messages), and logins are not on the per-query path.
public enum Crypto {
    public static let sha256Length = 32

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        withNonNullBytes(bytes) { pointer, count in digest([], UnsafeRawBufferPointer(start: pointer, count: count)) }
    }

    /// SHA-256 fetched from the provider once: OpenSSL 3 looks an algorithm up on every
    /// one-shot call (`HMAC()`, `EVP_Digest` with `EVP_sha256()`), which costs more than
    /// hashing a SCRAM message. Fetched implementations are immutable and thread-safe.
    nonisolated(unsafe) private static let fetchedSHA256: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { preconditionFailure("SHA256 unavailable in libcrypto") }
        return md
    }()

    /// HMAC-SHA-256 of `data` under `key` (RFC 2104 over the fetched SHA-256).
    public static func hmacSHA256(key: some Collection<UInt8>, data: some Collection<UInt8>) -> [UInt8] {
        let (inner, outer) = hmacPads(key: key)
        let innerHash = withNonNullBytes(data) { pointer, count in
            digest(inner, UnsafeRawBufferPointer(start: pointer, count: count))
        }
        return innerHash.withUnsafeBytes { digest(outer, $0) }
    }

    /// RFC 2104's inner and outer key blocks.
    private static func hmacPads(key: some Collection<UInt8>) -> (inner: [UInt8], outer: [UInt8]) {
        let blockSize = 64
        var block = [UInt8](repeating: 0, count: blockSize)
        if key.count > blockSize {
            let hashed = sha256(key)
            for (index, byte) in hashed.enumerated() { block[index] = byte }
        } else {
            for (index, byte) in key.enumerated() { block[index] = byte }
        }
        var inner = block
        for index in 0..<blockSize {
            inner[index] ^= 0x36
            block[index] ^= 0x5c
        }
        return (inner, block)
    }

    /// HMAC-SHA-256 under one fixed key, with the key's two padded blocks hashed once:
    /// each message then costs two SHA-256 blocks fewer (a SCRAM login computes two
    /// HMACs under the user's StoredKey and ServerKey, the same for every login).
    /// Immutable after init; `authenticate` only reads the prepared contexts.
    public final class HMACKey: @unchecked Sendable {
        private let inner: OpaquePointer
        private let outer: OpaquePointer

        public init(key: some Collection<UInt8>) {
            let (innerPad, outerPad) = Crypto.hmacPads(key: key)
            inner = HMACKey.context(absorbing: innerPad)
            outer = HMACKey.context(absorbing: outerPad)
        }

        deinit {
            EVP_MD_CTX_free(inner)
            EVP_MD_CTX_free(outer)
        }

        private static func context(absorbing block: [UInt8]) -> OpaquePointer {
            guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
            let ok = EVP_DigestInit_ex2(context, fetchedSHA256, nil) == 1
                && block.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
            precondition(ok, "SHA-256 failed in libcrypto")
            return context
        }

        /// HMAC-SHA-256 of `data` under this key.
        public func authenticate(_ data: some Collection<UInt8>) -> [UInt8] {
            guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
            defer { EVP_MD_CTX_free(context) }
            var innerHash = [UInt8](repeating: 0, count: sha256Length)
            var out = [UInt8](repeating: 0, count: sha256Length)
            var length: UInt32 = 0
            let ok = EVP_MD_CTX_copy_ex(context, inner) == 1
                && Crypto.withNonNullBytes(data) { pointer, count in EVP_DigestUpdate(context, pointer, count) } == 1
                && innerHash.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) } == 1
                && EVP_MD_CTX_copy_ex(context, outer) == 1
                && innerHash.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
                && out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) } == 1
            precondition(ok && length == UInt32(sha256Length), "HMAC-SHA-256 failed in libcrypto")
            return out
        }
    }

    /// SHA-256 of `prefix` followed by `rest`.
    private static func digest(_ prefix: [UInt8], _ rest: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: sha256Length)
        guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        var outLength: UInt32 = 0
        let ok = EVP_DigestInit_ex2(context, fetchedSHA256, nil) == 1
            && prefix.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
            && (rest.isEmpty || EVP_DigestUpdate(context, rest.baseAddress, rest.count) == 1)
            && out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &outLength) } == 1
        precondition(ok && outLength == UInt32(sha256Length), "SHA-256 failed in libcrypto")
        return out
    }

    /// PBKDF2 with HMAC-SHA-256, producing one 32-byte block (SCRAM's `Hi()`).
    /// `iterations` must be at least 1 and fit in an `Int32`.
    public static func pbkdf2SHA256(password: some Collection<UInt8>, salt: some Collection<UInt8>,
                                    iterations: Int) -> [UInt8] {
        precondition(iterations >= 1 && iterations <= Int(Int32.max), "PBKDF2 iteration count out of range")
        var out = [UInt8](repeating: 0, count: sha256Length)
        let ok = withNonNullBytes(password) { passwordPointer, passwordCount in
            withNonNullBytes(salt) { saltPointer, saltCount in
                out.withUnsafeMutableBufferPointer { outBuffer in
                    PKCS5_PBKDF2_HMAC(passwordPointer.assumingMemoryBound(to: CChar.self),
                                      Int32(clamping: passwordCount),
                                      saltPointer.assumingMemoryBound(to: UInt8.self),
                                      Int32(clamping: saltCount),
                                      Int32(iterations), fetchedSHA256,
                                      Int32(sha256Length), outBuffer.baseAddress) == 1
                }
            }
        }
        precondition(ok, "PBKDF2-HMAC-SHA-256 failed in libcrypto")
        return out
    }

    /// MD5 of `bytes` as 32 lowercase hex digits (PostgreSQL's `pg_md5_hash`).
    public static func md5Hex(_ bytes: some Collection<UInt8>) -> String {
        hex(digest(bytes, EVP_md5(), length: 16))
    }

    /// Cryptographically strong random bytes from `RAND_bytes`, drawn 4 KiB at a time:
    /// each `RAND_bytes` call costs several thousand instructions in OpenSSL 3, and a
    /// login needs a few small draws (nonce, cancel key). Bytes are handed out once.
    public static func randomBytes(count: Int) -> [UInt8] {
        precondition(count >= 0)
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        out.withUnsafeMutableBytes { RandomPool.shared.fill($0) }
        return out
    }

    private final class RandomPool: @unchecked Sendable {
        static let shared = RandomPool()
        private var mutex = pthread_mutex_t()
        private let capacity = 4096
        private let buffer: UnsafeMutableRawBufferPointer
        private var used: Int

        private init() {
            pthread_mutex_init(&mutex, nil)
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            used = capacity
        }

        func fill(_ target: UnsafeMutableRawBufferPointer) {
            guard target.count <= capacity / 4 else {
                // Large draws (never on a hot path) go straight to OpenSSL.
                precondition(RAND_bytes(target.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                        Int32(clamping: target.count)) == 1, "RAND_bytes failed")
                return
            }
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            if capacity - used < target.count {
                // Without a working CSPRNG every nonce and salt would be guessable: stop.
                precondition(RAND_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(capacity)) == 1,
                             "RAND_bytes failed")
                used = 0
            }
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[used..<(used + target.count)]))
            // Handed out bytes are not kept around.
            memset(buffer.baseAddress! + used, 0, target.count)
            used += target.count
        }
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return withNonNullBytes(a) { aPointer, count in
            withNonNullBytes(b) { bPointer, _ in
                CRYPTO_memcmp(aPointer, bPointer, count) == 0
            }
        }
    }

    // MARK: - Hex

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of `bytes`.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Base64 (RFC 4648, standard alphabet, with padding)

    private static let base64Alphabet: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let base64DecodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (index, character) in base64Alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    /// Standard base64 with `=` padding.
    public static func base64Encode(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: base64EncodeBytes(bytes), as: UTF8.self)
    }

    /// Standard base64 with `=` padding, as ASCII bytes.
    public static func base64EncodeBytes(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            out.append(base64Alphabet[Int(value >> 18 & 0x3f)])
            out.append(base64Alphabet[Int(value >> 12 & 0x3f)])
            out.append(base64Alphabet[Int(value >> 6 & 0x3f)])
            out.append(base64Alphabet[Int(value & 0x3f)])
            index += 3
        }
        let remaining = input.count - index
        if remaining == 1 {
            let value = UInt32(input[index]) << 16
            out.append(base64Alphabet[Int(value >> 18 & 0x3f)])
            out.append(base64Alphabet[Int(value >> 12 & 0x3f)])
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        } else if remaining == 2 {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            out.append(base64Alphabet[Int(value >> 18 & 0x3f)])
            out.append(base64Alphabet[Int(value >> 12 & 0x3f)])
            out.append(base64Alphabet[Int(value >> 6 & 0x3f)])
            out.append(UInt8(ascii: "="))
        }
        return out
    }

    /// Decodes standard padded base64. Returns nil for anything malformed: a
    /// length that is not a multiple of four, a character outside the
    /// alphabet (whitespace included), or `=` anywhere but the last one or two
    /// positions. Non-zero bits under the padding are tolerated, as
    /// PostgreSQL's decoder does.
    public static func base64Decode(_ text: some StringProtocol) -> [UInt8]? {
        base64Decode(bytes: text.utf8)
    }

    /// `base64Decode` over ASCII bytes.
    public static func base64Decode(bytes: some Collection<UInt8>) -> [UInt8]? {
        if let result = bytes.withContiguousStorageIfAvailable({ base64Decode(buffer: $0) }) { return result }
        return Array(bytes).withUnsafeBufferPointer { base64Decode(buffer: $0) }
    }

    private static func base64Decode(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard input.count % 4 == 0 else { return nil }
        if input.isEmpty { return [] }
        let equals = UInt8(ascii: "=")
        var padding = 0
        if input[input.count - 1] == equals { padding += 1 }
        if input[input.count - 2] == equals { padding += 1 }
        if padding == 1 && input[input.count - 2] == equals { return nil }
        let dataCount = input.count - padding
        let outCount = dataCount * 6 / 8
        var valid = true
        let out = base64DecodeTable.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: outCount) { out, initialized in
                var accumulator: UInt32 = 0
                var bits = 0
                var written = 0
                for index in 0..<dataCount {
                    let value = table[Int(input[index])]
                    if value == 0xff { valid = false; break }
                    accumulator = accumulator << 6 | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        if written < outCount { out[written] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)) }
                        written += 1
                        accumulator &= (1 << UInt32(bits)) - 1
                    }
                }
                initialized = valid ? min(written, outCount) : 0
            }
        }
        return valid ? out : nil
    }

    // MARK: - Helpers

    private static func digest(_ bytes: some Collection<UInt8>, _ type: OpaquePointer?, length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var outLength: UInt32 = 0
        let ok = withNonNullBytes(bytes) { pointer, count in
            out.withUnsafeMutableBufferPointer { outBuffer in
                EVP_Digest(pointer, count, outBuffer.baseAddress, &outLength, type, nil) == 1
            }
        }
        precondition(ok && outLength == UInt32(length), "digest failed in libcrypto")
        return out
    }

    /// Calls `body` with a non-null pointer to the bytes (libcrypto treats a
    /// null key or password differently from an empty one in places).
    private static func withNonNullBytes<R>(_ bytes: some Collection<UInt8>,
                                            _ body: (UnsafeRawPointer, Int) -> R) -> R {
        if let result = bytes.withContiguousStorageIfAvailable({ buffer -> R in
            if let base = buffer.baseAddress { return body(UnsafeRawPointer(base), buffer.count) }
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body(UnsafeRawPointer($0), 0) }
        }) {
            return result
        }
        return withNonNullBytes(Array(bytes), body)
    }
}
