import NIOCore
import NIOPosix
import ParleyProtocols

/// A TCP connection to a Parley server, framed into lines (bounded, as on the server).
enum ServerLink {
    typealias Channel = NIOAsyncChannel<InboundFrame, ByteBuffer>

    /// Connects for `parley connect`, or prints why it could not (both modes say it the same way).
    static func connectOrReport(_ address: ServerAddress) async -> Channel? {
        do {
            return try await connect(host: address.host, port: address.port)
        } catch {
            LineModeClient.printError(ClientError.unreachable(address, error).description)
            return nil
        }
    }

    static func connect(host: String, port: Int) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(limits: .init(maximumLineBytes: 1 << 20), stripsTelnet: false, greetingWindow: nil)
                    )
                    return try Channel(wrappingChannelSynchronously: channel)
                }
            }
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
