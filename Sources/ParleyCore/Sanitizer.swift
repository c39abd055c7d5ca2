/// Cleans what one user sends before anyone else sees it.
///
/// A terminal interprets control characters and escape sequences, so a relayed ESC could move the cursor,
/// retitle the window or hide text on every other user's screen. Everything a user sends to others passes
/// through here: messages, topics, reasons, names.
public enum Sanitizer {
    /// Removes C0 and C1 control characters, DEL and whole ANSI/VT escape sequences (CSI, OSC, DCS, SOS, PM,
    /// APC and two-character escapes). A tab becomes a space so that pasted columns stay readable.
    ///
    /// Also what forges lines or reorders text: a line or paragraph separator (U+2028/2029, which Qt and Pango
    /// clients draw as a line break, so `hi\u{2028}<alice> send it` would show a line from alice) becomes a
    /// space; directional overrides, embeddings and isolates (U+202A–202E, U+2066–2069, which would reverse
    /// the rest of a line) and invisible characters (zero-width space, word joiner, BOM, soft hyphen, fillers)
    /// are removed. What scripts and emoji need stays: joiners (U+200C/200D), directional marks (LRM, RLM,
    /// ALM), variation selectors and tag characters, combining marks, right-to-left letters.
    public static func text(_ input: String) -> String {
        // Printable ASCII, most of what anyone types, holds nothing to remove: the input as it is, without a copy
        // scalar by scalar or a lookup of Unicode properties for each (5 % of the server's time at its fan-out
        // ceiling, before).
        if input.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return input }
        var scalars = String.UnicodeScalarView()
        var iterator = input.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            switch scalar.value {
            case 0x20..<0x7F:
                scalars.append(scalar)
            case 0x09:
                scalars.append(" ")
            case 0x1B:
                skipEscape(&iterator)
            case 0x9B:
                skipControlSequence(&iterator)
            case 0x90, 0x98, 0x9D, 0x9E, 0x9F:
                skipString(&iterator)
            case 0x00..<0x20, 0x7F, 0x80..<0xA0:
                continue
            case 0x2028, 0x2029:
                scalars.append(" ")
            case _ where isInvisibleOrReordering(scalar):
                continue
            default:
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// `text(_:)`, then also removes what makes two names look alike or reorders a line: bidi controls and
    /// default-ignorable characters (zero-width space and joiners, soft hyphen, word joiner, BOM, …).
    public static func name(_ input: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text(input).unicodeScalars
        where !scalar.properties.isBidiControl && !scalar.properties.isDefaultIgnorableCodePoint {
            scalars.append(scalar)
        }
        return String(scalars)
    }

    /// After ESC: CSI, a string command, or a two-character sequence with optional intermediates.
    private static func skipEscape(_ iterator: inout String.UnicodeScalarView.Iterator) {
        guard let next = iterator.next() else { return }
        switch next {
        case "[":
            skipControlSequence(&iterator)
        case "]", "P", "X", "^", "_":
            skipString(&iterator)
        default:
            // nF sequences: intermediates 0x20–0x2F, then one final character.
            var current = next
            while (0x20...0x2F).contains(current.value), let following = iterator.next() {
                current = following
            }
        }
    }

    /// CSI: parameter bytes 0x30–0x3F and intermediates 0x20–0x2F up to a final byte 0x40–0x7E.
    private static func skipControlSequence(_ iterator: inout String.UnicodeScalarView.Iterator) {
        while let scalar = iterator.next() {
            if (0x40...0x7E).contains(scalar.value) || !(0x20...0x3F).contains(scalar.value) { return }
        }
    }

    /// OSC, DCS, SOS, PM, APC: everything up to BEL, ST (ESC \) or the C1 ST; an unterminated one runs to the end.
    private static func skipString(_ iterator: inout String.UnicodeScalarView.Iterator) {
        while let scalar = iterator.next() {
            switch scalar.value {
            case 0x07, 0x9C:
                return
            case 0x1B:
                _ = iterator.next()  // the "\" of ST, or whatever follows: both end the string
                return
            default:
                continue
            }
        }
    }

    /// Overrides, embeddings and isolates, and default-ignorable characters other than those scripts and
    /// emoji are written with.
    private static func isInvisibleOrReordering(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x202A...0x202E, 0x2066...0x2069: return true
        case 0x200C, 0x200D, 0x200E, 0x200F, 0x061C: return false  // joiners and directional marks
        case 0x180B...0x180D, 0x180F, 0xFE00...0xFE0F, 0xE0100...0xE01EF: return false  // variation selectors
        case 0xE0020...0xE007F: return false  // tags: subdivision flags
        default: return scalar.properties.isDefaultIgnorableCodePoint
        }
    }

    /// True when the text has nothing but white space and invisible characters (after sanitising): such
    /// messages are dropped silently.
    public static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0.properties.isWhitespace || $0.properties.isDefaultIgnorableCodePoint }
    }

    /// Trims white space at both ends.
    public static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
