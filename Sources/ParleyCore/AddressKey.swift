import Foundation

/// Where the limits that count by address count: an IPv4 address, or a whole IPv6 /64 (one user's network,
/// which hands out addresses freely). An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is the IPv4 one.
public func addressKey(_ address: String) -> String {
    guard address.contains(":") else { return address }
    if address.contains("."), let last = address.split(separator: ":").last { return String(last) }
    return ipv6Prefix(address, groups: 4) + "::/64"
}

/// The wider network an address is in, for limits that a spread of addresses must not escape: an IPv6 /48 (a
/// site: what one customer gets), nil for IPv4.
public func networkKey(_ address: String) -> String? {
    guard address.contains(":"), !address.contains(".") else { return nil }
    return ipv6Prefix(address, groups: 3) + "::/48"
}

/// The first `groups` groups of an IPv6 address, expanded (`2001:db8::1` → `2001:db8:0:0` for four).
private func ipv6Prefix(_ address: String, groups count: Int) -> String {
    let halves = address.split(separator: "%").first.map(String.init)?.components(separatedBy: "::") ?? [address]
    let head = halves[0].split(separator: ":")
    let tail = halves.count > 1 ? halves[1].split(separator: ":") : []
    let groups = head + Array(repeating: "0", count: halves.count > 1 ? max(0, 8 - head.count - tail.count) : 0) + tail
    return groups.prefix(count).map { group in
        let significant = group.drop { $0 == "0" }
        return significant.isEmpty ? "0" : significant.lowercased()
    }.joined(separator: ":")
}
