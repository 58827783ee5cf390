import Glibc

/// Reads a whole text file; failures carry PgBouncer's wording and strerror text.
enum FileReading {
    static func read(_ path: String, what: String = "file") throws(ConfigError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path, what: what) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(path, what: what)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func failure(_ path: String, what: String) -> ConfigError {
        ConfigError("could not load \(what) \"\(path)\": \(String(cString: strerror(errno)))")
    }
}
