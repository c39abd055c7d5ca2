import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyCore
import ParleyProtocols

/// The browser's port: one listener for the web client's files, `/healthz`, `/metrics`, and the two WebSocket
/// doors (`/ws`: Parley's JSON protocol; `/irc`: IRC over WebSocket). A connection starts as HTTP (NIO's codec,
/// with pipelining kept in order); a WebSocket upgrade turns it into a chat connection of the door its path
/// names (`WebSocketDoor`), from then on like any other. What the port answers is `WebSite`'s.
struct HTTPDoor: FrontDoor {
    let site: WebSite

    var name: String { "http" }

    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits, opener: ConnectionOpener) throws {
        opener.track(channel)
        let http = HTTPHandler(site: site)
        // Set up on the channel's loop, and only used there: the upgrade removes it there.
        let bound = NIOLoopBound(http, eventLoop: channel.eventLoop)
        let site = site
        let upgrader = NIOWebSocketServerUpgrader(
            // A frame past this closes the connection (1009); a message past the door's line limit is refused and
            // the connection goes on (`WebSocketLines`).
            maxFrameSize: limits.line.hardLimitBytes,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                guard case .accept(_, let headers) = site.upgrade(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard case .accept(let door, _) = site.upgrade(head) else { throw ChannelError.inappropriateOperationForState }
                    channel.pipeline.syncOperations.removeHandler(bound.value).whenFailure { _ in channel.close(promise: nil) }
                    try door.setUp(channel, limits: limits, opener: opener)
                }
            }
        )
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }), withErrorHandling: true
        )
        try channel.pipeline.syncOperations.addHandler(bound.value)
    }

    /// Not used: HTTP's chat connections are opened by the WebSocket doors.
    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits { limits.line }

    /// Not used, as `lineLimits`.
    func makeSession(_ context: SessionContext) -> any LineSession { JSONSession(context) }

    func keepAlive(serverName: String, interval: Duration) -> KeepAlive? { nil }

    func refusal(_ reason: String, serverName: String) -> ByteBuffer {
        let body = reason + "\n"
        return ByteBuffer(
            string: "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: \(body.utf8.count)\r\n"
                + "connection: close\r\n\r\n" + body
        )
    }
}

/// Answers the plain HTTP requests, one at a time (NIO's pipelining handler holds the next until this one's
/// end is written). A connection that sends nothing for `idleTimeout` — before its first request, or between
/// keep-alive requests — is closed, so half-finished requests cannot hold connections open; a request's body
/// (no route takes one) is read and thrown away, up to `maximumBodyBytes`.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let idleTimeout: TimeAmount = .seconds(30)
    static let maximumBodyBytes = 64 * 1024

    let site: WebSite
    private var request: HTTPRequestHead?
    private var bodyBytes = 0
    private var idle: Scheduled<Void>?

    init(site: WebSite) {
        self.site = site
    }

    func handlerAdded(context: ChannelHandlerContext) {
        waitForRequest(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle?.cancel()
        idle = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            idle?.cancel()
            request = head
            bodyBytes = 0
        case .body(let body):
            bodyBytes += body.readableBytes
            if bodyBytes > Self.maximumBodyBytes { context.close(promise: nil) }
        case .end:
            guard let head = request else { return }
            request = nil
            let peer = context.channel.remoteAddress?.ipAddress
            switch site.answer(head, peer: peer) {
            case .now(let response):
                respond(response, to: head, context: context)
            case .later(let answer):
                // The health check asks the store, which is async; the answer is written on the event loop.
                let loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                let promise = loop.makePromise(of: WebSite.Response.self)
                promise.completeWithTask { await answer() }
                promise.futureResult.whenSuccess { response in
                    let (handler, context) = bound.value
                    handler.respond(response, to: head, context: context)
                }
            }
        }
    }

    private func respond(_ response: WebSite.Response, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        site.metrics.httpRequest(status: response.status.code)
        guard context.channel.isActive else { return }
        var headers = response.headers
        headers.add(name: "content-length", value: "\(response.body.readableBytes)")
        // A refused WebSocket handshake ends the connection: its client expected to keep it for something else.
        let keepAlive = head.isKeepAlive && bodyBytes <= Self.maximumBodyBytes && !head.headers.contains(name: "upgrade")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            waitForRequest(context)
        } else {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func waitForRequest(_ context: ChannelHandlerContext) {
        idle?.cancel()
        let channel = context.channel
        idle = context.eventLoop.scheduleTask(in: Self.idleTimeout) { channel.close(promise: nil) }
    }
}
