// SessionCommandScanner (scan, mightContainSessionCommand) and StartupOptions.parse.
// Input: first byte 0x01: the rest is an `options` startup parameter value;
// otherwise the whole input is a Query message payload (SQL text, NUL, maybe more bytes).
import FuzzSupport
import PoolerCoreScanners

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if size > 0 && data[0] == 0x01 {
        checkOptions(String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self))
        return 0
    }
    let payload = UnsafeRawBufferPointer(start: data, count: size)
    // As ClientStatementForwarding.noteSessionCommands: pre-check on the payload, then scan
    // the NUL-terminated text.
    let mightContain = SessionCommandScanner.mightContainSessionCommand(payload)
    guard let nul = payload.firstIndex(of: 0) else { return 0 }
    let text = String(decoding: payload[0..<nul], as: UTF8.self)
    let commands = SessionCommandScanner.scan(text)
    // The pre-check is a filter: it may say yes needlessly, never no for a session command.
    invariant(commands.isEmpty || mightContain,
              "pre-check missed \(commands) in \(text.debugDescription)")
    for command in commands {
        switch command {
        case .set(let name, let value):
            invariant(!value.isEmpty, "SET with an empty value")
            invariant(name == name.lowercased(), "name not lowercased")
            invariant(value.lowercased() != "default", "SET ... TO DEFAULT not turned into RESET")
        case .setConfig(let name, _), .reset(let name):
            invariant(name == name.lowercased(), "name not lowercased")
        case .resetAll, .discardAll, .deallocateAll:
            break
        }
    }
    // quoteLiteral must double every quote byte (it once compared Characters, so a quote
    // followed by a combining mark was not doubled; fixed, crashes/session/ keeps the input).
    let literal = SessionCommandScanner.quoteLiteral(text)
    let byteLiteral = quotedBytes(text)
    invariant(literal == byteLiteral,
             "quoteLiteral(\(text.debugDescription)) = \(literal.debugDescription), expected \(byteLiteral.debugDescription)")
    // The scanner reads a correctly quoted literal back: set_config('x', '<v>', false).
    let replay = SessionCommandScanner.scan("SELECT set_config('x', \(byteLiteral), false)")
    invariant(replay == [.setConfig(name: "x", value: text)],
              "set_config with \(byteLiteral.debugDescription) scanned as \(replay)")
    return 0
}

private func quotedBytes(_ s: String) -> String {
    var out: [UInt8] = [0x27]
    for b in s.utf8 { if b == 0x27 { out.append(0x27) }; out.append(b) }
    out.append(0x27)
    return String(decoding: out, as: UTF8.self)
}

/// Escapes spaces, tabs and backslashes the way StartupOptions reads them (at the byte level).
private func escaped(_ s: String) -> String {
    var out: [UInt8] = []
    for b in s.utf8 {
        if b == 0x20 || b == 0x09 || b == 0x5c { out.append(0x5c) }
        out.append(b)
    }
    return String(decoding: out, as: UTF8.self)
}

private func checkOptions(_ text: String) {
    guard let settings = StartupOptions.parse(text) else { return }
    for (name, _) in settings {
        invariant(!name.isEmpty, "empty option name from \(text.debugDescription)")
        invariant(!name.contains("-"), "dash left in option name \(name.debugDescription)")
    }
    // parse(render(x)) == x
    let rendered = settings.map { "-c " + escaped($0.0) + "=" + escaped($0.1) }.joined(separator: " ")
    guard let again = StartupOptions.parse(rendered) else {
        invariant(false, "rendered options \(rendered.debugDescription) refused (from \(text.debugDescription))"); return
    }
    invariant(again.map { $0.0 } == settings.map { $0.0 } && again.map { $0.1 } == settings.map { $0.1 },
              "options round trip: \(settings) -> \(rendered.debugDescription) -> \(again)")
}

@_cdecl("FuzzSession_main")
public func FuzzSessionMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        var empty: UInt8 = 0
        return fuzz(data ?? withUnsafePointer(to: &empty) { $0 }, size)
    }
}
