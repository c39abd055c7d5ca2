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
