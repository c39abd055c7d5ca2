import Foundation
import Glibc
import Testing

/// What deploy/ ships, checked as an operator's machine would check it.
@Suite("Deployment files")
struct DeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("deploy/parley.service passes systemd-analyze verify, reloads with SIGHUP, and is hardened")
    func systemdUnit() async throws {
        let unit = try String(contentsOf: Self.repository.appendingPathComponent("deploy/parley.service"), encoding: .utf8)
        for line in [
            "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "StateDirectory=parley", "ProtectSystem=strict",
            "NoNewPrivileges=yes", "CapabilityBoundingSet=", "User=parley",
        ] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "the unit lacks \(line)")
        }
        // verify checks that ExecStart's program exists: the one just built stands in for /usr/local/bin/parley.
        let checked = URL(fileURLWithPath: try temporaryFile(unit.replacingOccurrences(of: "/usr/local/bin/parley", with: ParleyProcess.executable.path), suffix: ".service"))
        let verify = try ParleyProcess(["verify", checked.path], input: .nullDevice, executable: URL(fileURLWithPath: "/usr/bin/systemd-analyze"))
        #expect(try await verify.waitForExit() == 0, "\(verify.log.text)")
        #expect(verify.log.text.isEmpty && verify.output.text.isEmpty, "systemd-analyze: \(verify.log.text)\(verify.output.text)")
    }

    @Test("deploy/parley.toml, the unit's settings, is read as it ships and with every commented example turned on")
    func sampleSettings() async throws {
        let sample = Self.repository.appendingPathComponent("deploy/parley.toml").path
        let shipped = try ParleyProcess(["serve", "--config", sample, "--print-config"], input: .nullDevice)
        #expect(try await shipped.waitForExit() == 0, "\(shipped.log.text)")
        try await shipped.output.waitForEndOfFile()
        #expect(shipped.output.lines.contains { $0.hasPrefix(#"data-dir = "/var/lib/parley""#) && $0.contains("# file \(sample), line") })
        #expect(shipped.output.lines.contains { $0.hasPrefix(#"log-format = "json""#) })
        // Each `# key = value` example, uncommented: every one is a key, with a value it takes.
        let text = try String(contentsOfFile: sample, encoding: .utf8)
        let examples = text.split(separator: "\n").filter { $0.range(of: #"^# [a-z-]+ = "#, options: .regularExpression) != nil }.map { $0.dropFirst(2) }
        #expect(examples.count >= 10)
        let everything = try temporaryFile(text + "\n" + examples.joined(separator: "\n") + "\n", suffix: ".toml")
        let all = try ParleyProcess(["serve", "--config", everything, "--print-config"], input: .nullDevice)
        #expect(try await all.waitForExit() == 0, "\(all.log.text)")
        try await all.output.waitForEndOfFile()
        #expect(all.output.lines.contains { $0.hasPrefix("tls = true") })
        #expect(all.output.lines.contains { $0.hasPrefix(#"server-password = "********""#) })
        #expect(all.output.lines.contains { $0.hasPrefix(#"database-url = "********""#) })
        #expect(!all.output.text.contains("SECRET"))
    }

    @Test("under systemd (NOTIFY_SOCKET) the server says READY=1 once every port listens")
    func readiness() async throws {
        // systemd's end: a datagram socket the service writes to.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parley-notify-\(UUID().uuidString.prefix(8))").path
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer {
            close(descriptor)
            unlink(path)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (index, byte) in path.utf8.enumerated() { raw[index] = byte } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-notified-\(UUID().uuidString)").path
        let server = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--irc-port", "0", "--http-port", "0", "--data-dir", data, "--console", "off"],
            input: .nullDevice, environment: ["NOTIFY_SOCKET": path]
        )
        // poll(2) with a deadline: the datagram, or nothing within 20 s (then the test ends here, never in recv).
        var wanted = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&wanted, 1, 20_000)
        if ready != 1 { server.signal(SIGKILL) }
        try #require(ready == 1, "no notification: \(server.log.text)")
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        let message = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        #expect(message.hasPrefix("READY=1\n"), "\(message)")
        #expect(message.contains("MAINPID=\(server.pid)"))
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        // Every port was listening by then: each logs it before it counts towards READY.
        try await server.log.waitForEndOfFile()
        #expect(server.log.text.components(separatedBy: "listening").count - 1 == 3, "\(server.log.text)")
    }
}
