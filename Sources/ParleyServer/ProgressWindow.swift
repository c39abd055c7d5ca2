import ParleyCore

/// One reader's lines whose effects the publisher has yet to carry out, at most `size` of them (see
/// `ChatHub.carriedOut(through:)` for why). After each line the reader notes where the hub's queue ended; before
/// it notes more than `size` such places, it waits until the oldest is carried out. A line that queued nothing
/// (a refused one, a PING) takes no place.
struct ProgressWindow {
    private var positions: [UInt64]
    private var next = 0
    private var count = 0
    private var last: UInt64 = 0

    init(size: Int) {
        positions = Array(repeating: 0, count: max(size, 1))
    }

    mutating func noteLine(_ hub: ChatHub<Fanout>) async {
        let position = hub.queuePosition
        guard position > last else { return }
        last = position
        if count == positions.count {
            // The slot about to be written holds the oldest place.
            await hub.carriedOut(through: positions[next])
            count -= 1
        }
        positions[next] = position
        next = (next + 1) % positions.count
        count += 1
    }
}
