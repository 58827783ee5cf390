import CLinuxShims
import Glibc
import PoolerConfig
import PoolerIO

/// Command line as PgBouncer's: `pooler [-d] [-q] [-v...] [-u user] [-V] [-h] INI`.
public enum PoolerMain {
    struct Options {
        var daemon = false
        var quiet = false
        var verbose = 0
        var user: String?
        var iniPath: String?
    }

    static let usage = """
    pooler is a PgBouncer-compatible PostgreSQL connection pooler.

    Usage:
      pooler [OPTION]... CONFIG_FILE

    Options:
      -d, --daemon         run in background (as a daemon)
      -q, --quiet          run quietly
      -R, --reboot         do an online reboot (accepted, ignored as in PgBouncer 1.25)
      -u, --user=USERNAME  assume identity of USERNAME
      -v, --verbose        increase verbosity
      -V, --version        show version, then exit
      -h, --help           show this help, then exit
    """

    public static func run() -> Never {
        var options = Options()
        var args = CommandLine.arguments.dropFirst()
        while let arg = args.popFirst() {
            switch arg {
            case "-d", "--daemon": options.daemon = true
            case "-q", "--quiet": options.quiet = true
            case "-R", "--reboot": break
            case "-v", "--verbose": options.verbose += 1
            case "-V", "--version":
                print(PoolerVersion.full)
                exit(0)
            case "-h", "--help":
                print(usage)
                exit(0)
            case "-u", "--user":
                guard let user = args.popFirst() else { fail("option \(arg) needs a value") }
                options.user = user
            default:
                if arg.hasPrefix("--user=") {
                    options.user = String(arg.dropFirst(7))
                } else if arg.hasPrefix("-") && arg.count > 2 && !arg.hasPrefix("--") && arg.dropFirst().allSatisfy({ $0 == "v" }) {
                    options.verbose += arg.count - 1
                } else if arg.hasPrefix("-") {
                    fail("unknown option: \(arg)\n\n\(usage)")
                } else if options.iniPath == nil {
                    options.iniPath = arg
                } else {
                    fail("too many arguments: \(arg)")
                }
            }
        }
        guard let iniPath = options.iniPath else { fail("need config file\n\n\(usage)") }
        let config: Config
        do {
            config = try Config.load(path: iniPath)
        } catch {
            fail("\(error)")
        }
        let settings = config.settings
        if options.daemon && settings.pidfile.isEmpty {
            fail("daemon needs pidfile configured")
        }
        let log = Logger(path: settings.logfile, toStderr: !options.quiet && !options.daemon,
                         verbose: max(options.verbose, settings.verbose))
        log.configureSyslog(enabled: settings.syslog, ident: settings.syslogIdent, facility: settings.syslogFacility)
        for warning in config.warnings { log.warning(warning) }
        FileDescriptorLimit.check(settings: settings, config: config, log: log)
        // workers = 0: one loop per CPU this process may use (see CPUBudget).
        let allowedCPUs = CPUBudget.allowedCPUs()
        let workerCount: Int
        if settings.workers > 0 {
            workerCount = settings.workers
        } else {
            let allowed = allowedCPUs?.count ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            let quota = CPUBudget.currentQuota()
            workerCount = CPUBudget.workers(allowedCPUs: allowed, quota: quota)
            if workerCount < allowed, let quota {
                log.info("workers = 0: \(workerCount) event loop\(workerCount == 1 ? "" : "s") for the cgroup CPU limit of \(quota) (\(allowed) CPUs allowed)")
            }
        }
        let workers = Workers(count: workerCount)
        if settings.workerCpuAffinity {
            if let allowedCPUs { workers.pinnedCPUs = allowedCPUs } else { log.warning("worker_cpu_affinity: the CPUs this process may use are unknown; loops are not pinned") }
        }
        let pooler: Pooler
        do {
            for index in 0..<workerCount {
                let loop = try Pooler(config: config, log: log, workers: workers, index: index)
                loop.configPath = iniPath
                workers.add(loop)
            }
            pooler = workers.loops[0]
            try pooler.startListening()
            for other in workers.loops.dropFirst() { try other.shareListeners(of: pooler) }
        } catch {
            log.error("\(error)")
            fail("\(error)")
        }
        // As PgBouncer: -u wins over the ini's `user`.
        if let user = options.user ?? (settings.user.isEmpty ? nil : settings.user) { switchUser(user) }
        if options.daemon {
            daemonize()
            log.pid = getpid()
        }
        writePidFile(settings.pidfile)
        log.info("process up: \(PoolerVersion.full), pid \(getpid())\(workerCount > 1 ? ", \(workerCount) workers" : "")")
        // Type=notify units (PgBouncer's shipped pgbouncer.service) wait for this.
        _ = pooler_sd_notify("READY=1\nMAINPID=\(getpid())\nSTATUS=accepting connections")
        do {
            // Threads only now: daemonize's fork keeps just the calling thread.
            try workers.startThreads()
            try pooler.run()
            workers.joinOthers()
        } catch {
            log.error("event loop failed: \(error)")
            removePidFile(settings.pidfile)
            exit(1)
        }
        _ = pooler_sd_notify("STOPPING=1")
        log.info("shutting down")
        removePidFile(settings.pidfile)
        exit(pooler.exitStatus)
    }

    static func fail(_ message: String) -> Never {
        fputs("pooler: \(message)\n", stderr)
        exit(1)
    }

    private static func switchUser(_ name: String) {
        guard let entry = getpwnam(name) else { fail("could not find user '\(name)'") }
        // Works when started as root, or already running as that user (PgBouncer's words).
        if entry.pointee.pw_uid == getuid() && entry.pointee.pw_gid == getgid() { return }
        if setgid(entry.pointee.pw_gid) != 0 || setuid(entry.pointee.pw_uid) != 0 {
            fail("could not switch to user '\(name)'")
        }
    }

    private static func daemonize() {
        let pid = fork()
        if pid < 0 { fail("fork failed") }
        if pid > 0 { exit(0) }
        _ = setsid()
        let devnull = open("/dev/null", O_RDWR)
        if devnull >= 0 {
            dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2)
            if devnull > 2 { close(devnull) }
        }
    }

    private static func writePidFile(_ path: String) {
        guard !path.isEmpty else { return }
        let text = "\(getpid())\n"
        guard let file = fopen(path, "w") else { return }
        fputs(text, file)
        fclose(file)
    }

    private static func removePidFile(_ path: String) {
        if !path.isEmpty { unlink(path) }
    }
}
