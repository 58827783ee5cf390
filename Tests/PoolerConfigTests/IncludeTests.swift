import Glibc
import Testing
@testable import PoolerConfig

@Suite struct IncludeTests {
    private func parser(_ files: [String: String]) -> IniParser {
        var parser = IniParser()
        parser.readFile = { path throws(ConfigError) in
            guard let text = files[path] else { throw ConfigError("could not load file \"\(path)\": No such file or directory") }
            return text
        }
        return parser
    }

    @Test func includedFileIsReadInPlace() throws {
        let files = ["extra.ini": "max_client_conn = 500\n[databases]\ndb2 = host=b\n"]
        let config = try Config.parse(text: """
            [pgbouncer]
            max_client_conn = 10
            listen_port = 7000
            %include extra.ini
            [databases]
            db1 = host=a
            """, fileName: "main.ini", parser: parser(files))
        #expect(config.settings.maxClientConn == 500)
        #expect(config.settings.listenPort == 7000)
        #expect(config.databaseOrder == ["db2", "db1"])
    }

    @Test func errorsInIncludedFileNameThatFile() {
        let files = ["extra.ini": "\nbogus = 1\n"]
        #expect(throws: ConfigError(file: "extra.ini", line: 2, "unknown parameter: pgbouncer/bogus")) {
            try Config.parse(text: "[pgbouncer]\n%include   extra.ini  \n", fileName: "main.ini", parser: parser(files))
        }
    }

    @Test func missingIncludedFile() {
        #expect(throws: ConfigError(file: "main.ini", line: 2,
                                    "error processing include file: could not load file \"nope.ini\": No such file or directory")) {
            try Config.parse(text: "[pgbouncer]\n%include nope.ini\n", fileName: "main.ini", parser: parser([:]))
        }
    }

    @Test func nestingIsLimited() {
        let files = ["loop.ini": "%include loop.ini\n"]
        #expect(throws: ConfigError(file: "loop.ini", line: 1, "include nesting level too deep, stopping loading")) {
            try Config.parse(text: "[pgbouncer]\n%include loop.ini\n", fileName: "main.ini", parser: parser(files))
        }
    }

    @Test func loadReadsRealFiles() throws {
        let directory = "/tmp/pooler-config-test-\(getpid())"
        mkdir(directory, 0o700)
        defer {
            unlink(directory + "/main.ini")
            unlink(directory + "/extra.ini")
            rmdir(directory)
        }
        try write(directory + "/extra.ini", "listen_port = 7777\n")
        try write(directory + "/main.ini", "[pgbouncer]\n%include \(directory)/extra.ini\n")
        let config = try Config.load(path: directory + "/main.ini")
        #expect(config.settings.listenPort == 7777)
        #expect(config.settings.value(of: "conffile") == directory + "/main.ini")
        #expect(throws: ConfigError("could not load file \"\(directory)/none.ini\": No such file or directory")) {
            try Config.load(path: directory + "/none.ini")
        }
    }

    private func write(_ path: String, _ text: String) throws {
        guard let file = fopen(path, "w") else { throw ConfigError("cannot write \(path)") }
        fputs(text, file)
        fclose(file)
    }
}
