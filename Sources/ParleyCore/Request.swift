import Foundation

/// What a registered client asks of the chat. Text commands and JSON requests both become one of these, so
/// every operation has exactly one implementation. Names arrive raw; the core validates them.
public enum Request: Sendable, Equatable {
    /// A message to `room`, or to the sender's current room when nil (plain text lines).
    /// `tags`: client-only tags, relayed with the message (see `ChatMessage.tags`).
    case say(room: String?, text: String, kind: ChatMessage.Kind, tags: [String: String] = [:])
    case whisper(to: String, text: String, kind: ChatMessage.Kind, tags: [String: String] = [:])
    /// Joins (or creates) a room; `key` is the word a room with a key needs.
    case join(String, key: String? = nil)
    /// Leaves `room`, or the current room when nil.
    case part(room: String?, reason: String?)
    case nick(String)
    /// Members of `room`, or everyone online when nil.
    case who(room: String?)
    /// The rooms with their member counts and topics; with terms, those that match them all (IRC's LIST and its
    /// ELIST conditions): names and masks (`*`, `?`; any one of them), `!mask` to leave rooms out, `>N` and
    /// `<N` for more or fewer than N members.
    case rooms(matching: [String])
    /// Shows the topic when `text` is nil, sets it otherwise; `room` nil means the current room.
    case topic(room: String?, text: String?)
    case ping
    case quit(reason: String?)
    case help
    /// Marks the sender away with this message, or back when nil.
    case away(String?)
    /// Stored messages of `room` (the current room when nil); of a nick, the sender's private conversation
    /// with that nick as its account kept it (empty when not logged in).
    /// `withTags`: with the TAGMSGs kept with `+draft/persist` (IRC's draft/event-playback).
    case history(room: String?, HistoryQuery, withTags: Bool = false)
    /// The rooms one is in and the private conversations one's account kept whose latest message was sent
    /// strictly between `after` and `before`, at most `count`, the most recent of them when `newest`
    /// (answered with `historyTargets`).
    case historyTargets(after: Date, before: Date, count: Int, newest: Bool = false)
    /// A room operator's action on `room` (the current room when nil).
    case moderate(room: String?, Moderation)
    /// Leaves every room (IRC's `JOIN 0`).
    case partAll(reason: String?)
    /// What anyone may know of the user called `nick` (answered with `whois`, the profile nil when nobody is).
    case whois(String)
    /// Who went by `nick` (`*` and `?` match) lately, newest first, at most `count` of them (nil: all kept).
    case whowas(String, count: Int?)
    /// IRC's WHO: a room's members, a nick, or nicks matching a mask with `*` and `?` (answered with `whoList`).
    case lookup(String)
    /// Invites `nick` to `room`, which the sender must be in.
    case invite(nick: String, room: String)
    /// A room's modes (answered with `modes`).
    case modes(room: String)
    /// User mode +i (on) or -i; only a change is confirmed (`invisible`).
    case invisible(Bool)
    /// Account requests: the connection handles these itself (hashing is slow and the store is async) and
    /// tells the hub the outcome; they never reach `ChatState.handle`.
    case register(password: String)
    case login(nick: String, password: String)
    case changePassword(old: String, new: String)
}
