import ParleyCore
import ParleyProtocols

/// `IRCMessage` parsing, as the IRC port runs it on every line, and serialisation of whatever was parsed:
/// what the server writes back is always one line of at most 512 bytes (tags aside) that parses again to the
/// same command. Timestamps (CHATHISTORY references) are parsed too, and whatever parsed goes through the IRC
/// door's pure translations (MODE letters, CHATHISTORY, USER, refs) as the door would run them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = Timestamps.parseISO8601(text)
    // Any text survives a tag value (escaped on the way out, unescaped on the way in), but for the bytes no line
    // may hold.
    let tagged = IRCMessage(tags: ["+k": text], source: "s", command: "TAGMSG", params: ["#a"]).serialized()
    guard let back = IRCMessage(parsing: Substring(String(decoding: tagged.utf8.dropLast(2), as: UTF8.self))) else {
        preconditionFailure("a tagged line does not parse")
    }
    let expected = String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\0" && $0 != "\r" && $0 != "\n" }))
    precondition((back.tags["+k"] ?? "") == expected, "the tag value came back as \(String(reflecting: back.tags["+k"]))")
    precondition(back.command == "TAGMSG" && back.params == ["#a"], "a tag value broke the line")
    guard let message = IRCMessage(parsing: Substring(text)) else { return 0 }
    let line = message.serialized()
    precondition(line.utf8.suffix(2).elementsEqual([13, 10]))
    // By bytes: "\r\n" is one Character to Swift.
    let body = String(decoding: line.utf8.dropLast(2), as: UTF8.self)
    precondition(!body.contains("\r") && !body.contains("\n") && !body.utf8.contains(0), "a line break inside a line")
    let untagged = body.hasPrefix("@") ? body.drop { $0 != " " }.dropFirst() : body[...]
    precondition(untagged.utf8.count <= 510, "\(untagged.utf8.count) bytes")
    guard let again = IRCMessage(parsing: Substring(body)) else { preconditionFailure("what was written does not parse") }
    precondition(again.params.count <= message.params.count, "a parameter appeared")
    translate(message)
    return 0
}

/// The door's readings of a message's parameters never trap, and keep their promises.
private func translate(_ message: IRCMessage) {
    let params = message.params
    if let letters = params.first {
        let steps = IRCTranslation.channelModes(letters, arguments: Array(params.dropFirst()))
        precondition(steps.filter { if case .moderate = $0 { true } else { false } }.count <= IRCCodec.maximumModes + 1, "too many changes")
        for case .invalidKey(let key) in steps { precondition(!IRCTranslation.isValidKey(key)) }
    }
    _ = IRCTranslation.chathistory(params)
    if params.count >= 4, let identity = IRCTranslation.identity(username: params[0], realName: params[3]) {
        precondition((identity.username?.count ?? 0) <= 10 && !(identity.username ?? "").contains(" "), "a username with a space")
        precondition(!(identity.realName ?? "").isEmpty && (identity.realName ?? "").count <= 100)
    }
    // Lines reach the door split at CR and LF, so no part of one holds a line feed, which joins a ref's parts.
    let breaks: (String) -> Bool = { $0.utf8.contains(10) || $0.utf8.contains(13) }
    guard !breaks(message.command), !params.contains(where: breaks) else { return }
    let ref = IRCCodec.ref(message.command, params.first, params.dropFirst().first)
    let parsed = IRCCodec.parse(ref: ref)
    precondition(parsed?.command == message.command && parsed?.target == params.first, "a ref lost its command or target")
}
