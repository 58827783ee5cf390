import Testing
@testable import PoolerCore

@Suite struct ReplicationModeTests {
    @Test func startupValuesAsPostgreSQLReadsThem() {
        #expect(ReplicationMode(startupValue: "database") == .logical)
        for value in ["true", "on", "yes", "1", "TRUE"] { #expect(ReplicationMode(startupValue: value) == .physical) }
        for value in ["false", "off", "no", "0"] { #expect(ReplicationMode(startupValue: value) == ReplicationMode.none) }
        #expect(ReplicationMode(startupValue: "sometimes") == nil)
        #expect(ReplicationMode(startupValue: "") == nil)
    }

    @Test func whatTheServerAndTheLogSee() {
        #expect(ReplicationMode.logical.startupValue == "database")
        #expect(ReplicationMode.physical.startupValue == "true")
        #expect(ReplicationMode.none.startupValue == nil)
        #expect([ReplicationMode.none, .logical, .physical].map(\.logValue) == ["no", "database", "yes"])
    }
}
