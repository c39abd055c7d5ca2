import Foundation
import NIOCore
import Testing

@Suite("parley bench, end to end")
struct BenchSmokeTests {
    @Test(
        "a second of load against a real server: nothing lost, latency measured, the server's CPU and memory read",
        arguments: [["--protocol", "text", "--rate", "20"], ["--protocol", "json", "--window", "8"]]
    )
    func smoke(_ load: [String]) async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--flood-burst", "100000", "--flood-rate", "100000"])
        let bench = try ParleyProcess(
            ["bench", "--port", "\(port)", "--clients", "6", "--rooms", "2", "--senders", "2", "--duration", "1", "--drain", "5",
             "--pid", "\(server.pid)", "--json"] + load,
            input: .nullDevice
        )
        #expect(try await bench.waitForExit(timeout: .seconds(30)) == 0, "\(bench.log.text)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(bench.output.text.utf8)) as? [String: Any])
        let sent = try #require(report["sent"] as? Int)
        #expect(sent > 0)
        // Six clients in two rooms of three: each message reaches the two others in its room.
        #expect(report["expected"] as? Int == sent * 2)
        #expect(report["received"] as? Int == sent * 2)
        #expect(report["lost"] as? Int == 0)
        let latency = try #require(report["latencyMs"] as? [String: Double])
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!)
        let usage = try #require(report["server"] as? [String: Double])
        #expect(usage["cpuSeconds"]! > 0 && usage["rssMiB"]! > 1)
        #expect((report["bench"] as? [String: Double])?["cpuSeconds"] != nil)
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test(
        "with --attack, a hostile IRC client runs beside the load: its lines are counted, and nobody's message is lost",
        arguments: ["mode", "history"]
    )
    func attack(_ kind: String) async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--flood-burst", "100000", "--flood-rate", "100000"])
        let listening = try await server.log.waitFor { $0.contains("listening") && $0.contains("door=irc") }
        let ircPort = try #require(listening.split(separator: ":").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        // Text clients, an IRC attacker: the rooms are the same whatever the door.
        let refused = try ParleyProcess(["bench", "--port", "\(port)", "--attack", kind, "--duration", "1"], input: .nullDevice)
        #expect(try await refused.waitForExit() != 0)
        #expect(refused.log.text.contains("--attack-port"))
        let bench = try ParleyProcess(
            ["bench", "--port", "\(port)", "--clients", "4", "--senders", "2", "--rate", "20", "--duration", "2", "--json",
             "--attack", kind, "--attack-port", "\(ircPort)"],
            input: .nullDevice
        )
        #expect(try await bench.waitForExit(timeout: .seconds(30)) == 0, "\(bench.log.text)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(bench.output.text.utf8)) as? [String: Any])
        #expect(report["lost"] as? Int == 0)
        let attack = try #require(report["attack"] as? [String: Any])
        #expect(attack["kind"] as? String == kind)
        #expect((attack["lines"] as? Int ?? 0) > 0)
        #expect((attack["connections"] as? Int ?? 0) >= 1)
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test("an unreachable server fails the run with the reason and exit status 1")
    func unreachable() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off"])
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        let bench = try ParleyProcess(["bench", "--port", "\(port)", "--clients", "2", "--senders", "1", "--duration", "1"], input: .nullDevice)
        #expect(try await bench.waitForExit() == 1)
        #expect(bench.log.text.contains("could not connect to 127.0.0.1:\(port)"))
    }
}
