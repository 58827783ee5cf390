/// Type bytes of messages a client sends.
public enum FrontendMessageID {
    public static let query: UInt8 = UInt8(ascii: "Q")
    public static let parse: UInt8 = UInt8(ascii: "P")
    public static let bind: UInt8 = UInt8(ascii: "B")
    public static let execute: UInt8 = UInt8(ascii: "E")
    public static let describe: UInt8 = UInt8(ascii: "D")
    public static let close: UInt8 = UInt8(ascii: "C")
    public static let sync: UInt8 = UInt8(ascii: "S")
    public static let flush: UInt8 = UInt8(ascii: "H")
    public static let functionCall: UInt8 = UInt8(ascii: "F")
    public static let copyData: UInt8 = UInt8(ascii: "d")
    public static let copyDone: UInt8 = UInt8(ascii: "c")
    public static let copyFail: UInt8 = UInt8(ascii: "f")
    public static let terminate: UInt8 = UInt8(ascii: "X")
    /// PasswordMessage, SASLInitialResponse and SASLResponse share 'p'.
    public static let password: UInt8 = UInt8(ascii: "p")
}

/// Type bytes of messages a server sends.
public enum BackendMessageID {
    public static let authentication: UInt8 = UInt8(ascii: "R")
    public static let backendKeyData: UInt8 = UInt8(ascii: "K")
    public static let parameterStatus: UInt8 = UInt8(ascii: "S")
    public static let readyForQuery: UInt8 = UInt8(ascii: "Z")
    public static let errorResponse: UInt8 = UInt8(ascii: "E")
    public static let noticeResponse: UInt8 = UInt8(ascii: "N")
    public static let rowDescription: UInt8 = UInt8(ascii: "T")
    public static let dataRow: UInt8 = UInt8(ascii: "D")
    public static let commandComplete: UInt8 = UInt8(ascii: "C")
    public static let emptyQueryResponse: UInt8 = UInt8(ascii: "I")
    public static let parseComplete: UInt8 = UInt8(ascii: "1")
    public static let bindComplete: UInt8 = UInt8(ascii: "2")
    public static let closeComplete: UInt8 = UInt8(ascii: "3")
    public static let noData: UInt8 = UInt8(ascii: "n")
    public static let portalSuspended: UInt8 = UInt8(ascii: "s")
    public static let parameterDescription: UInt8 = UInt8(ascii: "t")
    public static let copyInResponse: UInt8 = UInt8(ascii: "G")
    public static let copyOutResponse: UInt8 = UInt8(ascii: "H")
    public static let copyBothResponse: UInt8 = UInt8(ascii: "W")
    public static let notificationResponse: UInt8 = UInt8(ascii: "A")
    public static let negotiateProtocolVersion: UInt8 = UInt8(ascii: "v")
}

/// Codes of AuthenticationXXX ('R') messages.
public enum AuthenticationCode {
    public static let ok: Int32 = 0
    public static let cleartextPassword: Int32 = 3
    public static let md5Password: Int32 = 5
    public static let sasl: Int32 = 10
    public static let saslContinue: Int32 = 11
    public static let saslFinal: Int32 = 12
}

/// Request codes of startup-phase packets.
public enum StartupCode {
    public static let protocol3: UInt32 = 196608
    public static let cancelRequest: UInt32 = 80877102
    public static let sslRequest: UInt32 = 80877103
    public static let gssEncRequest: UInt32 = 80877104
}

/// Transaction status in ReadyForQuery.
public enum TransactionStatus: UInt8, Sendable {
    case idle = 73         // 'I'
    case inTransaction = 84 // 'T'
    case failed = 69       // 'E'
}
