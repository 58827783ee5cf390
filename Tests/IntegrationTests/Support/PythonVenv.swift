import Foundation
import Glibc

/// A Python virtual environment with some PyPI packages, shared by test runs
/// on the machine: `/tmp/pooler-it-venv-<key>` where the key names the
/// requirements, built once (into a temporary directory that is renamed into
/// place, so concurrent runs never see a half-built one).
enum PythonVenv {
    enum Outcome {
        case ready(python: String)
        /// Cannot be built here; the reason says why (the test skips).
        case unavailable(String)
    }

    /// The python of a venv holding `requirements` (pip specifiers), checked
    /// with `probe` (a Python statement that raises if the venv is unusable).
    static func prepare(key: String, requirements: [String], probe: String) throws -> Outcome {
        let directory = "/tmp/pooler-it-venv-" + key
        let python = directory + "/bin/python"
        if FileManager.default.isExecutableFile(atPath: python),
           (try? Subprocess.run([python, "-c", probe], timeout: 60))?.status == 0 {
            return .ready(python: python)
        }
        guard let system = findExecutable("python3") else { return .unavailable("no python3 on PATH") }

        let building = directory + ".building-\(getpid())-\(TestEnvironment.uniqueName("v"))"
        defer { try? FileManager.default.removeItem(atPath: building) }
        var venv = try Subprocess.run([system, "-m", "venv", building], timeout: 120)
        if venv.status != 0, venv.stdout.contains("ensurepip") || venv.stderr.contains("ensurepip") {
            // Debian splits ensurepip into python3-venv.
            guard TestEnvironment.flag("CI") else {
                return .unavailable("python3 -m venv lacks ensurepip; install python3-venv (done automatically under CI=true)")
            }
            let install = try Subprocess.run(["apt-get", "install", "-y", "-q", "python3-venv"],
                                             environment: ["DEBIAN_FRONTEND": "noninteractive"], timeout: 300)
            guard install.status == 0 else { return .unavailable("apt-get install python3-venv failed: \(install)") }
            try? FileManager.default.removeItem(atPath: building)
            venv = try Subprocess.run([system, "-m", "venv", building], timeout: 120)
        }
        guard venv.status == 0 else { return .unavailable("python3 -m venv failed: \(venv)") }
        let pip = try Subprocess.run([building + "/bin/python", "-m", "pip", "install", "-q",
                                      "--disable-pip-version-check"] + requirements, timeout: 300)
        guard pip.status == 0 else { return .unavailable("pip install \(requirements) failed: \(pip)") }
        // venv scripts record their directory; point them at the final one.
        if rename(building, directory) != 0 {
            // Someone else finished first (or a stale, broken copy is there).
            if !FileManager.default.isExecutableFile(atPath: python)
                || (try? Subprocess.run([python, "-c", probe], timeout: 60))?.status != 0 {
                try? FileManager.default.removeItem(atPath: directory)
                guard rename(building, directory) == 0 else {
                    return .unavailable("could not move the venv into \(directory): \(String(cString: strerror(errno)))")
                }
            }
        }
        let check = try Subprocess.run([python, "-c", probe], timeout: 60)
        guard check.status == 0 else { return .unavailable("the new venv fails its probe: \(check)") }
        return .ready(python: python)
    }

    private static func findExecutable(_ name: String) -> String? {
        let path = TestEnvironment.variable("PATH") ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
