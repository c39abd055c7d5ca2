import Crypto
import Foundation

/// A certificate's SHA-256 fingerprint: 32 bytes in upper-case hex, separated by colons, as
/// `openssl x509 -noout -fingerprint -sha256` shows it, so an operator can compare the two by eye.
public enum Fingerprint {
    public static func of(der: [UInt8]) -> String {
        SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// A fingerprint as a user may type it (any case, with or without colons, `SHA256:` in front) in the form
    /// `of` gives; nil when it is not 32 bytes of hex.
    public static func normalized(_ text: String) -> String? {
        var hex = text.trimmingCharacters(in: .whitespaces)
        if hex.lowercased().hasPrefix("sha256:") { hex = String(hex.dropFirst(7)) }
        hex = hex.replacingOccurrences(of: ":", with: "").uppercased()
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else { return nil }
        var pairs: [String] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            pairs.append(String(hex[index..<next]))
            index = next
        }
        return pairs.joined(separator: ":")
    }
}
