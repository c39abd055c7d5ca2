/// A refusal the sender can act on: a stable machine `code` (JSON clients branch on it) and human text.
public struct ChatError: Error, Sendable, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case unknownType = "unknown_type"
        case unknownCommand = "unknown_command"
        case usage = "usage"
        case notRegistered = "not_registered"
        case alreadyRegistered = "already_registered"
        case unsupportedVersion = "unsupported_version"
        case invalidNick = "invalid_nick"
        case nickTaken = "nick_taken"
        /// The nick belongs to an account: log in to use it.
        case nickRegistered = "nick_registered"
        case loginFailed = "login_failed"
        /// The server asks every connection for a password (`parley serve --server-password`): missing or wrong.
        case serverPassword = "server_password"
        case tooManyAttempts = "too_many_attempts"
        case notLoggedIn = "not_logged_in"
        case invalidRoom = "invalid_room"
        case noSuchRoom = "no_such_room"
        case notInRoom = "not_in_room"
        case tooManyRooms = "too_many_rooms"
        case noSuchNick = "no_such_nick"
        /// The user named is online but not in the room (an op, kick or voice needs them there).
        case userNotInRoom = "user_not_in_room"
        /// An invitation to a room the invitee is in already.
        case alreadyInRoom = "already_in_room"
        case lineTooLong = "line_too_long"
        case registrationTimeout = "registration_timeout"
        case kicked = "kicked"
        /// Only the room's operators may do that.
        case notOperator = "not_operator"
        case banned = "banned"
        /// The room needs a key and none, or another, was given.
        case wrongKey = "wrong_key"
        /// The room is invite only (IRC's +i) and nobody invited the user.
        case inviteOnly = "invite_only"
        /// The room has as many members as its limit (IRC's +l) allows.
        case roomFull = "room_full"
        case muted = "muted"
        /// An unban or unmute of a mask that is not banned or muted.
        case noSuchRestriction = "no_such_restriction"
        /// The server could not store a message, so it was neither acknowledged nor delivered.
        case notStored = "not_stored"
        /// History could not be read just now; the client should ask again.
        case historyUnavailable = "history_unavailable"
        /// The server has too much of that work queued (password hashing): try again in a moment.
        case busy = "busy"
        /// A nickname kept for the server and its services (NickServ, ChanServ, …).
        case nickReserved = "nick_reserved"
        /// Too many rooms created, or owned, from one address or account.
        case tooManyRoomsCreated = "too_many_rooms_created"
        /// A password sent over a plaintext port while the server has TLS ports: refused, not checked.
        case insecureConnection = "insecure_connection"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
