/// What `parley connect` was asked to do.
public struct ClientOptions: Sendable {
    /// The servers to try, in order (several nodes of one chat, or a server and its stand-in): the first that
    /// answers is used, and after a drop the client fails over to the next.
    public var addresses: [ServerAddress]
    /// The first of them.
    public var address: ServerAddress { addresses[0] }
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
    /// Rooms to join after connecting (the config's `rooms`, or `--room`); the last becomes current.
    public var rooms: [String] = []
    /// How message times are shown (strftime), from the config file.
    public var timestamp: String?
    /// Nicks whose messages are hidden, from the config file.
    public var ignore: [String] = []
    /// The config file, which `/ignore` updates; nil: none is used.
    public var configPath: String?
    /// Connect over TLS (`--tls`).
    public var tls = false
    /// A certificate fingerprint to trust for this server (`--accept-fingerprint`), normalised.
    public var acceptFingerprint: String?

    public init(addresses: [ServerAddress], nick: String, room: String?, colour: Bool, json: Bool, serverPassword: String? = nil) {
        precondition(!addresses.isEmpty, "at least one server")
        self.serverPassword = serverPassword
        self.addresses = addresses
        self.nick = nick
        self.room = room
        self.colour = colour
        self.json = json
    }
}
