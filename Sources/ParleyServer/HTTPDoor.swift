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
        let http = HTTPHandler(site: site, requestTimeout: limits.httpRequestTimeout.timeAmount)
        // Set up on the channel's loop, and only used there: the upgrade removes it there.
        let bound = NIOLoopBound(http, eventLoop: channel.eventLoop)
        let site = site
        let upgrader = NIOWebSocketServerUpgrader(
            // A frame past this closes the connection (1009); a message past the door's line limit is refused and
            // the connection goes on (`WebSocketLines`). The larger of the two doors' limits: the door is known
            // only once the path is.
            maxFrameSize: max(LinesDoor().lineLimits(limits).hardLimitBytes, IRCDoor().lineLimits(limits).hardLimitBytes),
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                guard case .accept(_, let headers) = site.upgrade(head, peer: channel.remoteAddress?.ipAddress) else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard case .accept(let door, _) = site.upgrade(head, peer: channel.remoteAddress?.ipAddress) else {
                        throw ChannelError.inappropriateOperationForState
                    }
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

/// Answers the plain HTTP requests, one at a time (NIO's pipelining handler holds the next request, and stops
/// reading, until this one's end is written). Bounded against a client that does not play along:
/// - a whole request must arrive within the request timeout (`Limits.httpRequestTimeout`, 30 s) of the connection
///   going idle (its opening, or the end of the last answer), and an answer the client does not read must be
///   taken within as long, so neither silence, a trickle of headers or body, nor a full socket holds a
///   connection open;
/// - a request's body (no route takes one) is read and thrown away, up to `maximumBodyBytes`;
/// - an answer is written only while the socket takes writes, and always from a fresh turn of the event loop:
///   pipelined requests that are never read back then wait in the client's own socket instead of piling up
///   answers here, and answering one never recurses into the next (the pipelining handler hands it on inside
///   the write of the last one's end).
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maximumBodyBytes = 64 * 1024

    private enum Phase {
        /// Waiting for a request, or reading one; the deadline runs.
        case reading(HTTPRequestHead?, bodyBytes: Int)
        /// The request is read and its answer is being made.
        case answering
        /// The answer is made and waits for the socket to take writes.
        case ready(WebSite.Response, HTTPRequestHead)
    }

    let site: WebSite
    let requestTimeout: TimeAmount
    private var phase = Phase.reading(nil, bodyBytes: 0)
    private var deadline: Scheduled<Void>?

    init(site: WebSite, requestTimeout: TimeAmount) {
        self.site = site
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        startDeadline(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .reading(let head, let bodyBytes) = phase else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            phase = .reading(head, bodyBytes: 0)
        case .body(let body):
            guard bodyBytes + body.readableBytes <= Self.maximumBodyBytes else { return context.close(promise: nil) }
            phase = .reading(head, bodyBytes: bodyBytes + body.readableBytes)
        case .end:
            guard let head else { return }
            deadline?.cancel()
            phase = .answering
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            switch site.answer(head, peer: context.channel.remoteAddress?.ipAddress) {
            case .now(let response):
                loop.execute {
                    let (handler, context) = bound.value
                    handler.answered(response, to: head, context: context)
                }
            case .later(let answer):
                // The health check asks the store, which is async; the answer is written on the event loop.
                let promise = loop.makePromise(of: WebSite.Response.self)
                promise.completeWithTask { await answer() }
                promise.futureResult.whenSuccess { response in
                    let (handler, context) = bound.value
                    handler.answered(response, to: head, context: context)
                }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .ready(let response, let head) = phase { write(response, to: head, context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func answered(_ response: WebSite.Response, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .answering = phase, context.channel.isActive else { return }
        site.metrics.httpRequest(status: response.status.code)
        phase = .ready(response, head)
        // A client that does not read its answers gets as long to take this one as it had to send the request.
        if context.channel.isWritable { write(response, to: head, context: context) } else { startDeadline(context) }
    }

    private func write(_ response: WebSite.Response, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.add(name: "content-length", value: "\(response.body.readableBytes)")
        // A refused WebSocket handshake ends the connection: its client expected to keep it for something else.
        let keepAlive = head.isKeepAlive && !head.headers.contains(name: "upgrade")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        phase = .reading(nil, bodyBytes: 0)
        if keepAlive { startDeadline(context) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func startDeadline(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
    }
}
