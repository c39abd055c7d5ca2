import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Testing

/// A parsed JSON value, comparable in tests.
enum JSON: Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    case string(String)
    case number(Double)
    case null
    case array([JSON])
    case object([String: JSON])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(Double(value)) }
    init(arrayLiteral elements: JSON...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSON)...) { self = .object(Dictionary(uniqueKeysWithValues: elements)) }

    init?(_ any: Any) {
        switch any {
        case let string as String: self = .string(string)
        case let array as [Any]:
            let elements = array.compactMap(JSON.init)
            guard elements.count == array.count else { return nil }
            self = .array(elements)
        case let dictionary as [String: Any]:
            let values = dictionary.compactMapValues(JSON.init)
            guard values.count == dictionary.count else { return nil }
            self = .object(values)
        case is NSNull: self = .null
        case let number as NSNumber: self = .number(number.doubleValue)
        default: return nil
        }
    }

    subscript(key: String) -> JSON? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }
}

@Suite("JSONCodec")
struct JSONCodecTests {
    let codec = JSONCodec()
    static let time = Date(timeIntervalSince1970: 1_700_000_000.5)
    static let timestamp = "2023-11-14T22:13:20.500Z"

    // MARK: Decoding

    private func decode(_ json: String) -> (message: Result<ClientMessage, ChatError>, ref: String?) {
        codec.decode(ByteBuffer(string: json))
    }

    @Test(
        "every request type decodes",
        arguments: [
            (##"{"type":"hello","version":1,"nick":"alice"}"##, ClientMessage.hello(version: 1, nick: "alice", password: nil, resume: [:])),
            (##"{"type":"hello","version":2,"nick":"bob","extra":true}"##, .hello(version: 2, nick: "bob", password: nil, resume: [:])),
            (##"{"type":"hello","version":1,"nick":"carol","join_general":false}"##, .hello(version: 1, nick: "carol", password: nil, resume: [:], joinGeneral: false)),
            (##"{"type":"send","room":"#general","text":"hi"}"##, .request(.say(room: "#general", text: "hi", kind: .normal))),
            (##"{"type":"send","to":"bob","text":"psst"}"##, .request(.whisper(to: "bob", text: "psst", kind: .normal))),
            (##"{"type":"send","room":"#a","text":"waves","kind":"action"}"##, .request(.say(room: "#a", text: "waves", kind: .action))),
            (##"{"type":"send","to":"bob","text":"winks","kind":"action"}"##, .request(.whisper(to: "bob", text: "winks", kind: .action))),
            (##"{"type":"send","room":"#a","text":"x","kind":"normal"}"##, .request(.say(room: "#a", text: "x", kind: .normal))),
            (##"{"type":"join","room":"#rust"}"##, .request(.join("#rust"))),
            (##"{"type":"part","room":"#rust"}"##, .request(.part(room: "#rust", reason: nil))),
            (##"{"type":"part","room":"#rust","reason":"lunch"}"##, .request(.part(room: "#rust", reason: "lunch"))),
            (##"{"type":"nick","nick":"alicia"}"##, .request(.nick("alicia"))),
            (##"{"type":"who"}"##, .request(.who(room: nil))),
            (##"{"type":"who","room":"#rust"}"##, .request(.who(room: "#rust"))),
            (##"{"type":"rooms"}"##, .request(.rooms(matching: []))),
            (##"{"type":"topic","room":"#rust"}"##, .request(.topic(room: "#rust", text: nil))),
            (##"{"type":"topic","room":"#rust","text":"Rust talk"}"##, .request(.topic(room: "#rust", text: "Rust talk"))),
            (##"{"type":"ping"}"##, .request(.ping)),
            (##"{"type":"quit"}"##, .request(.quit(reason: nil))),
            (##"{"type":"quit","reason":"bye"}"##, .request(.quit(reason: "bye"))),
            (##"{"type":"kick","room":"#a","nick":"bob","reason":"rude"}"##, .request(.moderate(room: "#a", .kick(nick: "bob", reason: "rude")))),
            (##"{"type":"ban","room":"#a","mask":"guest*","duration":600}"##, .request(.moderate(room: "#a", .ban(mask: "guest*", seconds: 600, reason: nil)))),
            (##"{"type":"ban","room":"#a","nick":"bob"}"##, .request(.moderate(room: "#a", .ban(mask: "bob", seconds: nil, reason: nil)))),
            (##"{"type":"unban","room":"#a","mask":"bob"}"##, .request(.moderate(room: "#a", .unban(mask: "bob")))),
            (##"{"type":"bans","room":"#a"}"##, .request(.moderate(room: "#a", .restrictions))),
            (##"{"type":"mute","room":"#a","mask":"bob","reason":"x"}"##, .request(.moderate(room: "#a", .mute(mask: "bob", seconds: nil, reason: "x")))),
            (##"{"type":"unmute","room":"#a","nick":"bob"}"##, .request(.moderate(room: "#a", .unmute(mask: "bob")))),
            (##"{"type":"op","room":"#a","nick":"bob"}"##, .request(.moderate(room: "#a", .op(nick: "bob")))),
            (##"{"type":"deop","room":"#a","nick":"bob"}"##, .request(.moderate(room: "#a", .deop(nick: "bob")))),
            (##"{"type":"topic_lock","room":"#a","locked":true}"##, .request(.moderate(room: "#a", .topicLock(true)))),
            (##"  {"text":"order\nof \"keys\" \u00e9","room":"#a","type":"send"}  "##, .request(.say(room: "#a", text: "order\nof \"keys\" é", kind: .normal))),
        ]
    )
    func requests(_ json: String, _ expected: ClientMessage) throws {
        let (message, ref) = decode(json)
        #expect(try message.get() == expected)
        #expect(ref == nil)
    }

    @Test("the ref comes back with the request, and with a refusal")
    func ref() throws {
        let ok = decode(##"{"type":"ping","ref":"p-1"}"##)
        #expect(try ok.message.get() == .request(.ping))
        #expect(ok.ref == "p-1")
        let refused = decode(##"{"type":"join","ref":"j-2"}"##)
        #expect(refused.ref == "j-2")
        #expect(throws: ChatError.self) { try refused.message.get() }
        let unknown = decode(##"{"type":"dance","ref":"d-3"}"##)
        #expect(unknown.ref == "d-3")
    }

    private func refusal(_ json: String) -> ChatError? {
        guard case .failure(let error) = decode(json).message else { return nil }
        return error
    }

    @Test("a key given twice in one object is refused, whichever the object and however the key is written", arguments: [
        ##"{"type":"send","room":"#a","text":"x","text":"y"}"##,
        ##"{"type":"send","room":"#a","text":"x","\u0074ext":"y"}"##,
        ##"{"type":"hello","version":1,"nick":"a","resume":{"#r":1,"#r":2}}"##,
        ##"{"type":"ping","ref":"1","ref":"2"}"##,
    ])
    func duplicateKeys(_ json: String) {
        let (message, ref) = decode(json)
        guard case .failure(let error) = message else {
            Issue.record("accepted \(json)")
            return
        }
        #expect(error.code == .badRequest)
        #expect(error.message.contains("appears twice"))
        #expect(ref == nil || ref == "1")
    }

    @Test("a duplicate hidden deeper than the scanner goes is still refused: too deep is refused")
    func tooDeep() {
        let deep = String(repeating: "[", count: 70) + "1" + String(repeating: "]", count: 70)
        let (message, _) = decode(##"{"type":"ping","x":"## + deep + ##","ref":"a","ref":"b"}"##)
        guard case .failure(let error) = message else {
            Issue.record("accepted")
            return
        }
        #expect(error.code == .badRequest)
    }

    @Test("the same key in different objects, escapes and surrogate pairs are not duplicates")
    func notDuplicates() {
        for json in [
            ##"{"type":"hello","version":1,"nick":"a","resume":{"type":1,"nick":2}}"##,
            ##"{"type":"send","room":"#a","text":"\ud83d\ude00 \"text\": twice"}"##,
            ##"{"type":"hello","version":1,"nick":"a","resume":{"\ud83d\ude00":1,"\ud83d\ude01":2}}"##,
        ] {
            if case .failure(let error) = decode(json).message { #expect(!error.message.contains("appears twice"), "\(json)") }
        }
    }

    @Test("a line that is not JSON is a bad request", arguments: ["hello", "{", "{\"type\":\"ping\"", "", "{'type':'ping'}"])
    func notJSON(_ line: String) {
        let error = refusal(line)
        #expect(error == ChatError(.badRequest, "The line is not a JSON object."))
        #expect(decode(line).ref == nil)
    }

    @Test("JSON that is not an object is a bad request", arguments: ["[1,2]", "42", "\"ping\"", "null"])
    func notAnObject(_ line: String) {
        let error = refusal(line)
        #expect(error?.code == .badRequest)
        #expect(error?.message == "The line is not a JSON object.")
    }

    @Test(
        "a missing field is a bad request naming the field",
        arguments: [
            (##"{"ref":"x"}"##, "type"),
            (##"{"type":"hello","nick":"alice"}"##, "version"),
            (##"{"type":"hello","version":1}"##, "nick"),
            (##"{"type":"send","room":"#a"}"##, "text"),
            (##"{"type":"join"}"##, "room"),
            (##"{"type":"part"}"##, "room"),
            (##"{"type":"nick"}"##, "nick"),
            (##"{"type":"topic","text":"x"}"##, "room"),
        ]
    )
    func missingField(_ json: String, _ field: String) {
        let error = refusal(json)
        #expect(error?.code == .badRequest)
        #expect(error?.message.contains("\"\(field)\"") == true)
    }

    @Test("a field of the wrong type is a bad request naming the field")
    func wrongType() {
        let error = refusal(##"{"type":"hello","version":"1","nick":"alice"}"##)
        #expect(error == ChatError(.badRequest, "The field \"version\" has the wrong type."))
        #expect(refusal(##"{"type":"send","room":5,"text":"x"}"##)?.message.contains("\"room\"") == true)
    }

    @Test("send needs exactly one of room and to")
    func roomOrTo() {
        let both = refusal(##"{"type":"send","room":"#a","to":"bob","text":"x"}"##)
        #expect(both == ChatError(.badRequest, "\"send\" needs exactly one of \"room\" and \"to\"."))
        #expect(refusal(##"{"type":"send","text":"x"}"##)?.code == .badRequest)
    }

    @Test("an unknown type is refused with unknown_type, listing the known ones")
    func unknownType() {
        let error = refusal(##"{"type":"dance"}"##)
        #expect(error?.code == .unknownType)
        #expect(error?.message.contains("\"dance\"") == true)
        #expect(error?.message.contains("hello, send, join") == true)
    }

    @Test("a kind other than normal or action is refused", arguments: ["notice", "shout", "ACTION", ""])
    func badKind(_ kind: String) {
        let error = refusal(##"{"type":"send","room":"#a","text":"x","kind":"\##(kind)"}"##)
        #expect(error == ChatError(.badRequest, "\"kind\" is \"normal\" or \"action\"."))
    }

    @Test("invalid UTF-8 inside a string becomes U+FFFD")
    func invalidUTF8() throws {
        var line = ByteBuffer(string: ##"{"type":"send","room":"#a","text":"a"##)
        line.writeBytes([0xFF, 0x62, 0xC3])
        line.writeString(##""}"##)
        let (message, _) = codec.decode(line)
        #expect(try message.get() == .request(.say(room: "#a", text: "a\u{FFFD}b\u{FFFD}", kind: .normal)))
    }

    @Test("looksLikeJSON: a first line opening an object, after blanks")
    func looksLikeJSON() {
        #expect(JSONCodec.looksLikeJSON(ByteBuffer(string: "{\"type\":\"hello\"}")))
        #expect(JSONCodec.looksLikeJSON(ByteBuffer(string: " \t {")))
        #expect(!JSONCodec.looksLikeJSON(ByteBuffer(string: "alice")))
        #expect(!JSONCodec.looksLikeJSON(ByteBuffer(string: "[1]")))
        #expect(!JSONCodec.looksLikeJSON(ByteBuffer()))
        #expect(JSONCodec.version == 1)
    }

    // MARK: Encoding

    /// Checks that `buffer` is one line ending in LF, and parses it.
    private func parse(_ buffer: ByteBuffer) throws -> JSON {
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        let hasRawControlByte = bytes.dropLast().contains { $0 < 0x20 }
        #expect(!hasRawControlByte, "raw control bytes in \(String(buffer: buffer))")
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        return try #require(JSON(object))
    }

    private func message(_ target: ChatMessage.Target, from: String? = "alice", kind: ChatMessage.Kind = .normal) -> ChatMessage {
        ChatMessage(id: 42, time: Self.time, from: from, target: target, kind: kind, text: "hello")
    }

    @Test("welcome, with exact bytes")
    func welcome() throws {
        let buffer = codec.encode(.welcome(nick: "alice", server: "parley.test"))
        #expect(String(buffer: buffer) == ##"{"type":"welcome","version":1,"server":"parley.test","nick":"alice"}"## + "\n")
        #expect(try parse(buffer) == ["type": "welcome", "version": 1, "server": "parley.test", "nick": "alice"])
    }

    @Test("messages to a room, to a user and to everyone")
    func messages() throws {
        #expect(
            try parse(codec.encode(.message(message(.room("#rust")))))
                == ["type": "message", "id": 42, "ts": .string(Self.timestamp), "room": "#rust", "from": "alice", "kind": "normal", "text": "hello"]
        )
        #expect(
            try parse(codec.encode(.message(message(.user("bob"), kind: .action))))
                == ["type": "message", "id": 42, "ts": .string(Self.timestamp), "to": "bob", "from": "alice", "kind": "action", "text": "hello"]
        )
        #expect(
            try parse(codec.encode(.message(message(.everyone, from: nil, kind: .notice))))
                == ["type": "message", "id": 42, "ts": .string(Self.timestamp), "kind": "notice", "text": "hello"]
        )
    }

    @Test("ack, with and without ref")
    func ack() throws {
        #expect(
            try parse(codec.encode(.ack(ref: "r1", message: message(.room("#a")))))
                == ["type": "ack", "ref": "r1", "id": 42, "ts": .string(Self.timestamp)]
        )
        #expect(try parse(codec.encode(.ack(ref: nil, message: message(.user("bob"))))) == ["type": "ack", "id": 42, "ts": .string(Self.timestamp)])
    }

    @Test("joined and nick")
    func joinedAndNick() throws {
        #expect(try parse(codec.encode(.joined(room: "#rust", nick: "bob"))) == ["type": "joined", "room": "#rust", "nick": "bob"])
        #expect(try parse(codec.encode(.nickChanged(from: "alice", to: "alicia"))) == ["type": "nick", "from": "alice", "to": "alicia"])
    }

    @Test(
        "left carries a machine cause and human words",
        arguments: [
            (LeaveReason.parted(nil), "part", "left"),
            (.parted("lunch"), "part", "lunch"),
            (.quit(nil), "quit", "quit"),
            (.quit("bye"), "quit", "quit: bye"),
            (.connectionLost, "lost", "connection lost"),
            (.kicked(by: .server, reason: "spam"), "kicked", "kicked by the server operator: spam"),
            (.sendQueueFull, "send_queue_full", "too slow to keep up (send queue full)"),
            (.serverShutdown, "shutdown", "server shutting down"),
        ]
    )
    func left(_ reason: LeaveReason, _ cause: String, _ words: String) throws {
        #expect(
            try parse(codec.encode(.left(room: "#rust", nick: "bob", reason: reason)))
                == ["type": "left", "room": "#rust", "nick": "bob", "cause": .string(cause), "reason": .string(words)]
        )
    }

    @Test("members of a room and everyone online")
    func members() throws {
        #expect(try parse(codec.encode(.members(room: "#rust", nicks: ["alice", "bob"]))) == ["type": "members", "room": "#rust", "nicks": ["alice", "bob"]])
        #expect(try parse(codec.encode(.members(room: nil, nicks: []))) == ["type": "members", "nicks": []])
    }

    @Test("rooms as an array of objects")
    func rooms() throws {
        let rooms = [RoomSummary(name: "#general", members: 3, topic: ""), RoomSummary(name: "#rust", members: 1, topic: "Rust \"talk\"")]
        #expect(
            try parse(codec.encode(.rooms(rooms)))
                == [
                    "type": "rooms",
                    "rooms": [["name": "#general", "members": 3, "topic": ""], ["name": "#rust", "members": 1, "topic": "Rust \"talk\""]],
                ]
        )
        #expect(String(buffer: codec.encode(.rooms([]))) == ##"{"type":"rooms","rooms":[]}"## + "\n")
    }

    @Test("topic, with and without who set it")
    func topic() throws {
        #expect(try parse(codec.encode(.topic(room: "#rust", text: "Rust talk", setBy: "alice"))) == ["type": "topic", "room": "#rust", "text": "Rust talk", "by": "alice"])
        #expect(try parse(codec.encode(.topic(room: "#rust", text: "", setBy: nil))) == ["type": "topic", "room": "#rust", "text": ""])
    }

    @Test("error, with and without ref, for every code")
    func error() throws {
        for code in ChatError.Code.allCases {
            let error = ChatError(code, "Something about \(code).")
            #expect(
                try parse(codec.encode(.error(error, ref: "e1")))
                    == ["type": "error", "code": .string(code.rawValue), "text": .string(error.message), "ref": "e1"]
            )
            #expect(try parse(codec.encodeError(error, ref: nil)) == ["type": "error", "code": .string(code.rawValue), "text": .string(error.message)])
        }
    }

    @Test("notice, help, shutdown and pong")
    func others() throws {
        #expect(try parse(codec.encode(.notice("flood warning"))) == ["type": "notice", "text": "flood warning"])
        let help = [CommandHelp(usage: "/help", summary: "list the commands", aliases: ["/?"]), CommandHelp(usage: "/nick NAME", summary: "change", aliases: [])]
        #expect(
            try parse(codec.encode(.help(help)))
                == ["type": "help", "commands": [["usage": "/help", "summary": "list the commands"], ["usage": "/nick NAME", "summary": "change"]]]
        )
        #expect(try parse(codec.encode(.shutdown(reason: "maintenance"))) == ["type": "shutdown", "reason": "maintenance"])
        #expect(try parse(codec.encode(.pong(ref: "p"))) == ["type": "pong", "ref": "p"])
        #expect(try parse(codec.encode(.pong(ref: nil))) == ["type": "pong"])
    }

    @Test(
        "awkward strings round-trip",
        arguments: [
            "quote \" and backslash \\ and slash /",
            "new\nline, carriage\rreturn, tab\t",
            "nul \u{0} bell \u{7} escape \u{1B}[31m unit separator \u{1F} delete \u{7F}",
            "emoji 👋🏽👨‍👩‍👧 CJK 你好 combining e\u{301}",
            "line separator \u{2028} paragraph \u{2029} replacement \u{FFFD}",
            "",
        ]
    )
    func roundTrip(_ text: String) throws {
        let event = ChatEvent.message(ChatMessage(id: 1, time: Self.time, from: "a\"b\\c", target: .room("#r"), kind: .normal, text: text))
        let json = try parse(codec.encode(event))
        #expect(json["text"] == .string(text))
        #expect(json["from"] == .string("a\"b\\c"))
        #expect(try parse(codec.encode(.notice(text)))["text"] == .string(text))
    }

    private func timestamp(_ seconds: Double) throws -> String? {
        let time = Date(timeIntervalSince1970: seconds)
        let event = ChatEvent.ack(ref: nil, message: ChatMessage(id: 1, time: time, from: "a", target: .room("#r"), kind: .normal, text: "x"))
        guard case .string(let string) = try parse(codec.encode(event))["ts"] else { return nil }
        return string
    }

    @Test(
        "time stamps are ISO 8601 in UTC with milliseconds",
        arguments: [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000.5, "2023-11-14T22:13:20.500Z"),
            (1_700_000_000.25, "2023-11-14T22:13:20.250Z"),
            (1_700_000_000.0625, "2023-11-14T22:13:20.062Z"),
            (951_782_400.75, "2000-02-29T00:00:00.750Z"),
            (-1.5, "1969-12-31T23:59:58.500Z"),
        ]
    )
    func timestamps(_ seconds: Double, _ expected: String) throws {
        let string = try #require(try timestamp(seconds))
        #expect(string.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
        #expect(string == expected)
    }

    @Test("a time with whole milliseconds keeps them", arguments: [(1_700_000_000.007, "2023-11-14T22:13:20.007Z"), (951_782_400.999, "2000-02-29T00:00:00.999Z")])
    func wholeMilliseconds(_ seconds: Double, _ expected: String) throws {
        let string = try #require(try timestamp(seconds))
        #expect(string.hasPrefix(String(expected.prefix(20))))
        // The binary fraction of .007 or .999 lies just below it: a truncating formatter would say .006, .998.
        #expect(string == expected)
    }

    @Test("moderation requests survive the client's encoding and the server's decoding; events the reverse")
    func moderationRoundTrip() throws {
        let actions: [Moderation] = [
            .kick(nick: "bob", reason: "rude"), .ban(mask: "guest*@10.0.*", seconds: 60, reason: "spam"), .unban(mask: "bob"),
            .restrictions, .mute(mask: "bob", seconds: nil, reason: nil), .unmute(mask: "bob"), .op(nick: "bob"),
            .deop(nick: "bob"), .topicLock(false),
        ]
        for action in actions {
            let line = try #require(codec.encode(.moderate(room: "#a", action), ref: "r"))
            let (message, ref) = codec.decode(line)
            #expect(try message.get() == .request(.moderate(room: "#a", action)))
            #expect(ref == "r")
        }
        let notice = ModerationNotice(room: "#a", action: .mute, target: "bob", by: .user("alice"), reason: "calm down", until: Self.time)
        let encoded = codec.encode(.moderation(notice))
        #expect(
            try parse(encoded)
                == ["type": "moderation", "room": "#a", "action": "mute", "target": "bob", "by": "alice", "reason": "calm down", "until": .string(Self.timestamp)]
        )
        #expect(codec.decodeEvent(String(buffer: encoded)) == .moderation(notice))
        let expired = ModerationNotice(room: "#a", action: .unban, target: "bob", by: nil)
        #expect(codec.decodeEvent(String(buffer: codec.encode(.moderation(expired)))) == .moderation(expired))
        let ban = Restriction(kind: .ban, mask: try Mask(validating: "guest*"), setBy: "alice", reason: nil, since: Self.time, until: nil)
        let list = codec.encode(.restrictions(room: "#a", [ban]))
        #expect(codec.decodeEvent(String(buffer: list)) == .restrictions(room: "#a", [ban]))
    }

    @Test("a duration outside 1 second to a year is refused", arguments: [0, -5, 40_000_000])
    func badDuration(_ seconds: Int) {
        #expect(refusal(##"{"type":"ban","room":"#a","mask":"bob","duration":\##(seconds)}"##)?.code == .badRequest)
    }
}

@Suite("JSON codec: the client's hello")
struct JSONHelloTests {
    @Test("join_general is written only when false, and read back")
    func joinGeneral() throws {
        let codec = JSONCodec()
        #expect(!String(buffer: codec.encodeHello(nick: "ann")).contains("join_general"))
        let line = codec.encodeHello(nick: "ann", joinGeneral: false)
        #expect(String(buffer: line).contains(#""join_general":false"#))
        guard case .success(.hello(_, "ann", nil, [:], nil, false)) = codec.decode(line).0 else {
            Issue.record("not read back: \(String(buffer: line))")
            return
        }
    }
}
