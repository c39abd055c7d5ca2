import Foundation
import NIOCore
import NIOWebSocket
import ParleyCore
@testable import ParleyServer
import Testing

/// The HTTP port over real sockets: the web client's files, WebSocket for JSON and IRC, origins, limits,
/// `/healthz` and `/metrics`.
@Suite("The browser door: HTTP and WebSocket")
struct BrowserDoorTests {
    /// A whole HTTP/1.1 exchange on a fresh connection: the response's lines (status line, headers, blank line,
    /// body lines), read until the server closes.
    static func exchange(port: Int, _ request: String) async throws -> [String] {
        let client = try await TestClient.connect(port: port)
        try await client.sendRaw(Array(request.utf8))
        return try await client.waitForClose(timeout: .seconds(60))
    }

    static func get(_ path: String, port: Int, method: String = "GET") async throws -> [String] {
        try await exchange(port: port, "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n")
    }

    /// A WebSocket handshake written by hand, so that its response's status and headers can be read.
    static func handshake(port: Int, path: String, headers: [String]) -> String {
        (["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"] + headers + ["", ""])
            .joined(separator: "\r\n")
    }

    @Test("GET / is the web client with a strict CSP and nosniff; its script and style are served; others are 404 and 405")
    func page() async throws {
        try await TestServer.run { server in
            let page = try await Self.get("/", port: server.httpPort)
            #expect(page.first == "HTTP/1.1 200 OK")
            #expect(page.contains("content-type: text/html; charset=utf-8"))
            #expect(page.contains { $0.hasPrefix("content-security-policy: default-src 'none'; script-src 'self';") })
            #expect(page.contains("x-content-type-options: nosniff"))
            #expect(page.contains { $0.contains(#"<script src="/app.js""#) })
            let pageHasInlineScript = page.contains { $0.contains("<script>") }
            #expect(!pageHasInlineScript, "no inline script")
            let script = try await Self.get("/app.js", port: server.httpPort)
            #expect(script.first == "HTTP/1.1 200 OK")
            #expect(script.contains("content-type: text/javascript; charset=utf-8"))
            #expect(try await Self.get("/style.css", port: server.httpPort).contains("content-type: text/css; charset=utf-8"))
            #expect(try await Self.get("/nothing", port: server.httpPort).first == "HTTP/1.1 404 Not Found")
            let post = try await Self.get("/", port: server.httpPort, method: "POST")
            #expect(post.first == "HTTP/1.1 405 Method Not Allowed")
            #expect(post.contains("allow: GET, HEAD"))
            let head = try await Self.get("/", port: server.httpPort, method: "HEAD")
            #expect(head.first == "HTTP/1.1 200 OK")
            let headHasScript = head.contains { $0.contains("<script") }
            #expect(!headHasScript, "HEAD has no body")
            #expect(try await Self.get("/ws", port: server.httpPort).first == "HTTP/1.1 426 Upgrade Required")
        }
    }

    @Test("JSON over WebSocket: hello, history on join, messages both ways with a text user, acks, errors; each message one JSON object")
    func jsonOverWebSocket() async throws {
        try await TestServer.run { server in
            let text = try await server.textUser("nc_user")
            // Acknowledged, so stored before the browser joins (a text user's line gets no acknowledgement).
            let early = try await server.jsonUser("early")
            try await early.send(##"{"type":"send","room":"#general","text":"before the browser came","ref":"e"}"##)
            try await early.waitFor(isEvent("ack", ["ref": "e"]))
            let browser = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws")
            try await browser.send(#"{"type":"hello","version":1,"nick":"webby"}"#)
            try await browser.waitFor(isEvent("welcome", ["nick": "webby"]))
            let history = try json(try await browser.waitFor { $0.contains(#""type":"history""#) })
            #expect((history["messages"] as? [[String: Any]])?.last?["text"] as? String == "before the browser came")
            try await text.waitFor { $0 == "*** webby joined #general" }
            try await text.send("hello browser")
            try await browser.waitFor(isEvent("message", ["from": "nc_user", "text": "hello browser"]))
            try await browser.send(##"{"type":"send","room":"#general","text":"hello nc","ref":"s1"}"##)
            try await browser.waitFor(isEvent("ack", ["ref": "s1"]))
            try await text.waitFor { $0.hasSuffix("] <webby> hello nc") }
            try await browser.send(##"{"type":"history","room":"#general","limit":2,"ref":"h"}"##)
            let page = try json(try await browser.waitFor { $0.contains(#""type":"history""#) && $0.contains(#""ref":"h""#) })
            #expect((page["messages"] as? [[String: Any]])?.compactMap { $0["text"] as? String } == ["hello browser", "hello nc"])
            try await browser.send("not json")
            try await browser.waitFor(isEvent("error", ["code": "bad_request"]))
            try await browser.send(#"{"type":"quit","reason":"tab closed"}"#)
            try await text.waitFor { $0.contains("webby") && $0.contains("tab closed") }
            let rest = try await browser.waitForClose()
            #expect(rest.last?.hasPrefix("close normalClosure") == true, "\(rest)")
            for line in try await browser.lines.filter({ !$0.hasPrefix("close ") }) { _ = try json(line) }
        }
    }

    @Test("IRC over WebSocket: text.ircv3.net and binary.ircv3.net register and chat with a text user; the subprotocol is echoed")
    func ircOverWebSocket() async throws {
        try await TestServer.run { server in
            let text = try await server.textUser("nc_user")
            for (subprotocol, nick) in [("text.ircv3.net", "wirc"), ("binary.ircv3.net", "birc")] {
                let irc = try await TestClient.connectWebSocket(
                    port: server.httpPort, path: "/irc", subprotocols: [subprotocol], binary: subprotocol.hasPrefix("binary")
                )
                try await irc.send("NICK \(nick)")
                try await irc.send("USER \(nick) 0 * :Web IRC")
                try await irc.waitFor { $0.hasPrefix(":test.parley 001 \(nick) ") }
                try await irc.send("JOIN #general")
                try await irc.waitFor { $0.hasPrefix(":test.parley 366 \(nick) #general ") }
                try await text.send("hi \(nick)")
                try await irc.waitFor { $0.hasSuffix("PRIVMSG #general :hi \(nick)") }
                try await irc.send("PRIVMSG #general :hello from \(subprotocol)")
                try await text.waitFor { $0.hasSuffix("] <\(nick)> hello from \(subprotocol)") }
                try await irc.send("QUIT :bye")
                _ = try await irc.waitForClose()
            }
            // The handshake's response names the subprotocol chosen: the client's first that Parley speaks.
            let raw = try await TestClient.connect(port: server.httpPort)
            try await raw.sendRaw(Array(Self.handshake(port: server.httpPort, path: "/irc", headers: ["Sec-WebSocket-Protocol: foo, binary.ircv3.net, text.ircv3.net"]).utf8))
            try await raw.waitFor { $0 == "HTTP/1.1 101 Switching Protocols" }
            try await raw.waitFor { $0.lowercased() == "sec-websocket-protocol: binary.ircv3.net" }
            let refused = try await Self.exchange(
                port: server.httpPort, Self.handshake(port: server.httpPort, path: "/irc", headers: ["Sec-WebSocket-Protocol: chat.example"])
            )
            #expect(refused.first == "HTTP/1.1 400 Bad Request")
        }
    }

    @Test("a page from another origin is refused (403); the server's own host (any scheme) and an --allowed-origin are let in; a program without Origin too")
    func origins() async throws {
        try await TestServer.run(configure: { $0.allowedOrigins = ["https://chat.example.org"] }) { server in
            let port = server.httpPort
            let evil = try await Self.exchange(port: port, Self.handshake(port: port, path: "/ws", headers: ["Origin: https://evil.example"]))
            #expect(evil.first == "HTTP/1.1 403 Forbidden")
            #expect(evil.contains { $0.contains("https://evil.example may not connect") })
            let evilIRC = try await Self.exchange(port: port, Self.handshake(port: port, path: "/irc", headers: ["Origin: https://evil.example"]))
            #expect(evilIRC.first == "HTTP/1.1 403 Forbidden")
            for origin in ["null", "http://127.0.0.1:\(port).evil.example", "http://127.0.0.1"] {
                let refused = try await Self.exchange(port: port, Self.handshake(port: port, path: "/ws", headers: ["Origin: \(origin)"]))
                #expect(refused.first == "HTTP/1.1 403 Forbidden", "\(origin)")
            }
            // The page's own host, over http or (behind a proxy that ends TLS) https; an allowed origin.
            for origin in ["http://127.0.0.1:\(port)", "https://127.0.0.1:\(port)", "https://chat.example.org"] {
                let client = try await TestClient.connectWebSocket(port: port, path: "/ws", origin: origin)
                try await client.send(#"{"type":"ping","ref":"p"}"#)
                try await client.waitFor(isEvent("error", ["code": "not_registered"]))
                await client.close()
            }
        }
    }

    @Test("a message over the line limit is refused and the connection goes on; a frame past the hard limit closes it with 1009")
    func oversized() async throws {
        try await TestServer.run { server in
            let browser = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws")
            try await browser.send(#"{"type":"hello","version":1,"nick":"big"}"#)
            try await browser.waitFor(isEvent("welcome", ["nick": "big"]))
            try await browser.send(##"{"type":"send","room":"#general","text":""## + String(repeating: "x", count: 5000) + #""}"#)
            try await browser.waitFor(isEvent("error", ["code": "line_too_long"]))
            try await browser.send(#"{"type":"ping","ref":"still"}"#)
            try await browser.waitFor(isEvent("pong", ["ref": "still"]))
            try await browser.send(String(repeating: "y", count: 70_000))
            try await browser.waitFor { $0.hasPrefix("close messageTooLarge") }
        }
    }

    @Test("a browser that stops reading is dropped like a slow socket; the others get every message; /metrics counts it")
    func slowBrowser() async throws {
        try await TestServer.run(configure: {
            $0.limits.sendQueueBytes = 64 * 1024
            $0.limits.flood = .init(burst: 100_000, perSecond: 100_000)
        }) { server in
            let slow = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws", receiveBuffer: 4096)
            try await slow.send(#"{"type":"hello","version":1,"nick":"sleepy"}"#)
            try await slow.waitFor(isEvent("welcome", ["nick": "sleepy"]))
            try await slow.channel.setOption(.autoRead, value: false).get()
            let reader = try await server.jsonUser("reader")
            let sender = try await server.textUser("sender")
            // Closed loop, as for a slow socket (LimitsTests): the reader is never more than a batch behind, while
            // the browser that stopped reading falls further behind with every batch.
            let (count, payload) = (1000, String(repeating: "z", count: 1000))
            for batch in stride(from: 0, to: count, by: 20) {
                try await sender.sendRaw(Array((batch..<batch + 20).map { "\($0) \(payload)\n" }.joined().utf8))
                try await reader.waitFor(isEvent("message", ["text": "\(batch + 19) \(payload)"]))
            }
            if try await !reader.lines.contains(where: isEvent("left", ["nick": "sleepy", "cause": "send_queue_full"])) {
                try await reader.waitFor(isEvent("left", ["nick": "sleepy", "cause": "send_queue_full"]))
            }
            #expect(try await reader.lines.filter { $0.contains(#""from":"sender""#) }.count == count)
            let metrics = try await Self.get("/metrics", port: server.httpPort)
            #expect(metrics.contains("parley_clients_dropped_slow_total 1"), "\(metrics)")
        }
    }

    @Test("/healthz says ok while the store answers; /metrics is Prometheus text whose counters move, for loopback only by default")
    func healthAndMetrics() async throws {
        try await TestServer.run { server in
            let health = try await Self.get("/healthz", port: server.httpPort)
            #expect(health.first == "HTTP/1.1 200 OK")
            #expect(health.contains("content-type: application/json"))
            #expect(health.last == #"{"status":"ok","server":"test.parley"}"#)
            func stored() async throws -> Int? {
                let lines = try await Self.get("/metrics", port: server.httpPort)
                return lines.first { $0.hasPrefix("parley_messages_stored_total ") }.flatMap { Int($0.split(separator: " ")[1]) }
            }
            let before = try await stored() ?? 0
            let alice = try await server.jsonUser("alice")
            try await alice.send(##"{"type":"send","room":"#general","text":"counted","ref":"c"}"##)
            try await alice.waitFor(isEvent("ack", ["ref": "c"]))
            #expect(try await stored() == before + 1)
            let metrics = try await Self.get("/metrics", port: server.httpPort)
            #expect(metrics.contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
            for name in ["parley_connections_total{door=\"lines\"}", "parley_registrations_total", "parley_deliveries_total",
                         "parley_store_commit_seconds_bucket", "parley_history_reads_total", "parley_connections_open{door=\"lines\"} 1"] {
                #expect(metrics.contains { $0.hasPrefix(name) }, "no \(name)")
            }
        }
        try await TestServer.run(configure: { $0.metricsAllowed = [Network("10.0.0.0/8")!] }) { server in
            let refused = try await Self.get("/metrics", port: server.httpPort)
            #expect(refused.first == "HTTP/1.1 403 Forbidden")
        }
    }

    @Test("--https-port: the same answers over TLS (openssl s_client as the client)")
    func https() async throws {
        try await TestServer.run(configure: { $0.httpsPort = 0 }) { server in
            let client = try TLSTests.tlsClient(port: server.httpsPort)
            try client.type("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(server.httpsPort)\r\nConnection: close\r\n\r")
            // Swift reads CR LF as one character, so the response is matched as a whole, not line by line.
            try await client.output.waitFor { $0.contains(#"{"status":"ok","server":"test.parley"}"#) }
            #expect(client.output.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(try await client.waitForExit() == 0)
        }
    }

    static func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, masked: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, maskKey: masked ? .random() : nil, data: ByteBuffer(string: text))
    }

    @Test("WebSocket frames: fragments make one message, a ping is answered, a close is answered with 1000 and the end")
    func frames() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws")
            try await client.sendFrame(Self.frame(.text, #"{"type":"hello","#, fin: false))
            try await client.sendFrame(Self.frame(.ping, "are you there"))
            try await client.sendFrame(Self.frame(.continuation, #""version":1,"nick":"frag"}"#))
            try await client.waitFor { $0 == "pong are you there" }
            try await client.waitFor(isEvent("welcome", ["nick": "frag"]))
            try await client.sendFrame(Self.frame(.connectionClose, ""))
            let rest = try await client.waitForClose()
            #expect(rest.last?.hasPrefix("close normalClosure") == true, "\(rest)")
        }
    }

    @Test("WebSocket protocol errors close with 1002: an unmasked frame, a reserved opcode, a stray continuation; endless fragments with 1009")
    func protocolErrors() async throws {
        try await TestServer.run { server in
            let cases: [(String, [WebSocketFrame], String)] = [
                ("unmasked", [Self.frame(.text, "{}", masked: false)], "close protocolError"),
                ("reserved opcode", [WebSocketFrame(fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: 3)!, maskKey: .random(), data: ByteBuffer())], "close protocolError"),
                ("stray continuation", [Self.frame(.continuation, "x")], "close protocolError"),
                ("endless", [Self.frame(.text, "", fin: false)] + Array(repeating: Self.frame(.continuation, String(repeating: "e", count: 8000), fin: false), count: 10), "close messageTooLarge"),
            ]
            for (what, frames, expected) in cases {
                let client = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws")
                for frame in frames { try? await client.sendFrame(frame) }
                let rest = try await client.waitForClose()
                #expect(rest.last?.hasPrefix(expected) == true, "\(what): \(rest)")
            }
            // The server is fine: a well-behaved client chats.
            let fine = try await TestClient.connectWebSocket(port: server.httpPort, path: "/ws")
            try await fine.send(#"{"type":"hello","version":1,"nick":"fine"}"#)
            try await fine.waitFor(isEvent("welcome", ["nick": "fine"]))
        }
    }

    @Test("HTTP: a thousand pipelined requests in one write are answered in order; a request that never ends is cut at the deadline")
    func pipeliningAndDeadlines() async throws {
        // The default deadline for the thousand, which a loaded machine may take seconds to answer; a short one
        // for the requests that never end.
        try await TestServer.run { server in
            let count = 1000
            let request = "GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n"
            let last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let lines = try await Self.exchange(port: server.httpPort, String(repeating: request, count: count) + last)
            #expect(lines.filter { $0 == "HTTP/1.1 200 OK" }.count == count + 1)
        }
        try await TestServer.run(configure: { $0.limits.httpRequestTimeout = .seconds(1) }) { server in
            // Headers that never end, and a body that never comes: closed after the deadline, nothing answered.
            for slow in ["GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"] {
                let client = try await TestClient.connect(port: server.httpPort)
                // A loaded machine can take the whole second between the connect and the write: the server has
                // then closed first, and the write fails. Either way nothing may be answered.
                try? await client.sendRaw(Array(slow.utf8))
                #expect(try await client.waitForClose().isEmpty)
            }
        }
    }

    /// A store whose reads never return, as on a hung disk.
    struct HungStore: MessageStore {
        func append(_ messages: [ChatMessage]) async throws {}
        func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] { [] }
        func lastMessageID() async throws -> Int64 {
            // Stands for a read that never ends; the probe must answer without it.
            try await Task.sleep(for: .seconds(3600))
            return 0
        }
    }

    @Test("/healthz's probe: a store that hangs is unhealthy once the timeout passes, the hung read not awaited; a live one is healthy")
    func healthProbe() async throws {
        let hung = HealthProbe(store: HungStore(), timeout: .milliseconds(200))
        let started = ContinuousClock.now
        async let first = hung.check()
        async let second = hung.check()
        #expect(await (first, second) == (false, false))
        #expect(started.duration(to: .now) < .seconds(60))
        #expect(await HealthProbe(store: NoStore()).check())
    }

    @Test("DNS rebinding: a WebSocket for a Host that is no name of this server is refused, whatever the Origin says")
    func rebinding() async throws {
        try await TestServer.run(configure: { $0.allowedOrigins = ["https://chat.example.org:443"] }) { server in
            let port = server.httpPort
            func handshake(host: String) async throws -> String? {
                let request = Self.handshake(port: port, path: "/ws", headers: ["Origin: http://\(host)"])
                    .replacingOccurrences(of: "Host: 127.0.0.1:\(port)", with: "Host: \(host)")
                let client = try await TestClient.connect(port: port)
                try await client.sendRaw(Array(request.utf8))
                let status = try await client.nextLine()
                await client.close()
                return status
            }
            let refused = try await handshake(host: "evil.example:\(port)")
            #expect(refused == "HTTP/1.1 403 Forbidden")
            for host in ["localhost:\(port)", "test.parley:\(port)", "test.parley.lan:\(port)", "[::1]:\(port)", "chat.example.org"] {
                let status = try await handshake(host: host)
                #expect(status == "HTTP/1.1 101 Switching Protocols", "\(host)")
            }
        }
    }

    @Test("--trusted-proxy: X-Forwarded-For names the client for /metrics and for the limits per address; others' headers are ignored")
    func trustedProxy() async throws {
        try await TestServer.run(configure: { $0.trustedProxies = [Network("127.0.0.1")!] }) { server in
            let port = server.httpPort
            let forwarded = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n"
            let refused = try await Self.exchange(port: port, forwarded)
            #expect(refused.first == "HTTP/1.1 403 Forbidden")
            let allowed = try await Self.get("/metrics", port: port)
            #expect(allowed.first == "HTTP/1.1 200 OK")
            // Registrations are limited per address: three from one forwarded address, then refused; another goes.
            func register(_ nick: String, from address: String) async throws -> String {
                let client = try await TestClient.connectWebSocket(port: port, path: "/ws", headers: ["X-Forwarded-For": "10.9.9.9, \(address)"])
                try await client.send(##"{"type":"hello","version":1,"nick":"\##(nick)"}"##)
                try await client.waitFor(isEvent("welcome"))
                try await client.send(##"{"type":"register","password":"a-long-password","ref":"r"}"##)
                let answer = try await client.waitFor { $0.contains("registered to you") || $0.contains(#""ref":"r""#) }
                await client.close()
                return answer
            }
            for nick in ["one", "two", "three"] {
                let answer = try await register(nick, from: "198.51.100.1")
                #expect(answer.contains("registered to you"), "\(answer)")
            }
            let fourth = try await register("four", from: "198.51.100.1")
            #expect(fourth.contains("too_many_attempts"), "\(fourth)")
            let other = try await register("five", from: "198.51.100.2")
            #expect(other.contains("registered to you"), "\(other)")
        }
        // Not from a trusted proxy: the header is the client's own claim, and ignored.
        try await TestServer.run { server in
            let forwarded = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n"
            let answer = try await Self.exchange(port: server.httpPort, forwarded)
            #expect(answer.first == "HTTP/1.1 200 OK")
        }
    }
}
