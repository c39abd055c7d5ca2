import NIOCore
import NIOPosix

/// A server that answers the first line of every connection with one fixed line: for client tests of
/// replies a real Parley server would not give.
struct FakeServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start(reply: String) async throws -> FakeServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Replier(reply: reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeServer(channel: channel)
    }

    func close() async throws {
        try await channel.close()
    }

    private final class Replier: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: String
        var replied = false

        init(reply: String) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !replied, unwrapInboundIn(data).readableBytesView.contains(UInt8(ascii: "\n")) else { return }
            replied = true
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply + "\n")), promise: nil)
        }
    }
}
