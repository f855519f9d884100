import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The web console at `/_galley/` and the endpoints behind it, against a live `galley serve`;
/// the console itself in real headless Chromium driven by selenium.
@Suite(.serialized)
struct ConsoleTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    func config(invokeAPI: Bool = true) throws -> String {
        try directory.write(
            "runtime.json",
            """
            {
              "server": { "invokeAPI": \(invokeAPI), "hostEndpoints": true },
              "storage": { "path": "data" },
              "functions": {
                "hello": { "handler": "Hello", "environment": { "GREETING": "Hello", "API_KEY": "secret-value" } },
                "counter": { "handler": "Counter", "routes": ["POST /count/{name}"] },
                "doomed": { "handler": "Inspect", "retries": 0, "timeout": 60 }
              }
            }
            """
        )
    }

    static func send(
        _ server: ServerProcess,
        _ method: String,
        _ path: String,
        headers: [String: String] = [:],
        body: String? = nil
    ) async throws -> EnvironmentTests.Answer {
        var request = URLRequest(url: URL(string: "\(server.address)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body.map { Data($0.utf8) }
        return try await EnvironmentTests.send(request)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The first dead letter of `doomed` (an `Event` that fails, with no retries), once there is one.
    static func deadLetter(_ server: ServerProcess) async throws -> [String: Any] {
        try await poll("a dead letter of doomed") {
            let listed = try json(try await send(server, "GET", "/_galley/dead-letters/doomed").body)
            return (listed["deadLetters"] as? [[String: Any]])?.first
        }
    }

    /// `doomed`'s delivery attempts so far, once there are `count`.
    static func attempts(_ server: ServerProcess, reaching count: Int) async throws {
        _ = try await poll("\(count) attempts of doomed") { () -> Int? in
            let status = try json(try await send(server, "GET", "/_galley/queue").body)
            let doomed = (status["functions"] as? [String: Any])?["doomed"] as? [String: Any]
            return (doomed?["attempts"] as? Int).flatMap { $0 >= count ? $0 : nil }
        }
    }

    static func poll<Value>(_ what: String, _ probe: () async throws -> Value?) async throws -> Value {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ConsoleFailure(message: "no \(what) within 60 s")
    }

    struct ConsoleFailure: Error { var message: String }

    @Test func theStoreCanBeBrowsedAndAKeyDeletedFromTheConsole() async throws {
        let server = try await ServerProcess(config: config())
        for name in ["ada", "alan", "grace"] {
            #expect(try await Self.send(server, "POST", "/count/\(name)").status == 200)
        }
        let namespaces = try Self.json(try await Self.send(server, "GET", "/_galley/store").body)
        #expect(namespaces["namespaces"] as? [String] == ["counter", "doomed", "hello"])

        // Pages of two, by prefix, with the cursor of the next.
        let first = try Self.json(try await Self.send(server, "GET", "/_galley/store/counter?limit=2").body)
        let entries = try #require(first["entries"] as? [[String: Any]])
        #expect(entries.map { $0["key"] as? String } == ["ada", "alan"])
        #expect(entries.first?["value"] as? Int == 1)
        let cursor = try #require(first["cursor"] as? String)
        let second = try Self.json(
            try await Self.send(server, "GET", "/_galley/store/counter?limit=2&after=\(cursor)").body
        )
        #expect((second["entries"] as? [[String: Any]])?.map { $0["key"] as? String } == ["grace"])
        #expect(second["cursor"] is NSNull)
        let prefixed = try Self.json(try await Self.send(server, "GET", "/_galley/store/counter?prefix=al").body)
        #expect((prefixed["entries"] as? [[String: Any]])?.map { $0["key"] as? String } == ["alan"])

        // A namespace no function uses is named, with those that exist.
        let unknown = try await Self.send(server, "GET", "/_galley/store/other")
        #expect(unknown.status == 404)
        #expect(unknown.body.contains("'other'") && unknown.body.contains("counter, doomed, hello"))
        let badLimit = try await Self.send(server, "GET", "/_galley/store/counter?limit=5000")
        #expect(badLimit.status == 400 && badLimit.body.contains("limit"))

        // An action without the console's header is refused and changes nothing.
        let forged = try await Self.send(server, "DELETE", "/_galley/store/counter?key=ada")
        #expect(forged.status == 403)
        let deleted = try await Self.send(
            server,
            "DELETE",
            "/_galley/store/counter?key=ada",
            headers: ["X-Galley-Console": "1"]
        )
        #expect(deleted.status == 200 && deleted.body == #"{"deleted":true}"#, "\(deleted.body)")
        let after = try Self.json(try await Self.send(server, "GET", "/_galley/store/counter").body)
        #expect((after["entries"] as? [[String: Any]])?.map { $0["key"] as? String } == ["alan", "grace"])
        // Unknown paths under /_galley stay the host's 404.
        #expect(try await Self.send(server, "GET", "/_galley/nothing/here").status == 404)
    }

    @Test func deadLettersAreListedReplayedAndPurged() async throws {
        let server = try await ServerProcess(config: config())
        #expect(try await ObservabilityTests.event(server, "doomed", #"{"fail": "on purpose"}"#) == 202)
        let letter = try await Self.deadLetter(server)
        let id = try #require(letter["id"] as? Int)
        #expect(letter["condition"] as? String == "RetriesExhausted")
        #expect(letter["errorType"] as? String == "InspectError")
        let record = try #require(letter["record"] as? [String: Any])
        #expect((record["requestPayload"] as? [String: Any])?["fail"] as? String == "on purpose")

        let replayed = try await Self.send(
            server,
            "POST",
            "/_galley/dead-letters/doomed/replay?id=\(id)",
            headers: ["X-Galley-Console": "1"]
        )
        #expect(replayed.body == #"{"replayed":1}"#, "\(replayed.body)")
        // Delivered again (and dead again: it still fails), so a second attempt is counted.
        try await Self.attempts(server, reaching: 2)
        _ = try await Self.deadLetter(server)
        let purged = try await Self.send(
            server,
            "POST",
            "/_galley/dead-letters/doomed/purge",
            headers: ["X-Galley-Console": "1"]
        )
        #expect(purged.body == #"{"purged":1}"#, "\(purged.body)")
        let empty = try await Self.send(server, "GET", "/_galley/dead-letters/doomed")
        #expect(empty.body == #"{"deadLetters":[]}"#)
    }

    @Test func withoutTheInvokeAPITheConsoleOnlyLooks() async throws {
        let server = try await ServerProcess(config: config(invokeAPI: false))
        #expect(try await Self.send(server, "GET", "/_galley/").status == 200)
        #expect(try await Self.send(server, "GET", "/_galley/store/counter").status == 200)
        let refused = try await Self.send(
            server,
            "POST",
            "/_galley/dead-letters/doomed/purge",
            headers: ["X-Galley-Console": "1"]
        )
        #expect(refused.status == 403 && refused.body.contains("server.invokeAPI"), "\(refused.body)")
    }

    @Test func theConsolePageMayNotBeFramedOrRunOtherScripts() async throws {
        let server = try await ServerProcess(config: config())
        let page = try await Self.send(server, "GET", "/_galley/")
        #expect(page.status == 200 && page.body.contains(#"<script src="/_galley/console.js">"#))
        #expect(page.headers["X-Frame-Options"] == "DENY" || page.headers["x-frame-options"] == "DENY")
        let policy = page.headers["Content-Security-Policy"] ?? page.headers["content-security-policy"] ?? ""
        #expect(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"))
        let script = try await Self.send(server, "GET", "/_galley/console.js")
        #expect(script.status == 200 && script.body.contains("textContent"))
        // Nothing a function wrote is ever made markup.
        #expect(!script.body.contains("innerHTML"))
    }

    // MARK: - In Chromium

    /// Where the screenshots go: `.build/test-artifacts/console/`.
    static let artifacts = Binaries.directory.deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "test-artifacts/console")

    @Test(
        .enabled(
            if: Tools.usable("chromium", "chromedriver") && (Tools.isCI || Tools.pythonHas("selenium")),
            "chromium, chromedriver or selenium is not installed"
        )
    )
    func theConsoleInChromium() async throws {
        let server = try await ServerProcess(config: config())
        #expect(try await Self.send(server, "POST", "/count/ada").status == 200)
        #expect(try await ObservabilityTests.event(server, "doomed", #"{"fail": "on purpose"}"#) == 202)
        let deadLetter = try #require(try await Self.deadLetter(server)["id"] as? Int)
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let run = try await runProcess(
            "python3",
            ["-c", Self.seleniumScript, server.address, Self.artifacts.path, String(deadLetter)],
            timeout: .seconds(300)
        )
        #expect(run.status == 0, "\(run.err)\n\(run.out)")
        for page in ["functions", "function", "store", "queue"] {
            #expect(FileManager.default.fileExists(atPath: Self.artifacts.appending(path: "\(page).png").path))
        }
        // The replay from the console queued the event again: a second attempt is counted.
        try await Self.attempts(server, reaching: 2)
    }

    static let seleniumScript = #"""
        import sys
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.expected_conditions import staleness_of
        from selenium.webdriver.support.ui import WebDriverWait

        base, artifacts, dead_letter = sys.argv[1], sys.argv[2], sys.argv[3]
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1300"]:
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        wait = WebDriverWait(driver, 60)

        def text(selector):
            return driver.find_element(By.CSS_SELECTOR, selector).text

        def shown(selector):
            return wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))[0]

        try:
            # The functions, as runtime.json has them.
            driver.get(base + "/_galley/")
            shown('#functions tr[data-function="hello"]')
            shown('#functions tr[data-function="counter"]')
            driver.save_screenshot(artifacts + "/functions.png")

            # A function: configuration with its environment masked; invoke it from the form.
            driver.find_element(By.CSS_SELECTOR, '#functions tr[data-function="hello"] a').click()
            shown("#configuration")
            assert "secret-value" not in driver.page_source, "an environment value is shown"
            assert "env API_KEY" in text("#configuration"), text("#configuration")
            payload = driver.find_element(By.ID, "payload")
            payload.clear()
            payload.send_keys('{"name": "Ada"}')
            driver.find_element(By.ID, "invoke").click()
            wait.until(lambda d: "Ada" in text("#result"))
            wait.until(lambda d: "REPORT RequestId" in text("#report"))
            assert "Hello, Ada" in text("#result"), text("#result")
            driver.save_screenshot(artifacts + "/function.png")
            # Its invocation is listed among the recent ones, and links to its log.
            driver.refresh()
            shown("#invocations tr[data-request] a").click()
            wait.until(lambda d: "REPORT RequestId" in text("#log"))

            # The store: the key counter wrote.
            driver.get(base + "/_galley/#/store/counter")
            row = shown('#keys tr[data-key="ada"]')
            assert "1" in row.text, row.text
            driver.save_screenshot(artifacts + "/store.png")

            # The queue: replay the dead letter.
            driver.get(base + "/_galley/#/queue")
            shown('#dead-letters tr[data-letter="%s"]' % dead_letter)
            driver.save_screenshot(artifacts + "/queue.png")
            row = driver.find_element(By.CSS_SELECTOR, '#dead-letters tr[data-letter="%s"]' % dead_letter)
            row.find_element(By.CSS_SELECTOR, "button.replay").click()
            # The view is drawn again once the host has taken the replay.
            wait.until(staleness_of(row))
            errors = driver.find_elements(By.ID, "error")
            assert not errors, errors[0].text
        except Exception:
            driver.save_screenshot(artifacts + "/failure.png")
            print(driver.page_source)
            raise
        finally:
            driver.quit()
        """#
}
