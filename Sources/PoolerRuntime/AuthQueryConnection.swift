import Glibc
import PoolerConfig
import PoolerCore
import PoolerIO
import PoolerWire

/// One auth_query lookup: logs in to the auth database as auth_user, runs auth_query
/// with the user name as $1 (extended protocol, so no quoting), and reports the
/// secret it returned (nil: no such user, NULL password, or any failure).
final class AuthQueryConnection: Connection {
    private enum Phase { case connecting, login, query, done }

    private var phase: Phase = .connecting {
        didSet { wantsWritable = phase == .connecting }
    }
    private var login: ServerLoginStateMachine
    private let startupParameters: [(String, String)]
    let user: String
    let lookupKey: String
    private let query: String
    private var secret: String?
    private var failure: String?

    /// `address`: the auth database's, resolved by the caller (off the loop for names).
    init?(pooler: Pooler, lookupKey: String, user: String, address: SocketAddress, database: DatabaseEntry,
          databaseName: String, authUser: String, credential: ServerCredential, query: String) {
        guard let fd = try? Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue)) else { return nil }
        self.user = user
        self.lookupKey = lookupKey
        self.query = query
        self.login = ServerLoginStateMachine(user: authUser, credential: credential)
        self.startupParameters = [("user", authUser), ("database", database.dbname ?? databaseName),
                                  ("application_name", "pooler auth_query")]
        super.init(pooler: pooler, fd: fd, remote: address, localPort: 0)
        wantsWritable = true // connecting
        do {
            try register()
            if try Syscall.connect(fd, address) { writable() }
        } catch {
            finish(failure: "\(error)")
            return nil
        }
    }


    override func writable() {
        if phase == .connecting {
            let error = Syscall.socketError(fd)
            guard error == 0 else {
                finish(failure: "\(SystemError("connect", errno: error))")
                return
            }
            phase = .login
            output.append(ServerLoginStateMachine.startupMessage(parameters: startupParameters))
        }
        flush()
    }

    override func readable() {
        guard readAvailable() else { return }
        while phase != .done, case .frame(let frame) = FrameScanner.scan(input.readable, from: 0, maxPacketSize: 1 << 20) {
            let payload = UnsafeRawBufferPointer(rebasing: input.readable[frame.payloadStart..<frame.end])
            switch phase {
            case .login: handleLogin(frame.type, payload)
            case .query: handleResult(frame.type, payload)
            case .connecting, .done: break
            }
            guard phase != .done else { return }
            input.consume(frame.end)
        }
        flush()
    }

    private func handleLogin(_ type: UInt8, _ payload: UnsafeRawBufferPointer) {
        switch login.received(type: type, payload: payload) {
        case .send(let bytes): output.append(bytes)
        case .ready: sendQuery()
        case .fail(let message, _): finish(failure: "auth_user login failed: \(message)")
        case .parameter, .backendKey, .none: break
        }
    }

    private func sendQuery() {
        phase = .query
        var writer = MessageWriter()
        writer.begin(FrontendMessageID.parse); writer.cString(""); writer.cString(query); writer.int16(0); writer.end()
        writer.begin(FrontendMessageID.bind)
        writer.cString(""); writer.cString("")
        writer.int16(0)                    // parameter formats: all text
        writer.int16(1)                    // one parameter: the user name
        let name = Array(user.utf8)
        writer.int32(Int32(name.count)); writer.raw(name)
        writer.int16(0)                    // result formats: all text
        writer.end()
        writer.begin(FrontendMessageID.execute); writer.cString(""); writer.int32(0); writer.end()
        writer.begin(FrontendMessageID.sync); writer.end()
        output.append(writer.bytes)
    }

    private func handleResult(_ type: UInt8, _ payload: UnsafeRawBufferPointer) {
        switch type {
        case BackendMessageID.dataRow:
            var reader = MessageReader(payload)
            guard let columns = reader.int16(), columns >= 2 else { return }
            for column in 0..<Int(columns) {
                guard let length = reader.int32() else { return }
                if length < 0 {
                    if column == 1 { secret = nil }
                    continue
                }
                guard let bytes = reader.bytes(count: Int(length)) else { return }
                if column == 1 { secret = String(decoding: bytes, as: UTF8.self) }
            }
        case BackendMessageID.errorResponse:
            failure = "auth_query failed: \(ErrorFields.parse(payload).message)"
        case BackendMessageID.readyForQuery:
            finish(failure: failure)
        default:
            break
        }
    }

    /// Reports the outcome once and closes (the lookup connection is never pooled).
    private func finish(failure: String?) {
        guard phase != .done else { return }
        phase = .done
        if let failure { pooler.log.warning("auth_query for user \"\(user)\": \(failure)") }
        pooler.authLookupFinished(self, secret: failure == nil ? secret : nil, failed: failure != nil)
        var writer = MessageWriter()
        writer.terminate()
        output.append(writer.bytes)
        sendNowBestEffort()
        close(reason: "auth_query done")
    }

    override func peerClosed() { finish(failure: "server closed the connection") }
    override func ioFailed(_ error: SystemError) { finish(failure: "\(error)") }

    func expireIfOlder(than timeout: UInt64, now: UInt64) {
        if now &- connectTime > timeout { finish(failure: "timed out") }
    }
}
