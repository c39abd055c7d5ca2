import Foundation
import ParleyCore
import ParleyPostgres
import ParleySQLite
import Testing

/// What every `ChatStorage` must do, run against each engine: a real SQLite file in a temporary folder, and a
/// real PostgreSQL server (a database of its own on the tests' private cluster).
@Suite("Storage contract: SQLite and PostgreSQL")
struct StorageContractTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }

        /// Opens stores on a fresh, empty place (a new folder, a new database): each call is one opening, as one
        /// process or node would make it.
        func fresh() async throws -> @Sendable () async throws -> any ChatStorage {
            switch self {
            case .sqlite:
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-contract-\(UUID().uuidString)").path
                return { try await SQLiteStore.open(directory: folder) }
            case .postgres:
                let address = try await PostgresCluster.newDatabase()
                // A deadline for a loaded machine: these tests are about what is stored, not how fast.
                return { try await PostgresStore.open(address, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet) }
            }
        }
    }

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

    static func withStore(_ backend: Backend, _ body: (any ChatStorage, _ reopen: @Sendable () async throws -> any ChatStorage) async throws -> Void) async throws {
        let reopen = try await backend.fresh()
        let store = try await reopen()
        do {
            try await body(store, reopen)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    @Test("a private message is read back by each logged-in side as its conversation with the other, by nick in any case", arguments: Backend.allCases)
    func conversations(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
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

    @Test("targets: rooms and conversations whose latest message is inside the window, the longest quiet first, at most the limit", arguments: Backend.allCases)
    func targets(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
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

    @Test("around a message: about half before it, the rest from it on; by time the same", arguments: Backend.allCases)
    func around(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
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

    @Test("client-only tags are kept with a message; a topic change and a kept TAGMSG are read back as such", arguments: Backend.allCases)
    func tags(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
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

    @Test("history pages by id and by time, never at or past `below`; a batch larger than one statement is stored whole", arguments: Backend.allCases)
    func paging(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, reopen in
            #expect(try await store.lastMessageID() == 0)
            // 7,000 rows: more than one PostgreSQL statement takes (5,957 at 11 binds a row), in one append.
            try await store.append((1...7000).map { Self.message(Int64($0), from: "a", to: .room($0 % 2 == 0 ? "#Even" : "#odd"), "m\($0)") })
            #expect(try await store.lastMessageID() == 7000)
            #expect(try await store.history(room: "#even", .latest(3), below: 7001).map(\.text) == ["m6996", "m6998", "m7000"])
            #expect(try await store.history(room: "#EVEN", .latest(2), below: 7000).map(\.text) == ["m6996", "m6998"])
            #expect(try await store.history(room: "#even", .before(10, count: 2), below: 7001).map(\.text) == ["m6", "m8"])
            #expect(try await store.history(room: "#odd", .after(3, count: 3), below: 7001).map(\.text) == ["m5", "m7", "m9"])
            #expect(try await store.history(room: "#odd", .after(6995, count: 10), below: 6999).map(\.text) == ["m6997"])
            let range = try await store.history(room: "#odd", .range(after: .id(1), before: .id(11), count: 2, newest: true), below: 7001)
            #expect(range.map(\.text) == ["m7", "m9"])
            let byTime = try await store.history(
                room: "#odd", .range(after: .time(Self.start.addingTimeInterval(2)), before: .time(Self.start.addingTimeInterval(9)), count: 10, newest: false),
                below: 7001
            )
            #expect(byTime.map(\.text) == ["m3", "m5", "m7"])
            #expect(byTime.first?.target == .room("#odd") && byTime.first?.from == "a" && byTime.first?.time == Self.start.addingTimeInterval(3))
            // Another process or node opening the same data reads the same.
            let other = try await reopen()
            #expect(try await other.lastMessageID() == 7000)
            #expect(try await other.history(room: "#even", .latest(1), below: 7001).map(\.text) == ["m7000"])
            await other.close()
        }
    }

    @Test("accounts: names compare in any case, a taken name and a missing one are errors, deleting says whether it did", arguments: Backend.allCases)
    func accounts(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
            let credential = Credential(hash: [1, 2, 3], salt: [4, 5], parameters: "scrypt:1024:8:1")
            try await store.create(Account(name: "Zed", credential: credential))
            try await store.create(Account(name: "alice", credential: credential, isOperator: true))
            await #expect(throws: AccountError.exists("ZED")) { try await store.create(Account(name: "ZED", credential: credential)) }
            #expect(try await store.accounts().map(\.name) == ["alice", "Zed"])
            #expect(try await store.account(named: "ALICE") == Account(name: "alice", credential: credential, isOperator: true))
            let changed = Credential(hash: [9], salt: [8], parameters: "scrypt:2048:8:1")
            try await store.update("zed", credential: changed)
            try await store.setOperator("zed", true)
            #expect(try await store.account(named: "zed") == Account(name: "Zed", credential: changed, isOperator: true))
            await #expect(throws: AccountError.missing("nobody")) { try await store.update("nobody", credential: changed) }
            await #expect(throws: AccountError.missing("nobody")) { try await store.setOperator("nobody", true) }
            #expect(try await store.delete("ZED"))
            #expect(try await !store.delete("zed"))
            #expect(try await store.account(named: "zed") == nil)
            try await store.audit(actor: "admin", action: "account add", target: "Zed", detail: "")
            try await store.apply([], audits: [AuditEntry(actor: "alice", action: "ban", target: "#r", detail: "x*")])
            #expect(try await store.auditTrail() == [
                AuditEntry(actor: "admin", action: "account add", target: "Zed", detail: ""), AuditEntry(actor: "alice", action: "ban", target: "#r", detail: "x*"),
            ])
        }
    }

    @Test("room changes are applied in order and read back as policies; forgetting a room takes its operators and bans with it", arguments: Backend.allCases)
    func rooms(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, _ in
            let since = Self.start
            let ban = Restriction(kind: .ban, mask: try Mask(validating: "troll*"), setBy: "alice", reason: "spam", since: since, until: nil)
            let mute = Restriction(kind: .mute, mask: try Mask(validating: "loud@10.*"), setBy: "alice", reason: nil, since: since, until: since.addingTimeInterval(60))
            try await store.apply(
                [
                    .topic(room: "#Dev", text: "ship it", setBy: "alice", setAt: since), .topicLock(room: "#dev", true),
                    .key(room: "#dev", "sesame"), .modes(room: "#dev", RoomModes(letters: "nm")), .limit(room: "#dev", 40),
                    .addOperator(room: "#dev", account: "alice"), .addOperator(room: "#dev", account: "bob"), .removeOperator(room: "#dev", account: "bob"),
                    .restrict(room: "#dev", ban), .restrict(room: "#dev", mute), .lift(room: "#dev", .mute, mask: mute.mask),
                    .topic(room: "#gone", text: "bye", setBy: nil, setAt: nil), .addOperator(room: "#gone", account: "alice"), .forget(room: "#gone"),
                ],
                audits: []
            )
            let policies = try await store.roomPolicies()
            #expect(policies.map(\.name) == ["#Dev"])
            let dev = try #require(policies.first)
            #expect(dev.topic == "ship it" && dev.topicSetBy == "alice" && dev.topicSetAt == since && dev.topicLocked)
            #expect(dev.key == "sesame" && dev.modes == RoomModes(letters: "nm") && dev.limit == 40)
            #expect(dev.operators == ["alice"])
            #expect(dev.restrictions == [ban])
            // A ban set again replaces the first (a new reason), and the room can be recreated after forgetting.
            try await store.apply([.restrict(room: "#dev", Restriction(kind: .ban, mask: ban.mask, setBy: "carol", reason: "again", since: since, until: nil))], audits: [])
            #expect(try await store.roomPolicies().first?.restrictions.map(\.setBy) == ["carol"])
            try await store.apply([.key(room: "#dev", nil), .limit(room: "#dev", nil), .topic(room: "#gone", text: "back", setBy: "x", setAt: since)], audits: [])
            let again = try await store.roomPolicies()
            #expect(again.map(\.name) == ["#Dev", "#gone"] && again[0].key == nil && again[0].limit == nil && again[1].operators.isEmpty)
        }
    }

    @Test("an account change made through another opening of the same data is announced by changes()", arguments: Backend.allCases)
    func changesFromElsewhere(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store, reopen in
            let changes = store.changes()
            let other = try await reopen()
            try await other.create(Account(name: "newcomer", credential: Credential(hash: [1], salt: [2], parameters: "test")))
            await other.close()
            // Polled once a second: the deadline is generous for a loaded machine.
            let noticed = try await answer(within: .seconds(20)) { await changes.first { _ in true } }
            #expect(noticed == .accounts)
            #expect(try await store.account(named: "newcomer") != nil)
        }
    }

    @Test("several first openings of one new database at once all succeed, the schema made once", arguments: Backend.allCases)
    func concurrentFirstOpen(_ backend: Backend) async throws {
        let open = try await backend.fresh()
        let stores = try await withThrowingTaskGroup(of: (any ChatStorage).self) { group in
            for _ in 1...4 { group.addTask { try await open() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for store in stores {
            #expect(try await store.lastMessageID() == 0)
            await store.close()
        }
    }

    @Test("parley serve --store none: nothing kept, and the server stays up until it is told to stop")
    func memoryServer() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--store", "none"])
        let alice = try await TestServer.jsonUser("alice", port: port)
        let bob = try await TestServer.jsonUser("bob", port: port)
        try await alice.send(##"{"type":"send","room":"#general","text":"kept nowhere","ref":"m"}"##)
        try await alice.waitFor(isEvent("ack", ["ref": "m"]))
        try await bob.waitFor { $0.contains("kept nowhere") }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        #expect(server.log.text.contains("storage opened") && server.log.text.contains("at=memory"), "\(server.log.text)")
        #expect(!FileManager.default.fileExists(atPath: server.dataDirectory.appendingPathComponent(SQLiteStore.fileName).path))
    }
}
