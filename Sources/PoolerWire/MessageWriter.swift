/// Builds backend/frontend messages into a byte array. Used off the hot path
/// (login, errors, admin replies); forwarded traffic never goes through here.
public struct MessageWriter {
    public private(set) var bytes: [UInt8] = []
    private var frameStart = -1

    public init(reservingCapacity capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Starts a typed message; `end()` patches its length.
    public mutating func begin(_ type: UInt8) {
        bytes.append(type)
        frameStart = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
    }

    /// Starts an untyped startup-phase packet (StartupMessage, SSLRequest, ...).
    public mutating func beginUntyped() {
        frameStart = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
    }

    public mutating func end() {
        precondition(frameStart >= 0, "end() without begin()")
        let length = UInt32(bytes.count - frameStart)
        bytes[frameStart] = UInt8(truncatingIfNeeded: length >> 24)
        bytes[frameStart + 1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[frameStart + 2] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[frameStart + 3] = UInt8(truncatingIfNeeded: length)
        frameStart = -1
    }

    public mutating func int32(_ value: Int32) { uint32(UInt32(bitPattern: value)) }

    public mutating func uint32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func int16(_ value: Int16) {
        let v = UInt16(bitPattern: value)
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func byte(_ value: UInt8) { bytes.append(value) }

    public mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 {
        bytes.append(contentsOf: data)
    }

    public mutating func cString(_ string: String) {
        bytes.append(contentsOf: string.utf8)
        bytes.append(0)
    }

    public mutating func clear() { bytes.removeAll(keepingCapacity: true) }
}

// MARK: - Backend messages the pooler originates

extension MessageWriter {
    public mutating func errorResponse(severity: String = "ERROR", code: String, message: String,
                                       detail: String? = nil) {
        begin(BackendMessageID.errorResponse)
        byte(UInt8(ascii: "S")); cString(severity)
        byte(UInt8(ascii: "V")); cString(severity)
        byte(UInt8(ascii: "C")); cString(code)
        byte(UInt8(ascii: "M")); cString(message)
        if let detail { byte(UInt8(ascii: "D")); cString(detail) }
        byte(0)
        end()
    }

    public mutating func noticeResponse(code: String, message: String) {
        begin(BackendMessageID.noticeResponse)
        byte(UInt8(ascii: "S")); cString("NOTICE")
        byte(UInt8(ascii: "V")); cString("NOTICE")
        byte(UInt8(ascii: "C")); cString(code)
        byte(UInt8(ascii: "M")); cString(message)
        byte(0)
        end()
    }

    public mutating func authentication(_ code: Int32, payload: [UInt8] = []) {
        begin(BackendMessageID.authentication)
        int32(code)
        raw(payload)
        end()
    }

    /// AuthenticationSASL listing mechanisms.
    public mutating func authenticationSASL(mechanisms: [String]) {
        begin(BackendMessageID.authentication)
        int32(AuthenticationCode.sasl)
        for mechanism in mechanisms { cString(mechanism) }
        byte(0)
        end()
    }

    public mutating func parameterStatus(name: String, value: String) {
        begin(BackendMessageID.parameterStatus)
        cString(name)
        cString(value)
        end()
    }

    public mutating func backendKeyData(processID: Int32, secretKey: Int32) {
        begin(BackendMessageID.backendKeyData)
        int32(processID)
        int32(secretKey)
        end()
    }

    public mutating func readyForQuery(_ status: TransactionStatus) {
        begin(BackendMessageID.readyForQuery)
        byte(status.rawValue)
        end()
    }

    public mutating func commandComplete(_ tag: String) {
        begin(BackendMessageID.commandComplete)
        cString(tag)
        end()
    }

    /// RowDescription with text columns; `types` gives each column's type OID.
    public mutating func rowDescription(columns: [(name: String, typeOID: Int32)]) {
        begin(BackendMessageID.rowDescription)
        int16(Int16(columns.count))
        for column in columns {
            cString(column.name)
            int32(0)      // table OID
            int16(0)      // column number
            int32(column.typeOID)
            int16(-1)     // type size
            int32(-1)     // type modifier
            int16(0)      // text format
        }
        end()
    }

    public mutating func dataRow(_ values: [String?]) {
        begin(BackendMessageID.dataRow)
        int16(Int16(values.count))
        for value in values {
            if let value {
                let utf8 = Array(value.utf8)
                int32(Int32(utf8.count))
                raw(utf8)
            } else {
                int32(-1)
            }
        }
        end()
    }
}

// MARK: - Frontend messages the pooler originates (server login, reset queries)

extension MessageWriter {
    public mutating func startupMessage(parameters: [(String, String)]) {
        beginUntyped()
        uint32(StartupCode.protocol3)
        for (key, value) in parameters { cString(key); cString(value) }
        byte(0)
        end()
    }

    public mutating func query(_ sql: String) {
        begin(FrontendMessageID.query)
        cString(sql)
        end()
    }

    public mutating func passwordMessage(_ password: String) {
        begin(FrontendMessageID.password)
        cString(password)
        end()
    }

    public mutating func saslInitialResponse(mechanism: String, data: [UInt8]) {
        begin(FrontendMessageID.password)
        cString(mechanism)
        int32(Int32(data.count))
        raw(data)
        end()
    }

    public mutating func saslResponse(_ data: [UInt8]) {
        begin(FrontendMessageID.password)
        raw(data)
        end()
    }

    public mutating func terminate() {
        begin(FrontendMessageID.terminate)
        end()
    }

    public mutating func cancelRequest(processID: Int32, secretKey: Int32) {
        beginUntyped()
        uint32(StartupCode.cancelRequest)
        int32(processID)
        int32(secretKey)
        end()
    }
}
