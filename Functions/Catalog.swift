import Galley

/// Every handler in `Functions/`, by the name runtime.json uses in `"handler"`.
///
/// Adding a function: a folder in `Functions/`, one line here, one entry in runtime.json.
public let catalog: Catalog = [
    .handler("Hello", Hello.self),
    .handler("Counter", Counter.self),
    .handler("Inspect", Inspect.self),
    .handler("Digest", Digest.self),
]
