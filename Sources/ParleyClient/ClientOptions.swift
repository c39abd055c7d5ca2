/// What `parley connect` was asked to do.
public struct ClientOptions: Sendable {
    public var address: ServerAddress
    public var nick: String
    public var room: String?
    public var colour: Bool
    /// Line mode: print the raw protocol events instead of text lines.
    public var json: Bool
    /// The server's own password, when it asks every connection for one.
    public var serverPassword: String?
    /// The password of the nick's account (`PARLEY_PASSWORD`), sent in every hello; the full-screen client asks
    /// for it when the server says the nick is registered.
    public var password: String?
    /// Connect over TLS (`--tls`).
    public var tls = false
    /// A certificate fingerprint to trust for this server (`--accept-fingerprint`), normalised.
    public var acceptFingerprint: String?

    public init(address: ServerAddress, nick: String, room: String?, colour: Bool, json: Bool, serverPassword: String? = nil) {
        self.serverPassword = serverPassword
        self.address = address
        self.nick = nick
        self.room = room
        self.colour = colour
        self.json = json
    }
}
