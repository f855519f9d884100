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

    public func render() -> String {
        TextTable.render([["FUNCTION", "HANDLER", "TIMEOUT", "MEMORY", "CONCURRENCY", "ROUTES"]] + rows)
    }
}

/// The CLI's tables: aligned columns, the first row a header, without trailing spaces.
public enum TextTable {
    public static func render(_ table: [[String]]) -> String {
        let columns = table.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in table.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }
            .joined()
        }
        .joined(separator: "\n")
    }
}
