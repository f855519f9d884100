import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The host's Prometheus metrics, named after Lambda's CloudWatch metrics where one exists,
/// recorded through swift-metrics into a registry of the host's own (no global bootstrap, so a
/// process may run several hosts) and served at `GET /_galley/metrics`.
///
/// | metric | Lambda's |
/// |---|---|
/// | `galley_invocations_total{function}` | Invocations |
/// | `galley_errors_total{function,error_type}` | Errors |
/// | `galley_throttles_total{function}` | Throttles |
/// | `galley_duration_seconds{function}` (histogram) | Duration |
/// | `galley_init_duration_seconds{function}` (histogram) | Init Duration |
/// | `galley_concurrent_executions{function}` | ConcurrentExecutions |
/// | `galley_environments{function,state="warm"/"busy"}` | |
/// | `galley_max_memory_used_megabytes{function}` (the last invocation's) | Max Memory Used |
/// | `galley_async_events_received_total{function}` | AsyncEventsReceived |
/// | `galley_async_event_retries_total{function}` | |
/// | `galley_async_events_dead_lettered_total{function}` | AsyncEventsDropped |
/// | `galley_async_queue_depth{function}`, `galley_async_event_age_seconds{function}` | AsyncEventAge |
/// | `galley_store_operations_total{operation,namespace,outcome}` | |
/// | `galley_store_operation_duration_seconds{operation}` (histogram) | |
/// | `galley_http_requests_total{status}` | |
/// | `galley_events_dropped` (events live feeds lost by not keeping up, since start) | |
public final class HostMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let handles = Mutex<[String: Handles]>([:])
    private let statuses = Mutex<[Int: CoreMetrics.Counter]>([:])
    private let storeCalls = Mutex<[StoreCallKey: CoreMetrics.Counter]>([:])
    private let storeTimers: [ObservedStore.Operation: CoreMetrics.Timer]

    private struct StoreCallKey: Hashable {
        var operation: ObservedStore.Operation
        var namespace: String
        var outcome: String
    }

    /// One function's metrics, made once.
    private struct Handles: Sendable {
        var invocations: CoreMetrics.Counter
        var throttles: CoreMetrics.Counter
        var duration: CoreMetrics.Timer
        var initDuration: CoreMetrics.Timer
        var maxMemory: CoreMetrics.Gauge
        var received: CoreMetrics.Counter
        var retries: CoreMetrics.Counter
        var deadLettered: CoreMetrics.Counter
    }

    /// Lambda's durations run from a millisecond to 15 minutes.
    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900),
    ]

    /// A store call takes microseconds to a few milliseconds (a durable write's fsync).
    static let storeBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(100), .seconds(1),
    ]

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.buckets
        factory.durationHistogramBuckets["galley_store_operation_duration_seconds"] = Self.storeBuckets
        self.factory = factory
        var timers: [ObservedStore.Operation: CoreMetrics.Timer] = [:]
        for operation in ObservedStore.Operation.allCases {
            timers[operation] = CoreMetrics.Timer(
                label: "galley_store_operation_duration_seconds",
                dimensions: [("operation", operation.rawValue)],
                factory: factory
            )
        }
        storeTimers = timers
    }

    /// Counts and times one store call of a function.
    func recordStoreCall(
        _ operation: ObservedStore.Operation,
        namespace: String,
        outcome: String,
        took duration: Duration
    ) {
        let key = StoreCallKey(operation: operation, namespace: namespace, outcome: outcome)
        Self.counter(in: storeCalls, key) {
            CoreMetrics.Counter(
                label: "galley_store_operations_total",
                dimensions: [("operation", operation.rawValue), ("namespace", namespace), ("outcome", outcome)],
                factory: factory
            )
        }
        .increment()
        let (seconds, attoseconds) = duration.components
        storeTimers[operation]?.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private func handles(for function: String) -> Handles {
        if let known = handles.withLock({ $0[function] }) { return known }
        let labels = [("function", function)]
        let made = Handles(
            invocations: CoreMetrics.Counter(label: "galley_invocations_total", dimensions: labels, factory: factory),
            throttles: CoreMetrics.Counter(label: "galley_throttles_total", dimensions: labels, factory: factory),
            duration: CoreMetrics.Timer(label: "galley_duration_seconds", dimensions: labels, factory: factory),
            initDuration: CoreMetrics.Timer(
                label: "galley_init_duration_seconds",
                dimensions: labels,
                factory: factory
            ),
            maxMemory: CoreMetrics.Gauge(
                label: "galley_max_memory_used_megabytes",
                dimensions: labels,
                factory: factory
            ),
            received: CoreMetrics.Counter(
                label: "galley_async_events_received_total",
                dimensions: labels,
                factory: factory
            ),
            retries: CoreMetrics.Counter(
                label: "galley_async_event_retries_total",
                dimensions: labels,
                factory: factory
            ),
            deadLettered: CoreMetrics.Counter(
                label: "galley_async_events_dead_lettered_total",
                dimensions: labels,
                factory: factory
            )
        )
        return handles.withLock { table in
            if let existing = table[function] { return existing }
            table[function] = made
            return made
        }
    }

    /// Counts what `event` says: call it as an observer of ``InvocationEvents``.
    public func record(_ event: InvocationEvent) {
        switch event {
        case .start:
            // Concurrent executions are the busy environments, read at scrape time.
            break
        case .end(let summary):
            let handles = handles(for: summary.function)
            handles.invocations.increment()
            handles.duration.recordNanoseconds(Int64(summary.durationMs * 1_000_000))
            if let initDuration = summary.initDurationMs {
                handles.initDuration.recordNanoseconds(Int64(initDuration * 1_000_000))
            }
            handles.maxMemory.record(summary.maxMemoryUsedMB)
            if summary.status != "success" {
                CoreMetrics.Counter(
                    label: "galley_errors_total",
                    dimensions: [("function", summary.function), ("error_type", summary.errorType ?? "Unhandled")],
                    factory: factory
                ).increment()
            }
        case .throttle(let function):
            handles(for: function).throttles.increment()
        case .queue(let function, let step):
            let handles = handles(for: function)
            switch step {
            case .accepted: handles.received.increment()
            case .retried: handles.retries.increment()
            case .deadLettered: handles.deadLettered.increment()
            }
        case .line, .lines:
            break
        }
    }

    /// Counts one HTTP answer of the host.
    public func countResponse(status: Int) {
        Self.counter(in: statuses, status) {
            CoreMetrics.Counter(
                label: "galley_http_requests_total",
                dimensions: [("status", String(status))],
                factory: factory
            )
        }
        .increment()
    }

    /// The counter of `key` in `table`, made by `make` the first time.
    private static func counter<Key: Hashable & Sendable>(
        in table: borrowing Mutex<[Key: CoreMetrics.Counter]>,
        _ key: Key,
        make: () -> CoreMetrics.Counter
    ) -> CoreMetrics.Counter {
        if let known = table.withLock({ $0[key] }) { return known }
        let made = make()
        return table.withLock { table in
            if let known = table[key] { return known }
            table[key] = made
            return made
        }
    }

    /// The text exposition format, with the gauges read now: warm and busy environments per
    /// function, the queue's depth and oldest event age, dropped live-feed events.
    func exposition(deployment: Deployment, queue: [QueueFunctionStatus], droppedEvents: Int) -> String {
        for function in deployment.functions.values {
            let labels = [("function", function.name)]
            CoreMetrics.Gauge(label: "galley_environments", dimensions: labels + [("state", "warm")], factory: factory)
                .record(function.pool.idleCount)
            CoreMetrics.Gauge(label: "galley_environments", dimensions: labels + [("state", "busy")], factory: factory)
                .record(function.pool.busy)
            CoreMetrics.Gauge(label: "galley_concurrent_executions", dimensions: labels, factory: factory)
                .record(function.pool.busy)
        }
        for status in queue {
            let labels = [("function", status.function)]
            CoreMetrics.Gauge(label: "galley_async_queue_depth", dimensions: labels, factory: factory).record(
                status.depth
            )
            CoreMetrics.Gauge(label: "galley_async_event_age_seconds", dimensions: labels, factory: factory)
                .record(Double(status.oldestAge ?? 0) / 1000)
        }
        CoreMetrics.Gauge(label: "galley_events_dropped", factory: factory).record(droppedEvents)
        return registry.emitToString()
    }
}
