import Foundation
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
        let checked = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString).service")
        try unit.replacingOccurrences(of: "/usr/local/bin/parley", with: ParleyProcess.executable.path).write(to: checked, atomically: true, encoding: .utf8)
        let verify = try ParleyProcess(["verify", checked.path], input: .nullDevice, executable: URL(fileURLWithPath: "/usr/bin/systemd-analyze"))
        #expect(try await verify.waitForExit() == 0, "\(verify.log.text)")
        #expect(verify.log.text.isEmpty && verify.output.text.isEmpty, "systemd-analyze: \(verify.log.text)\(verify.output.text)")
    }
}
