import ParleyCore

/// One reader's lines whose effects the publisher has yet to carry out, at most `size` of them (see
/// `ChatHub.carriedOut(through:)` for why). After each line the reader notes where the hub's queue ended; before
/// it notes more than `size` such places, it waits until the oldest is carried out. A line that queued nothing
/// (a refused one, a PING) takes no place.
struct ProgressWindow {
    /// The places noted and not yet known to be carried out, oldest first: empty until the first line, and never
    /// longer than `size` (an idle connection keeps no array of `size` places).
    private var positions: [UInt64] = []
    private let size: Int
    private var last: UInt64 = 0

    init(size: Int) {
        self.size = max(size, 1)
    }

    mutating func noteLine(_ hub: ChatHub<Fanout>) async {
        let position = hub.queuePosition
        guard position > last else { return }
        last = position
        if positions.count == size {
            // At most `size` places: shifting them is cheaper than a ring kept at full size per connection.
            await hub.carriedOut(through: positions.removeFirst())
        }
        positions.append(position)
    }
}
