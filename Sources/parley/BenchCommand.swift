import ArgumentParser
import Foundation
import ParleyBench

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a chat server: fan-out rate, loss, latency, and its CPU and memory.",
        discussion: """
            Opens --clients connections (paced by --connect-rate, so listen backlogs never overflow), joins them \
            to --rooms rooms (#bench, or #bench0…), and makes the first --senders of them send --payload-byte \
            messages at --rate messages per second each, or, without --rate, as fast as a --window of messages \
            not yet seen by the room allows. Every payload carries its send time, so each delivery's latency is \
            measured end to end. Works against Parley (text or JSON) and any IRC server (--protocol irc). \
            Relax the server's flood limits first (parley serve --flood-burst 100000 --flood-rate 100000). \
            With --pid, reports the server's CPU-seconds and memory; the bench reports its own CPU, to show it \
            is not the bottleneck. With --attack, one hostile IRC client runs alongside the load (long MODE \
            lines, comma targets, history requests, or a reader that never reads), reconnecting whenever it is \
            dropped: compare the latency with a run without it. See docs/PERFORMANCE.md.
            """
    )

    @Option(help: "The server's address.")
    var host = "127.0.0.1"

    @Option(help: "The server's port (5000 if none). Give it again for each node of one chat (--store postgres --node-name): clients are spread over them in turn.")
    var port: [Int] = []

    @Option(name: .customLong("protocol"), help: "text, json or irc.")
    var wire: WireOption = .text

    @Option(help: "Connections to open.")
    var clients = 100

    @Option(help: "Rooms to spread the clients over.")
    var rooms = 1

    @Option(help: "Clients that send.")
    var senders = 10

    @Option(help: "Messages per second per sender (default 10). Without it, with --window, senders go as fast as the window allows.")
    var rate: Double?

    @Option(help: "Messages a sender may have in flight when sending as fast as it can (no --rate).")
    var window: Int?

    @Option(help: "Seconds to send for.")
    var duration = 10.0

    @Option(help: "Bytes per message text (32–400).")
    var payload = 64

    @Option(help: "New connections per second while connecting.")
    var connectRate = 1000.0

    @Option(help: "Seconds to wait for the last deliveries after sending stops.")
    var drain = 5.0

    @Option(help: "The server's process id, to report its CPU time and memory (Linux); give it again for each node: they are added up.")
    var pid: [Int32] = []

    @Option(help: "A hostile client to run alongside the load: mode, targets, history or slow.")
    var attack: AttackOption?

    @Option(help: "The server's IRC port, for --attack when --protocol is not irc.")
    var attackPort: Int?

    @Flag(help: "Measure only the bench's own reader (no server): deliveries it can read per CPU-second of one core, with --payload payloads.")
    var readerSpeed = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    enum WireOption: String, ExpressibleByArgument, CaseIterable {
        case text, json, irc
    }

    enum AttackOption: String, ExpressibleByArgument, CaseIterable {
        case mode, targets, history, slow
    }

    func run() async throws {
        if readerSpeed {
            guard (32...400).contains(payload) else { throw ValidationError("--payload must be 32 to 400 bytes.") }
            let perSecond = try DeliveryScanner.measureSpeed(payloadBytes: payload)
            print("parley bench reader: \(String(format: "%.1f", perSecond / 1e6)) M deliveries per CPU-second of one core (\(payload)-byte payloads, IRC lines, one probe in \(Payload.probeEvery))")
            return
        }
        var configuration = BenchConfiguration()
        configuration.host = host
        configuration.ports = port.isEmpty ? [5000] : port
        configuration.wire = BenchProtocol(rawValue: wire.rawValue)!
        configuration.clients = clients
        configuration.rooms = rooms
        configuration.senders = senders
        configuration.rate = window != nil && rate == nil ? nil : (rate ?? 10)
        configuration.window = window ?? 128
        configuration.duration = .milliseconds(Int64(duration * 1000))
        configuration.payloadBytes = payload
        configuration.connectRate = connectRate
        configuration.drain = .milliseconds(Int64(drain * 1000))
        configuration.serverPIDs = pid
        configuration.attack = attack.map { BenchAttack(rawValue: $0.rawValue)! }
        configuration.attackPort = attackPort
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        let report: BenchReport
        do {
            report = try await Bench.run(configuration) { line in
                FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("bench failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print(json ? report.json : report.table)
    }
}
