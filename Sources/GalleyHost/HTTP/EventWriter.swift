import Galley

/// Where an event is laid out: as JSON text (``JSONEventWriter``) or as values
/// (`EventValue.Builder`), so that one function lays an event out for both forms.
protocol EventWriter {
    /// Starts an object: the outermost value, or the value of the member just named.
    mutating func openObject()
    mutating func closeObject()
    /// Names the next value, a member of the open object: a fixed name, written as it is.
    mutating func key(_ name: StaticString)
    /// Names the next value with a name from the request (a header's, a parameter's).
    mutating func member(_ name: String)
    mutating func string(_ text: String)
    mutating func string(_ text: Substring)
    /// An array of strings.
    mutating func strings(_ texts: [Substring])
    mutating func integer(_ value: Int64)
    mutating func boolean(_ value: Bool)
}

/// An event laid out as compact JSON text, straight into one buffer.
struct JSONEventWriter: EventWriter {
    private(set) var json: JSONBytes
    /// Whether the open object has no member yet.
    private var first = true

    init(capacity: Int) {
        json = JSONBytes(capacity: capacity)
    }

    mutating func openObject() {
        json.raw("{")
        first = true
    }

    mutating func closeObject() {
        json.raw("}")
        first = false
    }

    mutating func key(_ name: StaticString) {
        json.key(name, first: first)
        first = false
    }

    mutating func member(_ name: String) {
        json.key(name, first: first)
        first = false
    }

    mutating func string(_ text: String) { json.string(text) }

    mutating func string(_ text: Substring) { json.string(text) }

    mutating func strings(_ texts: [Substring]) {
        json.raw("[")
        for (index, text) in texts.enumerated() {
            if index > 0 { json.raw(",") }
            json.string(text)
        }
        json.raw("]")
    }

    mutating func integer(_ value: Int64) { json.number(value) }

    mutating func boolean(_ value: Bool) { json.raw(value ? "true" : "false") }
}

extension EventValue {
    /// An event laid out as values.
    struct Builder: EventWriter {
        /// The objects open, outermost first, each with the name it will have in its parent.
        private var open: [(name: String, members: [Member])] = []
        private var name = ""
        /// The outermost value, once it is closed.
        private(set) var value: EventValue?

        init() {
            open.reserveCapacity(4)
        }

        mutating func openObject() {
            var members: [Member] = []
            // The event's objects have up to a dozen members: no growing on the way.
            members.reserveCapacity(12)
            open.append((name, members))
        }

        mutating func closeObject() {
            let (name, members) = open.removeLast()
            self.name = name
            add(.object(members))
        }

        mutating func key(_ name: StaticString) {
            self.name = name.description
        }

        mutating func member(_ name: String) { self.name = name }

        mutating func string(_ text: String) { add(.string(text)) }

        mutating func string(_ text: Substring) { add(.string(String(text))) }

        mutating func strings(_ texts: [Substring]) { add(.array(texts.map { .string(String($0)) })) }

        mutating func integer(_ value: Int64) { add(.integer(value)) }

        mutating func boolean(_ value: Bool) { add(.boolean(value)) }

        private mutating func add(_ value: EventValue) {
            if open.isEmpty {
                self.value = value
            } else {
                open[open.count - 1].members.append(Member(name, value))
            }
        }
    }
}
