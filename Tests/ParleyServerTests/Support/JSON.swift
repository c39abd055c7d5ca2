import Foundation

/// Parses one line of the JSON-lines protocol, failing the test when it is not a JSON object.
func json(_ line: String) throws -> [String: Any] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(line)")
    }
    return object
}

/// A predicate for `waitFor`: a JSON line of `type` whose fields include `fields` (compared as strings).
func isEvent(_ type: String, _ fields: [String: String] = [:]) -> @Sendable (String) -> Bool {
    { line in
        guard let object = try? json(line), object["type"] as? String == type else { return false }
        return fields.allSatisfy { key, value in object[key].map { "\($0)" } == value }
    }
}
