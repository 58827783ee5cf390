import Foundation
import Glibc

/// Child processes through posix_spawn: stdio redirected to files (never to
/// our own pipes, so nothing a child leaves running can hold `swift test`
/// open), every other descriptor closed, signals reset, cwd `/`.
enum Subprocess {
    struct Output: CustomStringConvertible {
        /// Exit code, or 128 + signal number.
        let status: Int32
        let stdout: String
        let stderr: String
        let timedOut: Bool

        var description: String {
            "exit \(status)\(timedOut ? " (timed out)" : "")\nstdout:\n\(tail(stdout))\nstderr:\n\(tail(stderr))"
        }
    }

    /// Starts `argv` (argv[0] looked up in PATH when it has no slash).
    /// `environment` entries are added to (or replace) ours.
    static func spawn(_ argv: [String],
                      environment: [String: String] = [:],
                      stdoutPath: String = "/dev/null",
                      stderrPath: String = "/dev/null") throws -> pid_t {
        precondition(!argv.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let closeFrom = GlibcExtras.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let chdir = GlibcExtras.addChdir { _ = chdir(&actions, "/") }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envStrings = merged.map { "\($0.key)=\($0.value)" }

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = envStrings.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard rc == 0 else {
            throw HarnessError("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Reaps `pid` if it has exited: its status (see `Output.status`), or nil
    /// while it runs. After a non-nil answer the pid is gone; don't ask again.
    static func exitStatus(of pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == 0 { return nil }
        if rc < 0 { return -1 }  // not our child any more (already reaped)
        return decode(status)
    }

    /// Waits up to `timeout` seconds for `pid` to exit.
    static func wait(for pid: pid_t, timeout: Double) -> Int32? {
        let deadline = Deadline(seconds: timeout)
        var interval = 0.002
        while true {
            if let status = exitStatus(of: pid) { return status }
            if deadline.hasPassed { return nil }
            sleepSeconds(min(interval, deadline.remaining + 0.001))
            interval = min(interval * 2, 0.05)
        }
    }

    /// Sends `signals` in turn, each followed by up to `grace` seconds of
    /// waiting; SIGKILL (and a blocking reap) if the process outlives them all.
    static func terminate(_ pid: pid_t, signals: [Int32] = [SIGINT, SIGTERM], grace: Double = 3) {
        for signal in signals {
            kill(pid, signal)
            if wait(for: pid, timeout: grace) != nil { return }
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// Runs `argv` to completion (killed after `timeout` seconds) and returns
    /// its exit status and output.
    static func run(_ argv: [String], environment: [String: String] = [:], timeout: Double = 120) throws -> Output {
        let base = NSTemporaryDirectory() + "/" + TestEnvironment.uniqueName("subprocess")
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let pid = try spawn(argv, environment: environment, stdoutPath: outPath, stderrPath: errPath)
        var status = wait(for: pid, timeout: timeout)
        let timedOut = status == nil
        if timedOut {
            kill(pid, SIGKILL)
            status = wait(for: pid, timeout: 10)
        }
        return Output(status: status ?? -1, stdout: readTextFile(outPath), stderr: readTextFile(errPath),
                      timedOut: timedOut)
    }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}

/// glibc functions the Swift Glibc module does not export (they sit behind
/// _GNU_SOURCE), looked up at run time.
private enum GlibcExtras {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let addCloseFrom: AddCloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np")
    static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")

    private static func symbol<T>(_ name: String) -> T? {
        guard let pointer = dlsym(nil, name) else { return nil }
        return unsafeBitCast(pointer, to: T.self)
    }
}
