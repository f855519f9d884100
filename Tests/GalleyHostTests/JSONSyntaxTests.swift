import Foundation
import TestSupport
import Testing

@testable import GalleyHost

struct JSONSyntaxTests {
    func accepts(_ bytes: [UInt8]) -> Bool { (try? JSONSyntax.validate(bytes)) != nil }
    func accepts(_ text: String) -> Bool { accepts(Array(text.utf8)) }

    @Test func invalidUTF8AndLoneSurrogatesAreNotJSON() {
        #expect(accepts(#"{"name": "Ada Lovelace ✓ 😀"}"#))
        #expect(accepts(#"["\ud83d\ude00", "\u00e9"]"#))
        let invalid: [[UInt8]] = [
            [0x22, 0xFF, 0x22],  // a byte that is never UTF-8
            [0x22, 0xC3, 0x22],  // a lead byte without its continuation
            [0x22, 0xC0, 0xAF, 0x22],  // an overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // an encoded surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // past U+10FFFF
            [0x22, 0x80, 0x22],  // a continuation byte alone
        ]
        for bytes in invalid {
            let error = #expect(throws: JSONSyntax.Error.self) { try JSONSyntax.validate(bytes) }
            #expect(error?.message == "invalid UTF-8 in string", "\(bytes)")
        }
        #expect(!accepts(#""\ud83d""#))
        #expect(!accepts(#""\ude00""#))
        #expect(!accepts(#""\ud83d\u0041""#))
    }

    @Test(arguments: [
        (#"{"message":"Hello, Ada!"}"#, false),
        (#"{"statusCode":201}"#, true),
        (#" {"statusCode": 201, "body": "x"}"#, true),
        (#"{"a":1,"statusCode":1}"#, true),
        (#"{"\u0073tatusCode":200}"#, true),
        (#"{"body":"statusCode"}"#, false),
        (#"{"nested":{"statusCode":200}}"#, false),
        (#"{"statusCodes":200}"#, false),
        (#""statusCode""#, false),
        ("{}", false),
        ("", false),
    ])
    func aRouteAnswerIsStructuredOnlyWithATopLevelStatusCode(payload: String, structured: Bool) {
        #expect(HostResponder.looksStructured(Data(payload.utf8)) == structured)
    }

    /// A standing fuzz test: seeded mutations of valid documents. Whatever the bytes, the check
    /// returns (never traps), refuses anything that is not UTF-8, and accepts whatever
    /// Foundation's parser accepts (but a trailing comma or a NUL). Set `GALLEY_FUZZ_ITERATIONS` for a longer run.
    @Test func mutatedDocumentsNeverTrapAndAgreeWithFoundation() throws {
        let corpus = [
            #"{"name": "Ada", "tags": ["a", "b"], "n": -12.5e3, "ok": true, "none": null}"#,
            #"[1, 2.0, "x\n\u00e9\"", {"a": {"b": []}}, false]"#,
            #"{"requestContext": {"http": {"method": "GET"}}, "body": "e30=", "isBase64Encoded": true}"#,
            #""caf\u00e9 ✓""#,
        ].map { Array($0.utf8) }
        let iterations = Int(ProcessInfo.processInfo.environment["GALLEY_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        var random = SplitMix(seed: 0x6A11E7)
        let interesting: [UInt8] =
            Array(#"{}[],:"\ue0123456789.-+tfn "#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xED, 0xF4, 0xFF]
        for _ in 0..<iterations {
            var bytes = corpus[Int(random.next() % UInt64(corpus.count))]
            for _ in 0...(random.next() % 4) {
                let position = Int(random.next() % UInt64(bytes.count + 1))
                let byte = interesting[Int(random.next() % UInt64(interesting.count))]
                switch random.next() % 4 {
                case 0 where position < bytes.count: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                case 2 where position < bytes.count: bytes.remove(at: position)
                default: bytes = Array(bytes[..<position])
                }
            }
            let accepted = accepts(bytes)
            if accepted {
                #expect(String(validating: bytes, as: UTF8.self) != nil, "accepted invalid UTF-8: \(bytes)")
            }
            // Foundation also takes a trailing comma (`[1,]`) and stops at a NUL byte, which JSON
            // does not: those are left out.
            let text = String(decoding: bytes, as: UTF8.self)
            if text.firstMatch(of: /,\s*[}\]]/) == nil, !bytes.contains(0),
                (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil
            {
                #expect(accepted, "refused what Foundation parses: \(bytes)")
            }
        }
    }

}
