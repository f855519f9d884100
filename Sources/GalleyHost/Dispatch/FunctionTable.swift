/// `galley list`: one row per deployed function.
public struct FunctionTable: Sendable {
    let rows: [[String]]

    public init(_ deployment: Deployment) {
        rows = deployment.functions.keys.sorted().map { name in
            let function = deployment.functions[name]!.configuration
            return [
                name,
                function.handler,
                "\(RuntimeConfiguration.format(function.timeout))s",
                "\(function.memory) MB",
                "\(function.concurrency)",
                function.routes.isEmpty ? "-" : function.routes.map(\.description).joined(separator: ", "),
            ]
        }
    }

    /// Aligned columns under a header, without trailing spaces.
    public func render() -> String {
        let table = [["FUNCTION", "HANDLER", "TIMEOUT", "MEMORY", "CONCURRENCY", "ROUTES"]] + rows
        let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }
            .joined()
        }
        .joined(separator: "\n")
    }
}
