import Foundation
import ParleyCore
import ParleyStore
import Testing

/// The SQLite store's history reads beyond a room's pages: private conversations kept per account, targets with
/// history in a window, reads around a point, client-only tags kept with a message. A real file in a temporary
/// folder.
@Suite("SQLite history: conversations, targets, around, tags")
struct SQLiteHistoryTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func message(
        _ id: Int64, from: String, account: String? = nil, to target: ChatMessage.Target, _ text: String, kind: ChatMessage.Kind = .normal,
        tags: [String: String] = [:], recipientAccount: String? = nil
    ) -> ChatMessage {
        ChatMessage(
            id: id, time: start.addingTimeInterval(Double(id)), from: from, account: account, target: target, kind: kind, text: text, tags: tags,
            recipientAccount: recipientAccount
        )
    }

    static func withStore(_ body: (SQLiteStore) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-history-\(UUID().uuidString)").path
        let store = try await SQLiteStore.open(directory: folder)
        do {
            try await body(store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        try? FileManager.default.removeItem(atPath: folder)
    }

    @Test("a private message is read back by each logged-in side as its conversation with the other, by nick in any case")
    func conversations() async throws {
        try await Self.withStore { store in
            try await store.append([
                Self.message(1, from: "Alice", account: "Alice", to: .user("bob"), "both logged in", recipientAccount: "bob"),
                Self.message(2, from: "bob", account: "bob", to: .user("Alice"), "reply", recipientAccount: "alice"),
                Self.message(3, from: "carol", to: .user("Alice"), "from a guest", recipientAccount: "alice"),
                Self.message(4, from: "Alice", account: "Alice", to: .user("carol"), "to a guest"),
                Self.message(5, from: "Alice", account: "Alice", to: .room("#room"), "in a room"),
                Self.message(6, from: "Alice", account: "Alice", to: .user("Alice"), "to myself", recipientAccount: "alice"),
            ])
            #expect(try await store.conversation(account: "alice", with: "BOB", .latest(10), below: 100, withTags: false).map(\.text) == ["both logged in", "reply"])
            #expect(try await store.conversation(account: "bob", with: "alice", .latest(10), below: 100, withTags: false).map(\.text) == ["both logged in", "reply"])
            #expect(try await store.conversation(account: "alice", with: "carol", .latest(10), below: 100, withTags: false).map(\.text) == ["from a guest", "to a guest"])
            // carol had no account: nothing was kept for her, and an account called carol made later finds nothing.
            #expect(try await store.conversation(account: "carol", with: "alice", .latest(10), below: 100, withTags: false).isEmpty)
            #expect(try await store.conversation(account: "alice", with: "alice", .latest(10), below: 100, withTags: false).map(\.text) == ["to myself"])
            // Paged like a room, and bounded by `below`.
            #expect(try await store.conversation(account: "alice", with: "bob", .before(2, count: 10), below: 100, withTags: false).map(\.text) == ["both logged in"])
            #expect(try await store.conversation(account: "alice", with: "bob", .latest(10), below: 2, withTags: false).map(\.text) == ["both logged in"])
            #expect(try await store.history(room: "#room", .latest(10), below: 100).map(\.text) == ["in a room"])

            // Deleting an account forgets what was kept for it: whoever registers the name next reads nothing.
            try await store.create(Account(name: "alice", credential: Credential(hash: [1], salt: [2], parameters: "test")))
            #expect(try await store.delete("ALICE"))
            #expect(try await store.conversation(account: "alice", with: "bob", .latest(10), below: 100, withTags: false).isEmpty)
            #expect(try await store.conversation(account: "alice", with: "alice", .latest(10), below: 100, withTags: false).isEmpty)
            // The other side keeps its own.
            #expect(try await store.conversation(account: "bob", with: "alice", .latest(10), below: 100, withTags: false).map(\.text) == ["both logged in", "reply"])
        }
    }

    @Test("targets: rooms and conversations whose latest message is inside the window, the longest quiet first, at most the limit")
    func targets() async throws {
        try await Self.withStore { store in
            try await store.append([
                Self.message(1, from: "alice", account: "alice", to: .room("#Old"), "old"),
                Self.message(2, from: "alice", account: "alice", to: .user("bob"), "dm", recipientAccount: "bob"),
                Self.message(3, from: "x", to: .room("#elsewhere"), "not mine"),
                Self.message(4, from: "bob", account: "bob", to: .user("alice"), "dm again", recipientAccount: "alice"),
                Self.message(5, from: "alice", account: "alice", to: .room("#new"), "new"),
            ])
            let all = try await store.targets(
                rooms: ["#old", "#new"], account: "alice", after: .distantPast, before: .distantFuture, count: 10, newest: false
            )
            #expect(all == [
                HistoryTarget(name: "#Old", latest: Self.start.addingTimeInterval(1)),
                HistoryTarget(name: "bob", latest: Self.start.addingTimeInterval(4)),
                HistoryTarget(name: "#new", latest: Self.start.addingTimeInterval(5)),
            ])
            // Open at both ends; a conversation counts by its latest message, not one inside the window.
            let window = try await store.targets(
                rooms: ["#old", "#new"], account: "alice", after: Self.start.addingTimeInterval(1), before: Self.start.addingTimeInterval(3),
                count: 10, newest: false
            )
            #expect(window.isEmpty)
            #expect(try await store.targets(rooms: ["#old", "#new"], account: nil, after: .distantPast, before: .distantFuture, count: 1, newest: false).map(\.name) == ["#Old"])
            // Counted from the newer end when asked so (the later bound first), still shown oldest first.
            let newest = try await store.targets(rooms: ["#old", "#new"], account: "alice", after: .distantPast, before: .distantFuture, count: 2, newest: true)
            #expect(newest.map(\.name) == ["bob", "#new"])
        }
    }

    @Test("around a message: about half before it, the rest from it on; by time the same")
    func around() async throws {
        try await Self.withStore { store in
            try await store.append((1...9).map { Self.message(Int64($0), from: "a", to: .room("#r"), "m\($0)") })
            #expect(try await store.history(room: "#r", .around(.id(5), count: 3), below: 100).map(\.text) == ["m4", "m5", "m6"])
            #expect(try await store.history(room: "#r", .around(.id(5), count: 1), below: 100).map(\.text) == ["m5"])
            #expect(try await store.history(room: "#r", .around(.id(5), count: 4), below: 100).map(\.text) == ["m4", "m5", "m6", "m7"])
            #expect(try await store.history(room: "#r", .around(.id(1), count: 4), below: 100).map(\.text) == ["m1", "m2", "m3", "m4"])
            let time = Self.start.addingTimeInterval(5)
            #expect(try await store.history(room: "#r", .around(.time(time), count: 3), below: 100).map(\.text) == ["m4", "m5", "m6"])
            // Nothing at or past `below`.
            #expect(try await store.history(room: "#r", .around(.id(8), count: 5), below: 9).map(\.text) == ["m6", "m7", "m8"])
        }
    }

    @Test("client-only tags are kept with a message; a topic change and a kept TAGMSG are read back as such")
    func tags() async throws {
        try await Self.withStore { store in
            try await store.append([
                Self.message(1, from: "a", to: .room("#r"), "hello", tags: ["+draft/reply": "7", "+x": "a;b c"]),
                Self.message(2, from: "a", to: .room("#r"), "", kind: .tags, tags: ["+draft/react": "👍", "+draft/persist": ""]),
                Self.message(3, from: "a", to: .room("#r"), "new topic", kind: .topic),
            ])
            let read = try await store.history(room: "#r", .latest(10), below: 100, withTags: true)
            #expect(read.map(\.tags) == [["+draft/reply": "7", "+x": "a;b c"], ["+draft/react": "👍", "+draft/persist": ""], [:]])
            #expect(read.map(\.kind) == [.normal, .tags, .topic])
            // Readers that do not show them do not have them use up the page.
            #expect(try await store.history(room: "#r", .latest(2), below: 100).map(\.kind) == [.normal, .topic])
        }
    }
}
