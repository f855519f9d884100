#if canImport(Glibc)
    import Glibc
#endif

/// Blocking reads on a raw descriptor, for the benchmarks' helper processes.
public enum Descriptors {
    /// Fills `buffer` from `descriptor`; `false` when it ends (or fails) first.
    public static func readFully(_ descriptor: Int32, _ buffer: inout [UInt8]) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }
}
