import Foundation
import ParleyCore
import ParleyTerminal

/// Builders shared by the terminal tests.
enum Fixture {
    static let time = Date(timeIntervalSince1970: 1_700_000_000)

    static func message(
        from: String?, to target: ChatMessage.Target, _ text: String, kind: ChatMessage.Kind = .normal, id: Int64 = 1
    ) -> ChatMessage {
        ChatMessage(id: id, time: time, from: from, target: target, kind: kind, text: text)
    }

    /// A view registered as `bob` on `srv`, in the given rooms (the last one current).
    static func view(rooms: [String] = [], nick: String = "bob", scrollback: Int = 2000) -> ChatView {
        var view = ChatView(nick: nick, server: "srv", scrollback: scrollback)
        view.now = { time }  // the fixture's messages are of "today"
        view.apply(.welcome(nick: nick, server: "srv"))
        for room in rooms { view.apply(.joined(room: room, nick: nick)) }
        return view
    }

    /// The local "HH:MM " stamp ChatView puts before messages.
    static var stamp: String {
        let parts = Calendar.current.dateComponents([.hour, .minute], from: time)
        return String(format: "%02d:%02d ", parts.hour!, parts.minute!)
    }
}

extension ChatView {
    /// The plain text of the lines of the named room ("(status)" for the status buffer).
    func texts(of room: String) -> [String] {
        rooms.first { $0.name == room }?.lines.map(\.plainText) ?? []
    }

    func room(_ name: String) -> Room? { rooms.first { $0.name == name } }

    var lastLine: StyledLine? { currentRoom.lines.last }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
