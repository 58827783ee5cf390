import Benchmark
import PoolerConfig
import PoolerCore
import PoolerWire

// SCRAM-SHA-256 login cost: one complete exchange per benchmark iteration between the
// pooler's two SCRAM sides, through their state machines and wire frames:
// ClientAuthStateMachine (the pooler as the server a client logs in to, over
// SCRAMServerExchange) against ServerLoginStateMachine (the pooler logging in to
// PostgreSQL, over SCRAMClientExchange):
//
//   AuthenticationSASL → SASLInitialResponse → AuthenticationSASLContinue →
//   SASLResponse → AuthenticationSASLFinal (verified) → AuthenticationOk
//
// Each frame is built by the sending side's MessageWriter and read by the other
// side through FrameScanner, as the connections do; both proofs are checked, so a
// failed login stops the run. Times are µs per login; mallocs are per login and
// include libcrypto's own (no zero threshold: a login is not on the per-query path).

private let user = "bench"
private let password = "pgbench-password"

/// The AuthenticationOk the pooler sends once the client is authenticated
/// (ClientConnection.authenticated).
private let authenticationOK: [UInt8] = {
    var writer = MessageWriter()
    writer.authentication(AuthenticationCode.ok)
    return writer.bytes
}()

/// Calls `body` with the type and payload of the single frame in `bytes`.
@inline(__always)
private func withFrame<Result>(_ bytes: [UInt8], _ body: (UInt8, UnsafeRawBufferPointer) -> Result) -> Result {
    bytes.withUnsafeBytes { raw in
        guard case .frame(let frame) = FrameScanner.scan(raw, from: 0, maxPacketSize: 10_000),
              frame.end == raw.count else { fatalError("not one whole frame") }
        return body(frame.type, UnsafeRawBufferPointer(rebasing: raw[frame.payloadStart..<frame.end]))
    }
}

private func sendBytes(_ action: ServerLoginStateMachine.Action, step: String) -> [UInt8] {
    guard case .send(let bytes) = action else { fatalError("server login, \(step): \(action)") }
    return bytes
}

private func expectNone(_ action: ServerLoginStateMachine.Action, step: String) {
    guard case .none = action else { fatalError("server login, \(step): \(action)") }
}

/// One login; returns the keys the server side recovered (nil unless the secret is a
/// SCRAM verifier), after both sides accepted the other's proof.
@inline(never)
private func login(secret: String, credential: ServerCredential) -> (clientKey: [UInt8], serverKey: [UInt8])? {
    var server = ClientAuthStateMachine(user: user, authType: .scramSHA256, secret: secret)
    var client = ServerLoginStateMachine(user: user, credential: credential)

    guard case .send(let saslRequest) = server.start() else { fatalError("client auth: no SASL request") }
    let initialResponse = sendBytes(withFrame(saslRequest) { client.received(type: $0, payload: $1) },
                                    step: "AuthenticationSASL")
    let saslContinue: [UInt8] = withFrame(initialResponse) { type, payload in
        precondition(type == FrontendMessageID.password)
        guard case .send(let bytes) = server.received(payload) else { fatalError("client auth: client-first refused") }
        return bytes
    }
    let response = sendBytes(withFrame(saslContinue) { client.received(type: $0, payload: $1) },
                             step: "AuthenticationSASLContinue")
    let saslFinal: [UInt8] = withFrame(response) { type, payload in
        precondition(type == FrontendMessageID.password)
        guard case .accept(let final?) = server.received(payload) else { fatalError("client auth: proof refused") }
        return final
    }
    expectNone(withFrame(saslFinal) { client.received(type: $0, payload: $1) }, step: "AuthenticationSASLFinal")
    expectNone(withFrame(authenticationOK) { client.received(type: $0, payload: $1) }, step: "AuthenticationOk")
    return server.recoveredKeys
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 3,
        scalingFactor: .one, // one iteration = one login
        maxDuration: .seconds(3),
        maxIterations: 2_000
    )

    // The verifier PostgreSQL stores for the password (random salt, 4096 iterations),
    // as an auth_file or auth_query would give it.
    let verifier = SCRAMSecret.make(password: password)
    precondition(verifier.iterations == 4_096)
    let storedSecret = verifier.text

    // Keys recovered from a client's login: what the pooler logs in to PostgreSQL with
    // when the auth_file holds a SCRAM verifier (SCRAM pass-through).
    guard let recovered = login(secret: storedSecret, credential: .plaintext(password)) else {
        fatalError("no keys recovered from a login against a stored verifier")
    }
    precondition(login(secret: storedSecret, credential: .scramKeys(clientKey: recovered.clientKey,
                                                                     serverKey: recovered.serverKey)) != nil)
    precondition(login(secret: password, credential: .plaintext(password)) == nil) // plaintext: no keys

    // Stored verifier, password on the other side: the server side does no PBKDF2 (the
    // verifier holds StoredKey/ServerKey); the client side derives SaltedPassword with
    // 4096 PBKDF2 iterations, as libpq does when it logs in to the pooler.
    Benchmark("StoredSecret") { _ in
        blackHole(login(secret: storedSecret, credential: .plaintext(password)))
    }

    // Stored verifier on both ends of the pooler: a client logs in against the
    // verifier, the pooler logs in to PostgreSQL with the recovered ClientKey/ServerKey.
    // No PBKDF2 anywhere: this pair is the pooler's own cost per client login plus per
    // server login with a SCRAM auth_file.
    Benchmark("StoredSecretPassThrough") { _ in
        blackHole(login(secret: storedSecret,
                        credential: .scramKeys(clientKey: recovered.clientKey, serverKey: recovered.serverKey)))
    }

    // Plain-text password in the auth_file: the server side makes a verifier with a
    // fresh salt and 4096 PBKDF2 iterations for every login (SCRAMSecret.make, as
    // PgBouncer does), and the client side (the pooler's server login with a plaintext
    // credential) runs PBKDF2 over the salt it is sent: two PBKDF2 runs per login.
    Benchmark("PlaintextPassword") { _ in
        blackHole(login(secret: password, credential: .plaintext(password)))
    }

    // What one PBKDF2-HMAC-SHA-256 with 4096 iterations costs by itself (libcrypto).
    let salt = Crypto.randomBytes(count: SCRAMSecret.defaultSaltLength)
    let passwordBytes = Array(password.utf8)
    Benchmark("PBKDF2x4096") { _ in
        blackHole(Crypto.pbkdf2SHA256(password: passwordBytes, salt: salt, iterations: SCRAMSecret.defaultIterations))
    }
}
