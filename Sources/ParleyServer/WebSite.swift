import Foundation
import NIOCore
import NIOHTTP1
import ParleyCore
import Synchronization

/// What the HTTP port answers, apart from its wiring: the web client's files (embedded in the executable),
/// `/healthz`, `/metrics`, and whether a WebSocket upgrade may go ahead (its path, its origin,
/// its subprotocol). Pure decisions on a request's head, so they are tested without sockets.
struct WebSite: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    enum Answer {
        case now(Response)
        /// An answer that needs the store (the health check).
        case later(@Sendable () async -> Response)
    }

    enum Upgrade {
        case accept(WebSocketDoor, HTTPHeaders)
        case refuse(HTTPResponseStatus, String)
    }

    let serverName: String
    let metrics: ServerMetrics
    /// Who may read `/metrics` (loopback unless `--metrics-allow` says otherwise).
    let metricsAllowed: [Network]
    /// Origins besides the server's own whose pages may open the WebSockets (`--allowed-origin`).
    let allowedOrigins: Set<String>
    /// Proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    let trustedProxies: [Network]
    /// Whether the store answers.
    let health: HealthProbe
    /// The WebSocket addresses of the other nodes of this chat (`--node-url`), for the web client to fail over to.
    var nodeURLs: [String] = []

    /// Sent with everything: the page runs only its own script and style, loads nothing from elsewhere,
    /// connects only back here, and cannot be framed.
    static let securityHeaders: [(String, String)] = [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                + "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    ]

    /// The subprotocols of IRC over WebSocket (IRCv3); of those a client offers, the first it lists is chosen.
    static let ircSubprotocols = ["text.ircv3.net", "binary.ircv3.net"]

    func answer(_ head: HTTPRequestHead, peer: String?) -> Answer {
        guard head.method == .GET || head.method == .HEAD else {
            var response = Self.text(.methodNotAllowed, "Only GET and HEAD are answered here.")
            response.headers.add(name: "allow", value: "GET, HEAD")
            return .now(response)
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        switch path {
        case "/healthz":
            return .later { [health, serverName] in
                let healthy = await health.check()
                let body = #"{"status":"\#(healthy ? "ok" : "unavailable")","server":"\#(ParleyLogHandler.jsonEscaped(serverName))"}"# + "\n"
                return Self.response(healthy ? .ok : .serviceUnavailable, type: "application/json", body: ByteBuffer(string: body))
            }
        case "/metrics":
            guard let client = clientAddress(head, peer: peer), metricsAllowed.contains(where: { $0.contains(client) }) else {
                return .now(Self.text(.forbidden, "Metrics are not shown to this address (see --metrics-allow)."))
            }
            return .now(Self.response(.ok, type: "text/plain; version=0.0.4; charset=utf-8", body: ByteBuffer(bytes: metrics.exposition())))
        case "/ws", "/irc":
            if head.headers.contains(name: "upgrade"), case .refuse(let status, let reason) = upgrade(head, peer: peer) {
                return .now(Self.text(status, reason))
            }
            var response = Self.text(.upgradeRequired, "This address is a WebSocket endpoint: connect with a WebSocket client.")
            response.headers.add(name: "upgrade", value: "websocket")
            return .now(response)
        case "/nodes":
            // The other nodes the page may move to when this one goes (docs/PROTOCOL.md, "Browser port").
            let list = nodeURLs.map { #""\#(ParleyLogHandler.jsonEscaped($0))""# }.joined(separator: ",")
            return .now(Self.response(.ok, type: "application/json", body: ByteBuffer(string: #"{"nodes":[\#(list)]}"# + "\n")))
        default:
            guard let asset = Self.assets[path == "/" ? "/index.html" : path] else {
                return .now(Self.text(.notFound, "Nothing here. The chat is at /."))
            }
            var response = Self.response(.ok, type: asset.type, body: asset.body)
            if !nodeURLs.isEmpty, asset.type.hasPrefix("text/html") {
                // The page may connect back here and to the other nodes, nowhere else.
                let policy = Self.securityHeaders[0].1.replacingOccurrences(
                    of: "connect-src 'self'", with: "connect-src 'self' " + nodeURLs.joined(separator: " ")
                )
                response.headers.replaceOrAdd(name: "content-security-policy", value: policy)
            }
            return .now(response)
        }
    }

    /// The client's address: the socket's peer, or — when that is a proxy of `--trusted-proxy` — the address the
    /// proxy says it serves (the last in `X-Forwarded-For` that is no trusted proxy itself).
    func clientAddress(_ head: HTTPRequestHead, peer: String?) -> String? {
        guard let peer, trustedProxies.contains(where: { $0.contains(peer) }) else { return peer }
        let chain = head.headers[canonicalForm: "x-forwarded-for"].map(String.init)  // split at commas, trimmed
        return chain.reversed().first { hop in Network(hop) != nil && !trustedProxies.contains { $0.contains(hop) } } ?? peer
    }

    /// Whether a WebSocket upgrade of `head` may go ahead, and as which door. A page from another origin is
    /// refused (its visitors' browsers could otherwise be made to talk to a chat only their network reaches);
    /// a program that sends no `Origin` is no browser, and is let in. The `Host` asked for must be a name of this
    /// server (`knowsName`), so that a page whose own name was made to point here (DNS rebinding) is refused too.
    func upgrade(_ head: HTTPRequestHead, peer: String?) -> Upgrade {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        guard path == "/ws" || path == "/irc" else { return .refuse(.notFound, "WebSockets are at /ws (JSON) and /irc (IRC).") }
        let host = head.headers.first(name: "host")?.lowercased() ?? ""
        guard knowsName(host) else {
            return .refuse(
                .forbidden,
                "This server does not answer to the name \(host) (a guard against DNS rebinding); its operator can add it with "
                    + "--server-name or --allowed-origin."
            )
        }
        if let origin = head.headers.first(name: "origin")?.lowercased() {
            // The page's host against the one the browser asked for, scheme aside: behind a proxy that ends
            // TLS, a page from https://chat.example.org reaches this plain port (as gorilla/websocket checks).
            let host = origin.split(separator: "://", maxSplits: 1).dropFirst().first.map(String.init)
            guard host != nil && host == head.headers.first(name: "host")?.lowercased() || allowedOrigins.contains(origin) else {
                return .refuse(.forbidden, "Pages from \(origin) may not connect here; the server's operator can allow them with --allowed-origin.")
            }
        }
        let client = clientAddress(head, peer: peer)
        let forwarded = client == peer ? nil : client
        guard path == "/irc" else { return .accept(WebSocketDoor(carried: .json, forwardedFor: forwarded), [:]) }
        let offered = head.headers[canonicalForm: "sec-websocket-protocol"].map { $0.lowercased() }
        guard !offered.isEmpty else { return .accept(WebSocketDoor(carried: .irc(binary: false), forwardedFor: forwarded), [:]) }
        guard let chosen = offered.first(where: Self.ircSubprotocols.contains) else {
            return .refuse(.badRequest, "IRC over WebSocket speaks text.ircv3.net or binary.ircv3.net.")
        }
        let door = WebSocketDoor(carried: .irc(binary: chosen == "binary.ircv3.net"), forwardedFor: forwarded)
        return .accept(door, ["sec-websocket-protocol": chosen])
    }

    /// Whether `host` (a `Host` header: a name or address, perhaps with a port) names this server: an IP address,
    /// `localhost`, the server's name or a name whose first label it is (`chat` answers to `chat.lan` and
    /// `chat.local`), or the host of an `--allowed-origin`.
    func knowsName(_ host: String) -> Bool {
        var name = host
        if name.hasPrefix("[") {
            name = String(name.dropFirst().prefix { $0 != "]" })  // [::1]:8080
        } else if name.filter({ $0 == ":" }).count == 1 {
            name = String(name.prefix { $0 != ":" })
        }
        if Network(name) != nil || name == "localhost" { return true }
        let server = serverName.lowercased()
        if name == server || name.hasPrefix(server + ".") { return true }
        return allowedOrigins.contains { origin in
            let hostPart = origin.split(separator: "://", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            return hostPart == host || hostPart.prefix { $0 != ":" } == name
        }
    }

    /// The web client's files (`Web/`, compiled in by the package's `embedInCode` resources), each made a buffer once.
    static let assets: [String: (type: String, body: ByteBuffer)] = [
        "/index.html": ("text/html; charset=utf-8", ByteBuffer(bytes: PackageResources.index_html)),
        "/app.js": ("text/javascript; charset=utf-8", ByteBuffer(bytes: PackageResources.app_js)),
        "/style.css": ("text/css; charset=utf-8", ByteBuffer(bytes: PackageResources.style_css)),
        "/favicon.svg": ("image/svg+xml", ByteBuffer(bytes: PackageResources.favicon_svg)),
    ]

    /// The origin of the pages a node at WebSocket address `url` serves (`ws://b.lan:8080/ws` → `http://b.lan:8080`):
    /// their web client may connect here when it fails over. Nil when `url` is no WebSocket address.
    static func pageOrigin(ofNode url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "ws" || scheme == "wss",
            let host = parsed.host
        else { return nil }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return normalizedOrigin((scheme == "wss" ? "https://" : "http://") + shownHost + (parsed.port.map { ":\($0)" } ?? ""))
    }

    /// An origin as browsers send it: lowercased, no trailing slash, no default port.
    static func normalizedOrigin(_ origin: String) -> String {
        var origin = origin.lowercased()
        if origin.hasSuffix("/") { origin.removeLast() }
        if origin.hasPrefix("https://"), origin.hasSuffix(":443") { origin.removeLast(4) }
        if origin.hasPrefix("http://"), origin.hasSuffix(":80") { origin.removeLast(3) }
        return origin
    }

    static func text(_ status: HTTPResponseStatus, _ text: String) -> Response {
        response(status, type: "text/plain; charset=utf-8", body: ByteBuffer(string: text + "\n"))
    }

    static func response(_ status: HTTPResponseStatus, type: String, body: ByteBuffer) -> Response {
        var headers = HTTPHeaders(securityHeaders)
        headers.add(name: "content-type", value: type)
        return Response(status: status, headers: headers, body: body)
    }
}

/// `/healthz`'s question to the store: does it answer a read within `timeout`? A read that never returns (a hung
/// disk) is left behind, not awaited, so the answer is 503 on time; one read at a time, and its result reused for
/// a second, so that probes (which anyone may send) never queue work on the store.
final class HealthProbe: Sendable {
    private struct State {
        var last: (at: ContinuousClock.Instant, healthy: Bool)?
        var waiting: [CheckedContinuation<Bool, Never>] = []
        /// The read under way, if any: a late answer or timeout of an earlier one must not settle it.
        var reading: UInt64?
        var reads: UInt64 = 0
    }

    let store: any MessageStore
    let timeout: Duration
    private let state = Mutex(State())

    init(store: any MessageStore, timeout: Duration = .seconds(2)) {
        self.store = store
        self.timeout = timeout
    }

    func check() async -> Bool {
        await withCheckedContinuation { continuation in
            let (known, start) = state.withLock { state -> (Bool?, UInt64?) in
                if let last = state.last, last.at.duration(to: .now) < .seconds(1) { return (last.healthy, nil) }
                state.waiting.append(continuation)
                guard state.reading == nil else { return (nil, nil) }
                state.reads += 1
                state.reading = state.reads
                return (nil, state.reads)
            }
            if let known { return continuation.resume(returning: known) }
            guard let read = start else { return }
            // Unstructured on purpose, and awaited by nobody: the read may never end, and the probe must not
            // wait for it; whichever of the two finishes first answers (`finish` acts once per read).
            let (store, timeout) = (store, timeout)
            Task { self.finish(read, (try? await store.lastMessageID()) != nil) }
            Task {
                try? await Task.sleep(for: timeout)
                self.finish(read, false)
            }
        }
    }

    private func finish(_ read: UInt64, _ healthy: Bool) {
        let waiting = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard state.reading == read else { return [] }
            state.reading = nil
            state.last = (.now, healthy)
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume(returning: healthy) }
    }
}
