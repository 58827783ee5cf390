// SCRAMClientExchange (receiveServerFirst/verifyServerFinal), plus an end-to-end property.
// Input: mode byte, then
//   mode % 3 == 0: server-first, 0x00, server-final; password client (RFC 7677 "pencil",
//                  fixed nonce), iteration cap 4096 so PBKDF2 stays cheap
//   mode % 3 == 1: same with pass-through keys (ClientKey/ServerKey) instead of a password
//   mode % 3 == 2: password, 0x00, salt-length byte, salt, iterations byte: a full
//                  client <-> server exchange (plain and pass-through) must succeed,
//                  a wrong password must fail
// Accepted messages are re-checked against an independent RFC 5802 computation.
import FuzzSupport
@testable import PoolerWire

private let clientNonce = "rOprNGfwEbeRWgbNEkqO"
private let comma = UInt8(ascii: ",")
private let rfcSalt = Crypto.base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==")!
private let rfcKeys = keys(password: Array("pencil".utf8), salt: rfcSalt, iterations: 4096)

private func keys(password: [UInt8], salt: [UInt8], iterations: Int) -> (client: [UInt8], server: [UInt8]) {
    let salted = Crypto.pbkdf2SHA256(password: password, salt: salt, iterations: iterations)
    return (Crypto.hmacSHA256(key: salted, data: Array("Client Key".utf8)),
            Crypto.hmacSHA256(key: salted, data: Array("Server Key".utf8)))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let mode = input.byte() % 3
    if mode == 2 { endToEnd(&input); return 0 }
    let serverFirst = input.untilNUL()
    let serverFinal = input.rest()
    var client = mode == 0
        ? SCRAMClientExchange(password: "pencil", nonce: clientNonce, username: "user")
        : SCRAMClientExchange(clientKey: rfcKeys.client, serverKey: rfcKeys.server, nonce: clientNonce)
    client.maximumIterations = 4096
    invariant((try? client.verifyServerFinal(serverFinal)) == nil, "server-final accepted before anything")
    let clientFirst = client.clientFirstMessage()
    let bare = Array(clientFirst.dropFirst(3))
    guard let clientFinal = try? client.receiveServerFirst(serverFirst) else {
        invariant(client.serverSalt == nil, "salt kept from a refused server-first")
        invariant((try? client.verifyServerFinal(serverFinal)) == nil, "exchange usable after a failure")
        return 0
    }
    // What the client accepted must be a well-formed server-first.
    let fields = serverFirst.split(separator: comma, omittingEmptySubsequences: false)
    invariant(fields.count >= 3, "accepted server-first with \(fields.count) fields")
    invariant(fields[0].starts(with: Array("r=".utf8)) && fields[1].starts(with: Array("s=".utf8))
              && fields[2].starts(with: Array("i=".utf8)), "accepted server-first without r=,s=,i=")
    let nonce = Array(fields[0].dropFirst(2))
    invariant(nonce.count > clientNonce.utf8.count && nonce.starts(with: Array(clientNonce.utf8)),
              "accepted a nonce that does not extend ours")
    invariant(nonce.allSatisfy { $0 >= 0x21 && $0 <= 0x7e && $0 != comma }, "accepted an unprintable nonce")
    for field in fields.dropFirst(3) {
        invariant(field.count >= 2 && field[field.startIndex + 1] == UInt8(ascii: "="), "accepted a non-attribute")
    }
    guard let salt = Crypto.base64Decode(bytes: fields[1].dropFirst(2)), !salt.isEmpty,
          let iterations = Int(String(decoding: fields[2].dropFirst(2), as: UTF8.self)),
          iterations >= 1, iterations <= 4096 else {
        invariant(false, "accepted a bad salt or iteration count: \(hexdump(serverFirst))"); return 0
    }
    invariant(fields[2].dropFirst(2).allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "iteration count with non-digits")
    invariant(client.serverSalt == salt && client.serverIterations == iterations, "serverSalt/serverIterations wrong")
    let (clientKey, serverKey) = mode == 0
        ? keys(password: Array("pencil".utf8), salt: salt, iterations: iterations) : rfcKeys
    let withoutProof = Array("c=biws,r=".utf8) + nonce
    let authMessage = bare + [comma] + serverFirst + [comma] + withoutProof
    let signature = Crypto.hmacSHA256(key: Crypto.sha256(clientKey), data: authMessage)
    let proof = zip(clientKey, signature).map { $0 ^ $1 }
    let expectedFinal = withoutProof + Array(",p=".utf8) + Crypto.base64EncodeBytes(proof)
    invariant(clientFinal == expectedFinal, "client-final \(hexdump(clientFinal)) != \(hexdump(expectedFinal))")

    let serverSignature = Crypto.hmacSHA256(key: serverKey, data: authMessage)
    let finalFields = serverFinal.split(separator: comma, omittingEmptySubsequences: false)
    let verified = (try? client.verifyServerFinal(serverFinal)) != nil
    if verified {
        invariant(finalFields.first?.starts(with: Array("v=".utf8)) == true
                  && Crypto.base64Decode(bytes: finalFields[0].dropFirst(2)) == serverSignature,
                  "accepted a wrong server signature")
    }
    trace("server-first accepted, server-final \(verified ? "verified" : "refused")")
    if serverFinal == Array("v=".utf8) + Crypto.base64EncodeBytes(serverSignature) {
        invariant(verified, "refused the right server signature")
    }
    return 0
}

private func endToEnd(_ input: inout FuzzInput) {
    let password = String(decoding: input.untilNUL(), as: UTF8.self)
    let saltLength = 1 + Int(input.byte()) % 32
    var salt = input.take(saltLength)
    while salt.count < saltLength { salt.append(0x5a) }
    let iterations = 1 + Int(input.byte()) % 8
    let secret = SCRAMSecret.make(password: password, salt: salt, iterations: iterations)
    invariant(SCRAMSecret.parse(secret.text) == secret, "secret text does not round-trip")

    var server = SCRAMServerExchange(secret: secret)
    var client = SCRAMClientExchange(password: password)
    do {
        let serverFirst = try server.receiveClientFirst(client.clientFirstMessage())
        let serverFinal = try server.receiveClientFinal(try client.receiveServerFirst(serverFirst))
        try client.verifyServerFinal(serverFinal)
    } catch {
        invariant(false, "plain exchange failed: \(error)")
    }
    invariant(server.isAuthenticated, "server not authenticated after success")
    guard let clientKey = server.clientKey else { invariant(false, "no clientKey"); return }

    // Pass-through: the recovered keys log in to a server holding the same verifier.
    var server2 = SCRAMServerExchange(secret: secret)
    var passThrough = SCRAMClientExchange(clientKey: clientKey, serverKey: server.serverKey)
    do {
        let serverFirst = try server2.receiveClientFirst(passThrough.clientFirstMessage())
        let serverFinal = try server2.receiveClientFinal(try passThrough.receiveServerFirst(serverFirst))
        try passThrough.verifyServerFinal(serverFinal)
    } catch {
        invariant(false, "pass-through exchange failed: \(error)")
    }
    // A wrong password fails.
    var server3 = SCRAMServerExchange(secret: secret)
    var wrong = SCRAMClientExchange(password: password + "x")
    var refused = false
    do {
        let serverFirst = try server3.receiveClientFirst(wrong.clientFirstMessage())
        _ = try server3.receiveClientFinal(try wrong.receiveServerFirst(serverFirst))
    } catch {
        refused = true
    }
    invariant(refused && !server3.isAuthenticated, "wrong password accepted")
    trace("end to end ok")
}

@_cdecl("FuzzSCRAMClient_main")
public func FuzzSCRAMClientMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
