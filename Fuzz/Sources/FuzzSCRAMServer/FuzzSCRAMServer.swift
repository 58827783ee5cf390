// SCRAMServerExchange (receiveClientFirst/receiveClientFinal) and SCRAMSecret.parse.
// Input: mode byte, client-first-message, 0x00, client-final-message.
//   mode % 4 == 0: RFC 7677 user (password "pencil"), no channel binding on offer
//   mode % 4 == 1: same, with tls-server-end-point data on offer (-PLUS)
//   mode % 4 == 2: mock exchange (unknown user): must never authenticate
//   mode % 4 == 3: the rest is a SCRAMSecret text: parse, check, round trip
// A client-final starting with 0xff is sent before the client-first (state machine check).
// Every success is re-checked against an independent RFC 5802 computation in this file.
import FuzzSupport
@testable import PoolerWire

private let rfcSalt = Crypto.base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==")!
private let rfcSecret = SCRAMSecret.make(password: "pencil", salt: rfcSalt, iterations: 4096)
private let rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
/// Stand-in tls-server-end-point hash.
private let bindingData: [UInt8] = (0..<32).map { UInt8($0 &* 7 &+ 1) }
private let comma = UInt8(ascii: ",")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let mode = input.byte() % 4
    if mode == 3 {
        checkSecret(String(decoding: input.rest(), as: UTF8.self))
        return 0
    }
    let first = input.untilNUL()
    let final = input.rest()
    var exchange: SCRAMServerExchange
    switch mode {
    case 2: exchange = .mock(user: "nobody")
    default:
        exchange = SCRAMServerExchange(secret: rfcSecret, serverNonce: rfcServerNonce)
        if mode == 1 { exchange.channelBindingData = bindingData }
    }
    // Final before first is refused and poisons the exchange.
    if final.first == 0xff {
        invariant((try? exchange.receiveClientFinal(final)) == nil, "client-final accepted before client-first")
        invariant((try? exchange.receiveClientFirst(first)) == nil, "exchange usable after a failure")
        return 0
    }
    guard let serverFirst = try? exchange.receiveClientFirst(first) else {
        invariant(!exchange.isAuthenticated && exchange.clientKey == nil, "failed first message authenticated")
        invariant((try? exchange.receiveClientFinal(final)) == nil, "exchange usable after a failure")
        return 0
    }
    let firstFields = first.split(separator: comma, omittingEmptySubsequences: false)
    invariant(firstFields.count >= 4, "accepted client-first with \(firstFields.count) fields")
    let flag = Array(firstFields[0])
    switch String(decoding: flag, as: UTF8.self) {
    case "n": break
    case "y": invariant(mode != 1, "y,, accepted while -PLUS was offered (downgrade)")
    case "p=tls-server-end-point": invariant(mode == 1, "p= accepted without channel binding on offer")
    default: invariant(false, "accepted gs2 flag \(hexdump(flag))")
    }
    invariant(firstFields[1].isEmpty, "accepted an authzid")
    invariant(firstFields[2].starts(with: Array("n=".utf8)), "accepted without n=")
    invariant(firstFields[3].starts(with: Array("r=".utf8)), "accepted without r=")
    let clientNonce = Array(firstFields[3].dropFirst(2))
    invariant(!clientNonce.isEmpty && clientNonce.allSatisfy { $0 >= 0x21 && $0 <= 0x7e && $0 != comma },
              "accepted a nonce that is not printable")
    for field in firstFields.dropFirst(4) {
        invariant(field.count >= 2 && field[field.startIndex + 1] == UInt8(ascii: "="), "accepted a non-attribute")
    }
    var expected = Array("r=".utf8) + clientNonce
    if mode == 2 {
        // Random server nonce: check the shape only.
        invariant(serverFirst.starts(with: expected), "server-first does not echo the client nonce")
        invariant((try? exchange.receiveClientFinal(final)) == nil, "mock exchange accepted a client-final")
        invariant(!exchange.isAuthenticated, "mock exchange authenticated")
        return 0
    }
    expected += Array(rfcServerNonce.utf8) + Array(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)
    invariant(serverFirst == expected, "server-first \(hexdump(serverFirst)) != \(hexdump(expected))")

    trace("client-first accepted")
    let result = try? exchange.receiveClientFinal(final)
    guard let serverFinal = result else {
        invariant(!exchange.isAuthenticated && exchange.clientKey == nil, "failed final, yet authenticated")
        invariant((try? exchange.receiveClientFinal(final)) == nil, "exchange usable after a failure")
        return 0
    }
    // Independent check of everything the server accepted.
    let nonce = clientNonce + Array(rfcServerNonce.utf8)
    let gs2Length = firstFields[0].count + 1 + firstFields[1].count + 1
    let gs2Header = Array(first[0..<gs2Length]) + (flag.first == UInt8(ascii: "p") ? bindingData : [])
    let bare = Array(first[gs2Length...])
    let finalFields = final.split(separator: comma, omittingEmptySubsequences: false)
    invariant(finalFields.count >= 3, "accepted client-final with \(finalFields.count) fields")
    invariant(finalFields[0].starts(with: Array("c=".utf8))
              && Crypto.base64Decode(bytes: finalFields[0].dropFirst(2)) == gs2Header,
              "accepted wrong channel binding")
    invariant(Array(finalFields[1]) == Array("r=".utf8) + nonce, "accepted wrong nonce")
    let proofField = finalFields[finalFields.count - 1]
    invariant(proofField.starts(with: Array("p=".utf8)), "accepted without p= last")
    let withoutProof = Array(final[0..<(final.count - proofField.count - 1)])
    let authMessage = bare + [comma] + serverFirst + [comma] + withoutProof
    guard let proof = Crypto.base64Decode(bytes: proofField.dropFirst(2)), proof.count == 32 else {
        invariant(false, "accepted a malformed proof"); return 0
    }
    let signature = Crypto.hmacSHA256(key: rfcSecret.storedKey, data: authMessage)
    let clientKey = zip(proof, signature).map { $0 ^ $1 }
    invariant(Crypto.sha256(clientKey) == rfcSecret.storedKey, "accepted a wrong proof")
    invariant(exchange.isAuthenticated && exchange.clientKey == clientKey, "success without the right clientKey")
    invariant(exchange.usedChannelBinding == (flag.first == UInt8(ascii: "p")), "usedChannelBinding wrong")
    let serverSignature = Crypto.hmacSHA256(key: rfcSecret.serverKey, data: authMessage)
    invariant(serverFinal == Array("v=".utf8) + Crypto.base64EncodeBytes(serverSignature), "wrong server-final")
    invariant((try? exchange.receiveClientFinal(final)) == nil, "client-final accepted twice")
    trace("authenticated (mode \(mode))")
    return 0
}

private func checkSecret(_ text: String) {
    guard let secret = SCRAMSecret.parse(text) else { return }
    trace("secret parsed")
    invariant(secret.iterations >= 1 && secret.iterations <= Int(Int32.max), "iterations \(secret.iterations)")
    invariant(!secret.salt.isEmpty && secret.storedKey.count == 32 && secret.serverKey.count == 32,
              "bad part sizes in \(secret)")
    invariant(text.hasPrefix("SCRAM-SHA-256$"), "parsed without the prefix")
    let canonical = secret.text
    invariant(SCRAMSecret.parse(canonical) == secret, "parse(text) does not round-trip: \(canonical)")
    invariant(SCRAMSecret.parse(canonical)?.text == canonical, "text is not canonical")
    // The text form has exactly two '$' and two ':'.
    invariant(text.utf8.filter { $0 == UInt8(ascii: "$") }.count == 2, "parsed with a stray $")
    invariant(text.utf8.filter { $0 == UInt8(ascii: ":") }.count == 2, "parsed with a stray :")
}

@_cdecl("FuzzSCRAMServer_main")
public func FuzzSCRAMServerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
