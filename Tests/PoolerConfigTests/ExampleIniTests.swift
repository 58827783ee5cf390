import Glibc
import Testing
@testable import PoolerConfig

@Suite struct ExampleIniTests {
    @Test func exampleParsesBackToDefaults() throws {
        let config = try Config.parse(text: ConfigDocs.exampleIni(), fileName: "pooler.ini.example")
        #expect(config.warnings.isEmpty)
        #expect(config.settings == Settings())
        #expect(config.databases.isEmpty && config.users.isEmpty)
    }

    @Test func everyImplementedKeyIsDocumentedAtItsDefault() throws {
        let text = ConfigDocs.exampleIni()
        for key in ConfigKeys.implemented {
            let line = ConfigDocs.exampleLine(key)
            #expect(text.split(separator: "\n").contains(Substring(line)), "\(key.name)")
            if !key.defaultValue.isEmpty { #expect(line == ";\(key.name) = \(key.defaultValue)") }
        }
        // Uncommenting every key at its default gives the defaults back.
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let isKey = ConfigKeys.implemented.contains { line.hasPrefix(";\($0.name) =") }
            return isKey ? String(line.dropFirst()) : String(line)
        }.joined(separator: "\n")
        #expect(try Config.parse(text: uncommented, fileName: "x").settings == Settings())
    }

    @Test func committedExampleIsCurrent() throws {
        // Tests/PoolerConfigTests/ExampleIniTests.swift -> <package>/pooler.ini.example
        var path = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        path.removeLast(3)
        let file = path.joined(separator: "/") + "/pooler.ini.example"
        if getenv("POOLER_UPDATE_EXAMPLE") != nil, let handle = fopen(file, "w") {
            // scripts/update-example-ini.sh
            fputs(ConfigDocs.exampleIni(), handle)
            fclose(handle)
        }
        let committed = try FileReading.read(file)
        #expect(committed == ConfigDocs.exampleIni(), "run scripts/update-example-ini.sh")
    }
}
