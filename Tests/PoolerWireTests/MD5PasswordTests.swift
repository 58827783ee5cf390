import Testing
@testable import PoolerWire

@Suite struct MD5PasswordTests {
    let salt: [UInt8] = [1, 2, 3, 4]

    @Test func encrypt() {
        #expect(MD5Password.encrypt(user: "user", password: "pencil") == "md520c46e3762c864548e296b33c3406aa9")
    }

    @Test func responseFromPlaintextAndFromStoredHash() {
        let expected = "md54376eb6913b38f9aaff38dc7cf19ca76"
        #expect(MD5Password.response(user: "user", passwordOrStoredHash: "pencil", salt: salt) == expected)
        #expect(MD5Password.response(user: "user", passwordOrStoredHash: "md520c46e3762c864548e296b33c3406aa9",
                                     salt: salt) == expected)
    }

    @Test func isMD5Hash() {
        #expect(MD5Password.isMD5Hash("md520c46e3762c864548e296b33c3406aa9"))
        #expect(!MD5Password.isMD5Hash("md520C46E3762C864548E296B33C3406AA9"))
        #expect(!MD5Password.isMD5Hash("md520c46e3762c864548e296b33c3406aa"))
        #expect(!MD5Password.isMD5Hash("md5 pencil but 35 characters long.."))
        #expect(!MD5Password.isMD5Hash("pencil"))
    }

    @Test func verify() {
        let response = "md54376eb6913b38f9aaff38dc7cf19ca76"
        #expect(MD5Password.verify(response: response, storedSecret: "pencil", user: "user", salt: salt))
        #expect(MD5Password.verify(response: response, storedSecret: "md520c46e3762c864548e296b33c3406aa9",
                                   user: "user", salt: salt))
        #expect(!MD5Password.verify(response: response, storedSecret: "pencil", user: "other", salt: salt))
        #expect(!MD5Password.verify(response: response, storedSecret: "pencil", user: "user", salt: [1, 2, 3, 5]))
        #expect(!MD5Password.verify(response: response, storedSecret: "wrong", user: "user", salt: salt))
        #expect(!MD5Password.verify(response: "", storedSecret: "pencil", user: "user", salt: salt))
        #expect(!MD5Password.verify(response: response, storedSecret: "", user: "user", salt: salt))
        let scram = SCRAMSecret.make(password: "pencil", salt: [1, 2, 3], iterations: 1).text
        #expect(!MD5Password.verify(response: response, storedSecret: scram, user: "user", salt: salt))
    }
}
