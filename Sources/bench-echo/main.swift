// The start-up baseline for `galley invoke hello`: a bare Swift executable, built with the same
// settings, that decodes the same event from stdin, builds the same response and encodes it.
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

struct Event: Decodable { var name: String? }
struct Output: Encodable { var message: String }

var input: [UInt8] = []
var buffer = [UInt8](repeating: 0, count: 65536)
while true {
    let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
    if count <= 0 { break }
    input.append(contentsOf: buffer[..<count])
}
let event = try JSONDecoder().decode(Event.self, from: Data(input))
var output = try JSONEncoder().encode(Output(message: "Hello, \(event.name ?? "world")!"))
output.append(UInt8(ascii: "\n"))
_ = output.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
