#if canImport(Glibc)
import Glibc
#endif

/// An invariant that must hold: on failure the message goes to stderr and the process
/// aborts, which libFuzzer reports as a crash and saves the input as `crash-<sha1>`.
@inline(never)
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        let text = "INVARIANT VIOLATED at \(file):\(line): \(message())\n"
        fputs(text, stderr)
        abort()
    }
}

/// Reads fuzz input as a few fields: `take(n)` bytes, `byte()`, then `rest()`.
public struct FuzzInput {
    public let bytes: [UInt8]
    public var offset = 0

    public init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = Array(UnsafeBufferPointer(start: data, count: size))
    }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func take(_ n: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, n))
        defer { offset = end }
        return Array(bytes[offset..<end])
    }

    /// Bytes up to the next 0x00 (which is consumed), or to the end.
    public mutating func untilNUL() -> [UInt8] {
        var end = offset
        while end < bytes.count && bytes[end] != 0 { end += 1 }
        let part = Array(bytes[offset..<end])
        offset = min(bytes.count, end + 1)
        return part
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}

public func hexdump(_ bytes: some Collection<UInt8>) -> String {
    bytes.map { let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s }.joined()
}

import CFuzzerDriver

/// SwiftPM links a debug executable with `--defsym main=<Target>_main`, so libFuzzer's own
/// `main` (FuzzerMain.cpp) is never used: each target defines `<Target>_main` and calls this,
/// which hands the command line and the test function to libFuzzer's driver.
public func runLibFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                         _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, test)
}

private let tracing = getenv("FUZZ_TRACE") != nil

/// With FUZZ_TRACE set, prints how far an input got (to check that seeds reach deep paths).
public func trace(_ message: @autoclosure () -> String) {
    if tracing { fputs("trace: \(message())\n", stderr) }
}

private let strict = getenv("FUZZ_STRICT") != nil
nonisolated(unsafe) private var reportedKnownBugs: Set<String> = []

/// An invariant that a known, reported bug in Sources violates (see README.md). By default a
/// violation is printed once per run and the input goes on, so fuzzing keeps looking for
/// other bugs; with FUZZ_STRICT=1 it aborts like `invariant` (use that once the bug is fixed).
public func knownBug(_ id: String, _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if condition() { return }
    if strict {
        fputs("INVARIANT VIOLATED (known bug \(id)): \(message())\n", stderr)
        abort()
    }
    if reportedKnownBugs.insert(id).inserted {
        fputs("KNOWN BUG \(id) hit (FUZZ_STRICT=1 to stop on it): \(message())\n", stderr)
    }
}
