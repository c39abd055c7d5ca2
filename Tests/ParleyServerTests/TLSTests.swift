import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOEmbedded
import NIOSSL
import ParleyCore
import ParleyProtocols
import ParleyTLS
@testable import ParleyServer
import Testing

/// TLS on every door, over real handshakes: openssl's own client, `parley connect --tls`, certificates made by
/// openssl as an operator would, and the server's generated one.
@Suite("TLS on every door")
struct TLSTests {
    /// A certificate and key made with openssl (as an operator's would be), and its SHA-256 fingerprint.
    struct MadeCertificate {
        let certificate: String
        let key: String
        let fingerprint: String
    }

    /// Self-signed, or (`byAuthority`) signed by a throwaway certificate authority, as a real one would be.
    static func makeCertificate(name: String = "test.parley", byAuthority: Bool = false) async throws -> MadeCertificate {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-cert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let (certificate, key) = (directory.appendingPathComponent("cert.pem").path, directory.appendingPathComponent("key.pem").path)
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        let dir = directory.path
        let make =
            byAuthority
            ? "openssl req -x509 \(ec) -days 2 -subj /CN=Test-CA -keyout \(dir)/ca.key -out \(dir)/ca.pem 2>/dev/null && "
                + "openssl req -new \(ec) -subj /CN=\(name) -keyout \(key) -out \(dir)/req.csr 2>/dev/null && "
                + "openssl x509 -req -in \(dir)/req.csr -CA \(dir)/ca.pem -CAkey \(dir)/ca.key -CAcreateserial -days 2 -out \(certificate) 2>/dev/null"
            : "openssl req -x509 \(ec) -days 2 -subj /CN=\(name) -keyout \(key) -out \(certificate) 2>/dev/null"
        let made = try ParleyProcess.shell(make + " && openssl x509 -noout -fingerprint -sha256 -in \(certificate)")
        #expect(try await made.waitForExit() == 0)
        try await made.output.waitForEndOfFile()
        let fingerprint = try #require(made.output.text.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
        return MadeCertificate(certificate: certificate, key: key, fingerprint: fingerprint)
    }

    /// The fingerprint of the certificate a port presents, as openssl sees it.
    static func presentedFingerprint(port: Int) async throws -> String {
        let probe = try ParleyProcess.shell(
            "openssl s_client -connect 127.0.0.1:\(port) </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        )
        _ = try await probe.waitForExit()
        try await probe.output.waitForEndOfFile()
        return try #require(probe.output.text.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `openssl s_client -quiet`: the nc of TLS.
    static func tlsClient(port: Int) throws -> ParleyProcess {
        try ParleyProcess(
            ["s_client", "-quiet", "-connect", "127.0.0.1:\(port)"], input: .pipe, executable: URL(fileURLWithPath: "/usr/bin/openssl")
        )
    }

    /// A person on the text port over TLS: connected with `openssl s_client`, nick chosen, in #general.
    static func tlsTextUser(_ nick: String, port: Int) async throws -> ParleyProcess {
        let user = try tlsClient(port: port)
        try await user.output.waitFor { $0.contains("Choose a nickname") }
        try user.type(nick)
        try await user.output.waitFor { $0.hasPrefix("*** In #general") }
        return user
    }

    @Test("a TLS user (openssl s_client) and a plaintext user chat in one room; IRC over TLS registers")
    func sharedRoom() async throws {
        try await TestServer.run(configure: {
            $0.tlsPort = 0
            $0.ircTLSPort = 0
        }) { server in
            let plain = try await server.textUser("plain")
            let secure = try await TLSTests.tlsTextUser("secure", port: server.tlsPort)
            try secure.type("hello in the clear? no")
            try await plain.waitFor { $0.hasSuffix("<secure> hello in the clear? no") }
            try await plain.send("hello back")
            try await secure.output.waitFor { $0.hasSuffix("<plain> hello back") }

            let irc = try Self.tlsClient(port: server.ircTLSPort)
            try irc.type("NICK ircs\r\nUSER ircs 0 * :IRC over TLS\r")
            try await irc.output.waitFor { $0.contains(" 001 ircs ") }
            try irc.type("JOIN #general\r")
            try await plain.waitFor { $0.contains("ircs joined #general") }
            try irc.type("PRIVMSG #general :over six-six-nine-seven\r")
            try await plain.waitFor { $0.hasSuffix("<ircs> over six-six-nine-seven") }
            secure.signal(SIGTERM)
            irc.signal(SIGTERM)
        }
    }

    @Test("--no-plaintext: only the TLS ports are open, and passwords are welcome on them")
    func tlsOnly() async throws {
        try await TestServer.run(configure: {
            $0.plaintext = false
            $0.tlsPort = 0
            $0.ircTLSPort = 0
        }) { server in
            #expect(Set(server.ports.keys) == [.linesTLS, .ircTLS])
            let secure = try await TLSTests.tlsTextUser("only", port: server.tlsPort)
            try secure.type("/register sekrit-password")
            try await secure.output.waitFor { $0.contains("registered") && $0.contains("only") }
            secure.signal(SIGTERM)
        }
    }

    @Test("with TLS on, a password on a plaintext port is refused before it is checked, and the TLS port is named")
    func plaintextPasswordsRefused() async throws {
        try await TestServer.run(configure: {
            $0.tlsPort = 0
            $0.ircTLSPort = 0
        }) { server in
            let text = try await server.textUser("alice")
            try await text.send("/register sekrit-password")
            try await text.waitFor { $0.contains("not encrypted, so it takes no passwords: connect with TLS to port \(server.tlsPort)") }
            let atPrompt = try await TestClient.connect(port: server.port)
            try await atPrompt.send("/login alice sekrit-password")
            try await atPrompt.waitFor { $0.contains("connect with TLS to port \(server.tlsPort)") }

            let json = try await TestClient.connect(port: server.port)
            try await json.send(#"{"type":"hello","version":1,"nick":"bob","password":"sekrit","ref":"h"}"#)
            try await json.waitFor(isEvent("error", ["code": "insecure_connection", "ref": "h"]))

            let irc = try await TestClient.connect(port: server.ircPort)
            try await irc.send("CAP REQ :sasl")
            try await irc.send("NICK carol")
            try await irc.send("USER carol 0 * :Carol")
            try await irc.send("AUTHENTICATE PLAIN")
            try await irc.waitFor { $0.contains(" 904 ") && $0.contains("takes no passwords: connect with TLS to port \(server.ircTLSPort)") }
            // Over TLS the same registration works.
            let secure = try await TLSTests.tlsTextUser("dave", port: server.tlsPort)
            try secure.type("/register sekrit-password")
            try await secure.output.waitFor { $0.contains("registered") && $0.contains("dave") }
            secure.signal(SIGTERM)
        }
        // --allow-plaintext-passwords keeps the old behaviour.
        try await TestServer.run(configure: {
            $0.tlsPort = 0
            $0.allowPlaintextPasswords = true
        }) { server in
            let text = try await server.textUser("erin")
            try await text.send("/register sekrit-password")
            try await text.waitFor { $0.contains("registered") && $0.contains("erin") }
        }
    }

    @Test("IRC advertises strict transport security: the TLS port on the plaintext one, the duration on TLS")
    func strictTransportSecurity() async throws {
        let made = try await Self.makeCertificate(byAuthority: true)
        try await TestServer.run(configure: {
            $0.ircTLSPort = 0
            $0.certificate = .files(certificate: made.certificate, key: made.key)
        }) { server in
            let plain = try await TestClient.connect(port: server.ircPort)
            try await plain.send("CAP LS 302")
            try await plain.waitFor { $0.contains(" LS ") && $0.contains("sts=port=\(server.ircTLSPort)") }
            let secure = try Self.tlsClient(port: server.ircTLSPort)
            try secure.type("CAP LS 302\r")
            try await secure.output.waitFor { $0.contains(" LS ") && $0.contains("sts=duration=2592000") }
            secure.signal(SIGTERM)
            #expect(try await Self.presentedFingerprint(port: server.ircTLSPort) == made.fingerprint)
        }
        // A self-signed certificate would lock clients out: no STS with the generated one, nor an operator's.
        let selfSigned = try await Self.makeCertificate()
        for source in [CertificateSource.generated, .files(certificate: selfSigned.certificate, key: selfSigned.key)] {
            try await TestServer.run(configure: {
                $0.ircTLSPort = 0
                $0.certificate = source
            }) { server in
                let plain = try await TestClient.connect(port: server.ircPort)
                try await plain.send("CAP LS 302")
                let line = try await plain.waitFor { $0.contains(" LS ") }
                #expect(!line.contains("sts"))
            }
        }
    }

    @Test("the generated certificate: ECDSA P-256 for the server name, key 0600, kept across restarts")
    func generatedCertificate() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-tls-\(UUID().uuidString)").path
        let first = try TLSProvider(source: .generated, dataDirectory: data, serverName: "chat.example")
        let key = try FileManager.default.attributesOfItem(atPath: data + "/tls/key.pem")
        #expect((key[.posixPermissions] as? Int) == 0o600)
        let text = try ParleyProcess.shell("openssl x509 -noout -text -in \(data)/tls/certificate.pem")
        #expect(try await text.waitForExit() == 0)
        try await text.output.waitForEndOfFile()
        #expect(text.output.text.contains("CN=chat.example") || text.output.text.contains("CN = chat.example"))
        #expect(text.output.text.contains("prime256v1"))
        #expect(text.output.text.contains("DNS:chat.example"))
        let again = try TLSProvider(source: .generated, dataDirectory: data, serverName: "chat.example")
        #expect(again.fingerprint == first.fingerprint)
        #expect(Fingerprint.normalized("sha256:" + first.fingerprint.replacingOccurrences(of: ":", with: "").lowercased()) == first.fingerprint)
    }

    @Test("each door's writer sits behind TLS: what it writes leaves encrypted, and the peer reads it", arguments: [Endpoint.Door.lines, .irc])
    func writerBehindTLS(_ door: Endpoint.Door) throws {
        let made = try TLSProvider(
            source: .generated,
            dataDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("parley-tls-\(UUID().uuidString)").path,
            serverName: "embedded.parley"
        )
        let server = EmbeddedChannel()
        let client = EmbeddedChannel()
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.certificateVerification = .none
        try client.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: NIOSSLContext(configuration: clientConfiguration), serverHostname: nil))
        // As the listener builds a TLS port: TLS first, then whatever the door builds.
        try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: made.context))
        var limits = ServerConfiguration.Limits()
        limits.greetingWindow = .seconds(3600)
        let opened = NIOLockedValueBox<Outbox?>(nil)
        let frontDoor: any FrontDoor = door == .lines ? LinesDoor() : IRCDoor()
        try frontDoor.setUp(server, limits: limits, opener: ConnectionOpener(open: { _, outbox, _ in opened.withLockedValue { $0 = outbox } }, track: { _ in }))
        let outbox = try #require(opened.withLockedValue { $0 })
        server.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        server.embeddedEventLoop.run()
        client.embeddedEventLoop.run()
        /// Moves bytes both ways until neither side has anything to say; returns what the server sent.
        func shuttle() throws -> [UInt8] {
            var fromServer: [UInt8] = []
            for _ in 0..<100 {
                var moved = false
                while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                    try server.writeInbound(bytes)
                    moved = true
                }
                while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                    fromServer += bytes.readableBytesView
                    try client.writeInbound(bytes)
                    moved = true
                }
                server.embeddedEventLoop.run()
                client.embeddedEventLoop.run()
                if !moved { return fromServer }
            }
            throw TestFailure("the two sides never stopped talking")
        }
        _ = try shuttle()
        outbox.send(ByteBuffer(string: "a secret line\r\n"))
        server.embeddedEventLoop.run()
        let wire = try shuttle()
        #expect(!wire.isEmpty)
        #expect(String(decoding: wire, as: UTF8.self).contains("a secret line") == false)
        var received = ByteBuffer()
        while var bytes = try client.readInbound(as: ByteBuffer.self) { received.writeBuffer(&bytes) }
        #expect(String(buffer: received) == "a secret line\r\n")
        // Not `finish()`: closing a TLS channel waits for the peer's close_notify, which an embedded loop
        // whose clock never moves would wait for forever.
    }
}

/// The real executable: SIGHUP picks up a renewed certificate, and `parley connect --tls` pins like ssh.
@Suite("TLS, the executable")
struct TLSExecutableTests {
    @Test("SIGHUP reloads the certificate: new connections get the new one, an open TLS connection keeps chatting; connect --tls pins and refuses a change")
    func reloadAndPinning() async throws {
        let first = try await TLSTests.makeCertificate()
        let second = try await TLSTests.makeCertificate()
        // The server reads the files at these paths: they are replaced as a renewal would.
        let live = FileManager.default.temporaryDirectory.appendingPathComponent("parley-live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: live, withIntermediateDirectories: true)
        let (certificate, key) = (live.appendingPathComponent("cert.pem").path, live.appendingPathComponent("key.pem").path)
        try FileManager.default.copyItem(atPath: first.certificate, toPath: certificate)
        try FileManager.default.copyItem(atPath: first.key, toPath: key)

        let (server, port) = try await ParleyProcess.serve(
            ["--tls-port", "0", "--tls-cert", certificate, "--tls-key", key, "--console", "off", "--log-level", "debug"]
        )
        let line = try await server.log.waitFor { $0.contains("listening") && $0.contains("door=lines-tls") }
        let tlsPort = try #require(line.split(separator: ":").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        #expect(server.log.text.contains("sha256=\(first.fingerprint)"))

        // First use: line mode cannot ask, so it shows the fingerprint and stops.
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("parley-xdg-\(UUID().uuidString)").path
        let environment = ["XDG_CONFIG_HOME": config]
        let unknown = try ParleyProcess(["connect", "--tls", "127.0.0.1:\(tlsPort)", "--nick", "pinner"], input: .pipe, environment: environment)
        try unknown.closeInput()
        #expect(try await unknown.waitForExit() == 1)
        #expect(unknown.log.text.contains("cannot be verified"))
        #expect(unknown.log.text.contains(first.fingerprint))
        // Accepted by fingerprint (as a script would): pinned.
        let pinning = try ParleyProcess(
            ["connect", "--tls", "127.0.0.1:\(tlsPort)", "--nick", "pinner", "--accept-fingerprint", first.fingerprint], input: .pipe,
            environment: environment
        )
        try await pinning.output.waitFor { $0.hasPrefix("*** In #general") }
        try pinning.closeInput()
        #expect(try await pinning.waitForExit() == 0)
        let known = try String(contentsOfFile: config + "/parley/known_servers", encoding: .utf8)
        #expect(known == "127.0.0.1:\(tlsPort) \(first.fingerprint)\n")

        // An open TLS connection, and a plaintext witness.
        let open = try await TLSTests.tlsTextUser("stayer", port: tlsPort)
        let witness = try await TestServer.textUser("witness", port: port)

        // Renewed on disk, then SIGHUP.
        try FileManager.default.removeItem(atPath: certificate)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: second.certificate, toPath: certificate)
        try FileManager.default.copyItem(atPath: second.key, toPath: key)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("TLS certificate reloaded") && $0.contains(second.fingerprint) }
        #expect(try await TLSTests.presentedFingerprint(port: tlsPort) == second.fingerprint)
        try open.type("still here after the reload")
        try await witness.waitFor { $0.hasSuffix("<stayer> still here after the reload") }

        // The pinned client now meets another certificate: refused, with the warning.
        let refused = try ParleyProcess(["connect", "--tls", "127.0.0.1:\(tlsPort)", "--nick", "pinner"], input: .pipe, environment: environment)
        try refused.closeInput()
        #expect(try await refused.waitForExit() == 1)
        #expect(refused.log.text.contains("WARNING: the server's certificate has changed"))
        #expect(refused.log.text.contains(second.fingerprint))

        // A reload that fails keeps the certificate being served.
        try "not a certificate".write(toFile: certificate, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("TLS certificate reload failed") }
        #expect(try await TLSTests.presentedFingerprint(port: tlsPort) == second.fingerprint)

        // A password over plaintext is refused, and never logged (even at debug).
        try await witness.send("/register sekrit-pass")
        try await witness.waitFor { $0.contains("takes no passwords") }

        // Shutdown reaches every port at once: each of these hears the goodbye.
        let ircLine = try await server.log.waitFor { $0.contains("listening") && $0.contains("door=irc ") }
        let ircPort = try #require(ircLine.split(separator: ":").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        let irc = try await TestClient.connect(port: ircPort)
        try await irc.send("NICK ircer")
        try await irc.send("USER ircer 0 * :IRC")
        try await irc.waitFor { $0.contains(" 001 ircer ") }
        server.signal(SIGTERM)
        try await open.output.waitFor { $0.hasPrefix("*** The server is shutting down") }
        try await witness.waitFor { $0.hasPrefix("*** The server is shutting down") }
        try await irc.waitFor { $0.hasPrefix("ERROR") }
        #expect(try await server.waitForExit() == 0)
        #expect(!server.log.text.contains("sekrit"))
    }

    @Test("a certificate that cannot be read stops the start with the file named (exit 3)")
    func unreadableCertificate() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-tls-\(UUID().uuidString)").path
        let server = try ParleyProcess(
            [
                "serve", "--host", "127.0.0.1", "--port", "0", "--no-irc", "--no-http", "--tls-port", "0", "--tls-cert", "/nonexistent/cert.pem",
                "--tls-key", "/nonexistent/key.pem", "--data-dir", data, "--console", "off",
            ],
            input: .nullDevice
        )
        #expect(try await server.waitForExit() == 3)
        #expect(server.log.text.contains("cannot read the certificate /nonexistent/cert.pem"))
    }
}
