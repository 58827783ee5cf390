import Testing
import PoolerWire
@testable import PoolerCore

@Suite struct ResponseQueueTests {
    let parseComplete = BackendMessageID.parseComplete
    let bindComplete = BackendMessageID.bindComplete
    let ready = BackendMessageID.readyForQuery

    @Test func hiddenParseCompleteIsDropped() {
        let q = ResponseQueue()
        q.append(.hiddenParse(statement: 7))
        q.append(.bind)
        q.append(.execute)
        q.append(.sync)
        #expect(q.serverSent(parseComplete) == .drop)
        #expect(q.serverSent(bindComplete) == .forward)
        #expect(q.serverSent(BackendMessageID.dataRow) == .forward)
        #expect(q.serverSent(BackendMessageID.commandComplete) == .forward)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    /// CopyInResponse to an extended-protocol Execute: the Syncs queued after it are
    /// ignored by the server and leave the queue; the COPY's CommandComplete answers the
    /// Execute and the ReadyForQuery the Sync sent after CopyDone. For a simple Query
    /// nothing changes.
    @Test func copyInDropsTheSyncsTheServerIgnores() {
        let q = ResponseQueue()
        for type in [FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.describe,
                     FrontendMessageID.execute, FrontendMessageID.sync] { q.expectResponse(toClientMessage: type) }
        #expect(q.serverSent(parseComplete) == .forward)
        #expect(q.serverSent(bindComplete) == .forward)
        #expect(q.serverSent(BackendMessageID.noData) == .forward)
        #expect(q.executeIsNext)
        #expect(q.copyInStarted() == (1, false))
        #expect(q.count == 1 && q.first == .execute)
        q.expectResponse(toClientMessage: FrontendMessageID.sync) // after CopyDone
        #expect(q.serverSent(BackendMessageID.commandComplete) == .forward)
        #expect(q.first == .sync)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)

        let simple = ResponseQueue()
        simple.expectResponse(toClientMessage: FrontendMessageID.query)
        #expect(!simple.executeIsNext && simple.copyInStarted() == (0, false) && simple.count == 1)
    }

    /// A client that pipelines Execute, Sync, CopyData, CopyDone, Sync before the
    /// CopyInResponse comes: only the Sync before CopyDone is ignored; the one after it
    /// is answered, and the copy has already ended on the client's side.
    @Test func copyEndedBeforeCopyInResponseKeepsTheLaterSync() {
        let q = ResponseQueue()
        for type in [FrontendMessageID.bind, FrontendMessageID.execute, FrontendMessageID.sync] {
            q.expectResponse(toClientMessage: type)
        }
        q.clientEndedCopy()
        q.expectResponse(toClientMessage: FrontendMessageID.sync)
        #expect(q.serverSent(bindComplete) == .forward)
        #expect(q.copyInStarted() == (1, true))
        #expect(q.count == 2 && q.first == .execute)
        #expect(q.serverSent(BackendMessageID.commandComplete) == .forward)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    @Test func clientMessagesQueueWhatAnswersThem() {
        let q = ResponseQueue()
        for type in [FrontendMessageID.parse, FrontendMessageID.bind, FrontendMessageID.describe,
                     FrontendMessageID.execute, FrontendMessageID.flush, FrontendMessageID.sync] {
            q.expectResponse(toClientMessage: type)
        }
        #expect(q.count == 5) // Flush is answered by nothing of its own
        #expect(q.first == .parse(statement: nil))
        for type in [parseComplete, bindComplete, BackendMessageID.rowDescription, BackendMessageID.dataRow,
                     BackendMessageID.commandComplete] {
            #expect(q.serverSent(type) == .forward)
        }
        #expect(q.first == .sync)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
        q.expectResponse(toClientMessage: FrontendMessageID.query)
        q.expectResponse(toClientMessage: FrontendMessageID.close)
        #expect(q.first == .query && q.count == 2)
    }

    @Test func plainAnswersPopOnlyWhatTheyAnswer() {
        let q = ResponseQueue()
        #expect(q.passesPlain(parseComplete) == false) // nothing expected: serverSent decides
        q.append(.parse(statement: nil))
        q.append(.bind)
        q.append(.describe)
        q.append(.execute)
        q.append(.close)
        q.append(.sync)
        #expect(q.passesPlain(bindComplete) == false) // not the oldest expectation
        #expect(q.count == 6)
        for type in [parseComplete, bindComplete, BackendMessageID.noData, BackendMessageID.commandComplete,
                     BackendMessageID.closeComplete] {
            #expect(q.passesPlain(type) == true)
        }
        #expect(q.first == .sync)
        #expect(q.passesPlain(ready) == false) // ReadyForQuery always takes the full path
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    @Test func plainAnswersLeaveHiddenAndOwnResponsesToServerSent() {
        let q = ResponseQueue()
        q.append(.hiddenParse(statement: 1))
        #expect(q.passesPlain(parseComplete) == false)
        #expect(q.serverSent(parseComplete) == .drop)
        q.append(.hiddenClose)
        #expect(q.passesPlain(BackendMessageID.closeComplete) == false)
        #expect(q.serverSent(BackendMessageID.closeComplete) == .drop)
        q.append(.failingParse([1]))
        #expect(q.passesPlain(parseComplete) == false)
        q.removeAll()
        q.append(.hiddenQuery)
        #expect(!q.allowsPlainRun)
        #expect(q.passesPlain(BackendMessageID.commandComplete) == false)
        q.removeAll()
        q.append(.bind)
        q.append(.synthetic([9]))
        #expect(q.allowsPlainRun)
        #expect(q.passesPlain(bindComplete) == true)
        #expect(!q.allowsPlainRun) // the pooler's own response is due first
        #expect(q.nextDueSynthetic() == [9])
        #expect(q.allowsPlainRun)
    }

    @Test func storageGrowsAndCompactsKeepingTheOrder() {
        let q = ResponseQueue()
        var next = 0 // the statement id expected at the head
        func answer(_ count: Int) {
            for _ in 0..<count {
                #expect(q.first == .parse(statement: next))
                #expect(q.passesPlain(parseComplete) == true)
                next += 1
            }
        }
        for id in 0..<40 { q.append(.parse(statement: id)) } // past the first capacity twice
        answer(30)
        for id in 40..<100 { q.append(.parse(statement: id)) } // moves the pending ones down, grows
        answer(65)
        for id in 100..<103 { q.append(.parse(statement: id)) }
        answer(8)
        #expect(q.isEmpty && next == 103)
        q.append(.sync) // empty: starts over at the front
        #expect(q.count == 1 && q.first == .sync)
    }

    @Test func syntheticResponseWaitsForEarlierOnes() {
        let q = ResponseQueue()
        q.append(.bind)
        q.append(.synthetic([1, 2]))
        q.append(.sync)
        #expect(q.nextDueSynthetic() == nil)
        #expect(q.serverSent(bindComplete) == .forward)
        #expect(q.nextDueSynthetic() == [1, 2])
        #expect(q.nextDueSynthetic() == nil)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    @Test func extendedErrorSkipsToSyncAndReportsFailedParses() {
        let q = ResponseQueue()
        q.append(.parse(statement: 3))
        q.append(.hiddenParse(statement: 4))
        q.append(.bind)
        q.append(.synthetic([9]))
        q.append(.sync)
        #expect(q.serverSent(BackendMessageID.errorResponse) == .forward)
        // Nothing the server skipped comes out, the synthetic response included.
        #expect(q.nextDueSynthetic() == nil)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
        let failed = q.takeFailedStatements()
        #expect(failed.map(\.statement) == [3, 4])
        #expect(failed.map(\.clientVisible) == [true, false])
    }

    @Test func simpleQueryErrorIsPartOfTheResponse() {
        let q = ResponseQueue()
        q.append(.query)
        q.append(.query)
        #expect(q.serverSent(BackendMessageID.rowDescription) == .forward)
        #expect(q.serverSent(BackendMessageID.errorResponse) == .forward)
        #expect(q.count == 2)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.count == 1)
    }

    @Test func hiddenQueryIsSwallowedButParameterStatusPasses() {
        let q = ResponseQueue()
        q.append(.hiddenQuery)
        q.append(.query)
        #expect(q.inHiddenQuery)
        #expect(q.serverSent(BackendMessageID.commandComplete) == .drop)
        #expect(q.serverSent(BackendMessageID.parameterStatus) == .forward)
        #expect(q.serverSent(ready) == .drop)
        #expect(!q.inHiddenQuery)
        #expect(q.serverSent(BackendMessageID.commandComplete) == .forward)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    @Test func hiddenCloseAndDescribe() {
        let q = ResponseQueue()
        q.append(.hiddenClose)
        q.append(.describe)
        q.append(.close)
        q.append(.sync)
        #expect(q.serverSent(BackendMessageID.closeComplete) == .drop)
        #expect(q.serverSent(BackendMessageID.parameterDescription) == .forward)
        #expect(q.serverSent(BackendMessageID.noData) == .forward)
        #expect(q.serverSent(BackendMessageID.closeComplete) == .forward)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
    }

    /// An error before an injected eviction Close: the server skips it, and the queue
    /// says so once (the statement is still on the server).
    @Test func skippedEvictionCloseIsReported() {
        let q = ResponseQueue()
        q.append(.bind)
        q.append(.execute)
        q.append(.hiddenClose)
        q.append(.hiddenParse(statement: 3))
        q.append(.sync)
        #expect(q.serverSent(bindComplete) == .forward)
        #expect(q.serverSent(BackendMessageID.errorResponse) == .forward)
        #expect(q.serverSent(ready) == .forward)
        #expect(q.takeSkippedEviction())
        #expect(!q.takeSkippedEviction())
        #expect(q.takeFailedStatements().map(\.statement) == [3])

        let clean = ResponseQueue()
        clean.append(.hiddenClose)
        clean.append(.sync)
        #expect(clean.serverSent(BackendMessageID.closeComplete) == .drop)
        #expect(clean.serverSent(ready) == .forward)
        #expect(!clean.takeSkippedEviction())
    }

    @Test func failingParseErrorIsReplaced() {
        let q = ResponseQueue()
        q.append(.failingParse([7, 7]))
        q.append(.bind)
        q.append(.sync)
        #expect(q.serverSent(BackendMessageID.errorResponse) == .replace)
        #expect(q.replacement == [7, 7])
        #expect(q.serverSent(ready) == .forward)
        #expect(q.isEmpty)
        #expect(q.takeFailedStatements().isEmpty)
    }
}

@Suite struct ResponseQueueSimpleQueryTests {
    /// What lets the forwarding loop skip serverSent: with a simple Query first, every
    /// message but ReadyForQuery forwards and leaves the queue as it was.
    @Test func simpleQueryMessagesChangeNothingUntilReadyForQuery() {
        let q = ResponseQueue()
        q.append(.query)
        q.append(.sync)
        #expect(q.inSimpleQuery)
        for type in [BackendMessageID.rowDescription, BackendMessageID.dataRow, BackendMessageID.commandComplete,
                     BackendMessageID.noticeResponse, BackendMessageID.errorResponse] {
            #expect(q.serverSent(type) == .forward)
            #expect(q.count == 2 && q.inSimpleQuery)
        }
        #expect(q.serverSent(BackendMessageID.readyForQuery) == .forward)
        #expect(!q.inSimpleQuery && q.count == 1)
        let extended = ResponseQueue()
        extended.append(.execute)
        #expect(!extended.inSimpleQuery)
    }
}
