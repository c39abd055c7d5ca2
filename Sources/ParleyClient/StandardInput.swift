import Foundation

/// Standard input as an async stream of byte chunks, ending at end of input.
///
/// A dedicated thread does blocking reads: stdin may be a regular file (`parley connect < script`), which
/// epoll-based NIO cannot watch. The thread ends at end of input; if the client exits first, the process
/// takes it down, which is why it is not tied to a task.
enum StandardInput {
    static func chunks() -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                continuation.yield(Array(buffer[0..<count]))
            }
            continuation.finish()
        }
        return stream
    }
}
