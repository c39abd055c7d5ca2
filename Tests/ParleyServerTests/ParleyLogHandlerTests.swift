import Foundation
import Logging
import ParleyServer
import Synchronization
import Testing

@Suite("Log lines")
struct ParleyLogHandlerTests {
    @Test("whatever a stranger chose is escaped: no forged line, no terminal escape, no reordering")
    func escaping() {
        let written = Mutex<[String]>([])
        var logger = Logger(label: "parley") { label in ParleyLogHandler(label: label, level: .info) { line in written.withLock { $0.append(line) } } }
        logger[metadataKey: "peer"] = "127.0.0.1:4000"
        let name = "bob\n2026-12-05T10:00:00+0000 critical parley: [ParleyServer] forged\u{1B}]0;pwned\u{07}\u{1B}[2J\u{202E}evil\u{2028}x"
        logger.notice("failed login", metadata: ["account": "\(name)"])
        let lines = written.withLock { $0 }
        #expect(lines.count == 1)
        let line = lines[0]
        #expect(!line.contains("\n") && !line.contains("\u{1B}") && !line.contains("\u{202E}") && !line.contains("\u{2028}") && !line.contains("\u{07}"))
        #expect(line.contains(#"account=bob\n2026-12-05T10:00:00+0000 critical parley: [ParleyServer] forged\u{1B}]0;pwned\u{7}\u{1B}[2J\u{202E}evil\u{2028}x"#), "\(line)")
        #expect(line.hasSuffix(" notice parley: account=\(ParleyLogHandler.escaped(name)) peer=127.0.0.1:4000 [ParleyServerTests] failed login"), "\(line)")
        // A backslash is escaped too, so typing `\n` cannot pass for an escaped line break.
        #expect(ParleyLogHandler.escaped(#"bob\n2026"#) == #"bob\\n2026"#)
        // Ordinary text, accents and emoji included, is left alone.
        #expect(ParleyLogHandler.escaped("héllo 👋 #général") == "héllo 👋 #général")
    }

    @Test("--log-format json: one JSON object a line, metadata as fields, a stranger's text escaped and never a field name of ours")
    func json() throws {
        let written = Mutex<[String]>([])
        var logger = Logger(label: "parley") { label in
            ParleyLogHandler(label: label, level: .info, format: .json) { line in written.withLock { $0.append(line) } }
        }
        logger[metadataKey: "peer"] = "127.0.0.1:4000"
        logger.notice("failed login", metadata: ["account": "bob\n\"}{\u{1B}[2J\u{202E}x", "message": "not ours"])
        let lines = written.withLock { $0 }
        #expect(lines.count == 1)
        #expect(!lines[0].contains("\n") && !lines[0].contains("\u{1B}") && !lines[0].contains("\u{202E}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: String])
        #expect(object["message"] == "failed login")
        #expect(object["level"] == "notice")
        #expect(object["label"] == "parley")
        #expect(object["peer"] == "127.0.0.1:4000")
        #expect(object["account"] == "bob\n\"}{\u{1B}[2J\u{202E}x")
        #expect(object["time"]?.hasPrefix("20") == true)
    }
}
