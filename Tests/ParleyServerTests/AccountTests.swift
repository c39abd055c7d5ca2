import Foundation
import NIOCore
import NIOPosix
import ParleyCore
import ParleyServer
import ParleySQLite
import SQLiteNIO
import Testing

@Suite("Accounts")
struct AccountTests {
    @Test("/register reserves a nick; others are told it is registered; /login and a JSON hello with a password get it")
    func registerAndLogin() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            try await alice.send("/register hunter22")
            try await alice.waitFor { $0 == "*** The nickname alice is now registered to you. Next time, log in with /login alice PASSWORD." }
            try await alice.send("/quit")
            try await alice.waitForClose()

            let impostor = try await TestClient.connect(port: server.port)
            try await impostor.send("ALICE")
            try await impostor.waitFor { $0 == "!!! The nickname ALICE is registered. Log in with /login ALICE PASSWORD, or choose another nickname." }
            try await impostor.send("/login alice wrongpass")
            try await impostor.waitFor { $0 == "!!! Wrong nickname or password." }
            try await impostor.send("/login alice hunter22")
            try await impostor.waitFor { $0 == "*** alice joined #general" }

            // A registered user cannot be renamed onto, and JSON logs in with hello.
            let bob = try await server.textUser("bob")
            try await bob.send("/nick alice")
            try await bob.waitFor { $0.hasPrefix("!!! The nickname alice is taken") }
            try await impostor.send("/quit")
            try await impostor.waitForClose()
            try await bob.send("/nick alice")
            try await bob.waitFor { $0.hasPrefix("!!! The nickname alice is registered.") }
            let bot = try await TestClient.connect(port: server.port)
            try await bot.send(#"{"type":"hello","version":1,"nick":"alice","password":"nope-nope","ref":"h"}"#)
            try await bot.waitFor(isEvent("error", ["code": "login_failed", "ref": "h"]))
            try await bot.send(#"{"type":"hello","version":1,"nick":"alice","ref":"h2"}"#)
            try await bot.waitFor(isEvent("error", ["code": "nick_registered", "ref": "h2"]))
            try await bot.send(#"{"type":"hello","version":1,"nick":"Alice","password":"hunter22"}"#)
            try await bot.waitFor(isEvent("welcome", ["nick": "alice"]))
        }
    }

    @Test("/login during a session renames to the account; /passwd changes the password")
    func loginLaterAndPasswd() async throws {
        try await TestServer.run { server in
            let owner = try await server.textUser("carol")
            try await owner.send("/register first-pass")
            try await owner.waitFor { $0.hasPrefix("*** The nickname carol is now registered") }
            try await owner.send("/passwd wrong-old second-pass")
            try await owner.waitFor { $0 == "!!! That is not your current password; your password was not changed." }
            try await owner.send("/passwd first-pass second-pass")
            try await owner.waitFor { $0 == "*** Your password has been changed." }
            try await owner.send("/quit")
            try await owner.waitForClose()

            let guest = try await server.textUser("guest42")
            try await guest.send("/login carol first-pass")
            try await guest.waitFor { $0 == "!!! Wrong nickname or password." }
            try await guest.send("/login carol second-pass")
            try await guest.waitFor { $0 == "*** guest42 is now known as carol" }
            try await guest.waitFor { $0 == "*** You are logged in as carol." }
            let stranger = try await server.textUser("stranger")
            try await stranger.send("/passwd a b-b-b-b")
            try await stranger.waitFor { $0.hasPrefix("!!! Log in first") }
        }
    }

    @Test("someone holding a nick that becomes registered moves aside when its owner logs in")
    func squatter() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-squat-\(UUID().uuidString)").path
        try await TestServer.run(dataDirectory: data) { server in
            let squatter = try await server.textUser("gina")
            let add = try ParleyProcess(["account", "add", "gina", "--password", "gina-pass", "--data-dir", data], input: .nullDevice)
            #expect(try await add.waitForExit() == 0)
            try await eventually("the server sees the new account") {
                let probe = try await TestClient.connect(port: server.port)
                try await probe.send("/login gina gina-pass")
                let reply = try await probe.waitFor { $0.hasPrefix("!!!") || $0.contains("joined #general") }
                await probe.close()
                return reply.contains("joined #general")
            }
            try await squatter.waitFor { $0.hasPrefix("*** gina is now known as Guest") }
            try await squatter.waitFor { $0 == "*** gina is a registered nickname and its owner logged in; you were renamed." }
        }
    }

    @Test("a command after leading spaces is still a command: a password never reaches the room")
    func leadingSpaces() async throws {
        try await TestServer.run { server in
            let watcher = try await server.textUser("watcher")
            let typist = try await server.textUser("typist")
            try await typist.send("   /register typist-pass")
            try await typist.waitFor { $0.hasPrefix("*** The nickname typist is now registered") }
            try await typist.send("marker")
            try await watcher.waitFor { $0.hasSuffix("<typist> marker") }
            let watcherSawPassword = try await watcher.lines.contains { $0.contains("typist-pass") }
            #expect(!watcherSawPassword)
        }
    }

    @Test("failed logins are throttled per address")
    func throttled() async throws {
        try await TestServer.run { server in
            let owner = try await server.textUser("dave")
            try await owner.send("/register right-pass")
            try await owner.waitFor { $0.hasPrefix("*** The nickname dave is now registered") }
            let guesser = try await server.textUser("guesser")
            for attempt in 1...5 {
                try await guesser.send("/login dave wrong\(attempt)")
                try await guesser.waitFor { $0 == "!!! Wrong nickname or password." }
            }
            try await guesser.send("/login dave right-pass")
            try await guesser.waitFor { $0.hasPrefix("!!! Too many failed logins. Try again in ") }
        }
    }

    @Test("parley account works while the server runs, and the server sees the change; passwords are salted scrypt")
    func adminCommands() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-accounts-\(UUID().uuidString)").path
        try await TestServer.run(dataDirectory: data) { server in
            let add = try ParleyProcess(["account", "add", "erin", "--password", "erin-pass", "--data-dir", data], input: .nullDevice)
            #expect(try await add.waitForExit() == 0)
            #expect(add.output.text == "added account erin\n")
            // Within a second or so the running server refuses the nick to anyone without the password.
            try await eventually("the server sees the new account") {
                let client = try await TestClient.connect(port: server.port)
                try await client.send("erin")
                let reply = try await client.waitFor { $0.hasPrefix("!!!") || $0.hasPrefix("*** erin joined") }
                await client.close()
                return reply.hasPrefix("!!! The nickname erin is registered.")
            }
            let stdinPassword = try ParleyProcess(["account", "add", "frank", "--data-dir", data], input: .pipe)
            try stdinPassword.type("erin-pass")
            try stdinPassword.closeInput()
            #expect(try await stdinPassword.waitForExit() == 0)
            let op = try ParleyProcess(["account", "op", "frank", "--data-dir", data], input: .nullDevice)
            #expect(try await op.waitForExit() == 0)
            let list = try ParleyProcess(["account", "list", "--data-dir", data], input: .nullDevice)
            #expect(try await list.waitForExit() == 0)
            #expect(list.output.text == "erin\nfrank  (operator)\n")
            let missing = try ParleyProcess(["account", "remove", "nobody", "--data-dir", data], input: .nullDevice)
            #expect(try await missing.waitForExit() == 1)
            #expect(missing.log.text.contains("there is no account named nobody"))
        }
        let store = try await SQLiteStore.open(directory: data)
        let accounts = try await store.accounts()
        #expect(accounts.map(\.name) == ["erin", "frank"])
        #expect(accounts.allSatisfy { $0.credential.parameters == "scrypt:16384:8:1" && $0.credential.salt.count == 16 && $0.credential.hash.count == 32 })
        #expect(accounts[0].credential.hash != accounts[1].credential.hash, "the same password, salted differently")
        let hashHoldsPassword = accounts.contains { String(decoding: $0.credential.hash, as: UTF8.self).contains("erin-pass") }
        #expect(!hashHoldsPassword)
        #expect(PasswordHasher.verify("erin-pass", against: accounts[0].credential))
        #expect(!PasswordHasher.verify("erin-pas", against: accounts[0].credential))
        let audit = try await store.auditTrail().map { "\($0.actor) \($0.action) \($0.target)" }
        // Commands that only read or change accounts never create a database (a mistyped --data-dir).
        let nowhere = FileManager.default.temporaryDirectory.appendingPathComponent("parley-nowhere-\(UUID().uuidString)/data").path
        for arguments in [["list"], ["remove", "erin"], ["op", "erin"], ["passwd", "erin", "--password", "erin-pass"]] {
            let command = try ParleyProcess(["account"] + arguments + ["--data-dir", nowhere], input: .nullDevice)
            #expect(try await command.waitForExit() == 3)
            #expect(command.log.text.contains("there is no Parley database at \(nowhere)/parley.sqlite3"), "\(command.log.text)")
        }
        #expect(!FileManager.default.fileExists(atPath: nowhere))
        #expect(audit == ["admin account add erin", "admin account add frank", "admin account op frank"])
        await store.close()
    }
}

/// Retries `condition` until it holds or the deadline passes: for effects that another process causes and
/// this one can only observe from outside.
func eventually(_ what: String, timeout: TimeAmount = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = NIODeadline.now() + timeout
    while NIODeadline.now() < deadline {
        if try await condition() { return }
        try await MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(100)) {}.futureResult.get()
    }
    throw TestFailure("timed out waiting until \(what)")
}
