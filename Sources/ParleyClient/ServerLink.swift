import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ParleyProtocols
import ParleyTLS

/// A TCP connection to a Parley server, framed into lines (bounded, as on the server).
enum ServerLink {
    typealias Channel = NIOAsyncChannel<InboundFrame, ByteBuffer>

    /// Connects for `parley connect` to the first of its servers that answers, saying at once why each one
    /// before it did not (a changed certificate must be heard even when the next server answers; both modes say
    /// it the same way). With TLS it also decides how to trust that server (`ServerTrust`), which reconnections
    /// keep.
    static func connectOrReport(_ options: ClientOptions) async -> (channel: Channel, trust: ServerTrust?, index: Int)? {
        for (index, address) in options.addresses.enumerated() {
            do {
                let (channel, trust) = try await firstConnection(to: address, options)
                return (channel, trust, index)
            } catch let error as TrustError {
                LineModeClient.printError(error.description)
            } catch {
                LineModeClient.printError(ClientError.unreachable(address, error).description)
            }
        }
        return nil
    }

    /// The first connection to `address`: plain, or over TLS trusted by the system, by a pin, or by the user
    /// (asked, or told by `--accept-fingerprint`), pinning what was accepted.
    private static func firstConnection(to address: ServerAddress, _ options: ClientOptions) async throws -> (Channel, ServerTrust?) {
        guard options.tls else { return (try await connect(address, trust: nil), nil) }
        var trust = ServerTrust(mode: .system)
        if let pin = KnownServers.pin(for: address) {
            if let accepted = options.acceptFingerprint, accepted != pin {
                // Told on the command line to accept a new certificate: it replaces the pin if it is the
                // one the server shows (checked by connecting with it).
                let channel = try await connect(address, trust: ServerTrust(mode: .pinned(accepted)))
                try KnownServers.remember(accepted, for: address)
                return (channel, ServerTrust(mode: .pinned(accepted)))
            }
            trust = ServerTrust(mode: .pinned(pin))
        }
        do {
            return (try await connect(address, trust: trust), trust)
        } catch where trust.mode == .system && (error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError) {
            // Not verifiable against the system's trust store (self-signed, most often): pin on first use.
            let presented = try await presentedFingerprint(address)
            guard try options.acceptFingerprint.map({ $0 == presented }) ?? askToAccept(presented, address: address) else {
                if let given = options.acceptFingerprint {
                    throw TrustError.changed(pinned: given, presented: presented)
                }
                let reason = "\(error)".contains("CERTIFICATE_VERIFY_FAILED") ? "no authority this system trusts signed it" : "\(error)"
                throw TrustError.unverified(address, fingerprint: presented, reason: reason)
            }
            let pinned = ServerTrust(mode: .pinned(presented))
            let channel = try await connect(address, trust: pinned)
            try KnownServers.remember(presented, for: address)
            return (channel, pinned)
        }
    }

    /// How a server found by failing over is trusted: by its pin, else by the system (nobody is asked in the
    /// middle of a session: a server that neither trusts is passed over like one that does not answer; a
    /// changed pin is said).
    static func failoverTrust(for address: ServerAddress) -> ServerTrust {
        KnownServers.pin(for: address).map { ServerTrust(mode: .pinned($0)) } ?? ServerTrust(mode: .system)
    }

    static func connect(_ address: ServerAddress, trust: ServerTrust?) async throws -> Channel {
        let (channel, handshake) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var handshake: EventLoopFuture<String>?
                    if let trust {
                        let (tls, watcher, outcome) = try trust.handlers(host: address.host, on: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandlers(tls, watcher)
                        handshake = outcome
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(limits: .init(maximumLineBytes: 1 << 20), stripsTelnet: false, greetingWindow: nil)
                    )
                    return (try Channel(wrappingChannelSynchronously: channel), handshake)
                }
            }
        if let handshake {
            do {
                _ = try await handshake.get()
            } catch {
                try? await channel.channel.close()
                throw error
            }
        }
        return channel
    }

    /// The fingerprint of the certificate a server presents, whatever it is (the handshake is then refused).
    private static func presentedFingerprint(_ address: ServerAddress) async throws -> String {
        do {
            let channel = try await connect(address, trust: ServerTrust(mode: .pinned("")))
            try? await channel.channel.close()
        } catch TrustError.changed(_, let presented) {
            return presented
        }
        throw TrustError.declined
    }

    /// On a terminal, asks whether to trust a certificate seen for the first time; elsewhere, no.
    private static func askToAccept(_ fingerprint: String, address: ServerAddress) throws -> Bool {
        guard isatty(STDIN_FILENO) == 1, isatty(STDERR_FILENO) == 1 else { return false }
        LineModeClient.printError(
            """
            The certificate of \(address) is not signed by an authority this system trusts.
            Its SHA-256 fingerprint is \(fingerprint)
            Compare it with the one the server logs at start. Trust it and remember it? [y/N]
            """
        )
        guard let answer = readLine(strippingNewline: true) else { return false }
        return ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces))
    }
}

/// `HOST[:PORT]`, `[IPv6]:PORT` or `:PORT`.
public struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(parsing text: String, defaultPort: Int = 5000) throws {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            port = rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? -1 : defaultPort
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            port = Int(text[text.index(after: colon)...]) ?? -1
        } else {
            host = text
            port = defaultPort
        }
        if host.isEmpty { host = "127.0.0.1" }
        guard (1...65535).contains(port) else { throw ClientError.badAddress(text) }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Several addresses separated by commas (`a.lan,b.lan:5001`), in order; at least one.
    public static func list(parsing text: String, defaultPort: Int = 5000) throws -> [ServerAddress] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.contains(where: \.isEmpty) else { throw ClientError.badAddress(text) }
        return try parts.map { try ServerAddress(parsing: $0, defaultPort: defaultPort) }
    }
}

public enum ClientError: Error, CustomStringConvertible {
    case badAddress(String)
    case unreachable(ServerAddress, any Error)
    case refused(String)
    case connectionLost

    public var description: String {
        switch self {
        case .badAddress(let text): "'\(text)' is not HOST[:PORT]"
        case .unreachable(let address, let error): "cannot connect to \(address): \(Self.describe(error))"
        case .refused(let message): message
        case .connectionLost: "the connection to the server was lost"
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if error is ChannelError { return "connection timed out" }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return text
    }
}
