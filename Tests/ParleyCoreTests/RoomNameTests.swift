import ParleyCore
import Testing

@Suite("RoomName")
struct RoomNameTests {
    @Test(
        "valid room names are accepted as spelled",
        arguments: ["#general", "#a", "#Rust", "#swift-nio", "#under_score", "#v1.2", "#0", "#-._",
            "#" + String(repeating: "r", count: 32)]
    )
    func valid(_ raw: String) throws {
        let room = try RoomName(validating: raw)
        #expect(room.display == raw)
        #expect(room.description == raw)
    }

    @Test(
        "invalid room names are refused with invalid_room",
        arguments: ["", "#", "general", "##general", "#" + String(repeating: "r", count: 33), "#two words", "#bang!",
            "#café", "#a/b", "&room", " # ", "#a,b", "#a:b"]
    )
    func invalid(_ raw: String) {
        let error = #expect(throws: ChatError.self) { try RoomName(validating: raw) }
        #expect(error?.code == .invalidRoom)
        #expect(error?.message.contains("#general") == true)
    }

    @Test("equality and hashing ignore ASCII case; display keeps the spelling")
    func caseInsensitive() throws {
        let a = try RoomName(validating: "#Rust")
        let b = try RoomName(validating: "#rUST")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
        #expect(a.display == "#Rust")
        #expect(a.key == "#rust")
        #expect(try RoomName(validating: "#rust") != RoomName(validating: "#rusty"))
    }

    @Test("#general is predefined")
    func general() throws {
        #expect(RoomName.general.display == "#general")
        #expect(RoomName.general == (try RoomName(validating: "#GENERAL")))
    }

    @Test("controls and zero-width characters are removed, and white space trimmed, before validation")
    func cleaned() throws {
        #expect(try RoomName(validating: " #ru\u{200B}st\u{1B}[0m ").display == "#rust")
    }
}
