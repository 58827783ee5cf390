import Testing
@testable import PoolerWire

@Suite struct CryptoTests {
    @Test func sha256KnownValue() {
        #expect(Crypto.hex(Crypto.sha256(Array("abc".utf8)))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Crypto.hex(Crypto.sha256([UInt8]()))
            == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // A non-contiguous collection goes through the fallback path.
        #expect(Crypto.sha256("abc".utf8.lazy.map { $0 }) == Crypto.sha256(Array("abc".utf8)))
    }

    @Test func hmacKnownValue() {
        let mac = Crypto.hmacSHA256(key: Array("key".utf8),
                                    data: Array("The quick brown fox jumps over the lazy dog".utf8))
        #expect(Crypto.hex(mac) == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        // Empty key and data must work (HMAC with a zero-length key).
        #expect(Crypto.hex(Crypto.hmacSHA256(key: [UInt8](), data: [UInt8]()))
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    /// The prepared-key HMAC agrees with the one-shot one (RFC 4231 case 2, empty data,
    /// a key longer than a block, and repeated use of one key).
    @Test func preparedHMACKeyMatchesOneShot() {
        let key = Crypto.HMACKey(key: Array("Jefe".utf8))
        #expect(Crypto.hex(key.authenticate(Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(key.authenticate([UInt8]()) == Crypto.hmacSHA256(key: Array("Jefe".utf8), data: [UInt8]()))
        let longKey = [UInt8](repeating: 0xaa, count: 131)
        let prepared = Crypto.HMACKey(key: longKey)
        for length in [0, 1, 55, 64, 200] {
            let data = [UInt8](repeating: UInt8(length & 0xff), count: length)
            #expect(prepared.authenticate(data) == Crypto.hmacSHA256(key: longKey, data: data))
        }
    }

    @Test func scramFieldsKeepEmptyOnes() {
        let fields = SCRAMParsing.fields(Array("n,,n=u,r=abc,".utf8)[...]).map { String(decoding: $0, as: UTF8.self) }
        #expect(fields == ["n", "", "n=u", "r=abc", ""])
        #expect(SCRAMParsing.fields([UInt8]()[...]).map(\.count) == [0])
    }

    @Test func pbkdf2KnownValue() {
        // RFC 7677's SaltedPassword gives its ClientKey.
        let salted = Crypto.pbkdf2SHA256(password: Array("pencil".utf8),
                                         salt: Crypto.base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==")!, iterations: 4096)
        #expect(salted.count == 32)
        let clientKey = Crypto.hmacSHA256(key: salted, data: Array("Client Key".utf8))
        #expect(Crypto.base64Encode(clientKey) == "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=")
    }

    @Test func md5Hex() {
        #expect(Crypto.md5Hex([UInt8]()) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Crypto.md5Hex(Array("penciluser".utf8)) == "20c46e3762c864548e296b33c3406aa9")
    }

    @Test func randomBytes() {
        let a = Crypto.randomBytes(count: 32)
        let b = Crypto.randomBytes(count: 32)
        #expect(a.count == 32)
        #expect(a != b)
        #expect(Crypto.randomBytes(count: 0).isEmpty)
    }

    @Test func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Crypto.constantTimeEquals([UInt8](), [UInt8]()))
    }

    @Test func base64RoundTrip() {
        let vectors: [(String, String)] = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Crypto.base64Encode(Array(plain.utf8)) == encoded)
            #expect(Crypto.base64Decode(encoded) == Array(plain.utf8))
        }
        for length in 0..<70 {
            let bytes = Crypto.randomBytes(count: length)
            #expect(Crypto.base64Decode(Crypto.base64Encode(bytes)) == bytes)
        }
        #expect(Crypto.base64Decode("+/+/") == [0xfb, 0xff, 0xbf])
    }

    @Test func base64RejectsMalformed() {
        for bad in ["Z", "Zg", "Zg=", "Zm9", "Zg=a", "Z===", "====", "=Zg=", "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v",
                    "Zg==Zg==", "Zm9\u{e9}", "biws="] {
            #expect(Crypto.base64Decode(bad) == nil, "\(bad) should be rejected")
        }
    }
}
