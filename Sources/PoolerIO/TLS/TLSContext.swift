import COpenSSL
import Glibc

/// Shared TLS settings for many connections: wraps an `SSL_CTX`. Build one for the
/// client-facing side (`server(_:)`, we accept TLS) and one for the PostgreSQL-facing
/// side (`client(_:)`, we initiate TLS). Immutable once built; safe to share across threads.
public final class TLSContext: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// PEM certificate chain (our certificate first). Required for `server(_:)`;
        /// optional client certificate for `client(_:)`.
        public var certificateFile: String?
        /// PEM private key matching `certificateFile`.
        public var keyFile: String?
        /// PEM CA bundle used to verify the peer. For `client(_:)` with `verifyPeer` and
        /// no file, the system default locations are used.
        public var caFile: String?
        /// PgBouncer syntax: "all", "secure"/"default" (= tlsv1.2,tlsv1.3), "legacy", or a
        /// list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3 ("tlsv1" = 1.0–1.2) separated by ","
        /// or ":"; a leading "!" or "-" removes a version.
        public var protocols: String
        /// PgBouncer (libusual) syntax for TLS ≤ 1.2 ciphers: "default"/"secure", "normal",
        /// "fast", "compat"/"legacy", "all"/"insecure", or an OpenSSL cipher list.
        public var ciphers: String
        /// TLS 1.3 cipher suites (OpenSSL `SSL_CTX_set_ciphersuites` syntax); nil keeps OpenSSL's.
        public var tls13Ciphers: String?
        /// "auto" (OpenSSL's default groups), "none" (same: TLS 1.3 needs groups), or a
        /// group list such as "prime256v1" or "X25519:P-256" ("," also accepted).
        public var ecdhCurve: String
        /// "auto" (OpenSSL picks DH parameters matching the key), "legacy" (treated as
        /// auto), or "none" (no DHE).
        public var dheParams: String
        /// Server side: request a client certificate and reject bad ones. Client side:
        /// verify the server's chain against `caFile`.
        public var verifyPeer: Bool
        /// Server side with `verifyPeer`: fail the handshake when the client sends no
        /// certificate. When false, a certificate is requested and verified if sent.
        public var requirePeerCertificate: Bool
        /// ALPN protocol names in preference order ("postgresql"). Empty: no ALPN.
        public var alpn: [String]
        /// Server side: allow TLS session tickets (resumption). Off by default, as in
        /// PostgreSQL: resumption buys little for long-lived connections.
        public var sessionTickets: Bool

        public init(certificateFile: String? = nil, keyFile: String? = nil, caFile: String? = nil,
                    protocols: String = "secure", ciphers: String = "default", tls13Ciphers: String? = nil,
                    ecdhCurve: String = "auto", dheParams: String = "auto", verifyPeer: Bool = false,
                    requirePeerCertificate: Bool = true, alpn: [String] = [], sessionTickets: Bool = false) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caFile = caFile
            self.protocols = protocols
            self.ciphers = ciphers
            self.tls13Ciphers = tls13Ciphers
            self.ecdhCurve = ecdhCurve
            self.dheParams = dheParams
            self.verifyPeer = verifyPeer
            self.requirePeerCertificate = requirePeerCertificate
            self.alpn = alpn
            self.sessionTickets = sessionTickets
        }
    }

    let ctx: OpaquePointer
    public let isServer: Bool
    public let configuration: Configuration
    /// ALPN names in wire format (length-prefixed), preference order; nil without ALPN.
    let alpnWire: UnsafeMutableBufferPointer<UInt8>?

    /// A context for accepting TLS from clients. Needs `certificateFile` and `keyFile`.
    public static func server(_ configuration: Configuration) throws -> TLSContext {
        try TLSContext(configuration, isServer: true)
    }

    /// A context for connecting to PostgreSQL over TLS.
    public static func client(_ configuration: Configuration) throws -> TLSContext {
        try TLSContext(configuration, isServer: false)
    }

    private init(_ configuration: Configuration, isServer: Bool) throws {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw TLSError.fromQueue(.configuration, "SSL_CTX_new failed")
        }
        self.ctx = ctx
        self.isServer = isServer
        self.configuration = configuration
        if configuration.alpn.isEmpty {
            alpnWire = nil
        } else {
            var wire: [UInt8] = []
            for name in configuration.alpn {
                let bytes = Array(name.utf8)
                guard !bytes.isEmpty, bytes.count <= 255 else {
                    SSL_CTX_free(ctx)
                    throw TLSError(.configuration, "invalid ALPN protocol name \"\(name)\"")
                }
                wire.append(UInt8(bytes.count))
                wire += bytes
            }
            let storage = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: wire.count)
            _ = storage.initialize(from: wire)
            alpnWire = storage
        }
        // From here on deinit frees ctx and alpnWire if we throw.
        try configure()
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire?.deallocate()
    }

    private func configure() throws {
        let c = configuration
        var options = pooler_ssl_op_base()
        if isServer {
            options |= pooler_ssl_op_cipher_server_preference()
            if !c.sessionTickets { options |= pooler_ssl_op_no_ticket() }
        }

        // Protocol versions.
        let versions = try Self.parseProtocols(c.protocols)
        let order: [(Int32, UInt64)] = [
            (TLS1_VERSION, pooler_ssl_op_no_tlsv1()), (TLS1_1_VERSION, pooler_ssl_op_no_tlsv1_1()),
            (TLS1_2_VERSION, pooler_ssl_op_no_tlsv1_2()), (TLS1_3_VERSION, pooler_ssl_op_no_tlsv1_3()),
        ]
        var minVersion: Int32 = 0, maxVersion: Int32 = 0
        for (index, (version, _)) in order.enumerated() where versions & (1 << index) != 0 {
            if minVersion == 0 { minVersion = version }
            maxVersion = version
        }
        // Holes inside [min, max] (e.g. "tlsv1.0,tlsv1.2") are switched off one by one.
        for (index, (version, noFlag)) in order.enumerated()
        where version > minVersion && version < maxVersion && versions & (1 << index) == 0 {
            options |= noFlag
        }
        _ = SSL_CTX_set_options(ctx, options)
        guard pooler_SSL_CTX_set_min_proto_version(ctx, minVersion) == 1,
              pooler_SSL_CTX_set_max_proto_version(ctx, maxVersion) == 1 else {
            throw TLSError.fromQueue(.configuration, "cannot set TLS protocols \"\(c.protocols)\"")
        }

        // Memory-BIO friendly writes; give idle connections' record buffers back.
        _ = pooler_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE)
                                      | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)
                                      | Int(SSL_MODE_RELEASE_BUFFERS))
        // No session cache on either side: pooled connections are long-lived.
        _ = pooler_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        if isServer && !c.sessionTickets { _ = SSL_CTX_set_num_tickets(ctx, 0) }

        // Ciphers.
        let cipherList = Self.cipherList(for: c.ciphers)
        guard SSL_CTX_set_cipher_list(ctx, cipherList) == 1 else {
            throw TLSError.fromQueue(.configuration, "no ciphers for \"\(c.ciphers)\"")
        }
        if let suites = c.tls13Ciphers, !suites.isEmpty {
            guard SSL_CTX_set_ciphersuites(ctx, suites) == 1 else {
                throw TLSError.fromQueue(.configuration, "invalid TLS 1.3 cipher suites \"\(suites)\"")
            }
        }

        // Key exchange.
        let curve = c.ecdhCurve.lowercased()
        if !curve.isEmpty && curve != "auto" && curve != "none" {
            let list = c.ecdhCurve.split(separator: ",").joined(separator: ":")
            guard pooler_SSL_CTX_set1_groups_list(ctx, list) == 1 else {
                throw TLSError.fromQueue(.configuration, "invalid ecdh curve \"\(c.ecdhCurve)\"")
            }
        }
        switch c.dheParams.lowercased() {
        case "auto", "legacy", "": _ = pooler_SSL_CTX_set_dh_auto(ctx, 1)
        case "none": break
        default: throw TLSError(.configuration, "invalid dheparams \"\(c.dheParams)\" (auto, legacy or none)")
        }

        // Our certificate.
        if let certificateFile = c.certificateFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
                throw TLSError.fromQueue(.configuration, "cannot load certificate \(certificateFile)")
            }
            guard let keyFile = c.keyFile else {
                throw TLSError(.configuration, "certificate \(certificateFile) given without a key file")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.fromQueue(.configuration, "cannot load private key \(keyFile)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw TLSError.fromQueue(.configuration, "private key \(keyFile) does not match \(certificateFile)")
            }
        } else if isServer {
            throw TLSError(.configuration, "a TLS server needs a certificate and key file")
        }

        // Peer verification.
        if let caFile = c.caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw TLSError.fromQueue(.configuration, "cannot load CA file \(caFile)")
            }
        } else if c.verifyPeer && !isServer {
            _ = SSL_CTX_set_default_verify_paths(ctx)
        }
        if c.verifyPeer {
            if isServer {
                guard let caFile = c.caFile else {
                    throw TLSError(.configuration, "verifying client certificates needs a CA file")
                }
                guard let names = SSL_load_client_CA_file(caFile) else {
                    throw TLSError.fromQueue(.configuration, "cannot read CA names from \(caFile)")
                }
                SSL_CTX_set_client_CA_list(ctx, names)
                let mode = c.requirePeerCertificate
                    ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
                SSL_CTX_set_verify(ctx, mode, nil)
            } else {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }

        // ALPN.
        if let wire = alpnWire {
            if isServer {
                // Unretained: every SSL made from ctx belongs to a TLSSession that holds this context.
                SSL_CTX_set_alpn_select_cb(ctx, tlsSelectALPN, Unmanaged.passUnretained(self).toOpaque())
            } else {
                guard SSL_CTX_set_alpn_protos(ctx, wire.baseAddress, UInt32(wire.count)) == 0 else {
                    throw TLSError.fromQueue(.configuration, "cannot set ALPN protocols")
                }
            }
        }
        ERR_clear_error()
    }

    /// Bit i set = version i enabled, for i in TLSv1.0, 1.1, 1.2, 1.3.
    static func parseProtocols(_ text: String) throws -> Int {
        var result = 0
        let all = 0b1111, secure = 0b1100
        for raw in text.split(whereSeparator: { $0 == "," || $0 == ":" || $0 == " " }) {
            var token = raw.lowercased()
            var negate = false
            if token.hasPrefix("!") || token.hasPrefix("-") { negate = true; token.removeFirst() }
            let bits: Int
            switch token {
            case "all", "legacy": bits = all
            case "secure", "default": bits = secure
            case "tlsv1": bits = 0b0111
            case "tlsv1.0": bits = 0b0001
            case "tlsv1.1": bits = 0b0010
            case "tlsv1.2": bits = 0b0100
            case "tlsv1.3": bits = 0b1000
            default: throw TLSError(.configuration, "unknown TLS protocol \"\(raw)\"")
            }
            if negate { result &= ~bits } else { result |= bits }
        }
        if result == 0 { throw TLSError(.configuration, "no TLS protocols enabled by \"\(text)\"") }
        return result
    }

    /// PgBouncer's (libusual's) cipher-list aliases, or the text itself as an OpenSSL list.
    static func cipherList(for name: String) -> String {
        switch name.lowercased() {
        case "", "default", "secure": return "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL"
        case "compat", "legacy": return "HIGH:+3DES:!aNULL"
        case "all", "insecure": return "ALL:!aNULL:!eNULL"
        case "normal":
            return "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+SHA384:+SHA256:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL"
        case "fast":
            return "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+AES256:+SHA256:+SHA384:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL"
        default: return name
        }
    }
}

/// ALPN selection on the server side: the first of our protocols (server preference)
/// that the client offered. `arg` is the (unretained) `TLSContext`.
private func tlsSelectALPN(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                           _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?,
                           _ offeredLength: UInt32, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard ssl != nil, let out, let outLength, let offered, let arg else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    guard let wire = context.alpnWire else { return SSL_TLSEXT_ERR_NOACK }
    var ours = 0
    while ours < wire.count {
        let length = Int(wire[ours])
        var theirs = 0
        while theirs < Int(offeredLength) {
            let theirLength = Int(offered[theirs])
            if theirs + 1 + theirLength > Int(offeredLength) { break }
            if theirLength == length,
               memcmp(wire.baseAddress! + ours + 1, offered + theirs + 1, length) == 0 {
                out.pointee = offered + theirs + 1
                outLength.pointee = UInt8(length)
                return SSL_TLSEXT_ERR_OK
            }
            theirs += 1 + theirLength
        }
        ours += 1 + length
    }
    // RFC 7301: no overlap is a fatal no_application_protocol alert.
    return SSL_TLSEXT_ERR_ALERT_FATAL
}
