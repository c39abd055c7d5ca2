import Foundation
import NIOCore
import ParleyCore
import ParleyServer
import Testing

@Suite("Connections")
struct ConnectionTests {
    @Test("a hundred clients, text and JSON, connect at once and all receive one message")
    func manyClients() async throws {
        try await TestServer.run { server in
            let clients = try await withThrowingTaskGroup(of: (Int, TestClient).self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let client = index.isMultiple(of: 2)
                            ? try await server.textUser("user\(index)") : try await server.jsonUser("user\(index)")
                        return (index, client)
                    }
                }
                return try await group.reduce(into: [Int: TestClient]()) { $0[$1.0] = $1.1 }
            }
            #expect(server.application.hub.sessionCount == 100)
            let speaker = try await server.textUser("speaker")
            try await speaker.send("hello, hundred")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in clients {
                    group.addTask {
                        if index.isMultiple(of: 2) {
                            try await client.waitFor { $0.hasSuffix("<speaker> hello, hundred") }
                        } else {
                            try await client.waitFor(isEvent("message", ["from": "speaker", "text": "hello, hundred"]))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("a client that half-closes still gets the replies to what it sent, then the server closes")
    func halfClose() async throws {
        try await TestServer.run { server in
            let watcher = try await server.textUser("watcher")
            let client = try await TestClient.connect(port: server.port)
            try await client.sendRaw(Array("piped\nhello from a pipe\n/who\n".utf8))
            try await client.channel.close(mode: .output)
            let lines = try await client.waitForClose()
            #expect(lines.contains("*** Online (2): piped, watcher"))
            try await watcher.waitFor { $0.hasSuffix("<piped> hello from a pipe") }
            try await watcher.waitFor { $0 == "*** piped left #general (connection lost)" }
        }
    }
}

@Suite("Connections: what is queued is delivered")
struct DeliveryTests {
    @Test("a client that quits while far behind still receives everything queued, then its goodbye")
    func tailBeforeClose() async throws {
        try await TestServer.run(configure: {
            $0.limits.sendQueueBytes = 4 << 20
            $0.limits.flood = .init(burst: 10_000, perSecond: 10_000)
            // The goodbye's drain is bounded (2 s by default) whether or not the client reads; here the client
            // starts reading only once the sender has seen it leave, which a loaded machine can take longer than
            // that to show.
            $0.limits.linger = .seconds(60)
        }) { server in
            let behind = try await server.textUser("behind", options: .init(receiveBuffer: 4096))
            try await behind.channel.setOption(.autoRead, value: false).get()
            let sender = try await server.textUser("sender")
            let payload = String(repeating: "t", count: 1000)
            try await sender.sendRaw(Array((0..<100).map { "\($0) \(payload)\n" }.joined().utf8))
            try await sender.send("/who")
            try await sender.waitFor { $0.hasPrefix("*** Online (2)") }
            // Everything is queued for `behind`, far more than its socket holds. It quits, then reads.
            try await behind.send("/quit")
            try await sender.waitFor { $0 == "*** behind left #general (quit)" }
            try await behind.channel.setOption(.autoRead, value: true).get()
            behind.channel.read()
            let lines = try await behind.waitForClose()
            #expect(lines.filter { $0.contains("<sender> ") }.count == 100)
            #expect(lines.last == "*** behind left #general (quit)")
        }
    }

    @Test("a reply larger than the send queue still reaches the client that asked")
    func largeReply() async throws {
        try await TestServer.run(configure: {
            $0.limits.sendQueueBytes = 4096
            $0.limits.flood = .init(burst: 1000, perSecond: 1000)
        }) { server in
            let builder = try await server.jsonUser("builder")
            let topic = String(repeating: "x", count: 250)
            for index in 0..<30 {
                try await builder.send(##"{"type":"join","room":"#room\##(index)"}"##)
                try await builder.send(##"{"type":"topic","room":"#room\##(index)","text":"\##(topic)"}"##)
                try await builder.waitFor(isEvent("topic", ["room": "#room\(index)"]))
            }
            let asker = try await server.textUser("asker")
            try await asker.send("/rooms")
            try await asker.waitFor { $0 == "*** Rooms (31):" }
            try await asker.waitFor { $0.hasPrefix("***   #room9 (1 member): xxxx") }
            try await asker.send("/who")
            try await asker.waitFor { $0 == "*** Online (2): asker, builder" }
        }
    }

    @Test("a JSON client whose first line is too long stays in JSON mode")
    func overlongFirstJSONLine() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.port)
            try await client.send("{" + String(repeating: " ", count: 5000) + "}")
            try await client.waitFor(isEvent("error", ["code": "line_too_long"]))
            try await client.send(#"{"type":"hello","version":1,"nick":"patient"}"#)
            try await client.waitFor(isEvent("welcome", ["nick": "patient"]))
            // Every line is JSON, but for the greeting a loaded machine may have sent before the first byte came.
            for line in try await client.lines.drop(while: { $0.hasPrefix("*** ") }) { _ = try json(line) }
        }
    }

    @Test("a user may be in at most 50 rooms")
    func roomLimit() async throws {
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 1000, perSecond: 1000) }) { server in
            let collector = try await server.textUser("collector")
            for index in 1..<50 { try await collector.send("/join #r\(index)") }
            try await collector.waitFor { $0 == "*** In #r49 (1): @collector" }
            try await collector.send("/join #one-too-many")
            try await collector.waitFor { $0 == "!!! You are in 50 rooms already; /part one first." }
        }
    }
}
