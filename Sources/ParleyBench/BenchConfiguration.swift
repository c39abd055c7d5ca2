/// One load to generate.
public struct BenchConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// The server's port, or several: the ports of nodes serving one chat. Client i connects to the port at
    /// i modulo their count, so each room's members are spread over the nodes.
    public var ports = [5000]
    public var port: Int { ports[0] }
    /// The port client `index` connects to.
    public func port(of index: Int) -> Int { ports[index % ports.count] }
    public var wire = BenchProtocol.text
    public var clients = 100
    public var rooms = 1
    public var senders = 10
    /// Messages per second per sender; nil: as fast as `window` allows.
    public var rate: Double? = 10
    /// Messages a sender may have sent that the room's observer has not yet received.
    public var window = 128
    public var duration: Duration = .seconds(10)
    public var payloadBytes = 64
    /// New connections per second while connecting, so the server's listen backlog never overflows.
    public var connectRate = 1000.0
    /// How long to wait for the last deliveries once sending stops.
    public var drain: Duration = .seconds(5)
    /// The server's processes (one per node), for their CPU time and memory, added up.
    public var serverPIDs: [Int32] = []
    /// Nicks are this plus the client's number (short: ngIRCd allows 9 characters by default).
    public var nickPrefix = "pb"
    /// A hostile client to run alongside the load, and the port of the server's IRC door it attacks (nil: `port`,
    /// which must then be IRC).
    public var attack: BenchAttack?
    public var attackPort: Int?

    public init() {}

    public func validate() throws(BenchError) {
        guard clients >= 1, clients <= 100_000 else { throw BenchError("--clients must be 1 to 100000") }
        guard rooms >= 1, rooms <= clients else { throw BenchError("--rooms must be 1 to the number of clients") }
        guard senders >= 1, senders <= clients else { throw BenchError("--senders must be 1 to the number of clients") }
        if let rate { guard rate > 0, rate <= 100_000 else { throw BenchError("--rate must be above 0 and at most 100000") } }
        if rate == nil {
            guard window >= 1, window <= 100_000 else { throw BenchError("--window must be 1 to 100000") }
            guard clients >= senders + rooms else {
                throw BenchError("without --rate every room needs a client that does not send (--clients ≥ --senders + --rooms)")
            }
        }
        guard payloadBytes >= 32, payloadBytes <= 400 else { throw BenchError("--payload must be 32 to 400 bytes") }
        guard duration > .zero, connectRate > 0 else { throw BenchError("--duration and --connect-rate must be positive") }
        if attack != nil, wire != .irc, attackPort == nil {
            throw BenchError("the attacker speaks IRC: give the server's IRC port with --attack-port, or use --protocol irc")
        }
    }

    /// Client `index` is in room `index % rooms`, so rooms are as even as they can be.
    func room(of client: Int) -> String { rooms == 1 ? "#bench" : "#bench\(client % rooms)" }
    func members(ofRoomOf client: Int) -> Int { clients / rooms + (client % rooms < clients % rooms ? 1 : 0) }
}
