/// Who an event goes to: a list, less at most one of its entries.
///
/// Why not a plain array: most messages go to "everyone in the room but the sender", and a room's list is built
/// once and shared (`Room.audience`). Leaving the sender out of a copy cost a retain and a release per member,
/// under the hub's lock, for every message; leaving them out by position costs nothing.
///
/// Inlinable, because the fan-out (another module) walks it once per recipient of every event: unspecialised,
/// each step would look up the generic type's metadata.
@frozen
public struct Recipients<Peer: Sendable>: Sendable, RandomAccessCollection, ExpressibleByArrayLiteral {
    @usableFromInline let all: [Recipient<Peer>]
    /// The position in `all` left out; `all.count` when none is.
    @usableFromInline let skipped: Int

    @inlinable
    public init(_ all: [Recipient<Peer>], skipping position: Int? = nil) {
        self.all = all
        // A position outside the list skips nobody.
        self.skipped = position.flatMap { all.indices.contains($0) ? $0 : nil } ?? all.count
    }

    @inlinable
    public init(arrayLiteral recipients: Recipient<Peer>...) {
        self.init(recipients)
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { skipped < all.count ? all.count - 1 : all.count }

    @inlinable
    public subscript(position: Int) -> Recipient<Peer> {
        all[position < skipped ? position : position + 1]
    }
}
