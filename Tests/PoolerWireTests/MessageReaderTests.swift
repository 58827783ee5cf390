import Testing
@testable import PoolerWire

@Suite struct MessageReaderTests {
    /// A Bind payload's start: portal "", statement "P_0", then the rest.
    static let bind: [UInt8] = [0] + Array("P_0".utf8) + [0, 0, 0]

    @Test func emptyNameIsSeenWithoutReadingIt() {
        Self.bind.withUnsafeBytes { raw in
            var reader = MessageReader(raw)
            #expect(reader.nextCStringIsEmpty)
            let skipped = reader.skipCString()
            #expect(skipped)
            #expect(reader.offset == 1)
            #expect(!reader.nextCStringIsEmpty)
            let name = reader.cString()
            #expect(name == "P_0")
        }
    }

    @Test func skipWithoutTerminatorFailsAndStays() {
        let bytes = Array("abc".utf8)
        bytes.withUnsafeBytes { raw in
            var reader = MessageReader(raw)
            let skipped = reader.skipCString()
            #expect(!skipped)
            #expect(reader.offset == 0)
            #expect(!reader.nextCStringIsEmpty)
        }
    }

    @Test func nothingLeftIsNoEmptyName() {
        [UInt8]().withUnsafeBytes { raw in
            let reader = MessageReader(raw)
            #expect(!reader.nextCStringIsEmpty)
        }
    }
}
