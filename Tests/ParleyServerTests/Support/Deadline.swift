import Foundation

/// Runs `body`, or fails once `limit` has passed.
func answer<Result: Sendable>(within limit: Duration, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)  // the deadline, not the wait: cancelled once the body answers
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw TestFailure("no answer within \(limit)") }
        return result
    }
}
