import PoolerConfig
import PoolerIO

/// TLS contexts built from the [pgbouncer] client_tls_* and server_tls_* keys.
/// They are rebuilt on RELOAD, so renewed certificates apply to new connections
/// without dropping the ones that are open.
struct TLSSetup {
    /// For clients connecting to us (nil: client_tls_sslmode = disable).
    var clients: TLSContext?
    /// For our connections to PostgreSQL (nil: server_tls_sslmode = disable).
    var servers: TLSContext?
    /// The same with ALPN "postgresql", for server_tls_direct.
    var serversDirect: TLSContext?

    static func make(_ settings: Settings) throws -> TLSSetup {
        var setup = TLSSetup()
        let clientMode = settings.clientTLSSSLMode
        if clientMode != "disable" {
            guard !settings.clientTLSKeyFile.isEmpty, !settings.clientTLSCertFile.isEmpty else {
                throw StartupError("client_tls_sslmode = \(clientMode) needs client_tls_key_file and client_tls_cert_file")
            }
            let verify = clientMode == "verify-ca" || clientMode == "verify-full"
            if (verify || settings.authType == .cert) && settings.clientTLSCAFile.isEmpty {
                throw StartupError("client_tls_sslmode = \(clientMode) / auth_type = cert needs client_tls_ca_file")
            }
            setup.clients = try TLSContext.server(.init(
                certificateFile: settings.clientTLSCertFile, keyFile: settings.clientTLSKeyFile,
                caFile: settings.clientTLSCAFile.isEmpty ? nil : settings.clientTLSCAFile,
                protocols: settings.clientTLSProtocols, ciphers: settings.clientTLSCiphers,
                tls13Ciphers: settings.clientTLS13Ciphers.isEmpty ? nil : settings.clientTLS13Ciphers,
                ecdhCurve: settings.clientTLSECDHCurve, dheParams: settings.clientTLSDHEParams,
                verifyPeer: !settings.clientTLSCAFile.isEmpty, requirePeerCertificate: verify,
                alpn: ["postgresql"]))
        }
        let serverMode = settings.serverTLSSSLMode
        if serverMode != "disable" {
            func context(alpn: [String]) throws -> TLSContext {
                try TLSContext.client(.init(
                    certificateFile: settings.serverTLSCertFile.isEmpty ? nil : settings.serverTLSCertFile,
                    keyFile: settings.serverTLSKeyFile.isEmpty ? nil : settings.serverTLSKeyFile,
                    caFile: settings.serverTLSCAFile.isEmpty ? nil : settings.serverTLSCAFile,
                    protocols: settings.serverTLSProtocols, ciphers: settings.serverTLSCiphers,
                    tls13Ciphers: settings.serverTLS13Ciphers.isEmpty ? nil : settings.serverTLS13Ciphers,
                    verifyPeer: serverMode == "verify-ca" || serverMode == "verify-full", alpn: alpn))
            }
            setup.servers = try context(alpn: [])
            if settings.serverTLSDirect { setup.serversDirect = try context(alpn: ["postgresql"]) }
        }
        return setup
    }
}
