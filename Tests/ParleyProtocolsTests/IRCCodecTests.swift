import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Testing

@Suite("IRCCodec")
struct IRCCodecTests {
    static let codec = IRCCodec(serverName: "test.parley")
    static let time = Date(timeIntervalSince1970: 1_700_000_000)

    static func lines(_ event: ChatEvent, capabilities: IRCCapabilities = []) -> [String] {
        guard let buffer = codec.encode(event, for: "me", capabilities: capabilities) else { return [] }
        // Split on the bytes CR LF: a line may start with a combining mark, which String would join to the LF.
        var lines: [String] = []
        var line: [UInt8] = []
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n"), line.last == UInt8(ascii: "\r") {
                lines.append(String(decoding: line.dropLast(), as: UTF8.self))
                line = []
            } else {
                line.append(byte)
            }
        }
        return lines
    }

    @Test("every line fits 512 bytes, even a message that is one character of 1,500 combining marks")
    func hugeGrapheme() {
        let grapheme = "a" + String(repeating: "\u{0301}", count: 1500)  // one Character, 3,001 bytes
        #expect(grapheme.count == 1)
        let message = ChatMessage(id: 1, time: Self.time, from: "bob", target: .room("#r"), kind: .normal, text: grapheme)
        for event in [ChatEvent.message(message), .history(room: "#r", messages: [message], ref: "#r")] {
            let lines = Self.lines(event)
            #expect(lines.count > 5)
            #expect(lines.allSatisfy { $0.utf8.count + 2 <= 512 }, "\(lines.map(\.utf8.count))")
            // Nothing is lost: the pieces add up to the text.
            let prefix = event == .message(message) ? ":bob!bob@parley PRIVMSG #r :" : ":test.parley NOTICE #r :"
            let text = lines.map { String(decoding: Array($0.utf8.dropFirst(prefix.utf8.count)), as: UTF8.self) }.joined()
            #expect(text.unicodeScalars.count(where: { $0 == "\u{0301}" }) == 1500)
        }
    }

    @Test("whatever the parameters hold, a serialized line is one valid line of at most 512 bytes")
    func serializationGuards() {
        let echoed = IRCMessage(source: "s", command: "476", params: ["me", "#a b", "Invalid channel name"]).serialized()
        #expect(echoed == ":s 476 me * :Invalid channel name\r\n")
        let smuggled = IRCMessage(source: "s", command: "NOTICE", params: ["me\r\nQUIT", "hi\u{0}\r\nPRIVMSG #x :owned"]).serialized()
        #expect(smuggled == ":s NOTICE meQUIT :hiPRIVMSG #x :owned\r\n")
        let long = IRCMessage(tags: ["time": "2026-01-01T00:00:00.000Z"], source: "s", command: "NOTICE", params: ["me", String(repeating: "é", count: 2000)]).serialized()
        let body = long.split(separator: " ", maxSplits: 1)[1]
        #expect(body.utf8.count <= 512)
        #expect(body.hasSuffix("é\r\n"))
        #expect(long.hasPrefix("@time="))
    }

    @Test("parsing and writing go by bytes: a combining mark after a space or a colon hides neither (found by fuzzing)")
    func combiningMarks() throws {
        let parsed = try #require(IRCMessage(parsing: "PRIVMSG #a :\u{301}hi there"))
        #expect(parsed.params == ["#a", "\u{301}hi there"])
        let spaced = try #require(IRCMessage(parsing: "@+typing=active \u{354}CMD x"))
        #expect(spaced.command == "\u{354}CMD" && spaced.params == ["x"])
        // A parameter with a space followed by a mark must be written as trailing, or the line would split it.
        #expect(IRCMessage(source: "s", command: "NOTICE", params: ["me", "a \u{301}b"], ).serialized(trailing: false) == ":s NOTICE me :a \u{301}b\r\n")
        // A command that could not be one is written *, and a long source cannot push the command out of the line.
        let long = IRCMessage(source: String(repeating: "s", count: 900), command: "\0", params: []).serialized()
        #expect(long.utf8.count <= 512 && long.hasSuffix(" *\r\n"))
        // Tag values are escaped by scalar too: a space or semicolon with a mark after it is still escaped.
        let tagged = IRCMessage(tags: ["+draft/reply": "a \u{301}b;\u{301}c"], source: "s", command: "TAGMSG", params: ["#a"]).serialized()
        #expect(tagged == "@+draft/reply=a\\s\u{301}b\\:\u{301}c :s TAGMSG #a\r\n")
        let back = try #require(IRCMessage(parsing: Substring(tagged.dropLast(2))))
        #expect(back.tags["+draft/reply"] == "a \u{301}b;\u{301}c")
        // U+037E is canonically ";" to Swift's String, but not to IRC: it does not end a tag (found by fuzzing).
        let greek = try #require(IRCMessage(parsing: "@+a=x\u{37E}y;+b=z TAGMSG #a"))
        #expect(greek.tags.count == 2 && greek.tags["+a"]?.unicodeScalars.elementsEqual("x\u{37E}y".unicodeScalars) == true)
    }
}
