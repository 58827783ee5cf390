import Testing
import PoolerWire
@testable import PoolerCore

@Suite struct TransactionTrackerTests {
    @Test func simpleQueryCycle() {
        var t = TransactionTracker()
        let r1 = t.clientSent(FrontendMessageID.query)
        #expect(r1 == .forward)
        #expect(!t.isClean)
        let r2 = t.serverReady(.idle)
        #expect(r2)
    }

    /// Extended-protocol COPY FROM STDIN (PQexecParams): P/B/D/E/S, CopyInResponse,
    /// CopyData, CopyDone, S, one ReadyForQuery for both Syncs (the first reached the
    /// server in copy-in mode, which ignores it). A Sync sent during the copy counts for
    /// nothing either.
    @Test func extendedCopyInNeedsOneReadyForQuery() {
        var t = TransactionTracker()
        for type in [FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.describe,
                     FrontendMessageID.execute, FrontendMessageID.sync] { _ = t.clientSent(type) }
        t.copyInStarted(ignoredSyncs: 1, ended: false)
        // In the copy the server is never clean: a client leaving now leaves it mid-COPY.
        #expect(!t.isClean)
        for type in [FrontendMessageID.copyData, FrontendMessageID.sync, FrontendMessageID.copyData,
                     FrontendMessageID.copyDone, FrontendMessageID.sync] { _ = t.clientSent(type) }
        #expect(!t.isClean && !t.copyEndedEarly)
        let clean = t.serverReady(.idle)
        #expect(clean && !t.inCopyIn)
    }

    /// CopyDone and the Sync after it sent before the CopyInResponse came: that Sync is
    /// counted and answered; only the one before CopyDone is ignored.
    @Test func copyEndedBeforeCopyInResponse() {
        var t = TransactionTracker()
        for type in [FrontendMessageID.bind, FrontendMessageID.execute, FrontendMessageID.sync,
                     FrontendMessageID.copyData, FrontendMessageID.copyDone] { _ = t.clientSent(type) }
        #expect(t.copyEndedEarly)
        _ = t.clientSent(FrontendMessageID.sync)
        t.copyInStarted(ignoredSyncs: 1, ended: true)
        #expect(!t.inCopyIn && t.outstanding == 1 && !t.isClean)
        let clean = t.serverReady(.idle)
        #expect(clean)
    }

    @Test func transactionBlockHoldsUntilIdle() {
        var t = TransactionTracker()
        _ = t.clientSent(FrontendMessageID.query)
        let r3 = t.serverReady(.inTransaction)
        #expect(!r3)
        _ = t.clientSent(FrontendMessageID.query)
        let r4 = t.serverReady(.failed)
        #expect(!r4)
        _ = t.clientSent(FrontendMessageID.query)
        let r5 = t.serverReady(.idle)
        #expect(r5)
    }

    @Test func pipelinedSyncsNeedAllReadyForQuery() {
        var t = TransactionTracker()
        for type in [FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.execute, FrontendMessageID.sync,
                     FrontendMessageID.bind, FrontendMessageID.execute, FrontendMessageID.sync] {
            _ = t.clientSent(type)
        }
        let r6 = t.serverReady(.idle)
        #expect(!r6)
        let r7 = t.serverReady(.idle)
        #expect(r7)
    }

    @Test func extendedMessagesWithoutSyncKeepServer() {
        var t = TransactionTracker()
        _ = t.clientSent(FrontendMessageID.query)
        _ = t.clientSent(FrontendMessageID.parse)
        let r8 = t.serverReady(.idle)
        #expect(!r8)
        _ = t.clientSent(FrontendMessageID.sync)
        let r9 = t.serverReady(.idle)
        #expect(r9)
    }

    @Test func terminateIsNotForwarded() {
        var t = TransactionTracker()
        let r10 = t.clientSent(FrontendMessageID.terminate)
        #expect(r10 == .terminate)
    }

    @Test func unknownTypesAreInvalidCopyIsForwarded() {
        var t = TransactionTracker()
        let z = t.clientSent(UInt8(ascii: "Z"))
        #expect(z == .invalid)
        let p = t.clientSent(FrontendMessageID.password)
        #expect(p == .invalid)
        let d = t.clientSent(FrontendMessageID.copyData)
        #expect(d == .forward)
    }
}
