import COpenSSL
import Glibc

public enum TLSHandshakeResult: Equatable {
    /// Done. Flush `takeCiphertext` (the last flight may be pending) and call
    /// `readPlaintext`: application data can arrive together with the handshake.
    case complete
    /// Flush `takeCiphertext` to the socket, feed what the peer sends, call again.
    case wantsMore
    /// Fatal. Flush `takeCiphertext` once more (an alert may be queued), then close.
    case failed(TLSError)
}

public enum TLSReadResult: Equatable {
    /// This many plaintext bytes were appended to the buffer.
    case bytes(Int)
    /// No complete record buffered: feed more ciphertext.
    case wantsMore
    /// The peer sent close_notify.
    case closed
    case failed(TLSError)
}

public enum TLSWriteResult: Equatable {
    /// This many plaintext bytes were taken (encrypted into the pending ciphertext).
    case written(Int)
    /// Nothing taken yet (the handshake needs the peer): feed ciphertext and retry.
    case wantsMore
    case failed(TLSError)
}

/// One TLS connection over two memory BIOs: the caller owns the socket and moves
/// ciphertext in (`feedCiphertext`) and out (`takeCiphertext`); OpenSSL never touches
/// a file descriptor and never blocks.
///
/// After every call (handshake, read, write, shutdown) drain `takeCiphertext`: OpenSSL
/// may produce records at any of them (handshake flights, TLS 1.3 key updates, alerts).
public final class TLSSession {
    public let context: TLSContext
    public let isServer: Bool
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer   // network → OpenSSL
    private let writeBIO: OpaquePointer  // OpenSSL → network
    /// An error met after some plaintext was already returned; reported by the next read.
    private var deferredReadError: TLSError?

    /// - Parameters:
    ///   - isServer: must match the context (`TLSContext.server` accepts, `.client` connects).
    ///   - serverName: client side: the host we connect to; sent as SNI (unless an IP
    ///     address) and, with `verifyHostname`, checked against the certificate.
    ///   - verifyHostname: client side (verify-full): the server certificate must match
    ///     `serverName` (DNS SAN / CN, or IP SAN for addresses). Implies chain verification.
    public init(context: TLSContext, isServer: Bool, serverName: String? = nil, verifyHostname: Bool = false) throws {
        precondition(isServer == context.isServer, "TLSSession role must match its TLSContext")
        ERR_clear_error()
        guard let ssl = SSL_new(context.ctx) else {
            throw TLSError.fromQueue(.other, "SSL_new failed")
        }
        guard let readBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.fromQueue(.other, "BIO_new failed")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw TLSError.fromQueue(.other, "BIO_new failed")
        }
        // An empty read BIO means "retry later", not end of stream.
        pooler_BIO_set_mem_eof_return(readBIO, -1)
        pooler_BIO_set_mem_eof_return(writeBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)   // ssl owns both BIOs from here
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.context = context
        self.isServer = isServer

        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty {
                let isAddress = Self.isIPAddress(serverName)
                if !isAddress {
                    guard pooler_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
                        throw TLSError.fromQueue(.configuration, "cannot set SNI \"\(serverName)\"")
                    }
                }
                if verifyHostname {
                    SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                    let ok = isAddress
                        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
                        : SSL_set1_host(ssl, serverName)
                    guard ok == 1 else {
                        throw TLSError.fromQueue(.configuration, "cannot set expected host \"\(serverName)\"")
                    }
                    if SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER == 0 {
                        SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
                    }
                }
            } else if verifyHostname {
                throw TLSError(.configuration, "hostname verification needs a server name")
            }
        }
    }

    deinit {
        SSL_free(ssl)   // frees both BIOs
    }

    // MARK: Ciphertext in and out

    /// Hands bytes read from the socket to OpenSSL.
    public func feedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, Int(Int32.max))
            let n = BIO_write(readBIO, bytes.baseAddress! + offset, Int32(chunk))
            if n <= 0 { break }   // a memory BIO only fails when out of memory
            offset += Int(n)
        }
    }

    /// Ciphertext waiting to be written to the socket.
    public var pendingCiphertextCount: Int { Int(BIO_ctrl_pending(writeBIO)) }

    /// Moves all pending ciphertext to the end of `buffer`; returns the byte count.
    @discardableResult
    public func takeCiphertext(into buffer: inout ByteBuffer) -> Int {
        var total = 0
        while true {
            let pending = Int(BIO_ctrl_pending(writeBIO))
            if pending == 0 { return total }
            let chunk = min(pending, Int(Int32.max))
            buffer.reserveWritable(chunk)
            let n = BIO_read(writeBIO, buffer.writablePointer, Int32(chunk))
            if n <= 0 { return total }
            buffer.didWrite(Int(n))
            total += Int(n)
        }
    }

    // MARK: Handshake

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    public func handshake() -> TLSHandshakeResult {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .complete }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantsMore
        default: return .failed(lastError(rc, during: "handshake"))
        }
    }

    // MARK: Plaintext

    /// Decrypts every complete record buffered so far and appends the plaintext to `buffer`.
    public func readPlaintext(into buffer: inout ByteBuffer) -> TLSReadResult {
        if let error = deferredReadError { return .failed(error) }
        var total = 0
        while true {
            // Plaintext never exceeds the ciphertext it comes from (plus decrypted bytes
            // OpenSSL still holds), so size the room by that: an idle buffer stays unallocated.
            let available = Int(BIO_ctrl_pending(readBIO)) + Int(SSL_pending(ssl))
            if available == 0 && SSL_has_pending(ssl) == 0 {
                if total > 0 { return .bytes(total) }
                return receivedCloseNotify ? .closed : .wantsMore
            }
            let want = max(1, min(available, 16 * 1024))
            if buffer.writableCount < want { buffer.reserveWritable(want) }
            let room = Int32(min(buffer.writableCount, Int(Int32.max)))
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.writablePointer, room)
            if n > 0 {
                buffer.didWrite(Int(n))
                total += Int(n)
                continue
            }
            let code = SSL_get_error(ssl, n)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return total > 0 ? .bytes(total) : .wantsMore
            case SSL_ERROR_ZERO_RETURN:
                // close_notify: SSL_read keeps returning this, so bytes first, .closed next call.
                return total > 0 ? .bytes(total) : .closed
            default:
                let error = lastError(n, during: "read")
                if total > 0 {
                    deferredReadError = error
                    return .bytes(total)
                }
                return .failed(error)
            }
        }
    }

    /// Encrypts plaintext; the records become pending ciphertext. With memory BIOs the
    /// whole input is normally taken at once: bound what you pass in (and watch
    /// `pendingCiphertextCount`) to keep memory in check.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        guard bytes.count > 0 else { return .written(0) }
        ERR_clear_error()
        let n = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
        if n > 0 { return .written(Int(n)) }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantsMore
        default: return .failed(lastError(n, during: "write"))
        }
    }

    /// Queues close_notify (a no-op before the handshake completed). Flush afterwards.
    public func shutdown() {
        guard isHandshakeComplete, SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN == 0 else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// The peer's close_notify has been read.
    public var receivedCloseNotify: Bool { SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN != 0 }

    // MARK: Connection facts (after the handshake)

    /// "TLSv1.3", "TLSv1.2", ...
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// OpenSSL name of the negotiated cipher, e.g. "TLS_AES_256_GCM_SHA384"; "" before the handshake.
    public var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "" }
        return String(cString: name)
    }

    /// Secret bits of the negotiated cipher (for SHOW CLIENTS' tls column style output).
    public var cipherBits: Int {
        guard let cipher = SSL_get_current_cipher(ssl) else { return 0 }
        return Int(SSL_CIPHER_get_bits(cipher, nil))
    }

    /// Server side: the SNI host name the client sent.
    public var serverName: String? {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: name)
    }

    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// Whether the peer presented a certificate.
    public var hasPeerCertificate: Bool {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return false }
        X509_free(cert)
        return true
    }

    /// The peer presented a certificate and it verified against the CA file (and host name, if asked).
    public var peerCertificateVerified: Bool {
        hasPeerCertificate && SSL_get_verify_result(ssl) == Int(X509_V_OK)
    }

    /// The peer certificate's subject CN (for auth_type=cert); nil without a certificate.
    public var peerCertificateCommonName: String? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        guard let subject = X509_get_subject_name(cert) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index),
              let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { pooler_OPENSSL_free(utf8) }
        let name = String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
        // A CN with an embedded NUL could impersonate a shorter name: refuse it.
        if name.utf8.contains(0) { return nil }
        return name
    }

    /// RFC 5929 tls-server-end-point channel binding data, for SCRAM-SHA-256-PLUS: the hash
    /// of the server's certificate using its signature's hash (SHA-256 when that is MD5 or
    /// SHA-1). Server side hashes our own certificate, client side the peer's. Nil before
    /// the handshake or when the signature hash is undefined (e.g. Ed25519).
    public var serverEndPointChannelBinding: [UInt8]? {
        let cert: OpaquePointer
        if isServer {
            guard let own = SSL_get_certificate(ssl) else { return nil }
            cert = own
        } else {
            guard let peer = SSL_get1_peer_certificate(ssl) else { return nil }
            cert = peer
        }
        defer { if !isServer { X509_free(cert) } }
        var mdNID: Int32 = 0
        guard X509_get_signature_info(cert, &mdNID, nil, nil, nil) == 1, mdNID != NID_undef else { return nil }
        if mdNID == NID_md5 || mdNID == NID_sha1 { mdNID = NID_sha256 }
        guard let md = pooler_EVP_get_digestbynid(mdNID) else { return nil }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, md, &digest, &length) == 1 else { return nil }
        return Array(digest.prefix(Int(length)))
    }

    // MARK: Sniffing

    /// Whether the first bytes from a client look like a TLS ClientHello record (direct
    /// TLS, PostgreSQL 17 `sslnegotiation=direct`) rather than a PostgreSQL startup packet:
    /// content type 0x16 (handshake), then major version 0x03. With a single byte only
    /// the content type is checked (no valid startup packet starts with 0x16).
    public static func looksLikeTLSClientHello(_ first: UnsafeRawBufferPointer) -> Bool {
        guard first.count >= 1, first[0] == 0x16 else { return false }
        return first.count < 2 || first[1] == 0x03
    }

    // MARK: Errors

    private func lastError(_ rc: Int32, during operation: String) -> TLSError {
        let code = SSL_get_error(ssl, rc)
        let queued = TLSError.drainQueue()
        let verify = SSL_get_verify_result(ssl)
        // Only when verification was enforced: without SSL_VERIFY_PEER OpenSSL still records a
        // result (e.g. "self-signed"), which is not why the handshake failed.
        if SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER != 0, verify != Int(X509_V_OK) {
            let reason = String(cString: X509_verify_cert_error_string(verify))
            return TLSError(.verification, "certificate verify failed: \(reason)"
                            + (queued.isEmpty ? "" : " (\(queued))"))
        }
        switch code {
        case SSL_ERROR_SSL:
            return TLSError(.protocolError, queued.isEmpty ? "\(operation) failed" : queued)
        case SSL_ERROR_SYSCALL:
            return TLSError(.other, queued.isEmpty ? "unexpected end of stream during \(operation)" : queued)
        default:
            return TLSError(.other, "\(operation) failed (SSL error \(code))" + (queued.isEmpty ? "" : ": \(queued)"))
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var storage = in6_addr()
        return host.withCString { name in
            inet_pton(AF_INET, name, &storage) == 1 || inet_pton(AF_INET6, name, &storage) == 1
        }
    }
}
