// AdminParse.parse on arbitrary text, plus round trips: a SET and a command built from
// fuzzed key/value/argument strings, quoted the way the grammar says, must parse back.
// Input: the whole input is one query; it is also split at 0x00 into key, value, argument.
import FuzzSupport
import FuzzPoolerAdmin

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let sql = String(decoding: bytes, as: UTF8.self)
    checkResult(AdminParse.parse(sql), sql)

    var input = FuzzInput(data, size)
    let key = String(decoding: input.untilNUL(), as: UTF8.self)
    let value = String(decoding: input.untilNUL(), as: UTF8.self)
    let argument = String(decoding: input.rest(), as: UTF8.self)
    roundTripSet(key: key, value: value)
    roundTripCommand(argument)
    return 0
}

private func checkResult(_ result: Result<AdminCommand, AdminError>, _ sql: String) {
    guard case .success(let command) = result else { return }
    switch command {
    case .show(let subject):
        invariant(AdminParse.showSubjects.contains(subject)
                  || AdminParse.fakeParameters.contains { $0.name == subject }, "SHOW \(subject) accepted")
        invariant(subject == subject.lowercased(), "subject not lowercased")
    case .set(let key, let value):
        invariant(!key.isEmpty && key.utf8.count < 64 && value.utf8.count < 256, "SET sizes \(key.utf8.count)/\(value.utf8.count)")
        let head = sql.utf8.drop { [0x20, 0x09, 0x0a, 0x0d].contains($0) }.prefix(3)
        invariant(String(decoding: head, as: UTF8.self).lowercased() == "set", "SET parsed from \(sql.debugDescription)")
    case .killClient(let argument):
        _ = command.clientID
        invariant(argument.utf8.count < 64, "argument too long")
    case .pause(let a), .resume(let a), .kill(let a), .reconnect(let a), .waitClose(let a):
        invariant(a.map { !$0.isEmpty && $0.utf8.count < 64 } ?? true, "optional argument empty or too long")
    case .disable(let a), .enable(let a):
        invariant(a.utf8.count < 64, "argument too long")
    case .suspend, .reload, .shutdown:
        break
    }
    _ = command.completionTag
}

/// Quoted at the byte level (a Character such as `"` + U+0301 still holds a quote byte).
private func quoted(_ s: String, _ q: Character) -> String {
    let quote = q.asciiValue!
    var out: [UInt8] = [quote]
    for b in s.utf8 { if b == quote { out.append(quote) }; out.append(b) }
    out.append(quote)
    return String(decoding: out, as: UTF8.self)
}

private func isWord(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a)
        || ($0 >= 0x41 && $0 <= 0x5a) || $0 == 0x5f }
}

/// SET "key" = 'value' (quotes doubled) gives back key and value when the quoted tokens fit
/// PgBouncer's buffers (shorter than 64 and 256 bytes); `SET key = word` when both are words.
private func roundTripSet(key: String, value: String) {
    guard !key.isEmpty else { return }
    let qKey = quoted(key, "\""), qValue = quoted(value, "'")
    let fits = qKey.utf8.count < 64 && qValue.utf8.count < 256
    let text = "SET \(qKey) = \(qValue)"
    switch AdminParse.parse(text) {
    case .success(.set(let k, let v)):
        invariant(fits && k == key && v == value, "\(text.debugDescription) parsed as SET \(k.debugDescription) = \(v.debugDescription)")
    case .failure(.badArguments):
        invariant(!fits, "\(text.debugDescription) refused though it fits")
    default:
        invariant(false, "\(text.debugDescription) did not parse as SET")
    }
    if isWord(key) && isWord(value) && key.utf8.count < 64 && value.utf8.count < 256 {
        let plain = "set \(key) TO \(value);"
        invariant(AdminParse.parse(plain) == .success(.set(key: key, value: value)), "\(plain) did not round-trip")
    }
}

/// PAUSE "argument" (quotes doubled) gives back the argument.
private func roundTripCommand(_ argument: String) {
    guard !argument.isEmpty else { return }
    let q = quoted(argument, "\"")
    let text = " pause\t\(q) ;"
    let result = AdminParse.parse(text)
    if q.utf8.count < 64 {
        invariant(result == .success(.pause(argument)), "\(text.debugDescription) parsed as \(result)")
    } else {
        invariant(result == .failure(.badArguments), "\(text.debugDescription) with a long argument parsed as \(result)")
    }
}

@_cdecl("FuzzAdmin_main")
public func FuzzAdminMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
