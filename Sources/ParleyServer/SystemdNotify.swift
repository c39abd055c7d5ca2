import Foundation

/// systemd's readiness protocol (`Type=notify`): when `NOTIFY_SOCKET` names a socket, a datagram such as
/// `READY=1` tells systemd the service is up — here, once every port is listening — so units ordered after
/// Parley start only then. Without the variable (not under systemd) it does nothing. A dozen lines of socket
/// calls rather than a dependency on libsystemd.
public enum SystemdNotify {
    /// Sends `state` (`READY=1`, `STATUS=…`, `STOPPING=1`); false when there is no socket or the send failed.
    @discardableResult
    public static func send(_ state: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard var path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        // A leading @ names a socket in the abstract namespace: a NUL in its place.
        let abstract = path.hasPrefix("@")
        if abstract { path.removeFirst() }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard bytes.count + (abstract ? 1 : 0) < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let offset = abstract ? 1 : 0
            for (index, byte) in bytes.enumerated() { raw[offset + index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 1 : 0))
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let sent = state.withCString { text in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, text, strlen(text), 0, $0, length) }
            }
        }
        return sent >= 0
    }
}
