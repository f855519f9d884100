import Foundation
import Functions
import GalleyHost
import Testing

struct RuntimeConfigurationTests {
    func load(_ json: String) throws(ConfigurationError) -> Deployment {
        let configuration = try RuntimeConfiguration(json: Data(json.utf8), file: "runtime.json")
        return try Deployment(configuration: configuration, catalog: catalog, file: "runtime.json")
    }

    func error(_ json: String) -> String {
        do {
            _ = try load(json)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func aRouteMayTakeTheRESTPayload() throws {
        let deployment = try load(
            #"{"functions": {"hello": {"handler": "Hello", "routes": ["GET /a", {"route": "GET /b/{id}", "payload": "1.0"}]}}}"#
        )
        #expect(deployment.functions["hello"]?.configuration.routes.map(\.payload) == [.v2, .v1])
        #expect(
            error(#"{"functions": {"hello": {"handler": "Hello", "routes": [{"route": "GET /b", "payload": "3.0"}]}}}"#)
                == #"runtime.json: functions.hello.routes[0].payload: must be "2.0" (HTTP API, the default) or "1.0" (REST API), found '3.0'"#
        )
        #expect(
            error(#"{"functions": {"hello": {"handler": "Hello", "routes": [{"path": "GET /b"}]}}}"#).contains(
                "routes[0]"
            )
        )
    }

    @Test func validFileLoadsWithDefaults() throws {
        let deployment = try load(#"{"functions": {"hello": {"handler": "Hello", "routes": ["GET /hello/{name}"]}}}"#)
        let hello = try #require(deployment.functions["hello"])
        #expect(hello.configuration.timeout == 3)
        #expect(hello.configuration.memory == 128)
        #expect(hello.configuration.concurrency == 100)
        #expect(hello.configuration.routes.map(\.description) == ["GET /hello/{name}"])
        #expect(deployment.configuration.server.port == 9000)
        #expect(deployment.configuration.storage.path == ".galley")
    }

    @Test func shippedRuntimeJSONIsValid() throws {
        let file = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "../../runtime.json").path
        let configuration = try RuntimeConfiguration.load(from: file)
        _ = try Deployment(configuration: configuration, catalog: catalog, file: file)
        #expect(configuration.functions["hello"]?.handler == "Hello")
    }

    @Test(arguments: [
        (
            #"{"functions": {"hello": {"handler": "Hello", "timeout": "3"}}}"#,
            "runtime.json: functions.hello.timeout: expected a number, found a string"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "timeuot": 3}}}"#,
            "runtime.json: functions.hello.timeuot: unknown field; known fields are handler, timeout"
        ),
        (
            #"{"functions": {"hello": {"handler": "Helo"}}}"#,
            "runtime.json: functions.hello.handler: no handler named 'Helo' is registered; registered handlers: Counter, Digest, Hello, Inspect"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "timeout": -1}}}"#,
            "runtime.json: functions.hello.timeout: must be greater than 0 seconds, found -1"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "timeout": 0}}}"#,
            "runtime.json: functions.hello.timeout: must be greater than 0 seconds, found 0"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "timeout": 901}}}"#,
            "runtime.json: functions.hello.timeout: must be at most 900 seconds, found 901"
        ),
        (
            #"{"functions": {"a": {"handler": "Hello", "routes": ["GET /x/{id}"]}, "b": {"handler": "Hello", "routes": ["GET /x/{name}"]}}}"#,
            "runtime.json: functions.b.routes[0]: 'GET /x/{name}' is already the route 'GET /x/{id}' of function 'a'"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "routes": ["/hello"]}}}"#,
            "runtime.json: functions.hello.routes[0]: '/hello' must be 'METHOD /path'"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "routes": ["FETCH /hello"]}}}"#,
            "runtime.json: functions.hello.routes[0]: 'FETCH' is not a method"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "routes": ["GET /{proxy+}/x"]}}}"#,
            "must be the last segment"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "memory": 64}}}"#,
            "runtime.json: functions.hello.memory: must be between 128 and 10240 MB, found 64"
        ),
        (
            #"{"functions": {"hello": {"handler": "Hello", "concurrency": 0}}}"#,
            "runtime.json: functions.hello.concurrency: must be between 1 and 1000, found 0"
        ),
        (
            #"{"functions": {"hello": {"timeout": 3}}}"#,
            "runtime.json: functions.hello: missing required field 'handler'"
        ),
        (
            #"{"functions": {"bad name": {"handler": "Hello"}}}"#,
            "runtime.json: functions.bad name: 'bad name' is not a valid"
        ),
        (#"{"functions": {}}"#, "runtime.json: functions: no functions are deployed"),
        (
            #"{"server": {"port": 70000}, "functions": {"h": {"handler": "Hello"}}}"#,
            "runtime.json: server.port: must be between"
        ),
        (
            #"{"storage": {"durability": "maybe"}, "functions": {"h": {"handler": "Hello"}}}"#,
            "storage.durability: must be"
        ),
        (#"{"functions": {"py": {"command": []}}}"#, "functions.py.command: must name a program"),
        (
            #"{"functions": {"py": {"command": ["python3"], "isolation": "inline"}}}"#,
            "functions.py.isolation: a \"command\" always runs as a process"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "isolation": "vm"}}}"#,
            "functions.f.isolation: must be \"process\" or \"inline\""
        ),
        (
            #"{"functions": {"f": {"handler": "H", "warm": 101}}}"#,
            "functions.f.warm: must be between 0 and concurrency (100)"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "idleTimeout": 0}}}"#,
            "functions.f.idleTimeout: must be between 0 and 86400"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "schedule": "rate(5 minute)"}}}"#,
            "runtime.json: functions.f.schedule: rate(5 minute): write 5 minutes"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "schedule": "cron(0 12 * * * *)"}}}"#,
            "functions.f.schedule: cron(0 12 * * * *): exactly one of day-of-month and day-of-week must be '?'"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "schedule": "cron(0 0 31 2 ? *)"}}}"#,
            "functions.f.schedule: cron(0 0 31 2 ? *) can never fire"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "schedule": "cron(0 0 1 1 ? 2020)"}}}"#,
            "functions.f.schedule: cron(0 0 1 1 ? 2020) can never fire"
        ),
        (#"{"functions": {"f": {"handler": "H", "retries": 3}}}"#, "functions.f.retries: must be 0, 1 or 2"),
        (#"{"functions": {"f": {"handler": "H", "retryDelay": 0}}}"#, "functions.f.retryDelay: must be more than 0"),
        (
            #"{"functions": {"f": {"handler": "H", "maxEventAge": 30000}}}"#,
            "functions.f.maxEventAge: must be between 1 and 21600"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "onFailure": "g"}}}"#,
            "functions.f.onFailure: names 'g', which is not a deployed function"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "onSuccess": "f"}}}"#,
            "functions.f.onSuccess: a function cannot be its own"
        ),
        (
            #"{"queue": {"maxEvents": 0}, "functions": {"f": {"handler": "H"}}}"#,
            "runtime.json: queue.maxEvents: must be at least 1"
        ),
        (
            #"{"queue": {"maxBytes": 10}, "functions": {"f": {"handler": "H"}}}"#,
            "queue.maxBytes: must be at least 1048576"
        ),
        (
            #"{"queue": {"concurrencyShare": 1.5}, "functions": {"f": {"handler": "H"}}}"#,
            "queue.concurrencyShare: must be more than 0"
        ),
        (
            #"{"queue": {"lease": 0.5}, "functions": {"f": {"handler": "H"}}}"#,
            "queue.lease: must be between 1 and 3600 seconds, found 0.5"
        ),
        (#"{"queue": {"maxevents": 5}, "functions": {"f": {"handler": "H"}}}"#, "queue.maxevents: unknown field"),
        (
            #"{"functions": {"hello": {"handler": "Hello",}}}"#,
            "runtime.json: not valid JSON at line 1, column 45: expected a string key"
        ),
        ("[]", "runtime.json: expected"),
        // Duplicate keys: Foundation keeps the first silently, so the syntax check refuses them.
        (
            #"{"functions": {"f": {"handler": "H"}, "f": {"handler": "H"}}}"#,
            "runtime.json: functions.f: the key \"f\" appears twice in one object; keep one (line 1, column 39)"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "handler": "Hello"}}}"#,
            "runtime.json: functions.f.handler: the key \"handler\" appears twice"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "routes": ["GET /a", {"x": 1, "x": 2}]}}}"#,
            "functions.f.routes[1].x: the key \"x\" appears twice"
        ),
        // Numbers Foundation refuses with only "not valid JSON".
        (
            #"{"functions": {"f": {"handler": "H", "timeout": 1e400}}}"#,
            "runtime.json: functions.f.timeout: 1e400 is out of range"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "memory": 128.5}}}"#,
            "runtime.json: functions.f.memory: must be a whole number, found 128.5"
        ),
        (#"{"server": {"port": 1e30}, "functions": {"f": {"handler": "H"}}}"#, "server.port: must be a whole number"),
        // Routes that can never match.
        (
            #"{"functions": {"f": {"handler": "H", "routes": ["GET /a?b=1"]}}}"#,
            "functions.f.routes[0]: '/a?b=1' can never match"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "routes": ["GET /a#top"]}}}"#,
            "functions.f.routes[0]: '/a#top' can never match"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "routes": ["GET /_galley/health"]}}}"#,
            "functions.f.routes[0]: '/_galley/health' can never match: /_galley/ is the host's own"
        ),
        (
            #"{"functions": {"f": {"handler": "H", "routes": ["POST /2015-03-31/functions/{name}/invocations"]}}}"#,
            "can never match: /2015-03-31/functions is the Lambda Invoke API"
        ),
        (
            #"{"storage": {"path": "../elsewhere"}, "functions": {"f": {"handler": "H"}}}"#,
            "runtime.json: storage.path: '../elsewhere' climbs out of the project folder"
        ),
        (
            #"{"storage": {"path": "data/../../x"}, "functions": {"f": {"handler": "H"}}}"#,
            "storage.path: 'data/../../x' climbs out"
        ),
    ])
    func mistakeIsRefusedWithOneLineNamingTheField(json: String, expected: String) {
        let message = error(json)
        #expect(message.hasPrefix(expected) || message.contains(expected), "got: \(message)")
        #expect(!message.contains("\n"))
    }

    @Test func absoluteStoragePathAndNearMissRoutesAreAccepted() throws {
        let deployment = try load(
            #"""
            {"storage": {"path": "/var/lib/galley"},
             "functions": {"f": {"handler": "Hello", "memory": 256.0,
                                 "routes": ["GET /_galleys", "GET /2015-03-31/other", "GET /x/_galley"]}}}
            """#
        )
        #expect(deployment.configuration.storage.path == "/var/lib/galley")
        #expect(deployment.configuration.functions["f"]?.memory == 256)
    }

    @Test func missingFileIsNamed() {
        do {
            _ = try RuntimeConfiguration.load(from: "/nonexistent/runtime.json")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/runtime.json: cannot read the file (no such file)")
        }
    }
}
