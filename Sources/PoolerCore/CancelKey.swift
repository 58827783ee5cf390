import PoolerWire

/// The pooler's own BackendKeyData for a client, as 8 bytes on the wire (process id,
/// secret). With peering (peer_id > 0) it carries, as PgBouncer's does, the peer id in
/// bytes 1–2 (little-endian) and a forwarding TTL in the low two bits of byte 7, so a
/// cancel that reaches the wrong instance can be sent on to the right one.
public enum CancelKey {
    public static let ttlMask: UInt8 = 0x03

    public static func make(peerID: Int) -> (processID: Int32, secretKey: Int32) {
        var bytes = Crypto.randomBytes(count: 8)
        bytes[0] &= 0x7F // a positive process id, as PostgreSQL's
        if peerID > 0 {
            bytes[1] = UInt8(truncatingIfNeeded: peerID)
            bytes[2] = UInt8(truncatingIfNeeded: peerID >> 8)
            bytes[7] |= ttlMask
        }
        return split(bytes)
    }

    public static func bytes(processID: Int32, secretKey: Int32) -> [UInt8] {
        withUnsafeBytes(of: processID.bigEndian) { Array($0) } + withUnsafeBytes(of: secretKey.bigEndian) { Array($0) }
    }

    public static func split(_ bytes: [UInt8]) -> (processID: Int32, secretKey: Int32) {
        func int32(_ b: ArraySlice<UInt8>) -> Int32 { Int32(bitPattern: b.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        return (int32(bytes[0..<4]), int32(bytes[4..<8]))
    }

    public static func peerID(of bytes: [UInt8]) -> Int { Int(bytes[1]) | Int(bytes[2]) << 8 }

    public enum Route: Equatable {
        /// Ours: match this (normalised) key against our clients.
        case local(processID: Int32, secretKey: Int32)
        /// Another instance's: send it this key (TTL decremented).
        case peer(id: Int, processID: Int32, secretKey: Int32)
        /// Bounced between peers too often.
        case expired
    }

    /// Where a CancelRequest with this key goes, for an instance with `ownPeerID`.
    public static func route(processID: Int32, secretKey: Int32, ownPeerID: Int) -> Route {
        guard ownPeerID > 0 else { return .local(processID: processID, secretKey: secretKey) }
        var bytes = bytes(processID: processID, secretKey: secretKey)
        let target = peerID(of: bytes)
        if target != ownPeerID {
            guard bytes[7] & ttlMask > 0 else { return .expired }
            bytes[7] -= 1
            let key = split(bytes)
            return .peer(id: target, processID: key.processID, secretKey: key.secretKey)
        }
        bytes[7] |= ttlMask
        let key = split(bytes)
        return .local(processID: key.processID, secretKey: key.secretKey)
    }
}
