import Testing
import PoolerConfig
import PoolerWire
@testable import PoolerCore

/// Drives ClientAuthStateMachine (pooler as server) with real client-side exchanges.
@Suite struct AuthStateMachineTests {
    static func payload(_ bytes: [UInt8]) -> [UInt8] { Array(bytes[5...]) }

    /// Runs a SCRAM login of `password` against a machine holding `secret`.
    static func scramLogin(password: String, secret: String?, authType: AuthType = .scramSHA256)
        -> (ClientAuthStateMachine.Action, ClientAuthStateMachine) {
        var machine = ClientAuthStateMachine(user: "app", authType: authType, secret: secret)
        guard case .send(let request) = machine.start() else { return (.fail(message: "no request", code: ""), machine) }
        #expect(request[0] == BackendMessageID.authentication)
        var client = SCRAMClientExchange(password: password)
        var w = MessageWriter()
        w.saslInitialResponse(mechanism: "SCRAM-SHA-256", data: client.clientFirstMessage())
        let first = payload(w.bytes).withUnsafeBytes { machine.received($0) }
        guard case .send(let cont) = first else { return (first, machine) }
        let serverFirst = Array(cont[9...]) // type, length, code
        guard let final = try? client.receiveServerFirst(serverFirst) else { return (.fail(message: "bad server-first", code: ""), machine) }
        var w2 = MessageWriter()
        w2.saslResponse(final)
        let result = payload(w2.bytes).withUnsafeBytes { machine.received($0) }
        return (result, machine)
    }

    @Test func scramAgainstVerifierRecoversKeys() {
        let secret = SCRAMSecret.make(password: "pw", salt: Array("saltsaltsalt".utf8), iterations: 4096).text
        let (action, machine) = Self.scramLogin(password: "pw", secret: secret)
        guard case .accept(let final) = action else { Issue.record("expected accept, got \(action)"); return }
        #expect(final != nil)
        #expect(machine.recoveredKeys != nil)
    }

    @Test func scramWrongPasswordFailsWith28P01() {
        let (action, _) = Self.scramLogin(password: "nope", secret: "pw")
        guard case .fail(let message, let code) = action else { Issue.record("expected failure"); return }
        #expect(code == "28P01")
        #expect(message == "password authentication failed for user \"app\"")
    }

    @Test func unknownUserLooksLikeWrongPassword() {
        let (action, _) = Self.scramLogin(password: "pw", secret: nil)
        guard case .fail(_, let code) = action else { Issue.record("expected failure"); return }
        #expect(code == "28P01")
    }

    @Test func md5AuthTypeUsesSCRAMForSCRAMSecret() {
        let secret = SCRAMSecret.make(password: "pw", salt: Array("0123456789ab".utf8), iterations: 4096).text
        let (action, _) = Self.scramLogin(password: "pw", secret: secret, authType: .md5)
        guard case .accept = action else { Issue.record("expected accept"); return }
    }

    @Test func md5Login() {
        var machine = ClientAuthStateMachine(user: "app", authType: .md5, secret: "secret")
        guard case .send(let request) = machine.start() else { Issue.record("no request"); return }
        let salt = Array(request[9..<13])
        for (password, ok) in [("secret", true), ("wrong", false)] {
            var m = machine
            var w = MessageWriter()
            w.passwordMessage(MD5Password.response(user: "app", passwordOrStoredHash: password, salt: salt))
            let action = Self.payload(w.bytes).withUnsafeBytes { m.received($0) }
            switch action {
            case .accept: #expect(ok)
            case .fail(_, let code): #expect(!ok); #expect(code == "28P01")
            case .send: Issue.record("unexpected send")
            }
        }
    }

    @Test func plainChecksEverySecretKind() {
        #expect(PasswordCheck.matches(password: "pw", user: "u", secret: "pw"))
        #expect(PasswordCheck.matches(password: "pw", user: "u", secret: MD5Password.encrypt(user: "u", password: "pw")))
        #expect(PasswordCheck.matches(password: "pw", user: "u", secret: SCRAMSecret.make(password: "pw", salt: [1, 2, 3], iterations: 16).text))
        #expect(!PasswordCheck.matches(password: "px", user: "u", secret: "pw"))
    }

    @Test func trustAcceptsImmediately() {
        var machine = ClientAuthStateMachine(user: "x", authType: .trust, secret: nil)
        guard case .accept(nil) = machine.start() else { Issue.record("expected accept"); return }
    }

    @Test func garbageSASLIsAProtocolError() {
        var machine = ClientAuthStateMachine(user: "app", authType: .scramSHA256, secret: "pw")
        _ = machine.start()
        let action = [UInt8(ascii: "X"), 0, 0, 0].withUnsafeBytes { machine.received($0) }
        guard case .fail(_, let code) = action else { Issue.record("expected failure"); return }
        #expect(code == "08P01")
    }

    @Test func serverLoginAnswersMD5AndReady() {
        var login = ServerLoginStateMachine(user: "app", credential: .plaintext("pw"))
        var w = MessageWriter()
        w.authentication(AuthenticationCode.md5Password, payload: [1, 2, 3, 4])
        let action = Self.payload(w.bytes).withUnsafeBytes { login.received(type: BackendMessageID.authentication, payload: $0) }
        guard case .send(let bytes) = action else { Issue.record("expected password message"); return }
        let expected = MD5Password.response(user: "app", passwordOrStoredHash: "pw", salt: [1, 2, 3, 4])
        #expect(Array(bytes[5..<bytes.count - 1]) == Array(expected.utf8))
        let ready = [UInt8(ascii: "I")].withUnsafeBytes { login.received(type: BackendMessageID.readyForQuery, payload: $0) }
        guard case .ready = ready else { Issue.record("expected ready"); return }
    }

    @Test func serverLoginWithoutSecretFailsClearly() {
        var login = ServerLoginStateMachine(user: "app", credential: .none)
        var w = MessageWriter()
        w.authentication(AuthenticationCode.cleartextPassword)
        let action = Self.payload(w.bytes).withUnsafeBytes { login.received(type: BackendMessageID.authentication, payload: $0) }
        guard case .fail(let message, _) = action else { Issue.record("expected failure"); return }
        #expect(message.contains("no plaintext password"))
    }
}
