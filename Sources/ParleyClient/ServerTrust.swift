import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import ParleyTLS
import Synchronization

/// How `parley connect --tls` decides to trust a server, like ssh: a certificate the system trusts is
/// accepted; otherwise the certificate's fingerprint is pinned on first use (shown, and kept in
/// `known_servers` once accepted) and a different certificate later is refused with a warning.
public struct ServerTrust: Sendable {
    enum Mode: Sendable, Equatable {
        /// Verified against the system's trust store and the host name.
        case system
        /// Accepted only if its SHA-256 fingerprint is this one.
        case pinned(String)
    }

    let mode: Mode

    /// The TLS handler for one connection, and a future for its handshake: the fingerprint the server showed
    /// on success, or the failure (a pinned connection that saw another certificate fails with
    /// `TrustError.changed`).
    func handlers(host: String, on loop: any EventLoop) throws -> (tls: NIOSSLClientHandler, watcher: HandshakeWatcher, outcome: EventLoopFuture<String>) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // A pin names the certificate itself: the name in it does not matter (it is often the server's own
        // host name, not the address the user typed).
        if case .pinned = mode { configuration.certificateVerification = .noHostnameVerification }
        let context = try NIOSSLContext(configuration: configuration)
        // SNI takes names only; an address is verified by the certificate's IP entries, if any.
        let name = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        let seen = Presented()
        let handler: NIOSSLClientHandler
        switch mode {
        case .system:
            handler = try NIOSSLClientHandler(context: context, serverHostname: name)
        case .pinned(let pin):
            handler = try NIOSSLClientHandler(context: context, serverHostname: name) { chain, promise in
                let fingerprint = chain.first.flatMap { try? $0.toDERBytes() }.map(Fingerprint.of(der:))
                seen.value.withLock { $0 = fingerprint }
                promise.succeed(fingerprint == pin ? .certificateVerified : .failed)
            }
        }
        let watcher = HandshakeWatcher(promise: loop.makePromise(of: Void.self))
        let mode = mode
        let outcome = watcher.promise.futureResult.flatMapErrorThrowing { error in
            if case .pinned(let pin) = mode, let presented = seen.value.withLock({ $0 }), presented != pin {
                throw TrustError.changed(pinned: pin, presented: presented)
            }
            throw error
        }.map { seen.value.withLock { $0 } ?? "" }
        return (handler, watcher, outcome)
    }

    /// The fingerprint the server presented, as the verification callback saw it.
    private final class Presented: Sendable {
        let value = Mutex<String?>(nil)
    }
}

/// What went wrong deciding to trust a server, in words the user can act on.
public enum TrustError: Error, CustomStringConvertible {
    case changed(pinned: String, presented: String)
    case unverified(ServerAddress, fingerprint: String, reason: String)
    case declined

    public var description: String {
        switch self {
        case .changed(let pinned, let presented):
            """
            WARNING: the server's certificate has changed.
              pinned:    SHA256 \(pinned)
              presented: SHA256 \(presented)
            Someone may be intercepting the connection, or the server has a new certificate. If you know it \
            has, remove its line from \(KnownServers.defaultPath) (or run with --accept-fingerprint \(presented)).
            """
        case .unverified(let address, let fingerprint, let reason):
            """
            The certificate of \(address) cannot be verified (\(reason)).
            Its SHA-256 fingerprint is \(fingerprint)
            If this is your server (compare with the fingerprint its log shows at start), run again with \
            --accept-fingerprint \(fingerprint)
            """
        case .declined:
            "Not connected: the certificate was not accepted."
        }
    }
}

/// Completes its promise when the TLS handshake is done, or fails it with the first error or the close.
final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// `$XDG_CONFIG_HOME/parley/known_servers` (or `~/.config/parley/known_servers`): one `HOST:PORT FINGERPRINT`
/// per line, like ssh's known_hosts.
public enum KnownServers {
    public static var defaultPath: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        return base + "/parley/known_servers"
    }

    static func pin(for address: ServerAddress, in path: String = defaultPath) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == address.description { return String(fields[1]) }
        }
        return nil
    }

    static func remember(_ fingerprint: String, for address: ServerAddress, in path: String = defaultPath) throws {
        let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var lines = existing.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(address.description + " ") }
        lines.append("\(address.description) \(fingerprint)")
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
