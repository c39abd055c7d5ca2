import Foundation
import NIOConcurrencyHelpers
import ParleyCore
import ParleyPostgres
import ParleyServer
import Testing

/// The web client in a real browser (headless Chromium over the DevTools protocol), against a real server:
/// what a person opening http://host:8080/ does. One browser for the whole suite, a tab per test; a failed
/// test keeps a screenshot (its path is in the failure).
@Suite("The web client in a real browser", .serialized)
struct BrowserTests {
    /// Runs `body` with a fresh tab; on failure a screenshot is kept and named in the error.
    static func withTab(_ name: String, _ body: (Tab) async throws -> Void) async throws {
        let tab = try await Browser.shared.get().openTab()
        do {
            try await body(tab)
        } catch {
            let shot = await tab.keepScreenshot(named: name)
            await tab.close()
            throw TestFailure("\(error) (screenshot: \(shot ?? "none"))")
        }
        await tab.close()
    }

    static func signIn(_ tab: Tab, port: Int, nick: String) async throws {
        try await tab.go(to: "http://127.0.0.1:\(port)/")
        try await tab.waitUntil("document.getElementById('nick') !== null", "the sign-in form")
        try await tab.type(nick, into: "#nick")
        try await tab.click("#signin-button")
        try await tab.waitUntil("!document.getElementById('app').hidden", "the chat to open")
    }

    static func logContains(_ text: String) -> String {
        "document.getElementById('log').innerText.includes(\(Tab.quoted(text)))"
    }

    @Test("loads with no console errors, signs in, shows the message of the day and history on join, talks with an nc user both ways; user text stays text")
    func chat() async throws {
        let motd = FileManager.default.temporaryDirectory.appendingPathComponent("parley-motd-\(UUID().uuidString)").path
        try "Welcome to the team chat. The history is kept; be kind.\n".write(toFile: motd, atomically: true, encoding: .utf8)
        try await TestServer.run(configure: { $0.motdFile = motd }) { server in
            let text = try await server.textUser("nc_user")
            try await text.send("/topic Welcome to Parley: one chat for the browser, nc, the terminal client and IRC")
            // Acknowledged, so stored before the browser joins: it can only come as the history shown on joining.
            let early = try await server.jsonUser("early")
            try await early.send(##"{"type":"send","room":"#general","text":"said before the browser came","ref":"e"}"##)
            try await early.waitFor(isEvent("ack", ["ref": "e"]))
            try await Self.withTab("chat") { tab in
                try await Self.signIn(tab, port: server.httpPort, nick: "ada")
                try await tab.waitUntil(Self.logContains("said before the browser came"), "the history shown on join")
                try await tab.waitUntil("document.querySelector('#log .motd')?.innerText.startsWith('Welcome to the team chat') === true", "the message of the day")
                try await tab.waitUntil("document.getElementById('topic').innerText.startsWith('Welcome to Parley')", "the topic shown")
                try await text.waitFor { $0 == "*** ada joined #general" }
                try await tab.waitUntil("document.getElementById('member-list').innerText.includes('nc_user')", "nc_user in the member list")

                try await tab.type("hello from the browser", into: "#input")
                try await tab.pressEnter(in: "#input")
                try await text.waitFor { $0.hasSuffix("] <ada> hello from the browser") }
                try await text.send("hello back, ada")
                try await tab.waitUntil(Self.logContains("hello back, ada"), "the nc user's answer")
                try await tab.waitUntil("document.querySelector('#log li.mention') !== null", "the mention highlighted")

                // A private message opens a conversation of its own in the sidebar, marked unread.
                try await text.send("/msg ada psst, a secret")
                try await tab.waitUntil("document.getElementById('queries').innerText.includes('nc_user')", "a private conversation in the sidebar")
                try await tab.waitUntil("document.querySelector('#queries .badge') !== null", "its unread mark")
                #expect(try await tab.text("document.title") == "(1) Parley")

                // The README's picture, when asked for (PARLEY_SCREENSHOT=docs/web-client.png).
                if let path = ProcessInfo.processInfo.environment["PARLEY_SCREENSHOT"] {
                    try await tab.screenshot().write(to: URL(fileURLWithPath: path))
                }
                // Markup in a message is shown as the characters it is; a URL becomes a link, nothing else does.
                try await text.send("<b>not bold</b> <img src=x onerror=window.pwned=1> see https://example.org/a?b=1")
                try await tab.waitUntil(Self.logContains("<b>not bold</b>"), "markup shown as text")
                #expect(try await tab.run("document.querySelectorAll('#log b, #log img').length") as? Int == 0)
                #expect(try await tab.run("window.pwned === undefined") as? Bool == true)
                #expect(try await tab.text("document.querySelector('#log a').href") == "https://example.org/a?b=1")

                // A paste of several lines goes as that many messages, a line that looks like a command included.
                try await tab.type("first pasted line\n/quit is not run\nthird pasted line", into: "#input")
                try await tab.pressEnter(in: "#input")
                for line in ["first pasted line", "/quit is not run", "third pasted line"] {
                    try await text.waitFor { $0.hasSuffix("] <ada> \(line)") }
                }

                // A room is made from the sidebar, and a room with its own member list.
                try await tab.type("#books", into: "#join-room")
                try await tab.run("document.getElementById('join-form').requestSubmit()")
                try await tab.waitUntil("document.getElementById('title').innerText === '#books'", "the new room selected")
                try await tab.waitUntil("document.getElementById('member-list').innerText.includes('@')", "the creator marked operator")
                // And left with its button in the sidebar: gone from the list, back in #general.
                try await tab.click("#rooms button[aria-label='Leave #books']")
                try await tab.waitUntil("!document.getElementById('rooms').innerText.includes('#books')", "the room left")
                #expect(try await tab.text("document.getElementById('title').innerText") == "#general")
                #expect(tab.errors().isEmpty, "\(tab.errors())")
            }
        }
    }

    @Test("after a server restart it reconnects by itself and shows exactly the message it missed")
    func reconnect() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-browser-\(UUID().uuidString)").path
        let httpPort = NIOLockedValueBox(0)
        try await Self.withTab("reconnect") { tab in
            try await TestServer.run(dataDirectory: data) { server in
                httpPort.withLockedValue { $0 = server.httpPort }
                let text = try await server.textUser("nc_user")
                try await Self.signIn(tab, port: server.httpPort, nick: "grace")
                try await text.send("before the restart")
                try await tab.waitUntil(Self.logContains("before the restart"), "the first message")
                // The user is reading a private conversation when the server goes.
                try await tab.type("/query nc_user", into: "#input")
                try await tab.pressEnter(in: "#input")
                try await tab.waitUntil("document.getElementById('title').innerText === 'nc_user'", "the private window")
            }
            try await tab.waitUntil(Self.logContains("Disconnected from the server"), "the drop said")
            // While the web client is away (this server has no HTTP port), someone speaks; a witness's copy
            // means it is stored.
            try await TestServer.run(dataDirectory: data, configure: { $0.httpPort = nil }) { server in
                let text = try await server.textUser("nc_user")
                let witness = try await server.jsonUser("witness")
                try await text.send("said while you were away")
                try await witness.waitFor(isEvent("message", ["text": "said while you were away"]))
            }
            try await TestServer.run(dataDirectory: data, configure: { $0.httpPort = httpPort.withLockedValue { $0 } }) { server in
                // Back, still on the window being read; #general marked with what it missed.
                try await tab.waitUntil(Self.logContains("You missed 1 message: 1 in #general"), timeout: .seconds(30), "how much was missed")
                #expect(try await tab.text("document.getElementById('title').innerText") == "nc_user")
                #expect(try await tab.text("document.querySelector('#rooms .badge')?.innerText") == "1")
                try await tab.run("[...document.querySelectorAll('#rooms button')].find((b) => b.innerText.startsWith('#general')).click()")
                try await tab.waitUntil(Self.logContains("said while you were away"), "the missed message")
                #expect(try await tab.text("document.getElementById('log').innerText.split('before the restart').length - 1") == "1")
                let text = try await server.textUser("nc_user")
                try await text.send("and now live again")
                try await tab.waitUntil(Self.logContains("and now live again"), "live messages after the reconnect")
            }
        }
    }

    @Test("two nodes on one database: the page moves to the other node when its own goes, and misses nothing said meanwhile")
    func failover() async throws {
        let database = try await PostgresCluster.newDatabase()
        // Each node's configuration names the other's address, so both ports are chosen first (bound at port 0 by
        // a server that then stops) and the nodes are started on them.
        var ports: [Int] = []
        for _ in 0..<2 {
            try await TestServer.run { ports.append($0.httpPort) }
        }
        let (portA, portB) = (ports[0], ports[1])
        func node(_ name: String, http: Int, other: Int) -> (inout ServerConfiguration) -> Void {
            { configuration in
                configuration.httpPort = http
                configuration.nodeURLs = ["ws://127.0.0.1:\(other)/ws"]
            }
        }
        try await Self.withTab("failover") { tab in
            try await TestServer.run(configure: node("b", http: portB, other: portA), storage: NodeTests.node("b", of: database)) { b in
                let witness = try await b.textUser("nc_user")
                try await TestServer.run(configure: node("a", http: portA, other: portB), storage: NodeTests.node("a", of: database)) { _ in
                    try await Self.signIn(tab, port: portA, nick: "grace")
                    try await tab.waitUntil("state.nodes.length === 2", "the other node listed")
                    try await witness.send("said on node b")
                    try await tab.waitUntil(Self.logContains("said on node b"), "a message from the other node")
                }
                try await tab.waitUntil(Self.logContains("Disconnected from the server"), "the drop said")
                try await witness.send("said while you moved")
                try await tab.waitUntil(Self.logContains("said while you moved"), timeout: .seconds(30), "the message missed while moving")
                #expect(try await tab.text("document.getElementById('log').innerText.split('said on node b').length - 1") == "1")
                try await witness.send("live on node b")
                try await tab.waitUntil(Self.logContains("live on node b"), "live messages on the other node")
                try await witness.waitFor { $0.contains("grace") && $0.contains("joined") }
            }
        }
    }

    /// The join replays 10; a log too short to scroll asks for more by itself, and then each scroll to the top.
    @Test("scrolling up loads older history page by page, down to its beginning")
    func scrollback() async throws {
        try await TestServer.run(configure: {
            $0.historyOnJoin = 10
            $0.limits.flood = .init(burst: 1000, perSecond: 1000)
        }) { server in
            let writer = try await server.jsonUser("writer")
            for index in 1...120 {
                try await writer.send(##"{"type":"send","room":"#general","text":"line \##(index)","ref":"\##(index)"}"##)
            }
            try await writer.waitFor(isEvent("ack", ["ref": "120"]))
            try await Self.withTab("scrollback") { tab in
                try await Self.signIn(tab, port: server.httpPort, nick: "reader")
                try await tab.waitUntil(Self.logContains("line 120"), "the newest lines")
                for _ in 0..<6 {
                    try await tab.run("document.getElementById('log').scrollTop = 0; document.getElementById('log').dispatchEvent(new Event('scroll'))")
                    if try await tab.run(Self.logContains("Beginning of the history")) as? Bool == true { break }
                    try await tab.waitUntil(
                        "document.getElementById('log').scrollTop > 0 || document.getElementById('log').innerText.includes('Beginning of the history')",
                        "an older page"
                    )
                }
                try await tab.waitUntil(Self.logContains("Beginning of the history"), "the beginning of the history")
                let lines = try await tab.run("[...document.querySelectorAll('#log .text')].map((e) => e.textContent)") as? [String] ?? []
                #expect(lines == (1...120).map { "line \($0)" })
                #expect(tab.errors().isEmpty, "\(tab.errors())")
            }
        }
    }

    @Test("a nickname is registered from the page; then it asks for the password, says when it is wrong, and lets its owner in")
    func accounts() async throws {
        try await TestServer.run { server in
            let watcher = try await server.textUser("watcher")
            try await Self.withTab("register") { tab in
                try await tab.go(to: "http://127.0.0.1:\(server.httpPort)/")
                try await tab.type("kim", into: "#nick")
                try await tab.type("kims-long-password", into: "#password")
                try await tab.run("document.getElementById('register').checked = true")
                try await tab.click("#signin-button")
                try await tab.waitUntil(Self.logContains("now registered to you"), "the registration confirmed")
            }
            // The first tab is closed; once its connection is gone, the nick is free for its owner again.
            try await watcher.waitFor { $0.hasPrefix("*** kim left #general") }
            try await Self.withTab("login") { tab in
                try await tab.go(to: "http://127.0.0.1:\(server.httpPort)/")
                try await tab.type("kim", into: "#nick")
                try await tab.type("", into: "#password")
                try await tab.click("#signin-button")
                try await tab.waitUntil("document.getElementById('signin-error').innerText.includes('registered')", "the password asked for")
                try await tab.type("not-the-password", into: "#password")
                try await tab.click("#signin-button")
                try await tab.waitUntil("document.getElementById('signin-error').innerText.includes('Wrong nickname or password')", "a wrong password said")
                try await tab.type("kims-long-password", into: "#password")
                try await tab.click("#signin-button")
                try await tab.waitUntil("!document.getElementById('app').hidden", "the owner let in")
                #expect(try await tab.text("document.getElementById('me').innerText") == "kim")
            }
        }
    }

    @Test("on a phone's screen the sidebar and members fold away behind buttons; dark mode follows the system")
    func phoneAndDark() async throws {
        try await TestServer.run { server in
            let tab = try await Browser.shared.get().openTab(width: 390, height: 800)
            do {
                try await tab.browser.send(
                    "Emulation.setEmulatedMedia", ["features": [["name": "prefers-color-scheme", "value": "dark"]]], session: tab.session
                )
                try await Self.signIn(tab, port: server.httpPort, nick: "mobile")
                let visible = "((id) => getComputedStyle(document.getElementById(id)).display !== 'none')"
                #expect(try await tab.run("\(visible)('sidebar')") as? Bool == false)
                #expect(try await tab.run("\(visible)('menu-toggle')") as? Bool == true)
                try await tab.click("#menu-toggle")
                #expect(try await tab.run("\(visible)('sidebar')") as? Bool == true)
                #expect(try await tab.text("document.getElementById('menu-toggle').getAttribute('aria-expanded')") == "true")
                // Dark: a dark page behind light text.
                let background = try await tab.text("getComputedStyle(document.body).backgroundColor")
                #expect(background == "rgb(23, 25, 29)", "\(background)")
                #expect(tab.errors().isEmpty, "\(tab.errors())")
            } catch {
                let shot = await tab.keepScreenshot(named: "phone")
                await tab.close()
                throw TestFailure("\(error) (screenshot: \(shot ?? "none"))")
            }
            await tab.close()
        }
    }
}
