/// What `parley connect` was asked to do.
public struct ClientOptions: Sendable {
    public var address: ServerAddress
    public var nick: String
    public var room: String?
    public var colour: Bool
    /// Line mode: print the raw protocol events instead of text lines.
    public var json: Bool

    public init(address: ServerAddress, nick: String, room: String?, colour: Bool, json: Bool) {
        self.address = address
        self.nick = nick
        self.room = room
        self.colour = colour
        self.json = json
    }
}
