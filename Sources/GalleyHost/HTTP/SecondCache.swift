import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A text made from a second of UTC time (a date in a header or in an event), made again only
/// when the second changes: every request of the same second asks for the same text, and
/// formatting it costs more than handing it out.
final class SecondCache: Sendable {
    private let cached = Mutex<(second: Int64, text: String)>((Int64.min, ""))
    private let make: @Sendable (tm) -> String

    /// `make` writes the text from the second's calendar parts (`gmtime_r`'s).
    init(_ make: @escaping @Sendable (tm) -> String) {
        self.make = make
    }

    /// The text of `second` (seconds since the Unix epoch).
    func text(at second: Int64) -> String {
        if let made = cached.withLock({ $0.second == second ? $0.text : nil }) { return made }
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let text = make(parts)
        cached.withLock { $0 = (second, text) }
        return text
    }
}

/// The `Date` header's value (RFC 9110's IMF-fixdate).
enum HTTPDate {
    private static let cache = SecondCache { parts in
        var parts = parts
        var text = [CChar](repeating: 0, count: 40)
        let count = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var now: String { cache.text(at: Int64(time(nil))) }
}
