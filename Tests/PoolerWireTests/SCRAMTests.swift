import Testing
@testable import PoolerWire

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// RFC 7677 section 3.
private enum RFC7677 {
    static let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    static let salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
    static let clientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    /// The same credentials in PostgreSQL's stored form (derived from the RFC's inputs).
    static let verifier = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        + ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    static let clientKey = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos="

    static var secret: SCRAMSecret {
        SCRAMSecret.make(password: "pencil", salt: Crypto.base64Decode(salt)!, iterations: 4096)
    }
}

/// Verifiers PostgreSQL 15 stored for `CREATE ROLE ... PASSWORD 'pencil'`.
private let postgresVerifiers = [
    "SCRAM-SHA-256$4096:+irdJtr3i2Zp9jvWyyzM2Q==$tVo8TetdYlqE8RrfqPrj1Hch0EBJTlz82Z0NX7bg3wI="
        + ":BA+Yi8HP36RjmIU8b1M2zWr4/Bkz7/QHnpGT6ngrv9o=",
    "SCRAM-SHA-256$4096:F34kwo6wgxSyN9ZDpJw37g==$GfWa9VIqgwzkM82eeodVxKxOAqdH/yJ1onQc7+1s//Q="
        + ":JTEIVPlWmzPXyuHeB3cHie9gtE8N0tPjlIUnu/WdYRM=",
]

/// Runs a whole exchange; returns the server exchange after it (for its keys).
@discardableResult
private func login(_ client: inout SCRAMClientExchange, to server: inout SCRAMServerExchange) throws
    -> SCRAMServerExchange {
    let serverFirst = try server.receiveClientFirst(client.clientFirstMessage())
    let clientFinal = try client.receiveServerFirst(serverFirst)
    let serverFinal = try server.receiveClientFinal(clientFinal)
    try client.verifyServerFinal(serverFinal)
    return server
}

@Suite struct SCRAMSecretTests {
    @Test func makeMatchesRFCDerivedVerifier() {
        #expect(RFC7677.secret.text == RFC7677.verifier)
    }

    @Test func makeMatchesPostgresVerifiers() throws {
        for verifier in postgresVerifiers {
            let parsed = try #require(SCRAMSecret.parse(verifier))
            #expect(parsed.iterations == 4096)
            #expect(parsed.salt.count == 16)
            #expect(parsed.text == verifier)
            let made = SCRAMSecret.make(password: "pencil", salt: parsed.salt, iterations: parsed.iterations)
            #expect(made == parsed)
        }
    }

    @Test func parseRejectsMalformed() {
        let good = RFC7677.verifier
        #expect(SCRAMSecret.parse(good) != nil)
        let bad = [
            "", "SCRAM-SHA-256$", "md520c46e3762c864548e296b33c3406aa9", "pencil",
            good.replacingFirst("4096", with: "0"),
            good.replacingFirst("4096", with: "-1"),
            good.replacingFirst("4096", with: "99999999999"),
            good.replacingFirst("4096", with: ""),
            good.replacingFirst("4096:", with: "4096"),
            good.replacingFirst("W22ZaJ0SNY7soEsUEjb6gQ==", with: ""),
            good.replacingFirst("W22ZaJ0SNY7soEsUEjb6gQ==", with: "W22ZaJ0SNY7soEsUEjb6gQ="),
            good.replacingFirst(":wfP", with: "wfP"),
            good.replacingFirst("WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", with: "Zm9v"),
            good + ":x", good + "$", "scram-sha-256" + good.dropFirst(13),
        ]
        for secret in bad {
            #expect(SCRAMSecret.parse(secret) == nil, "\(secret) should be rejected")
        }
    }

    @Test func randomSecretsDiffer() {
        let a = SCRAMSecret.make(password: "pencil")
        let b = SCRAMSecret.make(password: "pencil")
        #expect(a.salt.count == 16 && a.iterations == 4096)
        #expect(a != b)
        #expect(!a.description.contains(Crypto.base64Encode(a.storedKey)))
    }
}

@Suite struct SCRAMExchangeTests {
    @Test func clientMatchesRFC7677() throws {
        var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce, username: "user")
        #expect(text(client.clientFirstMessage()) == RFC7677.clientFirst)
        #expect(text(try client.receiveServerFirst(bytes(RFC7677.serverFirst))) == RFC7677.clientFinal)
        try client.verifyServerFinal(bytes(RFC7677.serverFinal))
        #expect(client.serverIterations == 4096)
        #expect(client.serverSalt == Crypto.base64Decode(RFC7677.salt))
    }

    @Test func serverMatchesRFC7677() throws {
        var server = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
        #expect(text(try server.receiveClientFirst(bytes(RFC7677.clientFirst))) == RFC7677.serverFirst)
        #expect(!server.isAuthenticated)
        #expect(text(try server.receiveClientFinal(bytes(RFC7677.clientFinal))) == RFC7677.serverFinal)
        #expect(server.isAuthenticated)
        #expect(server.clientKey.map { Crypto.base64Encode($0) } == RFC7677.clientKey)
        #expect(server.serverKey == RFC7677.secret.serverKey)
    }

    @Test func serverFromParsedVerifierMatchesRFC7677() throws {
        var server = SCRAMServerExchange(secret: try #require(SCRAMSecret.parse(RFC7677.verifier)),
                                         serverNonce: RFC7677.serverNonce)
        _ = try server.receiveClientFirst(bytes(RFC7677.clientFirst))
        #expect(text(try server.receiveClientFinal(bytes(RFC7677.clientFinal))) == RFC7677.serverFinal)
    }

    @Test func clientFirstMessageLikeLibpq() {
        var client = SCRAMClientExchange(password: "pencil")
        let message = text(client.clientFirstMessage())
        #expect(message.hasPrefix("n,,n=,r="))
        #expect(message.utf8.count == "n,,n=,r=".utf8.count + 24)
    }

    @Test func roundTripWithPassword() throws {
        var client = SCRAMClientExchange(password: "correct horse battery staple")
        var server = SCRAMServerExchange(plaintextPassword: "correct horse battery staple")
        try login(&client, to: &server)
        #expect(server.isAuthenticated)
    }

    @Test func roundTripWithPostgresVerifier() throws {
        for verifier in postgresVerifiers {
            var client = SCRAMClientExchange(password: "pencil")
            var server = SCRAMServerExchange(secret: try #require(SCRAMSecret.parse(verifier)))
            try login(&client, to: &server)
        }
    }

    @Test func nonASCIIPasswordRoundTrip() throws {
        var client = SCRAMClientExchange(password: "pässwörd, 密码")
        var server = SCRAMServerExchange(plaintextPassword: "pässwörd, 密码")
        try login(&client, to: &server)
    }

    @Test func passThroughWithRecoveredKeys() throws {
        let secret = try #require(SCRAMSecret.parse(postgresVerifiers[0]))
        // The client logs in to the pooler ...
        var client = SCRAMClientExchange(password: "pencil")
        var pooler = SCRAMServerExchange(secret: secret)
        let finished = try login(&client, to: &pooler)
        let clientKey = try #require(finished.clientKey)
        // ... and the pooler logs in to the server with the recovered keys only.
        var passThrough = SCRAMClientExchange(clientKey: clientKey, serverKey: finished.serverKey)
        var postgres = SCRAMServerExchange(secret: secret)
        try login(&passThrough, to: &postgres)
        #expect(postgres.clientKey == clientKey)
    }

    @Test func passThroughFailsAgainstDifferentVerifier() throws {
        var client = SCRAMClientExchange(password: "pencil")
        var pooler = SCRAMServerExchange(secret: try #require(SCRAMSecret.parse(postgresVerifiers[0])))
        let finished = try login(&client, to: &pooler)
        var passThrough = SCRAMClientExchange(clientKey: try #require(finished.clientKey),
                                              serverKey: finished.serverKey)
        // Same password, different salt: the keys do not fit.
        var postgres = SCRAMServerExchange(secret: try #require(SCRAMSecret.parse(postgresVerifiers[1])))
        #expect(throws: SCRAMError.authenticationFailed) { try login(&passThrough, to: &postgres) }
    }

    @Test func wrongPasswordFails() throws {
        var client = SCRAMClientExchange(password: "pencil2")
        var server = SCRAMServerExchange(secret: RFC7677.secret)
        let serverFirst = try server.receiveClientFirst(client.clientFirstMessage())
        let clientFinal = try client.receiveServerFirst(serverFirst)
        #expect(throws: SCRAMError.authenticationFailed) { try server.receiveClientFinal(clientFinal) }
        #expect(server.clientKey == nil)
        #expect(!server.isAuthenticated)
        // The exchange is over: a retry is refused.
        #expect(throws: SCRAMError.unexpectedMessage) { try server.receiveClientFinal(clientFinal) }
    }

    @Test func mockExchangeAlwaysFails() throws {
        var client = SCRAMClientExchange(password: "pencil")
        var server = SCRAMServerExchange.mock(user: "nobody")
        let serverFirst = try server.receiveClientFirst(client.clientFirstMessage())
        #expect(text(serverFirst).contains(",i=4096"))
        let clientFinal = try client.receiveServerFirst(serverFirst)
        #expect(throws: SCRAMError.authenticationFailed) { try server.receiveClientFinal(clientFinal) }
        // Same user, same salt; so an attacker cannot tell it from a real user.
        #expect(SCRAMServerExchange.mock(user: "nobody").secret.salt == server.secret.salt)
        #expect(SCRAMServerExchange.mock(user: "other").secret.salt != server.secret.salt)
    }

    @Test func clientRejectsWrongServerSignature() throws {
        var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce, username: "user")
        _ = client.clientFirstMessage()
        _ = try client.receiveServerFirst(bytes(RFC7677.serverFirst))
        #expect(throws: SCRAMError.serverSignatureMismatch) {
            try client.verifyServerFinal(bytes("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
        }
        #expect(throws: SCRAMError.serverError("invalid-proof")) {
            try client.verifyServerFinal(bytes("e=invalid-proof"))
        }
        for bad in ["", "v=", "v=abc", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "v=Zm9v", ","] {
            #expect(throws: SCRAMError.self) { try client.verifyServerFinal(bytes(bad)) }
        }
        try client.verifyServerFinal(bytes(RFC7677.serverFinal))
    }

    @Test func serverWithoutKnowledgeOfPasswordIsCaught() throws {
        // A server that does not know the password can still send a
        // server-first; its signature will not verify.
        var client = SCRAMClientExchange(password: "pencil")
        var impostor = SCRAMServerExchange(secret: SCRAMSecret(
            iterations: 4096, salt: Crypto.base64Decode(RFC7677.salt)!,
            storedKey: Crypto.randomBytes(count: 32), serverKey: Crypto.randomBytes(count: 32)))
        let serverFirst = try impostor.receiveClientFirst(client.clientFirstMessage())
        _ = try client.receiveServerFirst(serverFirst)
        #expect(throws: SCRAMError.serverSignatureMismatch) {
            try client.verifyServerFinal(bytes("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
        }
    }

    @Test func gs2HeaderY() throws {
        var server = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
        _ = try server.receiveClientFirst(bytes("y,,n=user,r=" + RFC7677.clientNonce))
        // c= must now carry "y,,": the RFC's "biws" is "n,," and is refused.
        #expect(throws: SCRAMError.channelBindingMismatch) {
            try server.receiveClientFinal(bytes(RFC7677.clientFinal))
        }

        // A real y,, exchange: a client would send c=eSws; compute its proof by hand.
        var server2 = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
        let serverFirst = try server2.receiveClientFirst(bytes("y,,n=,r=" + RFC7677.clientNonce))
        let withoutProof = "c=eSws,r=" + RFC7677.clientNonce + RFC7677.serverNonce
        let authMessage = bytes("n=,r=" + RFC7677.clientNonce + "," + text(serverFirst) + "," + withoutProof)
        let clientKey = try #require(Crypto.base64Decode(RFC7677.clientKey))
        let signature = Crypto.hmacSHA256(key: Crypto.sha256(clientKey), data: authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        let serverFinal = try server2.receiveClientFinal(bytes(withoutProof + ",p=" + Crypto.base64Encode(proof)))
        #expect(text(serverFinal).hasPrefix("v="))
        #expect(server2.clientKey == clientKey)
    }

    @Test func serverRejectsChannelBindingAndAuthzid() {
        var server = SCRAMServerExchange(secret: RFC7677.secret)
        #expect(throws: SCRAMError.channelBindingNotSupported) {
            try server.receiveClientFirst(bytes("p=tls-server-end-point,,n=,r=abc"))
        }
        var server2 = SCRAMServerExchange(secret: RFC7677.secret)
        #expect(throws: SCRAMError.authorizationIdentityNotSupported) {
            try server2.receiveClientFirst(bytes("n,a=admin,n=,r=abc"))
        }
        var server3 = SCRAMServerExchange(secret: RFC7677.secret)
        #expect(throws: SCRAMError.unsupportedMandatoryExtension) {
            try server3.receiveClientFirst(bytes("n,,m=ext,n=,r=abc"))
        }
        #expect(SCRAMError.channelBindingNotSupported.description.contains("channel binding"))
    }

    @Test func serverRejectsNonceMismatch() throws {
        var server = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
        _ = try server.receiveClientFirst(bytes(RFC7677.clientFirst))
        let tampered = RFC7677.clientFinal.replacingFirst("k0,p=", with: "k1,p=")
        #expect(throws: SCRAMError.nonceMismatch) { try server.receiveClientFinal(bytes(tampered)) }
    }

    @Test func clientRejectsNonceNotExtendingItsOwn() throws {
        for serverFirst in ["r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                            "r=XOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                            "r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"] {
            var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce)
            _ = client.clientFirstMessage()
            #expect(throws: SCRAMError.nonceMismatch) { try client.receiveServerFirst(bytes(serverFirst)) }
        }
    }

    @Test func clientIterationLimit() {
        var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce)
        client.maximumIterations = 10_000
        _ = client.clientFirstMessage()
        #expect(throws: SCRAMError.self) {
            try client.receiveServerFirst(bytes(RFC7677.serverFirst.replacingFirst("i=4096", with: "i=100000")))
        }
    }

    @Test func messagesOutOfOrderAreRefused() throws {
        var server = SCRAMServerExchange(secret: RFC7677.secret)
        #expect(throws: SCRAMError.unexpectedMessage) { try server.receiveClientFinal(bytes(RFC7677.clientFinal)) }
        var client = SCRAMClientExchange(password: "pencil")
        #expect(throws: SCRAMError.unexpectedMessage) { try client.receiveServerFirst(bytes(RFC7677.serverFirst)) }
        #expect(throws: SCRAMError.unexpectedMessage) { try client.verifyServerFinal(bytes(RFC7677.serverFinal)) }
    }

    @Test func malformedClientFirstMessages() {
        let inputs = [
            "", ",", ",,", "n", "n,", "n,,", "n,,n=", "n,,n=user", "n,,n=user,", "n,,n=user,r=", "n,,n=user,x=abc",
            "n,,r=abc,n=user", "x,,n=,r=abc", "nn,,n=,r=abc", "n,x,n=,r=abc", "n,,n=,r=a b", "n,,n=,r=abc,",
            "n,,n=,r=abc,junk", "n,,=,r=abc", "\u{0}\u{0}\u{0}", "n,,n=,r=\u{7f}", "y,,n=,r=\u{e9}",
        ]
        for input in inputs {
            var server = SCRAMServerExchange(secret: RFC7677.secret)
            #expect(throws: SCRAMError.self, "\(input)") { try server.receiveClientFirst(bytes(input)) }
        }
        // Every prefix of a valid message but the whole one fails.
        let valid = bytes(RFC7677.clientFirst)
        for length in 0..<valid.count {
            var server = SCRAMServerExchange(secret: RFC7677.secret)
            let prefix = Array(valid[..<length])
            if (try? server.receiveClientFirst(prefix)) != nil {
                // A shorter client nonce is still a valid message.
                #expect(text(prefix).hasPrefix("n,,n=user,r=") && length > "n,,n=user,r=".utf8.count)
            }
        }
    }

    @Test func malformedClientFinalMessages() throws {
        let inputs = [
            "", ",", ",,", "c=biws", "c=biws,r=x", "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=Zm9v",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!!",
            "c=biw,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,junk,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "\u{ff}\u{fe}",
        ]
        for input in inputs {
            var server = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
            _ = try server.receiveClientFirst(bytes(RFC7677.clientFirst))
            #expect(throws: SCRAMError.self, "\(input)") { try server.receiveClientFinal(bytes(input)) }
        }
        let valid = bytes(RFC7677.clientFinal)
        for length in 0..<valid.count {
            var server = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
            _ = try server.receiveClientFirst(bytes(RFC7677.clientFirst))
            #expect(throws: SCRAMError.self) { try server.receiveClientFinal(Array(valid[..<length])) }
        }
    }

    @Test func malformedServerFirstMessages() {
        let inputs = [
            "", ",", "r=", "r=rOprNGfwEbeRWgbNEkqOxyz", "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096", "r=rOprNGfwEbeRWgbNEkqOxyz,s=!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
            "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "e=other-error", "\u{0}",
        ]
        for input in inputs {
            var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce)
            _ = client.clientFirstMessage()
            #expect(throws: SCRAMError.self, "\(input)") { try client.receiveServerFirst(bytes(input)) }
        }
    }

    @Test func randomGarbageNeverCrashes() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = bytes("nyrpcsive=,biws+/0123456789\u{0}\u{7f}")
        for _ in 0..<300 {
            let length = Int.random(in: 0..<64, using: &generator)
            let garbage = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            var server = SCRAMServerExchange(secret: RFC7677.secret)
            _ = try? server.receiveClientFirst(garbage)
            var server2 = SCRAMServerExchange(secret: RFC7677.secret, serverNonce: RFC7677.serverNonce)
            _ = try server2.receiveClientFirst(bytes(RFC7677.clientFirst))
            #expect(throws: SCRAMError.self) { try server2.receiveClientFinal(garbage) }
            var client = SCRAMClientExchange(password: "pencil", nonce: RFC7677.clientNonce)
            _ = client.clientFirstMessage()
            _ = try? client.receiveServerFirst(garbage)
            _ = try? client.verifyServerFinal(garbage)
        }
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        replacing(target, with: replacement, maxReplacements: 1)
    }
}
